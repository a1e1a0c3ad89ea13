//! One rollout driven from the store. A tick polls what devices reported,
//! carries out recorded effects, and moves each wave as far as it can go.
//! Everything it decides is in the store before anything acts on it, so a
//! tick can be cut short anywhere and the next one carries on.

use crate::connector::{ApprovalRequest, ApprovalStatus, Approvals, Assigned, Connector};
use ringmaster_core::approvals::{self, ApprovalRule, Outcome, Tally};
use ringmaster_core::gates::{self, FailureCount, GatePolicy, GateResult, GateRound, Observed};
use ringmaster_core::goals::{Goal, Metric};
use ringmaster_core::org::Org;
use ringmaster_core::strata::{self, Stratify, Tally as StratumTally};
use ringmaster_core::wave::{Effect, Event, GateDecision, OnFail, Reason, Rules, WaveState, step};
use ringmaster_plan::planner::Plan;
use ringmaster_plan::spec::{OnFailSpec, PhaseKind};
use ringmaster_store::{
    Action, HeldStratum, StateCounts, Store, StoreError, TenantApproval, WaveKey, WaveRow,
};
use roaring::RoaringBitmap;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the plan has no waves to run")]
    NoWaves,
}

/// What the engine needs to know of each wave, from the plan.
#[derive(Debug, Clone)]
pub struct WaveSpec {
    pub name: String,
    pub phase: PhaseKind,
    pub members: RoaringBitmap,
    pub starts_at: jiff::Timestamp,
    pub bake_hours: f64,
    pub rules: Rules,
    pub goals: Vec<Goal>,
    pub policy: GatePolicy,
    /// What the new policies set (setting and value): a changed policy is a
    /// new plan version even when the plan file is the same.
    pub settings: Vec<(String, String)>,
    /// Members Intune manages, per the organization the plan was made on
    /// (`enrollment_completion`).
    pub enrolled: u64,
    /// Who must approve the wave before it opens (when `rules.approval`).
    pub approvals: ApprovalRule,
    /// The phase judges per stratum too (`strata` in the plan).
    pub strata: Option<WaveStrata>,
    /// The members by stratum name on every dimension the plan's phases
    /// judge by (`strata::named`): a stratum held in an earlier wave is
    /// left out of this one too.
    pub named: Vec<(String, RoaringBitmap)>,
}

/// A wave's members by stratum, from the organization the plan was made on.
#[derive(Debug, Clone)]
pub struct WaveStrata {
    pub by: Stratify,
    /// Stratum names by code: `model Latitude 7440`.
    pub names: Vec<String>,
    /// Member row → stratum code.
    pub codes: HashMap<u32, u32>,
    /// Every id a report may name a member by (lowercased) → its row.
    pub rows: HashMap<String, u32>,
}

impl WaveStrata {
    pub fn new(org: &Org, by: Stratify, members: &RoaringBitmap) -> WaveStrata {
        use ringmaster_core::model::DeviceAttr;
        let rows: Vec<u32> = members.iter().collect();
        let (codes, names) = ringmaster_core::pilot::strata(org, by.dimension, &rows);
        let mut ids = HashMap::new();
        for &d in &rows {
            // The ids the ingest's directory knows a device by.
            for a in [
                DeviceAttr::EntraObjectId,
                DeviceAttr::ManagedId,
                DeviceAttr::DeviceId,
                DeviceAttr::Name,
            ] {
                if let Some(k) = org.device(a, d) {
                    ids.entry(k.to_lowercase()).or_insert(d);
                }
            }
        }
        WaveStrata {
            by,
            names: names
                .iter()
                .map(|n| strata::name(by.dimension, n))
                .collect(),
            codes: rows.into_iter().zip(codes).collect(),
            rows: ids,
        }
    }
}

impl WaveSpec {
    /// The waves of a computed plan, with their phase's goals and rules;
    /// `org` is the organization the plan was made on (strata).
    pub fn from_plan(plan: &Plan, org: &Org) -> Vec<WaveSpec> {
        let dims = plan.strata_dimensions();
        plan.waves
            .iter()
            .map(|w| {
                let phase = plan.phases.iter().find(|p| p.kind == w.phase);
                WaveSpec {
                    name: w.name.clone(),
                    phase: w.phase,
                    members: w.set.clone(),
                    starts_at: w.start.timestamp(),
                    bake_hours: w.bake_hours,
                    rules: Rules {
                        approval: w.approval,
                        promotion: phase.is_some_and(|p| p.promotion),
                        on_fail: match phase.map(|p| p.on_fail) {
                            Some(OnFailSpec::Rollback) => OnFail::Rollback,
                            _ => OnFail::Pause,
                        },
                        isolated: w.mode == Some("isolated"),
                    },
                    goals: phase.map(|p| p.goals.clone()).unwrap_or_default(),
                    policy: phase.map(|p| p.gate_policy).unwrap_or_default(),
                    settings: plan
                        .changes
                        .iter()
                        .map(|c| (c.setting_id.clone(), c.value.clone()))
                        .collect(),
                    enrolled: w.enrolled,
                    approvals: if w.approval {
                        ApprovalRule {
                            required: phase.map_or(1, |p| p.approvers),
                            distinct: plan.distinct_approvers,
                        }
                    } else {
                        ApprovalRule::default()
                    },
                    strata: phase
                        .and_then(|p| p.strata)
                        .map(|by| WaveStrata::new(org, by, &w.set)),
                    named: strata::named(org, &dims, &w.set),
                }
            })
            .collect()
    }
}

/// What an approval did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// The rule is met: the wave opened (the transition, as `operate` says it).
    Opened(String),
    /// Kept; the wave waits for more (the answer says what is missing).
    Recorded(String),
    /// Not allowed: the requester under a two-person rule, or no name.
    Forbidden(String),
    /// Nothing changed: approved by this person already, no such wave, or
    /// the wave does not await approval.
    Refused(String),
}

/// Who requested a wave and who approved it.
#[derive(Debug, Clone)]
pub struct WaveApprovals {
    pub rule: ApprovalRule,
    pub requester: Option<String>,
    /// Oldest first.
    pub given: Vec<ringmaster_store::Approval>,
    pub tally: Tally,
}

/// The audit detail of an approval: the tally, who requested, who approved.
fn describe(t: &Tally, requester: Option<&str>, before: &[String], who: &str) -> String {
    let mut all: Vec<&str> = before.iter().map(String::as_str).collect();
    all.push(who);
    format!(
        "{t}; requested by {}; approved by {}",
        requester.unwrap_or("(not recorded)"),
        all.join(", ")
    )
}

/// What one tick did.
#[derive(Debug, Clone, Default)]
pub struct Tick {
    pub transitions: Vec<String>,
    pub statuses: u64,
    pub tickets: u64,
    pub feedback: u64,
    pub actions: u64,
    /// Actions the connector refused this tick, with its words (retried
    /// next tick): `wave 1 assign: Intune: …`.
    pub failed: Vec<String>,
    /// Writes waiting for the tenant's approval, and what became of them:
    /// `wave 1 assign: approval requested for policy …`.
    pub approvals: Vec<String>,
    /// Strata held this tick, with their evidence.
    pub held: Vec<String>,
}

/// What the tenant's approvals of an action's writes allow this tick.
enum ApprovalGate {
    /// Write, resending approved writes with their request ids.
    Write(Approvals),
    /// A request is still pending: nothing is sent.
    Wait,
    /// A request was rejected, cancelled or expired: the wave is held.
    Refused(ApprovalRequest),
}

/// Warn when a pending request expires within this.
const EXPIRY_WARNING_HOURS: i64 = 24;

/// What a wave waits for from the tenant, in words (None: nothing).
/// `approvals` are the rollout's; only the wave's unretired ones count.
pub fn approval_note(approvals: &[TenantApproval], key: &WaveKey) -> Option<String> {
    let mine: Vec<&TenantApproval> = approvals
        .iter()
        .filter(|a| !a.retired && a.key == *key)
        .collect();
    if let Some(r) = mine.iter().map(|a| &a.request).find(|r| r.status.refused()) {
        return Some(format!(
            "held: the tenant's approval of policy {} was {} ({}); resume the wave to ask again",
            r.object,
            r.status.as_str(),
            r.reason.as_deref().unwrap_or("no reason given")
        ));
    }
    let pending: Vec<&ApprovalRequest> = mine
        .iter()
        .map(|a| &a.request)
        .filter(|r| r.status == ApprovalStatus::NeedsApproval)
        .collect();
    let since = pending.iter().map(|r| r.requested).min()?;
    let expires = pending.iter().map(|r| r.expires).min()?;
    let objects: Vec<&str> = pending.iter().map(|r| r.object.as_str()).collect();
    Some(format!(
        "waiting for tenant approval since {since}, expires {expires} (policy {})",
        objects.join(", ")
    ))
}

fn effect_name(e: Effect) -> &'static str {
    match e {
        Effect::Assign => "assign",
        Effect::Unassign => "unassign",
        Effect::Isolate => "isolate",
        Effect::EndIsolation => "end isolation",
        _ => "act",
    }
}

pub struct Engine {
    store: Arc<dyn Store>,
    connector: Arc<dyn Connector>,
    rollout: String,
    version: u32,
    waves: Vec<WaveSpec>,
    /// Hours between gate evaluations of a baking wave.
    pub check_every_hours: f64,
    /// Who the transitions are recorded as.
    pub actor: String,
}

const POLLED: &str = "polled_until";

/// The kind of a held stratum's alert.
pub const STRATUM_HELD: &str = "stratum_held";

fn held_alert_key(key: &WaveKey, stratum: &str) -> String {
    format!("{STRATUM_HELD}:{}:{}:{stratum}", key.version, key.idx + 1)
}

/// The devices `holds` keep out of wave `idx`, whose members by stratum
/// are `named` (`strata::left_out`).
fn left_out<'a>(
    holds: impl IntoIterator<Item = &'a HeldStratum>,
    idx: u32,
    started: Option<jiff::Timestamp>,
    named: &[(String, RoaringBitmap)],
) -> RoaringBitmap {
    strata::left_out(
        holds.into_iter().map(|h| strata::Hold {
            wave: h.key.idx,
            stratum: &h.stratum,
            devices: &h.devices,
            held_at: h.held_at,
            released: h.released_at,
        }),
        idx,
        started,
        named,
    )
}

impl Engine {
    /// Stores the plan as the rollout's current version (the same text is the
    /// same version, so a restart resumes it) and returns its driver.
    pub async fn start(
        store: Arc<dyn Store>,
        connector: Arc<dyn Connector>,
        rollout: &str,
        plan_text: &str,
        waves: Vec<WaveSpec>,
        at: jiff::Timestamp,
    ) -> Result<Engine, EngineError> {
        if waves.is_empty() {
            return Err(EngineError::NoWaves);
        }
        let new: Vec<ringmaster_store::NewWave> = waves
            .iter()
            .map(|w| ringmaster_store::NewWave {
                name: w.name.clone(),
                phase: format!("{:?}", w.phase),
                members: w.members.clone(),
                starts_at: w.starts_at,
            })
            .collect();
        // What may not change in place: every wave's name, devices, rules,
        // bake time and goals, and what the new policies set. Dates and
        // wording may.
        let identity = serde_json::to_string(
            &waves
                .iter()
                .map(|w| {
                    let mut members = Vec::new();
                    let _ = w.members.serialize_into(&mut members);
                    let mut id = serde_json::json!({
                        "name": w.name, "phase": format!("{:?}", w.phase), "members": members,
                        "rules": w.rules, "bake": w.bake_hours, "goals": w.goals, "policy": w.policy,
                        "settings": w.settings,
                    });
                    // Only a two-person rule joins the identity, so plans
                    // without one keep the version they had.
                    if !w.approvals.is_single() {
                        id["approvals"] = serde_json::json!(w.approvals);
                    }
                    if let Some(st) = &w.strata {
                        id["strata"] = serde_json::json!(st.by);
                    }
                    id
                })
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        let started = store
            .start_version(rollout, &identity, plan_text, &new, at)
            .await?;
        let version = started.version;
        if let Some(prev) = started.previous {
            // The edited plan replaces the old one: what still ran there is
            // superseded; waves that passed there on the same devices count.
            let old = store.waves(rollout, prev).await?;
            let fresh = store.waves(rollout, version).await?;
            for row in old.iter().filter(|r| !r.state.is_final()) {
                if let Ok(t) = step(row.state, &Event::Supersede, &Rules::default()) {
                    store
                        .commit(&row.key, row.seq, &Event::Supersede, &t, "ringmaster", at)
                        .await?;
                }
            }
            for row in &fresh {
                let passed = old.iter().any(|o| {
                    o.state == WaveState::Passed && o.name == row.name && o.members == row.members
                });
                if passed && let Ok(t) = step(row.state, &Event::CarriedOver, &Rules::default()) {
                    store
                        .commit(&row.key, row.seq, &Event::CarriedOver, &t, "ringmaster", at)
                        .await?;
                }
            }
        }
        // A resumed version runs on the members and times stored when it
        // started, not on a recomputation (the directory may have moved).
        let mut waves = waves;
        for row in store.waves(rollout, version).await? {
            if let Some(w) = waves.get_mut(row.key.idx as usize) {
                w.members = row.members;
                w.starts_at = row.starts_at;
            }
        }
        Ok(Engine {
            store,
            connector,
            rollout: rollout.to_string(),
            version,
            waves,
            check_every_hours: 4.0,
            actor: "ringmaster".into(),
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn waves(&self) -> &[WaveSpec] {
        &self.waves
    }

    pub async fn rows(&self) -> Result<Vec<WaveRow>, EngineError> {
        Ok(self.store.waves(&self.rollout, self.version).await?)
    }

    /// Every wave is passed, failed, rolled back or superseded.
    pub async fn finished(&self) -> Result<bool, EngineError> {
        Ok(self.rows().await?.iter().all(|r| r.state.is_final()))
    }

    /// The simulated or real time the rollout was last polled up to.
    pub async fn polled_until(&self) -> Result<Option<jiff::Timestamp>, EngineError> {
        Self::polled_until_of(self.store.as_ref(), &self.rollout).await
    }

    /// The same, before an engine is started (a resumed rollout's own time).
    pub async fn polled_until_of(
        store: &dyn Store,
        rollout: &str,
    ) -> Result<Option<jiff::Timestamp>, EngineError> {
        Ok(store
            .get_meta(rollout, POLLED)
            .await?
            .and_then(|s| s.parse().ok()))
    }

    fn key(&self, idx: u32) -> WaveKey {
        WaveKey {
            rollout: self.rollout.clone(),
            version: self.version,
            idx,
        }
    }

    /// The actual state: which wave groups are assigned, since when.
    async fn assigned(&self) -> Result<Vec<Assigned>, EngineError> {
        let mut out: Vec<Assigned> = Vec::new();
        let holds = self.holds().await?;
        let history = self.store.history(&self.rollout).await?;
        for (a, at) in self.store.done_actions(&self.rollout).await? {
            if a.key.version != self.version {
                continue;
            }
            let idx = a.key.idx;
            match a.effect {
                Effect::Assign => {
                    if let Some(w) = self.waves.get(idx as usize) {
                        let started = self.started(&history, idx as usize);
                        // Held strata of earlier waves were never in; this
                        // wave's own left when the connector took them out.
                        let earlier: Vec<&HeldStratum> =
                            holds.iter().filter(|h| h.key.idx != idx).collect();
                        out.push(Assigned {
                            wave: idx,
                            members: &w.members - &left_out(earlier, idx, started, &w.named),
                            since: at,
                            until: None,
                            pilot: w.phase == PhaseKind::Pilot,
                            left: holds
                                .iter()
                                .filter(|h| h.key.idx == idx)
                                .filter_map(|h| h.removed_at.map(|t| (h.devices.clone(), t)))
                                .collect(),
                        });
                    }
                }
                Effect::Unassign => {
                    for x in out
                        .iter_mut()
                        .filter(|x| x.wave == idx && x.until.is_none())
                    {
                        x.until = Some(at);
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Carries out recorded effects; a failure is recorded, reported and
    /// retried next tick. A write the tenant holds for approval waits (its
    /// request is polled each tick) and is resent once approved; a refused
    /// one holds the wave. Returns how many were done, what failed, and
    /// what happened with approvals.
    async fn act(
        &self,
        now: jiff::Timestamp,
    ) -> Result<(u64, Vec<String>, Vec<String>), EngineError> {
        let mut done = 0;
        let mut failed = Vec::new();
        let mut notes = Vec::new();
        for a in self.store.pending_actions(&self.rollout).await? {
            if a.key.version != self.version {
                continue;
            }
            let idx = a.key.idx;
            let what = effect_name(a.effect);
            let writes = matches!(
                a.effect,
                Effect::Assign | Effect::Unassign | Effect::Isolate | Effect::EndIsolation
            );
            let approvals = if writes {
                match self.approval_gate(&a, now, &mut notes).await? {
                    ApprovalGate::Write(ap) => ap,
                    ApprovalGate::Wait => continue,
                    ApprovalGate::Refused(r) => {
                        self.hold_refused(&a, &r, now, &mut notes).await?;
                        continue;
                    }
                }
            } else {
                Approvals::default()
            };
            let members = match self.waves.get(idx as usize) {
                Some(w) => Some(&w.members - &self.left_out_of(idx).await?),
                None => None,
            };
            let r = match (a.effect, members.as_ref()) {
                (Effect::Assign, Some(m)) => self.connector.assign(idx, m, &approvals).await,
                (Effect::Unassign, _) => self.connector.unassign(idx, &approvals).await,
                (Effect::Isolate, _) => self.connector.isolate(idx, &approvals).await,
                (Effect::EndIsolation, _) => self.connector.end_isolation(idx, &approvals).await,
                // Releasing the next wave and alerting are the engine's own.
                _ => Ok(()),
            };
            match r {
                Ok(()) => {
                    // The approved writes went out: their requests are used up.
                    for mut t in self.approvals_of(&a).await? {
                        if t.request.status == ApprovalStatus::Approved {
                            t.request.status = ApprovalStatus::Completed;
                            self.store.save_approval(&t).await?;
                        }
                    }
                    self.store.finish_action(&a, None, now).await?;
                    done += 1;
                }
                // Requests made: kept before anything else, so a restart
                // polls them instead of asking again.
                Err(e) if !e.requested.is_empty() => {
                    for r in &e.requested {
                        self.store
                            .save_approval(&TenantApproval {
                                key: a.key.clone(),
                                seq: a.seq,
                                pos: a.pos,
                                request: r.clone(),
                                retired: false,
                            })
                            .await?;
                        notes.push(format!(
                            "wave {} {what}: tenant approval requested for policy {} (request {}, expires {})",
                            idx + 1,
                            r.object,
                            r.id,
                            r.expires
                        ));
                    }
                    self.audit(
                        now,
                        &self.actor,
                        format!("wave {}: tenant approval requested", idx + 1),
                        e.requested
                            .iter()
                            .map(|r| format!("policy {} (request {})", r.object, r.id))
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
                    .await?;
                }
                Err(e) => {
                    let text = e.to_string();
                    failed.push(format!("wave {} {what}: {text}", idx + 1));
                    self.store.finish_action(&a, Some(&text), now).await?
                }
            }
        }
        let (removed, refused) = self.remove_held(now).await?;
        done += removed;
        failed.extend(refused);
        Ok((done, failed, notes))
    }

    /// This version's held strata, oldest first.
    pub async fn holds(&self) -> Result<Vec<HeldStratum>, EngineError> {
        Ok(self
            .store
            .held_strata(&self.rollout)
            .await?
            .into_iter()
            .filter(|h| h.key.version == self.version)
            .collect())
    }

    /// The devices holds keep out of wave `idx` now.
    async fn left_out_of(&self, idx: u32) -> Result<RoaringBitmap, EngineError> {
        let history = self.store.history(&self.rollout).await?;
        let holds = self.holds().await?;
        Ok(left_out(
            holds.iter(),
            idx,
            self.started(&history, idx as usize),
            &self.waves[idx as usize].named,
        ))
    }

    /// Takes held strata out of their wave's group (`on_fail = "rollback"`)
    /// by putting the group's remaining members in it; each is marked once
    /// done, so a crash in between repeats an idempotent write. A wave
    /// rolled back whole has no group to take them from.
    async fn remove_held(&self, now: jiff::Timestamp) -> Result<(u64, Vec<String>), EngineError> {
        let holds = self.holds().await?;
        let todo: Vec<&HeldStratum> = holds
            .iter()
            .filter(|h| h.rollback && h.removed_at.is_none())
            .collect();
        if todo.is_empty() {
            return Ok((0, Vec::new()));
        }
        let rows = self.rows().await?;
        let (mut done, mut failed) = (0, Vec::new());
        for h in todo {
            let idx = h.key.idx;
            let gone = rows.get(idx as usize).is_none_or(|r| {
                matches!(
                    r.state,
                    WaveState::RollingBack | WaveState::RolledBack | WaveState::Superseded
                )
            });
            if !gone {
                let keep = &self.waves[idx as usize].members - &self.left_out_of(idx).await?;
                let approvals = Approvals {
                    justification: format!(
                        "ringmaster rollout {} (plan version {}), wave {} '{}': {} held by its gates; {} device(s) leave the wave",
                        self.rollout,
                        self.version,
                        idx + 1,
                        self.waves[idx as usize].name,
                        h.stratum,
                        h.devices.len()
                    ),
                    approved: HashMap::new(),
                };
                if let Err(e) = self.connector.assign(idx, &keep, &approvals).await {
                    failed.push(format!("wave {} remove {}: {e}", idx + 1, h.stratum));
                    continue;
                }
                done += 1;
            }
            self.store.hold_removed(&h.key, &h.stratum, now).await?;
        }
        Ok((done, failed))
    }

    /// Judges wave `idx`'s strata on what its members reported since
    /// `started`, records the strata held this round (once, with their
    /// evidence, an audit entry and an alert), and returns the counts of
    /// the devices left out of the wave's verdict with how many they are.
    async fn judge_strata(
        &self,
        idx: u32,
        st: &WaveStrata,
        started: jiff::Timestamp,
        base: &Observed,
        now: jiff::Timestamp,
    ) -> Result<(StateCounts, u64), EngineError> {
        let spec = &self.waves[idx as usize];
        let key = self.key(idx);
        // Holds made at this very moment belong to a round cut short by a
        // crash: it is judged again as it was, and holds nothing twice.
        let holds = self.holds().await?;
        let before: Vec<&HeldStratum> = holds
            .iter()
            .filter(|h| h.held_at.as_millisecond() < now.as_millisecond())
            .collect();
        let mut out = &left_out(before, idx, Some(started), &spec.named) & &spec.members;
        let states = self
            .store
            .wave_device_states(&self.rollout, idx, Some(started))
            .await?;
        let rows: Vec<(Option<u32>, ringmaster_core::status::DeviceState)> = states
            .iter()
            .map(|(k, s)| (st.rows.get(&k.to_lowercase()).copied(), *s))
            .collect();
        let mut tallies = vec![StratumTally::default(); st.names.len()];
        for d in spec.members.iter().filter(|d| !out.contains(*d)) {
            if let Some(&c) = st.codes.get(&d) {
                tallies[c as usize].devices += 1;
            }
        }
        for (row, state) in &rows {
            if let Some(d) = row
                && !out.contains(*d)
                && let Some(&c) = st.codes.get(d)
            {
                tallies[c as usize].add(*state);
            }
        }
        let held = strata::holds(&spec.goals, &st.names, &tallies, &st.by, &spec.policy, base);
        let rollback = spec.rules.on_fail == OnFail::Rollback;
        for h in held {
            let devices: RoaringBitmap = spec
                .members
                .iter()
                .filter(|d| !out.contains(*d) && st.codes.get(d) == Some(&(h.code as u32)))
                .collect();
            let hold = HeldStratum {
                key: key.clone(),
                stratum: h.stratum.clone(),
                evidence: h.evidence.clone(),
                rollback,
                held_at: now,
                removed_at: None,
                released_at: None,
                released_by: None,
                devices: devices.clone(),
            };
            self.store.hold_stratum(&hold).await?;
            self.raise_once(
                held_alert_key(&key, &h.stratum),
                format!(
                    "wave {} '{}': {} held: its {} device(s) {}, and its {} in later waves are left out of them: {}",
                    idx + 1,
                    spec.name,
                    h.stratum,
                    devices.len(),
                    if rollback {
                        "are taken out of this wave"
                    } else {
                        "are kept back (the policy stays) and left out of this wave's verdict"
                    },
                    self.waves[idx as usize + 1..]
                        .iter()
                        .flat_map(|w| w.named.iter().filter(|(n, _)| *n == h.stratum))
                        .map(|(_, set)| set.len())
                        .sum::<u64>(),
                    h.evidence
                ),
                now,
            )
            .await?;
            out |= devices;
        }
        let mut gone = StateCounts::default();
        for (_, state) in rows
            .iter()
            .filter(|(d, _)| d.is_some_and(|d| out.contains(d)))
        {
            gone.add(*state, 1);
        }
        Ok((gone, out.len()))
    }

    /// Raises a held stratum's alert unless it was raised before (open or
    /// not): a round run again after a crash raises it once.
    async fn raise_once(
        &self,
        key: String,
        text: String,
        now: jiff::Timestamp,
    ) -> Result<(), EngineError> {
        let mut all = self.store.alerts(&self.rollout, false).await?;
        if all.iter().any(|a| a.key == key) {
            return Ok(());
        }
        let mut open: Vec<_> = all.drain(..).filter(|a| a.resolved_at.is_none()).collect();
        open.push(ringmaster_core::alerts::Alert {
            key,
            kind: STRATUM_HELD.into(),
            severity: ringmaster_core::alerts::Severity::Critical,
            text,
            first_seen: now.as_second(),
            raised_at: Some(now.as_second()),
            resolved_at: None,
            acknowledged: None,
        });
        self.store.save_alerts(&self.rollout, &open).await?;
        Ok(())
    }

    /// An operator releases a held stratum of a wave (1-based): its devices
    /// may join the waves that start from now on (never the wave that held
    /// it). Audited; the hold's alert is resolved.
    pub async fn release_stratum(
        &self,
        wave: u32,
        stratum: &str,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<Result<String, String>, EngineError> {
        let Some(idx) = wave
            .checked_sub(1)
            .filter(|i| (*i as usize) < self.waves.len())
        else {
            return Ok(Err(format!(
                "there is no wave {wave}; the plan has {}",
                self.waves.len()
            )));
        };
        let holds = self.holds().await?;
        let mine: Vec<&HeldStratum> = holds.iter().filter(|h| h.key.idx == idx).collect();
        let want = stratum.trim();
        let Some(h) = mine.iter().find(|h| h.stratum.eq_ignore_ascii_case(want)) else {
            let names: Vec<&str> = mine.iter().map(|h| h.stratum.as_str()).collect();
            return Ok(Err(if names.is_empty() {
                format!("wave {wave} holds no stratum")
            } else {
                format!(
                    "wave {wave} holds no stratum `{want}`; it holds: {}",
                    names.join(", ")
                )
            }));
        };
        if let (Some(at), Some(by)) = (h.released_at, &h.released_by) {
            return Ok(Err(format!(
                "wave {wave}: {} was released by {by} at {at}",
                h.stratum
            )));
        }
        if !self
            .store
            .release_stratum(&h.key, &h.stratum, actor, now)
            .await?
        {
            return Ok(Err(format!(
                "wave {wave}: {} was released meanwhile",
                h.stratum
            )));
        }
        let key = held_alert_key(&h.key, &h.stratum);
        let mut open = self.store.alerts(&self.rollout, true).await?;
        if let Some(a) = open.iter_mut().find(|a| a.key == key) {
            a.resolved_at = Some(now.as_second());
            self.store.save_alerts(&self.rollout, &open).await?;
        }
        Ok(Ok(format!(
            "wave {wave}: {} released by {actor}: its {} device(s) may join the waves that start from now on",
            h.stratum,
            h.devices.len()
        )))
    }

    /// One audit entry of this rollout.
    async fn audit(
        &self,
        at: jiff::Timestamp,
        actor: &str,
        action: String,
        detail: String,
    ) -> Result<(), EngineError> {
        self.store
            .audit(&ringmaster_store::AuditEntry {
                at,
                actor: actor.to_string(),
                rollout: self.rollout.clone(),
                action,
                detail,
            })
            .await?;
        Ok(())
    }

    /// The unretired approval requests of an action's writes.
    async fn approvals_of(&self, a: &Action) -> Result<Vec<TenantApproval>, EngineError> {
        Ok(self
            .store
            .tenant_approvals(&self.rollout)
            .await?
            .into_iter()
            .filter(|t| !t.retired && t.key == a.key && t.seq == a.seq && t.pos == a.pos)
            .collect())
    }

    /// Polls the action's open requests and says whether it may write.
    async fn approval_gate(
        &self,
        a: &Action,
        now: jiff::Timestamp,
        notes: &mut Vec<String>,
    ) -> Result<ApprovalGate, EngineError> {
        let mut approved = std::collections::HashMap::new();
        let mut waiting = false;
        for mut t in self.approvals_of(a).await? {
            let before = t.request.status;
            if matches!(
                before,
                ApprovalStatus::NeedsApproval | ApprovalStatus::Approved
            ) {
                match self.connector.approval(&t.request).await {
                    Ok(r) => t.request = r,
                    // Unreadable this tick: it stands as last read.
                    Err(e) => notes.push(format!(
                        "wave {}: approval request {} could not be read: {e}",
                        a.key.idx + 1,
                        t.request.id
                    )),
                }
                if t.request.status == ApprovalStatus::NeedsApproval && now >= t.request.expires {
                    t.request.status = ApprovalStatus::Expired;
                }
                if t.request.status != before {
                    self.store.save_approval(&t).await?;
                    let expiring = format!("tenant_approval:expiring:{}", t.request.id);
                    self.resolve_alerts(|k| k == expiring, now).await?;
                    notes.push(format!(
                        "wave {}: tenant approval of policy {} is {}",
                        a.key.idx + 1,
                        t.request.object,
                        t.request.status.as_str()
                    ));
                }
            }
            match t.request.status {
                ApprovalStatus::NeedsApproval => {
                    waiting = true;
                    self.warn_expiry(&t, now).await?;
                }
                ApprovalStatus::Approved => {
                    approved.insert(t.request.object.clone(), t.request.id.clone());
                }
                s if s.refused() => return Ok(ApprovalGate::Refused(t.request)),
                _ => {}
            }
        }
        if waiting {
            return Ok(ApprovalGate::Wait);
        }
        Ok(ApprovalGate::Write(Approvals {
            justification: self.justification(a),
            approved,
        }))
    }

    /// Why ringmaster makes a change, as the tenant's approvers read it.
    fn justification(&self, a: &Action) -> String {
        let (name, devices) = self
            .waves
            .get(a.key.idx as usize)
            .map_or(("", 0), |w| (w.name.as_str(), w.members.len()));
        format!(
            "ringmaster rollout {} (plan version {}), wave {} '{}' of {} device(s): {}",
            self.rollout,
            self.version,
            a.key.idx + 1,
            name,
            devices,
            effect_name(a.effect)
        )
    }

    /// Raises an alert, once per request, when a pending request expires
    /// within a day.
    async fn warn_expiry(
        &self,
        t: &TenantApproval,
        now: jiff::Timestamp,
    ) -> Result<(), EngineError> {
        let left = t.request.expires.as_second() - now.as_second();
        if left > EXPIRY_WARNING_HOURS * 3600 {
            return Ok(());
        }
        self.raise(
            format!("tenant_approval:expiring:{}", t.request.id),
            ringmaster_core::alerts::Severity::Warning,
            format!(
                "wave {}: the tenant's approval of policy {} is still pending and expires at {} (request {})",
                t.key.idx + 1,
                t.request.object,
                t.request.expires,
                t.request.id
            ),
            now,
        )
        .await
    }

    /// Raises an alert under `key` unless one is open.
    async fn raise(
        &self,
        key: String,
        severity: ringmaster_core::alerts::Severity,
        text: String,
        now: jiff::Timestamp,
    ) -> Result<(), EngineError> {
        let mut open = self.store.alerts(&self.rollout, true).await?;
        if open.iter().any(|a| a.key == key) {
            return Ok(());
        }
        open.push(ringmaster_core::alerts::Alert {
            key,
            kind: "tenant_approval".into(),
            severity,
            text,
            first_seen: now.as_second(),
            raised_at: Some(now.as_second()),
            resolved_at: None,
            acknowledged: None,
        });
        self.store.save_alerts(&self.rollout, &open).await?;
        Ok(())
    }

    /// Resolves the open tenant-approval alerts `which` picks.
    async fn resolve_alerts(
        &self,
        which: impl Fn(&str) -> bool,
        now: jiff::Timestamp,
    ) -> Result<(), EngineError> {
        let mut open = self.store.alerts(&self.rollout, true).await?;
        let mut any = false;
        for a in open
            .iter_mut()
            .filter(|a| a.kind == "tenant_approval" && which(&a.key))
        {
            a.resolved_at = Some(now.as_second());
            any = true;
        }
        if any {
            self.store.save_alerts(&self.rollout, &open).await?;
        }
        Ok(())
    }

    /// Holds the wave whose write the tenant refused, with the approver's
    /// reason, once (an operator's resume asks again).
    async fn hold_refused(
        &self,
        a: &Action,
        r: &ApprovalRequest,
        now: jiff::Timestamp,
        notes: &mut Vec<String>,
    ) -> Result<(), EngineError> {
        let rows = self.rows().await?;
        let Some(row) = rows.get(a.key.idx as usize) else {
            return Ok(());
        };
        if matches!(row.state, WaveState::Paused { reasons, .. } if reasons.contains(Reason::Manual))
        {
            return Ok(());
        }
        let reason = r.reason.as_deref().unwrap_or("no reason given");
        let text = format!(
            "wave {}: the tenant's approval of policy {} was {} ({reason}); the wave is held until an operator resumes it, which asks again",
            a.key.idx + 1,
            r.object,
            r.status.as_str()
        );
        if let Some(moved) = self.fire(row, Event::Pause, now).await? {
            notes.push(moved);
        }
        self.audit(
            now,
            &self.actor,
            format!(
                "wave {}: tenant approval {}",
                a.key.idx + 1,
                r.status.as_str()
            ),
            format!("policy {} (request {}): {reason}", r.object, r.id),
        )
        .await?;
        self.raise(
            format!("tenant_approval:{}:{}", r.status.as_str(), r.id),
            ringmaster_core::alerts::Severity::Critical,
            text.clone(),
            now,
        )
        .await?;
        notes.push(text);
        Ok(())
    }

    /// When the wave entered `state` last (from its history).
    /// When the wave (in this version) last started applying and last started baking.
    async fn started_and_applied(
        &self,
        idx: u32,
    ) -> Result<(Option<jiff::Timestamp>, Option<jiff::Timestamp>), EngineError> {
        let mut out = (None, None);
        for r in self.store.history(&self.rollout).await? {
            if r.key.version != self.version || r.key.idx != idx {
                continue;
            }
            match r.to {
                WaveState::Applying => out.0 = Some(r.at),
                WaveState::Baking => out.1 = Some(r.at),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Ties incoming reports to this version's waves: each wave's members
    /// and when it started applying. Tickets count within `window` of a
    /// wave's start (and, with `hints`, only when they mention one).
    pub async fn attribution(
        &self,
        window: jiff::SignedDuration,
        hints: &[String],
    ) -> Result<crate::ingest::Attribution, EngineError> {
        let history = self.store.history(&self.rollout).await?;
        let waves = self
            .waves
            .iter()
            .enumerate()
            .map(|(i, w)| (w.members.clone(), self.started(&history, i)))
            .collect();
        let treated = self.reached(&history).await?;
        Ok(crate::ingest::Attribution::new(waves, window, hints).with_treated(treated))
    }

    /// When wave `idx` of this version first started applying, if it has.
    fn started(
        &self,
        history: &[ringmaster_store::Recorded],
        idx: usize,
    ) -> Option<jiff::Timestamp> {
        history
            .iter()
            .find(|h| {
                h.key.version == self.version
                    && h.key.idx == idx as u32
                    && h.to == WaveState::Applying
            })
            .map(|h| h.at)
    }

    /// Every wave of every version of this rollout that started applying,
    /// with its members and when, oldest first. A device is treated from
    /// the first of these that holds it: a wave carried over to an edited
    /// plan, or superseded after it started, was treated under the old one.
    async fn reached(
        &self,
        history: &[ringmaster_store::Recorded],
    ) -> Result<Vec<(RoaringBitmap, jiff::Timestamp)>, EngineError> {
        let mut firsts: Vec<(u32, u32, jiff::Timestamp)> = Vec::new();
        for h in history.iter().filter(|h| h.to == WaveState::Applying) {
            let (v, i) = (h.key.version, h.key.idx);
            if !firsts.iter().any(|f| (f.0, f.1) == (v, i)) {
                firsts.push((v, i, h.at));
            }
        }
        let mut rows: HashMap<u32, Vec<ringmaster_store::WaveRow>> = HashMap::new();
        let mut out = Vec::with_capacity(firsts.len());
        let holds = self.holds().await?;
        for (v, i, at) in firsts {
            let members = if v == self.version {
                // Strata held in earlier waves were never assigned here.
                let earlier = holds.iter().filter(|h| h.key.idx != i);
                self.waves
                    .get(i as usize)
                    .map(|w| &w.members - &left_out(earlier, i, Some(at), &w.named))
            } else {
                if let std::collections::hash_map::Entry::Vacant(e) = rows.entry(v) {
                    e.insert(self.store.waves(&self.rollout, v).await?);
                }
                rows[&v]
                    .iter()
                    .find(|r| r.key.idx == i)
                    .map(|r| r.members.clone())
            };
            if let Some(m) = members {
                out.push((m, at));
            }
        }
        out.sort_by_key(|(_, at)| *at);
        Ok(out)
    }

    /// The concurrent control of wave `idx` over `[since, now]`: tickets
    /// from devices of the scope no wave had reached when they were opened,
    /// and the device-days those devices were unreached within the window
    /// (each other wave's members until a wave of any version holding them
    /// started: treated devices never count, whether a held stratum was
    /// taken out again or an edited plan carried their wave over).
    async fn control(
        &self,
        idx: u32,
        since: jiff::Timestamp,
        now: jiff::Timestamp,
    ) -> Result<gates::Control, EngineError> {
        // Volunteers and IT staff behave unlike the fleet.
        if self.waves[idx as usize].phase == PhaseKind::Pilot {
            return Ok(gates::Control::NotComparable(
                "a pilot of volunteers and IT staff".into(),
            ));
        }
        let history = self.store.history(&self.rollout).await?;
        let reached = self.reached(&history).await?;
        let days = |until: jiff::Timestamp| {
            (until.as_second() - since.as_second()).max(0) as f64 / 86_400.0
        };
        let (mut device_days, mut unreached) = (0.0, 0);
        for (i, w) in self.waves.iter().enumerate() {
            if i == idx as usize {
                continue;
            }
            let mut waiting = w.members.clone();
            for (set, at) in reached.iter().filter(|(_, at)| *at <= now) {
                let hit = &waiting & set;
                if !hit.is_empty() {
                    device_days += hit.len() as f64 * days(*at);
                    waiting -= &hit;
                }
            }
            unreached += waiting.len();
            device_days += waiting.len() as f64 * days(now);
        }
        if unreached == 0 {
            return Ok(gates::Control::NotComparable(
                "every device of the scope is in a wave that started".into(),
            ));
        }
        if device_days <= 0.0 {
            return Ok(gates::Control::Absent);
        }
        // Inclusive of `now`: a ticket stamped this very moment counts.
        let until = now + jiff::SignedDuration::from_millis(1);
        let tickets = self
            .store
            .control_tickets(&self.rollout, since, until)
            .await?;
        Ok(gates::Control::Measured {
            tickets,
            device_days,
        })
    }

    /// Judges a baking wave's goals, stores each evaluation, and returns the decision.
    async fn judge(
        &self,
        idx: u32,
        now: jiff::Timestamp,
        source_error: Option<&str>,
    ) -> Result<Option<GateDecision>, EngineError> {
        let key = self.key(idx);
        let spec = &self.waves[idx as usize];
        // A round already stored at this very moment was cut short by a
        // crash: it is run again and replaces itself, so it counts once.
        // Compared in milliseconds, as rounds are stored.
        let past: Vec<GateRound> = self
            .store
            .gate_rounds(&key)
            .await?
            .into_iter()
            .filter(|r| r.at.as_millisecond() < now.as_millisecond())
            .collect();
        if let Some(last) = past.last()
            && now.as_second() - last.at.as_second() < (self.check_every_hours * 3600.0) as i64
        {
            return Ok(None);
        }
        let (started, applied) = self.started_and_applied(idx).await?;
        let (started, applied) = (started.unwrap_or(now), applied.unwrap_or(now));
        let hours = (now.as_second() - started.as_second()) as f64 / 3600.0;
        let baked = (now.as_second() - applied.as_second()) as f64 / 3600.0 >= spec.bake_hours;
        let mut counts = self
            .store
            .wave_counts(&self.rollout, idx, Some(started))
            .await?;
        let round_no = past.len() as u32 + 1;
        // Held strata leave the wave's verdict: their devices and states.
        let mut devices = spec.members.len();
        if let Some(st) = &spec.strata {
            let base = Observed {
                hours_since_start: hours,
                round: round_no,
                ..Observed::default()
            };
            let (gone, out) = self.judge_strata(idx, st, started, &base, now).await?;
            counts = less(counts, gone);
            devices -= out;
        } else {
            // Devices held in an earlier wave were never assigned here.
            devices -= self.left_out_of(idx).await?.intersection_len(&spec.members);
        }
        // Kept for the chart of the wave over time: the figures judged here.
        self.store.record_counts(&key, now, &counts).await?;
        let (tickets, answers, sum) = self
            .store
            .wave_tickets_feedback(&self.rollout, idx, None)
            .await?;
        let observed = Observed {
            devices,
            reported: counts.reported(),
            succeeded: counts.succeeded,
            errors: counts.error,
            conflicts: counts.conflict,
            not_applicable: counts.not_applicable,
            pending: devices.saturating_sub(counts.reported() - counts.pending),
            enrolled: spec.enrolled,
            tickets,
            feedback_answers: answers,
            feedback_sum: sum,
            hours_since_start: hours,
            round: round_no,
            ..Observed::default()
        };
        let mut failures = vec![FailureCount::default(); spec.goals.len()];
        for r in past.iter().flat_map(|r| &r.results) {
            if let GateResult::Goal { goal, evaluation } = r
                && let Some(f) = failures.get_mut(*goal as usize)
            {
                f.record(evaluation.outcome);
            }
        }
        let mut evals = Vec::new();
        let mut round = GateRound {
            at: now,
            results: Vec::new(),
        };
        for (g, goal) in spec.goals.iter().enumerate() {
            // Tickets and answers count within the goal's window.
            let mut observed = observed.clone();
            if matches!(
                goal.metric,
                Metric::TicketsPer100Devices
                    | Metric::TicketsPer1000DeviceDays
                    | Metric::PilotFeedbackScore
            ) {
                // Within the window, and not before this wave (this version) started.
                let since = (now
                    - jiff::SignedDuration::from_secs((goal.window_hours * 3600.0) as i64))
                .max(started);
                let (t, n, sum) = self
                    .store
                    .wave_tickets_feedback(&self.rollout, idx, Some(since))
                    .await?;
                observed.tickets = t;
                // Every member exposed from the start of the window on.
                let days = (now.as_second() - since.as_second()).max(0) as f64 / 86_400.0;
                observed.device_days = devices as f64 * days;
                observed.feedback_answers = n;
                observed.feedback_sum = sum;
                if goal.against_control {
                    observed.control = self.control(idx, since, now).await?;
                }
            }
            let e = gates::evaluate(goal, &observed, &spec.policy, source_error);
            failures[g].record(e.outcome);
            round.results.push(GateResult::Goal {
                goal: g as u32,
                evaluation: e.clone(),
            });
            evals.push(e);
        }
        if spec.goals.is_empty() {
            // Without goals a wave passes on bake time alone; record that too.
            round.results.push(GateResult::BakeTime {
                outcome: if baked {
                    gates::Outcome::Pass
                } else {
                    gates::Outcome::NoData
                },
            });
        }
        self.store.replace_round(&key, &round).await?;
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let d = gates::decide(
            &spec.goals,
            &evals,
            &failures,
            &spec.policy,
            baked,
            hours,
            today,
        );
        Ok(Some(GateDecision::from(&d)))
    }

    /// Commits `event` for wave `idx` if the state machine takes it and it
    /// changes something. Returns the sentence of the move.
    async fn fire(
        &self,
        row: &WaveRow,
        event: Event,
        now: jiff::Timestamp,
    ) -> Result<Option<String>, EngineError> {
        let spec = &self.waves[row.key.idx as usize];
        let Ok(t) = step(row.state, &event, &spec.rules) else {
            return Ok(None);
        };
        if t.to == t.from && t.effects.is_empty() {
            return Ok(None);
        }
        match self
            .store
            .commit(&row.key, row.seq, &event, &t, &self.actor, now)
            .await
        {
            Ok(_) => Ok(Some(format!(
                "wave {} '{}': {} → {}: {}",
                row.key.idx + 1,
                spec.name,
                t.from.name(),
                t.to.name(),
                t.why
            ))),
            // Another driver moved it first: its move stands.
            Err(StoreError::Stale { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// An operator's action on a wave (1-based number as reports show it).
    pub async fn operate(
        &self,
        wave: u32,
        event: Event,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<Result<String, String>, EngineError> {
        self.operate_until(wave, event, actor, now, None).await
    }

    fn override_key(&self, idx: u32) -> String {
        format!("override-until:{}:{idx}", self.version)
    }

    /// Like `operate`; a pause with `until` is an override that expires:
    /// the engine resumes the wave then, and says so in the audit log.
    pub async fn operate_until(
        &self,
        wave: u32,
        event: Event,
        actor: &str,
        now: jiff::Timestamp,
        until: Option<jiff::Timestamp>,
    ) -> Result<Result<String, String>, EngineError> {
        if let Some(u) = until {
            if event != Event::Pause {
                return Ok(Err("only a pause can be given an expiry".into()));
            }
            if u <= now {
                return Ok(Err(format!(
                    "the override would expire at {u}, which is not after now ({now})"
                )));
            }
        }
        let result = self.operate_now(wave, event, actor, now).await?;
        if let (Ok(_), Some(u)) = (&result, until) {
            self.store
                .set_meta(&self.rollout, &self.override_key(wave - 1), &u.to_string())
                .await?;
            self.audit(
                now,
                actor,
                format!("wave {wave}: override"),
                format!("paused until {u}, then resumed by ringmaster"),
            )
            .await?;
        }
        Ok(result)
    }

    async fn operate_now(
        &self,
        wave: u32,
        event: Event,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<Result<String, String>, EngineError> {
        if event == Event::Approve {
            return Ok(match self.approve(wave, actor, now).await? {
                Approval::Opened(line) | Approval::Recorded(line) => Ok(line),
                Approval::Forbidden(why) | Approval::Refused(why) => Err(why),
            });
        }
        let rows = self.rows().await?;
        let Some(row) = wave.checked_sub(1).and_then(|i| rows.get(i as usize)) else {
            return Ok(Err(format!(
                "there is no wave {wave}; the plan has {}",
                rows.len()
            )));
        };
        let spec = &self.waves[row.key.idx as usize];
        let t = match step(row.state, &event, &spec.rules) {
            Ok(t) => t,
            Err(r) => return Ok(Err(r.to_string())),
        };
        self.store
            .commit(&row.key, row.seq, &event, &t, actor, now)
            .await?;
        // Resuming a wave held by a refused approval asks the tenant again.
        if matches!(event, Event::Resume(_)) {
            let ids: Vec<String> = self
                .store
                .tenant_approvals(&self.rollout)
                .await?
                .into_iter()
                .filter(|a| !a.retired && a.key == row.key && a.request.status.refused())
                .map(|a| a.request.id)
                .collect();
            self.store.retire_refused_approvals(&row.key).await?;
            self.resolve_alerts(
                |k| {
                    ids.iter().any(|id| {
                        k.starts_with("tenant_approval:") && k.ends_with(&format!(":{id}"))
                    })
                },
                now,
            )
            .await?;
        }
        self.act(now).await?;
        Ok(Ok(format!(
            "wave {wave} '{}': {} → {}: {}",
            spec.name,
            t.from.name(),
            t.to.name(),
            t.why
        )))
    }

    /// Records `who` as the requester of this version's waves (the one who
    /// started driving it), unless someone is already; returns who is.
    pub async fn request(&self, who: &str, at: jiff::Timestamp) -> Result<String, EngineError> {
        Ok(self
            .store
            .request(&self.rollout, self.version, who, at)
            .await?)
    }

    /// Who requested a wave and who approved it so far, with the tally
    /// under the wave's rule (1-based wave number).
    pub async fn approvals(&self, wave: u32) -> Result<Option<WaveApprovals>, EngineError> {
        let Some(spec) = wave.checked_sub(1).and_then(|i| self.waves.get(i as usize)) else {
            return Ok(None);
        };
        let key = WaveKey {
            rollout: self.rollout.clone(),
            version: self.version,
            idx: wave - 1,
        };
        let requester = self.store.requester(&self.rollout, self.version).await?;
        let given = self.store.approvals(&key).await?;
        let names: Vec<String> = given.iter().map(|a| a.approver.clone()).collect();
        Ok(Some(WaveApprovals {
            tally: approvals::tally(&spec.approvals, requester.as_deref(), &names),
            rule: spec.approvals,
            requester,
            given,
        }))
    }

    /// `actor` approves a wave awaiting approval. The approval is kept (once
    /// per person); the wave opens only when its rule is met, and
    /// otherwise the answer says what is missing.
    pub async fn approve(
        &self,
        wave: u32,
        actor: &str,
        now: jiff::Timestamp,
    ) -> Result<Approval, EngineError> {
        let rows = self.rows().await?;
        let Some(row) = wave.checked_sub(1).and_then(|i| rows.get(i as usize)) else {
            return Ok(Approval::Refused(format!(
                "there is no wave {wave}; the plan has {}",
                rows.len()
            )));
        };
        let spec = &self.waves[row.key.idx as usize];
        if row.state != WaveState::AwaitingApproval {
            let why = match step(row.state, &Event::Approve, &spec.rules) {
                Err(r) => r.to_string(),
                Ok(_) => format!("wave {wave} is {}, not awaiting approval", row.state.name()),
            };
            return Ok(Approval::Refused(why));
        }
        let requester = self.store.requester(&self.rollout, self.version).await?;
        let names: Vec<String> = self
            .store
            .approvals(&row.key)
            .await?
            .into_iter()
            .map(|a| a.approver)
            .collect();
        let label = format!("wave {wave} '{}'", spec.name);
        let who = actor.trim();
        let tally = match approvals::approve(&spec.approvals, requester.as_deref(), &names, who) {
            Outcome::Anonymous => {
                return Ok(Approval::Forbidden(format!(
                    "an approval must name who gives it, in 1 to {} characters",
                    approvals::MAX_NAME
                )));
            }
            Outcome::Requester(t) => {
                self.audit(
                    now,
                    who,
                    format!("wave {wave}: approval refused"),
                    format!("the requester cannot approve alone: {t}"),
                )
                .await?;
                return Ok(Approval::Forbidden(format!(
                    "{label} is not approved: {who} requested it and cannot approve it; {t}"
                )));
            }
            // Counted already; a wave whose rule was met before a crash
            // cut its opening short opens now.
            Outcome::Again(t) if !t.met() => {
                return Ok(Approval::Refused(format!(
                    "{label}: {who} approved it already (each person counts once); {t}"
                )));
            }
            Outcome::Again(t) => t,
            Outcome::Counted(t) | Outcome::Opens(t) => {
                let detail = describe(&t, requester.as_deref(), &names, who);
                if !self.store.add_approval(&row.key, who, &detail, now).await? {
                    // The same person approved meanwhile, from elsewhere.
                    return Ok(Approval::Refused(format!(
                        "{label}: {who} approved it already (each person counts once); {t}"
                    )));
                }
                // Count what is stored, not what was read before: two
                // people approving at once both see the other's approval.
                let stored: Vec<String> = self
                    .store
                    .approvals(&row.key)
                    .await?
                    .into_iter()
                    .map(|a| a.approver)
                    .collect();
                approvals::tally(&spec.approvals, requester.as_deref(), &stored)
            }
        };
        if !tally.met() {
            return Ok(Approval::Recorded(format!(
                "{label}: approval by {who} recorded; still awaiting approval: {tally}"
            )));
        }
        let t = match step(row.state, &Event::Approve, &spec.rules) {
            Ok(t) => t,
            Err(r) => return Ok(Approval::Refused(r.to_string())),
        };
        match self
            .store
            .commit(&row.key, row.seq, &Event::Approve, &t, who, now)
            .await
        {
            Ok(_) => {}
            // The other approval of a simultaneous pair opened it first.
            Err(StoreError::Stale { .. }) => {
                return Ok(Approval::Recorded(format!(
                    "{label}: approval by {who} recorded; {tally}; the wave moved on meanwhile"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.act(now).await?;
        Ok(Approval::Opened(format!(
            "{label}: {} → {}: {}",
            t.from.name(),
            t.to.name(),
            t.why
        )))
    }

    /// One pass: poll, act, move every wave as far as it goes.
    pub async fn tick(&self, now: jiff::Timestamp) -> Result<Tick, EngineError> {
        let mut out = Tick::default();
        let mut source_error: Option<String> = None;
        // What devices reported since the last poll (idempotent on replay).
        let from = self
            .polled_until()
            .await?
            .unwrap_or(self.waves[0].starts_at);
        if now > from {
            let assigned = self.assigned().await?;
            let got = match self.connector.poll(&assigned, from, now).await {
                Ok(g) => Some(g),
                Err(e) => {
                    // Gates cannot judge what they cannot read: they say so,
                    // and the waves they judge pause (never roll back).
                    source_error = Some(e.to_string());
                    None
                }
            };
            if let Some(got) = got {
                out.statuses = self
                    .store
                    .ingest_status(&self.rollout, &got.statuses)
                    .await?
                    .inserted;
                out.tickets = self
                    .store
                    .ingest_tickets(&self.rollout, &got.tickets)
                    .await?
                    .inserted;
                out.feedback = self
                    .store
                    .ingest_feedback(&self.rollout, &got.feedback)
                    .await?
                    .inserted;
                self.store
                    .set_meta(&self.rollout, POLLED, &now.to_string())
                    .await?;
            }
        }
        let (done, failed, notes) = self.act(now).await?;
        out.actions += done;
        out.failed.extend(failed);
        out.approvals.extend(notes);
        // Several moves can follow each other in one tick (start, applied).
        for _ in 0..8 {
            let rows = self.rows().await?;
            let pending: Vec<u32> = self
                .store
                .pending_actions(&self.rollout)
                .await?
                .iter()
                .filter(|a| a.key.version == self.version)
                .map(|a| a.key.idx)
                .collect();
            let mut moved = false;
            for (i, row) in rows.iter().enumerate() {
                let spec = &self.waves[i];
                let event = match row.state {
                    // An operator's pause that was given an expiry ends by itself.
                    WaveState::Paused { reasons, .. } if reasons.contains(Reason::Manual) => {
                        let key = self.override_key(row.key.idx);
                        let until = self
                            .store
                            .get_meta(&self.rollout, &key)
                            .await?
                            .and_then(|u| u.parse::<jiff::Timestamp>().ok());
                        match until {
                            Some(until) if now >= until => {
                                self.store.set_meta(&self.rollout, &key, "").await?;
                                Some(Event::Resume(Reason::Manual))
                            }
                            _ => None,
                        }
                    }
                    WaveState::Pending => {
                        let released = i == 0 || rows[i - 1].state == WaveState::Passed;
                        (released && now >= spec.starts_at).then_some(Event::Start)
                    }
                    WaveState::Applying if !pending.contains(&row.key.idx) => Some(Event::Applied),
                    WaveState::RollingBack if !pending.contains(&row.key.idx) => {
                        Some(Event::RolledBack)
                    }
                    WaveState::Baking => self
                        .judge(row.key.idx, now, source_error.as_deref())
                        .await?
                        .map(Event::Gate),
                    WaveState::Paused {
                        reasons,
                        resume_to: ringmaster_core::wave::Step::Baking,
                    } if !reasons.contains(Reason::Manual)
                        && (reasons.contains(Reason::Inconclusive)
                            || reasons.contains(Reason::SourceError)) =>
                    {
                        self.judge(row.key.idx, now, source_error.as_deref())
                            .await?
                            .map(Event::Gate)
                    }
                    _ => None,
                };
                if let Some(e) = event
                    && let Some(s) = self.fire(row, e, now).await?
                {
                    out.transitions.push(s);
                    moved = true;
                    let (done, failed, notes) = self.act(now).await?;
                    out.actions += done;
                    out.failed.extend(failed);
                    out.approvals.extend(notes);
                    break;
                }
            }
            if !moved {
                break;
            }
        }
        for h in self.holds().await? {
            if h.held_at == now {
                let spec = &self.waves[h.key.idx as usize];
                out.held.push(format!(
                    "wave {} '{}': {} held ({} devices {}): {}",
                    h.key.idx + 1,
                    spec.name,
                    h.stratum,
                    h.devices.len(),
                    if h.rollback { "taken out" } else { "kept back" },
                    h.evidence
                ));
            }
        }
        Ok(out)
    }
}

/// `a` less `b`, state by state.
fn less(a: StateCounts, b: StateCounts) -> StateCounts {
    StateCounts {
        succeeded: a.succeeded.saturating_sub(b.succeeded),
        error: a.error.saturating_sub(b.error),
        conflict: a.conflict.saturating_sub(b.conflict),
        pending: a.pending.saturating_sub(b.pending),
        not_applicable: a.not_applicable.saturating_sub(b.not_applicable),
    }
}
