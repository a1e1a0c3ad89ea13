//! `ringmaster demo`: a tour of what ringmaster does today, on a generated
//! organization, with nothing to install.

use super::explain::{print_device, print_group};
use anyhow::Context;
use ringmaster_core::conflicts::ConflictReport;
use ringmaster_core::explain::{Status, explain_device, explain_group};
use ringmaster_core::model::{DeviceAttr, UserAttr};
use ringmaster_core::org::Org;
use ringmaster_core::rules::{Grammar, Rule};
use ringmaster_core::targeting::{Resolution, Severity, resolve};
use ringmaster_engine::connector::simulator::Fault;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Devices in the generated organization.
    #[arg(long, default_value_t = 20_000)]
    devices: u32,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Simulated seconds per real second for the run (0: as fast as possible).
    /// Default: 21,600 (six hours a second) while the dashboard is served, else 0.
    #[arg(long)]
    speed: Option<f64>,
    /// Terminal only: do not serve the dashboard while the rollout runs.
    #[arg(long)]
    no_serve: bool,
    /// Where the dashboard listens (another free port when this one is taken).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Where to write the organization (default: a folder in the temp directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

use super::EXAMPLE_PLAN;

impl Args {
    /// The folder the demo writes into.
    pub fn folder(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("ringmaster-demo-{}-{}", self.devices, self.seed))
        })
    }

    /// Where the demo's log lines go, so they stay out of the tour's text.
    pub fn log_file(&self) -> PathBuf {
        self.folder().join("demo.log")
    }
}

fn heading(s: &str) {
    println!("\n== {s} ==");
}

/// The Windows build whose update breaks the policy in the demo's run state.
const BROKEN_BUILD: &str = "10.0.26100.2314";

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let began = Instant::now();
    let root = a.folder();
    let dir = root.join("org");
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let plan_file = root.join("ringmaster.toml");
    // The rollout starts from nothing; the dashboard reads the database from
    // here on, so it is removed now and never again.
    super::run::demo_fresh_database(&plan_file);
    let serve = if a.no_serve {
        None
    } else {
        let sv = super::run::DemoServe::reserve(&plan_file, &a.listen)?;
        println!(
            "dashboard: {}/ui  (sign in with the token {})",
            sv.url(),
            sv.token()
        );
        println!("It serves while the rollout runs (from step 8); Ctrl-C stops it.");
        Some(sv)
    };
    println!("Log lines go to {}", a.log_file().display());
    heading("1. An organization, in Microsoft Graph export format");
    generate(&a, &root, &dir, &plan_file)?;
    heading("2. Import and resolve every group, filter and policy target");
    let (org, res, now) = import(&dir)?;
    heading("3. Rules are checked the way the service checks them");
    rules();
    heading("4. Why does a policy reach this device, or not?");
    explain(&org, &res, now);
    heading("5. What is assigned to a group, directly and through nesting?");
    if let Some(g) = org.find_groups("Ring 0 - IT Pilot Devices").first() {
        print_group(&explain_group(&org, &res, *g));
    }
    heading("6. Conflicts where policy targets meet, before deploying");
    let report = conflicts(&org, &res, now);
    heading("7. The rollout plan: scope, pilot, waves, dates, goals, messages");
    let plan_facts = plan(&root, &plan_file, now)?;
    heading("8. Run it on a simulated fleet; the pilot catches a broken setting");
    let fault = announce_fault()?;
    let speed = a.speed.unwrap_or(if a.no_serve { 0.0 } else { 21_600.0 });
    let mut runs = simulate(&root, &plan_file, &fault, speed, serve.as_ref())?;
    heading("10. Run state: a week of watching, and an update that breaks the policy");
    runs.push(watch(&plan_file, fault, speed, serve.as_ref())?);
    heading("Summary");
    println!(
        "organization  {} devices, {} users, {} groups, {} policies (and a new baseline)",
        org.devices.rows,
        org.users.rows,
        org.groups.len(),
        org.policies.len()
    );
    println!(
        "conflicts     {} findings before deployment, {} of them blocking",
        report.findings.len(),
        report.blocking()
    );
    println!("plan          {plan_facts}");
    println!("run           {}", runs.join("; "));
    println!(
        "files         {} (plan, database, report, messages, log)",
        root.display()
    );
    println!("took          {:.1} s", began.elapsed().as_secs_f64());
    heading("Next");
    next(&dir, &plan_file);
    if let Some(sv) = &serve {
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            super::run::demo_serve_until_stopped(&plan_file, sv)?;
        } else {
            println!(
                "\ndashboard stopped: the output is not a terminal, so the demo ends with its tour (in a terminal it stays up until Ctrl-C)"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Step 1: the organization, the new baseline and the example plan (written
/// to `plan_file`).
fn generate(a: &Args, root: &Path, dir: &Path, plan_file: &Path) -> anyhow::Result<()> {
    let t = Instant::now();
    let progress = std::sync::Arc::default();
    let options = ringmaster_gen::Options::new(a.devices, a.seed);
    let s = crate::progress::watch(&progress, || {
        ringmaster_gen::generate_with(dir, &options, &progress)
    })
    .with_context(|| format!("writing {}", dir.display()))?;
    ringmaster_gen::generate_proposed(&root.join("proposed"))
        .with_context(|| format!("writing {}", root.display()))?;
    std::fs::write(plan_file, EXAMPLE_PLAN)
        .with_context(|| format!("writing {}", plan_file.display()))?;
    println!(
        "generated {} users, {} devices, {} groups ({} dynamic), {} filters, {} policies into {} in {} ms",
        s.users,
        s.devices,
        s.groups,
        s.dynamic_groups,
        s.filters,
        s.policies,
        dir.display(),
        t.elapsed().as_millis()
    );
    Ok(())
}

/// Step 2: the import and the resolved targets, with what they found.
fn import(dir: &Path) -> anyhow::Result<(Org, Resolution, jiff::Timestamp)> {
    let t = Instant::now();
    let loaded = super::import(std::slice::from_ref(&dir.to_path_buf()))
        .map_err(|e| crate::UserError(format!("import failed: {e}")))?;
    let org = loaded.org;
    let load_ms = t.elapsed().as_millis();
    let now = jiff::Timestamp::now();
    let t = Instant::now();
    let res = resolve(&org, now);
    println!(
        "loaded in {load_ms} ms, resolved in {} ms",
        t.elapsed().as_millis()
    );
    let warnings = res
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    if warnings == 0 {
        println!("no findings about the groups, filters or assignments");
    } else {
        println!("{warnings} findings about the groups, filters or assignments, for example:");
        for d in res.diagnostics.iter().take(3) {
            println!("  {}: {}", d.subject, d.message);
        }
    }
    Ok((org, res, now))
}

/// Step 3: a valid rule and one with a missing parenthesis.
fn rules() {
    for (g, rule) in [
        (
            Grammar::EntraDynamicMembership,
            r#"(device.deviceOwnership -eq "Corporate")"#,
        ),
        (
            Grammar::IntuneAssignmentFilter,
            r#"(device.model -startsWith "Surface") and (device.deviceOSType -eq "Windows""#,
        ),
    ] {
        println!("[{g}] {rule}");
        match Rule::parse(g, rule) {
            Ok(r) if r.warnings.is_empty() => println!("  valid"),
            Ok(r) => r
                .warnings
                .iter()
                .for_each(|w| println!("  warning: {}", w.message)),
            Err(e) => println!(
                "{}",
                e.render(rule)
                    .lines()
                    .map(|l| format!("  {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }
}

/// Step 4: a device reached through a group and a filter, and a VIP's
/// device an exclusion group keeps out of a policy.
fn explain(org: &Org, res: &Resolution, now: jiff::Timestamp) {
    let filtered = (0..org.devices.rows).find(|&d| {
        let e = explain_device(org, res, d, None, now);
        e.policies.iter().any(|p| {
            p.status == Status::Included
                && p.assignments.iter().any(|s| {
                    s.reaches
                        && s.filter.is_some()
                        && !s.via.is_empty()
                        && s.target.starts_with("group")
                })
        })
    });
    if let Some(d) = filtered {
        let e = explain_device(org, res, d, None, now);
        let keep: Vec<usize> = e
            .policies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.status != Status::NotTargeted)
            .take(3)
            .map(|(i, _)| i)
            .collect();
        let e = explain_device(org, res, d, Some(&keep), now);
        print_device(org, &e);
    }
    let excluded = (0..org.users.rows)
        .filter(|&u| org.user(UserAttr::IsVip, u) == Some("true"))
        .find_map(|u| {
            org.user_devices(u).iter().find_map(|&d| {
                let e = explain_device(org, res, d, None, now);
                e.policies
                    .into_iter()
                    .find(|p| {
                        p.status == Status::Excluded
                            && p.reason.contains("exclusion beats inclusion")
                    })
                    .map(|p| (u, d, p))
            })
        });
    if let Some((u, d, p)) = excluded {
        println!(
            "\nVIP {} on {}: '{}' is excluded: {}",
            org.user_label(u),
            org.device(DeviceAttr::Name, d).unwrap_or("?"),
            p.policy,
            p.reason
        );
    }
}

/// Step 6: the whole fleet's conflicts; the summary and first findings.
fn conflicts(org: &Org, res: &Resolution, now: jiff::Timestamp) -> ConflictReport {
    let all: Vec<usize> = (0..org.policies.len()).collect();
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let report = ringmaster_core::conflicts::analyze(
        org,
        res,
        &ringmaster_core::conflicts::Scope {
            policies: &all,
            proposed: &[],
            accepted: &[],
            today,
        },
    );
    let text = super::conflicts::text(&report, org.devices.rows, false, 3);
    // The summary line and the first findings; the rest is one command away.
    for line in text.lines().take(24) {
        println!("{line}");
    }
    report
}

/// Step 7: the plan as text, its HTML report and its messages written;
/// returns its facts for the summary.
fn plan(root: &Path, plan_file: &Path, now: jiff::Timestamp) -> anyhow::Result<String> {
    println!(
        "{} plans a new Windows baseline for this organization (the commented example in examples/demo)\n",
        plan_file.display()
    );
    let loaded = super::plan::load(plan_file, now)?;
    print!("{}", ringmaster_plan::report::text(&loaded.plan));
    let plan_facts = format!(
        "{} phases, {} waves, a pilot of {} devices, {} messages",
        loaded.plan.phases.len(),
        loaded.plan.waves.len(),
        loaded.plan.pilot.as_ref().map_or(0, |p| p.size),
        loaded.messages.len()
    );
    let html = root.join("plan.html");
    let plan_today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    std::fs::write(
        &html,
        ringmaster_plan::report::html(&loaded.plan, Some(plan_today)),
    )
    .with_context(|| format!("writing {}", html.display()))?;
    let comms = root.join("messages");
    super::plan::write_messages(&comms, &loaded.messages)?;
    println!(
        "\nwrote the full report with its Gantt chart to {} and {} messages (pilot users, production users, help desk) to {}",
        html.display(),
        loaded.messages.len(),
        comms.display()
    );
    Ok(plan_facts)
}

/// The model whose devices break in the fixed baseline's run (version 2):
/// its stratum is held, the rest of the wave goes on.
const BROKEN_MODEL: &str = "Latitude 7440";

/// Before the run: what the plan accepts and the fault the pilot is to
/// catch. (The example plan carries its `[[accept]]` entries, so it runs as
/// written.)
fn announce_fault() -> anyhow::Result<Fault> {
    println!(
        "The LAPS and Defender differences are accepted in the plan (the old policies retire with this rollout).\nInjected fault: the baseline's sample-submission setting breaks 40 % of the pilot's devices.\nDevices check in on Intune's cadence; a month passes in seconds.\n"
    );
    "wave=2,setting=submitsamplesconsent,error=0.4"
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))
}

/// Steps 8 and 9: the first version runs until the pilot stops it; the
/// fixed baseline then runs as a new version. Returns a line per run.
fn simulate(
    root: &Path,
    plan_file: &Path,
    fault: &Fault,
    speed: f64,
    serve: Option<&super::run::DemoServe>,
) -> anyhow::Result<Vec<String>> {
    use super::run::{DemoEnd, demo_run};
    let first = demo_run(plan_file, vec![fault.clone()], speed, serve)?;
    let DemoEnd::Stopped(wave, name) = first else {
        println!("\nEvery wave passed: the rollout is in its run state.");
        return Ok(vec!["version 1 passed every wave".into()]);
    };
    let mut runs = vec![format!(
        "version 1 stopped at wave {wave} '{name}': the pilot caught the injected fault"
    )];
    heading("9. The fix: a new version of the baseline, without the broken setting");
    println!(
        "Wave {wave} '{name}' stopped the rollout. The baseline is fixed (sample submission left to the existing\nDefender policy) and exported again; the plan file is unchanged, so ringmaster makes a new plan version:\nwhat still ran is superseded, waves that passed carry over, and the pilot runs again.\n"
    );
    ringmaster_gen::generate_proposed_without(&root.join("proposed"), &["submitsamplesconsent"])
        .with_context(|| format!("writing {}", root.display()))?;
    println!(
        "One more fault for this version: the policy breaks on 40 % of the {BROKEN_MODEL} laptops in wave 6 'sales'.\nThe example plan judges its enterprise waves per model too (`strata = \"model\"`): that model is held, the rest of the wave goes on.\n"
    );
    let model: Fault = format!("wave=6,model={BROKEN_MODEL},error=0.4")
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    match demo_run(plan_file, vec![fault.clone(), model], speed, serve)? {
        DemoEnd::Done => {
            println!("\nEvery wave passed: the rollout is in its run state.");
            runs.push("version 2 (the fixed baseline) passed every wave".into());
        }
        DemoEnd::Stopped(w, n) => {
            println!("\nThe rollout stopped again at wave {w} '{n}'.");
            runs.push(format!("version 2 stopped at wave {w} '{n}'"));
        }
    }
    Ok(runs)
}

/// Step 10: a week of the run state with a breaking update three days in,
/// then what operations sees. Returns the line for the summary.
fn watch(
    plan_file: &Path,
    fault: Fault,
    speed: f64,
    serve: Option<&super::run::DemoServe>,
) -> anyhow::Result<String> {
    println!(
        "The rollout is done; operations now watch it. Three days on, the cumulative update to Windows build\n{BROKEN_BUILD} (injected) makes the policy fail on 60 % of the devices that take it. ringmaster judges the\nrun state every 4 hours, as `ringmaster serve` does, and raises what the plan's alert rules ask for.\n"
    );
    let drift: Fault = format!("os={BROKEN_BUILD},error=0.6")
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let raised = super::run::demo_watch(
        plan_file,
        vec![fault],
        vec![(drift, jiff::SignedDuration::from_hours(72))],
        7,
        speed,
        serve,
    )?;
    println!();
    // What operations sees now (`ringmaster status --run-state`).
    super::run::run_state(super::run::Where {
        file: plan_file.to_path_buf(),
        ..Default::default()
    })?;
    Ok(format!(
        "run state: {} alert(s) raised ({})",
        raised.len(),
        raised.join(", ")
    ))
}

/// The commands to try next on what the demo wrote.
fn next(dir: &Path, plan_file: &Path) {
    println!("ringmaster org --org {}", dir.display());
    println!("ringmaster explain --org {} --device <name>", dir.display());
    println!("ringmaster rules check --grammar filter '(device.model -startsWith \"Surface\")'");
    println!(
        "ringmaster conflicts --org {} --format markdown",
        dir.display()
    );
    println!(
        "ringmaster plan {} --format markdown --out plan.md",
        plan_file.display()
    );
    println!("ringmaster status {}", plan_file.display());
    println!("ringmaster history {}", plan_file.display());
    println!("ringmaster bench plan --devices 1000000");
    println!(
        "ringmaster serve {} --simulate   # the dashboard and API, the scheduler inside",
        plan_file.display()
    );
}
