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

pub use demo_run::{DemoEnd, DemoServe, demo_run, demo_serve_until_stopped, demo_watch};
pub use drive::{RunArgs, run};
pub use history::history;
pub use ingest::{IngestArgs, ingest};
pub use operate::{WaveArgs, operate};
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
