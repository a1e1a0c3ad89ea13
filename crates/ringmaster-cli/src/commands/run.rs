//! `ringmaster run`, `status`, `history` and the operator actions: drive a
//! rollout from its plan and its store, look at it, step in.

use anyhow::Context;
use ringmaster_core::wave::{Event, Reason, WaveState};
use ringmaster_engine::connector::simulator::{Fault, SimConfig, Simulator};
use ringmaster_engine::engine::{Engine, WaveSpec};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Where the rollout's state lives, shared by every command here.
#[derive(clap::Args, Clone, Default)]
pub struct Where {
    /// The plan file.
    #[arg(default_value = "ringmaster.toml")]
    pub file: PathBuf,
    /// Database URL (default: sqlite:ringmaster.db beside the plan).
    #[arg(long, env = "RINGMASTER_DATABASE_URL", value_name = "URL")]
    pub database: Option<String>,
    /// Seed of the simulated fleet.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print JSON instead of text (`status`, `history`).
    #[arg(long)]
    pub json: bool,
    /// Inject a fault into the simulation (repeatable): `wave=4,os=10.0.19045,error=0.4`,
    /// `platform=windows,setting=bitlocker,conflict=0.2`; add `from=2027-05-03` for drift
    /// that starts then (devices that applied the policy report again).
    #[arg(long, value_name = "SPEC")]
    pub fault: Vec<Fault>,
    /// Drive Microsoft Intune through Graph, on the real clock, with the
    /// connection `ringmaster connect intune` saved (instead of --simulate).
    #[arg(long, value_name = "CONNECTION", env = "RINGMASTER_INTUNE")]
    pub intune: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub at: Where,
    /// Run against the built-in fleet simulator on a simulated clock.
    #[arg(long)]
    pub simulate: bool,
    /// Simulated seconds per real second (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub speed: f64,
    /// Simulated time between ticks, e.g. 1h.
    #[arg(long, default_value = "1h")]
    pub step: String,
    /// Stop after this many simulated days even if the rollout is not done.
    #[arg(long, default_value_t = 120)]
    pub max_days: u32,
    /// With --intune: one tick now, then exit (for a timer or cron).
    #[arg(long)]
    pub once: bool,
}

#[derive(clap::Args)]
pub struct WaveArgs {
    #[command(flatten)]
    pub at: Where,
    /// The wave, numbered as `status` shows it.
    #[arg(long)]
    pub wave: u32,
    /// Who acts (recorded in the audit log).
    #[arg(long, env = "USER", default_value = "operator")]
    pub actor: String,
    /// For `pause`: an override that expires after this long (e.g. 2d); the wave then resumes.
    #[arg(long = "for", value_name = "DURATION")]
    pub for_: Option<String>,
}

struct Opened {
    engine: Arc<Engine>,
    /// The rollout's database (the engine holds the same one).
    store: Arc<dyn ringmaster_store::Store>,
    start: jiff::Timestamp,
    /// When the last wave is planned to have baked.
    planned_end: jiff::Timestamp,
    rollout: String,
    /// The plan and the organization it was computed on.
    loaded: super::plan::Loaded,
}

/// The built-in fleet simulator for a plan.
fn simulator(at: &Where, loaded: &super::plan::Loaded) -> Simulator {
    let settings = loaded
        .plan
        .changes
        .iter()
        .map(|c| c.setting_id.clone())
        .collect();
    Simulator::new(
        &loaded.org,
        SimConfig {
            settings,
            seed: at.seed,
            faults: at.fault.clone(),
            tickets_per_100: loaded.plan.help_desk.tickets_per_100_devices,
            policy: loaded
                .plan
                .scope
                .new_policies
                .first()
                .map(|p| p.id.clone())
                .unwrap_or_default(),
            ..SimConfig::default()
        },
    )
}

fn database_url(at: &Where) -> String {
    at.database.clone().unwrap_or_else(|| {
        let dir = at
            .file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        format!("sqlite:{}", dir.join("ringmaster.db").display())
    })
}

async fn open(at: &Where, now: jiff::Timestamp) -> anyhow::Result<Opened> {
    let loaded = super::plan::load(&at.file, now)?;
    if loaded.plan.errors() > 0 {
        return Err(crate::UserError(format!(
            "the plan has {} error(s) in its checks; `ringmaster plan {}` lists them",
            loaded.plan.errors(),
            at.file.display()
        ))
        .into());
    }
    let store = ringmaster_store::open(&database_url(at))
        .await
        .map_err(|e| crate::UserError(format!("opening the database: {e}")))?;
    let waves = WaveSpec::from_plan(&loaded.plan);
    let start = waves
        .first()
        .map(|w| w.starts_at)
        .ok_or_else(|| crate::UserError("the plan has no waves".into()))?;
    let connector: Arc<dyn ringmaster_engine::connector::Connector> = match &at.intune {
        Some(conn) => Arc::new(super::intune::connector(conn, &loaded.plan.id, &loaded)?),
        None => Arc::new(simulator(at, &loaded)),
    };
    // A new version starts (and supersedes) at the rollout's own time: the
    // stored simulated clock, or now against a real tenant.
    let stored_at = Engine::polled_until_of(store.as_ref(), &loaded.plan.id).await?;
    let resumed_at = match (&at.intune, stored_at) {
        (Some(_), s) => s.map_or(now, |s| s.max(now)).max(start.min(now)),
        (None, s) => s.unwrap_or(start),
    };
    let engine = Engine::start(
        store.clone(),
        connector,
        &loaded.plan.id,
        &loaded.text,
        waves,
        resumed_at,
    )
    .await
    .context("starting the rollout")?;
    let planned_end = loaded
        .plan
        .waves
        .iter()
        .map(|w| w.end.timestamp())
        .max()
        .unwrap_or(start);
    Ok(Opened {
        engine: Arc::new(engine),
        store,
        start,
        planned_end,
        rollout: loaded.plan.id.clone(),
        loaded,
    })
}

/// A runtime whose tasks run beside the caller's (a served dashboard, the
/// scheduler, Graph requests).
pub fn threaded_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn stamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M").to_string()
}

/// Whether nothing more happens without an operator.
fn needs_operator(s: WaveState) -> bool {
    match s {
        WaveState::AwaitingApproval | WaveState::Failed | WaveState::RolledBack => true,
        WaveState::Paused { reasons, .. } => {
            reasons.contains(Reason::Manual) || reasons.contains(Reason::AwaitingPromotion)
        }
        _ => false,
    }
}

/// How driving a rollout ended.
enum Driven {
    /// Every wave is final: this many passed, of so many.
    Done(usize, usize),
    /// A wave waits for an operator.
    Waiting(ringmaster_store::WaveRow),
    /// The time allowed ran out.
    TimeUp,
}

/// How to drive: the simulated step, the pace, when to give up, who
/// approves waves that ask for it (the demo's operator), and a bar to move.
struct Pace<'a> {
    step: jiff::SignedDuration,
    speed: f64,
    end: jiff::Timestamp,
    approver: Option<&'a str>,
    bar: Option<(&'a indicatif::ProgressBar, jiff::Timestamp)>,
    /// The rollout's time, published for a dashboard served meanwhile.
    clock: Option<&'a std::sync::Mutex<jiff::Timestamp>>,
}

/// Ticks the engine from `now` until the rollout ends, an operator is
/// needed or time runs out, printing every transition.
async fn drive(
    e: &Engine,
    mut now: jiff::Timestamp,
    p: &Pace<'_>,
) -> anyhow::Result<(Driven, jiff::Timestamp)> {
    let say = |line: String| match p.bar {
        Some((bar, _)) => bar.suspend(|| println!("{line}")),
        None => println!("{line}"),
    };
    loop {
        if let Some(c) = p.clock {
            *c.lock().unwrap_or_else(|e| e.into_inner()) = now;
        }
        let t = e.tick(now).await?;
        for line in &t.transitions {
            say(format!("{}  {line}", stamp(now)));
        }
        if let Some((bar, start)) = p.bar {
            bar.set_position(((now.as_second() - start.as_second()) / 3600).max(0) as u64);
            bar.set_message(format!("{}  {} reports this hour", stamp(now), t.statuses));
        }
        let rows = e.rows().await?;
        if rows.iter().all(|r| r.state.is_final()) {
            let passed = rows.iter().filter(|r| r.state == WaveState::Passed).count();
            return Ok((Driven::Done(passed, rows.len()), now));
        }
        if let Some(who) = p.approver
            && let Some(r) = rows.iter().find(|r| r.state == WaveState::AwaitingApproval)
        {
            match e.operate(r.key.idx + 1, Event::Approve, who, now).await? {
                Ok(line) => say(format!("{}  {line} (approved by the {who})", stamp(now))),
                Err(why) => say(format!("{}  {why}", stamp(now))),
            }
            continue;
        }
        if let Some(r) = rows.iter().find(|r| needs_operator(r.state)) {
            return Ok((Driven::Waiting(r.clone()), now));
        }
        if now >= p.end {
            return Ok((Driven::TimeUp, now));
        }
        if p.speed > 0.0 {
            tokio::time::sleep(std::time::Duration::from_secs_f64(
                p.step.as_secs_f64() / p.speed,
            ))
            .await;
        }
        now += p.step;
    }
}

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    if a.at.intune.is_some() {
        if a.simulate {
            return Err(
                crate::UserError("--simulate and --intune exclude each other".into()).into(),
            );
        }
        return run_live(a);
    }
    if !a.simulate {
        return Err(crate::UserError(
            "say what to drive: --simulate (the built-in fleet) or --intune intune.toml (Microsoft Intune; `ringmaster connect intune` saves the connection)"
                .into(),
        )
        .into());
    }
    let step = ringmaster_core::goals::parse_hours(&a.step).ok_or_else(|| {
        crate::UserError(format!("--step `{}` is not a duration such as 1h", a.step))
    })?;
    runtime()?.block_on(async {
        let o = open(&a.at, jiff::Timestamp::now()).await?;
        let e = &o.engine;
        // Resume the simulated clock where the last run stopped.
        let now = e.polled_until().await?.unwrap_or(o.start);
        let end = o.start + jiff::SignedDuration::from_hours(24 * i64::from(a.max_days));
        let step = jiff::SignedDuration::from_secs((step * 3600.0) as i64);
        println!(
            "rollout {} version {} on a simulated fleet, from {} (database {})",
            o.rollout,
            e.version(),
            stamp(now),
            ringmaster_store::redact(&database_url(&a.at))
        );
        let bar = hours_bar(o.start, o.planned_end.max(now));
        let pace = Pace {
            step,
            speed: a.speed,
            end,
            approver: None,
            bar: Some((&bar, o.start)),
            clock: None,
        };
        let (how, at) = drive(e, now, &pace).await?;
        bar.finish_and_clear();
        Ok(match how {
            Driven::Done(passed, total) => {
                println!("{}  done: {passed} of {total} waves passed", stamp(at));
                if passed == total {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Driven::Waiting(r) => {
                println!(
                    "{}  waiting for an operator: wave {} '{}' is {} (see `ringmaster status`)",
                    stamp(at),
                    r.key.idx + 1,
                    r.name,
                    describe(r.state)
                );
                ExitCode::from(1)
            }
            Driven::TimeUp => {
                println!("{}  stopped after {} simulated days", stamp(at), a.max_days);
                ExitCode::from(1)
            }
        })
    })
}

/// `run --intune`: ticks on the real clock every `--step` (or once with
/// `--once`, for a timer) until every wave has ended or one waits for an
/// operator.
fn run_live(a: RunArgs) -> anyhow::Result<ExitCode> {
    let step = ringmaster_core::goals::parse_hours(&a.step).ok_or_else(|| {
        crate::UserError(format!("--step `{}` is not a duration such as 1h", a.step))
    })?;
    runtime()?.block_on(async {
        let o = open(&a.at, jiff::Timestamp::now()).await?;
        let e = &o.engine;
        println!(
            "rollout {} version {} on Microsoft Intune (database {})",
            o.rollout,
            e.version(),
            ringmaster_store::redact(&database_url(&a.at))
        );
        loop {
            let now = jiff::Timestamp::now();
            let t = e.tick(now).await?;
            for line in &t.transitions {
                println!("{}  {line}", stamp(now));
            }
            println!("{}  {} status reports read", stamp(now), t.statuses);
            let rows = e.rows().await?;
            if rows.iter().all(|r| r.state.is_final()) {
                let passed = rows.iter().filter(|r| r.state == WaveState::Passed).count();
                println!(
                    "{}  done: {passed} of {} waves passed",
                    stamp(now),
                    rows.len()
                );
                return Ok(if passed == rows.len() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            if let Some(r) = rows.iter().find(|r| needs_operator(r.state)) {
                println!(
                    "{}  waiting for an operator: wave {} '{}' is {} (see `ringmaster status`)",
                    stamp(now),
                    r.key.idx + 1,
                    r.name,
                    describe(r.state)
                );
                return Ok(ExitCode::from(1));
            }
            if a.once {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs_f64(step * 3600.0)) => {}
                _ = stop_signal() => return Ok(ExitCode::SUCCESS),
            }
        }
    })
}

/// A bar over the planned hours while a person watches (hidden when the
/// output is not a terminal); transitions print above it.
fn hours_bar(start: jiff::Timestamp, end: jiff::Timestamp) -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::new(((end.as_second() - start.as_second()) / 3600).max(1) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

fn describe(s: WaveState) -> String {
    match s {
        WaveState::Paused { reasons, .. } => format!(
            "paused ({})",
            reasons
                .iter()
                .map(Reason::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        s => s.name().to_string(),
    }
}

/// What `status` and `history` read: the stored rollout named by the plan
/// file, without computing the plan or starting a version (they only look).
struct Stored {
    store: Arc<dyn ringmaster_store::Store>,
    rollout: String,
    version: u32,
    rows: Vec<ringmaster_store::WaveRow>,
}

async fn stored(at: &Where) -> anyhow::Result<Stored> {
    let (_, spec) = super::plan::read(&at.file)?;
    let rollout = spec.rollout.id.get_ref().trim().to_string();
    let store = ringmaster_store::open(&database_url(at))
        .await
        .map_err(|e| crate::UserError(format!("opening the database: {e}")))?;
    let Some((version, _)) = store.latest_version(&rollout).await? else {
        return Err(crate::UserError(format!(
            "rollout `{rollout}` has not started in {}: `ringmaster run` starts it",
            ringmaster_store::redact(&database_url(at))
        ))
        .into());
    };
    let rows = store.waves(&rollout, version).await?;
    Ok(Stored {
        store,
        rollout,
        version,
        rows,
    })
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub at: Where,
    /// The run state: service levels over every device in scope, and drift
    /// (regressions, newcomers without a report, OS builds or models that fail).
    #[arg(long)]
    pub run_state: bool,
}

/// `ringmaster status --run-state`: the run-state phase's goals (or the
/// usual service levels) judged over the whole scope, and what drifted.
pub fn run_state(at: Where) -> anyhow::Result<ExitCode> {
    let loaded = super::plan::load(&at.file, jiff::Timestamp::now())?;
    let org = &loaded.org;
    runtime()?.block_on(async {
        let Stored { store, rollout, version, rows } = stored(&at).await?;
        let now = Engine::polled_until_of(store.as_ref(), &rollout)
            .await?
            .unwrap_or_else(jiff::Timestamp::now);
        let dir = ringmaster_engine::ingest::Directory::new(org);
        let r = ringmaster_engine::runstate::assess(
            store.as_ref(),
            &rollout,
            &rows,
            &loaded.plan,
            org,
            &dir,
            now,
        )
        .await?;
        let label = |d: &u32| org.device_label(*d);
        if at.json {
            super::write_json(&serde_json::json!({
                "rollout": rollout, "version": version, "at": now,
                "devices": r.devices, "succeeded": r.succeeded, "errors": r.errors,
                "conflicts": r.conflicts, "pending": r.pending, "unreported": r.unreported,
                "service_levels": r.service_levels,
                "regressed": r.regressed.iter().map(label).collect::<Vec<_>>(),
                "overdue": r.overdue.iter().map(label).collect::<Vec<_>>(),
                "outliers": r.outliers,
            }))?;
        } else {
            println!("run state of {rollout} (version {version}) at {}", stamp(now));
            println!(
                "  {} devices in scope: {} succeeded, {} errors, {} conflicts, {} pending, {} not reported",
                r.devices, r.succeeded, r.errors, r.conflicts, r.pending, r.unreported
            );
            println!("service levels");
            for e in &r.service_levels {
                println!("  {:<8} {}", format!("{:?}", e.outcome).to_lowercase(), e.sentence);
            }
            let list = |title: &str, v: &[u32]| {
                println!("{title}: {}", v.len());
                for d in v.iter().take(10) {
                    println!("  {}", label(d));
                }
                if v.len() > 10 {
                    println!("  … and {} more (--json lists all)", v.len() - 10);
                }
            };
            list("were Succeeded, now Error or Conflict", &r.regressed);
            list("entered the scope and have not reported in time", &r.overdue);
            println!("outliers: {}", r.outliers.len());
            for o in &r.outliers {
                println!("  {}", o.sentence);
            }
        }
        Ok(if r.drifted() { ExitCode::from(1) } else { ExitCode::SUCCESS })
    })
}

pub fn status(at: Where) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let Stored {
            store,
            rollout,
            version,
            rows,
        } = stored(&at).await?;
        let polled = Engine::polled_until_of(store.as_ref(), &rollout).await?;
        let mut waves = Vec::new();
        for r in &rows {
            let c = store.wave_counts(&r.key.rollout, r.key.idx, None).await?;
            let (tickets, answers, score_sum) = store
                .wave_tickets_feedback(&r.key.rollout, r.key.idx, None)
                .await?;
            // The latest gate round of a wave being judged, one sentence each.
            let mut gates = None;
            if matches!(r.state, WaveState::Baking | WaveState::Paused { .. }) {
                gates = store.gate_rounds(&r.key).await?.pop();
            }
            waves.push((r, c, tickets, answers, score_sum, gates));
        }
        if at.json {
            let out: Vec<serde_json::Value> = waves
                .iter()
                .map(|(r, c, tickets, answers, sum, gates)| {
                    serde_json::json!({
                        "wave": r.key.idx + 1, "name": r.name, "phase": r.phase,
                        "state": r.state, "state_text": describe(r.state),
                        "devices": r.members.len(), "counts": c, "tickets": tickets,
                        "feedback_answers": answers,
                        "feedback_mean": if *answers > 0 { Some(sum / *answers as f64) } else { None },
                        "gates": gates.iter().flat_map(|g| &g.results).collect::<Vec<_>>(),
                    })
                })
                .collect();
            super::write_json(&serde_json::json!({
                "rollout": rollout, "version": version, "reports_until": polled, "waves": out,
            }))?;
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "version {}; reports read up to {}",
            version,
            polled.map(stamp).unwrap_or_else(|| "(nothing yet)".into())
        );
        println!(
            "  {:>2}  {:<34} {:>8}  {:>8} {:>9} {:>7} {:>8}  state",
            "#", "wave", "devices", "reported", "succeeded", "errors", "tickets"
        );
        for (r, c, tickets, _, _, gates) in &waves {
            println!(
                "  {:>2}  {:<34} {:>8}  {:>8} {:>9} {:>7} {:>8}  {}",
                r.key.idx + 1,
                r.name,
                r.members.len(),
                c.reported(),
                c.succeeded,
                c.error,
                tickets,
                describe(r.state)
            );
            if let Some(g) = gates {
                for e in &g.results {
                    println!("        {} gate: {}", stamp(g.at), e.sentence());
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn history(at: Where) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let Stored { store, rollout, .. } = stored(&at).await?;
        let history = store.history(&rollout).await?;
        if at.json {
            super::write_json(&history)?;
            return Ok(ExitCode::SUCCESS);
        }
        for h in history {
            println!(
                "{}  {:<10} wave {} (v{}): {} → {}: {}",
                stamp(h.at),
                h.actor,
                h.key.idx + 1,
                h.key.version,
                h.from.name(),
                h.to.name(),
                h.why
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// An operator's action on one wave.
pub fn operate(a: WaveArgs, event: Event) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let o = open(&a.at, jiff::Timestamp::now()).await?;
        // Operators act at the rollout's own time (the simulated clock, if any).
        let now = o
            .engine
            .polled_until()
            .await?
            .unwrap_or_else(jiff::Timestamp::now);
        let until = match &a.for_ {
            Some(d) => {
                let h = ringmaster_core::goals::parse_hours(d).ok_or_else(|| {
                    crate::UserError(format!("--for `{d}` is not a duration such as 2d"))
                })?;
                Some(now + jiff::SignedDuration::from_secs((h * 3600.0) as i64))
            }
            None => None,
        };
        match o
            .engine
            .operate_until(a.wave, event, &a.actor, now, until)
            .await?
        {
            Ok(line) => {
                if a.at.json {
                    super::write_json(&serde_json::json!({ "wave": a.wave, "done": line }))?;
                } else {
                    println!("{line}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(why) => Err(crate::UserError(why).into()),
        }
    })
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Device policy states (JSON, NDJSON, or Intune's per-policy CSV).
    Status,
    /// Help-desk tickets (ServiceNow, Zendesk or Jira exports).
    Tickets,
    /// Pilot feedback (score 1 to 5 and a comment).
    Feedback,
}

#[derive(clap::Args)]
pub struct IngestArgs {
    #[arg(value_enum)]
    pub kind: Kind,
    /// The file to read.
    pub input: PathBuf,
    #[command(flatten)]
    pub at: Where,
    /// The policy a one-policy status export is about.
    #[arg(long)]
    pub policy: Option<String>,
    /// How long after a wave starts its tickets and answers count for it.
    #[arg(long, default_value = "7d")]
    pub window: String,
    /// Count only tickets that mention one of these words (repeatable).
    #[arg(long)]
    pub hint: Vec<String>,
}

/// Largest file ingested at once.
const MAX_INGEST_BYTES: u64 = 1 << 30;

pub fn ingest(a: IngestArgs) -> anyhow::Result<ExitCode> {
    use ringmaster_engine::ingest;
    let text = super::read_bounded(&a.input, MAX_INGEST_BYTES, "; split it")?;
    let window = ringmaster_core::goals::parse_hours(&a.window).ok_or_else(|| {
        crate::UserError(format!(
            "--window `{}` is not a duration such as 7d",
            a.window
        ))
    })?;
    let shown = a.input.display().to_string();
    let bad_file = |e: String| crate::UserError(format!("{shown}: {e}"));
    runtime()?.block_on(async {
        let o = open(&a.at, jiff::Timestamp::now()).await?;
        let store = o.store.clone();
        let attr = o
            .engine
            .attribution(jiff::SignedDuration::from_secs((window * 3600.0) as i64), &a.hint)
            .await?;
        let dir = ingest::Directory::new(&o.loaded.org);
        let (kept, dups, rejected, unattributed) = match a.kind {
            Kind::Status => {
                let (mut recs, bad) = ingest::statuses(&text, a.policy.as_deref()).map_err(bad_file)?;
                let none = dir.attribute_statuses(&attr, &mut recs);
                let got = store.ingest_status(&o.rollout, &recs).await?;
                (got.inserted, got.duplicates, bad, none)
            }
            Kind::Tickets => {
                let (mut recs, bad) = ingest::tickets(&text).map_err(bad_file)?;
                let none = dir.attribute_tickets(&attr, &mut recs);
                let got = store.ingest_tickets(&o.rollout, &recs).await?;
                (got.inserted, got.duplicates, bad, none)
            }
            Kind::Feedback => {
                let (mut recs, bad) = ingest::feedback(&text).map_err(bad_file)?;
                let none = dir.attribute_feedback(&attr, &mut recs);
                let got = store.ingest_feedback(&o.rollout, &recs).await?;
                (got.inserted, got.duplicates, bad, none)
            }
        };
        if a.at.json {
            super::write_json(&serde_json::json!({
                "file": shown, "inserted": kept, "duplicates": dups,
                "rejected": rejected, "not_in_a_started_wave": unattributed,
            }))?;
        } else {
            println!(
                "{shown}: {kept} new, {dups} already stored, {} rejected; {unattributed} not tied to a started wave",
                rejected.len()
            );
            for r in rejected.iter().take(20) {
                println!("  record {}: {}", r.record, r.reason);
            }
            if rejected.len() > 20 {
                println!("  … and {} more", rejected.len() - 20);
            }
        }
        Ok(if rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}

/// The demo's rollout: its plan beside the default database, on the
/// simulated fleet with `faults`.
fn demo_where(file: &Path, faults: Vec<Fault>) -> Where {
    Where {
        file: file.to_path_buf(),
        database: None,
        seed: 1,
        json: false,
        fault: faults,
        intune: None,
    }
}

/// How a demo run ended.
pub enum DemoEnd {
    /// Every wave passed.
    Done,
    /// A wave waits for an operator (its number and name).
    Stopped(u32, String),
}

/// The dashboard the demo serves while it runs: where, and the admin
/// token to sign in with (made on the first run).
pub struct DemoServe {
    pub listen: String,
    pub token: Option<String>,
}

/// A dashboard being served: stop it with `stop`.
struct Serving {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Serving {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Serves the dashboard and API for `o` on `sv.listen` (a free port when
/// that one is taken), the clock read from `clock`. Prints where, once.
async fn serve_demo(
    o: Opened,
    sv: &mut DemoServe,
    clock: Arc<std::sync::Mutex<jiff::Timestamp>>,
) -> anyhow::Result<Serving> {
    let l = o.loaded;
    let views = ringmaster_server::Views::new(ringmaster_server::View::new(
        l.plan, l.messages, l.org, l.res,
    ));
    serve_view(o.engine, o.store, o.rollout, views, sv, clock).await
}

/// Serves the dashboard and API over `views` (see `serve_demo`).
async fn serve_view(
    engine: Arc<Engine>,
    store: Arc<dyn ringmaster_store::Store>,
    rollout: String,
    views: ringmaster_server::Views,
    sv: &mut DemoServe,
    clock: Arc<std::sync::Mutex<jiff::Timestamp>>,
) -> anyhow::Result<Serving> {
    let first = sv.token.is_none();
    if first {
        sv.token = Some(
            store
                .create_token(
                    ringmaster_store::Role::Admin,
                    "demo admin",
                    jiff::Timestamp::now(),
                )
                .await?,
        );
    }
    let listener = match tokio::net::TcpListener::bind(&sv.listen).await {
        Ok(l) => l,
        Err(_) if first => tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("listening on a free loopback port")?,
        Err(e) => return Err(e).with_context(|| format!("listening on {}", sv.listen)),
    };
    let addr = listener.local_addr()?;
    sv.listen = addr.to_string();
    if first {
        println!(
            "dashboard: http://{addr}/ui  (sign in with the token {})",
            sv.token.as_deref().unwrap_or_default()
        );
    }
    let state = ringmaster_server::AppState {
        link_key: ringmaster_server::link_key(store.as_ref(), &rollout).await?,
        store,
        engine,
        rollout,
        clock: Arc::new(move || *clock.lock().unwrap_or_else(|e| e.into_inner())),
        ingest_per_minute: 600,
        limiter: Default::default(),
        views,
        channels: Arc::new(ringmaster_server::Channels {
            public_url: format!("http://{addr}"),
            ..Default::default()
        }),
        counters: Default::default(),
    };
    let (stop, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(ringmaster_server::serve(listener, state, async {
        let _ = rx.await;
    }));
    Ok(Serving { stop, task })
}

/// The demo's run: the simulated fleet, with an operator who approves each
/// wave when asked, until the rollout ends or a gate stops it. `fresh`
/// starts from an empty database; otherwise the stored rollout resumes.
/// With `serve`, the dashboard is up while it runs.
pub fn demo_run(
    file: &Path,
    faults: Vec<Fault>,
    fresh: bool,
    speed: f64,
    serve: Option<&mut DemoServe>,
) -> anyhow::Result<DemoEnd> {
    let at = demo_where(file, faults);
    if fresh {
        let db = file.with_file_name("ringmaster.db");
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
    }
    let rt = threaded_runtime()?;
    rt.block_on(async {
        let o = open(&at, jiff::Timestamp::now()).await?;
        let engine = o.engine.clone();
        let now = engine.polled_until().await?.unwrap_or(o.start);
        let (start, planned_end) = (o.start, o.planned_end.max(now));
        println!("(plan version {})", engine.version());
        let clock = Arc::new(std::sync::Mutex::new(now));
        let serving = match serve {
            Some(sv) => Some(serve_demo(o, sv, clock.clone()).await?),
            None => None,
        };
        let bar = hours_bar(start, planned_end);
        let pace = Pace {
            step: jiff::SignedDuration::from_hours(1),
            speed,
            end: now + jiff::SignedDuration::from_hours(24 * 120),
            approver: Some("demo operator"),
            bar: Some((&bar, start)),
            clock: Some(&clock),
        };
        let driven = drive(&engine, now, &pace).await;
        bar.finish_and_clear();
        if let Some(s) = serving {
            s.stop().await;
        }
        Ok(match driven? {
            (Driven::Done(..), _) => DemoEnd::Done,
            (Driven::Waiting(r), at) => {
                println!(
                    "{}  stopped: wave {} '{}' is {}",
                    stamp(at),
                    r.key.idx + 1,
                    r.name,
                    describe(r.state)
                );
                DemoEnd::Stopped(r.key.idx + 1, r.name)
            }
            (Driven::TimeUp, _) => DemoEnd::Stopped(0, "(time ran out)".into()),
        })
    })
}

/// The demo's run state: `days` simulated days after the rollout with
/// `faults` injected, and `drift` faults that start the given time after
/// the rollout's clock; the watch judges the run state every few hours as
/// `serve` does. Prints each alert raised or resolved; returns the keys
/// raised.
pub fn demo_watch(
    file: &Path,
    faults: Vec<Fault>,
    drift: Vec<(Fault, jiff::SignedDuration)>,
    days: i64,
    speed: f64,
    serve: Option<&mut DemoServe>,
) -> anyhow::Result<Vec<String>> {
    use ringmaster_core::alerts::Change;
    let mut at = demo_where(file, faults);
    let rt = threaded_runtime()?;
    rt.block_on(async {
        let before = stored(&at).await?;
        let clock_at = Engine::polled_until_of(before.store.as_ref(), &before.rollout)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the rollout has not run yet"))?;
        drop(before);
        for (mut f, after) in drift {
            f.from = Some(clock_at + after);
            at.fault.push(f);
        }
        let o = open(&at, jiff::Timestamp::now()).await?;
        let (engine, store, rollout) = (o.engine.clone(), o.store.clone(), o.rollout.clone());
        let l = o.loaded;
        let views = ringmaster_server::Views::new(ringmaster_server::View::new(
            l.plan, l.messages, l.org, l.res,
        ));
        let start = engine.polled_until().await?.unwrap_or(o.start);
        let clock = Arc::new(std::sync::Mutex::new(start));
        let serving = match serve {
            Some(sv) => Some(
                serve_view(
                    engine.clone(),
                    store.clone(),
                    rollout.clone(),
                    views.clone(),
                    sv,
                    clock.clone(),
                )
                .await?,
            ),
            None => None,
        };
        let (view, generation) = views.current();
        let mut watch = ringmaster_engine::watch::Watch::new(&rollout);
        let every = ringmaster_server::watch::EVERY_HOURS;
        let mut raised = Vec::new();
        for hour in 1..=days * 24 {
            let now = start + jiff::SignedDuration::from_hours(hour);
            *clock.lock().unwrap_or_else(|e| e.into_inner()) = now;
            engine.tick(now).await?;
            if hour % every == 0 {
                let rows = engine.rows().await?;
                let checked = watch
                    .check_plan(
                        store.as_ref(),
                        &rows,
                        &view.plan,
                        &view.org,
                        &view.directory,
                        generation,
                        now,
                    )
                    .await?;
                for c in checked.map(|c| c.changes).unwrap_or_default() {
                    match c {
                        Change::Raised(a) => {
                            println!(
                                "{}  alert raised ({}): {}",
                                stamp(now),
                                a.severity.name(),
                                a.text
                            );
                            raised.push(a.key);
                        }
                        Change::Resolved(a) => {
                            println!("{}  alert resolved: {}", stamp(now), a.key);
                        }
                    }
                }
            }
            if speed > 0.0 {
                tokio::time::sleep(std::time::Duration::from_secs_f64(3600.0 / speed)).await;
            }
        }
        if let Some(s) = serving {
            s.stop().await;
        }
        Ok(raised)
    })
}

/// After the demo: its dashboard stays up, the rollout at rest, until Ctrl-C.
pub fn demo_serve_until_stopped(file: &Path, sv: &mut DemoServe) -> anyhow::Result<()> {
    let at = demo_where(file, Vec::new());
    let rt = threaded_runtime()?;
    rt.block_on(async {
        let o = open(&at, jiff::Timestamp::now()).await?;
        let engine = o.engine.clone();
        let now = engine.polled_until().await?.unwrap_or(o.start);
        let clock = Arc::new(std::sync::Mutex::new(now));
        let s = serve_demo(o, sv, clock).await?;
        println!(
            "\nThe dashboard stays up at http://{}/ui; Ctrl-C ends the demo.",
            sv.listen
        );
        stop_signal().await;
        s.stop().await;
        Ok(())
    })
}

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub at: Where,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "RINGMASTER_LISTEN")]
    pub listen: String,
    /// Drive the rollout on the simulated fleet (the scheduler runs inside the server).
    #[arg(long)]
    pub simulate: bool,
    /// Simulated seconds per real second while serving.
    #[arg(long, default_value_t = 3600.0)]
    pub speed: f64,
    /// Ingestion requests allowed per token and minute.
    #[arg(long, default_value_t = 600, env = "RINGMASTER_INGEST_PER_MINUTE")]
    pub ingest_per_minute: u32,
    /// Where notifications go: AUDIENCE=https://webhook… or AUDIENCE=mailto:address, for
    /// operators, help-desk, pilot-users and production-users (repeat it, or comma-separate in the variable).
    #[arg(
        long = "notify",
        value_name = "AUDIENCE=TARGET",
        env = "RINGMASTER_NOTIFY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub notify: Vec<String>,
    /// SMTP server for mail notifications: smtp://user:password@host:587 (STARTTLS) or smtps://….
    #[arg(
        long,
        value_name = "URL",
        env = "RINGMASTER_SMTP_URL",
        hide_env_values = true
    )]
    pub smtp: Option<String>,
    /// Sender of mail notifications.
    #[arg(
        long,
        default_value = "ringmaster <ringmaster@localhost>",
        env = "RINGMASTER_MAIL_FROM"
    )]
    pub mail_from: String,
    /// The dashboard's address as users reach it (links in messages); defaults to the listen address.
    #[arg(long, value_name = "URL", env = "RINGMASTER_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// `ringmaster serve`: the API, with the scheduler driving the rollout.
pub fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let live = a.at.intune.is_some();
    if live == a.simulate {
        return Err(crate::UserError(
            "say what the scheduler drives: --simulate (the built-in fleet) or --intune intune.toml (Microsoft Intune)".into(),
        )
        .into());
    }
    let rt = threaded_runtime()?;
    rt.block_on(async {
        let mut channels = ringmaster_server::Channels {
            smtp: a.smtp.clone(),
            mail_from: a.mail_from.clone(),
            ..Default::default()
        };
        for r in a.notify.iter().filter(|r| !r.trim().is_empty()) {
            channels.routes.push(
                ringmaster_server::Channels::parse_route(r)
                    .map_err(|e| crate::UserError(format!("--notify: {e}")))?,
            );
        }
        if channels.smtp.is_none()
            && channels
                .routes
                .iter()
                .any(|(_, t)| matches!(t, ringmaster_server::notify::Target::Mail(_)))
        {
            return Err(crate::UserError(
                "--notify names a mail address but no --smtp server is given".into(),
            )
            .into());
        }
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        let addr = listener.local_addr()?;
        channels.public_url = a
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let o = open(&a.at, jiff::Timestamp::now()).await?;
        let store = o.store.clone();
        if !store.has_tokens().await? {
            let t = store
                .create_token(
                    ringmaster_store::Role::Admin,
                    "first admin",
                    jiff::Timestamp::now(),
                )
                .await?;
            // Shown once: only its hash is kept.
            println!("first start: admin token (shown once, keep it safe):\n  {t}");
        }
        let engine = o.engine.clone();
        let start = engine.polled_until().await?.unwrap_or(o.start);
        let start = if live { jiff::Timestamp::now() } else { start };
        let clock_at = std::sync::Arc::new(std::sync::Mutex::new(start));
        let clock_read = clock_at.clone();
        let link_key = ringmaster_server::link_key(store.as_ref(), &o.rollout).await?;
        let l = o.loaded;
        let state = ringmaster_server::AppState {
            store,
            engine: engine.clone(),
            rollout: o.rollout.clone(),
            // Against a tenant, time is the real clock's.
            clock: std::sync::Arc::new(move || {
                if live {
                    jiff::Timestamp::now()
                } else {
                    *clock_read.lock().unwrap_or_else(|e| e.into_inner())
                }
            }),
            ingest_per_minute: a.ingest_per_minute,
            limiter: Default::default(),
            views: ringmaster_server::Views::new(ringmaster_server::View::new(
                l.plan, l.messages, l.org, l.res,
            )),
            link_key,
            channels: std::sync::Arc::new(channels),
            counters: Default::default(),
        };
        // The scheduler: one simulated hour per tick, paced by --speed; after
        // each tick the run state is judged (when due), and the outbox is
        // filled and delivered. With several servers
        // on one database, only the holder of the rollout's lease ticks; the
        // others follow the stored clock and take over when the lease runs out.
        let speed = a.speed.max(1.0);
        let notifier = state.clone();
        let plan_file = a.at.file.clone();
        let lease = Lease::new(&o.rollout);
        let leader = lease.clone();
        let store = state.store.clone();
        tokio::spawn(async move {
            let client = ringmaster_server::notify::client();
            // Judges the run state every few hours while leading; a new
            // leader rereads the store on its first check.
            let mut watcher = ringmaster_server::watch::Watcher::new(&notifier.rollout);
            let mut inputs = Inputs::of(&plan_file);
            let mut looked = std::time::Instant::now();
            // Against a tenant: a tick every 15 minutes of real time.
            let every = if live {
                std::time::Duration::from_secs(15 * 60)
            } else {
                std::time::Duration::from_secs_f64(3600.0 / speed)
            };
            let mut said: Option<bool> = None;
            let mut last: Option<jiff::Timestamp> = None;
            let mut next = tokio::time::Instant::now();
            loop {
                let held = match leader.hold(store.as_ref()).await {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::error!(error = %e, "renewing the scheduler lease");
                        false
                    }
                };
                let leading = held;
                // A new directory or policy export: reload it, so the run
                // state and the pages judge what the organization is now.
                if looked.elapsed() >= Inputs::EVERY {
                    looked = std::time::Instant::now();
                    let now_inputs = Inputs::of(&plan_file);
                    if now_inputs != inputs {
                        inputs = now_inputs;
                        reload(&plan_file, &notifier, leading).await;
                    }
                }
                if said != Some(held) {
                    said = Some(held);
                    println!(
                        "scheduler: {} ({})",
                        if leading { "leading" } else { "following" },
                        leader.holder
                    );
                }
                if !leading {
                    last = None;
                    // Follow the leader's clock, for the API and dashboard.
                    if let Ok(Some(t)) = engine.polled_until().await {
                        *clock_at.lock().unwrap_or_else(|e| e.into_inner()) = t;
                    }
                } else if tokio::time::Instant::now() >= next {
                    // The hour after the last tick, ours or a previous leader's.
                    let stored = engine.polled_until().await.ok().flatten();
                    let now = match stored.max(last) {
                        _ if live => jiff::Timestamp::now(),
                        Some(t) => t + jiff::SignedDuration::from_hours(1),
                        None => *clock_at.lock().unwrap_or_else(|e| e.into_inner()),
                    };
                    match engine.tick(now).await {
                        Ok(t) => t.transitions.iter().for_each(
                            |l| tracing::info!(target: "ringmaster::rollout", at = %stamp(now), "{l}"),
                        ),
                        Err(e) => {
                            tracing::error!(target: "ringmaster::rollout", at = %stamp(now), error = %e, "scheduler")
                        }
                    }
                    *clock_at.lock().unwrap_or_else(|e| e.into_inner()) = now;
                    if let Err(e) = watcher.run(&notifier).await {
                        tracing::error!(target: "ringmaster::runstate", at = %stamp(now), error = %e, "run-state check");
                    }
                    ringmaster_server::notify::run(&notifier, &client).await;
                    *clock_at.lock().unwrap_or_else(|e| e.into_inner()) = now;
                    last = Some(now);
                    next = tokio::time::Instant::now() + every;
                }
                // Short naps: the lease is renewed well before it runs out.
                let nap = if leading {
                    next.saturating_duration_since(tokio::time::Instant::now())
                } else {
                    Lease::RENEW
                };
                tokio::time::sleep(nap.min(Lease::RENEW)).await;
            }
        });
        println!("dashboard: http://{addr}/ui   API: http://{addr}/api (Ctrl-C stops)");
        let store = state.store.clone();
        ringmaster_server::serve(listener, state, stop_signal())
            .await
            .context("serving")?;
        // Hand the scheduler over at once rather than when the lease runs out.
        let _ = store.release(&lease.name, &lease.holder).await;
        eprintln!("stopped: requests in flight were finished");
        Ok(ExitCode::SUCCESS)
    })
}

/// What the plan reads from: every file under the plan's sources and the
/// plan itself, by size and modification time. A change means an import.
#[derive(PartialEq)]
struct Inputs(Vec<(PathBuf, u64, Option<std::time::SystemTime>)>);

impl Inputs {
    /// How often the files are looked at.
    const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    fn of(plan: &Path) -> Inputs {
        let mut out = Vec::new();
        let mut walk = vec![plan.to_path_buf()];
        if let Ok((_, spec)) = super::plan::read(plan) {
            let base = plan.parent().unwrap_or(Path::new("."));
            for p in spec
                .sources
                .org
                .iter()
                .chain(&spec.sources.existing)
                .chain(&spec.sources.new)
            {
                walk.push(base.join(p));
            }
        }
        while let Some(p) = walk.pop() {
            let Ok(m) = std::fs::metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                if let Ok(rd) = std::fs::read_dir(&p) {
                    walk.extend(rd.flatten().map(|e| e.path()));
                }
            } else {
                out.push((p, m.len(), m.modified().ok()));
            }
        }
        out.sort();
        Inputs(out)
    }
}

/// Loads the plan's sources again and puts the new view in place; the
/// leader records what the conflict analysis finds new or gone. A plan
/// that no longer loads, or whose devices moved rows, keeps the old view.
async fn reload(file: &Path, s: &ringmaster_server::AppState, leading: bool) {
    let now = (s.clock)();
    let l = match super::plan::load(file, now) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "reloading the plan's sources failed; the previous ones stay in use");
            return;
        }
    };
    let old = s.view();
    // Waves keep their devices as rows of the organization they started on.
    let moved = (0..old.org.devices.rows.min(l.org.devices.rows))
        .any(|r| old.org.device_id(r) != l.org.device_id(r))
        || l.org.devices.rows < old.org.devices.rows;
    if moved {
        tracing::error!(
            "the new directory export removes or reorders devices the waves hold; restart the rollout with a new plan version to use it"
        );
        return;
    }
    let before: Vec<_> = old
        .plan
        .conflicts
        .findings
        .iter()
        .map(|f| f.key())
        .collect();
    let changes = ringmaster_core::conflicts::changes(&before, &l.plan.conflicts);
    let detail = format!(
        "{} device(s), {} policies; conflict findings: {} new, {} gone{}",
        l.org.devices.rows,
        l.org.policies.len(),
        changes.new.len(),
        changes.gone.len(),
        changes
            .new
            .iter()
            .take(5)
            .map(|k| format!("; new: {} ({})", k.setting_id, k.policies.join(" + ")))
            .collect::<String>()
    );
    tracing::info!(target: "ringmaster::import", "sources reloaded: {detail}");
    if leading {
        let _ = s
            .store
            .audit(&ringmaster_store::AuditEntry {
                at: now,
                actor: "ringmaster".into(),
                rollout: s.rollout.clone(),
                action: "sources reloaded".into(),
                detail,
            })
            .await;
    }
    s.views.replace(ringmaster_server::View::new(
        l.plan, l.messages, l.org, l.res,
    ));
}

/// This server's claim on driving a rollout's scheduler.
#[derive(Clone)]
struct Lease {
    name: String,
    holder: String,
}

impl Lease {
    /// How long a lease lasts unrenewed: a dead leader is replaced within it.
    const TTL: std::time::Duration = std::time::Duration::from_secs(5);
    /// How often a holder renews (and a follower tries).
    const RENEW: std::time::Duration = std::time::Duration::from_secs(1);

    fn new(rollout: &str) -> Lease {
        use rand::RngCore;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        Lease {
            name: format!("scheduler:{rollout}"),
            holder: format!(
                "{host}/{}/{:08x}",
                std::process::id(),
                rand::rng().next_u32()
            ),
        }
    }

    /// Takes or renews the lease on the wall clock (not the rollout's).
    async fn hold(&self, store: &dyn ringmaster_store::Store) -> ringmaster_store::Result<bool> {
        let now = jiff::Timestamp::now();
        let until = now + jiff::SignedDuration::try_from(Self::TTL).unwrap_or_default();
        store.lease(&self.name, &self.holder, now, until).await
    }
}

/// Resolves on Ctrl-C or SIGTERM (what service managers send).
async fn stop_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[derive(clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub at: Where,
    /// viewer, reporter, help-desk, operator or admin.
    #[arg(long)]
    pub role: String,
    /// Who or what the token is for (shown in the audit log).
    #[arg(long, default_value = "")]
    pub label: String,
}

/// `ringmaster token create`: a new API token, shown once.
pub fn token_create(a: TokenArgs) -> anyhow::Result<ExitCode> {
    let role = ringmaster_store::Role::parse(&a.role).ok_or_else(|| {
        crate::UserError(format!(
            "unknown role `{}`: viewer, reporter, help-desk, operator or admin",
            a.role
        ))
    })?;
    runtime()?.block_on(async {
        let store = ringmaster_store::open(&database_url(&a.at)).await?;
        let label = if a.label.is_empty() {
            format!("{} token", role.as_str())
        } else {
            a.label.clone()
        };
        let t = store
            .create_token(role, &label, jiff::Timestamp::now())
            .await?;
        println!("{t}");
        eprintln!(
            "a {} token for '{label}'; it is shown only now",
            role.as_str()
        );
        Ok(ExitCode::SUCCESS)
    })
}
