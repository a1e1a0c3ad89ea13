//! A whole rollout on a simulated fleet, on an injected clock.

use ringmaster_core::wave::WaveState;
use ringmaster_engine::connector::simulator::{Fault, SimConfig, Simulator};
use ringmaster_engine::engine::{Engine, WaveSpec};
use ringmaster_plan::planner::{Inputs, build};
use std::sync::Arc;

const PLAN: &str = r#"
[rollout]
id = "sim"
name = "Baseline"
purpose = "Test."
time_zone = "Europe/Amsterdam"
start = "2027-01-11"

[help_desk]
contact = "desk"
capacity_per_day = 100

[sources]
org = ["org"]

[[groups]]
key = "sales"
group = "All Sales Devices"
willingness = "medium"
business_risk = "medium"

[[groups]]
key = "retail"
group = "All Retail Devices"
willingness = "low"
business_risk = "high"

[[groups]]
key = "it"
group = "All IT Devices"
willingness = "high"
business_risk = "low"

[[phases]]
kind = "pilot"
judging = "point"
bake = "1d"
  [phases.pilot]
  min_devices = 30
  [[phases.goals]]
  metric = "apply_success_rate"
  threshold = ">= 90%"
  window = "24h"
  min_sample = 20
  deadline = "5d"

[[phases]]
kind = "enterprise"
judging = "point"
bake = "1d"
on_fail = "ON_FAIL"
  [[phases.waves]]
  groups = ["it"]
  [[phases.waves]]
  groups = ["sales"]
  [[phases.waves]]
  groups = ["retail"]
  [[phases.waves]]
  rest = true
  [[phases.goals]]
  metric = "apply_success_rate"
  threshold = ">= 95%"
  window = "24h"
  min_sample = 20
  deadline = "6d"
"#;

struct Run {
    states: Vec<WaveState>,
    log: Vec<String>,
    days: i64,
}

/// A generated 3,000-device organization with the sample baseline as the
/// new policy, resolved.
struct Fleet {
    org: ringmaster_core::org::Org,
    res: ringmaster_core::targeting::Resolution,
    proposed: Vec<bool>,
}

fn fleet() -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    ringmaster_gen::generate(
        &dir.path().join("org"),
        &ringmaster_gen::Options::new(3000, 7),
    )
    .unwrap();
    ringmaster_gen::generate_proposed(&dir.path().join("new")).unwrap();
    let mut org = ringmaster_import::load(&[dir.path().join("org")])
        .unwrap()
        .org;
    let n = org.policies.len();
    org.add_policies(
        ringmaster_import::load(&[dir.path().join("new")])
            .unwrap()
            .org
            .policies,
    );
    let mut proposed = vec![false; n];
    proposed.resize(org.policies.len(), true);
    let res = ringmaster_core::targeting::resolve(&org, "2027-01-01T00:00:00Z".parse().unwrap());
    Fleet { org, res, proposed }
}

/// The plan `text` over the fleet, built as the CLI builds it.
fn plan_for(
    org: &ringmaster_core::org::Org,
    res: &mut ringmaster_core::targeting::Resolution,
    proposed: &[bool],
    text: &str,
) -> ringmaster_plan::planner::Plan {
    build(
        &ringmaster_plan::parse(text).unwrap(),
        Inputs { org, res, proposed },
    )
    .unwrap()
}

async fn run(on_fail: &str, faults: Vec<Fault>) -> Run {
    let Fleet {
        org,
        mut res,
        proposed,
    } = fleet();
    let text = PLAN.replace("ON_FAIL", on_fail);
    let spec = ringmaster_plan::parse(&text).unwrap();
    let plan = build(
        &spec,
        Inputs {
            org: &org,
            res: &mut res,
            proposed: &proposed,
        },
    )
    .unwrap();
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let sim = Arc::new(Simulator::new(
        &org,
        SimConfig {
            seed: 3,
            faults,
            ..SimConfig::default()
        },
    ));
    let waves = WaveSpec::from_plan(&plan, &org);
    let start = waves[0].starts_at;
    let engine = Engine::start(store, sim, "sim", &text, waves, start)
        .await
        .unwrap();
    let mut log = Vec::new();
    let mut days = 0;
    for hour in 0..24 * 60 {
        let now = start + jiff::SignedDuration::from_hours(hour);
        let t = engine.tick(now).await.unwrap();
        log.extend(t.transitions);
        let rows = engine.rows().await.unwrap();
        let stuck = rows.iter().any(|r| matches!(r.state, WaveState::Paused { reasons, .. } if reasons.contains(ringmaster_core::wave::Reason::Manual)) || r.state == WaveState::RolledBack);
        if rows.iter().all(|r| r.state.is_final()) || stuck {
            days = (now.as_second() - start.as_second()) / 86_400;
            break;
        }
    }
    let states = engine
        .rows()
        .await
        .unwrap()
        .iter()
        .map(|r| r.state)
        .collect();
    Run { states, log, days }
}

#[tokio::test]
async fn a_clean_rollout_runs_to_the_end() {
    let r = run("pause", Vec::new()).await;
    assert!(
        r.states.iter().all(|s| *s == WaveState::Passed),
        "{:?}\n{}",
        r.states,
        r.log.join("\n")
    );
    assert!(
        r.log.iter().any(|l| l.contains("isolated")),
        "{}",
        r.log.join("\n")
    );
    assert!(r.days >= 4 && r.days < 40, "{} days", r.days);
}

#[tokio::test]
async fn a_fault_in_a_wave_is_caught_by_its_gate_and_rolled_back() {
    // Wave 4 is the enterprise 'sales' wave (after the two pilot steps and 'it').
    let fault: Fault = "wave=4,error=0.3".parse().unwrap();
    let r = run("rollback", vec![fault]).await;
    assert_eq!(
        r.states[..3],
        [WaveState::Passed; 3],
        "{}",
        r.log.join("\n")
    );
    assert_eq!(r.states[3], WaveState::RolledBack, "{}", r.log.join("\n"));
    assert_eq!(r.states[4], WaveState::Pending);
    let why = r
        .log
        .iter()
        .find(|l| l.contains("failed its gates"))
        .expect("a sentence says why");
    assert!(
        why.contains("apply success rate")
            && why.contains("misses the bar of ≥ 95 %")
            && why.contains("rolled back, as the plan says"),
        "{why}"
    );
}

#[tokio::test]
async fn a_fault_pauses_the_wave_when_the_plan_says_pause() {
    let fault: Fault = "wave=4,error=0.3".parse().unwrap();
    let r = run("pause", vec![fault]).await;
    assert!(
        matches!(r.states[3], WaveState::Paused { .. }),
        "{:?}",
        r.states
    );
    assert!(
        r.log
            .iter()
            .any(|l| l.contains("paused for an operator, as the plan says")),
        "{}",
        r.log.join("\n")
    );
}

#[tokio::test]
async fn an_operator_pause_with_an_expiry_ends_by_itself() {
    let Fleet {
        org,
        mut res,
        proposed,
    } = fleet();
    let text = PLAN.replace("ON_FAIL", "pause");
    let plan = plan_for(&org, &mut res, &proposed, &text);
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let sim = Arc::new(Simulator::new(&org, SimConfig::default()));
    let waves = WaveSpec::from_plan(&plan, &org);
    let start = waves[0].starts_at;
    let engine = Engine::start(store.clone(), sim, "sim", &text, waves, start)
        .await
        .unwrap();
    let h = |n: i64| start + jiff::SignedDuration::from_hours(n);
    engine.tick(h(0)).await.unwrap();
    assert_eq!(engine.rows().await.unwrap()[0].state, WaveState::Baking);
    let refused = engine
        .operate_until(
            1,
            ringmaster_core::wave::Event::Approve,
            "ops",
            h(1),
            Some(h(5)),
        )
        .await
        .unwrap();
    assert!(refused.unwrap_err().contains("only a pause"));
    engine
        .operate_until(
            1,
            ringmaster_core::wave::Event::Pause,
            "ops",
            h(1),
            Some(h(49)),
        )
        .await
        .unwrap()
        .unwrap();
    engine.tick(h(24)).await.unwrap();
    assert!(matches!(
        engine.rows().await.unwrap()[0].state,
        WaveState::Paused { .. }
    ));
    let t = engine.tick(h(49)).await.unwrap();
    assert!(
        t.transitions
            .iter()
            .any(|l| l.contains("resumed: no longer held for an operator")),
        "{:?}",
        t.transitions
    );
    let log = store.audit_log("sim").await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.actor == "ops" && e.detail.contains("paused until"))
    );
}

#[tokio::test]
async fn editing_a_running_plan_makes_a_new_version_and_keeps_what_passed() {
    let Fleet { org, res, proposed } = fleet();
    let plan_of = |text: &str| {
        let mut res = res.clone();
        build(
            &ringmaster_plan::parse(text).unwrap(),
            Inputs {
                org: &org,
                res: &mut res,
                proposed: &proposed,
            },
        )
        .unwrap()
    };
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let sim = Arc::new(Simulator::new(&org, SimConfig::default()));
    let v1_text = PLAN.replace("ON_FAIL", "pause");
    let waves = WaveSpec::from_plan(&plan_of(&v1_text), &org);
    let start = waves[0].starts_at;
    let e1 = Engine::start(store.clone(), sim.clone(), "sim", &v1_text, waves, start)
        .await
        .unwrap();
    let h = |n: i64| start + jiff::SignedDuration::from_hours(n);
    for hour in 0..24 * 3 {
        e1.tick(h(hour)).await.unwrap();
    }
    let rows = e1.rows().await.unwrap();
    assert_eq!(
        rows[0].state,
        WaveState::Passed,
        "{:?}",
        rows.iter().map(|r| r.state).collect::<Vec<_>>()
    );

    // Only wording changes: the same version goes on.
    let reworded = v1_text.replace("purpose = \"Test.\"", "purpose = \"Test, reworded.\"");
    let e = Engine::start(
        store.clone(),
        sim.clone(),
        "sim",
        &reworded,
        WaveSpec::from_plan(&plan_of(&reworded), &org),
        h(72),
    )
    .await
    .unwrap();
    assert_eq!(e.version(), 1);

    // Other enterprise waves: version 2; the pilot carries over, the rest of v1 is superseded.
    let v2_text = reworded.replace("  [[phases.waves]]\n  groups = [\"it\"]\n", "");
    let e2 = Engine::start(
        store.clone(),
        sim,
        "sim",
        &v2_text,
        WaveSpec::from_plan(&plan_of(&v2_text), &org),
        h(72),
    )
    .await
    .unwrap();
    assert_eq!(e2.version(), 2);
    let v2 = e2.rows().await.unwrap();
    assert_eq!(
        v2[0].state,
        WaveState::Passed,
        "the isolated pilot step passed in v1"
    );
    let v1 = store.waves("sim", 1).await.unwrap();
    assert!(
        v1.iter()
            .all(|r| r.state == WaveState::Passed || r.state == WaveState::Superseded),
        "{:?}",
        v1.iter().map(|r| r.state).collect::<Vec<_>>()
    );
    let history = store.history("sim").await.unwrap();
    assert!(
        history
            .iter()
            .any(|r| r.key.version == 2 && r.why.contains("passed in an earlier version"))
    );
    // Reports are stored by wave position: v1's waves left reports at
    // positions v2's waves now hold. A v2 wave that has not started shows
    // none of them, and a started one only those since it started.
    let mut stale = 0;
    for row in v2.iter().filter(|r| !r.state.is_final()) {
        let all = store.wave_counts("sim", row.key.idx, None).await.unwrap();
        stale += all.reported();
        let f = ringmaster_engine::figures::wave_figures(store.as_ref(), row)
            .await
            .unwrap();
        assert_eq!(
            (f.reported, f.not_reported),
            (0, f.devices),
            "wave {} ({:?}) shows v1's reports",
            row.key.idx + 1,
            row.state
        );
    }
    assert!(stale > 0, "v1 left no reports where v2's waves are");
    // Once a v2 wave starts, its figures grow from its own reports only.
    for hour in 72..24 * 6 {
        e2.tick(h(hour)).await.unwrap();
    }
    let history = store.history("sim").await.unwrap();
    for row in e2.rows().await.unwrap() {
        let Some(started) = history
            .iter()
            .filter(|h| h.key == row.key && h.to == WaveState::Applying)
            .map(|h| h.at)
            .next_back()
        else {
            continue;
        };
        let f = ringmaster_engine::figures::live_counts(store.as_ref(), &row)
            .await
            .unwrap();
        let since = store
            .wave_counts("sim", row.key.idx, Some(started))
            .await
            .unwrap();
        assert_eq!(f, since, "wave {}", row.key.idx + 1);
    }
}

use ringmaster_engine::connector::Approvals;

/// A simulator whose reports cannot be read for a while.
struct Flaky {
    inner: Simulator,
    down: (jiff::Timestamp, jiff::Timestamp),
}

#[async_trait::async_trait]
impl ringmaster_engine::connector::Connector for Flaky {
    async fn assign(
        &self,
        w: u32,
        m: &roaring::RoaringBitmap,
        a: &Approvals,
    ) -> Result<(), ringmaster_engine::connector::ConnectorError> {
        self.inner.assign(w, m, a).await
    }
    async fn unassign(
        &self,
        w: u32,
        a: &Approvals,
    ) -> Result<(), ringmaster_engine::connector::ConnectorError> {
        self.inner.unassign(w, a).await
    }
    async fn isolate(
        &self,
        w: u32,
        a: &Approvals,
    ) -> Result<(), ringmaster_engine::connector::ConnectorError> {
        self.inner.isolate(w, a).await
    }
    async fn end_isolation(
        &self,
        w: u32,
        a: &Approvals,
    ) -> Result<(), ringmaster_engine::connector::ConnectorError> {
        self.inner.end_isolation(w, a).await
    }
    async fn poll(
        &self,
        a: &[ringmaster_engine::connector::Assigned],
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<ringmaster_engine::connector::Reported, ringmaster_engine::connector::ConnectorError>
    {
        if to >= self.down.0 && to < self.down.1 {
            return Err(ringmaster_engine::connector::ConnectorError::new(
                "Graph",
                "503 Service Unavailable",
            ));
        }
        self.inner.poll(a, from, to).await
    }
}

#[tokio::test]
async fn an_unreadable_source_pauses_the_wave_and_it_goes_on_when_readable() {
    let Fleet {
        org,
        mut res,
        proposed,
    } = fleet();
    let text = PLAN.replace("ON_FAIL", "rollback");
    let plan = plan_for(&org, &mut res, &proposed, &text);
    let waves = WaveSpec::from_plan(&plan, &org);
    let start = waves[0].starts_at;
    let h = |n: i64| start + jiff::SignedDuration::from_hours(n);
    let flaky = Flaky {
        inner: Simulator::new(&org, SimConfig::default()),
        down: (h(4), h(30)),
    };
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let engine = Engine::start(store, Arc::new(flaky), "sim", &text, waves, start)
        .await
        .unwrap();
    let mut log = Vec::new();
    for hour in 0..24 * 4 {
        log.extend(engine.tick(h(hour)).await.unwrap().transitions);
    }
    let paused = log
        .iter()
        .find(|l| l.contains("paused, not rolled back"))
        .expect("a source error pauses");
    assert!(paused.contains("503"), "{paused}");
    assert!(
        log.iter().all(|l| !l.contains("rolling back")),
        "{}",
        log.join("\n")
    );
    assert_eq!(
        engine.rows().await.unwrap()[0].state,
        WaveState::Passed,
        "{}",
        log.join("\n")
    );
}

#[tokio::test]
async fn a_fault_from_a_later_instant_makes_applied_devices_report_again() {
    use ringmaster_engine::connector::{Assigned, Connector};
    let Fleet { org, .. } = fleet();
    let t0: jiff::Timestamp = "2027-03-01T00:00:00Z".parse().unwrap();
    let h = jiff::SignedDuration::from_hours;
    let breaks_at = t0 + h(72);
    let fault: Fault = format!("platform=windows,error=0.5,from={breaks_at}")
        .parse()
        .unwrap();
    let sim = Simulator::new(
        &org,
        SimConfig {
            faults: vec![fault],
            ..SimConfig::default()
        },
    );
    let members: roaring::RoaringBitmap = (0..org.devices.rows).collect();
    let assigned = [Assigned {
        wave: 0,
        members,
        since: t0,
        until: None,
        pilot: false,
        left: Vec::new(),
    }];
    let first = sim.poll(&assigned, t0, breaks_at).await.unwrap();
    let errors_before = first
        .statuses
        .iter()
        .filter(|s| s.state == ringmaster_store::DeviceState::Error)
        .count();
    assert!(
        errors_before < first.statuses.len() / 50,
        "only the base error rate before the fault: {errors_before}"
    );
    // The rest of the window in two polls: the same reports as one poll.
    let split = breaks_at + h(4);
    let end = breaks_at + h(12);
    let a = sim.poll(&assigned, breaks_at, split).await.unwrap();
    let b = sim.poll(&assigned, split, end).await.unwrap();
    let whole = sim.poll(&assigned, breaks_at, end).await.unwrap();
    let key = |s: &ringmaster_store::StatusReport| (s.device.clone(), s.reported_at);
    let mut parts: Vec<_> = a.statuses.iter().chain(&b.statuses).map(key).collect();
    let mut one: Vec<_> = whole.statuses.iter().map(key).collect();
    parts.sort();
    one.sort();
    assert_eq!(parts, one, "no report lost or repeated across polls");
    // Only devices that had reported change, within a check-in of the fault,
    // and only Windows ones, about half of them.
    let windows = (0..org.devices.rows)
        .filter(|&d| {
            org.device(ringmaster_core::model::DeviceAttr::Platform, d)
                .is_some_and(|p| p.eq_ignore_ascii_case("windows"))
        })
        .count();
    assert!(
        whole
            .statuses
            .iter()
            .all(|s| s.state == ringmaster_store::DeviceState::Error
                && s.reported_at > breaks_at
                && s.reported_at <= breaks_at + h(8) + jiff::SignedDuration::from_mins(1))
    );
    let n = whole.statuses.len();
    assert!(
        n > windows * 2 / 5 && n < windows * 3 / 5,
        "{n} of {windows} Windows devices regress"
    );
    assert!(!whole.tickets.is_empty(), "errors bring tickets");
    // Nothing more after the check-in that follows the fault.
    let later = sim.poll(&assigned, end, end + h(48)).await.unwrap();
    assert!(later.statuses.is_empty());
}

/// A wave of a phase with `approvals = 2` under `[approvals] distinct`
/// opens only after two people other than the requester approved it; the
/// same person twice counts once, and the answers say what is missing.
#[tokio::test]
async fn a_two_person_wave_opens_only_when_two_others_approved() {
    use ringmaster_engine::engine::Approval;
    let Fleet {
        org,
        mut res,
        proposed,
    } = fleet();
    let text = PLAN.replace("ON_FAIL", "pause").replace(
        "kind = \"enterprise\"\n",
        "kind = \"enterprise\"\napprovals = 2\n",
    ) + "\n[approvals]\ndistinct = true\n";
    let plan = plan_for(&org, &mut res, &proposed, &text);
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let sim = Arc::new(Simulator::new(&org, SimConfig::default()));
    let waves = WaveSpec::from_plan(&plan, &org);
    let first = waves
        .iter()
        .position(|w| w.rules.approval)
        .expect("an enterprise wave asks for approval") as u32
        + 1;
    let start = waves[0].starts_at;
    let engine = Engine::start(store.clone(), sim, "sim", &text, waves, start)
        .await
        .unwrap();
    assert_eq!(engine.request("alice", start).await.unwrap(), "alice");
    let mut now = start;
    while engine.rows().await.unwrap()[first as usize - 1].state != WaveState::AwaitingApproval {
        now += jiff::SignedDuration::from_hours(1);
        assert!(
            now < start + jiff::SignedDuration::from_hours(24 * 60),
            "never asked"
        );
        engine.tick(now).await.unwrap();
    }
    let state = || async { engine.rows().await.unwrap()[first as usize - 1].state };

    let a = engine.approve(first, "alice", now).await.unwrap();
    let Approval::Forbidden(why) = a else {
        panic!("{a:?}")
    };
    assert!(
        why.ends_with("alice requested it and cannot approve it; 0 of 2 approvals; alice requested it, 2 different approvers are needed"),
        "{why}"
    );
    let a = engine.approve(first, "bob", now).await.unwrap();
    let Approval::Recorded(why) = a else {
        panic!("{a:?}")
    };
    assert!(
        why.ends_with("approval by bob recorded; still awaiting approval: 1 of 2 approvals; alice requested it, a different approver is needed"),
        "{why}"
    );
    let a = engine.approve(first, "Bob", now).await.unwrap();
    let Approval::Refused(why) = a else {
        panic!("{a:?}")
    };
    assert!(
        why.contains("Bob approved it already (each person counts once); 1 of 2 approvals"),
        "{why}"
    );
    assert_eq!(state().await, WaveState::AwaitingApproval);
    // The plain operator path says the same and opens nothing.
    let r = engine
        .operate(first, ringmaster_core::wave::Event::Approve, "alice", now)
        .await
        .unwrap();
    assert!(r.unwrap_err().contains("cannot approve"));
    assert_eq!(state().await, WaveState::AwaitingApproval);

    let a = engine.approve(first, "carol", now).await.unwrap();
    let Approval::Opened(line) = a else {
        panic!("{a:?}")
    };
    assert!(line.contains("awaiting approval → applying"), "{line}");
    assert_eq!(state().await, WaveState::Applying);
    let a = engine.approve(first, "dave", now).await.unwrap();
    assert!(matches!(a, Approval::Refused(_)), "{a:?}");

    let seen = engine.approvals(first).await.unwrap().unwrap();
    assert_eq!(seen.requester.as_deref(), Some("alice"));
    let names: Vec<&str> = seen.given.iter().map(|a| a.approver.as_str()).collect();
    assert_eq!(names, ["bob", "carol"]);
    assert!(seen.tally.met());
    let log = store.audit_log("sim").await.unwrap();
    let approved: Vec<(&str, &str)> = log
        .iter()
        .filter(|e| e.action.ends_with("approved") || e.action.ends_with("approval refused"))
        .map(|e| (e.actor.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(
        approved,
        [
            (
                "alice",
                "the requester cannot approve alone: 0 of 2 approvals; alice requested it, 2 different approvers are needed"
            ),
            (
                "bob",
                "1 of 2 approvals; alice requested it, a different approver is needed; requested by alice; approved by bob"
            ),
            (
                "alice",
                "the requester cannot approve alone: 1 of 2 approvals; alice requested it, a different approver is needed"
            ),
            (
                "carol",
                "2 of 2 approvals; requested by alice; approved by bob, carol"
            ),
        ]
    );
    // The transition that opened the wave is carol's.
    assert!(
        log.iter()
            .any(|e| e.actor == "carol" && e.action.contains("awaiting approval → applying"))
    );
    // A crash after the last approval was kept but before the wave opened:
    // an approval by someone already counted opens it then.
    let next = first + 1;
    let key = ringmaster_store::WaveKey {
        rollout: "sim".into(),
        version: engine.version(),
        idx: next - 1,
    };
    for who in ["bob", "carol"] {
        assert!(
            store
                .add_approval(&key, who, "kept before a crash", now)
                .await
                .unwrap()
        );
    }
    while engine.rows().await.unwrap()[next as usize - 1].state != WaveState::AwaitingApproval {
        now += jiff::SignedDuration::from_hours(1);
        assert!(
            now < start + jiff::SignedDuration::from_hours(24 * 90),
            "wave {next} never asked"
        );
        engine.tick(now).await.unwrap();
    }
    let a = engine.approve(next, "Carol", now).await.unwrap();
    assert!(matches!(a, Approval::Opened(_)), "{a:?}");
}

/// The test plan with a ticket goal against the control on its enterprise
/// waves, allowing `margin` more tickets per 1,000 device-days.
fn ticket_plan(margin: u32) -> String {
    PLAN.replace("ON_FAIL", "pause").replace(
        "  deadline = \"6d\"\n",
        &format!("  deadline = \"6d\"\n  [[phases.goals]]\n  metric = \"tickets_per_1000_device_days\"\n  threshold = \"<= control + {margin}\"\n  window = \"24h\"\n  min_sample = 20\n  deadline = \"6d\"\n"),
    )
}

/// Starts (or resumes with an edited plan) the rollout on `text` at `at`
/// and runs it until the first enterprise wave bakes; returns the engine,
/// that wave's position and the hour it baked.
async fn run_to_first_enterprise_bake(
    store: &Arc<dyn ringmaster_store::Store>,
    sim: &Arc<Simulator>,
    text: &str,
    at: Option<jiff::Timestamp>,
) -> (Engine, usize, jiff::Timestamp) {
    let Fleet {
        org,
        mut res,
        proposed,
    } = fleet();
    let plan = build(
        &ringmaster_plan::parse(text).unwrap(),
        Inputs {
            org: &org,
            res: &mut res,
            proposed: &proposed,
        },
    )
    .unwrap();
    let waves = WaveSpec::from_plan(&plan, &org);
    let start = at.unwrap_or(waves[0].starts_at);
    let first = waves
        .iter()
        .position(|w| w.phase == ringmaster_plan::spec::PhaseKind::Enterprise)
        .unwrap();
    let engine = Engine::start(store.clone(), sim.clone(), "sim", text, waves, start)
        .await
        .unwrap();
    let mut hour = 0;
    let now = loop {
        let now = start + jiff::SignedDuration::from_hours(hour);
        engine.tick(now).await.unwrap();
        if engine.rows().await.unwrap()[first].state == WaveState::Baking {
            break now;
        }
        hour += 1;
        assert!(hour < 24 * 20, "the first enterprise wave never baked");
    };
    (engine, first, now)
}

/// Control tickets come in after `now`; the next round's sentence of wave
/// `first` must count them over the device-days of the waves after it,
/// each exposed from this version's start of that wave (less than 24 h ago).
async fn assert_control_is_the_waves_after(
    engine: &Engine,
    store: &Arc<dyn ringmaster_store::Store>,
    first: usize,
    now: jiff::Timestamp,
) {
    // Unreached devices open tickets in the window; one from before it does not count.
    let ticket = |id: u32, at: jiff::Timestamp| ringmaster_store::Ticket {
        id: format!("C{id}-{}", engine.version()),
        at,
        user: None,
        device: None,
        category: None,
        text: "slow".into(),
        wave: None,
        control: true,
    };
    let mut tickets: Vec<_> = (0..30)
        .map(|i| ticket(i, now + jiff::SignedDuration::from_mins(10 + i64::from(i))))
        .collect();
    tickets.push(ticket(99, now - jiff::SignedDuration::from_hours(48)));
    store.ingest_tickets("sim", &tickets).await.unwrap();
    // The next round after the tickets came in.
    let key = engine.rows().await.unwrap()[first].key.clone();
    let judged = store.gate_rounds(&key).await.unwrap().len();
    let mut next = now;
    let rounds = loop {
        next += jiff::SignedDuration::from_hours(1);
        engine.tick(next).await.unwrap();
        let rounds = store.gate_rounds(&key).await.unwrap();
        if rounds.len() > judged {
            break rounds;
        }
        assert!(
            next < now + jiff::SignedDuration::from_hours(24),
            "no round"
        );
    };
    let last = rounds.last().unwrap();
    let sentence = last
        .results
        .iter()
        .find(|r| r.goal() == Some(1))
        .unwrap_or_else(|| panic!("{rounds:?}"))
        .sentence();
    let started = store
        .history("sim")
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.key == key && h.to == WaveState::Applying)
        .unwrap()
        .at;
    let unreached: u64 = engine.waves()[first + 1..]
        .iter()
        .map(|w| w.members.len())
        .sum();
    let days = (next.as_second() - started.as_second()) as f64 / 86_400.0;
    let expect = format!("on the control (30 over {:.0})", unreached as f64 * days);
    assert!(sentence.contains(&expect), "{expect} in {sentence}");
    assert!(!sentence.contains("fixed bar"), "{sentence}");
}

/// A ticket goal against the control: the devices of the scope no wave has
/// reached are the yardstick, counted from the store over the goal's window.
#[tokio::test]
async fn ticket_goals_are_judged_against_the_unreached_devices() {
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let sim = Arc::new(Simulator::new(&fleet().org, SimConfig::default()));
    let (engine, first, now) =
        run_to_first_enterprise_bake(&store, &sim, &ticket_plan(2), None).await;
    assert_control_is_the_waves_after(&engine, &store, first, now).await;
}

/// Devices an earlier plan version treated are never the control: an
/// edited plan carries the passed pilot over without starting it again, and
/// its devices (which have the policy) stay out of the control's device-days.
#[tokio::test]
async fn waves_treated_under_an_earlier_version_are_not_the_control() {
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let sim = Arc::new(Simulator::new(&fleet().org, SimConfig::default()));
    let (_, first, baking) =
        run_to_first_enterprise_bake(&store, &sim, &ticket_plan(2), None).await;
    let (engine, again, now) =
        run_to_first_enterprise_bake(&store, &sim, &ticket_plan(3), Some(baking)).await;
    assert_eq!((engine.version(), again), (2, first));
    let rows = engine.rows().await.unwrap();
    assert!(
        rows[..first].iter().all(|r| r.state == WaveState::Passed),
        "the pilot is carried over: {rows:?}"
    );
    assert_control_is_the_waves_after(&engine, &store, first, now).await;
}

/// The test plan with its enterprise waves judged per stratum of `by` as well.
fn stratified_by(on_fail: &str, by: &str) -> String {
    PLAN.replace("ON_FAIL", on_fail).replace(
        "on_fail = \"rollback\"\n",
        &format!("on_fail = \"rollback\"\nstrata = \"{by}\"\nstratum_min_devices = 30\n"),
    )
}

/// What a run with one broken model ends with: wave states, holds
/// (stratum, devices, evidence, when), how often the hold was audited, and
/// the held devices' reports in the waves after.
#[derive(Debug, PartialEq)]
struct Partial {
    states: Vec<WaveState>,
    holds: Vec<(String, Vec<u32>, String, jiff::Timestamp, bool)>,
    audited: usize,
    later_reports: usize,
    /// The held stratum's devices in the waves after (left out of them).
    later_stratum: u64,
    /// Of those, how many the run state finds overdue (none: held back).
    later_overdue: usize,
    alerts: usize,
    /// A ticket from a held device, opened when the run ended, would count
    /// for the control (it must not: they were treated, then taken out).
    held_are_control: bool,
}

/// Runs the stratified plan with wave 4 ('sales') breaking on its most
/// common model; with `replay`, the engine is dropped the hour the hold is
/// made and a new one runs that hour again (a crash after the hold).
async fn partial(replay: bool) -> (Partial, String, Vec<(&'static str, u32)>) {
    partial_by(replay, "model").await
}

/// The same, stratified by `by` (`model` or `os_version`), the fault on
/// wave 4's largest stratum of it.
async fn partial_by(replay: bool, by: &str) -> (Partial, String, Vec<(&'static str, u32)>) {
    let Fleet {
        org,
        mut res,
        proposed,
    } = fleet();
    let text = stratified_by("rollback", by);
    let plan = plan_for(&org, &mut res, &proposed, &text);
    let waves = WaveSpec::from_plan(&plan, &org);
    let st = waves[3]
        .strata
        .as_ref()
        .expect("enterprise waves are stratified");
    let mut sizes = vec![0u64; st.names.len()];
    for c in st.codes.values() {
        sizes[*c as usize] += 1;
    }
    let (code, &size) = sizes
        .iter()
        .enumerate()
        .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
        .unwrap();
    assert!(size >= 30, "{size} devices of the largest model");
    let name = st.names[code].clone();
    let fault: Fault = match name.strip_prefix("OS version ") {
        // `windows 10.0.22631.4460`: the fault names the version alone.
        Some(v) => format!("wave=4,os={},error=0.3", v.split_once(' ').unwrap().1),
        None => format!(
            "wave=4,model={},error=0.3",
            name.trim_start_matches("model ")
        ),
    }
    .parse()
    .unwrap();
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let sim = Arc::new(Simulator::new(
        &org,
        SimConfig {
            seed: 3,
            faults: vec![fault],
            ..SimConfig::default()
        },
    ));
    let start = waves[0].starts_at;
    let mut engine = Engine::start(
        store.clone(),
        sim.clone(),
        "sim",
        &text,
        waves.clone(),
        start,
    )
    .await
    .unwrap();
    let mut replayed = false;
    for hour in 0..24 * 60 {
        let now = start + jiff::SignedDuration::from_hours(hour);
        engine.tick(now).await.unwrap();
        if replay && !replayed && !engine.holds().await.unwrap().is_empty() {
            replayed = true;
            engine = Engine::start(store.clone(), sim.clone(), "sim", &text, waves.clone(), now)
                .await
                .unwrap();
            engine.tick(now).await.unwrap();
        }
        if engine.finished().await.unwrap() {
            break;
        }
    }
    assert_eq!(replay, replayed, "a hold was made");
    let holds = engine.holds().await.unwrap();
    let held: std::collections::HashSet<String> = holds
        .iter()
        .flat_map(|h| h.devices.iter())
        .filter_map(|d| org.device_id(d).map(str::to_lowercase))
        .collect();
    // The same stratum in the waves after wave 4: left out of them too.
    let mut later_set = roaring::RoaringBitmap::new();
    for w in &waves[4..] {
        for (_, set) in w.named.iter().filter(|(n, _)| *n == name) {
            later_set |= set;
        }
    }
    let held: std::collections::HashSet<String> = held
        .into_iter()
        .chain(
            later_set
                .iter()
                .filter_map(|d| org.device_id(d).map(str::to_lowercase)),
        )
        .collect();
    let mut later_reports = 0;
    for w in 4..engine.waves().len() as u32 {
        later_reports += store
            .wave_device_states("sim", w, None)
            .await
            .unwrap()
            .iter()
            .filter(|(d, _)| held.contains(&d.to_lowercase()))
            .count();
    }
    let run_state = ringmaster_engine::runstate::assess(
        store.as_ref(),
        "sim",
        &engine.rows().await.unwrap(),
        &plan,
        &org,
        &ringmaster_engine::ingest::Directory::new(&org),
        engine.polled_until().await.unwrap().unwrap() + jiff::SignedDuration::from_hours(24 * 30),
    )
    .await
    .unwrap();
    let later_overdue = run_state
        .overdue
        .iter()
        .filter(|d| later_set.contains(**d))
        .count();
    let audited = store
        .audit_log("sim")
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action.ends_with(" held"))
        .count();
    let alerts = store
        .alerts("sim", true)
        .await
        .unwrap()
        .iter()
        .filter(|a| a.kind == "stratum_held")
        .count();
    let calls = sim.calls.lock().unwrap().clone();
    let end = engine.polled_until().await.unwrap().unwrap();
    let attribution = engine
        .attribution(jiff::SignedDuration::from_hours(24 * 7), &[])
        .await
        .unwrap();
    let held_are_control = holds
        .iter()
        .flat_map(|h| h.devices.iter())
        .any(|d| attribution.is_control(&[d], end, "slow"));
    let out = Partial {
        states: engine
            .rows()
            .await
            .unwrap()
            .iter()
            .map(|r| r.state)
            .collect(),
        holds: holds
            .iter()
            .map(|h| {
                (
                    format!("{} {}", h.key.idx + 1, h.stratum),
                    h.devices.iter().collect(),
                    h.evidence.clone(),
                    h.held_at,
                    h.removed_at.is_some(),
                )
            })
            .collect(),
        audited,
        later_reports,
        later_stratum: later_set.len(),
        later_overdue,
        alerts,
        held_are_control,
    };
    (out, name, calls)
}

#[tokio::test]
async fn a_broken_model_is_held_and_the_rest_of_the_wave_goes_on() {
    let (p, model, calls) = partial(false).await;
    // Every wave passed: wave 4 without the broken model.
    assert!(
        p.states.iter().all(|s| *s == WaveState::Passed),
        "{:?} {:?}",
        p.states,
        p.holds
    );
    assert_eq!(p.holds.len(), 1, "{:?}", p.holds);
    let (what, devices, evidence, _, removed) = &p.holds[0];
    assert_eq!(*what, format!("4 {model}"));
    assert!(devices.len() >= 30);
    assert!(
        evidence.contains(&format!("in {model}")) && evidence.contains("misses the bar"),
        "{evidence}"
    );
    // Taken out of wave 4's group (a second assign with the rest); the
    // model never reported in a later wave, where it had devices, and the
    // run state does not expect it.
    assert!(removed);
    assert_eq!(calls.iter().filter(|c| **c == ("assign", 3)).count(), 2);
    assert!(p.later_stratum > 0);
    assert_eq!((p.later_reports, p.later_overdue), (0, 0));
    assert_eq!((p.audited, p.alerts), (1, 1));
    assert!(!p.held_are_control);
}

#[tokio::test]
async fn a_broken_os_build_is_held_by_its_exact_version() {
    let (p, name, _) = partial_by(false, "os_version").await;
    assert!(name.starts_with("OS version "), "{name}");
    assert!(
        p.states.iter().all(|s| *s == WaveState::Passed),
        "{:?} {:?}",
        p.states,
        p.holds
    );
    assert_eq!(p.holds.len(), 1, "{:?}", p.holds);
    let (what, _, evidence, _, removed) = &p.holds[0];
    assert_eq!(*what, format!("4 {name}"));
    assert!(evidence.contains(&format!("in {name}")), "{evidence}");
    assert!(removed);
}

#[tokio::test]
async fn a_restart_on_the_round_that_holds_ends_the_same() {
    let (straight, _, _) = partial(false).await;
    let (replayed, _, _) = partial(true).await;
    assert_eq!(straight, replayed);
}

/// A rate goal is measured over its window: tickets from a wave's first day
/// count while they are within the last 24 h, not for the whole bake.
#[tokio::test]
async fn a_ticket_rate_counts_only_the_tickets_of_its_window() {
    let Fleet {
        org,
        mut res,
        proposed,
    } = fleet();
    // Enterprise waves bake four days; a lenient ticket goal so they go on.
    let text = PLAN
        .replace("ON_FAIL", "pause")
        .replace(
            "judging = \"point\"\nbake = \"1d\"\non_fail",
            "judging = \"point\"\nbake = \"4d\"\non_fail",
        )
        .replace(
            "  deadline = \"6d\"\n",
            "  deadline = \"6d\"\n  [[phases.goals]]\n  metric = \"tickets_per_1000_device_days\"\n  threshold = \"<= 100000\"\n  window = \"24h\"\n  min_sample = 20\n  deadline = \"6d\"\n",
        );
    assert!(text.contains("bake = \"4d\""));
    let plan = plan_for(&org, &mut res, &proposed, &text);
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let sim = Arc::new(Simulator::new(&org, SimConfig::default()));
    let waves = WaveSpec::from_plan(&plan, &org);
    let start = waves[0].starts_at;
    let first = waves
        .iter()
        .position(|w| w.phase == ringmaster_plan::spec::PhaseKind::Enterprise)
        .unwrap();
    let engine = Engine::start(store.clone(), sim, "sim", &text, waves, start)
        .await
        .unwrap();
    let mut now = start;
    while engine.rows().await.unwrap()[first].state != WaveState::Baking {
        now += jiff::SignedDuration::from_hours(1);
        engine.tick(now).await.unwrap();
        assert!(
            now < start + jiff::SignedDuration::from_hours(24 * 20),
            "never baked"
        );
    }
    // 25 tickets on the wave in its first hour of baking, none after.
    let tickets: Vec<_> = (0..25)
        .map(|i| ringmaster_store::Ticket {
            id: format!("W{i}"),
            at: now + jiff::SignedDuration::from_mins(5 + i64::from(i)),
            user: None,
            device: None,
            category: None,
            text: "cannot sign in".into(),
            wave: Some(first as u32),
            control: false,
        })
        .collect();
    store.ingest_tickets("sim", &tickets).await.unwrap();
    let key = engine.rows().await.unwrap()[first].key.clone();
    let counted = |round: &ringmaster_core::gates::GateRound| -> u64 {
        let sentence = round
            .results
            .iter()
            .find(|r| r.goal() == Some(1))
            .unwrap_or_else(|| panic!("{round:?}"))
            .sentence();
        let at = sentence
            .find(" tickets over ")
            .unwrap_or_else(|| panic!("{sentence}"));
        let head = &sentence[..at];
        head[head.rfind(' ').unwrap() + 1..].parse().unwrap()
    };
    let since = now;
    let mut seen = Vec::new();
    while now < since + jiff::SignedDuration::from_hours(40) {
        now += jiff::SignedDuration::from_hours(1);
        engine.tick(now).await.unwrap();
        assert_eq!(
            engine.rows().await.unwrap()[first].state,
            WaveState::Baking,
            "the wave bakes four days"
        );
        if let Some(r) = store.gate_rounds(&key).await.unwrap().last()
            && r.at == now
        {
            seen.push((now.duration_since(since), counted(r)));
        }
    }
    // Within a day of the tickets they count; a day after they are out of the window.
    let day = jiff::SignedDuration::from_hours(24);
    let one_hour = jiff::SignedDuration::from_hours(1);
    assert!(
        seen.iter()
            .any(|(after, n)| *after > one_hour && *after < day && *n == 25),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|(after, _)| *after > day + one_hour),
        "no round a day later: {seen:?}"
    );
    for (after, n) in &seen {
        if *after > day + one_hour {
            assert_eq!(*n, 0, "{after:?} after the tickets: {seen:?}");
        }
    }
}
