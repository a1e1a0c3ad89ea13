//! From a plan file and an organization to a plan. Pure: the caller reads
//! files and passes text and the org in. `build` runs the steps in order,
//! each in its own module:
//!
//! - `rollout`: the rollout's settings, calendar and help desk, the new
//!   policies, the order of the phases.
//! - `scope`: the targeted groups and the devices in scope.
//! - `waves`: the proof of concept, the pilot and the enterprise waves.
//! - `timeline`: the schedule of phases and waves.
//! - `goals`: each phase's goals, SMART and attainable.
//! - `groups`: per group, its numbers and enrollment approach.
//! - `checks`: project-scope checks, conflicts, the settings that change.
//! - `alerts`: the run state's alert rules.
//!
//! Each step adds input errors (`PlanError`, with their place) and checks
//! on the plan in the order it finds them; the plan file's order decides
//! the order of both.

mod alerts;
mod checks;
mod goals;
mod groups;
mod parse;
mod rollout;
mod scope;
mod tags;
mod timeline;
mod waves;

#[cfg(test)]
mod fixture;

use crate::PlanError;
use crate::spec::{Approach, PhaseKind, PhaseSpec, PlanFile};
use jiff::Zoned;
use jiff::civil::Date;
use ringmaster_core::alerts as core_alerts;
use ringmaster_core::conflicts;
use ringmaster_core::goals::Goal;
use ringmaster_core::model::DeviceAttr;
use ringmaster_core::org::{NO_ROW, Org};
use ringmaster_core::pilot::Pilot;
use ringmaster_core::targeting::Resolution;
use roaring::RoaringBitmap;
use serde::Serialize;

pub use tags::{ScopeTag, find as find_scope_tag, of as scope_tags_of};

/// A computed plan. Dates are zoned; device sets are kept for the engine.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub purpose: String,
    pub time_zone: String,
    pub start: Date,
    pub check_in_hours: f64,
    pub help_desk: HelpDeskPlan,
    pub scope: ScopePlan,
    pub groups: Vec<GroupPlan>,
    pub phases: Vec<PhasePlan>,
    pub waves: Vec<WavePlan>,
    pub pilot: Option<Pilot>,
    pub checks: Vec<Check>,
    /// What the new policies set, against what devices in scope have today.
    pub changes: Vec<Change>,
    /// The conflict analysis of the new policies and the deployed ones
    /// that set the same settings (the checks above summarise it).
    #[serde(skip)]
    pub conflicts: ringmaster_core::conflicts::ConflictReport,
    /// How the run state alerts: the built-in rules with the plan's in place.
    pub alerts: Vec<core_alerts::Rule>,
    /// Intune scope tags the rollout's policies carry (`[[scope_tags]]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scope_tags: Vec<ScopeTag>,
    /// `[approvals] distinct`: the requester's own approval does not count.
    pub distinct_approvers: bool,
    /// The scope tag the plan was made within (`plan --scope-tag`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<ScopeTag>,
}

impl Plan {
    /// The dimensions its phases judge strata by, each once.
    pub fn strata_dimensions(&self) -> Vec<ringmaster_core::pilot::Dimension> {
        let mut dims = Vec::new();
        for by in self.phases.iter().filter_map(|p| p.strata) {
            if !dims.contains(&by.dimension) {
                dims.push(by.dimension);
            }
        }
        dims
    }

    /// Checks that stop the rollout from starting.
    pub fn errors(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.severity == CheckSeverity::Error)
            .count()
    }
}

#[derive(Debug, Serialize)]
pub struct HelpDeskPlan {
    pub contact: String,
    pub self_help: Vec<String>,
    pub capacity_per_day: u32,
    pub tickets_per_100_devices: f64,
}

#[derive(Debug, Serialize)]
pub struct ScopePlan {
    pub devices: u64,
    pub users: u64,
    pub platforms: Vec<(String, u64)>,
    /// Devices of VIPs, executives and labs: never in a pilot.
    pub barred: u64,
    pub new_policies: Vec<PolicyRef>,
    #[serde(skip)]
    pub set: RoaringBitmap,
}

#[derive(Debug, Serialize)]
pub struct PolicyRef {
    pub id: String,
    pub name: String,
    pub platforms: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct GroupPlan {
    pub key: String,
    pub name: String,
    pub group_id: String,
    pub devices: u64,
    pub users: u64,
    pub platforms: Vec<(String, u64)>,
    /// The directory's cities of the group's users, largest first (at most 3).
    pub cities: Vec<(String, u64)>,
    pub willingness: &'static str,
    pub business_risk: &'static str,
    pub requirements: Vec<String>,
    pub location: Option<String>,
    pub time_zone: String,
    pub enrollment: Approach,
    pub enrollment_label: &'static str,
    pub enrollment_why: String,
    /// The first wave holding the group's devices.
    pub first_wave: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PhasePlan {
    pub kind: PhaseKind,
    pub label: &'static str,
    pub name: String,
    pub start: Zoned,
    /// None for the run state, which has no end.
    pub end: Option<Zoned>,
    pub goals: Vec<Goal>,
    pub goal_sentences: Vec<String>,
    /// Indices into `Plan::waves`.
    pub waves: Vec<usize>,
    pub approval: bool,
    /// Different people who must approve each wave (when `approval`).
    pub approvers: u32,
    pub promotion: bool,
    pub on_fail: crate::spec::OnFailSpec,
    /// Waves judged per stratum too (`strata`): held strata leave them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strata: Option<ringmaster_core::strata::Stratify>,
    pub gate_policy: ringmaster_core::gates::GatePolicy,
}

#[derive(Debug, Serialize)]
pub struct WavePlan {
    pub name: String,
    pub phase: PhaseKind,
    /// Pilot steps: `isolated` (the new policies alone), then `combined`.
    pub mode: Option<&'static str>,
    pub groups: Vec<String>,
    pub devices: u64,
    pub users: u64,
    pub share_of_scope: f64,
    pub platforms: Vec<(String, u64)>,
    pub time_zone: String,
    pub start: Zoned,
    /// Days the wave applies on; its devices are spread evenly over them.
    pub apply_days: Vec<Date>,
    pub devices_per_day: u64,
    pub expected_tickets: f64,
    pub bake_hours: f64,
    pub end: Zoned,
    pub pinned: bool,
    pub approval: bool,
    #[serde(skip)]
    pub set: RoaringBitmap,
    /// Members Intune manages (an Intune record in the import): what
    /// `enrollment_completion` judges.
    #[serde(skip)]
    pub enrolled: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckSeverity {
    Error,
    Warning,
    Info,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub severity: CheckSeverity,
    pub phase: PhaseKind,
    pub message: String,
}

impl Check {
    fn new(severity: CheckSeverity, phase: PhaseKind, message: impl Into<String>) -> Check {
        Check {
            severity,
            phase,
            message: message.into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Change {
    pub setting_id: String,
    pub setting: String,
    pub value: String,
    pub policy: String,
    /// Devices in scope the new policy reaches with this setting.
    pub devices: u64,
    /// What those devices have today from existing policies: value and devices.
    pub today: Vec<(String, u64)>,
    /// Devices where the setting is not configured today.
    pub not_set_today: u64,
}

/// Everything the planner needs besides the plan file.
pub struct Inputs<'a> {
    pub org: &'a Org,
    /// New policies without assignments get the plan's scope as their target here.
    pub res: &'a mut Resolution,
    /// Per policy: read from the plan's `sources.new` exports.
    pub proposed: &'a [bool],
}

/// How many of `rows` hold each value of `col`, largest first; counted on
/// the dictionary codes, so a million rows cost no allocation.
fn tally(
    col: &ringmaster_core::column::DictColumn,
    rows: impl Iterator<Item = u32>,
) -> Vec<(String, u64)> {
    let mut counts = vec![0u64; col.dict.len() + 1];
    let codes = col.view();
    for r in rows {
        counts[codes.code(r) as usize] += 1;
    }
    let mut v: Vec<(String, u64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| {
            (
                col.dict.value(c as u32).unwrap_or("(unknown)").to_string(),
                *n,
            )
        })
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

fn platforms_of(org: &Org, set: &RoaringBitmap) -> Vec<(String, u64)> {
    tally(&org.devices.cols[DeviceAttr::Platform.index()], set.iter())
}

/// Distinct primary users of a set of devices.
fn user_count(org: &Org, set: &RoaringBitmap) -> u64 {
    let mut seen = vec![0u64; (org.users.rows as usize).div_ceil(64)];
    let mut n = 0;
    for d in set {
        if let Some(&u) = org.device_user.get(d as usize)
            && u != NO_ROW
        {
            let (w, b) = (u as usize / 64, 1u64 << (u % 64));
            if seen[w] & b == 0 {
                seen[w] |= b;
                n += 1;
            }
        }
    }
    n
}

/// Builds the plan. Input errors (bad values, unknown groups, impossible
/// pins, goals that are not SMART) come back together, each with its place.
pub fn build(spec: &PlanFile, inputs: Inputs<'_>) -> Result<Plan, Vec<PlanError>> {
    build_within(spec, inputs, None)
}

/// [`build`] for an administrator limited to one scope tag: only the
/// tag's devices (`within`, see [`ringmaster_core::scopetags::within`])
/// enter the waves, and checks count and name what lies outside.
pub fn build_within(
    spec: &PlanFile,
    inputs: Inputs<'_>,
    within: Option<(&ScopeTag, &ringmaster_core::scopetags::Within)>,
) -> Result<Plan, Vec<PlanError>> {
    let org = inputs.org;
    let mut errs: Vec<PlanError> = Vec::new();
    let mut checks: Vec<Check> = Vec::new();

    let cal = rollout::calendar(spec, &mut errs);
    rollout::help_desk(&spec.help_desk, &mut errs);
    let new = rollout::new_policies(spec, org, inputs.proposed, &mut errs);
    let groups = scope::targeted_groups(spec, org, inputs.res, cal.window.as_ref(), &mut errs);
    rollout::check_phases(&spec.phases, &mut errs);
    rollout::check_approvals(spec, &mut errs);
    let plan_tags = tags::scope_tags(spec, &mut errs);
    let scope = scope::scope(
        spec,
        org,
        inputs.res,
        &groups,
        &new.list,
        within.map(|(_, w)| &w.devices),
        &mut checks,
    );
    tags::missing_checks(org, &new.list, &plan_tags, &mut checks);
    if let Some((tag, w)) = within {
        tags::within_checks(
            org,
            w,
            &tag.label(),
            &scope.outside_tag,
            &new.list,
            &plan_tags,
            &mut checks,
        );
    }
    let res: &Resolution = inputs.res;
    let plan_id = spec.rollout.id.get_ref().trim().to_string();

    let cx = waves::Context {
        spec,
        org,
        res,
        groups: &groups,
        scope: &scope.set,
        barred: &scope.barred,
        plan_id: &plan_id,
        check_in: cal.check_in,
    };
    let drafted = waves::draft(&cx, cal.window.as_ref(), &mut checks, &mut errs);
    waves::check_all_placed(spec, org, &scope.set, &drafted.assigned, &mut checks);

    let (Some(tz), Some(start), Some(hours)) = (cal.tz, cal.start, cal.hours) else {
        return Err(errs);
    };
    let mut timeline = timeline::Timeline::new(
        start,
        hours,
        tz,
        &spec.help_desk,
        &cal.freezes,
        scope.set.len(),
    );
    let mut waves: Vec<WavePlan> = Vec::new();
    let mut phases: Vec<PhasePlan> = Vec::new();
    for (pi, p) in spec.phases.iter().enumerate() {
        let times = timeline.phase(org, p, pi, &drafted.drafts, &mut waves, &mut errs);
        let kind = *p.kind.get_ref();
        let wave_ids: Vec<usize> = (0..waves.len())
            .filter(|&w| waves[w].phase == kind)
            .collect();
        // Goals are judged on the phase's smallest wave.
        let smallest = wave_ids
            .iter()
            .min_by_key(|&&w| waves[w].devices)
            .map(|&w| goals::Smallest {
                wave: &waves[w].name,
                devices: waves[w].devices,
            });
        let goals = goals::phase_goals(p, cal.check_in, smallest, &mut checks, &mut errs);
        let strata = goals::phase_strata(p, &mut errs);
        phases.push(phase_plan(p, times, goals, wave_ids, strata));
    }

    let group_plans =
        groups::group_plans(spec, org, res, &groups, &waves, &scope.barred, &mut checks);
    checks::policy_checks(org, res, &new.list, &scope.targeted, &mut checks);
    let analyzed = checks::met_policies(org, &new.is_new, &new.list);
    let accepted = checks::acceptances(&spec.accept, &mut errs);
    let conflicts = checks::conflict_checks(
        org,
        res,
        &conflicts::Scope {
            policies: &analyzed,
            proposed: &new.is_new,
            accepted: &accepted,
            today: start,
        },
        &scope.set,
        &mut checks,
    );
    if errs.is_empty() {
        checks.sort_by_key(|c| (c.phase, c.severity as u8));
    }
    let changes = checks::settings_changes(org, res, &new.list, &new.is_new, &scope.set);
    let alerts = alerts::alert_rules(&spec.alerts, &mut errs);
    if !errs.is_empty() {
        return Err(errs);
    }
    let r = &spec.rollout;
    let hd = &spec.help_desk;
    Ok(Plan {
        id: plan_id,
        name: r.name.clone(),
        purpose: r.purpose.clone(),
        time_zone: r.time_zone.get_ref().trim().to_string(),
        start,
        check_in_hours: cal.check_in,
        help_desk: HelpDeskPlan {
            contact: hd.contact.clone(),
            self_help: hd.self_help.clone(),
            capacity_per_day: *hd.capacity_per_day.get_ref(),
            tickets_per_100_devices: hd.tickets_per_100_devices,
        },
        scope: scope_plan(org, &new.list, scope),
        groups: group_plans,
        phases,
        waves,
        pilot: drafted.pilot,
        checks,
        changes,
        conflicts,
        alerts,
        scope_tags: plan_tags,
        distinct_approvers: spec
            .approvals
            .distinct
            .as_ref()
            .is_some_and(|d| *d.get_ref()),
        within: within.map(|(t, _)| t.clone()),
    })
}

fn phase_plan(
    p: &PhaseSpec,
    times: timeline::PhaseTimes,
    goals: Vec<Goal>,
    waves: Vec<usize>,
    strata: Option<ringmaster_core::strata::Stratify>,
) -> PhasePlan {
    let kind = *p.kind.get_ref();
    PhasePlan {
        kind,
        label: kind.label(),
        name: p.name.clone().unwrap_or_else(|| kind.label().to_string()),
        start: times.start,
        end: times.end,
        goal_sentences: goals.iter().map(Goal::sentence).collect(),
        goals,
        waves,
        approval: p.needs_approval(),
        approvers: p.approvers(),
        promotion: p.promotion,
        on_fail: p.on_fail,
        strata,
        gate_policy: ringmaster_core::gates::GatePolicy {
            judging: match p.judging() {
                crate::spec::JudgingSpec::Sequential => ringmaster_core::gates::Judging::Sequential,
                crate::spec::JudgingSpec::Wilson => ringmaster_core::gates::Judging::Wilson,
                crate::spec::JudgingSpec::Point => ringmaster_core::gates::Judging::Point,
            },
            z: goals::Z,
            alpha: goals::ALPHA,
            consecutive_failures: p.consecutive_failures.max(1),
            total_failures: p.total_failures.max(1),
            split: None,
        },
    }
}

fn scope_plan(org: &Org, new_policies: &[usize], scope: scope::Scope) -> ScopePlan {
    ScopePlan {
        devices: scope.set.len(),
        users: user_count(org, &scope.set),
        platforms: platforms_of(org, &scope.set),
        barred: scope.barred.intersection_len(&scope.set),
        new_policies: new_policies
            .iter()
            .map(|&p| PolicyRef {
                id: org.policies[p].id.clone(),
                name: org.policies[p].name.clone(),
                platforms: org.policies[p]
                    .platforms
                    .iter()
                    .map(|x| x.as_str().to_string())
                    .collect(),
            })
            .collect(),
        set: scope.set,
    }
}
