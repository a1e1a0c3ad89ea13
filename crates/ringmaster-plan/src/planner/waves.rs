//! Who is in which wave: the proof of concept, the pilot (isolated, then
//! combined) and the enterprise waves, phase by phase. Dates come later
//! (`timeline`); here a wave is a draft: its devices, window, bake and pin.

use super::goals;
use super::parse::{find_group, parse_dimension, parse_duration, parse_share, perr};
use super::scope::{GroupInfo, group_by_key, group_devices};
use super::{Check, CheckSeverity};
use crate::PlanError;
use crate::schedule::Window;
use crate::spec::{Level, PhaseKind, PhaseSpec, PilotSpec, PlanFile, WaveSpec};
use ringmaster_core::model::{DeviceAttr, UserAttr};
use ringmaster_core::org::{NO_ROW, Org};
use ringmaster_core::pilot::{self, Dimension, Pilot};
use ringmaster_core::targeting::Resolution;
use roaring::RoaringBitmap;
use toml::Spanned;

/// A wave before it has dates.
pub(super) struct Draft {
    pub name: String,
    /// Index into `PlanFile::phases`.
    pub phase: usize,
    pub mode: Option<&'static str>,
    pub groups: Vec<String>,
    pub set: RoaringBitmap,
    pub pin: Option<Spanned<String>>,
    pub bake: f64,
    pub window: Window,
    pub approval: bool,
}

/// What the wave steps read.
pub(super) struct Context<'a> {
    pub spec: &'a PlanFile,
    pub org: &'a Org,
    pub res: &'a Resolution,
    pub groups: &'a [GroupInfo],
    pub scope: &'a RoaringBitmap,
    pub barred: &'a RoaringBitmap,
    pub plan_id: &'a str,
    pub check_in: f64,
}

/// Every phase's waves, in phase order.
pub(super) struct Drafts {
    pub drafts: Vec<Draft>,
    /// Devices in some wave.
    pub assigned: RoaringBitmap,
    pub pilot: Option<Pilot>,
}

/// Drafts the waves of every phase; each phase takes devices no earlier
/// phase took. Without a calendar window (its error is recorded) only the
/// bake times are checked.
pub(super) fn draft(
    cx: &Context<'_>,
    window: Option<&Window>,
    checks: &mut Vec<Check>,
    errs: &mut Vec<PlanError>,
) -> Drafts {
    let mut out = Drafts {
        drafts: Vec::new(),
        assigned: RoaringBitmap::new(),
        pilot: None,
    };
    for (pi, p) in cx.spec.phases.iter().enumerate() {
        let bake = phase_bake(p, cx.check_in, errs);
        let Some(window) = window else {
            continue;
        };
        let phase = Phase {
            spec: p,
            index: pi,
            bake,
            window,
        };
        match *p.kind.get_ref() {
            PhaseKind::ProofOfConcept => {
                if let Some(d) = proof_of_concept(cx, &phase, checks, errs) {
                    out.assigned |= &d.set;
                    out.drafts.push(d);
                }
            }
            PhaseKind::Pilot => {
                let (chosen, drafts) = pilot(cx, &phase, &out.assigned, checks, errs);
                out.assigned |= &chosen.devices;
                out.drafts.extend(drafts);
                out.pilot = Some(chosen);
            }
            PhaseKind::Enterprise => {
                let drafts = enterprise(cx, &phase, &mut out.assigned, checks, errs);
                out.drafts.extend(drafts);
            }
            _ => {}
        }
    }
    out
}

/// The phase a wave step drafts.
pub(super) struct Phase<'a> {
    pub spec: &'a PhaseSpec,
    /// Index into `PlanFile::phases`.
    pub index: usize,
    /// The phase's bake time in hours.
    pub bake: f64,
    pub window: &'a Window,
}

/// A phase's bake time: its own, else a default by kind lengthened to what
/// its critical goals need (`goals::bake_need`); never shorter than a
/// check-in, by which every device has reported once. A bake of its own
/// that is shorter than the goals need, or than a check-in, is an error.
pub(super) fn phase_bake(p: &PhaseSpec, check_in: f64, errs: &mut Vec<PlanError>) -> f64 {
    let by_kind: f64 = match *p.kind.get_ref() {
        PhaseKind::ProofOfConcept => 48.0,
        PhaseKind::Pilot => 72.0,
        _ => 24.0,
    };
    let need = goals::bake_need(p, check_in).map_or(0.0, |g| g.hours_needed());
    let derived = by_kind.max(need).max(check_in);
    match &p.bake {
        Some(b) => given_bake(b, derived, p, check_in, errs),
        None => derived,
    }
}

/// A bake time as written, checked against the check-in and the phase's
/// goals; `fallback` when it does not parse (its error is recorded).
pub(super) fn given_bake(
    b: &Spanned<String>,
    fallback: f64,
    p: &PhaseSpec,
    check_in: f64,
    errs: &mut Vec<PlanError>,
) -> f64 {
    let Some(bake) = parse_duration(b, "bake", errs) else {
        return fallback;
    };
    if let Some(goal) = goals::bake_need(p, check_in)
        && bake < goal.hours_needed()
    {
        errs.push(perr(
            b.span(),
            format!(
                "a bake time of {} is shorter than the {}'s goals need: {}; bake at least {}, or leave `bake` out to derive it from the goals",
                b.get_ref().trim(),
                p.kind.get_ref().label(),
                goal.need_text(),
                duration_text(goal.hours_needed())
            ),
        ));
    } else if bake < check_in {
        errs.push(perr(
            b.span(),
            format!(
                "a bake time of {} is shorter than one check-in ({}h): devices would not have reported",
                b.get_ref().trim(),
                check_in
            ),
        ));
    }
    bake
}

/// Hours as a plan file writes them: `3d`, `36h`.
fn duration_text(hours: f64) -> String {
    if hours >= 24.0 && hours % 24.0 == 0.0 {
        format!("{}d", hours / 24.0)
    } else {
        format!("{hours}h")
    }
}

/// The proof of concept: lab devices and the test groups' devices, never
/// VIPs or executives. None when it holds no device.
pub(super) fn proof_of_concept(
    cx: &Context<'_>,
    phase: &Phase<'_>,
    checks: &mut Vec<Check>,
    errs: &mut Vec<PlanError>,
) -> Option<Draft> {
    let (org, p, kind) = (cx.org, phase.spec, PhaseKind::ProofOfConcept);
    let mut set: RoaringBitmap = {
        let lab = &org.devices.cols[DeviceAttr::IsLab.index()];
        match lab.dict.get("true") {
            Some(code) => lab.rows_of(code).into_owned(),
            None => RoaringBitmap::new(),
        }
    };
    for tg in &p.test_groups {
        if let Some(g) = find_group(org, tg, errs) {
            set |= group_devices(org, cx.res, g);
        }
    }
    let vip = set
        .iter()
        .filter(|&d| matches!(pilot::barred(org, d), Some("VIP" | "executive")))
        .count();
    if vip > 0 {
        checks.push(Check::new(
            CheckSeverity::Error,
            kind,
            format!(
                "the proof of concept holds {vip} device(s) of VIPs or executives: it is for lab devices and test users only"
            ),
        ));
    }
    if set.is_empty() {
        checks.push(Check::new(
            CheckSeverity::Error,
            kind,
            "the proof of concept has no devices: mark lab devices (isLab) or name test_groups",
        ));
    }
    if !p.help_desk_participates {
        checks.push(Check::new(
            CheckSeverity::Warning,
            kind,
            "the help desk does not take part in the proof of concept (help_desk_participates = false)",
        ));
    }
    if set.is_empty() {
        return None;
    }
    Some(Draft {
        name: p.name.clone().unwrap_or_else(|| "Proof of concept".into()),
        phase: phase.index,
        mode: None,
        groups: p.test_groups.iter().map(|g| g.get_ref().clone()).collect(),
        set,
        pin: p.start.clone(),
        bake: phase.bake,
        window: phase.window.clone(),
        approval: p.needs_approval(),
    })
}

/// The pilot: a representative sample of the scope's devices no earlier
/// phase took (`pilot::select`), preferring IT staff, the `prefer` groups
/// and groups of high willingness. It runs twice: isolated (the new
/// policies alone), then combined.
pub(super) fn pilot(
    cx: &Context<'_>,
    phase: &Phase<'_>,
    assigned: &RoaringBitmap,
    checks: &mut Vec<Check>,
    errs: &mut Vec<PlanError>,
) -> (Pilot, Vec<Draft>) {
    let (org, p, kind) = (cx.org, phase.spec, PhaseKind::Pilot);
    let default_spec;
    let ps = match &p.pilot {
        Some(ps) => ps,
        None => {
            default_spec = PilotSpec {
                share: Spanned::new(0..0, "1%".into()),
                min_devices: 50,
                dimensions: None,
                prefer: Vec::new(),
            };
            &default_spec
        }
    };
    let share = parse_share(&ps.share, errs).unwrap_or(0.01);
    let dims: Vec<Dimension> = match &ps.dimensions {
        Some(ds) => ds.iter().filter_map(|d| parse_dimension(d, errs)).collect(),
        None => Dimension::PILOT.to_vec(),
    };
    let mut preferred = pilot::it_staff_devices(org);
    for k in &ps.prefer {
        if let Some(gi) = group_by_key(cx.spec, cx.groups, k, errs) {
            preferred |= &cx.groups[gi].devices;
        }
    }
    for g in cx.groups {
        if cx.spec.groups[g.spec_index].willingness == Level::High {
            preferred |= &g.devices;
        }
    }
    let population = cx.scope - assigned;
    let eligible = population.len() - population.intersection_len(cx.barred);
    let size = pilot::size_for(eligible, share, ps.min_devices);
    let chosen = pilot::select(
        org,
        &population,
        size,
        &dims,
        cx.plan_id,
        &preferred,
        &RoaringBitmap::new(),
    );
    if chosen.size < ps.min_devices {
        checks.push(Check::new(
            CheckSeverity::Warning,
            kind,
            format!(
                "the pilot has {} devices, fewer than the {} asked for: the scope has only {} eligible devices",
                chosen.size, ps.min_devices, eligible
            ),
        ));
    }
    for dr in &chosen.dimensions {
        if !dr.missing.is_empty() {
            checks.push(Check::new(
                CheckSeverity::Warning,
                kind,
                format!(
                    "pilot misses {} strata that hold ≥ 1 % of production: {}",
                    dr.dimension.name(),
                    dr.missing.join(", ")
                ),
            ));
        }
    }
    let name = p.name.clone().unwrap_or_else(|| "Pilot".into());
    let drafts = ["isolated", "combined"]
        .into_iter()
        .map(|mode| Draft {
            name: format!("{name} ({mode})"),
            phase: phase.index,
            mode: Some(mode),
            groups: Vec::new(),
            set: chosen.devices.clone(),
            pin: if mode == "isolated" {
                p.start.clone()
            } else {
                None
            },
            bake: phase.bake,
            window: phase.window.clone(),
            approval: p.needs_approval(),
        })
        .collect();
    (chosen, drafts)
}

/// The enterprise waves in the plan's order, each taking devices no earlier
/// wave took (`assigned` grows as they do): a wave's groups, a share of
/// the phase's devices in the plan's stable order, or the rest; split by a
/// dimension when asked.
pub(super) fn enterprise(
    cx: &Context<'_>,
    phase: &Phase<'_>,
    assigned: &mut RoaringBitmap,
    checks: &mut Vec<Check>,
    errs: &mut Vec<PlanError>,
) -> Vec<Draft> {
    let (org, p, kind) = (cx.org, phase.spec, PhaseKind::Enterprise);
    let phase_population = (cx.scope - &*assigned).len();
    let mut order: Option<Vec<u32>> = None;
    let mut drafts = Vec::new();
    for (wi, w) in p.waves.iter().enumerate() {
        let bases = [!w.groups.is_empty(), w.share.is_some(), w.rest];
        let n = bases.iter().filter(|b| **b).count();
        if n > 1 {
            errs.push(perr(
                p.kind.span(),
                format!("wave {} of the enterprise rollout sets more than one of groups, share and rest", wi + 1),
            ));
            continue;
        }
        let mut keys = Vec::new();
        let mut wave_groups = Vec::new();
        for k in &w.groups {
            if let Some(gi) = group_by_key(cx.spec, cx.groups, k, errs) {
                keys.push(cx.groups[gi].key.clone());
                wave_groups.push(gi);
            }
        }
        let base: RoaringBitmap = if !wave_groups.is_empty() {
            let mut s = RoaringBitmap::new();
            for &gi in &wave_groups {
                s |= &cx.groups[gi].devices;
            }
            (s & cx.scope) - &*assigned
        } else if let Some(sh) = &w.share {
            let Some(share) = parse_share(sh, errs) else {
                continue;
            };
            let want = ((phase_population as f64) * share).ceil() as u64;
            let order = order.get_or_insert_with(|| stable_order(org, cx.scope, cx.plan_id));
            order
                .iter()
                .copied()
                .filter(|d| !assigned.contains(*d))
                .take(want as usize)
                .collect()
        } else if w.rest || w.split_by.is_some() {
            cx.scope - &*assigned
        } else {
            errs.push(perr(
                p.kind.span(),
                format!("wave {} of the enterprise rollout takes nobody: give it groups, a share or rest = true", wi + 1),
            ));
            continue;
        };
        let name = w.name.clone().unwrap_or_else(|| wave_name(w, wi, &keys));
        let window = wave_window(&wave_groups, cx.groups, phase.window);
        let bake = match &w.bake {
            Some(b) => given_bake(b, phase.bake, p, cx.check_in, errs),
            None => phase.bake,
        };
        let parts: Vec<(String, RoaringBitmap)> = match &w.split_by {
            Some(dim) => match parse_dimension(dim, errs) {
                Some(dim) => split(org, &base, dim)
                    .into_iter()
                    .map(|(v, s)| match &w.name {
                        Some(n) => (format!("{n} — {v}"), s),
                        None => (v, s),
                    })
                    .collect(),
                None => continue,
            },
            None => vec![(name, base)],
        };
        for (part, (name, set)) in parts.into_iter().enumerate() {
            if set.is_empty() {
                checks.push(Check::new(
                    CheckSeverity::Warning,
                    kind,
                    format!("wave '{name}' has no devices left: earlier waves took them all"),
                ));
                continue;
            }
            *assigned |= &set;
            drafts.push(Draft {
                name,
                phase: phase.index,
                mode: None,
                groups: keys.clone(),
                set,
                pin: if part == 0 {
                    w.start
                        .clone()
                        .or(if wi == 0 { p.start.clone() } else { None })
                } else {
                    None
                },
                bake,
                window: window.clone(),
                approval: p.needs_approval(),
            });
        }
    }
    drafts
}

/// No device of the scope may be silently left out of the enterprise waves.
pub(super) fn check_all_placed(
    spec: &PlanFile,
    org: &Org,
    scope: &RoaringBitmap,
    assigned: &RoaringBitmap,
    checks: &mut Vec<Check>,
) {
    let left = scope - assigned;
    if !left.is_empty()
        && spec
            .phases
            .iter()
            .any(|p| *p.kind.get_ref() == PhaseKind::Enterprise)
    {
        let sample: Vec<String> = left.iter().take(3).map(|d| org.device_label(d)).collect();
        checks.push(Check::new(
            CheckSeverity::Error,
            PhaseKind::Enterprise,
            format!(
                "{} device(s) in scope are in no wave (e.g. {}): add a wave with rest = true or with a group that holds them",
                left.len(),
                sample.join(", ")
            ),
        ));
    }
}

fn wave_name(w: &WaveSpec, i: usize, keys: &[String]) -> String {
    if !keys.is_empty() {
        keys.join(" + ")
    } else if let Some(s) = &w.share {
        format!("Wave {} ({})", i + 1, s.get_ref().trim())
    } else {
        format!("Wave {} (rest)", i + 1)
    }
}

/// The window of a wave: its groups' shared days, latest not-before, and the
/// zone and hours of its first group.
fn wave_window(wave_groups: &[usize], groups: &[GroupInfo], default: &Window) -> Window {
    let mut it = wave_groups.iter().map(|&g| &groups[g].window);
    let Some(first) = it.next() else {
        return default.clone();
    };
    let mut w = first.clone();
    for o in it {
        for (i, d) in w.days.iter_mut().enumerate() {
            *d &= o.days[i];
        }
        w.not_before = w.not_before.max(o.not_before);
    }
    w
}

/// Devices of `scope` in the plan's stable order (hash of plan id and device id),
/// so shares take the same devices however often the plan is recomputed.
fn stable_order(org: &Org, scope: &RoaringBitmap, plan_id: &str) -> Vec<u32> {
    use rayon::prelude::*;
    // Hashed on every core; the row in the key makes the order unique.
    let rows: Vec<u32> = scope.iter().collect();
    let hashes = pilot::stable_hashes(org, plan_id, &rows);
    let mut v: Vec<(u64, u32)> = hashes.into_iter().zip(rows).collect();
    v.par_sort_unstable();
    v.into_iter().map(|(_, d)| d).collect()
}

/// One part per stratum of `dim`, smallest first (so the riskiest step is small).
fn split(org: &Org, set: &RoaringBitmap, dim: Dimension) -> Vec<(String, RoaringBitmap)> {
    let mut by: std::collections::BTreeMap<String, RoaringBitmap> = Default::default();
    let mut memo: rustc_hash::FxHashMap<(u32, u32), String> = Default::default();
    let pc = org.devices.cols[DeviceAttr::Platform.index()].view();
    let uc = org.users.cols[UserAttr::Department.index()].view();
    let device_user = &*org.device_user;
    for d in set {
        let u = device_user.get(d as usize).copied().unwrap_or(NO_ROW);
        let key = (pc.code(d), if u == NO_ROW { u32::MAX } else { uc.code(u) });
        let v = match dim {
            Dimension::Platform | Dimension::Department => {
                memo.entry(key).or_insert_with(|| dim.value(org, d)).clone()
            }
            _ => dim.value(org, d),
        };
        by.entry(v).or_default().insert(d);
    }
    let mut v: Vec<(String, RoaringBitmap)> = by.into_iter().collect();
    v.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then(a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::fixture::{Fixture, fixture, messages, plan_file};
    use crate::planner::{rollout, scope};

    struct Setup {
        f: Fixture,
        spec: PlanFile,
        groups: Vec<GroupInfo>,
        scope: scope::Scope,
        window: Window,
    }

    fn setup(phases: &str) -> Setup {
        let mut f = fixture();
        let spec = plan_file(phases);
        let window = rollout::calendar(&spec, &mut Vec::new()).window.unwrap();
        let groups = scope::targeted_groups(&spec, &f.org, &f.res, Some(&window), &mut Vec::new());
        let scope = scope::scope(
            &spec,
            &f.org,
            &mut f.res,
            &groups,
            &[1],
            None,
            &mut Vec::new(),
        );
        Setup {
            f,
            spec,
            groups,
            scope,
            window,
        }
    }

    impl Setup {
        fn cx(&self) -> Context<'_> {
            Context {
                spec: &self.spec,
                org: &self.f.org,
                res: &self.f.res,
                groups: &self.groups,
                scope: &self.scope.set,
                barred: &self.scope.barred,
                plan_id: "fixture",
                check_in: 8.0,
            }
        }

        fn phase(&self, i: usize) -> Phase<'_> {
            Phase {
                spec: &self.spec.phases[i],
                index: i,
                bake: 24.0,
                window: &self.window,
            }
        }
    }

    fn devices(set: &RoaringBitmap) -> Vec<u32> {
        set.iter().collect()
    }

    #[test]
    fn bake_defaults_by_phase_and_never_undercuts_a_check_in() {
        let s = setup(
            r#"
[[phases]]
kind = "proof_of_concept"
[[phases]]
kind = "pilot"
bake = "4h"
[[phases]]
kind = "enterprise"
"#,
        );
        let mut errs = Vec::new();
        assert_eq!(phase_bake(&s.spec.phases[0], 8.0, &mut errs), 48.0);
        assert_eq!(phase_bake(&s.spec.phases[2], 8.0, &mut errs), 24.0);
        assert_eq!(phase_bake(&s.spec.phases[2], 36.0, &mut errs), 36.0);
        assert!(errs.is_empty());
        assert_eq!(phase_bake(&s.spec.phases[1], 8.0, &mut errs), 4.0);
        assert!(
            messages(&errs)[0].starts_with("a bake time of 4h is shorter than one check-in (8h)")
        );
    }

    /// Goals that need 2 d (a window), 4 d (pending after 4 d) and 6 d (an
    /// advisory goal, which never holds a wave).
    const GOALS_NEED_4D: &str = r#"
  [[phases.goals]]
  metric = "error_rate"
  threshold = "<= 5%"
  window = "2d"
  min_sample = 5
  deadline = "7d"
  [[phases.goals]]
  metric = "pending_after"
  after = "4d"
  threshold = "<= 10%"
  window = "24h"
  min_sample = 5
  deadline = "7d"
  [[phases.goals]]
  metric = "pilot_feedback_score"
  threshold = ">= 3"
  window = "6d"
  min_sample = 5
  deadline = "7d"
  critical = false
"#;

    #[test]
    fn a_bake_left_out_lasts_as_long_as_the_critical_goals_need() {
        let s = setup(&format!(
            "[[phases]]\nkind = \"enterprise\"\n{GOALS_NEED_4D}\n[[phases]]\nkind = \"proof_of_concept\"\n  [[phases.goals]]\n  metric = \"apply_success_rate\"\n  threshold = \">= 90%\"\n  window = \"24h\"\n  min_sample = 3\n  deadline = \"3d\"\n"
        ));
        let mut errs = Vec::new();
        assert_eq!(phase_bake(&s.spec.phases[0], 8.0, &mut errs), 96.0);
        // Goals needing less than the phase's default leave the default.
        assert_eq!(phase_bake(&s.spec.phases[1], 8.0, &mut errs), 48.0);
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn a_bake_shorter_than_the_goals_need_is_an_error_at_that_bake() {
        let s = setup(&format!(
            "[[phases]]\nkind = \"enterprise\"\nbake = \"3d\"\n  [[phases.waves]]\n  groups = [\"it\"]\n  bake = \"2d\"\n  [[phases.waves]]\n  rest = true\n  bake = \"4d\"\n{GOALS_NEED_4D}"
        ));
        let p = &s.spec.phases[0];
        let mut errs = Vec::new();
        assert_eq!(phase_bake(p, 8.0, &mut errs), 72.0, "kept as written");
        assert_eq!(
            messages(&errs),
            [
                "a bake time of 3d is shorter than the Enterprise rollout's goals need: pending after 4 d ≤ 10 % is judged only from 4 d after a wave starts; bake at least 4d, or leave `bake` out to derive it from the goals"
            ]
        );
        assert_eq!(errs[0].span, p.bake.as_ref().unwrap().span());
        // A wave's own bake is held to the same goals.
        let mut errs = Vec::new();
        let drafts = enterprise(
            &s.cx(),
            &s.phase(0),
            &mut RoaringBitmap::new(),
            &mut Vec::new(),
            &mut errs,
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            messages(&errs)[0].starts_with(
                "a bake time of 2d is shorter than the Enterprise rollout's goals need"
            )
        );
        assert_eq!(errs[0].span, p.waves[0].bake.as_ref().unwrap().span());
        let bakes: Vec<f64> = drafts.iter().map(|d| d.bake).collect();
        assert_eq!(bakes, [48.0, 96.0]);
        // A window longer than the bake names the window.
        let s = setup(
            "[[phases]]\nkind = \"pilot\"\nbake = \"3d\"\n  [[phases.goals]]\n  metric = \"tickets_per_100_devices\"\n  threshold = \"<= 3\"\n  window = \"5d\"\n  min_sample = 5\n  deadline = \"7d\"\n",
        );
        let mut errs = Vec::new();
        phase_bake(&s.spec.phases[0], 8.0, &mut errs);
        assert_eq!(
            messages(&errs),
            [
                "a bake time of 3d is shorter than the Pilot's goals need: tickets per 100 devices ≤ 3 is measured over 5 d; bake at least 5d, or leave `bake` out to derive it from the goals"
            ]
        );
    }

    #[test]
    fn proof_of_concept_takes_lab_devices_and_test_groups() {
        let s = setup(
            r#"
[[phases]]
kind = "proof_of_concept"
test_groups = ["All IT Devices"]
help_desk_participates = true
start = "2027-01-12"
"#,
        );
        let (mut checks, mut errs) = (Vec::new(), Vec::new());
        let d = proof_of_concept(&s.cx(), &s.phase(0), &mut checks, &mut errs).unwrap();
        assert!(checks.is_empty() && errs.is_empty(), "{checks:?} {errs:?}");
        assert_eq!(devices(&d.set), [0, 1, 2, 3, 4, 38, 39]);
        assert_eq!(d.name, "Proof of concept");
        assert_eq!(d.groups, ["All IT Devices"]);
        assert_eq!(
            d.pin.as_ref().map(|p| p.get_ref().as_str()),
            Some("2027-01-12")
        );
    }

    #[test]
    fn proof_of_concept_refuses_executives_and_asks_for_the_help_desk() {
        let s = setup(
            r#"
[[phases]]
kind = "proof_of_concept"
test_groups = ["All Executive Devices", "Nobody"]
"#,
        );
        let (mut checks, mut errs) = (Vec::new(), Vec::new());
        let d = proof_of_concept(&s.cx(), &s.phase(0), &mut checks, &mut errs).unwrap();
        assert_eq!(d.set.len(), 5);
        assert!(messages(&errs)[0].starts_with("no group named or with id `Nobody`"));
        let m: Vec<(CheckSeverity, &str)> = checks
            .iter()
            .map(|c| (c.severity, c.message.as_str()))
            .collect();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, CheckSeverity::Error);
        assert!(
            m[0].1
                .starts_with("the proof of concept holds 3 device(s) of VIPs or executives")
        );
        assert_eq!(m[1].0, CheckSeverity::Warning);
        assert!(m[1].1.starts_with("the help desk does not take part"));
    }

    #[test]
    fn pilot_runs_isolated_then_combined_on_a_preferred_sample() {
        let s = setup(
            r#"
[[phases]]
kind = "pilot"
start = "2027-01-13"
  [phases.pilot]
  share = "10%"
  min_devices = 4
  dimensions = ["platform"]
"#,
        );
        let (mut checks, mut errs) = (Vec::new(), Vec::new());
        let mut assigned = RoaringBitmap::new();
        assigned.insert(0);
        let (chosen, drafts) = pilot(&s.cx(), &s.phase(0), &assigned, &mut checks, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        // 34 devices left in scope, 3 barred: 10 % of 31 is 4 devices.
        assert_eq!(chosen.size, 4);
        assert!(!chosen.devices.contains(0), "already assigned");
        assert!(chosen.devices.iter().all(|d| !s.scope.barred.contains(d)));
        // IT staff and high-willingness groups go first.
        assert!(
            chosen.devices.iter().filter(|d| *d < 5).count() >= 3,
            "{chosen:?}"
        );
        let names: Vec<&str> = drafts.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["Pilot (isolated)", "Pilot (combined)"]);
        assert_eq!(drafts[0].mode, Some("isolated"));
        assert!(drafts[0].pin.is_some() && drafts[1].pin.is_none());
        assert!(drafts.iter().all(|d| d.set == chosen.devices));
    }

    #[test]
    fn a_pilot_smaller_than_asked_is_a_warning() {
        let s = setup("[[phases]]\nkind = \"pilot\"\n");
        let (mut checks, mut errs) = (Vec::new(), Vec::new());
        let (chosen, _) = pilot(
            &s.cx(),
            &s.phase(0),
            &RoaringBitmap::new(),
            &mut checks,
            &mut errs,
        );
        // The default asks for 1 %, at least 50 devices; 32 are eligible.
        assert_eq!(chosen.size, 32);
        assert!(checks[0].message.starts_with(
            "the pilot has 32 devices, fewer than the 50 asked for: the scope has only 32 eligible devices"
        ));
    }

    #[test]
    fn enterprise_waves_take_groups_shares_and_the_rest_in_order() {
        let s = setup(
            r#"
[[phases]]
kind = "enterprise"
start = "2027-02-01"
  [[phases.waves]]
  groups = ["it", "execs"]
  [[phases.waves]]
  share = "50%"
  bake = "2d"
  [[phases.waves]]
  name = "Rest"
  rest = true
  split_by = "department"
"#,
        );
        let (mut checks, mut errs) = (Vec::new(), Vec::new());
        let mut assigned = RoaringBitmap::new();
        let drafts = enterprise(&s.cx(), &s.phase(0), &mut assigned, &mut checks, &mut errs);
        assert!(errs.is_empty() && checks.is_empty(), "{errs:?} {checks:?}");
        let names: Vec<&str> = drafts.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "it + execs",
                "Wave 2 (50%)",
                "Rest — Retail",
                "Rest — Sales"
            ]
        );
        assert_eq!(devices(&drafts[0].set), [0, 1, 2, 3, 4, 35, 36, 37]);
        // Half of the phase's 35 devices, in the plan's stable order.
        assert_eq!(drafts[1].set.len(), 18);
        assert_eq!(drafts[1].bake, 48.0);
        assert_eq!(drafts[0].bake, 24.0);
        let total: u64 = drafts.iter().map(|d| d.set.len()).sum();
        assert_eq!(total, 35, "every device once");
        assert_eq!(assigned, s.scope.set);
        // The phase's pin holds for its first wave only.
        assert!(drafts[0].pin.is_some());
        assert!(drafts[1..].iter().all(|d| d.pin.is_none()));
        // The retail part keeps the calendar's window: only groups narrow it.
        assert_eq!(drafts[2].window.days, s.window.days);
    }

    #[test]
    fn a_group_wave_keeps_its_groups_shared_days() {
        let s = setup(
            r#"
[[phases]]
kind = "enterprise"
  [[phases.waves]]
  groups = ["retail", "sales"]
"#,
        );
        let mut assigned = RoaringBitmap::new();
        let drafts = enterprise(
            &s.cx(),
            &s.phase(0),
            &mut assigned,
            &mut Vec::new(),
            &mut Vec::new(),
        );
        assert_eq!(
            drafts[0].window.days,
            [false, true, true, false, false, false, false]
        );
        assert_eq!(drafts[0].groups, ["retail", "sales"]);
    }

    #[test]
    fn enterprise_wave_mistakes() {
        let s = setup(
            r#"
[[phases]]
kind = "enterprise"
  [[phases.waves]]
  groups = ["it"]
  share = "5%"
  [[phases.waves]]
  name = "Nobody"
  [[phases.waves]]
  groups = ["it"]
  bake = "1h"
  [[phases.waves]]
  groups = ["it"]
"#,
        );
        let (mut checks, mut errs) = (Vec::new(), Vec::new());
        let mut assigned = RoaringBitmap::new();
        let drafts = enterprise(&s.cx(), &s.phase(0), &mut assigned, &mut checks, &mut errs);
        assert_eq!(drafts.len(), 1);
        assert_eq!(
            messages(&errs),
            [
                "wave 1 of the enterprise rollout sets more than one of groups, share and rest",
                "wave 2 of the enterprise rollout takes nobody: give it groups, a share or rest = true",
                "a bake time of 1h is shorter than one check-in (8h): devices would not have reported",
            ]
        );
        assert_eq!(
            checks[0].message,
            "wave 'it' has no devices left: earlier waves took them all"
        );
    }

    #[test]
    fn devices_in_no_wave_are_an_error_when_there_is_an_enterprise_rollout() {
        let s = setup("[[phases]]\nkind = \"enterprise\"\n");
        let mut checks = Vec::new();
        let mut assigned = s.scope.set.clone();
        check_all_placed(&s.spec, &s.f.org, &s.scope.set, &assigned, &mut checks);
        assert!(checks.is_empty());
        assigned.remove(1);
        assigned.remove(2);
        check_all_placed(&s.spec, &s.f.org, &s.scope.set, &assigned, &mut checks);
        assert_eq!(checks[0].severity, CheckSeverity::Error);
        assert!(
            checks[0]
                .message
                .starts_with("2 device(s) in scope are in no wave (e.g. PC-01")
        );
        let s = setup("[[phases]]\nkind = \"pilot\"\n");
        let mut checks = Vec::new();
        check_all_placed(
            &s.spec,
            &s.f.org,
            &s.scope.set,
            &RoaringBitmap::new(),
            &mut checks,
        );
        assert!(
            checks.is_empty(),
            "without an enterprise rollout, nobody is missed"
        );
    }

    #[test]
    fn draft_goes_phase_by_phase_without_reusing_devices() {
        let s = setup(
            r#"
[[phases]]
kind = "proof_of_concept"
test_groups = ["All IT Devices"]
[[phases]]
kind = "pilot"
  [phases.pilot]
  share = "10%"
  min_devices = 3
[[phases]]
kind = "enterprise"
  [[phases.waves]]
  rest = true
"#,
        );
        let (mut checks, mut errs) = (Vec::new(), Vec::new());
        let d = draft(&s.cx(), Some(&s.window), &mut checks, &mut errs);
        let phases: Vec<usize> = d.drafts.iter().map(|d| d.phase).collect();
        assert_eq!(phases, [0, 1, 1, 2]);
        assert!(d.drafts[0].set.is_disjoint(&d.drafts[1].set));
        assert!(d.drafts[1].set.is_disjoint(&d.drafts[3].set));
        assert!(d.drafts[0].set.is_disjoint(&d.drafts[3].set));
        assert_eq!(d.pilot.as_ref().map(|p| p.size), Some(3));
        assert!(d.assigned.is_superset(&s.scope.set));
        // Without a window nothing is drafted, but bakes are still checked.
        let d = draft(&s.cx(), None, &mut checks, &mut errs);
        assert!(d.drafts.is_empty() && d.pilot.is_none());
    }
}
