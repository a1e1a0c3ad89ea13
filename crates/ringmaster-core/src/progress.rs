//! How far long work has come, shared with whoever draws it.
//!
//! The work (an import, `gen`) counts into atomics; a display thread in the
//! CLI reads them. Nothing here draws or waits, and counting costs one
//! relaxed add per chunk of work, so the work never slows for its display.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A step's name, its total and how much of it is done (in the step's own
/// unit: bytes for an import, records for `gen`).
#[derive(Debug, Default)]
pub struct Progress {
    step: Mutex<&'static str>,
    unit: Mutex<&'static str>,
    total: AtomicU64,
    done: AtomicU64,
}

/// What a display reads at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub step: &'static str,
    pub unit: &'static str,
    /// 0 when the step's size is not known (show a spinner).
    pub total: u64,
    pub done: u64,
}

impl Progress {
    /// Starts a step: `total` of `unit` to do (0 when unknown).
    pub fn begin(&self, step: &'static str, unit: &'static str, total: u64) {
        *self.step.lock().unwrap_or_else(|e| e.into_inner()) = step;
        *self.unit.lock().unwrap_or_else(|e| e.into_inner()) = unit;
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets how much is done (for steps that know their position).
    pub fn set(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
    }

    pub fn seen(&self) -> Seen {
        Seen {
            step: *self.step.lock().unwrap_or_else(|e| e.into_inner()),
            unit: *self.unit.lock().unwrap_or_else(|e| e.into_inner()),
            total: self.total.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_starts_from_nothing() {
        let p = Progress::default();
        p.begin("reading", "bytes", 100);
        p.add(40);
        p.add(2);
        assert_eq!(
            p.seen(),
            Seen {
                step: "reading",
                unit: "bytes",
                total: 100,
                done: 42
            }
        );
        p.begin("building", "", 0);
        assert_eq!(p.seen().done, 0);
        assert_eq!(p.seen().step, "building");
        p.set(7);
        assert_eq!(p.seen().done, 7);
    }
}
