//! The scheduler that drives a rollout beside the server: it holds the
//! rollout's lease, ticks the engine on the rollout's clock, judges the run
//! state, fills and delivers the outbox, and picks up new exports.
//!
//! [`Scheduler::step`] is one pass; [`Scheduler::run`] repeats it until
//! stopped. Time comes from an injected [`Clock`], so tests drive the
//! scheduler step by step without sleeping.
//!
//! With several servers on one database only the holder of the rollout's
//! [`Lease`] ticks; the others follow the stored clock (for their API and
//! pages) and take over when the lease runs out.

use crate::watch::Watcher;
use crate::{AppState, View};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The wall clock the scheduler paces itself and its lease by.
pub trait Clock: Send + Sync {
    fn now(&self) -> jiff::Timestamp;
    /// Resolves once `d` has passed on this clock.
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The machine's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// The rollout's time as the API and the pages read it: what the scheduler
/// last ticked (or, following, what the leader stored), or the wall clock
/// against a real tenant.
#[derive(Clone)]
pub struct RolloutClock {
    at: Arc<Mutex<jiff::Timestamp>>,
    wall: Option<Arc<dyn Clock>>,
}

impl RolloutClock {
    /// A simulated rollout's clock, starting at `start`.
    pub fn simulated(start: jiff::Timestamp) -> RolloutClock {
        RolloutClock::shared(Arc::new(Mutex::new(start)))
    }

    /// A simulated clock over a time the caller also holds.
    pub fn shared(at: Arc<Mutex<jiff::Timestamp>>) -> RolloutClock {
        RolloutClock { at, wall: None }
    }

    /// Against a tenant the rollout's time is the wall clock's.
    pub fn live(wall: Arc<dyn Clock>) -> RolloutClock {
        RolloutClock {
            at: Arc::new(Mutex::new(wall.now())),
            wall: Some(wall),
        }
    }

    pub fn now(&self) -> jiff::Timestamp {
        match &self.wall {
            Some(w) => w.now(),
            None => *self.at.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    fn set(&self, t: jiff::Timestamp) {
        *self.at.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    /// The clock as [`AppState::clock`] takes it.
    pub fn reader(&self) -> Arc<dyn Fn() -> jiff::Timestamp + Send + Sync> {
        let c = self.clone();
        Arc::new(move || c.now())
    }
}

/// How the scheduler spaces its ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// The simulated fleet: each tick moves the rollout one hour on, `every`
    /// apart on the wall clock.
    Simulated { every: Duration },
    /// A real tenant: each tick at the wall clock's time, `every` apart.
    Live { every: Duration },
}

impl Pace {
    /// Simulated seconds per real second (at least 1).
    pub fn simulated(speed: f64) -> Pace {
        Pace::Simulated {
            every: Duration::from_secs_f64(3600.0 / speed.max(1.0)),
        }
    }

    /// Against a tenant: a tick every 15 minutes.
    pub const LIVE: Pace = Pace::Live {
        every: Duration::from_secs(15 * 60),
    };

    fn every(self) -> Duration {
        match self {
            Pace::Simulated { every } | Pace::Live { every } => every,
        }
    }
}

/// A server's claim on driving a rollout's scheduler.
#[derive(Clone, Debug)]
pub struct Lease {
    pub name: String,
    pub holder: String,
}

impl Lease {
    /// How long a lease lasts unrenewed: a dead leader is replaced within it.
    pub const TTL: Duration = Duration::from_secs(5);
    /// How often a holder renews (and a follower tries).
    pub const RENEW: Duration = Duration::from_secs(1);

    pub fn new(rollout: &str, holder: impl Into<String>) -> Lease {
        Lease {
            name: format!("scheduler:{rollout}"),
            holder: holder.into(),
        }
    }

    /// A holder unique to this process: host, process id and a random part.
    pub fn for_this_process(rollout: &str) -> Lease {
        use rand::RngCore;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let holder = format!(
            "{host}/{}/{:08x}",
            std::process::id(),
            rand::rng().next_u32()
        );
        Lease::new(rollout, holder)
    }

    /// Takes or renews the lease at `now` (wall time, not the rollout's).
    pub async fn hold(
        &self,
        store: &dyn ringmaster_store::Store,
        now: jiff::Timestamp,
    ) -> ringmaster_store::Result<bool> {
        let until = now + jiff::SignedDuration::try_from(Self::TTL).unwrap_or_default();
        store.lease(&self.name, &self.holder, now, until).await
    }
}

/// Files by path, size and modification time: two fingerprints differ when
/// a file was added, removed or written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fingerprint(Vec<(PathBuf, u64, Option<std::time::SystemTime>)>);

impl Fingerprint {
    /// Every file at or below `roots`; paths that cannot be read are left out.
    pub fn of(roots: impl IntoIterator<Item = PathBuf>) -> Fingerprint {
        let mut out = Vec::new();
        let mut walk: Vec<PathBuf> = roots.into_iter().collect();
        while let Some(p) = walk.pop() {
            let Ok(m) = std::fs::metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                if let Ok(rd) = std::fs::read_dir(&p) {
                    walk.extend(rd.flatten().map(|e| e.path()));
                }
            } else {
                out.push((p, m.len(), m.modified().ok()));
            }
        }
        out.sort();
        Fingerprint(out)
    }
}

/// Where the plan and its organization come from, so that a new directory
/// or policy export is picked up while the server runs.
pub trait Sources: Send + Sync {
    /// What the plan reads from now; a change means an import.
    fn fingerprint(&self) -> Fingerprint;
    /// Loads the plan and its sources again.
    fn load(&self, now: jiff::Timestamp) -> Result<View, Box<dyn std::error::Error + Send + Sync>>;
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// The new view is in place.
    Replaced,
    /// The sources did not load; the previous view stays.
    Failed,
    /// The new directory removes or reorders devices the waves hold; the
    /// previous view stays.
    Moved,
}

/// What one pass of the scheduler did.
#[derive(Debug)]
pub struct Step {
    /// Whether this server holds the lease.
    pub leading: bool,
    /// Whether that changed with this pass (true on the first).
    pub changed: bool,
    /// The rollout time this pass ticked at, if it ticked.
    pub ticked: Option<jiff::Timestamp>,
    /// The transitions that tick made.
    pub transitions: Vec<String>,
    /// Set when the sources changed and were loaded again.
    pub reloaded: Option<Reloaded>,
    /// How long to wait before the next pass.
    pub nap: Duration,
}

/// Drives one rollout: see the module's documentation.
pub struct Scheduler {
    state: AppState,
    time: RolloutClock,
    clock: Arc<dyn Clock>,
    pace: Pace,
    lease: Lease,
    watcher: Watcher,
    client: reqwest::Client,
    sources: Option<Box<dyn Sources>>,
    inputs: Fingerprint,
    looked: jiff::Timestamp,
    leading: Option<bool>,
    /// The rollout time of this server's last tick while leading.
    last: Option<jiff::Timestamp>,
    /// When (wall time) the next tick is due.
    next: jiff::Timestamp,
}

/// `a + d` on the wall clock.
fn later(a: jiff::Timestamp, d: Duration) -> jiff::Timestamp {
    a + jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)
}

impl Scheduler {
    /// A scheduler for `state`'s rollout. `time` must be the clock
    /// `state.clock` reads: the scheduler moves it.
    pub fn new(
        state: AppState,
        time: RolloutClock,
        pace: Pace,
        lease: Lease,
        clock: Arc<dyn Clock>,
    ) -> Scheduler {
        let now = clock.now();
        Scheduler {
            watcher: Watcher::new(&state.rollout),
            client: crate::notify::client(),
            state,
            time,
            clock,
            pace,
            lease,
            sources: None,
            inputs: Fingerprint::default(),
            looked: now,
            leading: None,
            last: None,
            next: now,
        }
    }

    /// Looks at `sources` every [`Scheduler::LOOK_EVERY`] and loads them
    /// again when they change.
    pub fn with_sources(mut self, sources: Box<dyn Sources>) -> Scheduler {
        self.inputs = sources.fingerprint();
        self.sources = Some(sources);
        self
    }

    /// How often the sources are looked at.
    pub const LOOK_EVERY: Duration = Duration::from_secs(10);

    /// One pass: renew (or try to take) the lease, reload changed sources,
    /// and, leading and due, tick, judge the run state and notify;
    /// following, take the stored clock.
    pub async fn step(&mut self) -> Step {
        let wall = self.clock.now();
        let held = match self.lease.hold(self.state.store.as_ref(), wall).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "renewing the scheduler lease");
                false
            }
        };
        let reloaded = self.look(wall, held).await;
        let changed = self.leading != Some(held);
        self.leading = Some(held);
        let mut step = Step {
            leading: held,
            changed,
            ticked: None,
            transitions: Vec::new(),
            reloaded,
            nap: Lease::RENEW,
        };
        if !held {
            self.last = None;
            // Follow the leader's clock, for the API and the pages.
            if let Ok(Some(t)) = self.state.engine.polled_until().await {
                self.time.set(t);
            }
            return step;
        }
        if wall >= self.next {
            for now in self.tick_times().await {
                let moved = self.tick(now).await;
                step.transitions.extend(moved);
                step.ticked = Some(now);
                self.last = Some(now);
            }
            self.next = later(self.clock.now(), self.pace.every());
        }
        let left = self.next.duration_since(self.clock.now());
        // Short naps: the lease is renewed well before it runs out.
        step.nap = Duration::try_from(left)
            .unwrap_or_default()
            .min(Lease::RENEW);
        step
    }

    /// The rollout times of the next tick: the hour after the last one, this
    /// server's or a previous leader's; the wall clock against a tenant. A
    /// server that takes over first ticks the stored hour again: a leader
    /// killed between its poll and its judgement left that hour half done,
    /// and ticking an hour twice changes nothing.
    async fn tick_times(&self) -> Vec<jiff::Timestamp> {
        if let Pace::Live { .. } = self.pace {
            return vec![self.clock.now()];
        }
        let hour = jiff::SignedDuration::from_hours(1);
        let stored = self.state.engine.polled_until().await.ok().flatten();
        match (stored, self.last) {
            (Some(stored), None) => vec![stored, stored + hour],
            (stored, Some(last)) => vec![stored.unwrap_or(last).max(last) + hour],
            (None, None) => vec![self.time.now()],
        }
    }

    /// Ticks the engine at `now`, then judges the run state (when due) and
    /// fills and delivers the outbox. Failures are logged: the next tick
    /// tries again.
    async fn tick(&mut self, now: jiff::Timestamp) -> Vec<String> {
        let at = now.strftime("%Y-%m-%d %H:%M").to_string();
        let transitions = match self.state.engine.tick(now).await {
            Ok(t) => {
                for l in &t.approvals {
                    tracing::warn!(target: "ringmaster::rollout", %at, "{l}");
                }
                t.transitions
            }
            Err(e) => {
                tracing::error!(target: "ringmaster::rollout", %at, error = %e, "scheduler");
                Vec::new()
            }
        };
        for l in &transitions {
            tracing::info!(target: "ringmaster::rollout", %at, "{l}");
        }
        self.time.set(now);
        if let Err(e) = self.watcher.run(&self.state).await {
            tracing::error!(target: "ringmaster::runstate", %at, error = %e, "run-state check");
        }
        crate::notify::run(&self.state, &self.client).await;
        transitions
    }

    /// Loads the sources again when they changed since the last look.
    async fn look(&mut self, wall: jiff::Timestamp, leading: bool) -> Option<Reloaded> {
        let sources = self.sources.as_ref()?;
        if wall < later(self.looked, Self::LOOK_EVERY) {
            return None;
        }
        self.looked = wall;
        let now = sources.fingerprint();
        if now == self.inputs {
            return None;
        }
        self.inputs = now;
        Some(self.reload(leading).await)
    }

    /// Loads the sources and puts the new view in place; the leader records
    /// what the conflict analysis finds new or gone. Sources that no longer
    /// load, or whose devices moved rows, keep the old view.
    async fn reload(&self, leading: bool) -> Reloaded {
        let Some(sources) = &self.sources else {
            return Reloaded::Failed;
        };
        let s = &self.state;
        let now = (s.clock)();
        let new = match sources.load(now) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "reloading the plan's sources failed; the previous ones stay in use");
                return Reloaded::Failed;
            }
        };
        let old = s.view();
        // Waves keep their devices as rows of the organization they started on.
        let rows = old.org.devices.rows;
        let moved = new.org.devices.rows < rows
            || (0..rows).any(|r| old.org.device_id(r) != new.org.device_id(r));
        if moved {
            tracing::error!(
                "the new directory export removes or reorders devices the waves hold; restart the rollout with a new plan version to use it"
            );
            return Reloaded::Moved;
        }
        let before: Vec<_> = old
            .plan
            .conflicts
            .findings
            .iter()
            .map(|f| f.key())
            .collect();
        let changes = ringmaster_core::conflicts::changes(&before, &new.plan.conflicts);
        let detail = format!(
            "{} device(s), {} policies; conflict findings: {} new, {} gone{}",
            new.org.devices.rows,
            new.org.policies.len(),
            changes.new.len(),
            changes.gone.len(),
            changes
                .new
                .iter()
                .take(5)
                .map(|k| format!("; new: {} ({})", k.setting_id, k.policies.join(" + ")))
                .collect::<String>()
        );
        tracing::info!(target: "ringmaster::import", "sources reloaded: {detail}");
        if leading {
            let entry = ringmaster_store::AuditEntry {
                at: now,
                actor: "ringmaster".into(),
                rollout: s.rollout.clone(),
                action: "sources reloaded".into(),
                detail,
            };
            if let Err(e) = s.store.audit(&entry).await {
                tracing::error!(error = %e, "recording the reload in the audit log");
            }
        }
        s.views.replace(new);
        Reloaded::Replaced
    }

    /// Steps until `stop` resolves, calling `report` after each pass, then
    /// gives the lease up so another server takes over at once. A pass
    /// under way is finished first: the scheduler stops between ticks.
    pub async fn run(
        mut self,
        stop: impl Future<Output = ()> + Send,
        mut report: impl FnMut(&Step) + Send,
    ) {
        let mut stop = std::pin::pin!(stop);
        loop {
            let step = self.step().await;
            report(&step);
            let clock = self.clock.clone();
            tokio::select! {
                biased;
                _ = &mut stop => break,
                _ = clock.sleep(step.nap) => {}
            }
        }
        let (store, lease) = (&self.state.store, &self.lease);
        if let Err(e) = store.release(&lease.name, &lease.holder).await {
            tracing::error!(error = %e, "handing the scheduler lease over");
        }
    }
}
