//! The security suite: every route of the router is walked, and each
//! answer says which row of the route table's guards it passed. None answers
//! without a token or session (health, sign-in, static files and keyed
//! feedback links aside); each role gets exactly what the matrix allows;
//! forms without the session's key are refused; oversize bodies get 413;
//! hostile names in policies, groups and devices are shown as text.

mod common;

use axum::http::StatusCode;
use common::{
    HOSTILE_DEVICE, HOSTILE_GROUP, HOSTILE_POLICY, call, fetch, fixture, page, request, served,
    session,
};
use ringmaster_server::{Access, Checked, Credential, allowed, routes};
use ringmaster_store::Role;

const ROLES: [Role; 5] = [
    Role::Viewer,
    Role::Reporter,
    Role::HelpDesk,
    Role::Operator,
    Role::Admin,
];

#[tokio::test]
async fn the_router_serves_the_table_and_nothing_else() {
    let f = fixture().await;
    let table = routes();
    let mut seen = std::collections::BTreeSet::new();
    for r in &table {
        assert!(
            seen.insert((r.method.to_string(), r.path.clone())),
            "{} {} twice",
            r.method,
            r.path
        );
        // Whatever the answer, it came through this row's guard.
        let (_, checked, _) = served(&f, page(r.method.as_str(), &r.path, None, "")).await;
        assert_eq!(checked, Some(Checked(r.access)), "{} {}", r.method, r.path);
    }
    // A path outside the table is not served, and no guard saw it.
    for (method, path) in [
        ("GET", "/api/secret"),
        ("GET", "/ui/secret"),
        ("POST", "/api/plan"),
    ] {
        let (status, checked, _) = served(&f, page(method, path, None, "")).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status}"
        );
        assert_eq!(checked, None, "{method} {path}");
    }
    // The OpenAPI document lists exactly the table's API rows.
    let doc = ringmaster_server::openapi();
    let mut documented = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented += 1;
            assert!(
                table.iter().any(|r| &r.path == path
                    && r.method.as_str().eq_ignore_ascii_case(method)
                    && r.is_api()),
                "{method} {path} is documented but not in the table"
            );
        }
    }
    assert_eq!(documented, table.iter().filter(|r| r.is_api()).count());
}

#[tokio::test]
async fn no_route_answers_without_a_token_and_roles_are_enforced() {
    for r in routes() {
        // A fixture per route: the failed attempts each route makes on
        // purpose would otherwise add up to the failure throttle's burst.
        let f = fixture().await;
        let (method, path, access) = (r.method.as_str(), r.path.as_str(), r.access);
        match r.credential() {
            Credential::None => {
                let (status, _, body) = fetch(&f, page(method, path, None, "")).await;
                assert!(
                    !status.is_server_error(),
                    "{method} {path} without a token: {status} {body}"
                );
                if path.starts_with("/feedback") {
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "a feedback link with a wrong key"
                    );
                }
            }
            Credential::Session => {
                // The dashboard sends strangers to the sign-in page, with nothing else.
                for cookie in [None, Some("rm_session=forged")] {
                    let (status, headers, body) = fetch(&f, page(method, path, cookie, "")).await;
                    assert_eq!(status, StatusCode::SEE_OTHER, "{method} {path} {cookie:?}");
                    assert!(
                        headers["location"]
                            .to_str()
                            .unwrap()
                            .starts_with("/login?next="),
                        "{method} {path}"
                    );
                    assert!(body.is_empty(), "{method} {path}: {body}");
                }
                // An API token is not a session.
                let (status, _, _) = fetch(
                    &f,
                    request(method, path, Some(f.token(Role::Admin)), Vec::new()),
                )
                .await;
                assert_eq!(
                    status,
                    StatusCode::SEE_OTHER,
                    "{method} {path} with a token"
                );
                for role in ROLES {
                    // Actions run on a fresh rollout so one role's approval does not hide another's.
                    let g = if method == "POST" {
                        fixture().await
                    } else {
                        fixture_ref(&f)
                    };
                    let (cookie, csrf) = session(&g, role).await;
                    let form = format!("csrf={csrf}");
                    let (status, _, body) =
                        fetch(&g, page(method, path, Some(&cookie), &form)).await;
                    assert_eq!(
                        status == StatusCode::FORBIDDEN,
                        !allowed(role, access),
                        "{method} {path} as {role:?}: {status} {body}"
                    );
                    if allowed(role, access) {
                        assert!(
                            status.is_success()
                                || status.is_redirection()
                                || status == StatusCode::CONFLICT,
                            "{method} {path} as {role:?}: {status} {body}"
                        );
                    }
                }
            }
            Credential::Token => {
                assert_eq!(
                    call(&f, request(method, path, None, Vec::new())).await.0,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} without a token"
                );
                assert_eq!(
                    call(
                        &f,
                        request(method, path, Some("rm_not_a_token"), Vec::new())
                    )
                    .await
                    .0,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} with a bad token"
                );
                // A dashboard cookie never authorizes an API call.
                let (cookie, _) = session(&f, Role::Admin).await;
                assert_eq!(
                    fetch(&f, page(method, path, Some(&cookie), "")).await.0,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} with a session cookie"
                );
                for role in ROLES {
                    let g = if access == Access::Operate {
                        fixture().await
                    } else {
                        fixture_ref(&f)
                    };
                    let (status, body) = call(
                        &g,
                        request(method, path, Some(g.token(role)), b"[]".to_vec()),
                    )
                    .await;
                    assert_eq!(
                        status == StatusCode::FORBIDDEN,
                        !allowed(role, access),
                        "{method} {path} as {role:?}: {status} {body}"
                    );
                }
            }
        }
    }
}

/// The same fixture again (a cheap handle: tests that read share one).
fn fixture_ref(f: &common::Fixture) -> common::Fixture {
    common::Fixture {
        state: f.state.clone(),
        tokens: f.tokens.clone(),
        now: f.now.clone(),
        _dir: tempfile::tempdir().unwrap(),
    }
}

#[tokio::test]
async fn forms_without_the_session_key_are_refused() {
    let f = fixture().await;
    let (cookie, csrf) = session(&f, Role::Operator).await;
    for form in [
        "",
        "csrf=",
        "csrf=0123456789abcdef",
        &format!("csrf={csrf}x"),
    ] {
        let (status, _, body) =
            fetch(&f, page("POST", "/ui/waves/1/approve", Some(&cookie), form)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form}: {body}");
    }
    // Another session's key does not fit this one.
    let (_, other) = session(&f, Role::Operator).await;
    let (status, _, _) = fetch(
        &f,
        page(
            "POST",
            "/ui/waves/1/approve",
            Some(&cookie),
            &format!("csrf={other}"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let rows = f.state.engine.rows().await.unwrap();
    assert_eq!(
        rows[0].state.name(),
        "awaiting approval",
        "nothing was done"
    );
    // Sign-in without the form's cookie (a form posted from another site).
    let token = f.token(Role::Admin);
    let (status, headers, _) = fetch(
        &f,
        page("POST", "/login", None, &format!("token={token}&csrf=abc")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get("set-cookie").is_none());
    // Sign-out needs the key too.
    let (status, _, _) = fetch(&f, page("POST", "/ui/logout", Some(&cookie), "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn oversize_bodies_get_413() {
    let f = fixture().await;
    let huge = vec![b'a'; ringmaster_server::MAX_BODY + 1];
    for path in [
        "/api/ingest/status",
        "/api/ingest/tickets",
        "/api/ingest/feedback",
    ] {
        let (status, _) = call(
            &f,
            request("POST", path, Some(f.token(Role::Admin)), huge.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    let form = "a".repeat(ringmaster_server::MAX_FORM + 1);
    let (cookie, _) = session(&f, Role::Admin).await;
    for path in [
        "/login",
        "/ui/logout",
        "/ui/waves/1/approve",
        "/feedback/1/x",
    ] {
        let (status, _, _) = fetch(&f, page("POST", path, Some(&cookie), &form)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
}

#[tokio::test]
async fn hostile_names_are_shown_as_text() {
    let f = fixture().await;
    let (cookie, _) = session(&f, Role::Admin).await;
    let device = common::FIRST_DEVICE.get().unwrap().clone();
    let mut shown = String::new();
    let mut pages = vec![
        "/ui".to_string(),
        "/ui/plan".into(),
        "/ui/pilot".into(),
        "/ui/conflicts".into(),
        "/ui/helpdesk".into(),
        "/ui/audit".into(),
        format!("/ui/devices/{device}"),
        "/ui/devices?q=script".into(),
        "/ui/waves/1".into(),
        "/ui/runstate".into(),
    ];
    pages.extend(
        (1..=f.state.view().plan.conflicts.findings.len().min(20))
            .map(|n| format!("/ui/conflicts/{n}")),
    );
    for p in &pages {
        let (status, headers, body) = fetch(&f, page("GET", p, Some(&cookie), "")).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{p}"
        );
        for bad in [HOSTILE_DEVICE, HOSTILE_GROUP, HOSTILE_POLICY] {
            assert!(!body.contains(bad), "{p} shows {bad} as markup");
        }
        assert!(!body.contains("<script>"), "{p}");
        shown.push_str(&body);
    }
    // They are there, escaped: the pages did show them.
    assert!(
        shown.contains("&lt;script&gt;alert(&#x27;device&#x27;)&lt;&#x2f;script&gt;"),
        "device name"
    );
    assert!(
        shown.contains("&lt;img src=x onerror=alert(&#x27;group&#x27;)&gt;"),
        "group name"
    );
    assert!(
        shown.contains("&lt;script&gt;alert(&#x27;policy&#x27;)"),
        "policy name"
    );
}
