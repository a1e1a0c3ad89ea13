//! The scheduler driven pass by pass on a fake wall clock: the lease (held,
//! renewed, lost, handed over), the rollout clock it publishes, ticks, the
//! run-state watch, notifications and reloads of the sources.

mod common;

use common::{Fixture, fixture, fixture_with};
use ringmaster_server::notify::Target;
use ringmaster_server::scheduler::{
    Clock, Fingerprint, Lease, Pace, Reloaded, RolloutClock, Scheduler, Sources, Step,
};
use ringmaster_server::{AppState, Channels, View};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A wall clock that moves only when told to, or when slept on.
struct FakeClock(tokio::sync::watch::Sender<jiff::Timestamp>);

impl FakeClock {
    fn at(t: &str) -> Arc<FakeClock> {
        Arc::new(FakeClock(tokio::sync::watch::Sender::new(
            t.parse().unwrap(),
        )))
    }

    fn advance(&self, d: Duration) {
        let d = jiff::SignedDuration::try_from(d).unwrap();
        self.0.send_modify(|t| *t += d);
    }

    /// Resolves once the clock shows `t` or later.
    async fn reaches(&self, t: jiff::Timestamp) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|now| *now >= t).await;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> jiff::Timestamp {
        *self.0.borrow()
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.advance(d);
        Box::pin(tokio::task::yield_now())
    }
}

const WALL: &str = "2030-03-01T08:00:00Z";

/// Ticks two seconds apart on the wall clock: a tick every other pass.
const EVERY_2S: Pace = Pace::Simulated {
    every: Duration::from_secs(2),
};

/// A scheduler for `state` whose API reads `time`.
fn scheduler(
    mut state: AppState,
    time: RolloutClock,
    pace: Pace,
    holder: &str,
    wall: &Arc<FakeClock>,
) -> Scheduler {
    state.clock = time.reader();
    Scheduler::new(state, time, pace, Lease::new("api", holder), wall.clone())
}

/// The fixture's scheduler: its API reads the fixture's clock.
fn leader(f: &Fixture, wall: &Arc<FakeClock>) -> Scheduler {
    let time = RolloutClock::shared(f.now.clone());
    scheduler(f.state.clone(), time, EVERY_2S, "a", wall)
}

/// Passes until `n` ticks were made, the wall clock moved by each nap;
/// returns the rollout times ticked at.
async fn ticks(s: &mut Scheduler, wall: &FakeClock, n: usize) -> Vec<jiff::Timestamp> {
    let mut at = Vec::new();
    for _ in 0..n * 10 {
        let step = s.step().await;
        assert!(step.leading, "{step:?}");
        at.extend(step.ticked);
        if at.len() == n {
            return at;
        }
        wall.advance(step.nap);
    }
    panic!("{n} ticks not reached: {at:?}");
}

fn hours(h: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_hours(h)
}

#[tokio::test]
async fn the_leader_ticks_an_hour_per_tick_and_publishes_the_rollout_clock() {
    let f = fixture().await;
    let start = *f.now.lock().unwrap();
    let wall = FakeClock::at(WALL);
    let mut s = leader(&f, &wall);
    let first = s.step().await;
    assert!(first.leading && first.changed, "{first:?}");
    // Nothing was polled yet: the first tick is at the rollout's start.
    assert_eq!(first.ticked, Some(start));
    assert_eq!(first.nap, Lease::RENEW, "naps never outlast a renewal");
    let again = s.step().await;
    assert!(again.leading && !again.changed && again.ticked.is_none());
    wall.advance(Duration::from_secs(1));
    assert_eq!(s.step().await.ticked, None, "not due for another second");
    wall.advance(Duration::from_secs(1));
    let second = s.step().await;
    assert_eq!(second.ticked, Some(start + hours(1)));
    assert_eq!((f.state.clock)(), start + hours(1));
    assert_eq!(
        f.state.engine.polled_until().await.unwrap(),
        Some(start + hours(1))
    );
    // A day further, one hour at a time, every hour once.
    wall.advance(second.nap);
    let day = ticks(&mut s, &wall, 24).await;
    let want: Vec<_> = (2..=25).map(|h| start + hours(h)).collect();
    assert_eq!(day, want);
    assert_eq!((f.state.clock)(), start + hours(25));
}

#[tokio::test]
async fn a_follower_follows_the_stored_clock_and_takes_over_when_the_lease_runs_out() {
    let f = fixture().await;
    let start = *f.now.lock().unwrap();
    let wall = FakeClock::at(WALL);
    let mut a = leader(&f, &wall);
    // The second server's API has a clock of its own.
    let b_time = RolloutClock::simulated("2000-01-01T00:00:00Z".parse().unwrap());
    let mut b = scheduler(f.state.clone(), b_time.clone(), EVERY_2S, "b", &wall);
    let led = ticks(&mut a, &wall, 3).await;
    assert_eq!(led, vec![start, start + hours(1), start + hours(2)]);
    let step = b.step().await;
    assert!(!step.leading && step.changed && step.ticked.is_none());
    assert_eq!(b_time.now(), start + hours(2), "b shows the stored clock");
    // The leader renews and ticks again; the follower keeps following.
    wall.advance(Duration::from_secs(3));
    let renewed = a.step().await;
    assert!(renewed.leading && !renewed.changed);
    assert_eq!(renewed.ticked, Some(start + hours(3)));
    wall.advance(Lease::TTL - Duration::from_secs(1));
    let step = b.step().await;
    assert!(
        !step.leading && !step.changed,
        "the lease still runs: {step:?}"
    );
    assert_eq!(b_time.now(), start + hours(3));
    // The leader died at its last renewal: when the lease runs out, b leads,
    // ticks the leader's last hour again (it may have died half-way through
    // it) and goes on from the hour after.
    wall.advance(Duration::from_secs(1));
    let took = b.step().await;
    assert!(took.leading && took.changed, "{took:?}");
    assert_eq!(took.ticked, Some(start + hours(4)));
    assert_eq!(b_time.now(), start + hours(4));
    // The old leader comes back as a follower.
    let back = a.step().await;
    assert!(!back.leading && back.changed && back.ticked.is_none());
    assert_eq!((f.state.clock)(), start + hours(4));
}

#[tokio::test]
async fn stopping_hands_the_lease_over_at_once() {
    let f = fixture().await;
    let wall = FakeClock::at(WALL);
    let a = leader(&f, &wall);
    let stop_at = wall.now() + jiff::SignedDuration::from_secs(3);
    let mut seen: Vec<(bool, bool)> = Vec::new();
    a.run(wall.reaches(stop_at), |s: &Step| {
        seen.push((s.leading, s.ticked.is_some()))
    })
    .await;
    assert_eq!(seen.first(), Some(&(true, true)), "{seen:?}");
    assert!(seen.iter().all(|(leading, _)| *leading), "{seen:?}");
    assert!(wall.now() >= stop_at);
    // Well within the lease's time: it was released, so b takes over now.
    let b_time = RolloutClock::simulated(jiff::Timestamp::UNIX_EPOCH);
    let mut b = scheduler(f.state.clone(), b_time, EVERY_2S, "b", &wall);
    let step = b.step().await;
    assert!(step.leading && step.ticked.is_some(), "{step:?}");
}

#[tokio::test]
async fn against_a_tenant_it_ticks_at_wall_time_every_quarter_hour() {
    let f = fixture().await;
    let start = *f.now.lock().unwrap();
    let t0 = start + hours(2);
    let wall = FakeClock::at(&t0.to_string());
    let time = RolloutClock::live(wall.clone());
    let mut s = scheduler(f.state.clone(), time, Pace::LIVE, "a", &wall);
    let first = s.step().await;
    assert_eq!(first.ticked, Some(t0));
    wall.advance(Duration::from_secs(14 * 60));
    let step = s.step().await;
    assert_eq!(step.ticked, None);
    assert_eq!(step.nap, Lease::RENEW);
    wall.advance(Duration::from_secs(60));
    let t1 = t0 + jiff::SignedDuration::from_mins(15);
    assert_eq!(s.step().await.ticked, Some(t1));
    assert_eq!(f.state.engine.polled_until().await.unwrap(), Some(t1));
}

/// A webhook receiver that keeps the title of every message.
async fn webhook() -> (String, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Default::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let keep = keep.clone();
            async move {
                let title = v["title"].as_str().unwrap_or_default().to_string();
                keep.lock().unwrap().push(title);
                axum::http::StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test]
async fn each_tick_is_followed_by_the_run_state_watch_and_the_notifications() {
    let (hook, hooked) = webhook().await;
    let f = fixture_with(Channels {
        routes: vec![("operators".into(), Target::Webhook(hook))],
        ..Default::default()
    })
    .await;
    let start = *f.now.lock().unwrap();
    let wall = FakeClock::at(WALL);
    let mut s = leader(&f, &wall);
    ticks(&mut s, &wall, 1).await;
    let titles = hooked.lock().unwrap().clone();
    assert!(
        titles.iter().any(|t| t.contains("awaits approval")),
        "the outbox was filled and delivered after the tick: {titles:?}"
    );
    f.state
        .engine
        .operate(1, ringmaster_core::wave::Event::Approve, "test", start)
        .await
        .unwrap()
        .unwrap();
    assert!(
        f.state.store.alerts("api", true).await.unwrap().is_empty(),
        "no check before the pilot applied"
    );
    wall.advance(Duration::from_secs(2));
    ticks(&mut s, &wall, 30).await;
    // The fixture's plan leaves a LAPS conflict unaccepted: the watch raised it.
    let open = s_alerts(&f).await;
    assert!(open.iter().any(|k| k.starts_with("conflict:")), "{open:?}");
    let samples = f.state.store.runstate_samples("api", start).await.unwrap();
    assert!(!samples.is_empty(), "the watch keeps a sample per check");
    let titles = hooked.lock().unwrap().clone();
    assert!(
        titles.iter().any(|t| t.contains("alert(s) raised")),
        "operators were told: {titles:?}"
    );
    let outbox = f.state.store.outbox("api", 100).await.unwrap();
    assert!(outbox.iter().all(|o| o.state == "sent"), "{outbox:?}");
}

async fn s_alerts(f: &Fixture) -> Vec<String> {
    let open = f.state.store.alerts("api", true).await.unwrap();
    open.into_iter().map(|a| a.key).collect()
}

/// The fixture's sources read from its folder: `org`, `new` and a plan file.
struct Folder {
    dir: PathBuf,
}

impl Folder {
    fn plan(&self) -> PathBuf {
        self.dir.join("ringmaster.toml")
    }
}

impl Sources for Folder {
    fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of([self.plan(), self.dir.join("org"), self.dir.join("new")])
    }

    fn load(
        &self,
        _now: jiff::Timestamp,
    ) -> Result<View, Box<dyn std::error::Error + Send + Sync>> {
        let text = std::fs::read_to_string(self.plan())?;
        let spec = ringmaster_plan::parse(&text).map_err(|e| format!("{e:?}"))?;
        let mut org = ringmaster_import::load(&[self.dir.join("org")])?.org;
        let n = org.policies.len();
        org.add_policies(
            ringmaster_import::load(&[self.dir.join("new")])?
                .org
                .policies,
        );
        let mut proposed = vec![false; n];
        proposed.resize(org.policies.len(), true);
        let mut res = ringmaster_core::targeting::resolve(&org, "2027-01-01T00:00:00Z".parse()?);
        let inputs = ringmaster_plan::planner::Inputs {
            org: &org,
            res: &mut res,
            proposed: &proposed,
        };
        let plan = ringmaster_plan::planner::build(&spec, inputs).map_err(|e| format!("{e:?}"))?;
        Ok(View::new(plan, Vec::new(), org, res))
    }
}

#[tokio::test]
async fn changed_sources_are_loaded_again_unless_they_fail_or_move_devices() {
    let f = fixture().await;
    let dir = f._dir.path().to_path_buf();
    std::fs::write(dir.join("ringmaster.toml"), common::PLAN).unwrap();
    let wall = FakeClock::at(WALL);
    let mut s = leader(&f, &wall).with_sources(Box::new(Folder { dir: dir.clone() }));
    let look = || wall.advance(Scheduler::LOOK_EVERY);
    let generation = || f.state.views.current().1;
    assert_eq!(s.step().await.reloaded, None, "not looked at yet");
    // A second server, following, with a view of its own.
    let mut b_state = f.state.clone();
    b_state.views = ringmaster_server::Views::new(
        Folder { dir: dir.clone() }
            .load(WALL.parse().unwrap())
            .unwrap(),
    );
    let b_time = RolloutClock::simulated(jiff::Timestamp::UNIX_EPOCH);
    let mut b = scheduler(b_state.clone(), b_time, EVERY_2S, "b", &wall)
        .with_sources(Box::new(Folder { dir: dir.clone() }));
    look();
    assert_eq!(s.step().await.reloaded, None, "nothing changed");
    // A file the import skips: the same devices, so the view is replaced.
    std::fs::write(dir.join("org").join("notes.txt"), "exported on Monday").unwrap();
    wall.advance(Duration::from_secs(1));
    assert_eq!(s.step().await.reloaded, None, "looked at every 10 s only");
    look();
    assert_eq!(s.step().await.reloaded, Some(Reloaded::Replaced));
    assert_eq!(generation(), 1);
    let audit = f.state.store.audit_log("api").await.unwrap();
    let entry = audit
        .iter()
        .find(|e| e.action == "sources reloaded")
        .expect("the leader audits the reload");
    let rows = f.state.view().org.devices.rows;
    assert!(
        entry.detail.starts_with(&format!("{rows} device(s)")),
        "{}",
        entry.detail
    );
    // The follower loads it too, for its own pages, and leaves the audit to the leader.
    let step = b.step().await;
    assert!(!step.leading);
    assert_eq!(step.reloaded, Some(Reloaded::Replaced));
    assert_eq!(b_state.views.current().1, 1);
    let audit = f.state.store.audit_log("api").await.unwrap();
    let reloads = audit.iter().filter(|e| e.action == "sources reloaded");
    assert_eq!(reloads.count(), 1);
    // A plan that no longer parses keeps the view.
    std::fs::write(dir.join("ringmaster.toml"), "[rollout\n").unwrap();
    look();
    assert_eq!(s.step().await.reloaded, Some(Reloaded::Failed));
    assert_eq!(generation(), 1);
    // A directory with fewer devices than the waves hold keeps the view.
    std::fs::write(dir.join("ringmaster.toml"), common::PLAN).unwrap();
    std::fs::remove_dir_all(dir.join("org")).unwrap();
    ringmaster_gen::generate(&dir.join("org"), &ringmaster_gen::Options::new(500, 7)).unwrap();
    look();
    assert_eq!(s.step().await.reloaded, Some(Reloaded::Moved));
    assert_eq!(generation(), 1);
    assert_eq!(f.state.view().org.devices.rows, rows);
}
