//! Two-person approvals over the API and the dashboard: the requester is
//! refused (403), a first approver is kept (202) and told what is missing,
//! the same person twice is a conflict (409), and the second approver
//! opens the wave; the wave's answer and page name everyone.

use axum::http::StatusCode;
mod common;

use common::{PLAN, call, fetch, fixture_plan, page, request};
use ringmaster_store::Role;

#[tokio::test]
async fn a_wave_opens_after_two_approvers_other_than_the_requester() {
    let plan = PLAN.replacen("approval = true\n", "approvals = 2\n", 1)
        + "\n[approvals]\ndistinct = true\n";
    let f = fixture_plan(&plan).await;
    let now = *f.now.lock().unwrap();
    let store = &f.state.store;
    let mut tokens = std::collections::HashMap::new();
    for who in ["alice", "bob", "carol"] {
        let t = store.create_token(Role::Operator, who, now).await.unwrap();
        tokens.insert(who, t);
    }
    f.state.engine.request("alice", now).await.unwrap();
    let approve = |who: &str| {
        request(
            "POST",
            "/api/waves/1/approve",
            Some(&tokens[who]),
            Vec::new(),
        )
    };

    let (status, body) = call(&f, approve("alice")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("alice requested it and cannot approve it; 0 of 2 approvals; alice requested it, 2 different approvers are needed"),
        "{body}"
    );
    let (status, body) = call(&f, approve("bob")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(
        body.contains("still awaiting approval: 1 of 2 approvals; alice requested it, a different approver is needed"),
        "{body}"
    );
    let (status, body) = call(&f, approve("bob")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("bob approved it already"), "{body}");

    let viewer = f.token(Role::Viewer);
    let (status, body) = call(&f, request("GET", "/api/waves/1", Some(viewer), Vec::new())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"]["state"], "awaiting_approval", "{v}");
    let a = &v["approvals"];
    assert_eq!(a["requester"], "alice");
    assert_eq!(
        (a["required"].as_u64(), a["counted"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(a["distinct"], true);
    assert_eq!(a["approvers"][0]["name"], "bob");
    assert_eq!(
        a["summary"],
        "1 of 2 approvals; alice requested it, a different approver is needed"
    );

    // The second approver uses the dashboard's form.
    let (id, session) = store
        .create_session(&tokens["carol"], 1, now)
        .await
        .unwrap()
        .unwrap();
    let cookie = format!("rm_session={id}");
    let (status, headers, body) = fetch(
        &f,
        page(
            "POST",
            "/ui/waves/1/approve",
            Some(&cookie),
            &format!("csrf={}", session.csrf),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers["location"], "/ui/waves/1");
    let (_, _, html) = fetch(&f, page("GET", "/ui/waves/1", Some(&cookie), "")).await;
    assert!(
        html.contains(r#"<span id="approval-summary">2 of 2 approvals</span>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"requested by <span id="requester">alice</span>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<span class="approver">bob</span>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<span class="approver">carol</span>"#),
        "{html}"
    );
    let (_, body) = call(&f, request("GET", "/api/waves/1", Some(viewer), Vec::new())).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"]["state"], "applying", "{v}");

    let admin = f.token(Role::Admin);
    let (_, log) = call(&f, request("GET", "/api/audit", Some(admin), Vec::new())).await;
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    let said: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} | {} | {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["detail"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "alice | version 1: requested | alice started the rollout: its waves are requested by alice",
        "alice | wave 1: approval refused | the requester cannot approve alone: 0 of 2 approvals; alice requested it, 2 different approvers are needed",
        "bob | wave 1: approved | 1 of 2 approvals; alice requested it, a different approver is needed; requested by alice; approved by bob",
        "carol | wave 1: approved | 2 of 2 approvals; requested by alice; approved by bob, carol",
    ] {
        assert!(
            said.iter().any(|s| s == want),
            "missing `{want}` in {said:#?}"
        );
    }
}

/// A plan without the rule keeps one approval from anyone: the operator
/// who approves is named on the wave.
#[tokio::test]
async fn one_approval_still_opens_a_plain_wave_and_is_named() {
    let f = fixture_plan(PLAN).await;
    let op = f.token(Role::Operator);
    let (status, body) = call(
        &f,
        request("POST", "/api/waves/1/approve", Some(op), Vec::new()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = call(&f, request("GET", "/api/waves/1", Some(op), Vec::new())).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["approvals"]["approvers"][0]["name"], "operator token",
        "{v}"
    );
    assert_eq!(v["approvals"]["summary"], "1 of 1 approval");
    assert!(v["approvals"]["requester"].is_null());
}
