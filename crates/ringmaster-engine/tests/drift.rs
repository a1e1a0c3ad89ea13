//! Sixty simulated days of run state on 100,000 devices with drift injected
//! (a new OS build that fails, 2 % new enrollments a week that never get
//! the policy, an unrelated policy assigned later that conflicts). Every
//! injected problem must raise its alert within one device check-in (8 h)
//! of the data showing it, and nothing else may raise one.

use ringmaster_core::alerts::{Change, DEFAULT_RULES};
use ringmaster_core::model::{Assignment, DeviceAttr, Target};
use ringmaster_core::org::Org;
use ringmaster_core::targeting::{Resolution, resolve};
use ringmaster_engine::ingest::Directory;
use ringmaster_engine::watch::{Inputs, Watch};
use ringmaster_plan::planner::{Inputs as PlanInputs, Plan, build};
use ringmaster_store::{DeviceState, StatusReport, Ticket};
use roaring::RoaringBitmap;
use std::collections::BTreeMap;

const PLAN: &str = r#"
[rollout]
id = "watch"
name = "Run state"
purpose = "Test."
time_zone = "UTC"
start = "2027-01-11"

[help_desk]
contact = "desk"
capacity_per_day = 1000

[sources]
org = ["org"]

[[groups]]
key = "windows"
group = "Intune - Windows Devices"
willingness = "medium"
business_risk = "medium"

[[phases]]
kind = "pilot"
judging = "point"
  [phases.pilot]
  min_devices = 30

[[phases]]
kind = "enterprise"
judging = "point"
  [[phases.waves]]
  rest = true

[[accept]]
setting = "device_vendor_msft_laps_policies_passwordagedays"
reason = "the old LAPS policies retire"
expires = "2027-12-31"

[[accept]]
setting = "device_vendor_msft_laps_policies_passwordlength"
reason = "the old LAPS policies retire"
expires = "2027-12-31"
"#;

const H: i64 = 3600;
const D: i64 = 24 * H;
const INITIAL: usize = 100_000;
/// 2 % of the initial fleet a week.
const ENROLL_PER_WEEK: i64 = 2_000;
const DAYS: i64 = 60;
const CHECK: i64 = 4 * H;
const CHECK_IN: i64 = 8 * H;
const NEW_BUILD: &str = "10.0.26300.1100";
const UPGRADE_FROM: i64 = 20 * D;
const CONFLICT_AT: i64 = 40 * D + 12 * H;

/// A number in [0, 1) from a device and a purpose, the same every run.
fn hash(d: u32, salt: u64) -> f64 {
    let mut x = (d as u64) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The device's first check-in at or after `t` (check-ins every 8 h, at
/// a per-device offset).
fn check_in_after(d: u32, t: i64) -> i64 {
    let offset = (hash(d, 1) * CHECK_IN as f64) as i64;
    let k = (t - offset + CHECK_IN - 1).div_euclid(CHECK_IN);
    offset + k * CHECK_IN
}

fn ts(t: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t).unwrap()
}

fn plan_of(org: &Org, res: &mut Resolution, proposed: &[bool]) -> Plan {
    let spec = ringmaster_plan::parse(PLAN).unwrap();
    build(&spec, PlanInputs { org, res, proposed }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_days_of_drift_raise_exactly_the_injected_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ringmaster_gen::Options::new(192_000, 11);
    opts.policies = Some(20);
    ringmaster_gen::generate(&dir.path().join("org"), &opts).unwrap();
    ringmaster_gen::generate_proposed(&dir.path().join("new")).unwrap();
    let mut org = ringmaster_import::load(&[dir.path().join("org")])
        .unwrap()
        .org;
    let existing = org.policies.len();
    org.add_policies(
        ringmaster_import::load(&[dir.path().join("new")])
            .unwrap()
            .org
            .policies,
    );
    let mut proposed = vec![false; existing];
    proposed.resize(org.policies.len(), true);
    let t0: i64 = "2027-03-01T00:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_second();
    let mut res = resolve(&org, ts(t0));
    let mut plan = plan_of(&org, &mut res, &proposed);
    let rolled_out = ringmaster_engine::runstate::rolled_out(&plan);
    let policy = rolled_out[0].clone();
    assert!(
        plan.conflicts
            .findings
            .iter()
            .filter(|f| f.blocking())
            .all(|f| f.values.iter().all(|v| !rolled_out.contains(&v.policy_id))),
        "the rollout starts without unaccepted conflicts"
    );

    // The scope's first 100,000 devices are the fleet; the next ones enroll
    // later, 2,000 a week, and are never assigned (the waves' groups are
    // static), so they never report.
    let scope: Vec<u32> = plan.scope.set.iter().collect();
    let per_device = 7 * D / ENROLL_PER_WEEK;
    let enrolling = (DAYS * D / per_device) as usize + 1;
    assert!(
        scope.len() >= INITIAL + enrolling,
        "scope {} too small",
        scope.len()
    );
    let fleet = &scope[..INITIAL];
    let enrolls: Vec<(u32, i64)> = scope[INITIAL..INITIAL + enrolling]
        .iter()
        .enumerate()
        .map(|(i, &d)| (d, t0 + (i as i64 + 1) * per_device))
        .collect();
    // 0.5 % never check in (switched off); 0.2 % fail from the start.
    let stale = |d: u32| hash(d, 2) < 0.005;
    let broken = |d: u32| !stale(d) && hash(d, 3) < 0.002;
    // 10 % move to the new build over a week from day 20; 60 % of those fail.
    let upgrades_at = |d: u32| {
        (hash(d, 4) < 0.10).then(|| t0 + UPGRADE_FROM + (hash(d, 5) * 7.0 * D as f64) as i64)
    };
    let fails_on_new_build = |d: u32| hash(d, 6) < 0.60;

    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let ids: Vec<String> = (0..org.devices.rows)
        .map(|d| org.device_id(d).unwrap().to_string())
        .collect();
    let org_id = |d: u32| ids[d as usize].clone();
    let report = |d: u32, state: DeviceState, at: i64| StatusReport {
        device: org_id(d),
        policy: policy.clone(),
        state,
        reported_at: ts(at),
        wave: Some(0),
    };
    // The rollout ended the day before: the fleet reported then.
    let baseline: Vec<StatusReport> = fleet
        .iter()
        .filter(|&&d| !stale(d))
        .map(|&d| {
            let state = if broken(d) {
                DeviceState::Error
            } else {
                DeviceState::Succeeded
            };
            report(d, state, check_in_after(d, t0 - D))
        })
        .collect();
    store.ingest_status("watch", &baseline).await.unwrap();

    // What the injected problems do, as the data shows them.
    let mut events: Vec<(i64, u32, DeviceState)> = Vec::new(); // (reported at, device, state)
    for &d in fleet.iter().filter(|&&d| !stale(d) && !broken(d)) {
        if let Some(u) = upgrades_at(d)
            && fails_on_new_build(d)
        {
            events.push((check_in_after(d, u), d, DeviceState::Error));
        }
    }
    events.sort_unstable();

    let mut population: RoaringBitmap = fleet.iter().copied().collect();
    let mut watch = Watch::new("watch");
    let mut generation = 0;
    let mut directory = Directory::new(&org);
    let mut upgraded = RoaringBitmap::new();
    let mut next_event = 0;
    let mut conflicting: Option<RoaringBitmap> = None;
    let mut conflict_reports = 0;
    let mut raised: BTreeMap<String, i64> = BTreeMap::new();
    // When the data first showed each problem, from the simulation's truth.
    let mut shown: BTreeMap<&str, i64> = BTreeMap::new();
    let mut build_errors: (u64, u64, Vec<i64>) = (0, 0, Vec::new());
    let mut t = t0;
    while t <= t0 + DAYS * D {
        // Directory import: enrollments and OS builds as of now.
        population.extend(enrolls.iter().filter(|(_, at)| *at <= t).map(|(d, _)| *d));
        for &d in fleet {
            if let Some(u) = upgrades_at(d)
                && u <= t
                && upgraded.insert(d)
            {
                org.devices.cols[DeviceAttr::OsVersion.index()].set(d, Some(NEW_BUILD));
                build_errors.0 += 1;
            }
        }
        // Reports and tickets that came in since the last check.
        let mut batch = Vec::new();
        let mut tickets = Vec::new();
        while next_event < events.len() && events[next_event].0 <= t {
            let (at, d, state) = events[next_event];
            batch.push(report(d, state, at));
            if state == DeviceState::Error {
                build_errors.1 += 1;
                build_errors.2.push(at);
                if hash(d, 7) < 0.5 {
                    tickets.push(Ticket {
                        id: format!("INC{d}"),
                        at: ts(at),
                        user: None,
                        device: Some(org_id(d)),
                        category: Some("Policy".into()),
                        text: "Settings broken after the Windows update".into(),
                        wave: Some(0),
                        control: false,
                    });
                }
            }
            next_event += 1;
        }
        if let Some(c) = &conflicting {
            // Devices the new policy reached report the conflict at their next check-in.
            for d in c.iter() {
                let at = check_in_after(d, t0 + CONFLICT_AT);
                if at <= t && at > t - CHECK {
                    batch.push(report(d, DeviceState::Conflict, at));
                    conflict_reports += 1;
                }
            }
        }
        store.ingest_status("watch", &batch).await.unwrap();
        store.ingest_tickets("watch", &tickets).await.unwrap();
        // Day 40, noon: someone assigns an unrelated hardening policy to
        // Sales that sets one of the baseline's settings differently.
        if conflicting.is_none() && t >= t0 + CONFLICT_AT {
            let base = org.policy(&policy).unwrap();
            let mut p = org.policies[base].clone();
            let leaf = p
                .settings
                .iter()
                .find(|l| {
                    l.kind == ringmaster_core::settings::LeafKind::Value
                        && l.value.parse::<i64>().is_ok()
                })
                .cloned()
                .unwrap();
            p.id = "hardening-2027".into();
            p.name = "Win - Local Hardening (unrelated)".into();
            p.settings = vec![ringmaster_core::settings::SettingLeaf {
                value: (leaf.value.parse::<i64>().unwrap() + 1).to_string(),
                ..leaf
            }]
            .into();
            let sales = org
                .groups
                .iter()
                .find(|g| g.name == "All Sales Devices")
                .unwrap()
                .id
                .clone();
            p.assignments = vec![Assignment {
                target: Target::Group(sales),
                filter: None,
            }];
            assert!(org.add_policies(vec![p]).is_empty());
            proposed.push(false);
            res = resolve(&org, ts(t));
            plan = plan_of(&org, &mut res, &proposed);
            let f = plan
                .conflicts
                .findings
                .iter()
                .find(|f| f.values.iter().any(|v| v.policy_id == "hardening-2027"))
                .expect("the hardening policy conflicts with the baseline");
            conflicting = Some(&f.affected & &population);
            directory = Directory::new(&org);
            generation += 1;
            shown.insert("conflict", t0 + CONFLICT_AT);
        }
        if build_errors.1 > 0 {
            shown.entry("regressed").or_insert(build_errors.2[0]);
        }
        // The new build stands out once 30 devices run it and 5 fail.
        if build_errors.0 >= 30 && build_errors.1 >= 5 {
            shown
                .entry("outlier")
                .or_insert(build_errors.2[4].max(t0 + UPGRADE_FROM));
        }
        let levels = ringmaster_engine::runstate::default_levels();
        let checked = watch
            .check(
                store.as_ref(),
                &Inputs {
                    org: &org,
                    dir: &directory,
                    generation,
                    population: &population,
                    applied: &[],
                    levels: &levels,
                    rules: &DEFAULT_RULES,
                    conflicts: &plan.conflicts,
                    rolled_out: &rolled_out,
                    // The rollout ended the day before.
                    settled_at: Some(t0 - D),
                },
                ts(t),
            )
            .await
            .unwrap();
        // Enrolled devices past their five days without a report, with the
        // fleet's switched-off ones, reach 2 % of the population.
        let overdue = fleet
            .iter()
            .filter(|&&d| stale(d) && t - t0 >= 5 * D)
            .count()
            + enrolls
                .iter()
                .filter(|(_, at)| t - seen_at(*at, t0) >= 5 * D)
                .count();
        if overdue as f64 >= 0.02 * population.len() as f64 {
            shown.entry("overdue").or_insert(t);
        }
        for c in &checked.changes {
            if let Change::Raised(a) = c {
                assert!(
                    raised.insert(a.key.clone(), a.raised_at.unwrap()).is_none(),
                    "{} raised twice",
                    a.key
                );
            }
        }
        t += CHECK;
    }
    assert!(conflict_reports > 0);
    for (k, at) in &raised {
        eprintln!("raised {k} at day {:.2}", (at - t0) as f64 / D as f64);
    }
    for (k, at) in &shown {
        eprintln!("shown {k} at day {:.2}", (at - t0) as f64 / D as f64);
    }

    // Each injected problem raised its own alert within a check-in of showing.
    let conflict_key = raised
        .keys()
        .find(|k| k.starts_with("conflict:") && k.contains("hardening-2027"))
        .cloned()
        .unwrap_or_else(|| panic!("no conflict alert among {raised:?}"));
    let outlier_key = format!("outlier:OS build:{NEW_BUILD}");
    for (problem, key) in [
        ("overdue", "overdue".to_string()),
        ("regressed", "regressed".to_string()),
        ("outlier", outlier_key.clone()),
        ("conflict", conflict_key.clone()),
    ] {
        let data = shown[problem];
        let at = *raised
            .get(&key)
            .unwrap_or_else(|| panic!("{problem}: no alert {key} among {raised:?}"));
        assert!(
            at >= data - CHECK && at <= data + CHECK_IN,
            "{problem}: data showed it at day {:.2}, alert at day {:.2}",
            (data - t0) as f64 / D as f64,
            (at - t0) as f64 / D as f64
        );
    }
    // And nothing else: every other alert follows from an injected problem,
    // after it showed (a service level the problem broke, the tickets it brought).
    let first_error = shown["regressed"];
    for (key, &at) in &raised {
        let allowed_from = match key.as_str() {
            "overdue" | "regressed" => continue,
            k if k == outlier_key || *k == conflict_key => continue,
            "service_level:apply_success_rate" => shown["overdue"].min(first_error),
            "service_level:error_rate" | "tickets" => first_error,
            "service_level:conflict_count" => shown["conflict"],
            other => panic!(
                "alert {other} raised at day {:.2}, not caused by an injected problem",
                (at - t0) as f64 / D as f64
            ),
        };
        assert!(
            at >= allowed_from,
            "{key} raised at day {:.2}, before its cause showed",
            (at - t0) as f64 / D as f64
        );
    }
    // The alerts are stored: the open ones and the resolved.
    let stored = store.alerts("watch", false).await.unwrap();
    assert!(stored.iter().filter(|a| a.raised_at.is_some()).count() >= raised.len());
    let samples = store.runstate_samples("watch", ts(t0)).await.unwrap();
    assert_eq!(samples.len() as i64, DAYS * D / CHECK + 1);
}

/// The check at which a device enrolled at `at` is first seen.
fn seen_at(at: i64, t0: i64) -> i64 {
    t0 + (at - t0 + CHECK - 1).div_euclid(CHECK) * CHECK
}
