//! The clock, id and randomness seams. Every timestamp, id and random value of the application comes
//! from here, so tests can fix time and the domain never reads either; `clippy.toml` refuses the
//! clock and random functions everywhere else.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Where "now" comes from.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

impl<C: Clock> Clock for std::sync::Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// The system's wall clock, as it is (see [`SteadyClock`] for what the application uses).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods, reason = "this is the clock seam")]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A wall clock that never goes back. A wall clock stepped backwards (a bad time server, an
/// operator's `date -s`, a virtual machine restored from a snapshot) would give new events times
/// before older ones, reopen idempotency windows and lengthen every token's and grace period's life.
/// This one follows the wall clock while it moves forward (steps forward included), and when it
/// steps back keeps counting from where it was at the rate of the monotonic clock until the wall
/// clock catches up. Started with [`SteadyClock::not_before`] the newest time in the log, it also
/// never dates a new event before the events a previous run wrote.
#[derive(Debug)]
pub struct SteadyClock<W = SystemClock> {
    wall: W,
    state: std::sync::Mutex<Steady>,
}

/// What a [`SteadyClock`] remembers.
#[derive(Debug, Clone, Copy)]
struct Steady {
    /// The last wall time it followed, and the monotonic instant it read it at: while the wall
    /// clock is behind, time is this plus the monotonic time since (no error accumulates).
    anchor: (DateTime<Utc>, std::time::Instant),
    /// The latest time handed out.
    last: DateTime<Utc>,
}

impl<W: Clock> SteadyClock<W> {
    #[allow(clippy::disallowed_methods, reason = "this is the clock seam")]
    pub fn new(wall: W) -> Self {
        let now = wall.now();
        Self {
            wall,
            state: std::sync::Mutex::new(Steady {
                anchor: (now, std::time::Instant::now()),
                last: now,
            }),
        }
    }

    /// The same clock, never earlier than `floor`.
    #[allow(clippy::disallowed_methods, reason = "this is the clock seam")]
    pub fn not_before(self, floor: DateTime<Utc>) -> Self {
        if let Ok(mut state) = self.state.lock()
            && state.last < floor
        {
            *state = Steady {
                anchor: (floor, std::time::Instant::now()),
                last: floor,
            };
        }
        self
    }
}

impl<W: Clock> Clock for SteadyClock<W> {
    #[allow(clippy::disallowed_methods, reason = "this is the clock seam")]
    fn now(&self) -> DateTime<Utc> {
        let wall = self.wall.now();
        let read_at = std::time::Instant::now();
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if wall >= state.last {
            *state = Steady {
                anchor: (wall, read_at),
                last: wall,
            };
            return wall;
        }
        let (time, at) = state.anchor;
        let steady = time
            + chrono::TimeDelta::from_std(read_at.saturating_duration_since(at))
                .unwrap_or(chrono::TimeDelta::zero());
        state.last = steady.max(state.last);
        state.last
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    /// A wall clock a test sets.
    #[derive(Debug, Default)]
    struct Wall(AtomicI64);

    impl Clock for Wall {
        fn now(&self) -> DateTime<Utc> {
            DateTime::from_timestamp_micros(self.0.load(Ordering::SeqCst)).unwrap_or_default()
        }
    }

    const HOUR: i64 = 3_600_000_000;

    #[test]
    fn a_step_back_is_not_followed_and_a_step_forward_is() {
        let wall = std::sync::Arc::new(Wall(AtomicI64::new(100 * HOUR)));
        let clock = SteadyClock::new(wall.clone());
        let first = clock.now();
        assert_eq!(first, wall.now());
        wall.0.store(98 * HOUR, Ordering::SeqCst);
        let after_step_back = clock.now();
        assert!(after_step_back >= first, "time went back");
        assert!(after_step_back - first < chrono::TimeDelta::seconds(1));
        let later = clock.now();
        assert!(later >= after_step_back, "steady time never decreases");
        wall.0.store(101 * HOUR, Ordering::SeqCst);
        assert_eq!(clock.now(), wall.now(), "a step forward is followed");
        assert_eq!(clock.now(), wall.now(), "and then the wall clock, exactly");
    }

    #[test]
    fn a_floor_from_the_log_is_respected() {
        let wall = std::sync::Arc::new(Wall(AtomicI64::new(10 * HOUR)));
        let floor = DateTime::from_timestamp_micros(12 * HOUR).unwrap();
        let clock = SteadyClock::new(wall.clone()).not_before(floor);
        assert!(clock.now() >= floor);
        let above = DateTime::from_timestamp_micros(9 * HOUR).unwrap();
        let clock = SteadyClock::new(wall.clone()).not_before(above);
        assert_eq!(
            clock.now(),
            wall.now(),
            "a floor in the past changes nothing"
        );
    }
}
