//! The run-state watch as the scheduler runs it: every few simulated (or
//! real) hours the leader judges the run state over the current view and
//! stores the alerts; the notifications follow from the stored alerts.

use crate::AppState;
use ringmaster_core::alerts::Change;
use ringmaster_engine::watch::Watch;

/// How often the run state is judged: half a device check-in.
pub const EVERY_HOURS: i64 = 4;

pub struct Watcher {
    watch: Watch,
    last: Option<jiff::Timestamp>,
}

impl Watcher {
    pub fn new(rollout: &str) -> Watcher {
        Watcher {
            watch: Watch::new(rollout),
            last: None,
        }
    }

    /// Judges the run state when a check is due; the alerts raised and
    /// resolved are logged and stored (the outbox picks them up).
    pub async fn run(
        &mut self,
        s: &AppState,
    ) -> Result<Vec<Change>, ringmaster_engine::engine::EngineError> {
        let now = (s.clock)();
        if self
            .last
            .is_some_and(|l| now < l + jiff::SignedDuration::from_hours(EVERY_HOURS))
        {
            return Ok(Vec::new());
        }
        let rows = s.engine.rows().await?;
        let (view, generation) = s.views.current();
        let Some(checked) = self
            .watch
            .check_plan(
                s.store.as_ref(),
                &rows,
                &view.plan,
                &view.org,
                &view.directory,
                generation,
                now,
            )
            .await?
        else {
            return Ok(Vec::new());
        };
        self.last = Some(now);
        for c in &checked.changes {
            match c {
                Change::Raised(a) => {
                    tracing::warn!(target: "ringmaster::runstate", key = %a.key, severity = a.severity.name(), "alert raised: {}", a.text);
                }
                Change::Resolved(a) => {
                    tracing::info!(target: "ringmaster::runstate", key = %a.key, "alert resolved: its signal is gone");
                }
            }
        }
        Ok(checked.changes)
    }
}
