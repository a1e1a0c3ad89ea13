//! The run-state watch: every few hours after the last wave, the service
//! levels and drift are judged over the whole population, turned into
//! alerts and stored. It keeps each device's state in memory and reads only
//! what was reported since its last check, so a check on a million devices
//! costs the evaluation, not a reread of the store.

use crate::engine::EngineError;
use crate::ingest::Directory;
use ringmaster_core::alerts::{self, Alert, Change, Rule, Signal};
use ringmaster_core::conflicts::ConflictReport;
use ringmaster_core::goals::Goal;
use ringmaster_core::org::Org;
use ringmaster_core::runstate::{RunState, Snapshot, State, evaluate};
use ringmaster_core::wave::WaveState;
use ringmaster_store::{Recorded, Store, WaveRow};
use roaring::RoaringBitmap;
use std::collections::HashMap;

/// Ticket windows compared for a rise.
const TICKET_DAYS: u32 = 7;

/// What a check judges. `generation` changes whenever the organization is
/// reloaded (device rows may then mean other devices).
pub struct Inputs<'a> {
    pub org: &'a Org,
    pub dir: &'a Directory,
    pub generation: u64,
    /// The devices the policies are meant for now.
    pub population: &'a RoaringBitmap,
    /// Devices that entered the scope when their wave started applying.
    pub applied: &'a [(RoaringBitmap, i64)],
    pub levels: &'a [Goal],
    /// How findings alert (the plan's rules).
    pub rules: &'a [Rule],
    pub conflicts: &'a ConflictReport,
    /// Ids of the rolled-out policies.
    pub rolled_out: &'a [String],
    /// When every wave had ended (Unix seconds): only tickets opened since
    /// then can show a rise (while waves run, tickets come with them and
    /// their gates judge them).
    pub settled_at: Option<i64>,
}

/// What one check found.
pub struct Checked {
    pub state: RunState,
    pub changes: Vec<Change>,
    pub open: Vec<Alert>,
}

/// The per-device knowledge a watch keeps between checks.
pub struct Watch {
    rollout: String,
    generation: Option<u64>,
    /// The store's change number read up to: the next check reads the
    /// states changed after it, however late their reports came.
    read_through: Option<u64>,
    policies: HashMap<String, usize>,
    /// Per device row and policy slot (row * stride + slot).
    slot_state: Vec<State>,
    slot_at: Vec<i64>,
    /// Earliest Succeeded report per slot (i64::MIN: one before the
    /// history we read).
    slot_ok: Vec<i64>,
    stride: usize,
    /// Devices recorded as in the scope, with when they entered.
    known: RoaringBitmap,
    entered: Vec<i64>,
}

impl Watch {
    pub fn new(rollout: &str) -> Watch {
        Watch {
            rollout: rollout.to_string(),
            generation: None,
            read_through: None,
            policies: HashMap::new(),
            slot_state: Vec::new(),
            slot_at: Vec::new(),
            slot_ok: Vec::new(),
            stride: 1,
            known: RoaringBitmap::new(),
            entered: Vec::new(),
        }
    }

    /// Forgets what was read (the next check rereads the store).
    fn reset(&mut self, rows: usize) {
        self.read_through = None;
        self.policies.clear();
        self.stride = 1;
        self.slot_state = vec![State::Unreported; rows];
        self.slot_at = vec![i64::MIN; rows];
        self.slot_ok = vec![i64::MAX; rows];
        self.known = RoaringBitmap::new();
        self.entered = vec![i64::MAX; rows];
    }

    /// The slot of a policy, widening every device's slots for a new one.
    fn slot_of(&mut self, policy: &str) -> usize {
        if let Some(&s) = self.policies.get(policy) {
            return s;
        }
        let s = self.policies.len();
        self.policies.insert(policy.to_string(), s);
        if s >= self.stride {
            let (old, new) = (self.stride, self.stride * 2);
            self.slot_state = widen(&self.slot_state, old, new, State::Unreported);
            self.slot_at = widen(&self.slot_at, old, new, i64::MIN);
            self.slot_ok = widen(&self.slot_ok, old, new, i64::MAX);
            self.stride = new;
        }
        s
    }

    /// Reads what was reported since the last check and who entered the scope.
    async fn catch_up(
        &mut self,
        store: &dyn Store,
        inp: &Inputs<'_>,
        now: i64,
    ) -> Result<(), EngineError> {
        let rows = inp.org.devices.rows as usize;
        if self.generation != Some(inp.generation) || self.entered.len() != rows {
            self.reset(rows);
            for (id, at) in store.scope_entries(&self.rollout).await? {
                for d in inp.dir.devices_of(Some(&id), None) {
                    self.known.insert(d);
                    let e = &mut self.entered[d as usize];
                    *e = (*e).min(at.as_second());
                }
            }
            self.generation = Some(inp.generation);
        }
        let (changed, through) = store
            .latest_states(&self.rollout, self.read_through)
            .await?;
        for l in changed {
            let st = State::from(l.state);
            let t = l.reported_at.as_second();
            let slot = self.slot_of(&l.policy);
            for d in inp.dir.devices_of(Some(&l.device), None) {
                let i = d as usize * self.stride + slot;
                // A device may be reported under several ids (the MDM's,
                // Entra's): the latest report for a policy stands.
                if t >= self.slot_at[i] {
                    self.slot_state[i] = st;
                    self.slot_at[i] = t;
                }
                if l.was_succeeded {
                    self.slot_ok[i] = i64::MIN;
                } else if st == State::Succeeded {
                    self.slot_ok[i] = self.slot_ok[i].min(t);
                }
            }
        }
        self.read_through = Some(through);
        // Devices new to the scope are recorded once, with this check's time.
        let new = inp.population - &self.known;
        if !new.is_empty() {
            let ids: Vec<String> = new
                .iter()
                .filter_map(|d| inp.org.device_id(d).map(str::to_string))
                .collect();
            store
                .enter_scope(
                    &self.rollout,
                    &ids,
                    jiff::Timestamp::from_second(now).unwrap_or_default(),
                )
                .await?;
            for d in &new {
                self.entered[d as usize] = self.entered[d as usize].min(now);
            }
            self.known |= new;
        }
        Ok(())
    }

    /// Judges the run state at `now`, reconciles the stored alerts with
    /// what it shows, and stores the result.
    pub async fn check(
        &mut self,
        store: &dyn Store,
        inp: &Inputs<'_>,
        now: jiff::Timestamp,
    ) -> Result<Checked, EngineError> {
        let t = now.as_second();
        self.catch_up(store, inp, t).await?;
        let rows = inp.org.devices.rows as usize;
        // Each device's worst state over the policies, and whether it came
        // after a Succeeded one.
        let mut state = vec![State::Unreported; rows];
        let mut reported_at = vec![i64::MIN; rows];
        let mut was = RoaringBitmap::new();
        let mut entered = self.entered.clone();
        for (members, at) in inp.applied {
            for d in members {
                if let Some(e) = entered.get_mut(d as usize) {
                    *e = (*e).min(*at);
                }
            }
        }
        let k = self.stride;
        for d in inp.population {
            let i = d as usize;
            let mut worst = 0;
            for s in 0..k {
                let j = i * k + s;
                let st = self.slot_state[j];
                if st.rank() > state[i].rank() {
                    state[i] = st;
                    worst = j;
                }
                reported_at[i] = reported_at[i].max(self.slot_at[j]);
            }
            if matches!(state[i], State::Error | State::Conflict)
                && self.slot_ok[worst] < self.slot_at[worst]
            {
                was.insert(d);
            }
        }
        let names = crate::runstate::Breakdowns::of(inp.org);
        let dims = names.dimensions(inp.org);
        let r = evaluate(
            &Snapshot {
                now: t,
                in_scope: inp.population,
                entered: &entered,
                state: &state,
                reported_at: &reported_at,
                was_succeeded: &was,
                dimensions: &dims,
            },
            inp.levels,
            &ringmaster_core::gates::GatePolicy::default(),
        );
        let mut signals = alerts::signals(&r);
        signals.extend(conflict_signals(inp));
        if let Some(since) = inp.settled_at {
            // Both windows start no earlier than the end of the last wave.
            let since = jiff::Timestamp::from_second(since).unwrap_or_default();
            let week = jiff::SignedDuration::from_hours(24 * i64::from(TICKET_DAYS));
            let mid = (now - week).max(since);
            let recent = store.count_tickets(&self.rollout, mid, now).await?;
            let before = store
                .count_tickets(&self.rollout, (now - week - week).max(since), mid)
                .await?;
            signals.extend(alerts::ticket_rise(recent, before, TICKET_DAYS));
        }
        // The engine's own alerts (a tenant's approval, a held stratum)
        // are not the run state's to resolve.
        let open: Vec<_> = store
            .alerts(&self.rollout, true)
            .await?
            .into_iter()
            .filter(|a| a.kind != "tenant_approval" && a.kind != crate::engine::STRATUM_HELD)
            .collect();
        let (next, changes) = alerts::reconcile(&open, &signals, inp.rules, t);
        let mut save = next.clone();
        save.extend(changes.iter().filter_map(|c| match c {
            Change::Resolved(a) => Some(a.clone()),
            Change::Raised(_) => None,
        }));
        store.save_alerts(&self.rollout, &save).await?;
        store
            .record_runstate(&self.rollout, now, &sample(&r, &next).to_string())
            .await?;
        Ok(Checked {
            state: r,
            changes,
            open: next,
        })
    }
}

/// Rows of `old` values each, widened to `new` with `fill`.
fn widen<T: Copy>(v: &[T], old: usize, new: usize, fill: T) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len() / old * new);
    for row in v.chunks(old) {
        out.extend_from_slice(row);
        out.extend(std::iter::repeat_n(fill, new - old));
    }
    out
}

impl Watch {
    /// One check of a plan's rollout as the store holds it (`rows`: its
    /// waves): the plan's service levels, alert rules and conflicts over
    /// the population its waves reached. Raised and resolved alerts are
    /// written to the audit log. None while no wave has applied.
    #[allow(clippy::too_many_arguments)]
    pub async fn check_plan(
        &mut self,
        store: &dyn Store,
        rows: &[WaveRow],
        plan: &ringmaster_plan::planner::Plan,
        org: &Org,
        dir: &Directory,
        generation: u64,
        now: jiff::Timestamp,
    ) -> Result<Option<Checked>, EngineError> {
        let history = store.history(&self.rollout).await?;
        let Some(mut pop) = population(&plan.scope.set, rows, &history) else {
            return Ok(None);
        };
        let held =
            crate::runstate::held_back(store, &self.rollout, rows, &history, plan, org).await?;
        if !held.is_empty() {
            pop.devices -= &held;
            for (set, _) in &mut pop.applied {
                *set -= &held;
            }
        }
        let levels = crate::runstate::levels(plan);
        let rolled_out = crate::runstate::rolled_out(plan);
        let checked = self
            .check(
                store,
                &Inputs {
                    org,
                    dir,
                    generation,
                    population: &pop.devices,
                    applied: &pop.applied,
                    levels: &levels,
                    rules: &plan.alerts,
                    conflicts: &plan.conflicts,
                    rolled_out: &rolled_out,
                    settled_at: pop.settled_at,
                },
                now,
            )
            .await?;
        for c in &checked.changes {
            let (action, a) = match c {
                Change::Raised(a) => ("alert raised", a),
                Change::Resolved(a) => ("alert resolved", a),
            };
            store
                .audit(&ringmaster_store::AuditEntry {
                    at: now,
                    actor: "ringmaster".into(),
                    rollout: self.rollout.clone(),
                    action: action.into(),
                    detail: format!("{}: {}", a.key, a.text),
                })
                .await?;
        }
        Ok(Some(checked))
    }
}

/// Unaccepted conflicts that involve a rolled-out policy, on devices the
/// policies are meant for.
fn conflict_signals(inp: &Inputs<'_>) -> Vec<Signal> {
    inp.conflicts
        .findings
        .iter()
        .filter(|f| f.blocking())
        .filter(|f| {
            f.values
                .iter()
                .any(|v| inp.rolled_out.contains(&v.policy_id))
        })
        .filter_map(|f| {
            let n = f.affected.intersection_len(inp.population);
            (n > 0).then(|| alerts::conflict_signal(f, n))
        })
        .collect()
}

/// What a check keeps for the charts: the counts, each service level's
/// value, the drift found and the alerts open.
fn sample(r: &RunState, open: &[Alert]) -> serde_json::Value {
    serde_json::json!({
        "devices": r.devices, "succeeded": r.succeeded, "errors": r.errors,
        "conflicts": r.conflicts, "pending": r.pending, "unreported": r.unreported,
        "levels": r.service_levels.iter().map(|e| serde_json::json!({
            "metric": e.metric.name(), "value": e.value, "outcome": e.outcome,
        })).collect::<Vec<_>>(),
        "regressed": r.regressed.len(), "overdue": r.overdue.len(),
        "outliers": r.outliers.len(),
        "alerts": open.iter().filter(|a| a.raised_at.is_some()).count(),
    })
}

/// Who the run state watches, from the stored rollout.
pub struct Population {
    pub devices: RoaringBitmap,
    /// Each started wave's devices, with when it started applying.
    pub applied: Vec<(RoaringBitmap, i64)>,
    /// When every wave had ended, one having passed.
    pub settled_at: Option<i64>,
}

/// The devices of every wave that started applying (they entered the
/// scope then) and, once every wave has ended and one passed, the whole
/// scope the plan names now (devices that joined the targeted groups
/// since). None while nothing applied.
pub fn population(
    scope: &RoaringBitmap,
    rows: &[WaveRow],
    history: &[Recorded],
) -> Option<Population> {
    let mut devices = RoaringBitmap::new();
    let mut applied = Vec::new();
    for r in rows {
        if let Some(h) = history
            .iter()
            .find(|h| h.key == r.key && h.to == WaveState::Applying)
        {
            devices |= &r.members;
            applied.push((r.members.clone(), h.at.as_second()));
        }
    }
    if applied.is_empty() {
        return None;
    }
    let settled = rows.iter().all(|r| r.state.is_final())
        && rows.iter().any(|r| r.state == WaveState::Passed);
    let settled_at = settled.then(|| {
        history
            .iter()
            .filter(|h| rows.iter().any(|r| r.key == h.key))
            .map(|h| h.at.as_second())
            .max()
            .unwrap_or(i64::MIN)
    });
    if settled {
        devices |= scope;
    }
    Some(Population {
        devices,
        applied,
        settled_at,
    })
}
