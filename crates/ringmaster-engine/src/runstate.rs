//! The run state as stored: each device's worst state over the rolled-out
//! policies (whichever ids the reports use), when it entered the scope, and
//! the organization's breakdowns, judged by [`ringmaster_core::runstate`].
//! The CLI (`status --run-state`) and the dashboard read the same.

use crate::engine::EngineError;
use crate::ingest::Directory;
use ringmaster_core::model::DeviceAttr;
use ringmaster_core::org::Org;
use ringmaster_core::runstate::{Dimension, RunState, Snapshot, State, evaluate};
use ringmaster_core::wave::WaveState;
use ringmaster_plan::planner::Plan;
use ringmaster_store::{Store, WaveRow};

/// Judges the run state of `rollout` at `now` from the stored reports.
pub async fn assess(
    store: &dyn Store,
    rollout: &str,
    rows: &[WaveRow],
    plan: &Plan,
    org: &Org,
    dir: &Directory,
    now: jiff::Timestamp,
) -> Result<RunState, EngineError> {
    let n = org.devices.rows as usize;
    // A device entered the scope when its wave started applying.
    let history = store.history(rollout).await?;
    let mut entered = vec![now.as_second(); n];
    for r in rows {
        if let Some(h) = history
            .iter()
            .find(|h| h.key == r.key && h.to == WaveState::Applying)
        {
            for d in &r.members {
                if let Some(e) = entered.get_mut(d as usize) {
                    *e = h.at.as_second();
                }
            }
        }
    }
    // The worst state of each device over the rolled-out policies.
    let mut state = vec![State::Unreported; n];
    let mut reported_at = vec![i64::MIN; n];
    let mut was = roaring::RoaringBitmap::new();
    // A device may be reported under several ids (the MDM's, Entra's):
    // it regressed when its worst state came after a Succeeded one.
    let mut ok_at = vec![i64::MAX; n];
    let mut bad_at = vec![i64::MIN; n];
    for l in store.latest_states(rollout, None).await?.0 {
        let st = State::from(l.state);
        let t = l.reported_at.as_second();
        for d in dir.devices_of(Some(&l.device), None) {
            let i = d as usize;
            if st.rank() > state[i].rank() {
                state[i] = st;
                bad_at[i] = t;
            }
            reported_at[i] = reported_at[i].max(t);
            if l.was_succeeded {
                ok_at[i] = i64::MIN;
            } else if st == State::Succeeded {
                ok_at[i] = ok_at[i].min(t);
            }
        }
    }
    for i in 0..n {
        if matches!(state[i], State::Error | State::Conflict) && ok_at[i] < bad_at[i] {
            was.insert(i as u32);
        }
    }
    let names = Breakdowns::of(org);
    let dims = names.dimensions(org);
    let levels = levels(plan);
    let kept = held_back(store, rollout, rows, &history, plan, org).await?;
    let in_scope = if kept.is_empty() {
        std::borrow::Cow::Borrowed(&plan.scope.set)
    } else {
        std::borrow::Cow::Owned(&plan.scope.set - &kept)
    };
    Ok(evaluate(
        &Snapshot {
            now: now.as_second(),
            in_scope: &in_scope,
            entered: &entered,
            state: &state,
            reported_at: &reported_at,
            was_succeeded: &was,
            dimensions: &dims,
        },
        &levels,
        &ringmaster_core::gates::GatePolicy::default(),
    ))
}

/// The devices holds keep from carrying the policy: a held stratum's
/// devices in later waves (`strata::left_out`) and those taken out of
/// their own wave (`rollback`). The run state neither expects nor judges
/// them; devices kept back with `pause` still carry it and are judged.
pub(crate) async fn held_back(
    store: &dyn Store,
    rollout: &str,
    rows: &[WaveRow],
    history: &[ringmaster_store::Recorded],
    plan: &Plan,
    org: &Org,
) -> Result<roaring::RoaringBitmap, EngineError> {
    let mut out = roaring::RoaringBitmap::new();
    let holds = store.held_strata(rollout).await?;
    if holds.is_empty() {
        return Ok(out);
    }
    let dims = plan.strata_dimensions();
    for r in rows {
        let started = history
            .iter()
            .find(|h| h.key == r.key && h.to == WaveState::Applying)
            .map(|h| h.at);
        let named = ringmaster_core::strata::named(org, &dims, &r.members);
        for h in holds
            .iter()
            .filter(|h| h.key == r.key && h.removed_at.is_some())
        {
            out |= &h.devices;
        }
        let earlier = holds
            .iter()
            .filter(|h| h.key.version == r.key.version && h.key.idx < r.key.idx)
            .map(|h| ringmaster_core::strata::Hold {
                wave: h.key.idx,
                stratum: &h.stratum,
                devices: &h.devices,
                held_at: h.held_at,
                released: h.released_at,
            });
        out |= &ringmaster_core::strata::left_out(earlier, r.key.idx, started, &named) & &r.members;
    }
    Ok(out)
}

/// The breakdowns the run state looks for outliers in, with their value
/// names (owned, so the [`Dimension`]s can borrow them).
pub struct Breakdowns([(&'static str, DeviceAttr, Vec<String>); 3]);

impl Breakdowns {
    pub fn of(org: &Org) -> Breakdowns {
        let names = |a: DeviceAttr| -> Vec<String> {
            let c = &org.devices.cols[a.index()];
            (0..c.dict.len() as u32)
                .map(|v| c.dict.value(v).unwrap_or("unknown").to_string())
                .collect()
        };
        Breakdowns([
            (
                "platform",
                DeviceAttr::Platform,
                names(DeviceAttr::Platform),
            ),
            (
                "OS build",
                DeviceAttr::OsVersion,
                names(DeviceAttr::OsVersion),
            ),
            ("model", DeviceAttr::Model, names(DeviceAttr::Model)),
        ])
    }

    pub fn dimensions<'a>(&'a self, org: &'a Org) -> Vec<Dimension<'a>> {
        self.0
            .iter()
            .map(|(name, a, values)| Dimension {
                name,
                value_of: org.devices.cols[a.index()].view(),
                values,
            })
            .collect()
    }
}

/// The service levels the plan's run-state phase declares, or the defaults.
pub fn levels(plan: &Plan) -> Vec<ringmaster_core::goals::Goal> {
    let levels: Vec<ringmaster_core::goals::Goal> = plan
        .phases
        .iter()
        .filter(|p| p.kind == ringmaster_plan::spec::PhaseKind::RunState)
        .flat_map(|p| p.goals.clone())
        .collect();
    if levels.is_empty() {
        default_levels()
    } else {
        levels
    }
}

/// Ids of the policies the plan rolls out.
pub fn rolled_out(plan: &Plan) -> Vec<String> {
    plan.scope
        .new_policies
        .iter()
        .map(|p| p.id.clone())
        .collect()
}

/// Service levels when the plan's run state names none: Succeeded on 95 %
/// within 5 days of entering the scope, errors at most 1 %, no conflicts.
pub fn default_levels() -> Vec<ringmaster_core::goals::Goal> {
    use ringmaster_core::goals::{GoalDraft, validate};
    [
        ("apply_success_rate", ">= 95%"),
        ("error_rate", "<= 1%"),
        ("conflict_count", "<= 0"),
    ]
    .into_iter()
    .filter_map(|(metric, threshold)| {
        validate(
            &GoalDraft {
                metric: Some(metric),
                threshold: Some(threshold),
                window: Some("5d"),
                min_sample: Some(20),
                deadline: Some("30d"),
                after: None,
                critical: true,
            },
            8.0,
            None,
        )
        .ok()
    })
    .collect()
}
