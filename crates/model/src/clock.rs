//! Time as a parameter: code that needs "now" takes a `&dyn Clock`, so tests can move time by hand.

use std::sync::Mutex;

use time::OffsetDateTime;

/// The source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock. The one place that reads it.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The single sanctioned read of the wall clock.
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self { now: Mutex::new(start) }
    }
    pub fn advance(&self, by: time::Duration) {
        let mut now = self.now.lock().expect("manual clock mutex is never poisoned");
        *now += by;
    }
    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().expect("manual clock mutex is never poisoned") = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().expect("manual clock mutex is never poisoned")
    }
}
