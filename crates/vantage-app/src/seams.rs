//! The clock, id and randomness seams. Every timestamp, id and random value of the application comes
//! from here, so tests can fix time and the domain never reads either; `clippy.toml` refuses the
//! clock and random functions everywhere else.

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

/// `N` random bytes from a generator seeded by the operating system (keys, secrets, nonces).
#[allow(clippy::disallowed_methods, reason = "this is the randomness seam")]
pub fn random_bytes<const N: usize>() -> [u8; N] {
    rand::random()
}

/// A random value in `range`, uniformly (jitter).
#[allow(clippy::disallowed_methods, reason = "this is the randomness seam")]
pub fn random_in<T, R>(range: R) -> T
where
    T: rand::distr::uniform::SampleUniform,
    R: rand::distr::uniform::SampleRange<T>,
{
    rand::random_range(range)
}

/// A new time-ordered id (UUIDv7).
#[allow(clippy::disallowed_methods, reason = "this is the id seam")]
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}
