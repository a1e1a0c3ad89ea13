//! The API through `Router::oneshot`: every route refuses without a token,
//! the role matrix holds, oversize bodies get 413, actions and ingestion work.

use axum::http::StatusCode;
mod common;

use ringmaster_plan::report::thousands;

use common::{call, fixture, request};
use ringmaster_server::{app, routes};
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
    for r in routes().iter().filter(|r| r.is_api()) {
        let op = &doc["paths"][&r.path][r.method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} missing", r.method, r.path);
        // Each answer is described with its schema, each body too.
        assert!(
            op["responses"]["200"]["content"].is_object(),
            "{} {}: no answer schema",
            r.method,
            r.path
        );
        if r.method == "POST" && r.path != "/api/waves/{wave}/{action}" {
            assert!(op["requestBody"].is_object(), "{}: no body schema", r.path);
        }
        if r.access != ringmaster_server::Access::Open {
            assert!(op["responses"]["401"].is_object(), "{}", r.path);
        } else {
            assert_eq!(op["security"], serde_json::json!([{}]), "{}", r.path);
        }
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
        Some(f.state.view().plan.scope.devices),
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

#[tokio::test]
async fn a_regression_raises_an_alert_that_operators_acknowledge_and_resolve() {
    let (route, _) =
        ringmaster_server::Channels::parse_route("operators=https://hooks.example.com/ops")
            .unwrap();
    let (desk, _) =
        ringmaster_server::Channels::parse_route("help_desk=https://hooks.example.com/desk")
            .unwrap();
    let f = common::fixture_with(ringmaster_server::Channels {
        routes: vec![
            (
                route,
                ringmaster_server::notify::Target::Webhook("https://hooks.example.com/ops".into()),
            ),
            (
                desk,
                ringmaster_server::notify::Target::Webhook("https://hooks.example.com/desk".into()),
            ),
        ],
        public_url: "https://rm.example.com".into(),
        ..Default::default()
    })
    .await;
    let op = f.token(Role::Operator).to_string();
    call(
        &f,
        request("POST", "/api/waves/1/approve", Some(&op), Vec::new()),
    )
    .await;
    f.run_hours(30).await;
    let mut watcher = ringmaster_server::watch::Watcher::new("api");
    let first = watcher.run(&f.state).await.unwrap();
    // The fixture's plan leaves a LAPS conflict unaccepted: that is all
    // the first check raises.
    assert!(
        !first.is_empty()
            && first.iter().all(|c| matches!(c, ringmaster_core::alerts::Change::Raised(a) if a.key.starts_with("conflict:"))),
        "{first:?}"
    );
    // A pilot device that succeeded now reports an error.
    let done = f
        .state
        .store
        .latest_states("api", None)
        .await
        .unwrap()
        .0
        .into_iter()
        .find(|l| l.state == ringmaster_store::DeviceState::Succeeded)
        .unwrap();
    f.run_hours(4).await;
    let now = (f.state.clock)();
    f.state
        .store
        .ingest_status(
            "api",
            &[ringmaster_store::StatusReport {
                device: done.device.clone(),
                policy: done.policy.clone(),
                state: ringmaster_store::DeviceState::Error,
                reported_at: now,
                wave: Some(0),
            }],
        )
        .await
        .unwrap();
    let changes = watcher.run(&f.state).await.unwrap();
    assert!(
        matches!(&changes[..], [ringmaster_core::alerts::Change::Raised(a)] if a.key == "regressed"),
        "{changes:?}"
    );
    let (status, body) = call(
        &f,
        request(
            "GET",
            "/api/alerts",
            Some(f.token(Role::Viewer)),
            Vec::new(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\"key\":\"regressed\""), "{body}");
    let ack = br#"{"key": "regressed", "note": "looking into it"}"#.to_vec();
    let (status, _) = call(
        &f,
        request(
            "POST",
            "/api/alerts/acknowledge",
            Some(f.token(Role::Viewer)),
            ack.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "viewers may not");
    let (status, body) = call(
        &f,
        request("POST", "/api/alerts/acknowledge", Some(&op), ack),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(
        &f,
        request(
            "POST",
            "/api/alerts/acknowledge",
            Some(&op),
            b"not json".to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &f,
        request(
            "POST",
            "/api/alerts/acknowledge",
            Some(&op),
            br#"{"key": "nothing"}"#.to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Operators hear of it once, grouped by the check that raised it, and
    // in the day's digest.
    let history = f.state.store.history("api").await.unwrap();
    let alerts = f.state.store.alerts("api", false).await.unwrap();
    let audit = f.state.store.audit_log("api").await.unwrap();
    let msgs =
        ringmaster_server::notify::wanted_run_state(&f.state, &history, &alerts, &audit, now);
    let raised: Vec<_> = msgs
        .iter()
        .filter(|m| m.key.starts_with("alerts:"))
        .collect();
    assert_eq!(raised.len(), 2, "one message per check that raised");
    assert!(
        raised[1].body.contains("had succeeded now report an error"),
        "{}",
        raised[1].body
    );
    let digest = msgs.iter().find(|m| m.key.starts_with("digest:")).unwrap();
    assert!(
        digest.body.contains("acknowledged by operator token"),
        "{}",
        digest.body
    );
    assert_eq!(digest.audience, "operators");
    // The help desk is told when the pilot started being rolled out? No:
    // only changes (pauses, rollbacks, new plan or schedule) reach it here.
    assert!(
        msgs.iter()
            .filter(|m| m.audience == "help_desk")
            .all(|m| m.key.starts_with("change:"))
    );
    let (status, body) = call(
        &f,
        request(
            "POST",
            "/api/alerts/resolve",
            Some(&op),
            br#"{"key": "regressed", "note": "device reimaged"}"#.to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, log) = call(&f, request("GET", "/api/audit", Some(&op), Vec::new())).await;
    for line in [
        "alert raised",
        "alert acknowledged",
        "looking into it",
        "alert resolved",
        "device reimaged",
    ] {
        assert!(log.contains(line), "{line}: {log}");
    }
    let (_, body) = call(&f, request("GET", "/api/alerts", Some(&op), Vec::new())).await;
    assert!(!body.contains("regressed"), "{body}");
}

/// An expired or revoked token is refused with 401 saying which.
#[tokio::test]
async fn expired_and_revoked_tokens_are_refused_saying_why() {
    let f = fixture().await;
    let store = &f.state.store;
    let made = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48);
    let expired = store
        .create_token_until(
            Role::Viewer,
            "old job",
            made,
            Some(made + jiff::SignedDuration::from_hours(24)),
            "test",
        )
        .await
        .unwrap();
    let (status, body) = call(&f, request("GET", "/api/waves", Some(&expired), vec![])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("the token expired at"), "{body}");

    let kept = store
        .create_token_until(Role::Viewer, "dash", made, None, "test")
        .await
        .unwrap();
    let (status, _) = call(&f, request("GET", "/api/waves", Some(&kept), vec![])).await;
    assert_eq!(status, StatusCode::OK);
    let id = store
        .tokens()
        .await
        .unwrap()
        .iter()
        .find(|t| t.label == "dash")
        .unwrap()
        .id;
    assert!(
        store
            .revoke_token(id, "test", jiff::Timestamp::now())
            .await
            .unwrap()
    );
    let (status, body) = call(&f, request("GET", "/api/waves", Some(&kept), vec![])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("the token was revoked at"), "{body}");
}

/// Device search by a name's start, through the API and the dashboard: the
/// same total on both, a full name finds one device, limits hold.
#[tokio::test]
async fn device_search_finds_by_prefix_and_the_page_agrees() {
    let f = fixture().await;
    let viewer = f.token(Role::Viewer).to_string();
    let get = |path: String| {
        let f = &f;
        let viewer = viewer.clone();
        async move {
            let (status, body) = call(f, request("GET", &path, Some(&viewer), Vec::new())).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            serde_json::from_str::<serde_json::Value>(&body).unwrap()
        }
    };
    let all = get("/api/devices?q=nl&limit=5".into()).await;
    let total = all["total"].as_u64().unwrap();
    let listed = all["devices"].as_array().unwrap();
    assert!(total > 5 && listed.len() == 5, "{all}");
    let name = listed[0]["name"].as_str().unwrap().to_string();
    assert!(name.to_lowercase().starts_with("nl"), "{name}");
    let one = get(format!("/api/devices?q={name}")).await;
    assert_eq!(one["total"], 1, "{one}");
    assert_eq!(one["devices"][0]["name"], name.as_str());
    let none = get("/api/devices?q=zz-no-such".into()).await;
    assert_eq!(
        (
            none["total"].as_u64(),
            none["devices"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    // The dashboard's search says the same total.
    let (cookie, _) = common::session(&f, Role::Viewer).await;
    let (status, _, html) = common::fetch(
        &f,
        common::page("GET", "/ui/devices?q=nl", Some(&cookie), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("{} devices match.", thousands(total))),
        "{html}"
    );
    // A page of 100 with a link to the next; the second page is the API's.
    let (q, total) = {
        let mut found = None;
        for c in ('a'..='z').chain('0'..='9') {
            let t = get(format!("/api/devices?q={c}&limit=1")).await["total"]
                .as_u64()
                .unwrap();
            if t > 150 {
                found = Some((c, t));
                break;
            }
        }
        found.expect("a one-letter prefix matching over 150 devices")
    };
    let (_, _, html) = common::fetch(
        &f,
        common::page("GET", &format!("/ui/devices?q={q}"), Some(&cookie), ""),
    )
    .await;
    let html = html.replace("&#x2f;", "/");
    let shown = |html: &str| -> Vec<String> {
        html.split("<a href=\"/ui/devices/")
            .skip(1)
            .map(|r| r[..r.find('"').unwrap()].to_string())
            .collect()
    };
    assert_eq!(shown(&html).len(), 100);
    assert!(
        html.contains(&format!("Devices 1–100 of {}", thousands(total)))
            && html.contains(&format!(
                "<a rel=\"next\" href=\"/ui/devices?q={q}&amp;offset=100\">"
            )),
        "{html}"
    );
    let (_, _, second) = common::fetch(
        &f,
        common::page(
            "GET",
            &format!("/ui/devices?q={q}&offset=100"),
            Some(&cookie),
            "",
        ),
    )
    .await;
    let second = second.replace("&#x2f;", "/");
    assert!(
        second.contains(&format!("<a rel=\"prev\" href=\"/ui/devices?q={q}\">")),
        "{second}"
    );
    let api = get(format!("/api/devices?q={q}&offset=100&limit=100")).await;
    let keys: Vec<String> = api["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shown(&second), keys);
}

#[tokio::test]
async fn held_strata_show_on_the_wave_and_an_operator_releases_them() {
    let f = fixture().await;
    let key = ringmaster_store::WaveKey {
        rollout: "api".into(),
        version: f.state.engine.version(),
        idx: 1,
    };
    let at: jiff::Timestamp = "2027-01-20T08:00:00Z".parse().unwrap();
    let hold = ringmaster_store::HeldStratum {
        key,
        stratum: "model <b>Book</b>".into(),
        devices: [3u32, 4, 5].into_iter().collect(),
        evidence: "error rate 15 % <script>x</script> in model <b>Book</b>: fail".into(),
        rollback: true,
        held_at: at,
        removed_at: None,
        released_at: None,
        released_by: None,
    };
    assert!(f.state.store.hold_stratum(&hold).await.unwrap());
    let viewer = f.token(Role::Viewer);
    let (status, body) = call(&f, request("GET", "/api/waves/2", Some(viewer), Vec::new())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let held = &v["held_strata"];
    assert_eq!(held.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(held[0]["stratum"], "model <b>Book</b>");
    assert_eq!(held[0]["devices"], 3);
    assert_eq!(held[0]["how"], "removed");
    assert!(held[0]["released_at"].is_null());
    // Wave 1 holds nothing.
    let (_, body) = call(&f, request("GET", "/api/waves/1", Some(viewer), Vec::new())).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["held_strata"], serde_json::json!([]));

    // The wave page shows it, escaped.
    let (cookie, _) = common::session(&f, Role::Viewer).await;
    let (_, _, page) =
        common::fetch(&f, common::page("GET", "/ui/waves/2", Some(&cookie), "")).await;
    assert!(page.contains("id=\"held-strata\""), "{page}");
    assert!(
        page.contains("&lt;script&gt;x&lt;&#x2f;script&gt;")
            || page.contains("&lt;script&gt;x&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>x"));

    let body = br#"{"stratum": "model <B>book</b>"}"#.to_vec();
    let (status, _) = call(
        &f,
        request(
            "POST",
            "/api/waves/2/strata/release",
            Some(viewer),
            body.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let op = f.token(Role::Operator);
    let (status, answer) = call(
        &f,
        request(
            "POST",
            "/api/waves/2/strata/release",
            Some(op),
            body.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer.contains("released by operator token"), "{answer}");
    let (status, answer) = call(
        &f,
        request("POST", "/api/waves/2/strata/release", Some(op), body),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (status, _) = call(
        &f,
        request(
            "POST",
            "/api/waves/2/strata/release",
            Some(op),
            b"model".to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, body) = call(&f, request("GET", "/api/waves/2", Some(viewer), Vec::new())).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["held_strata"][0]["released_by"], "operator token", "{v}");
    let (_, log) = call(&f, request("GET", "/api/audit", Some(op), Vec::new())).await;
    assert!(log.contains("wave 2: model <b>Book</b> held"), "{log}");
    assert!(log.contains("wave 2: model <b>Book</b> released"), "{log}");
}
