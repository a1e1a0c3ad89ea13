//! `ringmaster bench`: measured figures for the targeting engine, on an
//! organization generated (or reused) in a folder.

use anyhow::Context;
use ringmaster_core::explain::explain_device;
use ringmaster_core::targeting::{Resolution, resolve_filters, resolve_groups, resolve_policies};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod e2e;

#[derive(clap::Args)]
pub struct Args {
    /// What to measure.
    #[arg(value_enum)]
    what: What,
    /// Devices to measure (for `http`: status reports to send); the bench
    /// measures exactly this many. Default 1,000,000 (`rollout` 100,000,
    /// `http` 500,000 reports).
    #[arg(long = "devices", value_name = "N")]
    asked: Option<u32>,
    /// `asked`, or the bench's default.
    #[arg(skip)]
    devices: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Policies to generate (default: the generator's, or 2,000 for conflicts).
    #[arg(long)]
    policies: Option<u32>,
    /// Folder for the generated organization; reused when it already holds one
    /// (of the size asked for).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Shape of the generated organization: `random` is the DuckDB anchor of
    /// `scripts/duckdb-conflicts` (random group memberships); `e2e` then
    /// measures every command but `plan`, whose demo plan needs the
    /// realistic layout's groups.
    #[arg(long, value_enum, default_value = "realistic")]
    layout: super::gen_org::LayoutArg,
    /// How many times to repeat the resolve step (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    #[arg(long)]
    json: bool,
    /// For `ingest` and `http`: the database to measure (default: a fresh SQLite
    /// file). A postgres:// URL measures PostgreSQL; the bench writes its own rollout there.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// For `measure-child`: the command to run and measure.
    #[arg(last = true, hide = true)]
    child: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum What {
    /// Load, resolve every group and policy target, explain single devices.
    Targeting,
    /// Whole-fleet conflict and applicability report, and one device's conflicts
    /// (2,000 policies with about 100,000 setting leaves by default).
    Conflicts,
    /// A representative pilot of 1 % (at least 50 devices) of every device.
    Pilot,
    /// Run state: service levels and drift (regressions, overdue newcomers,
    /// failing OS builds and models) over every device.
    Runstate,
    /// Status reports into the database (SQLite, or --database postgres://…) (1,000,000 by default: --devices sets the
    /// count), the gates of a 200,000-device wave, and the next export of the same devices.
    Ingest,
    /// A simulated rollout (pilot and 4 waves, about 30 days) with a fault
    /// injected into enterprise wave 2, on 100,000 devices by default.
    Rollout,
    /// Status reports over HTTP on loopback into `ringmaster serve`'s API
    /// (500,000 by default; --devices sets the count), batches of 50,000.
    Http,
    /// A whole rollout plan over 200 targeted groups: scope, pilot, waves,
    /// schedule, goals, project-scope checks and communications.
    Plan,
    /// `org`, `conflicts`, `explain --device` and `plan` as child processes:
    /// wall time and peak memory, cold (importing) and warm (from the snapshot).
    E2e,
    /// Runs one command and prints its wall time and peak memory (for `e2e`).
    #[value(hide = true)]
    MeasureChild,
    /// Gates on 1,000 simulated rollouts per scenario with a known truth:
    /// old (point, Wilson) against new (sequential, control, strata).
    Gates,
}

/// Peak and current resident memory from /proc (Linux), in bytes.
fn memory() -> (Option<u64>, Option<u64>) {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn run(mut a: Args) -> anyhow::Result<ExitCode> {
    a.devices = a.asked.unwrap_or(match a.what {
        What::Rollout => 100_000,
        What::Http => 500_000,
        _ => 1_000_000,
    });
    if a.what == What::Gates {
        super::bench_gates::run(1000)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.what == What::MeasureChild {
        return e2e::measure_child(&a.child);
    }
    if a.what == What::E2e {
        return e2e::run(
            a.devices,
            a.seed,
            a.policies,
            a.layout.into(),
            a.repeat,
            a.json,
        );
    }
    if a.what == What::Ingest {
        return ingest(&a);
    }
    if a.what == What::Rollout {
        return rollout(&a);
    }
    if a.what == What::Http {
        return http(&a);
    }
    let name = match (a.what, a.layout) {
        (_, super::gen_org::LayoutArg::Random) => "random",
        (What::Conflicts, _) => "conflicts",
        _ => "targeting",
    };
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ringmaster-bench-{name}-{}-{}", a.devices, a.seed))
    });
    let mut generated = None;
    if !dir.join("managedDevices.ndjson").exists() {
        eprintln!("generating {} devices into {} …", a.devices, dir.display());
        let mut o = ringmaster_gen::Options::new(a.devices, a.seed);
        o.policies = a.policies;
        o.layout = a.layout.into();
        if a.what == What::Conflicts && o.layout == ringmaster_gen::Layout::Realistic {
            o.policies = Some(a.policies.unwrap_or(2000));
            o.settings_per_policy = Some(80);
        }
        let t = Instant::now();
        let progress = std::sync::Arc::default();
        crate::progress::watch(&progress, || {
            ringmaster_gen::generate_with(&dir, &o, &progress)
        })
        .with_context(|| format!("generating into {}", dir.display()))?;
        generated = Some(t.elapsed());
    }
    let t = Instant::now();
    let loaded = super::import(std::slice::from_ref(&dir))
        .map_err(|e| crate::UserError(format!("import failed: {e}")))?;
    let load = t.elapsed();
    let org = loaded.org;
    if org.devices.rows != a.devices {
        // Figures for another size than the one asked for would mislead.
        return Err(crate::UserError(format!(
            "{} holds {} devices, not the {} asked for: name another --dir, or pass --devices {}",
            dir.display(),
            org.devices.rows,
            a.devices,
            org.devices.rows
        ))
        .into());
    }
    if a.what == What::Conflicts {
        return conflicts(&a, &org, generated, load);
    }
    if a.what == What::Pilot {
        return pilot(&a, &org, load);
    }
    if a.what == What::Plan {
        return plan(&a, org, load);
    }
    if a.what == What::Runstate {
        return runstate(&a, &org, load);
    }
    let (_, rss_loaded) = memory();
    let now: jiff::Timestamp = "2026-11-24T12:00:00Z".parse().context("bench clock")?;
    let mut times = Vec::new();
    let mut phases = Vec::new();
    let mut res = None;
    for _ in 0..a.repeat.max(1) {
        let mut r = Resolution::default();
        let t = Instant::now();
        resolve_groups(&org, now, &mut r);
        let g = t.elapsed();
        resolve_filters(&org, now, &mut r);
        let f = t.elapsed() - g;
        resolve_policies(&org, &mut r);
        let total = t.elapsed();
        phases.push((g, f, total - g - f));
        times.push(total);
        res = Some(r);
    }
    let (pg, pf, pp) = phases[phases.len() / 2];
    times.sort();
    let resolve_median = times[times.len() / 2];
    let res = res.expect("at least one run");
    // Explain a spread of devices, every policy each.
    let samples = 200u32.min(org.devices.rows);
    let mut worst = Duration::ZERO;
    let mut total = Duration::ZERO;
    for i in 0..samples {
        let row = (i as u64 * 7919 % org.devices.rows.max(1) as u64) as u32;
        let t = Instant::now();
        let e = explain_device(&org, &res, row, None, now);
        let el = t.elapsed();
        std::hint::black_box(e);
        worst = worst.max(el);
        total += el;
    }
    let (peak, _) = memory();
    let assignments: usize = org.policies.iter().map(|p| p.assignments.len()).sum();
    let dynamic = org
        .groups
        .iter()
        .filter(|g| matches!(g.kind, ringmaster_core::model::GroupKind::Dynamic { .. }))
        .count();
    let targeted: u64 = res.policies.iter().map(|p| p.devices.len()).sum();
    let report = serde_json::json!({
        "devices": org.devices.rows,
        "users": org.users.rows,
        "groups": org.groups.len(),
        "dynamic_groups": dynamic,
        "filters": org.filters.len(),
        "policies": org.policies.len(),
        "assignments": assignments,
        "generate_ms": generated.map(ms),
        "load_ms": ms(load),
        "resolve_ms_median": ms(resolve_median),
        "resolve_ms_all": times.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "resolve_phases_ms": {"groups": ms(pg), "filters": ms(pf), "policies": ms(pp)},
        "explain_ms_mean": ms(total) / samples.max(1) as f64,
        "explain_ms_max": ms(worst),
        "explain_samples": samples,
        "rss_after_load_bytes": rss_loaded,
        "peak_rss_bytes": peak,
        "policy_device_targets": targeted,
        "threads": rayon_threads(),
    });
    if a.json {
        super::write_json(&report)?;
    } else {
        let mib = |b: Option<u64>| {
            b.map(|b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64))
                .unwrap_or_else(|| "n/a".into())
        };
        println!(
            "organization: {} devices, {} users, {} groups ({} dynamic), {} filters, {} policies, {} assignments",
            org.devices.rows,
            org.users.rows,
            org.groups.len(),
            dynamic,
            org.filters.len(),
            org.policies.len(),
            assignments
        );
        if let Some(g) = generated {
            println!("generate:                 {:>9.0} ms", ms(g));
        }
        println!("load from files:          {:>9.0} ms", ms(load));
        println!(
            "resolve groups + targets: {:>9.1} ms (median of {}; all: {})",
            ms(resolve_median),
            times.len(),
            times
                .iter()
                .map(|d| format!("{:.0}", ms(*d)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "  groups {:.0} ms, filters {:.0} ms, policy targets {:.0} ms",
            ms(pg),
            ms(pf),
            ms(pp)
        );
        println!(
            "explain one device:       {:>9.2} ms mean, {:.2} ms max over {samples} devices × {} policies",
            ms(total) / samples.max(1) as f64,
            ms(worst),
            org.policies.len()
        );
        println!(
            "memory:                   {} after load, {} peak",
            mib(rss_loaded),
            mib(peak)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `f` `n` times (at least once): how long each run took, in order,
/// and the last run's result.
fn timed_runs<T>(n: u32, mut f: impl FnMut() -> T) -> (Vec<Duration>, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..n.max(1) {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed());
    }
    (times, last.expect("at least one run"))
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn conflicts(
    a: &Args,
    org: &ringmaster_core::org::Org,
    generated: Option<Duration>,
    load: Duration,
) -> anyhow::Result<ExitCode> {
    use ringmaster_core::conflicts::{Breakdowns, Scope, analyze, analyze_device, analyze_with};
    let now: jiff::Timestamp = "2026-11-24T12:00:00Z".parse().context("bench clock")?;
    let t = Instant::now();
    let res = ringmaster_core::targeting::resolve(org, now);
    let resolve_time = t.elapsed();
    let all: Vec<usize> = (0..org.policies.len()).collect();
    let scope = Scope {
        policies: &all,
        proposed: &[],
        accepted: &[],
        today: now.to_zoned(jiff::tz::TimeZone::UTC).date(),
    };
    let leaves: usize = org.policies.iter().map(|p| p.settings.len()).sum();
    let (mut times, report) = timed_runs(a.repeat, || analyze(org, &res, &scope));
    // What one `ringmaster conflicts` pays: the first analysis in a process
    // also takes its memory from the system.
    let first = times[0];
    times.sort();
    // The findings and their device counts alone, as `conflicts --format
    // csv` asks: the question `scripts/duckdb-conflicts` puts to DuckDB.
    let (mut find_times, _) = timed_runs(a.repeat, || {
        analyze_with(org, &res, &scope, Breakdowns::First(0))
    });
    let find_first = find_times[0];
    find_times.sort();
    // One device's conflicts, for devices that have some.
    let mut worst = Duration::ZERO;
    let mut total = Duration::ZERO;
    let mut samples = 0u32;
    let with_conflicts: Vec<u32> = report
        .findings
        .iter()
        .flat_map(|f| f.affected.iter().take(5))
        .take(200)
        .collect();
    for &d in &with_conflicts {
        let t = Instant::now();
        let f = analyze_device(org, &res, &scope, d);
        let el = t.elapsed();
        std::hint::black_box(f);
        worst = worst.max(el);
        total += el;
        samples += 1;
    }
    let (peak, _) = memory();
    let blocking = report.blocking();
    let out = serde_json::json!({
        "devices": org.devices.rows,
        "policies": org.policies.len(),
        "setting_leaves": leaves,
        "findings": report.findings.len(),
        "blocking": blocking,
        "not_applicable_policies": report.not_applicable.len(),
        "generate_ms": generated.map(ms),
        "load_ms": ms(load),
        "resolve_ms": ms(resolve_time),
        "report_ms_median": ms(times[times.len() / 2]),
        "report_ms_first": ms(first),
        "report_ms_all": times.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "findings_ms_median": ms(find_times[find_times.len() / 2]),
        "findings_ms_first": ms(find_first),
        "findings_ms_all": find_times.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "device_conflicts_ms_mean": if samples > 0 { ms(total) / samples as f64 } else { 0.0 },
        "device_conflicts_ms_max": ms(worst),
        "device_samples": samples,
        "peak_rss_bytes": peak,
    });
    if a.json {
        super::write_json(&out)?;
    } else {
        println!(
            "organization: {} devices, {} policies, {} setting leaves",
            org.devices.rows,
            org.policies.len(),
            leaves
        );
        if let Some(g) = generated {
            println!("generate:                      {:>9.0} ms", ms(g));
        }
        println!("load from files:               {:>9.0} ms", ms(load));
        println!(
            "resolve targets:               {:>9.0} ms",
            ms(resolve_time)
        );
        println!(
            "conflict + applicability report:{:>8.0} ms (median of {}; first {:.0}; all: {}): {} findings, {} blocking, {} policies with not-applicable devices",
            ms(times[times.len() / 2]),
            times.len(),
            ms(first),
            times
                .iter()
                .map(|d| format!("{:.0}", ms(*d)))
                .collect::<Vec<_>>()
                .join(", "),
            report.findings.len(),
            blocking,
            report.not_applicable.len()
        );
        println!(
            "findings only, no breakdowns:  {:>9.0} ms (median of {}; first {:.0})",
            ms(find_times[find_times.len() / 2]),
            find_times.len(),
            ms(find_first)
        );
        println!(
            "one device's conflicts:        {:>9.2} ms mean, {:.2} ms max over {samples} devices",
            if samples > 0 {
                ms(total) / samples as f64
            } else {
                0.0
            },
            ms(worst)
        );
        println!(
            "memory:                        {} peak",
            peak.map(|b| format!("{:.0} MiB", b as f64 / (1 << 20) as f64))
                .unwrap_or_else(|| "n/a".into())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn pilot(a: &Args, org: &ringmaster_core::org::Org, load: Duration) -> anyhow::Result<ExitCode> {
    use ringmaster_core::pilot::{Dimension, select, size_for};
    let all: roaring::RoaringBitmap = (0..org.devices.rows).collect();
    let it = ringmaster_core::pilot::it_staff_devices(org);
    let size = size_for(all.len(), 0.01, 50);
    let mut times = Vec::new();
    let mut result = None;
    for _ in 0..a.repeat.max(1) {
        let t = Instant::now();
        result = Some(select(
            org,
            &all,
            size,
            &Dimension::PILOT,
            "bench-plan",
            &it,
            &roaring::RoaringBitmap::new(),
        ));
        times.push(t.elapsed());
    }
    times.sort();
    let p = result.expect("at least one run");
    let tvd: Vec<(String, f64)> = p
        .dimensions
        .iter()
        .map(|d| (d.dimension.name().to_string(), d.tvd))
        .collect();
    let missing: usize = p.dimensions.iter().map(|d| d.missing.len()).sum();
    let (peak, _) = memory();
    if a.json {
        super::write_json(&serde_json::json!({
            "devices": org.devices.rows, "pilot": p.size, "barred": p.barred, "load_ms": ms(load),
            "select_ms_median": ms(times[times.len() / 2]), "tvd": tvd, "missing_strata": missing,
            "detectable_failure_rate": p.detectable_failure_rate, "peak_rss_bytes": peak,
        }))?;
    } else {
        println!(
            "organization: {} devices ({} barred: VIPs, executives, lab)",
            org.devices.rows, p.barred
        );
        println!("load from files:   {:>9.0} ms", ms(load));
        println!(
            "select pilot:      {:>9.0} ms (median of {}) for {} devices",
            ms(times[times.len() / 2]),
            times.len(),
            p.size
        );
        println!(
            "TVD per dimension: {}",
            tvd.iter()
                .map(|(d, v)| format!("{d} {v:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "strata of 1 % or more missing: {missing}; detectable failure rate {:.3} %",
            p.detectable_failure_rate * 100.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A plan text over `groups` targeted groups of the organization: a pilot,
/// share-based waves, then the groups ten at a time, then the rest.
fn plan_text(org: &ringmaster_core::org::Org, groups: usize) -> (String, usize) {
    use std::fmt::Write;
    let mut t = String::from(
        r#"[rollout]
id = "bench"
name = "Benchmark rollout"
purpose = "Measure the planner."
time_zone = "Europe/Amsterdam"
start = "2027-01-11"

[calendar]
freezes = [{ from = "2027-04-12", to = "2027-04-16", reason = "quarter close" }]

[help_desk]
contact = "desk"
capacity_per_day = 400

[sources]
org = ["."]

"#,
    );
    // Static device groups stand for departments and sites.
    let picked: Vec<&str> = org
        .groups
        .iter()
        .filter(|g| {
            matches!(g.kind, ringmaster_core::model::GroupKind::Static { .. })
                && g.name.contains(" Devices")
        })
        .map(|g| g.name.as_str())
        .take(groups)
        .collect();
    for (i, name) in picked.iter().enumerate() {
        let level = ["low", "medium", "high"][i % 3];
        let _ = writeln!(
            t,
            "[[groups]]\nkey = \"g{i}\"\ngroup = \"{name}\"\nwillingness = \"{level}\"\nbusiness_risk = \"{}\"\n",
            ["low", "medium", "high"][(i / 3) % 3]
        );
    }
    let goal = "[[phases.goals]]\nmetric = \"apply_success_rate\"\nthreshold = \">= 98%\"\nwindow = \"24h\"\nmin_sample = 20\ndeadline = \"7d\"\n";
    let _ = writeln!(t, "[[phases]]\nkind = \"project_scope\"\n");
    let _ = writeln!(
        t,
        "[[phases]]\nkind = \"proof_of_concept\"\nhelp_desk_participates = true\n"
    );
    let _ = writeln!(
        t,
        "[[phases]]\nkind = \"pilot\"\njudging = \"point\"\n{goal}"
    );
    let _ = writeln!(
        t,
        "[[phases]]\nkind = \"enterprise\"\njudging = \"point\"\n{goal}"
    );
    for share in ["1%", "5%", "20%"] {
        let _ = writeln!(t, "[[phases.waves]]\nshare = \"{share}\"\n");
    }
    for chunk in (0..picked.len()).collect::<Vec<_>>().chunks(10) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("\"g{i}\"")).collect();
        let _ = writeln!(t, "[[phases.waves]]\ngroups = [{}]\n", keys.join(", "));
    }
    let _ = writeln!(
        t,
        "[[phases.waves]]\nrest = true\n\n[[phases]]\nkind = \"run_state\"\n"
    );
    (t, picked.len())
}

fn plan(a: &Args, mut org: ringmaster_core::org::Org, load: Duration) -> anyhow::Result<ExitCode> {
    // In a folder of its own, never inside the organization's: a later
    // bench loading that folder must not find an extra policy.
    let proposed = std::env::temp_dir().join("ringmaster-bench-proposed");
    if !proposed.exists() {
        ringmaster_gen::generate_proposed(&proposed)
            .with_context(|| format!("writing {}", proposed.display()))?;
    }
    let more = super::import(std::slice::from_ref(&proposed))
        .map_err(|e| crate::UserError(format!("import failed: {e}")))?;
    let n = more.org.policies.len();
    org.add_policies(more.org.policies);
    let mut is_proposed = vec![false; org.policies.len()];
    for p in is_proposed.iter_mut().rev().take(n) {
        *p = true;
    }
    let now: jiff::Timestamp = "2026-11-24T12:00:00Z".parse().context("bench clock")?;
    let t = Instant::now();
    let res = ringmaster_core::targeting::resolve(&org, now);
    let resolve_time = t.elapsed();
    let (text, groups) = plan_text(&org, 200);
    let mut times = Vec::new();
    let mut out = None;
    for _ in 0..a.repeat.max(1) {
        let mut res = res.clone();
        let t = Instant::now();
        let spec = ringmaster_plan::parse(&text).map_err(|e| anyhow::anyhow!("bench plan: {e}"))?;
        let plan = ringmaster_plan::planner::build(
            &spec,
            ringmaster_plan::planner::Inputs {
                org: &org,
                res: &mut res,
                proposed: &is_proposed,
            },
        )
        .map_err(|e| anyhow::anyhow!("bench plan: {:?}", e.first()))?;
        let messages = ringmaster_plan::comms::render(&plan, &Default::default(), None)
            .map_err(|e| anyhow::anyhow!("bench plan: {e}"))?;
        times.push(t.elapsed());
        out = Some((plan, messages.len()));
    }
    times.sort();
    let (plan, messages) = out.expect("at least one run");
    let (peak, _) = memory();
    let median = ms(times[times.len() / 2]);
    if a.json {
        super::write_json(&serde_json::json!({
            "devices": org.devices.rows, "targeted_groups": groups, "scope": plan.scope.devices,
            "waves": plan.waves.len(), "messages": messages, "load_ms": ms(load),
            "resolve_ms": ms(resolve_time), "plan_ms_median": median, "peak_rss_bytes": peak,
        }))?;
    } else {
        println!(
            "organization: {} devices; plan over {groups} targeted groups, {} devices in scope",
            org.devices.rows, plan.scope.devices
        );
        println!("load from files:   {:>9.0} ms", ms(load));
        println!("resolve targets:   {:>9.0} ms", ms(resolve_time));
        println!(
            "plan:              {median:>9.0} ms (median of {}): {} waves, pilot {}, {} checks, {messages} messages",
            times.len(),
            plan.waves.len(),
            plan.pilot.as_ref().map(|p| p.size).unwrap_or(0),
            plan.checks.len()
        );
        if let Some(p) = peak {
            println!("peak memory:       {:>9.0} MiB", p as f64 / 1048576.0);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The run state of a whole fleet: every device in scope, 2 % of them new
/// this week, errors at 1 % except on one OS build (where 30 % fail), some
/// devices that were Succeeded now in Error. Measures one re-evaluation of
/// the service levels and drift from the per-device columns.
fn runstate(a: &Args, org: &ringmaster_core::org::Org, load: Duration) -> anyhow::Result<ExitCode> {
    use ringmaster_core::gates::GatePolicy;
    use ringmaster_core::goals::{GoalDraft, validate};
    use ringmaster_core::model::DeviceAttr;
    use ringmaster_core::runstate::{Dimension, Snapshot, State, evaluate};
    let n = org.devices.rows as usize;
    let now = 1_800_000_000i64;
    let col = |attr: DeviceAttr| &org.devices.cols[attr.index()];
    let (os, model, platform) = (
        col(DeviceAttr::OsVersion),
        col(DeviceAttr::Model),
        col(DeviceAttr::Platform),
    );
    let names = |c: &ringmaster_core::column::DictColumn| -> Vec<String> {
        (0..c.dict.len() as u32)
            .map(|v| c.dict.value(v).unwrap_or("unknown").to_string())
            .collect()
    };
    let (os_names, model_names, platform_names) = (names(os), names(model), names(platform));
    // The most common OS build is the one that breaks.
    let mut per_build = vec![0u32; os_names.len().max(1)];
    let os_codes = os.view();
    for b in os_codes.iter() {
        if let Some(x) = per_build.get_mut(b as usize) {
            *x += 1;
        }
    }
    let broken = per_build
        .iter()
        .enumerate()
        .max_by_key(|(_, c)| **c)
        .map_or(0, |(b, _)| b as u32);
    let mut rng = a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % 1000
    };
    let mut state = vec![State::Succeeded; n];
    let mut entered = vec![now - 40 * 86_400; n];
    let mut was = roaring::RoaringBitmap::new();
    for d in 0..n {
        let r = next();
        if r < 20 {
            entered[d] = now - (r as i64) * 30_000;
            state[d] = if r < 10 {
                State::Unreported
            } else {
                State::Pending
            };
        } else if os_codes.get(d) == Some(broken) && r < 300 {
            state[d] = State::Error;
            was.insert(d as u32);
        } else if r < 30 {
            state[d] = State::Error;
        }
    }
    let scope: roaring::RoaringBitmap = (0..n as u32).collect();
    let reported_at = vec![now - 3600; n];
    let dims = [
        Dimension {
            name: "platform",
            value_of: platform.view(),
            values: &platform_names,
        },
        Dimension {
            name: "OS build",
            value_of: os.view(),
            values: &os_names,
        },
        Dimension {
            name: "model",
            value_of: model.view(),
            values: &model_names,
        },
    ];
    let snapshot = Snapshot {
        now,
        in_scope: &scope,
        entered: &entered,
        state: &state,
        reported_at: &reported_at,
        was_succeeded: &was,
        dimensions: &dims,
    };
    let level = |metric, threshold, window| {
        validate(
            &GoalDraft {
                metric: Some(metric),
                threshold: Some(threshold),
                window: Some(window),
                min_sample: Some(100),
                deadline: Some("30d"),
                after: None,
                critical: true,
            },
            8.0,
            None,
        )
        .map_err(|e| anyhow::anyhow!("bench service level: {e}"))
    };
    let levels = [
        level("apply_success_rate", ">= 95%", "5d")?,
        level("error_rate", "<= 1%", "5d")?,
        level("conflict_count", "<= 0", "5d")?,
    ];
    let mut times = Vec::new();
    let mut result = None;
    for _ in 0..a.repeat.max(1) {
        let t = Instant::now();
        result = Some(evaluate(&snapshot, &levels, &GatePolicy::default()));
        times.push(t.elapsed());
    }
    times.sort();
    let r = result.expect("at least one run");
    let watched = watch(org, &levels)?;
    let (peak, _) = memory();
    if a.json {
        super::write_json(&serde_json::json!({
            "devices": n, "load_ms": ms(load), "evaluate_ms_median": ms(times[times.len() / 2]),
            "watch_first_check_ms": ms(watched.first), "watch_check_ms": ms(watched.next),
            "watch_new_reports": watched.new_reports, "watch_quiet_check_ms": ms(watched.quiet),
            "watch_alerts": watched.alerts,
            "evaluate_ms_all": times.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
            "regressed": r.regressed.len(), "overdue": r.overdue.len(),
            "outliers": r.outliers, "service_levels": r.service_levels.iter().map(|e| &e.sentence).collect::<Vec<_>>(),
            "peak_rss_bytes": peak,
        }))?;
    } else {
        println!("run state of {n} devices (loaded in {:.0} ms)", ms(load));
        println!(
            "service levels and drift:      {:>9.1} ms (median of {})",
            ms(times[times.len() / 2]),
            times.len()
        );
        for e in &r.service_levels {
            println!("  {}", e.sentence);
        }
        println!(
            "  {} regressed (were Succeeded), {} overdue newcomers",
            r.regressed.len(),
            r.overdue.len()
        );
        for o in &r.outliers {
            println!("  outlier: {}", o.sentence);
        }
        println!(
            "the watch, from the database:  {:>9.1} ms first check (reads all {} reports)",
            ms(watched.first),
            n
        );
        println!(
            "                               {:>9.1} ms next check, after {} new reports",
            ms(watched.next),
            watched.new_reports
        );
        println!(
            "                               {:>9.1} ms a check with nothing new",
            ms(watched.quiet)
        );
        println!("  alerts raised: {}", watched.alerts.join(", "));
        if let Some(p) = peak {
            println!("memory:                        {:>6} MiB peak", p >> 20);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reports per ingestion call: the size of one status export page set.
const BATCH: usize = 100_000;

/// What the watch cost on a fleet.
struct Watched {
    first: Duration,
    next: Duration,
    quiet: Duration,
    new_reports: usize,
    alerts: Vec<String>,
}

/// The run-state watch as `serve` runs it, over a fresh SQLite database
/// holding one report per device: the first check reads them all; the next
/// reads only what came since (1 % of the fleet regressing), as every check
/// after a restart does.
fn watch(
    org: &ringmaster_core::org::Org,
    levels: &[ringmaster_core::goals::Goal],
) -> anyhow::Result<Watched> {
    use ringmaster_engine::watch::{Inputs, Watch};
    use ringmaster_store::{DeviceState, StatusReport};
    let dir = tempfile_dir()?;
    let url = format!("sqlite:{}", dir.join("watch.db").display());
    let _ = std::fs::remove_file(dir.join("watch.db"));
    let rt = super::run::threaded_runtime()?;
    let n = org.devices.rows;
    let start: jiff::Timestamp = "2027-01-18T08:00:00Z".parse().context("bench clock")?;
    let policy = "0b5e11e0-2027-4000-8000-000000000001";
    let report = |d: u32, state: DeviceState, at: jiff::Timestamp| StatusReport {
        device: org.device_id(d).unwrap_or_default().to_string(),
        policy: policy.into(),
        state,
        reported_at: at,
        wave: Some(0),
    };
    let out = rt.block_on(async {
        let store = ringmaster_store::open(&url).await?;
        let rollout = "bench-watch";
        let mut batch = Vec::with_capacity(BATCH);
        for d in 0..n {
            let state = if d % 100 == 7 {
                DeviceState::Error
            } else {
                DeviceState::Succeeded
            };
            batch.push(report(
                d,
                state,
                start + jiff::SignedDuration::from_secs(i64::from(d % 28_800)),
            ));
            if batch.len() == BATCH {
                store.ingest_status(rollout, &batch).await?;
                batch.clear();
            }
        }
        store.ingest_status(rollout, &batch).await?;
        let directory = ringmaster_engine::ingest::Directory::new(org);
        let all: roaring::RoaringBitmap = (0..n).collect();
        let applied = [(all.clone(), start.as_second())];
        let conflicts = ringmaster_core::conflicts::ConflictReport::default();
        let rolled_out = [policy.to_string()];
        let settled = start + jiff::SignedDuration::from_hours(24 * 30);
        let inputs = Inputs {
            org,
            dir: &directory,
            generation: 0,
            population: &all,
            applied: &applied,
            levels,
            rules: &ringmaster_core::alerts::DEFAULT_RULES,
            conflicts: &conflicts,
            rolled_out: &rolled_out,
            settled_at: Some(settled.as_second()),
        };
        let mut w = Watch::new(rollout);
        let now = settled + jiff::SignedDuration::from_hours(24);
        let t = Instant::now();
        w.check(store.as_ref(), &inputs, now).await?;
        let first = t.elapsed();
        // 1 % of the fleet regresses within the next 4 hours.
        let regressed: Vec<StatusReport> = (0..n)
            .filter(|d| d % 100 == 50)
            .map(|d| {
                report(
                    d,
                    DeviceState::Error,
                    now + jiff::SignedDuration::from_secs(i64::from(d % 14_000)),
                )
            })
            .collect();
        store.ingest_status(rollout, &regressed).await?;
        let later = now + jiff::SignedDuration::from_hours(4);
        let t = Instant::now();
        let checked = w.check(store.as_ref(), &inputs, later).await?;
        let next = t.elapsed();
        let t = Instant::now();
        w.check(
            store.as_ref(),
            &inputs,
            later + jiff::SignedDuration::from_hours(4),
        )
        .await?;
        let quiet = t.elapsed();
        anyhow::Ok(Watched {
            first,
            next,
            quiet,
            new_reports: regressed.len(),
            alerts: checked
                .changes
                .iter()
                .filter_map(|c| match c {
                    ringmaster_core::alerts::Change::Raised(a) => Some(a.key.clone()),
                    ringmaster_core::alerts::Change::Resolved(_) => None,
                })
                .collect(),
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Ingests status reports into a fresh SQLite file (or a new rollout of
/// the PostgreSQL database given) in one call, judges the goals of a
/// 200,000-device wave from the stored states, then ingests the next
/// export of the same devices (half updated, half duplicates).
fn ingest(a: &Args) -> anyhow::Result<ExitCode> {
    use ringmaster_core::gates::{GatePolicy, Observed, evaluate};
    use ringmaster_core::goals::{GoalDraft, validate};
    use ringmaster_store::{DeviceState, StatusReport};
    let dir = tempfile_dir()?;
    let url = a
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", dir.join("bench.db").display()));
    let backend = if url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    // Its own rollout: a shared database may hold others (and earlier runs).
    let rollout = format!(
        "bench-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_second()
    );
    let rt = super::run::threaded_runtime()?;
    let n = a.devices as u64;
    let wave_size = 200_000u64.min(n);
    let start: jiff::Timestamp = "2027-01-18T08:00:00Z".parse().context("bench clock")?;
    use DeviceState::{Error, Pending, Succeeded};
    let states = [
        Succeeded, Succeeded, Succeeded, Succeeded, Succeeded, Succeeded, Succeeded, Succeeded,
        Error, Pending,
    ];
    let (ingest_time, eval_time, eval, again_time) = rt.block_on(async {
        let store = ringmaster_store::open(&url).await?;
        let t = Instant::now();
        // One call with every report, as `ringmaster ingest` makes for a
        // status export (the store commits it in batches of its own).
        let reports: Vec<StatusReport> = (0..n)
            .map(|d| StatusReport {
                device: format!(
                    "{:08x}-0000-4000-8000-{d:012}",
                    d.wrapping_mul(2654435761) as u32
                ),
                policy: "0b5e11e0-2027-4000-8000-000000000001".into(),
                state: states[(d % 10) as usize],
                reported_at: start + jiff::SignedDuration::from_secs((d % 28_800) as i64),
                wave: Some(if d < wave_size { 1 } else { 2 }),
            })
            .collect();
        store.ingest_status(&rollout, &reports).await?;
        let ingest_time = t.elapsed();
        let goal = validate(
            &GoalDraft {
                metric: Some("apply_success_rate"),
                threshold: Some(">= 95%"),
                window: Some("24h"),
                min_sample: Some(100),
                deadline: Some("7d"),
                after: None,
                critical: true,
            },
            8.0,
            Some(wave_size),
        )
        .map_err(|e| anyhow::anyhow!("bench goal: {e}"))?;
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..5 {
            let t = Instant::now();
            // Since the wave's start, as the engine's gate round reads it.
            let c = store.wave_counts(&rollout, 1, Some(start)).await?;
            let o = Observed {
                devices: wave_size,
                reported: c.reported(),
                succeeded: c.succeeded,
                errors: c.error,
                conflicts: c.conflict,
                not_applicable: c.not_applicable,
                pending: c.pending,
                hours_since_start: 30.0,
                ..Default::default()
            };
            last = Some(evaluate(&goal, &o, &GatePolicy::default(), None));
            times.push(t.elapsed());
        }
        times.sort();
        // The next export: every device again, half of them a day later
        // with their state moved on (stored states updated), half not
        // reported since (duplicates).
        let again: Vec<StatusReport> = reports
            .into_iter()
            .enumerate()
            .map(|(d, r)| {
                if d % 2 == 0 {
                    StatusReport {
                        reported_at: r.reported_at + jiff::SignedDuration::from_hours(24),
                        state: states[(d + 3) % 10],
                        ..r
                    }
                } else {
                    r
                }
            })
            .collect();
        let t = Instant::now();
        let got = store.ingest_status(&rollout, &again).await?;
        let again_time = t.elapsed();
        anyhow::ensure!(
            got.inserted == n.div_ceil(2) && got.duplicates == n / 2,
            "the next export stored {} and found {} duplicates",
            got.inserted,
            got.duplicates
        );
        anyhow::Ok((ingest_time, times[times.len() / 2], last, again_time))
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    let rate = n as f64 / ingest_time.as_secs_f64();
    let again_rate = n as f64 / again_time.as_secs_f64();
    let eval = eval.map(|e| e.sentence).unwrap_or_default();
    if a.json {
        super::write_json(&serde_json::json!({
            "backend": backend,
            "reports": n, "ingest_ms": ms(ingest_time), "reports_per_second": rate,
            "wave_devices": wave_size, "gate_ms_median": ms(eval_time), "gate": eval,
            "next_export_ms": ms(again_time), "next_export_reports_per_second": again_rate,
        }))?;
    } else {
        println!(
            "ingest {n} status reports into {backend}: {:>8.0} ms ({rate:.0} reports/s)",
            ms(ingest_time)
        );
        println!(
            "gates of a {wave_size}-device wave:   {:>8.1} ms (median of 5)",
            ms(eval_time)
        );
        println!("  {eval}");
        println!(
            "the next export of {n} (half updated, half duplicates): {:>8.0} ms ({again_rate:.0} reports/s)",
            ms(again_time)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A fresh folder for a benchmark database.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("ringmaster-bench-ingest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

const ROLLOUT_PLAN: &str = r#"
[rollout]
id = "bench-rollout"
name = "Benchmark rollout"
purpose = "Measure the engine."
time_zone = "Europe/Amsterdam"
start = "2027-01-11"

[help_desk]
contact = "desk"
capacity_per_day = 100000

[sources]
org = ["."]
new = ["proposed"]

[[groups]]
key = "all"
group = "Intune - Windows Devices"
willingness = "medium"
business_risk = "medium"

[[phases]]
kind = "pilot"
judging = "point"
bake = "3d"
  [[phases.goals]]
  metric = "apply_success_rate"
  threshold = ">= 95%"
  window = "24h"
  min_sample = 50
  deadline = "7d"

[[phases]]
kind = "enterprise"
judging = "point"
bake = "4d"
on_fail = "rollback"
  [[phases.waves]]
  share = "5%"
  [[phases.waves]]
  share = "20%"
  [[phases.waves]]
  share = "40%"
  [[phases.waves]]
  rest = true
  [[phases.goals]]
  metric = "apply_success_rate"
  threshold = ">= 97%"
  window = "24h"
  min_sample = 100
  deadline = "10d"
"#;

/// Generates a fleet (unless `dir` holds one) with the proposed baseline
/// beside it, and plans [`ROLLOUT_PLAN`] on it.
fn planned(
    dir: &std::path::Path,
    devices: u32,
    seed: u64,
) -> anyhow::Result<(super::conflicts::Prepared, ringmaster_plan::planner::Plan)> {
    if !dir.join("managedDevices.ndjson").exists() {
        eprintln!("generating {devices} devices into {} …", dir.display());
        ringmaster_gen::generate(dir, &ringmaster_gen::Options::new(devices, seed))
            .with_context(|| format!("generating into {}", dir.display()))?;
    }
    // Beside the organization, not in it: the import reads folders whole.
    let proposed = dir.with_extension("proposed");
    if !proposed.exists() {
        ringmaster_gen::generate_proposed(&proposed)
            .with_context(|| format!("writing {}", proposed.display()))?;
    }
    let now: jiff::Timestamp = "2026-11-24T12:00:00Z".parse().context("bench clock")?;
    let mut p = super::conflicts::prepare(
        &[dir.to_path_buf()],
        &[],
        std::slice::from_ref(&proposed),
        false,
        now,
    )?;
    let spec =
        ringmaster_plan::parse(ROLLOUT_PLAN).map_err(|e| anyhow::anyhow!("bench plan: {e}"))?;
    let plan = ringmaster_plan::planner::build(
        &spec,
        ringmaster_plan::planner::Inputs {
            org: &p.org,
            res: &mut p.res,
            proposed: &p.proposed,
        },
    )
    .map_err(|e| anyhow::anyhow!("bench plan: {:?}", e.first()))?;
    Ok((p, plan))
}

/// Runs a rollout on the simulated fleet from start to end, twice: clean
/// (every wave passes), and with a fault in enterprise wave 2 (caught by its
/// gate and rolled back).
fn rollout(a: &Args) -> anyhow::Result<ExitCode> {
    use ringmaster_core::wave::WaveState;
    use ringmaster_engine::connector::simulator::{Fault, SimConfig, Simulator};
    use ringmaster_engine::engine::{Engine, WaveSpec};
    let devices = a.devices;
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ringmaster-bench-rollout-{devices}-{}", a.seed))
    });
    let (p, plan) = planned(&dir, devices, a.seed)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let db_dir = tempfile_dir()?;
    let mut results = Vec::new();
    for (label, faults) in [
        ("clean", Vec::new()),
        (
            "fault in enterprise wave 2",
            vec![Fault {
                wave: Some(3),
                os_prefix: None,
                platform: None,
                model: None,
                setting: None,
                error_rate: 0.3,
                conflict_rate: 0.0,
                from: None,
            }],
        ),
    ] {
        let url = format!(
            "sqlite:{}",
            db_dir.join(format!("{}.db", results.len())).display()
        );
        let waves = WaveSpec::from_plan(&plan, &p.org);
        let start = waves[0].starts_at;
        let sim = Simulator::new(
            &p.org,
            SimConfig {
                seed: a.seed,
                faults,
                ..SimConfig::default()
            },
        );
        let t = Instant::now();
        let (states, days, why) = rt.block_on(async {
            let store = ringmaster_store::open(&url).await?;
            let engine = Engine::start(
                store,
                std::sync::Arc::new(sim),
                &plan.id,
                ROLLOUT_PLAN,
                waves,
                start,
            )
            .await?;
            let mut now = start;
            let mut why = None;
            for _ in 0..24 * 90 {
                let tick = engine.tick(now).await?;
                if let Some(w) = tick
                    .transitions
                    .iter()
                    .find(|l| l.contains("failed its gates"))
                {
                    why = Some(w.clone());
                }
                let rows = engine.rows().await?;
                if rows.iter().all(|r| r.state.is_final())
                    || rows.iter().any(|r| r.state == WaveState::RolledBack)
                {
                    break;
                }
                now += jiff::SignedDuration::from_hours(1);
            }
            let rows = engine.rows().await?;
            anyhow::Ok((
                rows.iter().map(|r| r.state.name()).collect::<Vec<_>>(),
                (now.as_second() - start.as_second()) as f64 / 86_400.0,
                why,
            ))
        })?;
        results.push((label, t.elapsed(), states, days, why));
    }
    let _ = std::fs::remove_dir_all(&db_dir);
    println!(
        "simulated fleet: {} devices, {} in scope, {} waves",
        p.org.devices.rows,
        plan.scope.devices,
        plan.waves.len()
    );
    for (label, took, states, days, why) in &results {
        println!(
            "{label}: {:.1} simulated days in {:.2} s wall; waves: {}",
            days,
            took.as_secs_f64(),
            states.join(", ")
        );
        if let Some(w) = why {
            println!("  {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A load generator: starts the API on a loopback port over a simulated
/// rollout and posts status batches from two connections, as HTTP/1.1
/// written by hand so the measure is the server's, not a client library's.
fn http(a: &Args) -> anyhow::Result<ExitCode> {
    use std::io::{BufRead, BufReader, Read, Write};
    let total = a.devices as usize;
    let dir = std::env::temp_dir().join(format!("ringmaster-bench-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (p, plan) = planned(&dir.join("org"), 20_000, a.seed)?;
    let rt = super::run::threaded_runtime()?;
    let url = a
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", dir.join("http.db").display()));
    let rollout = plan.id.clone();
    let (addr, token, store, reader, starts) = rt.block_on(async {
        let store = ringmaster_store::open(&url).await?;
        let waves = ringmaster_engine::engine::WaveSpec::from_plan(&plan, &p.org);
        let start = waves[0].starts_at;
        let starts: Vec<jiff::Timestamp> = waves.iter().map(|w| w.starts_at).collect();
        let sim = std::sync::Arc::new(ringmaster_engine::connector::simulator::Simulator::new(
            &p.org,
            Default::default(),
        ));
        let engine = ringmaster_engine::engine::Engine::start(
            store.clone(),
            sim,
            &plan.id,
            ROLLOUT_PLAN,
            waves,
            start,
        )
        .await?;
        let token = store
            .create_token(ringmaster_store::Role::Reporter, "load generator", start)
            .await?;
        let reader = store
            .create_token(ringmaster_store::Role::Viewer, "bench reader", start)
            .await?;

        let state = ringmaster_server::AppState {
            store: store.clone(),
            engine: std::sync::Arc::new(engine),
            rollout: plan.id.clone(),
            clock: std::sync::Arc::new(move || start),
            ingest_per_minute: 100_000,
            limiter: Default::default(),
            link_key: ringmaster_server::link_key(store.as_ref(), &plan.id).await?,
            views: ringmaster_server::Views::new(ringmaster_server::View::new(
                plan,
                Vec::new(),
                p.org,
                p.res,
            )),
            channels: Default::default(),
            counters: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(ringmaster_server::serve(
            listener,
            state,
            std::future::pending(),
        ));
        anyhow::Ok((addr, token, store, reader, starts))
    })?;
    const BATCH: usize = 50_000;
    let bodies: Vec<String> = (0..total.div_ceil(BATCH))
        .map(|b| {
            let items: Vec<String> = (b * BATCH..((b + 1) * BATCH).min(total))
                // Device ids as Intune writes them: GUIDs in no useful order.
                .map(|i| format!(r#"{{"deviceId":"{:08x}-0000-4000-8000-{i:012}","policyId":"0b5e11e0-2027-4000-8000-000000000001","status":"{}","reportedAt":"2027-01-18T{:02}:{:02}:00Z"}}"#,
                    (i as u64).wrapping_mul(2654435761) as u32,
                    if i % 20 == 0 { "error" } else { "succeeded" }, 8 + (i / 60) % 10, i % 60))
                .collect();
            format!("[{}]", items.join(","))
        })
        .collect();
    let t = Instant::now();
    let per_conn: Vec<Vec<&String>> = (0..2)
        .map(|c| bodies.iter().skip(c).step_by(2).collect())
        .collect();
    let results: Vec<anyhow::Result<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = per_conn
            .iter()
            .map(|mine| {
                let token = token.clone();
                s.spawn(move || -> anyhow::Result<u64> {
                    let mut stream = std::net::TcpStream::connect(addr).context("connecting")?;
                    let mut reader = BufReader::new(stream.try_clone().context("cloning the stream")?);
                    let mut kept = 0u64;
                    for body in mine {
                        write!(
                            stream,
                            "POST /api/ingest/status HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .context("sending")?;
                        let mut status = String::new();
                        reader.read_line(&mut status).context("reading the status")?;
                        let mut len = 0usize;
                        loop {
                            let mut h = String::new();
                            reader.read_line(&mut h).context("reading headers")?;
                            if h.trim().is_empty() {
                                break;
                            }
                            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut resp = vec![0u8; len];
                        reader.read_exact(&mut resp).context("reading the body")?;
                        anyhow::ensure!(status.contains(" 200 "), "server answered {}", status.trim());
                        let v: serde_json::Value = serde_json::from_slice(&resp)?;
                        kept += v["inserted"].as_u64().unwrap_or(0);
                    }
                    Ok(kept)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("client thread failed")))
            })
            .collect()
    });
    let took = t.elapsed();
    let mut kept = 0;
    for r in results {
        kept += r?;
    }
    let rate = total as f64 / took.as_secs_f64();
    println!(
        "{total} status reports over HTTP (loopback, 2 connections, batches of {BATCH}): {:.2} s, {rate:.0} reports/s; {kept} stored",
        took.as_secs_f64()
    );
    http_reads(&rt, addr, &reader, &store, &rollout, &starts)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitCode::SUCCESS)
}

/// After the HTTP ingest: the store filled to 1,000,000 reports attributed
/// to the plan's waves (straight into the store, timed as bulk ingest),
/// then p50/p99 of the read routes, the gates' counts of the biggest wave
/// and the run-state watch's first read of every latest state.
fn http_reads(
    rt: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    reader: &str,
    store: &std::sync::Arc<dyn ringmaster_store::Store>,
    rollout: &str,
    starts: &[jiff::Timestamp],
) -> anyhow::Result<()> {
    use ringmaster_store::{DeviceState, StatusReport};
    use std::io::{Read, Write};
    const FILL: u64 = 1_000_000;
    const BATCH: u64 = 100_000;
    let waves = starts.len() as u64;
    // The last wave is the biggest: half the reports.
    let wave_of = |d: u64| {
        if d.is_multiple_of(2) {
            waves - 1
        } else {
            d % (waves - 1).max(1)
        }
    };
    let t = Instant::now();
    rt.block_on(async {
        for b in 0..FILL / BATCH {
            let batch: Vec<StatusReport> = (b * BATCH..(b + 1) * BATCH)
                .map(|d| {
                    let w = wave_of(d);
                    StatusReport {
                        device: format!(
                            "{:08x}-1111-4000-8000-{d:012}",
                            d.wrapping_mul(2654435761) as u32
                        ),
                        policy: "0b5e11e0-2027-4000-8000-000000000001".into(),
                        state: if d % 20 == 0 {
                            DeviceState::Error
                        } else {
                            DeviceState::Succeeded
                        },
                        reported_at: starts[w as usize]
                            + jiff::SignedDuration::from_secs((d % 28_800) as i64),
                        wave: Some(w as u32),
                    }
                })
                .collect();
            store.ingest_status(rollout, &batch).await?;
        }
        anyhow::Ok(())
    })?;
    let took = t.elapsed();
    println!(
        "{FILL} status reports into the store (batches of {BATCH}): {:.2} s, {:.0} reports/s",
        took.as_secs_f64(),
        FILL as f64 / took.as_secs_f64()
    );
    let get = |path: &str| -> anyhow::Result<Duration> {
        let t = Instant::now();
        let mut s = std::net::TcpStream::connect(addr).context("connecting")?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {reader}\r\nConnection: close\r\n\r\n"
        )
        .context("sending")?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).context("reading")?;
        let took = t.elapsed();
        let head = String::from_utf8_lossy(&resp[..resp.len().min(20)]).to_string();
        anyhow::ensure!(head.contains(" 200 "), "GET {path}: {head}");
        Ok(took)
    };
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        ms(v[((v.len() - 1) as f64 * p).round() as usize])
    };
    let biggest = format!("/api/waves/{waves}");
    for path in ["/api/waves", biggest.as_str(), "/metrics"] {
        let mut times = (0..50)
            .map(|_| get(path))
            .collect::<anyhow::Result<Vec<_>>>()?;
        println!(
            "GET {path:<14} p50 {:>7.1} ms  p99 {:>7.1} ms  (50 requests, {FILL} stored)",
            pct(&mut times, 0.5),
            pct(&mut times, 0.99)
        );
    }
    let (mut gates, watch, devices, states) = rt.block_on(async {
        let mut gates = Vec::new();
        let mut devices = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let c = store
                .wave_counts(
                    rollout,
                    (waves - 1) as u32,
                    Some(starts[(waves - 1) as usize]),
                )
                .await?;
            gates.push(t.elapsed());
            devices = c.reported();
        }
        let t = Instant::now();
        let n = store.latest_states(rollout, None).await?.0.len();
        anyhow::ensure!(n as u64 >= FILL, "the watch read {n} states");
        anyhow::Ok((gates, t.elapsed(), devices, n))
    })?;
    println!(
        "gate counts of a {devices}-device wave: p50 {:.1} ms (5 runs)",
        pct(&mut gates, 0.5)
    );
    println!(
        "run-state watch, first check (every latest state, {states} of them): {:.0} ms",
        ms(watch)
    );
    Ok(())
}
