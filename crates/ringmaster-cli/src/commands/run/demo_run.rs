//! The demo's rollout: runs with an operator who approves, the run-state
//! watch afterwards, and the dashboard served meanwhile.

use super::drive::{Driven, Pace, drive, hours_bar};
use super::{Opened, Where, database_url, describe, open, stamp, stored, threaded_runtime};
use anyhow::Context;
use ringmaster_engine::connector::simulator::Fault;
use ringmaster_engine::engine::Engine;
use std::path::Path;
use std::sync::Arc;

/// The demo's rollout: its plan beside the default database, on the
/// simulated fleet with `faults`.
fn demo_where(file: &Path, faults: Vec<Fault>) -> Where {
    Where {
        file: file.to_path_buf(),
        database: None,
        seed: Some(1),
        json: false,
        fault: faults,
        no_faults: false,
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

/// The dashboard the demo serves while it runs. Its listener and admin
/// token are made when the demo starts, so the address and token are printed
/// before the tour; connections made while no run is serving wait in the
/// listener's backlog until the next one does.
pub struct DemoServe {
    listener: std::net::TcpListener,
    addr: std::net::SocketAddr,
    token: String,
    /// Set while the demo waits at rest for Ctrl-C; otherwise Ctrl-C ends the
    /// demo at once.
    rest: Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
}

impl DemoServe {
    /// Binds `listen` (a free loopback port when it is taken), starts the
    /// demo's database afresh beside `file` with an admin token, and takes
    /// over Ctrl-C: from now on it says that the dashboard stopped.
    pub fn reserve(file: &Path, listen: &str) -> anyhow::Result<Self> {
        let listener = match std::net::TcpListener::bind(listen) {
            Ok(l) => l,
            Err(_) => std::net::TcpListener::bind("127.0.0.1:0")
                .context("listening on a free loopback port")?,
        };
        // Shared by the clones each run serves from (tokio needs it non-blocking).
        listener
            .set_nonblocking(true)
            .context("setting up the listener")?;
        let addr = listener.local_addr()?;
        let at = demo_where(file, Vec::new());
        let token = threaded_runtime()?.block_on(async {
            let store = ringmaster_store::open(&database_url(&at))
                .await
                .map_err(|e| crate::UserError(format!("opening the database: {e}")))?;
            let t = store
                .create_token(
                    ringmaster_store::Role::Admin,
                    "demo admin",
                    jiff::Timestamp::now(),
                )
                .await?;
            anyhow::Ok(t)
        })?;
        let rest = Arc::default();
        on_stop_signal(file, Arc::clone(&rest))?;
        Ok(Self {
            listener,
            addr,
            token,
            rest,
        })
    }

    /// Where the dashboard is, as `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The admin token to sign in with.
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// Removes the demo's database beside `file`, so its rollout starts from
/// nothing (before anything reads it).
pub fn demo_fresh_database(file: &Path) {
    let db = file.with_file_name("ringmaster.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
}

/// Ctrl-C or SIGTERM, on a thread of its own for the rest of the demo: while
/// the demo rests, it stops the dashboard through `rest`; before that, the
/// demo ends here and says so. Returns once the handlers are in place.
fn on_stop_signal(
    file: &Path,
    rest: Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
) -> anyhow::Result<()> {
    let folder = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let (ready, listening) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("demo-signals".into())
        .spawn(move || {
            let rt = match super::runtime() {
                Ok(rt) => rt,
                Err(e) => return ready.send(Err(e)).unwrap_or(()),
            };
            rt.block_on(async move {
                let signalled = match signals() {
                    Ok(s) => s,
                    Err(e) => return ready.send(Err(e)).unwrap_or(()),
                };
                let _ = ready.send(Ok(()));
                signalled.await;
                let waiting = rest.lock().unwrap_or_else(|e| e.into_inner()).take();
                match waiting.map(|w| w.send(())) {
                    Some(Ok(())) => {}
                    _ => {
                        println!(
                            "\ndashboard stopped: the demo was interrupted; its files stay in {}",
                            folder.display()
                        );
                        std::process::exit(130);
                    }
                }
            });
        })
        .context("starting the signal thread")?;
    listening
        .recv()
        .context("starting the signal thread")?
        .context("listening for Ctrl-C")
}

/// A future that ends on Ctrl-C or SIGTERM; the handlers are installed
/// when it is made, not when it is first polled.
#[cfg(unix)]
fn signals() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn signals() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
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

/// Serves the dashboard and API for `o` on the demo's listener, the clock
/// read from `clock`.
async fn serve_demo(
    o: Opened,
    sv: &DemoServe,
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
    sv: &DemoServe,
    clock: Arc<std::sync::Mutex<jiff::Timestamp>>,
) -> anyhow::Result<Serving> {
    // A clone of the reserved socket: closing it when this run ends keeps
    // the port, and what connects meanwhile waits for the next run.
    let listener = tokio::net::TcpListener::from_std(
        sv.listener
            .try_clone()
            .context("sharing the dashboard's listener")?,
    )
    .context("serving the dashboard's listener")?;
    let addr = sv.addr;
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
/// wave when asked, until the rollout ends or a gate stops it, resuming the
/// stored rollout if there is one. With `serve`, the dashboard is up while it runs.
pub fn demo_run(
    file: &Path,
    faults: Vec<Fault>,
    speed: f64,
    serve: Option<&DemoServe>,
) -> anyhow::Result<DemoEnd> {
    let at = demo_where(file, faults);
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
            approver: Some(("demo operator", &[super::drive::Approve::All])),
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
    serve: Option<&DemoServe>,
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

/// After the demo: its dashboard stays up, the rollout at rest, until Ctrl-C;
/// then it says that it stopped.
pub fn demo_serve_until_stopped(file: &Path, sv: &DemoServe) -> anyhow::Result<()> {
    let at = demo_where(file, Vec::new());
    let rt = threaded_runtime()?;
    rt.block_on(async {
        let o = open(&at, jiff::Timestamp::now()).await?;
        let engine = o.engine.clone();
        let now = engine.polled_until().await?.unwrap_or(o.start);
        let clock = Arc::new(std::sync::Mutex::new(now));
        let s = serve_demo(o, sv, clock).await?;
        let (tx, stopped) = tokio::sync::oneshot::channel();
        *sv.rest.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        println!(
            "\nThe dashboard stays up at {}/ui; Ctrl-C stops it.",
            sv.url()
        );
        let _ = stopped.await;
        s.stop().await;
        println!("dashboard stopped");
        Ok(())
    })
}
