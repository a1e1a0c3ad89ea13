//! Rate limits: ingestion requests per token, and failed authentication
//! per client.
//!
//! The failure throttle is a GCRA per client: `burst` failures at once,
//! then one more per `every`. Unlike a plain token bucket it can be asked
//! without taking anything, so a blocked client is refused before its
//! token is looked at (a right token must not answer differently), and only
//! failures cost. Its memory is bounded: entries that have recovered are
//! dropped when the table is full, and when it is still full, new clients
//! share one entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The clock the limits read; tests stop it.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Failed sign-ins and API calls with a wrong token allowed at once per client.
pub const FAILURES_BURST: u32 = 20;
/// Then one more each this often.
pub const FAILURES_EVERY: Duration = Duration::from_secs(3);
/// Clients tracked at most (about 100 bytes each), besides the one
/// entry that new clients share when the table is full.
pub const FAILURES_CLIENTS: usize = 100_000;

/// The server's rate limits, with their clock.
pub struct Limiter {
    clock: Clock,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    /// Failed authentication per client.
    pub failures: Throttle,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::with_clock(Arc::new(Instant::now))
    }
}

impl Limiter {
    pub fn with_clock(clock: Clock) -> Limiter {
        Limiter {
            buckets: Default::default(),
            failures: Throttle::new(
                FAILURES_BURST,
                FAILURES_EVERY,
                FAILURES_CLIENTS,
                clock.clone(),
            ),
            clock,
        }
    }

    /// Takes one request from `key`'s bucket (a burst of `per_minute`,
    /// refilled over a minute); Err with the seconds to wait. Keys are
    /// token hashes and feedback links: as many as there are of those.
    pub fn take(&self, key: &str, per_minute: u32) -> Result<(), u64> {
        let rate = f64::from(per_minute.max(1)) / 60.0;
        let cap = f64::from(per_minute.max(1));
        let now = (self.clock)();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = b.entry(key.to_string()).or_insert((cap, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * rate).min(cap);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil() as u64)
        }
    }
}

/// Failures per key, with bounded memory.
pub struct Throttle {
    burst: u32,
    every: Duration,
    max_keys: usize,
    clock: Clock,
    /// Per key, when its failures will all have been forgiven.
    clear_at: Mutex<HashMap<String, Instant>>,
}

/// The key new clients share while the table is full.
const OVERFLOW: &str = "(overflow)";

impl Throttle {
    pub fn new(burst: u32, every: Duration, max_keys: usize, clock: Clock) -> Throttle {
        Throttle {
            burst: burst.max(1),
            every,
            max_keys: max_keys.max(1),
            clock,
            clear_at: Default::default(),
        }
    }

    /// How far ahead of now a key may be and still try: burst - 1 failures.
    fn slack(&self) -> Duration {
        self.every * (self.burst - 1)
    }

    /// Ok when `key` may try; Err with the whole seconds to wait. Takes nothing.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = (self.clock)();
        let map = self.clear_at.lock().unwrap_or_else(|e| e.into_inner());
        let at = map.get(key).or_else(|| {
            // A key the full table could not take counts as the shared one.
            (map.len() >= self.max_keys)
                .then(|| map.get(OVERFLOW))
                .flatten()
        });
        match at {
            Some(&at) if at > now + self.slack() => {
                let wait = at - (now + self.slack());
                Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of `key`.
    pub fn fail(&self, key: &str) {
        let now = (self.clock)();
        let mut map = self.clear_at.lock().unwrap_or_else(|e| e.into_inner());
        let key = if map.contains_key(key) || map.len() < self.max_keys {
            key
        } else {
            // Full: forget the keys that have recovered, else share one entry.
            map.retain(|_, at| *at > now);
            if map.len() < self.max_keys {
                key
            } else {
                OVERFLOW
            }
        };
        let at = map.entry(key.to_string()).or_insert(now);
        *at = (*at).max(now) + self.every;
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.clear_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock the test moves by hand.
    fn clock() -> (Clock, Arc<Mutex<Instant>>) {
        let t = Arc::new(Mutex::new(Instant::now()));
        let c = t.clone();
        (Arc::new(move || *c.lock().unwrap()), t)
    }

    #[test]
    fn a_burst_of_failures_then_one_per_period() {
        let (c, t) = clock();
        let th = Throttle::new(3, Duration::from_secs(10), 100, c);
        for _ in 0..3 {
            assert_eq!(th.check("a"), Ok(()));
            th.fail("a");
        }
        assert_eq!(th.check("a"), Err(10));
        assert_eq!(th.check("b"), Ok(()), "other clients are not held");
        *t.lock().unwrap() += Duration::from_secs(9);
        assert_eq!(th.check("a"), Err(1));
        *t.lock().unwrap() += Duration::from_secs(1);
        assert_eq!(th.check("a"), Ok(()));
        th.fail("a");
        assert_eq!(th.check("a"), Err(10), "one more, then held again");
    }

    #[test]
    fn memory_is_bounded_and_recovered_clients_are_dropped() {
        let (c, t) = clock();
        let th = Throttle::new(2, Duration::from_secs(10), 3, c);
        for k in ["a", "b", "c"] {
            th.fail(k);
        }
        // Full: a fourth client goes to the shared entry, and so does a fifth.
        for _ in 0..2 {
            th.fail("d");
        }
        assert_eq!(th.len(), 4, "three clients and the shared entry");
        assert!(th.check("d").is_err());
        assert!(th.check("e").is_err(), "new clients share the held entry");
        assert!(th.check("a").is_ok(), "known clients keep their own");
        // Recovered entries make room.
        *t.lock().unwrap() += Duration::from_secs(11);
        th.fail("f");
        assert_eq!(th.len(), 2, "a, b, c dropped; the shared entry and f");
        assert_eq!(th.check("f"), Ok(()));
    }

    #[test]
    fn ingestion_buckets_refill_by_the_clock() {
        let (c, t) = clock();
        let l = Limiter::with_clock(c);
        assert_eq!(l.take("k", 2), Ok(()));
        assert_eq!(l.take("k", 2), Ok(()));
        assert_eq!(l.take("k", 2), Err(30));
        *t.lock().unwrap() += Duration::from_secs(30);
        assert_eq!(l.take("k", 2), Ok(()));
    }
}
