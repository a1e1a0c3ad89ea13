//! Driving a rollout from its plan and its store, looking at it, stepping
//! in: one file per subcommand under `run/`, and what they share here
//! (where the rollout lives, opening it, the runtimes, how times and wave
//! states are written).
//!
//! - `drive`: `run` (the simulated fleet, or Intune on the real clock)
//! - `status`, `history`: the stored rollout
//! - `operate`: an operator's action on a wave
//! - `ingest`: status, ticket and feedback files
//! - `serve`: the API with the scheduler beside it
//! - `demo_run`: the demo's runs, watch and dashboard
//! - `token`: API tokens

mod demo_run;
mod drive;
mod history;
mod ingest;
mod operate;
mod serve;
mod status;
mod token;

pub use demo_run::{
    DemoEnd, DemoServe, demo_fresh_database, demo_run, demo_serve_until_stopped, demo_watch,
};
pub use drive::{RunArgs, run};
pub use history::history;
pub use ingest::{IngestArgs, ingest};
pub use operate::{ReleaseArgs, WaveArgs, operate, release};
pub use serve::{ServeArgs, serve};
pub use status::{StatusArgs, run_state, status};
pub use token::{
    TokenArgs, TokenListArgs, TokenRevokeArgs, token_create, token_list, token_revoke,
};

use anyhow::Context;
use ringmaster_core::wave::{Reason, WaveState};
use ringmaster_engine::connector::simulator::{Fault, SimConfig, Simulator};
use ringmaster_engine::engine::{Engine, WaveSpec};
use std::path::{Path, PathBuf};
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
    /// Seed of the simulated fleet (default 1). Kept in the database: a later
    /// run without it goes on with the same one.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print JSON instead of text (`status`, `history`).
    #[arg(long)]
    pub json: bool,
    /// Inject a fault into the simulation (repeatable): `wave=4,os=10.0.19045,error=0.4`,
    /// `platform=windows,setting=bitlocker,conflict=0.2`; add `from=2027-05-03` for drift
    /// that starts then (devices that applied the policy report again). Kept in the
    /// database like --seed; `--no-faults` drops the kept ones.
    #[arg(long, value_name = "SPEC")]
    pub fault: Vec<Fault>,
    /// Simulate without the faults an earlier run kept.
    #[arg(long, conflicts_with = "fault")]
    pub no_faults: bool,
    /// Drive Microsoft Intune through Graph, on the real clock, with the
    /// connection `ringmaster connect intune` saved (instead of --simulate).
    #[arg(long, value_name = "CONNECTION", env = "RINGMASTER_INTUNE")]
    pub intune: Option<PathBuf>,
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
    /// The simulator's settings, when it drives the rollout.
    sim: Option<SimSettings>,
}

/// The fleet simulator's settings. A run that names them keeps them in the
/// database, so the next run (a resume after an approval, say) simulates the
/// same fleet with the same faults instead of silently changing them.
#[derive(Clone)]
pub(crate) struct SimSettings {
    pub seed: u64,
    pub faults: Vec<Fault>,
    /// Taken from the database rather than the command line.
    pub kept: bool,
}

const SEED_KEY: &str = "simulator.seed";
const FAULTS_KEY: &str = "simulator.faults";

impl SimSettings {
    /// The command line's settings, else the kept ones, else the defaults;
    /// whatever the command line named is kept for the next run.
    async fn resolve(
        store: &dyn ringmaster_store::Store,
        rollout: &str,
        at: &Where,
    ) -> anyhow::Result<SimSettings> {
        // Its times are simulated from now on: screens mark them so.
        store
            .set_meta(rollout, ringmaster_store::SIMULATED_CLOCK, "true")
            .await?;
        let kept_seed = store.get_meta(rollout, SEED_KEY).await?;
        let kept_faults = store.get_meta(rollout, FAULTS_KEY).await?;
        let seed = match (at.seed, &kept_seed) {
            (Some(s), _) => {
                store.set_meta(rollout, SEED_KEY, &s.to_string()).await?;
                s
            }
            (None, Some(k)) => k.parse().with_context(|| {
                format!("the database keeps a simulator seed that is not a number: `{k}`")
            })?,
            (None, None) => {
                // Kept even when defaulted: it marks the rollout as simulated.
                store.set_meta(rollout, SEED_KEY, "1").await?;
                1
            }
        };
        let faults = if !at.fault.is_empty() || at.no_faults {
            let json = serde_json::to_string(&at.fault).context("writing the faults")?;
            store.set_meta(rollout, FAULTS_KEY, &json).await?;
            at.fault.clone()
        } else {
            match &kept_faults {
                Some(k) => serde_json::from_str(k)
                    .context("the database keeps simulator faults that do not read")?,
                None => Vec::new(),
            }
        };
        let kept = (at.seed.is_none() && kept_seed.is_some())
            || (at.fault.is_empty() && !at.no_faults && kept_faults.is_some_and(|f| f != "[]"));
        Ok(SimSettings { seed, faults, kept })
    }

    /// Whether an earlier run of the rollout in `at` was simulated (and kept
    /// its settings), so a bare `run` goes on simulating it.
    pub async fn were_kept(at: &Where) -> anyhow::Result<bool> {
        let (_, spec) = super::plan::read(&at.file)?;
        let rollout = spec.rollout.id.get_ref().trim().to_string();
        let url = database_url(at);
        // No database file yet: nothing ran, and looking must not create one.
        if let Some(path) = url.strip_prefix("sqlite:")
            && !Path::new(path).exists()
        {
            return Ok(false);
        }
        let store = ringmaster_store::open(&url)
            .await
            .map_err(|e| crate::UserError(format!("opening the database: {e}")))?;
        Ok(store.get_meta(&rollout, SEED_KEY).await?.is_some())
    }

    /// `seed 1, fault wave=6,error=0.3`: what a person would type again.
    pub fn describe(&self) -> String {
        let mut s = format!("seed {}", self.seed);
        for f in &self.faults {
            s.push_str(&format!(", fault {}", fault_spec(f)));
        }
        s
    }
}

/// A fault written back in the `--fault` syntax.
fn fault_spec(f: &Fault) -> String {
    let mut parts = Vec::new();
    // Kept from 0; written from 1, as `--fault` takes it.
    if let Some(w) = f.wave {
        parts.push(format!("wave={}", w + 1));
    }
    if let Some(o) = &f.os_prefix {
        parts.push(format!("os={o}"));
    }
    if let Some(p) = &f.platform {
        parts.push(format!("platform={p}"));
    }
    if let Some(s) = &f.setting {
        parts.push(format!("setting={s}"));
    }
    if f.error_rate > 0.0 {
        parts.push(format!("error={}", f.error_rate));
    }
    if f.conflict_rate > 0.0 {
        parts.push(format!("conflict={}", f.conflict_rate));
    }
    if let Some(t) = f.from {
        parts.push(format!("from={t}"));
    }
    parts.join(",")
}

/// The built-in fleet simulator for a plan.
fn simulator(sim: &SimSettings, loaded: &super::plan::Loaded) -> Simulator {
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
            seed: sim.seed,
            faults: sim.faults.clone(),
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
    show_times_in(&loaded.plan.time_zone);
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
    let waves = WaveSpec::from_plan(&loaded.plan, &loaded.org);
    let start = waves
        .first()
        .map(|w| w.starts_at)
        .ok_or_else(|| crate::UserError("the plan has no waves".into()))?;
    type Connector = Arc<dyn ringmaster_engine::connector::Connector>;
    let (connector, sim): (Connector, _) = match &at.intune {
        Some(conn) => (
            Arc::new(super::intune::connector(conn, &loaded.plan.id, &loaded)?),
            None,
        ),
        None => {
            let sim = SimSettings::resolve(store.as_ref(), &loaded.plan.id, at).await?;
            (Arc::new(simulator(&sim, &loaded)), Some(sim))
        }
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
        sim,
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

/// The zone every time is printed in: the plan's, once a command has read it.
static ZONE: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();

/// Prints times in the plan's zone from now on (the plan checks the name; an
/// unknown one leaves UTC, which `stamp` then names).
fn show_times_in(zone: &str) {
    if let Ok(z) = jiff::tz::TimeZone::get(zone.trim()) {
        let _ = ZONE.set(z);
    }
}

/// `2027-01-18 09:00 CET`: the plan's zone, named, as the plan prints its dates.
fn stamp(t: jiff::Timestamp) -> String {
    let zone = ZONE.get().cloned().unwrap_or(jiff::tz::TimeZone::UTC);
    t.to_zoned(zone).strftime("%Y-%m-%d %H:%M %Z").to_string()
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
    show_times_in(spec.rollout.time_zone.get_ref());
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
