//! The dashboard as a browser uses it (without the browser): sign in, pages
//! that agree with the API, an approval through a form, the pilot feedback
//! form, and notifications delivered by webhook and SMTP with retries.

mod common;

use axum::http::StatusCode;
use common::{call, fetch, fixture, fixture_with, page, request, session};
use ringmaster_server::Channels;
use ringmaster_server::notify::Target;
use ringmaster_store::Role;
use std::sync::{Arc, Mutex};

fn cookie_of(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
}

fn hidden(body: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let at = body.find(&key).unwrap() + key.len();
    body[at..at + body[at..].find('"').unwrap()].replace("&#x2f;", "/")
}

/// A session signed in with a token ends when the token is revoked, and
/// the revocation is in the audit log the API serves.
#[tokio::test]
async fn a_session_ends_when_its_token_is_revoked() {
    let f = fixture().await;
    let (cookie, _) = session(&f, Role::Operator).await;
    let (other, _) = session(&f, Role::Viewer).await;
    let (status, _, body) = fetch(&f, page("GET", "/ui", Some(&cookie), "")).await;
    assert_eq!(status, StatusCode::OK);
    // The rollout's time in the plan's zone (Europe/Amsterdam), as its waves are.
    let now = (f.state.clock)()
        .to_zoned(jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string();
    assert!(
        body.contains(&format!("<strong id=\"now\">{now}</strong>")),
        "{now}"
    );
    let store = &f.state.store;
    let id = store
        .tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.role == Role::Operator)
        .unwrap()
        .id;
    assert!(
        store
            .revoke_token(id, "jane", jiff::Timestamp::now())
            .await
            .unwrap()
    );
    let (status, headers, _) = fetch(&f, page("GET", "/ui", Some(&cookie), "")).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out with its token");
    assert!(headers["location"].to_str().unwrap().starts_with("/login"));
    let (status, _, _) = fetch(&f, page("GET", "/ui", Some(&other), "")).await;
    assert_eq!(status, StatusCode::OK, "other tokens' sessions stay");
    let (_, log) = call(
        &f,
        request("GET", "/api/audit", Some(f.token(Role::Admin)), Vec::new()),
    )
    .await;
    assert!(
        log.contains("token revoked")
            && log.contains("(operator token)")
            && log.contains("token created"),
        "{log}"
    );
}

#[tokio::test]
async fn sign_in_gives_a_strict_http_only_session_and_sign_out_ends_it() {
    let f = fixture().await;
    let (status, headers, body) = fetch(&f, page("GET", "/login?next=/ui/plan", None, "")).await;
    assert_eq!(status, StatusCode::OK);
    let login = cookie_of(&headers, "rm_login").unwrap();
    assert!(login.contains("HttpOnly") && login.contains("SameSite=Strict"));
    let key = hidden(&body, "csrf");
    assert_eq!(hidden(&body, "next"), "/ui/plan");
    let login_cookie = login.split(';').next().unwrap().to_string();
    // A wrong token: 401, no session.
    let (status, headers, body) = fetch(
        &f,
        page(
            "POST",
            "/login",
            Some(&login_cookie),
            &format!("token=rm_wrong&csrf={key}"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("unknown, expired or revoked"));
    assert!(cookie_of(&headers, "rm_session").is_none());
    // The right one.
    let form = format!(
        "token={}&csrf={key}&next=%2Fui%2Fplan",
        f.token(Role::Viewer)
    );
    let (status, headers, _) = fetch(&f, page("POST", "/login", Some(&login_cookie), &form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/ui/plan");
    let set = cookie_of(&headers, "rm_session").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let (status, _, body) = fetch(&f, page("GET", "/ui/plan", Some(&cookie), "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("viewer token (viewer)"),
        "who is signed in is shown"
    );
    // An open redirect is not possible through `next`.
    let (_, body) = (
        0,
        fetch(&f, page("GET", "/login?next=//evil.example.com", None, ""))
            .await
            .2,
    );
    assert_eq!(hidden(&body, "next"), "/ui");
    // Sign out.
    let csrf = hidden(
        &fetch(&f, page("GET", "/ui", Some(&cookie), "")).await.2,
        "csrf",
    );
    let (status, _, _) = fetch(
        &f,
        page("POST", "/ui/logout", Some(&cookie), &format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = fetch(&f, page("GET", "/ui", Some(&cookie), "")).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the session is gone");
    let (_, log) = call(
        &f,
        request("GET", "/api/audit", Some(f.token(Role::Admin)), Vec::new()),
    )
    .await;
    assert!(
        log.contains("sign in") && log.contains("viewer token"),
        "{log}"
    );
}

/// The figure in a table cell `data-field="…"` within the row `id`.
fn cell(body: &str, row: &str, field: &str) -> String {
    let r = body
        .find(&format!("id=\"{row}\""))
        .unwrap_or_else(|| panic!("no row {row}"));
    let key = format!("data-field=\"{field}\">");
    let at = r + body[r..].find(&key).unwrap() + key.len();
    body[at..at + body[at..].find('<').unwrap()].to_string()
}

#[tokio::test]
async fn pages_show_what_the_api_says_and_an_operator_approves_by_form() {
    let f = fixture().await;
    let (cookie, csrf) = session(&f, Role::Operator).await;
    let (_, _, body) = fetch(&f, page("GET", "/ui/waves/1", Some(&cookie), "")).await;
    assert!(
        body.contains("id=\"action-approve\""),
        "the wave awaits approval"
    );
    assert!(
        !body.contains("id=\"action-retry\""),
        "only what the state allows is offered"
    );
    let (status, headers, _) = fetch(
        &f,
        page(
            "POST",
            "/ui/waves/1/approve",
            Some(&cookie),
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/ui/waves/1");
    f.run_hours(60).await;
    let (_, api) = call(
        &f,
        request("GET", "/api/waves", Some(f.token(Role::Viewer)), Vec::new()),
    )
    .await;
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    let (_, _, body) = fetch(&f, page("GET", "/ui", Some(&cookie), "")).await;
    let mut reported = 0;
    for w in api["waves"].as_array().unwrap() {
        let row = format!("wave-{}", w["wave"]);
        for (cell_field, field) in [
            ("succeeded", "succeeded"),
            ("error", "errors"),
            ("conflict", "conflicts"),
            ("pending", "pending"),
            ("reported", "reported"),
            ("tickets", "tickets"),
            ("devices", "devices"),
        ] {
            assert_eq!(
                cell(&body, &row, cell_field),
                w["figures"][field].to_string(),
                "{row} {field}"
            );
        }
        reported += w["figures"]["reported"].as_u64().unwrap();
        assert_eq!(w["figures"]["devices"], w["devices"]);
    }
    assert!(reported > 0, "the pilot reported");
    // The wave page: the chart, gate sentences, the approval in its history.
    let (_, _, body) = fetch(&f, page("GET", "/ui/waves/1", Some(&cookie), "")).await;
    assert!(body.contains("<svg") && body.contains("device states over time"));
    let history =
        &body[body.find("<h2>History</h2>").unwrap()..body.find("<h2>Tickets</h2>").unwrap()];
    assert!(
        history.contains("operator token") && history.contains("applying"),
        "history names the approver: {history}"
    );
    let (_, api) = call(
        &f,
        request(
            "GET",
            "/api/waves/1",
            Some(f.token(Role::Viewer)),
            Vec::new(),
        ),
    )
    .await;
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    let sentence = api["evaluations"][0]["evaluation"]["sentence"]
        .as_str()
        .unwrap();
    let escaped = sentence
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    assert!(body.contains(&escaped), "gate sentence {sentence} shown");
    // The verdict in one sentence leads the page, above the rounds.
    let verdict = api["verdict"]["sentence"].as_str().unwrap();
    assert!(
        verdict.ends_with(&format!(", {} rounds", api["verdict"]["rounds"]))
            || verdict.ends_with(", 1 round"),
        "{verdict}"
    );
    let escaped = verdict
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let shown = body.find(&escaped).expect("the verdict is on the page");
    assert!(shown < body.find("<h2>Gate evaluations</h2>").unwrap());
    assert_eq!(
        cell(&body, "counts", "succeeded"),
        api["figures"]["succeeded"].to_string()
    );
    // The device page explains; the help-desk page lists what changes.
    let device = common::FIRST_DEVICE.get().unwrap();
    let (status, _, body) = fetch(
        &f,
        page("GET", &format!("/ui/devices/{device}"), Some(&cookie), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("id=\"device-summary\""));
    assert!(!body.contains(">NotTargeted<") && !body.contains(">NotApplicable<"));
    // A device of the running first wave: the rollout's policy reaches it
    // through the wave, not through the imported assignments.
    let member = f.state.engine.waves()[0].members.min().unwrap();
    let name = f
        .state
        .view()
        .org
        .device(ringmaster_core::model::DeviceAttr::Name, member)
        .unwrap()
        .to_string();
    let (status, _, body) = fetch(
        &f,
        page("GET", &format!("/ui/devices/{name}"), Some(&cookie), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Assigned by wave 1"), "{body}");
    assert!(body.contains("this rollout assigns it to the devices of wave 1"));
    let (_, _, body) = fetch(&f, page("GET", "/ui/helpdesk", Some(&cookie), "")).await;
    let change = &f.state.view().plan.changes[0].setting;
    assert!(
        body.contains(&change.replace('\'', "&#x27;").replace('/', "&#x2f;")),
        "{change}"
    );
}

#[tokio::test]
async fn pilot_users_answer_through_the_feedback_link() {
    let f = fixture().await;
    let op = f.token(Role::Operator);
    call(
        &f,
        request("POST", "/api/waves/1/approve", Some(op), Vec::new()),
    )
    .await;
    f.run_hours(2).await;
    let path = ringmaster_server::notify::feedback_path(&f.state, 1);
    let (status, _, body) = fetch(&f, page("GET", &path, None, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("How is"));
    let member = f.state.engine.waves()[0].members.min().unwrap();
    let name = f
        .state
        .view()
        .org
        .device(ringmaster_core::model::DeviceAttr::Name, member)
        .unwrap()
        .to_string();
    let outsider = f.state.engine.waves()[2].members.min().unwrap();
    let other = f.state.view().org.device_id(outsider).unwrap().to_string();
    let (status, _, body) = fetch(
        &f,
        page(
            "POST",
            &path,
            None,
            &format!("device={other}&score=4&comment=fine"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("not in this pilot wave"));
    let (status, _, body) = fetch(
        &f,
        page("POST", &path, None, &format!("device={name}&score=9")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("from 1 to 5"));
    let (status, _, body) = fetch(
        &f,
        page(
            "POST",
            &path,
            None,
            &format!(
                "device={}&score=2&comment=VPN+drops+%3Cb%3Eoften%3C%2Fb%3E",
                urlenc(&name)
            ),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Thank you"));
    let (status, _, _) = fetch(
        &f,
        page(
            "POST",
            "/feedback/1/0123456789abcdef0123456789abcdef",
            None,
            "device=x&score=3",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a forged link");
    let (_, api) = call(
        &f,
        request(
            "GET",
            "/api/waves/1",
            Some(f.token(Role::Viewer)),
            Vec::new(),
        ),
    )
    .await;
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!(api["feedback"][0]["score"], 2);
    assert_eq!(api["feedback"][0]["comment"], "VPN drops <b>often</b>");
    let (cookie, _) = session(&f, Role::HelpDesk).await;
    let (_, _, body) = fetch(&f, page("GET", "/ui/helpdesk", Some(&cookie), "")).await;
    assert!(
        body.contains("VPN drops &lt;b&gt;often&lt;&#x2f;b&gt;"),
        "a low score is a known issue"
    );
}

fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A webhook receiver that fails its first call (503), then keeps bodies.
async fn webhook() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Default::default();
    let calls = Arc::new(Mutex::new(0));
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook/{secret}",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let (keep, calls) = (keep.clone(), calls.clone());
            async move {
                let n = {
                    let mut c = calls.lock().unwrap();
                    *c += 1;
                    *c
                };
                if n == 1 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                keep.lock().unwrap().push(v);
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (format!("http://{addr}/hook/s3cr3t"), got)
}

/// Just enough of an SMTP server to take mail: keeps each message's data.
async fn smtp() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let got: Arc<Mutex<Vec<String>>> = Default::default();
    let keep = got.clone();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = l.accept().await else {
                return;
            };
            let keep = keep.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 test ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line == "." {
                            keep.lock().unwrap().push(data.take().unwrap());
                            w.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            d.push_str(&line);
                            d.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250-test\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    w.write_all(answer).await.unwrap();
                }
            });
        }
    });
    (format!("smtp://{addr}"), got)
}

#[tokio::test]
async fn phase_starts_and_alerts_are_delivered_by_webhook_and_mail_with_retries() {
    let (hook, hooked) = webhook().await;
    let (smtp_url, mailed) = smtp().await;
    let channels = Channels {
        routes: vec![
            ("operators".into(), Target::Webhook(hook.clone())),
            ("pilot_users".into(), Target::Webhook(hook.clone())),
            ("help_desk".into(), Target::Mail("desk@example.com".into())),
        ],
        smtp: Some(smtp_url),
        mail_from: "ringmaster <rollout@example.com>".into(),
        public_url: "https://ringmaster.example.com".into(),
    };
    let f = fixture_with(channels).await;
    let client = ringmaster_server::notify::client();
    // The pilot awaits approval: operators hear of it, and get the day's
    // digest; the first call fails (503) and is retried.
    assert_eq!(ringmaster_server::notify::queue(&f.state).await.unwrap(), 2);
    assert_eq!(
        ringmaster_server::notify::queue(&f.state).await.unwrap(),
        0,
        "queued once"
    );
    assert_eq!(
        ringmaster_server::notify::deliver(&f.state, &client)
            .await
            .unwrap(),
        1,
        "the digest went; the approval notice met the 503"
    );
    let out = f.state.store.outbox("api", 10).await.unwrap();
    let approval = out
        .iter()
        .find(|o| o.message.subject.contains("awaits approval"))
        .unwrap();
    assert_eq!((approval.state.as_str(), approval.attempts), ("pending", 1));
    assert_eq!(
        approval.last_error.as_deref(),
        Some("the webhook answered 503 Service Unavailable")
    );
    assert!(!approval.last_error.as_deref().unwrap().contains("s3cr3t"));
    let digest = out
        .iter()
        .find(|o| o.message.subject.contains("daily digest"))
        .unwrap();
    assert_eq!(digest.state, "sent");
    f.run_hours(1).await;
    assert_eq!(
        ringmaster_server::notify::deliver(&f.state, &client)
            .await
            .unwrap(),
        1
    );
    assert!(
        hooked
            .lock()
            .unwrap()
            .iter()
            .any(|h| h["title"].as_str().unwrap().contains("awaits approval"))
    );
    // Approval starts the pilot phase: its communications go out.
    call(
        &f,
        request(
            "POST",
            "/api/waves/1/approve",
            Some(f.token(Role::Operator)),
            Vec::new(),
        ),
    )
    .await;
    ringmaster_server::notify::run(&f.state, &client).await;
    let hooks = hooked.lock().unwrap().clone();
    let pilot = hooks
        .iter()
        .find(|h| h["audience"] == "pilot_users")
        .expect("pilot users told");
    let text = pilot["text"].as_str().unwrap();
    assert!(
        text.contains("https://ringmaster.example.com/feedback/1/"),
        "{text}"
    );
    let mails = mailed.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("To: desk@example.com"), "{}", mails[0]);
    assert!(mails[0].contains("text/html") && mails[0].contains("text/plain"));
    // The outbox page lists them for operators, with hosts only.
    let (cookie, _) = session(&f, Role::Operator).await;
    let (_, _, body) = fetch(&f, page("GET", "/ui/notifications", Some(&cookie), "")).await;
    assert!(body.contains("sent") && body.contains("webhook to 127.0.0.1"));
    assert!(
        !body.contains("s3cr3t"),
        "the webhook's secret path is never shown"
    );
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_client() {
    let mut f = fixture().await;
    // The limiter's clock stands still: the 21st guess is the 21st within a moment.
    let frozen = std::time::Instant::now();
    f.state.limiter = std::sync::Arc::new(ringmaster_server::Limiter::with_clock(
        std::sync::Arc::new(move || frozen),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ringmaster_server::serve(
        listener,
        f.state.clone(),
        std::future::pending(),
    ));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(format!("{base}/login")).send().await.unwrap();
    let cookie = cookie_of(page.headers(), "rm_login").unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let key = hidden(&page.text().await.unwrap(), "csrf");
    let mut codes = Vec::new();
    for _ in 0..21 {
        let r = client
            .post(format!("{base}/login"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token=rm_guess&csrf={key}"))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert!(codes[..20].iter().all(|&c| c == 401), "{codes:?}");
    assert_eq!(codes[20], 429, "the 21st failed guess in a row is refused");
}

/// A write waiting for the tenant's approval (Multi Admin Approval) shows
/// on the wave in the API and on its page, escaped.
#[tokio::test]
async fn a_wave_waiting_for_tenant_approval_says_since_when_and_until_when() {
    let f = fixture().await;
    let key = f.state.engine.rows().await.unwrap()[0].key.clone();
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    f.state
        .store
        .save_approval(&ringmaster_store::TenantApproval {
            key,
            seq: 1,
            pos: 0,
            request: ringmaster_store::ApprovalRequest {
                object: "<policy-1>".into(),
                id: "oar-1".into(),
                requested: at("2027-01-18T08:00:00Z"),
                expires: at("2027-01-20T08:00:00Z"),
                status: ringmaster_store::ApprovalStatus::NeedsApproval,
                reason: None,
            },
            retired: false,
        })
        .await
        .unwrap();
    let want =
        "waiting for tenant approval since 2027-01-18T08:00:00Z, expires 2027-01-20T08:00:00Z";
    let (_, api) = call(
        &f,
        request(
            "GET",
            "/api/waves/1",
            Some(f.token(Role::Viewer)),
            Vec::new(),
        ),
    )
    .await;
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert!(
        api["tenant_approval"].as_str().unwrap().starts_with(want),
        "{api}"
    );
    assert_eq!(api["approval_requests"][0]["id"], "oar-1");
    let (cookie, _) = session(&f, Role::Viewer).await;
    let (_, _, body) = fetch(&f, page("GET", "/ui/waves/1", Some(&cookie), "")).await;
    assert!(body.contains("id=\"tenant-approval\""), "{body}");
    assert!(body.contains(want));
    assert!(body.contains("&lt;policy-1&gt;") && !body.contains("<policy-1>"));
}

/// The run-state chart's title names the span its checks cover.
#[tokio::test]
async fn the_run_state_chart_says_what_it_covers() {
    let f = fixture().await;
    let (cookie, _) = session(&f, Role::Viewer).await;
    let (status, _, body) = fetch(&f, page("GET", "/ui/runstate", Some(&cookie), "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("Service levels over time: no check yet"),
        "{body}"
    );
    // Two checks three days apart: the title says three days, not thirty.
    let now = (f.state.clock)();
    let sample = r#"{"devices":10,"succeeded":8,"errors":1,"conflicts":0,"pending":1}"#;
    for back in [72, 0] {
        let at = now - jiff::SignedDuration::from_hours(back);
        f.state
            .store
            .record_runstate(&f.state.rollout, at, sample)
            .await
            .unwrap();
    }
    let (_, _, body) = fetch(&f, page("GET", "/ui/runstate", Some(&cookie), "")).await;
    assert!(!body.contains("last 30 days"));
    assert!(
        body.contains("(3.0 days of checks; the chart keeps 30)"),
        "{body}"
    );
}

/// The run state's headline weighs open alerts with the service levels: a
/// met service level never reads as all well beside a critical alert.
#[tokio::test]
async fn the_run_state_headline_counts_open_alerts() {
    let f = fixture().await;
    let (cookie, _) = session(&f, Role::Viewer).await;
    let (_, _, body) = fetch(&f, page("GET", "/ui/runstate", Some(&cookie), "")).await;
    assert!(
        body.contains("0 open alerts (0 critical)") && !body.contains("Needs attention"),
        "{body}"
    );
    let now = (f.state.clock)().as_second();
    let alert = ringmaster_core::alerts::Alert {
        key: "regressed".into(),
        kind: "regressed".into(),
        severity: ringmaster_core::alerts::Severity::Critical,
        text: "12 devices regressed".into(),
        first_seen: now,
        raised_at: Some(now),
        resolved_at: None,
        acknowledged: None,
    };
    f.state
        .store
        .save_alerts(&f.state.rollout, &[alert])
        .await
        .unwrap();
    let (_, _, body) = fetch(&f, page("GET", "/ui/runstate", Some(&cookie), "")).await;
    let at = body.find("id=\"rs-health\"").expect("a headline");
    let line = &body[at..at + body[at..].find("</p>").unwrap()];
    assert!(
        line.contains("class=\"fail\"") && line.contains("Needs attention"),
        "{line}"
    );
    assert!(line.contains("1 open alert (1 critical)"), "{line}");
}

/// A wave's tickets come a page at a time on its page and in the API, with
/// the total the figures count.
#[tokio::test]
async fn a_waves_tickets_page_with_links_and_the_api_takes_a_window() {
    let f = fixture().await;
    let at: jiff::Timestamp = "2027-01-12T08:00:00Z".parse().unwrap();
    let tickets: Vec<ringmaster_core::status::Ticket> = (0..130)
        .map(|i| ringmaster_core::status::Ticket {
            id: format!("INC{i:04}"),
            at: at + jiff::SignedDuration::from_mins(i),
            user: None,
            device: None,
            category: Some("vpn".into()),
            text: format!("ticket {i}"),
            wave: Some(0),
            control: false,
        })
        .collect();
    f.state
        .store
        .ingest_tickets(&f.state.rollout, &tickets)
        .await
        .unwrap();
    let (cookie, _) = session(&f, Role::Viewer).await;
    let (_, _, body) = fetch(&f, page("GET", "/ui/waves/1", Some(&cookie), "")).await;
    assert!(body.contains("Tickets 1–100 of 130"), "{body}");
    assert!(
        body.contains("href=\"&#x2f;ui&#x2f;waves&#x2f;1?tickets=100\">next"),
        "{body}"
    );
    // The newest first: the last one opened leads.
    assert!(body.contains("INC0129") && !body.contains("INC0029<"));
    let (_, _, body) = fetch(
        &f,
        page("GET", "/ui/waves/1?tickets=100", Some(&cookie), ""),
    )
    .await;
    assert!(body.contains("Tickets 101–130 of 130"), "{body}");
    assert!(body.contains("INC0000") && !body.contains("INC0129"));
    let (_, api) = call(
        &f,
        request(
            "GET",
            "/api/waves/1?offset=125&limit=10",
            Some(f.token(Role::Viewer)),
            Vec::new(),
        ),
    )
    .await;
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!(api["tickets"].as_array().unwrap().len(), 5, "{api}");
    assert_eq!(api["figures"]["tickets"], 130);
}

/// The overview's timeline draws what each wave did under its plan.
#[tokio::test]
async fn the_timeline_shows_plan_against_actual() {
    let f = fixture().await;
    let (cookie, _) = session(&f, Role::Viewer).await;
    let (_, _, body) = fetch(&f, page("GET", "/ui", Some(&cookie), "")).await;
    // The pilot waits for its approval from the start, and the bar says so.
    assert!(body.contains(r#"class="actual""#), "{body}");
    assert!(
        body.contains("awaiting approval for 0.0 d, so far"),
        "{body}"
    );
    call(
        &f,
        request(
            "POST",
            "/api/waves/1/approve",
            Some(f.token(Role::Operator)),
            Vec::new(),
        ),
    )
    .await;
    f.run_hours(3).await;
    let (_, _, body) = fetch(&f, page("GET", "/ui", Some(&cookie), "")).await;
    assert!(
        body.contains("awaiting approval for 0.0 d</title>"),
        "{body}"
    );
    assert!(
        body.contains("d, so far</title>") && !body.contains("awaiting approval for 0.0 d, so far")
    );
}

/// The overview's gate box says in words when a wave has no goals or no
/// data yet, rather than a bare state.
#[tokio::test]
async fn the_overview_says_when_a_wave_has_no_goals_or_no_data_yet() {
    let gate_box = |body: &str| {
        let at = body.find("Gates of the current wave").unwrap();
        body[at..at + body[at..].find("</div>\n  </div>").unwrap()].to_string()
    };
    // The fixture's pilot has no goals: before its first round and after.
    let f = fixture().await;
    let (cookie, csrf) = session(&f, Role::Operator).await;
    let (_, _, body) = fetch(&f, page("GET", "/ui", Some(&cookie), "")).await;
    assert!(
        gate_box(&body).contains("no goals: the wave is judged on bake time alone"),
        "{}",
        gate_box(&body)
    );
    fetch(
        &f,
        page(
            "POST",
            "/ui/waves/1/approve",
            Some(&cookie),
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    f.run_hours(12).await;
    let (_, _, body) = fetch(&f, page("GET", "/ui", Some(&cookie), "")).await;
    let shown = gate_box(&body);
    assert!(
        shown.contains("no goals, still baking: the wave is judged on bake time alone"),
        "{shown}"
    );
    assert!(!shown.contains("no data:"), "{shown}");
    assert!(cell_text(&body, "wave-1", "gates").contains("no goals, still baking"));
    assert!(cell_text(&body, "wave-2", "gates").contains("no goals"));
    // A wave with goals and no round yet has no data yet.
    let plan = common::PLAN.replacen(
        "  min_devices = 30\n",
        "  min_devices = 30\n  [[phases.goals]]\n  metric = \"apply_success_rate\"\n  threshold = \">= 90%\"\n  window = \"24h\"\n  min_sample = 20\n  deadline = \"5d\"\n",
        1,
    );
    let f = common::fixture_plan(&plan).await;
    let (cookie, _) = session(&f, Role::Viewer).await;
    let (_, _, body) = fetch(&f, page("GET", "/ui", Some(&cookie), "")).await;
    assert!(
        gate_box(&body).contains("no data yet: its goals are judged once it bakes"),
        "{}",
        gate_box(&body)
    );
}

/// The markup inside the cell `data-field="…"` of the row `id`.
fn cell_text(body: &str, row: &str, field: &str) -> String {
    let r = body.find(&format!("id=\"{row}\"")).unwrap();
    let key = format!("data-field=\"{field}\">");
    let at = r + body[r..].find(&key).unwrap() + key.len();
    body[at..at + body[at..].find("</td>").unwrap()].to_string()
}

/// The pilot page draws each stratum's pilot share over its population
/// share as two bars whose lengths are those shares.
#[tokio::test]
async fn pilot_shares_are_drawn_as_bars_beside_the_population() {
    let f = fixture().await;
    let (cookie, _) = session(&f, Role::Viewer).await;
    let (status, _, body) = fetch(&f, page("GET", "/ui/pilot", Some(&cookie), "")).await;
    assert_eq!(status, StatusCode::OK);
    let view = f.state.view();
    let pilot = view.plan.pilot.as_ref().expect("the fixture has a pilot");
    // Dimensions by their names in words ("OS family", not os_family).
    for d in &pilot.dimensions {
        assert!(
            body.contains(&format!("<h2>{} <span", d.label)),
            "{}",
            d.label
        );
    }
    assert!(!body.contains("os_family"));
    let strata: Vec<_> = pilot.dimensions.iter().flat_map(|d| &d.strata).collect();
    assert!(!strata.is_empty());
    assert_eq!(
        body.matches("<svg class=\"share-bars\"").count(),
        strata.len()
    );
    for s in strata {
        let bars = format!(
            "<rect class=\"pilot\" x=\"0\" y=\"0.5\" height=\"4\" width=\"{:.2}\"/><rect class=\"population\" x=\"0\" y=\"5.5\" height=\"4\" width=\"{:.2}\"/>",
            s.pilot_share * 100.0,
            s.population_share * 100.0
        );
        assert!(body.contains(&bars), "{} lacks {bars}", s.value);
    }
}

/// The audit log comes a page at a time, newest first on the page and a
/// bounded window in the API, both with the total.
#[tokio::test]
async fn the_audit_log_pages_with_links_and_the_api_takes_a_window() {
    let f = fixture().await;
    let store = &f.state.store;
    let before = store.audit_log("api").await.unwrap().len();
    let t0: jiff::Timestamp = "2027-01-05T08:00:00Z".parse().unwrap();
    for i in 0..230 {
        store
            .audit(&ringmaster_store::AuditEntry {
                at: t0 + jiff::SignedDuration::from_mins(i),
                actor: "jane".into(),
                rollout: "api".into(),
                action: format!("note {i:03}"),
                detail: String::new(),
            })
            .await
            .unwrap();
    }
    let total = store.audit_log("api").await.unwrap().len();
    assert_eq!(total, before + 230);
    let (cookie, _) = session(&f, Role::Admin).await;
    let rows = |html: &str| html.matches("<td>jane</td>").count();
    let (status, _, first) = fetch(&f, page("GET", "/ui/audit", Some(&cookie), "")).await;
    assert_eq!(status, StatusCode::OK);
    let first = first.replace("&#x2f;", "/");
    assert_eq!(first.matches("</tr>").count(), 101, "a header and 100 rows");
    assert!(first.contains("note 229") && !first.contains("note 129"));
    assert!(
        first.contains(&format!("Entries 1–100 of {total}"))
            && first.contains("<a rel=\"next\" href=\"/ui/audit?offset=100\">")
            && !first.contains("rel=\"prev\""),
        "{first}"
    );
    let (_, _, last) = fetch(&f, page("GET", "/ui/audit?offset=200", Some(&cookie), "")).await;
    let last = last.replace("&#x2f;", "/");
    assert_eq!(rows(&last), 30, "the oldest 30 notes end the log");
    assert!(
        last.contains(&format!("Entries 201–{total} of {total}"))
            && last.contains("<a rel=\"prev\" href=\"/ui/audit?offset=100\">")
            && !last.contains("rel=\"next\""),
        "{last}"
    );
    // The API: oldest first, a window, the total in a header.
    let admin = f.token(Role::Admin).to_string();
    let (status, headers, body) = fetch(
        &f,
        request(
            "GET",
            &format!("/api/audit?offset={before}&limit=5"),
            Some(&admin),
            Vec::new(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-total-count"], total.to_string().as_str());
    let got: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let actions: Vec<&str> = got.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["note 000", "note 001", "note 002", "note 003", "note 004"]
    );
    let (_, _, body) = fetch(
        &f,
        request("GET", "/api/audit?limit=100000", Some(&admin), Vec::new()),
    )
    .await;
    let got: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(got.len(), total.min(1000));
    let (_, _, body) = fetch(&f, request("GET", "/api/audit", Some(&admin), Vec::new())).await;
    let got: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(got.len(), 100, "a page by default");
}

/// On a simulated clock, the rollout's own audit entries say their times
/// are simulated; sign-ins are the service's, on the real clock, unmarked.
#[tokio::test]
async fn simulated_times_are_marked_in_the_audit_log() {
    let f = fixture().await;
    let store = &f.state.store;
    let at: jiff::Timestamp = "2027-01-12T08:00:00Z".parse().unwrap();
    store
        .audit(&ringmaster_store::AuditEntry {
            at,
            actor: "jane".into(),
            rollout: "api".into(),
            action: "wave 2 paused".into(),
            detail: String::new(),
        })
        .await
        .unwrap();
    let (cookie, _) = session(&f, Role::Admin).await;
    let row = |html: &str, action: &str| -> String {
        let at = html.find(&format!("<td>{action}</td>")).unwrap();
        let start = html[..at].rfind("<tr>").unwrap();
        html[start..at].to_string()
    };
    // A real clock: nothing is marked.
    let (_, _, html) = fetch(&f, page("GET", "/ui/audit", Some(&cookie), "")).await;
    assert!(!html.contains("(simulated)"), "{html}");
    let (_, _, wave) = fetch(&f, page("GET", "/ui/waves/1", Some(&cookie), "")).await;
    assert!(!wave.contains("simulated-note"));
    let (_, _, overview) = fetch(&f, page("GET", "/ui", Some(&cookie), "")).await;
    assert!(!overview.contains("(simulated)"));
    store
        .set_meta("api", ringmaster_store::SIMULATED_CLOCK, "true")
        .await
        .unwrap();
    // A sign-in through the form, to have one in the log.
    let admin = f.token(Role::Admin).to_string();
    let (_, headers, body) = fetch(&f, page("GET", "/login", None, "")).await;
    let login = cookie_of(&headers, "rm_login").unwrap();
    let login = login.split(';').next().unwrap().to_string();
    let form = format!("token={admin}&csrf={}", hidden(&body, "csrf"));
    let (status, _, _) = fetch(&f, page("POST", "/login", Some(&login), &form)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, html) = fetch(&f, page("GET", "/ui/audit", Some(&cookie), "")).await;
    assert!(
        row(&html, "wave 2 paused").contains("2027-01-12 09:00 CET (simulated)</td>"),
        "{}",
        row(&html, "wave 2 paused")
    );
    assert!(!row(&html, "sign in").contains("(simulated)"), "{html}");
    assert!(html.contains("id=\"clock-note\""));
    let (_, _, overview) = fetch(&f, page("GET", "/ui", Some(&cookie), "")).await;
    assert!(overview.contains("</strong> <span id=\"simulated\">(simulated)</span>"));
    let (_, _, wave) = fetch(&f, page("GET", "/ui/waves/1", Some(&cookie), "")).await;
    assert!(wave.contains("id=\"simulated-note\""), "{wave}");
    let (_, _, runstate) = fetch(&f, page("GET", "/ui/runstate", Some(&cookie), "")).await;
    assert!(runstate.contains("</strong> (simulated):"), "{runstate}");
    let (_, body) = call(
        &f,
        request("GET", "/api/audit?limit=1000", Some(&admin), Vec::new()),
    )
    .await;
    let log: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let of = |action: &str| {
        log.iter()
            .rev()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action}: {body}"))["simulated"]
            .clone()
    };
    assert_eq!(of("wave 2 paused"), true);
    assert_eq!(of("sign in"), false);
}

/// Screens speak in words: phases by their labels on the overview, and the
/// help desk's known issues count alike low scores once instead of a row each.
#[tokio::test]
async fn phases_read_as_words_and_alike_low_scores_are_one_known_issue() {
    let f = fixture().await;
    let (cookie, _) = session(&f, Role::Viewer).await;
    let viewer = f.token(Role::Viewer).to_string();
    let (_, body) = call(&f, request("GET", "/api/waves", Some(&viewer), Vec::new())).await;
    let waves: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (_, _, overview) = fetch(&f, page("GET", "/ui", Some(&cookie), "")).await;
    let mut differ = 0;
    for w in waves["waves"].as_array().unwrap() {
        let (stored, label) = (
            w["phase"].as_str().unwrap(),
            w["phase_label"].as_str().unwrap(),
        );
        assert!(overview.contains(&format!("<td>{label}</td>")), "{label}");
        if stored != label {
            differ += 1;
            assert!(
                !overview.contains(&format!("<td>{stored}</td>")),
                "{stored}"
            );
        }
    }
    assert!(
        differ > 0,
        "no phase whose stored name differs from its label"
    );
    // Five identical low scores and one other on the pilot wave.
    let at: jiff::Timestamp = "2027-01-19T10:00:00Z".parse().unwrap();
    let answer = |i: u32, score: u8, comment: &str| ringmaster_core::status::Feedback {
        id: format!("F{i}"),
        at: at + jiff::SignedDuration::from_mins(i64::from(i)),
        user: None,
        device: None,
        score,
        comment: comment.into(),
        wave: Some(0),
    };
    let mut answers: Vec<_> = (0..5).map(|i| answer(i, 2, "something broke")).collect();
    answers.push(answer(9, 1, "cannot print"));
    f.state
        .store
        .ingest_feedback("api", &answers)
        .await
        .unwrap();
    let (status, _, desk) = fetch(&f, page("GET", "/ui/helpdesk", Some(&cookie), "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(desk.matches("something broke").count(), 1, "{desk}");
    assert!(
        desk.contains("<td>score 2</td><td class=\"n\">5</td><td>something broke</td>"),
        "{desk}"
    );
    assert!(desk.contains("<td>score 1</td><td class=\"n\">1</td><td>cannot print</td>"));
}
