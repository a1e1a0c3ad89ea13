//! The planner through its boundary: plan text and a generated organization
//! in, a plan (or errors with their place) out.

use ringmaster_core::org::Org;
use ringmaster_core::targeting::{Resolution, resolve};
use ringmaster_plan::planner::{CheckSeverity, Inputs, Plan, build};
use ringmaster_plan::spec::PhaseKind;
use ringmaster_plan::{comms, parse, render_error, report};
use roaring::RoaringBitmap;
use std::sync::OnceLock;

struct Fixture {
    org: Org,
    res: Resolution,
    proposed: Vec<bool>,
}

/// A generated organization of 3,000 devices plus the sample baseline.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let org_dir = dir.path().join("org");
        let new_dir = dir.path().join("proposed");
        ringmaster_gen::generate(&org_dir, &ringmaster_gen::Options::new(3000, 7)).unwrap();
        ringmaster_gen::generate_proposed(&new_dir).unwrap();
        let mut org = ringmaster_import::load(&[org_dir]).unwrap().org;
        let new = ringmaster_import::load(&[new_dir]).unwrap().org.policies;
        let n = new.len();
        assert!(org.add_policies(new).is_empty());
        let mut proposed = vec![false; org.policies.len() - n];
        proposed.extend(std::iter::repeat_n(true, n));
        let now = "2026-11-24T12:00:00Z".parse().unwrap();
        let res = resolve(&org, now);
        Fixture { org, res, proposed }
    })
}

const BASE: &str = r#"
[rollout]
id = "test-rollout"
name = "Baseline 2027"
purpose = "Stronger local admin passwords."
time_zone = "Europe/Amsterdam"
start = "2027-01-11"

[calendar]
working_days = ["mon", "tue", "wed", "thu"]
hours = "09:00-16:00"
freezes = [{ from = "2027-02-08", to = "2027-02-12", reason = "carnival" }]

[help_desk]
contact = "desk@example.com"
self_help = ["https://help.example.com/baseline"]
capacity_per_day = 10
tickets_per_100_devices = 2

[sources]
org = ["org"]

[[groups]]
key = "it"
group = "All IT Devices"
willingness = "high"
business_risk = "low"

[[groups]]
key = "sales"
group = "All Sales Devices"
willingness = "medium"
business_risk = "medium"
not_after = "2027-01-20"

[[groups]]
key = "retail"
group = "All Retail Devices"
willingness = "low"
business_risk = "high"
time_zone = "America/New_York"
days = ["tue", "wed"]
hours = "07:00-10:00"

[[groups]]
key = "execs"
group = "All Executive Devices"
willingness = "low"
business_risk = "high"

[[phases]]
kind = "project_scope"
duration = "3d"

[[phases]]
kind = "proof_of_concept"
judging = "point"
test_groups = ["Lab and Test Devices"]
help_desk_participates = true

[[phases]]
kind = "pilot"
judging = "point"
  [phases.pilot]
  share = "1%"
  min_devices = 50
  [[phases.goals]]
  metric = "apply_success_rate"
  threshold = ">= 95%"
  window = "24h"
  min_sample = 30
  deadline = "5d"

[[phases]]
kind = "enterprise"
judging = "point"
  [[phases.waves]]
  share = "5%"
  [[phases.waves]]
  groups = ["sales"]
  [[phases.waves]]
  groups = ["retail"]
  [[phases.waves]]
  name = "Executives"
  groups = ["execs"]
  [[phases.waves]]
  rest = true
  [[phases.goals]]
  metric = "error_rate"
  threshold = "<= 2%"
  window = "24h"
  min_sample = 20
  deadline = "7d"

[[phases]]
kind = "run_state"

[[alerts]]
kind = "outlier"
severity = "critical"
hold = "8h"

[[alerts]]
kind = "overdue"
min_share = "5%"

[[alerts]]
kind = "tickets"
severity = "off"
"#;

fn plan_of(text: &str) -> Result<Plan, String> {
    let f = fixture();
    let spec = parse(text).map_err(|e| render_error("ringmaster.toml", text, &e))?;
    let mut res = f.res.clone();
    build(
        &spec,
        Inputs {
            org: &f.org,
            res: &mut res,
            proposed: &f.proposed,
        },
    )
    .map_err(|errs| {
        errs.iter()
            .map(|e| render_error("ringmaster.toml", text, e))
            .collect::<String>()
    })
}

#[test]
fn every_device_in_scope_is_in_exactly_one_wave() {
    let plan = plan_of(BASE).unwrap();
    let mut seen = RoaringBitmap::new();
    for w in plan.waves.iter().filter(|w| w.mode != Some("combined")) {
        assert!(
            seen.intersection_len(&w.set) == 0,
            "{} overlaps an earlier wave",
            w.name
        );
        seen |= &w.set;
    }
    // Lab devices may sit outside the targeted groups; everything in scope is covered.
    assert!(plan.scope.set.is_subset(&seen));
    assert_eq!(
        plan.errors() > 0,
        plan.checks
            .iter()
            .any(|c| c.severity == CheckSeverity::Error)
    );
    assert!(!plan.checks.iter().any(|c| c.message.contains("in no wave")));
}

#[test]
fn a_plan_without_a_catch_all_reports_the_devices_left_out() {
    let text = BASE.replace("  [[phases.waves]]\n  rest = true\n", "");
    let plan = plan_of(&text).unwrap();
    let left = plan
        .checks
        .iter()
        .find(|c| c.message.contains("in no wave"))
        .expect("left-out devices are an error");
    assert_eq!(left.severity, CheckSeverity::Error);
    assert!(plan.errors() > 0);
}

#[test]
fn schedule_keeps_calendar_freezes_windows_and_bake_times() {
    let plan = plan_of(BASE).unwrap();
    let freeze = (
        jiff::civil::date(2027, 2, 8),
        jiff::civil::date(2027, 2, 12),
    );
    let mut previous_end: Option<jiff::Zoned> = None;
    for w in &plan.waves {
        for d in &w.apply_days {
            assert!(
                !(freeze.0 <= *d && *d <= freeze.1),
                "{} applies on {d}, in the freeze",
                w.name
            );
            let wd = d.weekday().to_monday_zero_offset();
            assert!(wd <= 3, "{} applies on a {:?}", w.name, d.weekday());
        }
        if let Some(prev) = &previous_end {
            assert!(
                w.start >= *prev,
                "{} starts before the previous wave has baked",
                w.name
            );
        }
        assert!(w.bake_hours >= plan.check_in_hours);
        // Long enough for every critical goal of its phase to be judged.
        let phase = plan.phases.iter().find(|p| p.kind == w.phase).unwrap();
        let need = phase
            .goals
            .iter()
            .filter(|g| g.critical)
            .map(|g| g.hours_needed())
            .fold(0.0, f64::max);
        assert!(w.bake_hours >= need, "{} bakes {} h", w.name, w.bake_hours);
        assert_eq!(
            w.end,
            w.start
                .checked_add(jiff::SignedDuration::from_hours(0))
                .unwrap()
                .max(w.end.clone())
        );
        previous_end = Some(w.end.clone());
    }
    let retail = plan.waves.iter().find(|w| w.groups == ["retail"]).unwrap();
    assert_eq!(retail.time_zone, "America/New_York");
    assert_eq!(
        retail.start.time_zone().iana_name(),
        Some("America/New_York")
    );
    assert_eq!(retail.start.hour(), 7);
    for d in &retail.apply_days {
        assert!(matches!(
            d.weekday(),
            jiff::civil::Weekday::Tuesday | jiff::civil::Weekday::Wednesday
        ));
    }
    // Help-desk capacity: 10 tickets a day at 2 per 100 devices is 500 devices a day.
    for w in &plan.waves {
        assert!(
            w.devices_per_day as f64 * 0.02 <= 10.0 + 0.02 * (w.apply_days.len() as f64),
            "{}: {} a day",
            w.name,
            w.devices_per_day
        );
        assert_eq!(
            w.apply_days.len() as u64,
            ((w.devices as f64 * 0.02 / 10.0).ceil() as u64).max(1)
        );
    }
    // Sales asked to be done by 20 January; the plan cannot, and says so.
    assert!(
        plan.checks
            .iter()
            .any(|c| c.message.contains("'sales' asked to be done by 2027-01-20"))
    );
}

#[test]
fn pilot_is_representative_isolated_then_combined_and_never_vip() {
    let f = fixture();
    let plan = plan_of(BASE).unwrap();
    let pilot = plan.pilot.as_ref().unwrap();
    let waves: Vec<_> = plan
        .waves
        .iter()
        .filter(|w| w.phase == PhaseKind::Pilot)
        .collect();
    assert_eq!(waves.len(), 2);
    assert_eq!(
        (waves[0].mode, waves[1].mode),
        (Some("isolated"), Some("combined"))
    );
    assert_eq!(waves[0].set, waves[1].set);
    assert!(waves[1].start >= waves[0].end);
    assert!(pilot.size >= 50);
    for d in &pilot.devices {
        assert!(ringmaster_core::pilot::barred(&f.org, d).is_none());
    }
    // Deterministic: the same plan picks the same devices.
    assert_eq!(plan_of(BASE).unwrap().pilot.unwrap().devices, pilot.devices);
}

#[test]
fn enrollment_approach_follows_the_group() {
    let plan = plan_of(BASE).unwrap();
    let of = |k: &str| plan.groups.iter().find(|g| g.key == k).unwrap();
    assert_eq!(
        of("execs").enrollment,
        ringmaster_plan::spec::Approach::Assisted
    );
    assert!(of("execs").enrollment_why.contains("executives"));
    assert_eq!(
        of("retail").enrollment,
        ringmaster_plan::spec::Approach::Assisted
    );
    let text = BASE.replace(
        "key = \"retail\"\ngroup = \"All Retail Devices\"",
        "key = \"retail\"\ngroup = \"All Retail Devices\"\nenrollment = \"tech-fair\"",
    );
    let plan = plan_of(&text).unwrap();
    let retail = plan.groups.iter().find(|g| g.key == "retail").unwrap();
    assert_eq!(retail.enrollment, ringmaster_plan::spec::Approach::TechFair);
    assert_eq!(retail.enrollment_why, "set in the plan");
}

#[test]
fn project_scope_finds_conflicts_with_existing_policies_and_acceptance_shows() {
    let plan = plan_of(BASE).unwrap();
    let conflicts: Vec<_> = plan
        .checks
        .iter()
        .filter(|c| c.phase == PhaseKind::ProjectScope && c.message.contains("conflict"))
        .collect();
    assert!(!conflicts.is_empty(), "{:#?}", plan.checks);
    let setting = "device_vendor_msft_laps_policies_passwordlength";
    let text = format!(
        "{BASE}\n[[accept]]\nsetting = \"{setting}\"\nreason = \"old LAPS policy retires in March\"\nexpires = \"2027-03-31\"\n"
    );
    let plan = plan_of(&text).unwrap();
    assert!(plan.checks.iter().any(|c| c.severity == CheckSeverity::Info
        && c.message.contains("LAPS › Password Length")
        && c.message.contains("accepted until 2027-03-31")));
    // What changes for users comes from the same comparison.
    let change = plan
        .changes
        .iter()
        .find(|c| c.setting_id == setting)
        .unwrap();
    assert_eq!(change.value, "21");
    assert!(!change.today.is_empty());
}

/// Each kind of plan error: the text to change, its replacement, and what
/// the message must say; the error must point at the changed line.
#[test]
fn plan_errors_say_where_and_why() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "time_zone = \"Europe/Amsterdam\"",
            "time_zone = \"Europe/Amsterdm\"",
            "unknown time zone",
        ),
        (
            "start = \"2027-01-11\"",
            "start = \"2027-13-11\"",
            "is not a day",
        ),
        (
            "hours = \"09:00-16:00\"",
            "hours = \"16:00-09:00\"",
            "not an hours window",
        ),
        (
            "working_days = [\"mon\", \"tue\", \"wed\", \"thu\"]",
            "working_days = [\"mon\", \"tues\", \"wed\", \"thu\"]",
            "is not a weekday",
        ),
        (
            "to = \"2027-02-12\"",
            "to = \"2027-02-01\"",
            "ends (2027-02-01) before it starts",
        ),
        (
            "capacity_per_day = 10",
            "capacity_per_day = 0",
            "at least 1 ticket",
        ),
        (
            "group = \"All Sales Devices\"",
            "group = \"All Sails Devices\"",
            "no group named",
        ),
        ("key = \"execs\"", "key = \"sales\"", "used twice"),
        (
            "groups = [\"retail\"]",
            "groups = [\"retial\"]",
            "no targeted group with key `retial`",
        ),
        ("share = \"5%\"", "share = \"5\"", "is not a share"),
        (
            "kind = \"run_state\"",
            "kind = \"pilot\"",
            "cannot come after",
        ),
        (
            "  [[phases.waves]]\n  share = \"5%\"",
            "  [[phases.waves]]\n  share = \"5%\"\n  start = \"2027-02-09\"",
            "falls in the freeze 'carnival'",
        ),
        (
            "  [[phases.waves]]\n  share = \"5%\"",
            "  [[phases.waves]]\n  share = \"5%\"\n  start = \"2027-01-22\"",
            "fri is not a day",
        ),
        (
            "  [[phases.waves]]\n  share = \"5%\"",
            "  [[phases.waves]]\n  share = \"5%\"\n  start = \"2027-01-12\"",
            "before wave 'Pilot (combined)' has baked",
        ),
        (
            "  [[phases.waves]]\n  share = \"5%\"",
            "  [[phases.waves]]\n  share = \"5%\"\n  start = \"2027-03-02T18:00\"",
            "outside the hours",
        ),
        (
            "kind = \"proof_of_concept\"\n",
            "kind = \"proof_of_concept\"\nbake = \"2h\"\n",
            "shorter than one check-in",
        ),
        (
            "kind = \"pilot\"\n",
            "kind = \"pilot\"\nbake = \"12h\"\n",
            "a bake time of 12h is shorter than the Pilot's goals need: apply success rate ≥ 95 % is measured over 1 d; bake at least 1d",
        ),
        (
            "  name = \"Executives\"\n",
            "  name = \"Executives\"\n  bake = \"20h\"\n",
            "a bake time of 20h is shorter than the Enterprise rollout's goals need: error rate ≤ 2 % is measured over 1 d",
        ),
        (
            "  threshold = \">= 95%\"\n",
            "",
            "goal is not measurable: no threshold",
        ),
        (
            "  metric = \"error_rate\"",
            "  metric = \"error_ratio\"",
            "goal is not specific: unknown metric",
        ),
        (
            "  window = \"24h\"\n  min_sample = 30",
            "  window = \"2h\"\n  min_sample = 30",
            "goal is not realistic",
        ),
        ("  deadline = \"5d\"", "", "goal is not timely: no deadline"),
        (
            "  min_sample = 30",
            "  min_sample = 5000",
            "goal is not attainable",
        ),
        (
            "  share = \"1%\"\n  min_devices",
            "  share = \"1%\"\n  dimensions = [\"hair colour\"]\n  min_devices",
            "unknown dimension",
        ),
        (
            "willingness = \"high\"",
            "willingness = \"very\"",
            "unknown variant",
        ),
        ("duration = \"3d\"", "duraton = \"3d\"", "unknown field"),
        (
            "capacity_per_day = 10",
            "capacity_per_day = \"ten\"",
            "invalid type",
        ),
        (
            "kind = \"outlier\"",
            "kind = \"outliers\"",
            "unknown alert kind `outliers`",
        ),
        (
            "kind = \"tickets\"",
            "kind = \"overdue\"",
            "alert kind `overdue` has a rule already",
        ),
        (
            "severity = \"critical\"",
            "severity = \"severe\"",
            "`severe` is not a severity",
        ),
        (
            "hold = \"8h\"",
            "hold = \"soon\"",
            "hold `soon` is not a duration",
        ),
        (
            "min_share = \"5%\"",
            "min_share = \"5\"",
            "`5` is not a share",
        ),
        (
            "kind = \"enterprise\"\n",
            "kind = \"enterprise\"\napprovals = 0\n",
            "approvals = 0 on Enterprise rollout: give 1 to 10 different approvers per wave",
        ),
        (
            "kind = \"run_state\"\n",
            "kind = \"run_state\"\napprovals = 2\n",
            "Run state has no waves to approve",
        ),
        (
            "[rollout]\n",
            "approvals = { distinct = true }\n[rollout]\n",
            "[approvals] distinct is set but no phase asks for approval",
        ),
        (
            "kind = \"enterprise\"\n",
            "kind = \"enterprise\"\napprovals = \"two\"\n",
            "invalid type",
        ),
    ];
    for (from, to, expect) in cases {
        assert!(
            BASE.contains(from),
            "case text not in the base plan: {from}"
        );
        let text = BASE.replacen(from, to, 1);
        let err = match plan_of(&text) {
            Ok(_) => panic!("`{to}` should be rejected"),
            Err(e) => e,
        };
        assert!(
            err.contains(expect),
            "`{to}`: expected '{expect}' in\n{err}"
        );
        let changed_line = text
            .lines()
            .position(|l| {
                !to.is_empty()
                    && to
                        .lines()
                        .any(|t| !t.trim().is_empty() && l == t && !BASE.lines().any(|b| b == l))
            })
            .map(|i| i + 1);
        if let Some(line) = changed_line {
            assert!(
                err.contains(&format!("ringmaster.toml:{line}:")),
                "`{to}` should point at line {line}:\n{err}"
            );
        } else {
            assert!(err.contains("ringmaster.toml"), "{err}");
        }
    }
}

#[test]
fn alert_rules_replace_the_built_in_ones_by_kind() {
    use ringmaster_core::alerts::{DEFAULT_RULES, Severity};
    let plan = plan_of(BASE).unwrap();
    let kinds: Vec<&str> = plan.alerts.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            "service_level",
            "regressed",
            "conflict",
            "outlier",
            "overdue"
        ],
        "tickets are turned off; the others keep their order"
    );
    let outlier = plan.alerts[3];
    assert_eq!(
        (outlier.severity, outlier.hold_secs, outlier.min_share),
        (Severity::Critical, 8 * 3600, 0.0)
    );
    let overdue = plan.alerts[4];
    assert_eq!(
        (overdue.severity, overdue.hold_secs, overdue.min_share),
        (DEFAULT_RULES[4].severity, DEFAULT_RULES[4].hold_secs, 0.05),
        "what the entry leaves out stays as built in"
    );
    assert_eq!(plan.alerts[0], DEFAULT_RULES[0]);
    let at_once = plan_of(&BASE.replace("hold = \"8h\"", "hold = \"0h\"")).unwrap();
    assert_eq!(at_once.alerts[3].hold_secs, 0);
    let text = report::text(&plan);
    assert!(
        text.contains("outlier raises a critical alert after holding 8 h"),
        "{text}"
    );
}

#[test]
fn the_plan_deploys_something() {
    let f = fixture();
    let spec = parse(BASE).unwrap();
    let mut res = f.res.clone();
    let none = vec![false; f.proposed.len()];
    let errs = build(
        &spec,
        Inputs {
            org: &f.org,
            res: &mut res,
            proposed: &none,
        },
    )
    .unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.message.contains("deploys no new policy"))
    );
}

#[test]
fn report_snapshot() {
    let plan = plan_of(BASE).unwrap();
    insta::assert_snapshot!("plan_report", report::markdown(&plan));
    insta::assert_snapshot!("plan_text", report::text(&plan));
    let svg = report::gantt_svg(&plan, Some(jiff::civil::date(2027, 1, 20)));
    assert!(svg.starts_with("<svg") && svg.contains("today") && svg.contains("Pilot (isolated)"));
}

/// Plan against actual: a wave that ran on time draws no slip; one still
/// waiting for approval two days after its planned end is "2.0 d late" and
/// pushes the forecast end out by as much.
#[test]
fn the_gantt_chart_draws_what_happened_and_the_slip() {
    use report::{Actual, ActualKind};
    let plan = plan_of(BASE).unwrap();
    let (w0, w1) = (&plan.waves[0], &plan.waves[1]);
    let on_time = vec![Actual {
        wave: 0,
        from: w0.start.timestamp(),
        to: w0.end.timestamp(),
        kind: ActualKind::Running,
        note: "baking for 1.0 d".into(),
    }];
    let svg = report::gantt_with_actual(&plan, None, &on_time, Some(w0.end.timestamp()));
    assert!(svg.contains(r#"class="actual""#) && svg.contains("baking for 1.0 d"));
    assert!(!svg.contains("d late") && !svg.contains("forecast end"));
    let now = w1.end.timestamp() + jiff::SignedDuration::from_hours(48);
    let mut late = on_time.clone();
    late.push(Actual {
        wave: 1,
        from: w1.start.timestamp(),
        to: now,
        kind: ActualKind::Waiting,
        note: "awaiting approval <for> 4.0 d, so far".into(),
    });
    let svg = report::gantt_with_actual(&plan, None, &late, Some(now));
    assert!(svg.contains(">2.0 d late<"), "{svg}");
    assert!(svg.contains("forecast end") && svg.contains("#fd8d3c"));
    // Notes are escaped.
    assert!(svg.contains("awaiting approval &lt;for&gt; 4.0 d"));
}

#[test]
fn communications_snapshot() {
    let plan = plan_of(BASE).unwrap();
    let messages = comms::render(&plan, &Default::default(), Some("IT <it@example.com>")).unwrap();
    let audiences: Vec<_> = messages.iter().map(|m| (m.phase, m.audience)).collect();
    assert!(audiences.contains(&(PhaseKind::Pilot, comms::Audience::PilotUsers)));
    assert!(audiences.contains(&(PhaseKind::Pilot, comms::Audience::HelpDesk)));
    assert!(audiences.contains(&(PhaseKind::Enterprise, comms::Audience::ProductionUsers)));
    let pilot = messages
        .iter()
        .find(|m| m.audience == comms::Audience::PilotUsers && m.phase == PhaseKind::Pilot)
        .unwrap();
    insta::assert_snapshot!("pilot_users", pilot.markdown);
    let desk = messages
        .iter()
        .find(|m| m.audience == comms::Audience::HelpDesk && m.phase == PhaseKind::Enterprise)
        .unwrap();
    insta::assert_snapshot!("help_desk_enterprise", desk.markdown);
    let retail = messages
        .iter()
        .find(|m| m.wave.as_deref() == Some("retail"))
        .unwrap();
    // Retail's message is in its own time zone.
    assert!(
        retail.markdown.contains("America/New_York"),
        "{}",
        retail.markdown
    );
    insta::assert_snapshot!("production_users_retail_html", retail.html);
}

#[test]
fn admin_templates_replace_the_built_in_ones_and_errors_say_where() {
    let plan = plan_of(BASE).unwrap();
    let mut t = std::collections::BTreeMap::new();
    t.insert(
        "pilot_users.md".to_string(),
        "# Pilot of {{ rollout.name }}\n<b>{{ help_desk.contact }}</b>\n".to_string(),
    );
    let messages = comms::render(&plan, &t, None).unwrap();
    let m = messages
        .iter()
        .find(|m| m.audience == comms::Audience::PilotUsers)
        .unwrap();
    assert_eq!(m.subject, "Pilot of Baseline 2027");
    assert!(
        m.html.contains("&lt;b&gt;"),
        "raw HTML in a template is shown, not run: {}",
        m.html
    );
    t.insert(
        "help_desk.md".to_string(),
        "line one\n{{ no_such_thing.field }}\n".to_string(),
    );
    let e = comms::render(&plan, &t, None).unwrap_err();
    assert_eq!(e.name, "help_desk.md");
    assert_eq!(e.line, Some(2));
}

#[test]
fn the_committed_json_schema_is_current() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ringmaster.schema.json");
    let now = serde_json::to_string_pretty(&ringmaster_plan::spec::schema()).unwrap() + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == now,
        "docs/ringmaster.schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p ringmaster-plan schema"
    );
}

#[test]
fn the_plan_reference_is_current() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/plan-reference.md");
    let now = ringmaster_plan::spec::reference_markdown();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == now,
        "docs/plan-reference.md is stale: run UPDATE_SCHEMA=1 cargo test -p ringmaster-plan reference"
    );
    assert!(now.contains("| `time_zone` | string | yes |"), "{now}");
}

#[test]
fn the_commented_example_is_a_valid_plan() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/demo/ringmaster.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let spec = parse(&text).unwrap();
    assert_eq!(spec.rollout.id.get_ref(), "win-baseline-2027");
    assert_eq!(spec.phases.len(), 5);
    assert_eq!(spec.alerts.len(), 2);
}

#[test]
fn approvals_on_a_phase_ask_for_approval_by_that_many_people() {
    let text = BASE.replacen(
        "kind = \"enterprise\"\n",
        "kind = \"enterprise\"\napprovals = 2\n",
        1,
    ) + "\n[approvals]\ndistinct = true\n";
    let plan = plan_of(&text).unwrap();
    assert!(plan.distinct_approvers);
    let ent = plan
        .phases
        .iter()
        .find(|p| p.kind == PhaseKind::Enterprise)
        .unwrap();
    assert_eq!((ent.approval, ent.approvers), (true, 2));
    assert!(ent.waves.iter().all(|&i| plan.waves[i].approval));
    let pilot = plan
        .phases
        .iter()
        .find(|p| p.kind == PhaseKind::Pilot)
        .unwrap();
    assert_eq!((pilot.approval, pilot.approvers), (false, 1));
    assert!(
        report::text(&plan).contains("each approved by 2 people other than the requester"),
        "{}",
        report::text(&plan)
    );
    // Without the rule nothing changes.
    let plain = plan_of(BASE).unwrap();
    assert!(!plain.distinct_approvers);
    assert!(plain.phases.iter().all(|p| p.approvers == 1));
}

#[test]
fn wilson_gates_refuse_bars_a_wave_is_too_small_to_prove() {
    let text = BASE.replacen(
        "kind = \"pilot\"\njudging = \"point\"\n",
        "kind = \"pilot\"\nwilson = true\n",
        1,
    );
    let err = plan_of(&text).unwrap_err();
    let line = text
        .lines()
        .position(|l| l == "  threshold = \">= 95%\"")
        .unwrap()
        + 1;
    assert!(
        err.contains("Pilot goal: apply success rate ≥ 95 % cannot be met on wave \"Pilot (isolated)\" (50 devices): with judging = \"wilson\" even a perfect result there has a 95 % bound of 92.9 %; make that wave at least 73 devices or set the bar to ≥ 92.8 % or looser"),
        "{err}"
    );
    assert!(err.contains(&format!("ringmaster.toml:{line}:15")), "{err}");
    // A bar the pilot can prove is accepted.
    let ok = text.replacen("threshold = \">= 95%\"", "threshold = \">= 90%\"", 1);
    assert!(plan_of(&ok).is_ok());
}

#[test]
fn sequential_gates_are_the_default_and_refuse_bars_a_wave_is_too_small_to_prove() {
    let text = BASE.replacen(
        "kind = \"pilot\"\njudging = \"point\"\n",
        "kind = \"pilot\"\n",
        1,
    );
    let err = plan_of(&text).unwrap_err();
    assert!(
        err.contains("with judging = \"sequential\" even a perfect result there has an anytime 95 % bound of 87.1 %; make that wave at least 158 devices or set the bar to ≥ 87 % or looser"),
        "{err}"
    );
    let ok = text.replacen("threshold = \">= 95%\"", "threshold = \">= 85%\"", 1);
    let plan = plan_of(&ok).unwrap();
    let pilot = plan.phases.iter().find(|p| p.label == "Pilot").unwrap();
    assert_eq!(
        pilot.gate_policy.judging,
        ringmaster_core::gates::Judging::Sequential
    );
}

#[test]
fn scope_tags_are_checked_where_written() {
    let cases = [
        ("name = \"\"\nid = \"3\"", "3:8", "needs a name"),
        ("name = \"Paris\"\nid = \"P3\"", "4:6", "is not a number"),
        (
            "name = \"Paris\"\nid = \"3\"\n\n[[scope_tags]]\nname = \"paris\"\nid = \"4\"",
            "7:8",
            "named twice",
        ),
        (
            "name = \"Paris\"\nid = \"3\"\n\n[[scope_tags]]\nname = \"Lyon\"\nid = \"3\"",
            "8:6",
            "given twice",
        ),
    ];
    for (tags, at, want) in cases {
        // Tables go last so the tags' lines are known: line 1 is empty.
        let text = format!("\n[[scope_tags]]\n{tags}\n{BASE}");
        let e = plan_of(&text).unwrap_err();
        assert!(e.contains(want), "{tags}: {e}");
        assert!(e.contains(&format!("ringmaster.toml:{at}")), "{tags}: {e}");
    }
    let plan = plan_of(&format!(
        "[[scope_tags]]\nname = \" Paris \"\nid = \"3\"\n{BASE}"
    ))
    .unwrap();
    assert_eq!(plan.scope_tags[0].label(), "Paris (3)");
}

#[test]
fn a_plan_within_a_scope_tag_keeps_its_devices_and_names_the_rest() {
    use ringmaster_core::model::DeviceMulti;
    use ringmaster_core::scopetags::within;
    use ringmaster_plan::planner::{build_within, find_scope_tag};
    let f = fixture();
    // 19 devices in 20 carry tag 3 (Paris); the rest have none (Default).
    let mut org = f.org.clone();
    let tags = &mut org.devices.multi[DeviceMulti::ScopeTags.index()];
    for row in (0..org.devices.rows).filter(|r| r % 20 != 0) {
        tags.set(row, ["3"]);
    }
    tags.finish(org.devices.rows as usize);
    let text = format!("[[scope_tags]]\nname = \"Paris\"\nid = \"3\"\n{BASE}");
    let spec = parse(&text).unwrap();
    let whole = plan_of(&text).unwrap();
    let tag = find_scope_tag(&whole.scope_tags, "paris").unwrap();
    let mut res = f.res.clone();
    let w = within(&org, &res.enrolled, tag.tag());
    let plan = build_within(
        &spec,
        Inputs {
            org: &org,
            res: &mut res,
            proposed: &f.proposed,
        },
        Some((&tag, &w)),
    )
    .unwrap();
    assert!(plan.scope.set.is_subset(&w.devices));
    assert!(!plan.scope.set.is_empty());
    assert_eq!(
        plan.scope.set.len(),
        whole.scope.set.intersection_len(&w.devices)
    );
    let said = |needle: &str| {
        plan.checks
            .iter()
            .find(|c| c.message.contains(needle))
            .map(|c| c.message.clone())
            .unwrap_or_else(|| panic!("no check says {needle:?}"))
    };
    let left = said("are outside scope tag Paris (3) and are left out of the waves");
    assert!(
        left.contains("MAC-") || left.contains("PC-") || left.contains("-0"),
        "{left}"
    );
    let n = whole.scope.set.len() - plan.scope.set.len();
    assert!(left.starts_with(&format!("{n} device(s)")), "{left}");
    // The generated policies carry no tags: all Default, all outside Paris.
    assert!(
        said("policies outside scope tag Paris (3)")
            .starts_with(&format!("{} policies", org.policies.len()))
    );
    assert!(said("lacks scope tag(s) Paris (3) the plan names").starts_with("new policy '"));
    assert_eq!(plan.within.as_ref(), Some(&tag));
}
