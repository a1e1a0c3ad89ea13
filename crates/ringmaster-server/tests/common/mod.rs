//! The fixture every server test shares: a generated organization with
//! hostile names in it, a planned rollout on the simulator, tokens per role.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ringmaster_engine::connector::simulator::{SimConfig, Simulator};
use ringmaster_engine::engine::{Engine, WaveSpec};
use ringmaster_server::app;
use ringmaster_server::{AppState, Channels, View};
use ringmaster_store::Role;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

/// Names that would run as script if a page did not escape them.
pub const HOSTILE_DEVICE: &str = "<script>alert('device')</script>";
pub const HOSTILE_GROUP: &str = "<img src=x onerror=alert('group')>";
pub const HOSTILE_POLICY: &str = "<script>alert('policy')</script>";

/// The stable id of the device with the hostile name, the first in the
/// export (the same in every fixture: one seed).
pub static FIRST_DEVICE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub const PLAN: &str = r#"
[rollout]
id = "api"
name = "API"
purpose = "Test."
time_zone = "Europe/Amsterdam"
start = "2027-01-11"

[help_desk]
contact = "desk"
capacity_per_day = 1000

[sources]
org = ["org"]

[[groups]]
key = "sales"
group = "All Sales Devices"
willingness = "medium"
business_risk = "medium"

[[phases]]
kind = "pilot"
judging = "point"
approval = true
  [phases.pilot]
  min_devices = 30

[[phases]]
kind = "enterprise"
judging = "point"
  [[phases.waves]]
  rest = true
"#;

pub struct Fixture {
    pub state: AppState,
    pub tokens: Vec<(Role, String)>,
    /// The rollout's clock, which tests move.
    pub now: Arc<Mutex<jiff::Timestamp>>,
    pub _dir: tempfile::TempDir,
}

impl Fixture {
    pub fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    /// Moves the clock `hours` ahead, ticking the engine each hour.
    pub async fn run_hours(&self, hours: u32) {
        for _ in 0..hours {
            let now = {
                let mut t = self.now.lock().unwrap();
                *t += jiff::SignedDuration::from_hours(1);
                *t
            };
            self.state.engine.tick(now).await.unwrap();
        }
    }
}

/// Puts `what` before the first value of `key` in a generated file.
fn inject(path: &std::path::Path, key: &str, what: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let at = text.find(key).unwrap() + key.len();
    let what = what.replace('"', "\\\"");
    std::fs::write(path, format!("{}{what} {}", &text[..at], &text[at..])).unwrap();
}

pub async fn fixture() -> Fixture {
    fixture_with(Channels::default()).await
}

pub async fn fixture_with(channels: Channels) -> Fixture {
    fixture_in(channels, false).await
}

/// The fixture; `on_disk`: its database is a SQLite file (`rm.db` in the
/// fixture's folder) that a test can lock from outside.
pub async fn fixture_in(channels: Channels, on_disk: bool) -> Fixture {
    fixture_of(PLAN, channels, on_disk).await
}

/// The fixture on another plan (the same organization and rollout id).
pub async fn fixture_plan(plan: &str) -> Fixture {
    fixture_of(plan, Channels::default(), false).await
}

async fn fixture_of(plan_text: &str, channels: Channels, on_disk: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    ringmaster_gen::generate(
        &dir.path().join("org"),
        &ringmaster_gen::Options::new(3000, 7),
    )
    .unwrap();
    ringmaster_gen::generate_proposed(&dir.path().join("new")).unwrap();
    let org_dir = dir.path().join("org");
    inject(
        &org_dir.join("managedDevices.ndjson"),
        "\"deviceName\":\"",
        HOSTILE_DEVICE,
    );
    inject(
        &org_dir.join("configurationPolicies.json"),
        "\"name\": \"",
        HOSTILE_POLICY,
    );
    // Not the targeted group: the plan names that one.
    let groups = std::fs::read_to_string(org_dir.join("groups.json")).unwrap();
    let other = groups
        .match_indices("\"displayName\": \"")
        .map(|(i, k)| &groups[i + k.len()..])
        .find(|rest| !rest.starts_with("All Sales Devices"))
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .unwrap();
    inject(
        &org_dir.join("groups.json"),
        &format!("\"displayName\": \"{other}"),
        HOSTILE_GROUP,
    );
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
    let mut res =
        ringmaster_core::targeting::resolve(&org, "2027-01-01T00:00:00Z".parse().unwrap());
    let spec = ringmaster_plan::parse(plan_text).unwrap();
    let plan = ringmaster_plan::planner::build(
        &spec,
        ringmaster_plan::planner::Inputs {
            org: &org,
            res: &mut res,
            proposed: &proposed,
        },
    )
    .unwrap();
    let url = if on_disk {
        format!("sqlite:{}?mode=rwc", dir.path().join("rm.db").display())
    } else {
        "sqlite::memory:".to_string()
    };
    let store = ringmaster_store::open(&url).await.unwrap();
    let waves = WaveSpec::from_plan(&plan, &org);
    let start = waves[0].starts_at;
    let sim = Arc::new(Simulator::new(&org, SimConfig::default()));
    let engine = Engine::start(store.clone(), sim, "api", plan_text, waves, start)
        .await
        .unwrap();
    engine.tick(start).await.unwrap();
    let mut tokens = Vec::new();
    for role in [
        Role::Viewer,
        Role::Reporter,
        Role::HelpDesk,
        Role::Operator,
        Role::Admin,
    ] {
        let t = store
            .create_token(role, &format!("{} token", role.as_str()), start)
            .await
            .unwrap();
        tokens.push((role, t));
    }
    // Rows follow the device's groups, not the export's order: find it by name.
    let hostile = (0..org.devices.rows)
        .find(|&d| {
            org.device(ringmaster_core::model::DeviceAttr::Name, d)
                .is_some_and(|n| n.starts_with(HOSTILE_DEVICE))
        })
        .expect("the device with the hostile name is imported");
    let _ = FIRST_DEVICE.set(org.device_id(hostile).unwrap().to_string());
    let now = Arc::new(Mutex::new(start));
    let clock = now.clone();
    let messages =
        ringmaster_plan::comms::render(&plan, &Default::default(), Some("rollout@example.com"))
            .unwrap();
    let state = AppState {
        link_key: ringmaster_server::link_key(store.as_ref(), "api")
            .await
            .unwrap(),
        store,
        engine: Arc::new(engine),
        rollout: "api".into(),
        clock: Arc::new(move || *clock.lock().unwrap()),
        ingest_per_minute: 600,
        limiter: Default::default(),
        views: ringmaster_server::Views::new(View::new(plan, messages, org, res)),
        channels: Arc::new(channels),
        counters: Default::default(),
    };
    Fixture {
        state,
        tokens,
        now,
        _dir: dir,
    }
}

/// A route's path with its parameters filled in (the device: the first,
/// whose name is hostile).
pub fn concrete(path: &str) -> String {
    path.replace("alerts/{action}", "alerts/acknowledge")
        .replace("{wave}", "1")
        .replace("{action}", "approve")
        .replace("{n}", "1")
        .replace("{file}", "app.css")
        .replace("{key}", "00000000000000000000000000000000")
        .replace(
            "{device}",
            FIRST_DEVICE.get().map(String::as_str).unwrap_or("none"),
        )
}

pub fn request(method: &str, path: &str, token: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let path = concrete(path);
    let mut r = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::from(body)).unwrap()
}

pub async fn call(f: &Fixture, req: Request<Body>) -> (StatusCode, String) {
    let resp = app(f.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A dashboard session for a role: the cookie header and the form key.
pub async fn session(f: &Fixture, role: Role) -> (String, String) {
    let (id, s) = f
        .state
        .store
        .create_session(f.token(role), 1, jiff::Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    (format!("rm_session={id}"), s.csrf)
}

/// A browser's request: the cookie, and a form body when posting.
pub fn page(method: &str, path: &str, cookie: Option<&str>, form: &str) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(concrete(path));
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    if method == "POST" {
        r = r.header("content-type", "application/x-www-form-urlencoded");
    }
    r.body(Body::from(form.to_string())).unwrap()
}

/// Status, headers and body of an answer.
pub async fn fetch(f: &Fixture, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = app(f.state.clone()).oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Status, the access the route's guard checked (None: no route matched), body.
pub async fn served(
    f: &Fixture,
    req: Request<Body>,
) -> (StatusCode, Option<ringmaster_server::Checked>, String) {
    let resp = app(f.state.clone()).oneshot(req).await.unwrap();
    let checked = resp
        .extensions()
        .get::<ringmaster_server::Checked>()
        .copied();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, checked, String::from_utf8_lossy(&body).into_owned())
}
