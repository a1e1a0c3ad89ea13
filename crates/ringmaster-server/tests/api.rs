//! The API through `Router::oneshot`: every route refuses without a token,
//! the role matrix holds, oversize bodies get 413, actions and ingestion work.

use axum::http::StatusCode;
mod common;

use common::{call, fixture, request};
use ringmaster_server::{ROUTES, app};
use ringmaster_store::Role;
use tower::ServiceExt;

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
    for (method, path, _) in ROUTES.iter().filter(|r| ringmaster_server::is_api(r.1)) {
        assert!(
            doc["paths"][path][method.to_ascii_lowercase()].is_object(),
            "{method} {path} missing"
        );
    }
    let (status, m) = call(&f, request("GET", "/metrics", Some(viewer), Vec::new())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(m.contains("ringmaster_wave_state{wave=\"1\",name=\"Pilot (isolated)\",state=\"awaiting approval\"} 1"), "{m}");
    assert!(
        m.contains("ringmaster_ingested_records_total{kind=\"status\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("ringmaster_notifications{state=\"pending\"} 0"),
        "{m}"
    );
    // Every sample line is `name{labels} number`.
    for line in m.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
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

#[tokio::test]
async fn the_run_state_counts_every_device_in_scope() {
    let f = fixture().await;
    let (status, body) = call(
        &f,
        request(
            "GET",
            "/api/runstate",
            Some(f.token(Role::Viewer)),
            Vec::new(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["devices"].as_u64(),
        Some(f.state.view.plan.scope.devices),
        "{v}"
    );
    // Nothing has reported yet: every device is unreported, nothing drifted.
    assert_eq!(v["unreported"], v["devices"]);
    assert_eq!(v["drifted"], false);
    assert_eq!(v["service_levels"].as_array().unwrap().len(), 3);
}

#[test]
fn the_committed_openapi_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let now = serde_json::to_string_pretty(&ringmaster_server::openapi()).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == now,
        "docs/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p ringmaster-server openapi"
    );
}
