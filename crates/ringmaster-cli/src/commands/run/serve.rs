//! `ringmaster serve`: the API and dashboard, with the scheduler
//! (`ringmaster_server::scheduler`) driving the rollout beside them.

use super::{Where, open, stop_signal, threaded_runtime};
use anyhow::Context;
use ringmaster_server::scheduler::{
    Fingerprint, Lease, Pace, RolloutClock, Scheduler, Sources, SystemClock,
};
use ringmaster_server::{AppState, Channels, View};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub at: Where,
    /// Who starts the rollout here: the requester of a plan version's waves
    /// if nobody drove it before (two-person approvals keep them from
    /// approving alone).
    #[arg(long, env = "USER", default_value = "operator")]
    pub actor: String,
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
        let mut channels = channels(&a)?;
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        let addr = listener.local_addr()?;
        channels.public_url = a
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let o = open(&a.at, jiff::Timestamp::now()).await?;
        // The request is the rollout's: on its own clock, simulated or real.
        let rollout_now = if live {
            jiff::Timestamp::now()
        } else {
            o.engine.polled_until().await?.unwrap_or(o.start)
        };
        o.engine.request(&a.actor, rollout_now).await?;
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
        // Against a tenant, time is the real clock's.
        let wall = Arc::new(SystemClock);
        let (time, pace) = if live {
            (RolloutClock::live(wall.clone()), Pace::LIVE)
        } else {
            (
                RolloutClock::simulated(rollout_now),
                Pace::simulated(a.speed),
            )
        };
        let l = o.loaded;
        let state = AppState {
            link_key: ringmaster_server::link_key(store.as_ref(), &o.rollout).await?,
            store,
            engine: o.engine,
            rollout: o.rollout.clone(),
            clock: time.reader(),
            ingest_per_minute: a.ingest_per_minute,
            limiter: Default::default(),
            views: ringmaster_server::Views::new(View::new(l.plan, l.messages, l.org, l.res)),
            channels: Arc::new(channels),
            counters: Default::default(),
        };
        let lease = Lease::for_this_process(&o.rollout);
        let holder = lease.holder.clone();
        let scheduler = Scheduler::new(state.clone(), time, pace, lease, wall).with_sources(
            Box::new(PlanSources {
                file: a.at.file.clone(),
            }),
        );
        let (halt, halted) = tokio::sync::oneshot::channel::<()>();
        let scheduling = tokio::spawn(scheduler.run(
            async {
                let _ = halted.await;
            },
            move |s| {
                if s.changed {
                    let role = if s.leading { "leading" } else { "following" };
                    println!("scheduler: {role} ({holder})");
                }
            },
        ));
        println!("dashboard: http://{addr}/ui   API: http://{addr}/api (Ctrl-C stops)");
        ringmaster_server::serve(listener, state, stop_signal())
            .await
            .context("serving")?;
        // The scheduler hands its lease over at once rather than when it runs out.
        let _ = halt.send(());
        let _ = scheduling.await;
        eprintln!("stopped: requests in flight were finished");
        Ok(ExitCode::SUCCESS)
    })
}

/// Where `--notify` and `--smtp` send messages (the public URL is set once
/// the listener is bound).
fn channels(a: &ServeArgs) -> anyhow::Result<Channels> {
    let mut channels = Channels {
        smtp: a.smtp.clone(),
        mail_from: a.mail_from.clone(),
        ..Default::default()
    };
    for r in a.notify.iter().filter(|r| !r.trim().is_empty()) {
        channels.routes.push(
            Channels::parse_route(r).map_err(|e| crate::UserError(format!("--notify: {e}")))?,
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
    Ok(channels)
}

/// The plan file and every file under its sources: what the scheduler
/// watches for a new export.
struct PlanSources {
    file: PathBuf,
}

impl Sources for PlanSources {
    fn fingerprint(&self) -> Fingerprint {
        let mut roots = vec![self.file.clone()];
        if let Ok((_, spec)) = crate::commands::plan::read(&self.file) {
            let base = self.file.parent().unwrap_or(Path::new("."));
            let s = &spec.sources;
            roots.extend(
                s.org
                    .iter()
                    .chain(&s.existing)
                    .chain(&s.new)
                    .map(|p| base.join(p)),
            );
        }
        Fingerprint::of(roots)
    }

    fn load(&self, now: jiff::Timestamp) -> Result<View, Box<dyn std::error::Error + Send + Sync>> {
        let l = crate::commands::plan::load(&self.file, now)?;
        Ok(View::new(l.plan, l.messages, l.org, l.res))
    }
}
