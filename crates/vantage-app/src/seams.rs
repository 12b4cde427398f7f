//! The clock and id seams. Every timestamp and id of the application comes from here, so tests can fix
//! time and the domain never reads either.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Where "now" comes from.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods, reason = "this is the clock seam")]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A new time-ordered id (UUIDv7).
#[allow(clippy::disallowed_methods, reason = "this is the id seam")]
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}
