//! Stage 4, gather policy: the I/O side of the policy sources.
//!
//! Each source fetches, caches and single-flights what it needs per origin and turns it into
//! [`crate::decide::Finding`]s for the pure engine. Fetches go through the same upstream client as
//! forwarding (same resolver overrides, TLS roots and network policy) with the crawler's user
//! agent. Time comes from a [`Clock`] so cache expiry is tested without sleeping.

pub mod fetch;
pub mod files;
pub mod findings;
pub mod flight;
pub mod politeness;
pub mod robots;

use std::sync::Mutex;
use std::time::SystemTime;

/// Where policy code gets the time from.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> SystemTime;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        Self(Mutex::new(start))
    }

    pub fn advance(&self, by: std::time::Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.0.lock().map(|now| *now).unwrap_or_else(|poisoned| *poisoned.into_inner())
    }
}
