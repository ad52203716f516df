//! The service clock: what "now" is for the ticket service's rules (SLA clocks, step
//! limits, call-backs, dispatch windows).
//!
//! * [`ServiceClock::System`]: the wall clock (`run`, the default).
//! * [`ServiceClock::Scaled`]: `demo`. Wall time until [`ScaledClock::start`] anchors
//!   it at a simulated instant; from then on service time runs `speed` times as fast
//!   as the wall clock, on the same time line as the demo's live fleet, so failures,
//!   tickets, step limits and customers agree.
//! * [`ServiceClock::Manual`]: `simulate-service`. Stands still until the driver moves
//!   it ([`ManualClock::set`]), then runs the sweeps itself.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use domain::Timestamp;

/// Which clock the ticket service runs on.
#[derive(Clone, Debug, Default)]
pub enum ServiceClock {
    /// The wall clock.
    #[default]
    System,
    /// Simulated time at a speed, from an anchor.
    Scaled(ScaledClock),
    /// Time the caller sets.
    Manual(ManualClock),
}

impl ServiceClock {
    /// The clock as the ticket service takes it.
    pub fn clock(&self) -> api::tickets::Clock {
        match self {
            Self::System => Arc::new(crate::now),
            Self::Scaled(c) => {
                let c = c.clone();
                Arc::new(move || c.now())
            }
            Self::Manual(c) => {
                let c = c.clone();
                Arc::new(move || c.now())
            }
        }
    }

    /// "Now" on this clock.
    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => crate::now(),
            Self::Scaled(c) => c.now(),
            Self::Manual(c) => c.now(),
        }
    }
}

/// A clock the caller sets; clones share the time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(at.millis())))
    }

    /// The time it stands at.
    pub fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }

    /// Moves it to `at`; never backwards (an earlier `at` is ignored), so the service
    /// never sees time run back.
    pub fn set(&self, at: Timestamp) {
        self.0.fetch_max(at.millis(), Ordering::SeqCst);
    }
}

/// Simulated time running at `speed` from an anchor; the wall clock until anchored.
/// Clones share the anchor.
#[derive(Clone, Debug, Default)]
pub struct ScaledClock(Arc<Mutex<Option<Anchor>>>);

#[derive(Clone, Copy, Debug)]
struct Anchor {
    wall: Instant,
    at: Timestamp,
    speed: f64,
}

impl ScaledClock {
    /// An unanchored clock (it reads the wall clock).
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on the clock reads `at` plus the wall time since, times `speed`
    /// (a non-positive or non-finite speed counts as 1). Never moves backwards: if
    /// `at` is before the current reading, time continues from the current reading.
    pub fn start(&self, at: Timestamp, speed: f64) {
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            1.0
        };
        let current = self.now();
        let at = Timestamp(at.millis().max(current.millis()));
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(Anchor {
            wall: Instant::now(),
            at,
            speed,
        });
    }

    /// The speed, once anchored.
    pub fn speed(&self) -> Option<f64> {
        self.anchor().map(|a| a.speed)
    }

    fn anchor(&self) -> Option<Anchor> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// "Now": simulated once anchored, else the wall clock.
    pub fn now(&self) -> Timestamp {
        match self.anchor() {
            None => crate::now(),
            Some(a) => {
                let elapsed = a.wall.elapsed().as_secs_f64() * 1000.0 * a.speed;
                Timestamp(a.at.millis().saturating_add(elapsed as i64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward() {
        let c = ManualClock::new(Timestamp(1_000));
        let service = ServiceClock::Manual(c.clone()).clock();
        assert_eq!(service(), Timestamp(1_000));
        c.set(Timestamp(5_000));
        assert_eq!(service(), Timestamp(5_000));
        c.set(Timestamp(2_000));
        assert_eq!(service(), Timestamp(5_000));
    }

    #[test]
    fn scaled_clock_runs_from_its_anchor_at_its_speed() {
        let c = ScaledClock::new();
        assert!(c.speed().is_none());
        let far = Timestamp(crate::now().millis() + 365 * Timestamp::DAY_MS);
        c.start(far, 1000.0);
        let a = c.now();
        assert!(a >= far);
        // Never behind the anchor, and monotonic.
        let b = c.now();
        assert!(b >= a);
        assert_eq!(c.speed(), Some(1000.0));
        // An anchor in the past does not move the clock back.
        c.start(Timestamp(0), 0.0);
        assert!(c.now() >= b);
        assert_eq!(c.speed(), Some(1.0));
    }
}
