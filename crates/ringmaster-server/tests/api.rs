//! The API through `Router::oneshot`: every route refuses without a token,
//! the role matrix holds, oversize bodies get 413, actions and ingestion work.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ringmaster_engine::connector::simulator::{SimConfig, Simulator};
use ringmaster_engine::engine::{Engine, WaveSpec};
use ringmaster_server::{Access, AppState, ROUTES, allowed, app};
use ringmaster_store::Role;
use std::sync::Arc;
use tower::ServiceExt;

const PLAN: &str = r#"
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
approval = true
  [phases.pilot]
  min_devices = 30

[[phases]]
kind = "enterprise"
  [[phases.waves]]
  rest = true
"#;

struct Fixture {
    state: AppState,
    tokens: Vec<(Role, String)>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    ringmaster_gen::generate(
        &dir.path().join("org"),
        &ringmaster_gen::Options::new(3000, 7),
    )
    .unwrap();
    ringmaster_gen::generate_proposed(&dir.path().join("new")).unwrap();
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
    let spec = ringmaster_plan::parse(PLAN).unwrap();
    let plan = ringmaster_plan::planner::build(
        &spec,
        ringmaster_plan::planner::Inputs {
            org: &org,
            res: &mut res,
            proposed: &proposed,
        },
    )
    .unwrap();
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let waves = WaveSpec::from_plan(&plan);
    let start = waves[0].starts_at;
    let sim = Arc::new(Simulator::new(&org, SimConfig::default()));
    let engine = Engine::start(store.clone(), sim, "api", PLAN, waves, start)
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
    let state = AppState {
        store,
        engine: Arc::new(engine),
        rollout: "api".into(),
        clock: Arc::new(move || start),
        ingest_per_minute: 600,
        limiter: Default::default(),
    };
    Fixture {
        state,
        tokens,
        _dir: dir,
    }
}

fn request(method: &str, path: &str, token: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let path = path.replace("{wave}", "1").replace("{action}", "approve");
    let mut r = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::from(body)).unwrap()
}

async fn call(f: &Fixture, req: Request<Body>) -> (StatusCode, String) {
    let resp = app(f.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn no_route_answers_without_a_token_and_roles_are_enforced() {
    let f = fixture().await;
    for (method, path, access) in ROUTES {
        let (status, _) = call(&f, request(method, path, None, Vec::new())).await;
        if *access == Access::Open {
            assert_eq!(status, StatusCode::OK, "{method} {path}");
            continue;
        }
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token"
        );
        let (status, _) = call(
            &f,
            request(method, path, Some("rm_not_a_token"), Vec::new()),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a bad token"
        );
        for (role, token) in &f.tokens {
            // Actions are tried on a fresh state so one role's approval does not hide another's.
            if *access == Access::Operate {
                let g = fixture().await;
                let token = &g.tokens.iter().find(|(r, _)| r == role).unwrap().1;
                let (status, body) = call(&g, request(method, path, Some(token), Vec::new())).await;
                let want = allowed(*role, *access);
                assert_eq!(
                    status == StatusCode::FORBIDDEN,
                    !want,
                    "{method} {path} as {role:?}: {status} {body}"
                );
                continue;
            }
            let (status, body) = call(&f, request(method, path, Some(token), b"[]".to_vec())).await;
            assert_eq!(
                status == StatusCode::FORBIDDEN,
                !allowed(*role, *access),
                "{method} {path} as {role:?}: {status} {body}"
            );
        }
    }
}

#[tokio::test]
async fn an_operator_approves_a_wave_and_the_audit_log_says_who() {
    let f = fixture().await;
    let op = &f
        .tokens
        .iter()
        .find(|(r, _)| *r == Role::Operator)
        .unwrap()
        .1;
    let (status, body) = call(&f, request("GET", "/api/waves", Some(op), Vec::new())).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["waves"][0]["state"]["state"], "awaiting_approval", "{v}");
    let (status, body) = call(
        &f,
        request("POST", "/api/waves/1/approve", Some(op), Vec::new()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("awaiting approval → applying"), "{body}");
    let (status, body) = call(
        &f,
        request("POST", "/api/waves/1/approve", Some(op), Vec::new()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a second approval is refused: {body}"
    );
    let (_, log) = call(&f, request("GET", "/api/audit", Some(op), Vec::new())).await;
    assert!(log.contains("operator token"), "{log}");
    let (status, _) = call(
        &f,
        request("POST", "/api/waves/1/explode", Some(op), Vec::new()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ingestion_keeps_good_records_and_oversize_bodies_are_refused() {
    let f = fixture().await;
    let reporter = &f
        .tokens
        .iter()
        .find(|(r, _)| *r == Role::Reporter)
        .unwrap()
        .1;
    let body = br#"[{"deviceId":"d1","policyId":"p","status":"succeeded","reportedAt":"2027-01-18T10:00:00Z"},{"deviceId":"d2","policyId":"p","status":"melted","reportedAt":"2027-01-18T10:00:00Z"}]"#;
    let (status, resp) = call(
        &f,
        request("POST", "/api/ingest/status", Some(reporter), body.to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
    assert_eq!(v["inserted"], 1);
    assert!(
        v["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("unknown state `melted`")
    );
    let (_, again) = call(
        &f,
        request("POST", "/api/ingest/status", Some(reporter), body.to_vec()),
    )
    .await;
    assert!(again.contains("\"duplicates\":1"), "{again}");
    let huge = vec![b' '; ringmaster_server::MAX_BODY + 1];
    let (status, _) = call(
        &f,
        request("POST", "/api/ingest/status", Some(reporter), huge),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn openapi_lists_every_route_and_metrics_speak_prometheus() {
    let f = fixture().await;
    let viewer = &f.tokens.iter().find(|(r, _)| *r == Role::Viewer).unwrap().1;
    let (status, doc) = call(
        &f,
        request("GET", "/api/openapi.json", Some(viewer), Vec::new()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    for (method, path, _) in ROUTES {
        assert!(
            doc["paths"][path][method.to_ascii_lowercase()].is_object(),
            "{method} {path} missing"
        );
    }
    let (status, m) = call(&f, request("GET", "/metrics", Some(viewer), Vec::new())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(m.contains("ringmaster_wave_state{wave=\"1\",name=\"Pilot (isolated)\",state=\"awaiting approval\"} 1"), "{m}");
}

#[tokio::test]
async fn ingestion_is_rate_limited_per_token() {
    let mut f = fixture().await;
    f.state.ingest_per_minute = 2;
    let reporter = f
        .tokens
        .iter()
        .find(|(r, _)| *r == Role::Reporter)
        .unwrap()
        .1
        .clone();
    let admin = f
        .tokens
        .iter()
        .find(|(r, _)| *r == Role::Admin)
        .unwrap()
        .1
        .clone();
    for _ in 0..2 {
        let (status, _) = call(
            &f,
            request(
                "POST",
                "/api/ingest/status",
                Some(&reporter),
                b"[]".to_vec(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let resp = app(f.state.clone())
        .oneshot(request(
            "POST",
            "/api/ingest/status",
            Some(&reporter),
            b"[]".to_vec(),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_some());
    // Another token has its own allowance.
    let (status, _) = call(
        &f,
        request("POST", "/api/ingest/status", Some(&admin), b"[]".to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
