//! The service-hardening probe (issue 22): a server on port 0 with short
//! timeouts, and each item tried against it over TCP. The test prints how
//! many were tried and failed (`cargo test -p ringmaster-server --test
//! hardening -- --nocapture`) and fails when any did.

mod common;

use common::{Fixture, fixture_in};
use ringmaster_server::notify::Target;
use ringmaster_server::{Channels, Limiter, Timeouts};
use ringmaster_store::Role;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The webhook whose path is its secret.
const HOOK: &str = "https://hooks.example.com/services/T0/B0/s3cr3tpath?sig=s3cr3tsig";
/// How long the probe waits for something the server must do quickly.
const PATIENCE: Duration = Duration::from_secs(30);
/// The served instance's timeouts: short, so closing is seen soon.
const TIMEOUTS: Timeouts = Timeouts {
    headers: Duration::from_millis(500),
    body: Duration::from_millis(500),
};

struct Served {
    f: Fixture,
    addr: SocketAddr,
    base: String,
    client: reqwest::Client,
    /// The limiter's clock, stopped: only the probe moves it.
    now: Arc<Mutex<Instant>>,
}

type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

async fn served() -> Served {
    let channels = Channels {
        routes: vec![("operators".into(), Target::Webhook(HOOK.into()))],
        ..Default::default()
    };
    let mut f = fixture_in(channels, true).await;
    let now = Arc::new(Mutex::new(Instant::now()));
    let clock = now.clone();
    f.state.limiter = Arc::new(Limiter::with_clock(Arc::new(move || {
        *clock.lock().unwrap()
    })));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ringmaster_server::serve_with(
        listener,
        f.state.clone(),
        TIMEOUTS,
        std::future::pending(),
    ));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Served {
        f,
        addr,
        base: format!("http://{addr}"),
        client,
        now,
    }
}

/// Sends `head` (and `body`) on a new connection; the status line's code
/// once the answer's head is in, or why there was none.
async fn raw_status(addr: SocketAddr, head: String, body: Vec<u8>) -> Result<u16, String> {
    let mut c = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    c.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    // The server may answer (and stop reading) before the body is all sent.
    let _ = c.write_all(&body).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .map_err(|_| format!("no answer within {PATIENCE:?}"))?;
    let text = String::from_utf8_lossy(&got);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))
}

/// Whether the server closes a connection that sent `partial` and then nothing.
async fn closes(addr: SocketAddr, partial: &str) -> Outcome {
    let mut c = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    c.write_all(partial.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1024];
    let drained = async {
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, drained)
        .await
        .map_err(|_| format!("still open after {PATIENCE:?}: {partial:?}"))
}

fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// 1. The outbox never shows a webhook's path or query.
async fn outbox_is_redacted(s: &Served) -> Outcome {
    let queued = ringmaster_server::notify::queue(&s.f.state)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(queued > 0, "nothing was queued for the operators' webhook");
    let r = s
        .client
        .get(format!("{}/api/outbox", s.base))
        .bearer_auth(s.f.token(Role::Operator))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(r.status() == 200, "GET /api/outbox: {}", r.status());
    let body = r.text().await.map_err(|e| e.to_string())?;
    ensure!(
        !body.contains("s3cr3t") && !body.contains("/services/"),
        "the outbox shows the secret: {body}"
    );
    ensure!(
        body.contains("\"target\":\"https://hooks.example.com/…\""),
        "the target is not shown as scheme and host: {body}"
    );
    Ok(())
}

/// 2. No body is read before the token is checked.
async fn bodies_wait_for_the_token(s: &Served) -> Outcome {
    let before = rss_kib();
    let head = "POST /api/ingest/status HTTP/1.1\r\nHost: probe\r\nContent-Type: application/json\r\nContent-Length: 32505856\r\n\r\n";
    let chunk = vec![b' '; 64 << 10];
    let tries = (0..60).map(|_| raw_status(s.addr, head.to_string(), chunk.clone()));
    let codes = futures_join(tries).await;
    for c in &codes {
        ensure!(
            *c == Ok(401),
            "a 31 MiB POST without a token answered {c:?}"
        );
    }
    if let (Some(a), Some(b)) = (before, rss_kib()) {
        println!(
            "  60 unauthenticated 31 MiB POSTs: resident memory {} → {} MiB",
            a >> 10,
            b >> 10
        );
    }
    Ok(())
}

async fn futures_join<F: std::future::Future + Send + 'static>(
    fs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("the probe task"));
    }
    out
}

/// 3. Half-sent headers and bodies do not hold connections open.
async fn slow_clients_are_cut_off(s: &Served) -> Outcome {
    let partial = "GET /healthz HTTP/1.1\r\nHost: probe\r\nX-Slow: ";
    let addr = s.addr;
    for r in futures_join((0..50).map(move |_| closes(addr, partial))).await {
        r?;
    }
    closes(s.addr, "").await?;
    let head = format!(
        "POST /api/ingest/status HTTP/1.1\r\nHost: probe\r\nAuthorization: Bearer {}\r\nContent-Length: 1000\r\n\r\n",
        s.f.token(Role::Reporter)
    );
    let code = raw_status(s.addr, head, b"[{\"device".to_vec()).await?;
    ensure!(code == 408, "a body that stopped coming answered {code}");
    Ok(())
}

/// 5. Racing actions on one wave get 409, and a busy database 503.
async fn races_and_a_busy_database(s: &Served) -> Outcome {
    let op = s.f.token(Role::Operator).to_string();
    let post = |path: String| {
        let (c, op) = (s.client.clone(), op.clone());
        async move {
            let r = c
                .post(path)
                .bearer_auth(op)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").is_some();
            Ok::<_, String>((status, retry, r.text().await.unwrap_or_default()))
        }
    };
    let (status, _, body) = post(format!("{}/api/waves/1/approve", s.base)).await?;
    ensure!(status == 200, "approving wave 1: {status} {body}");
    let racers = (0..64).map(|i| {
        let action = if i % 2 == 0 { "pause" } else { "resume" };
        post(format!("{}/api/waves/1/{action}", s.base))
    });
    let mut conflicts = 0;
    for r in futures_join(racers.map(Box::pin)).await {
        let (status, _, body) = r?;
        ensure!(
            status == 200 || status == 409,
            "a racing pause/resume answered {status}: {body}"
        );
        conflicts += usize::from(status == 409);
    }
    println!("  64 racing pause/resume: {conflicts} answered 409, none 500");
    // The race leaves the wave paused or running; resume it so the pause
    // below has to write (a pause of a paused wave is refused on a read).
    let (status, _, body) = post(format!("{}/api/waves/1/resume", s.base)).await?;
    ensure!(
        status == 200 || status == 409,
        "resuming after the race: {status} {body}"
    );
    // Another writer holds the database: the action waits, then 503.
    use sqlx::Connection;
    let url = format!("sqlite:{}", s.f._dir.path().join("rm.db").display());
    let mut holder = sqlx::SqliteConnection::connect(&url)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .map_err(|e| e.to_string())?;
    let busy = post(format!("{}/api/waves/1/pause", s.base)).await;
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .map_err(|e| e.to_string())?;
    let (status, retry, body) = busy?;
    ensure!(
        status == 503 && retry,
        "an action on a locked database answered {status} (Retry-After: {retry}): {body}"
    );
    Ok(())
}

/// Item 4: a large bulk ingest (what `ringmaster ingest` runs: the store's
/// batched ingest, on connections of its own) while the server answers.
/// API ingest is stored (200) or refused as busy (503 with Retry-After),
/// never failed (500); retried, nothing is lost; reads keep answering.
async fn ingest_beside_a_bulk_ingest(s: &Served) -> Outcome {
    use ringmaster_store::{DeviceState, StatusReport};
    const BULK: u64 = 150_000;
    const EACH: u64 = 200;
    let policy = "0b5e11e0-2027-4000-8000-000000000001";
    let start: jiff::Timestamp = "2027-01-18T08:00:00Z".parse().unwrap();
    let url = format!("sqlite:{}", s.f._dir.path().join("rm.db").display());
    let bulk_store = ringmaster_store::open(&url)
        .await
        .map_err(|e| e.to_string())?;
    let reports: Vec<StatusReport> = (0..BULK)
        .map(|i| StatusReport {
            device: format!(
                "{:08x}-b01c-4000-8000-{i:012}",
                (i as u32).wrapping_mul(2654435761)
            ),
            policy: policy.into(),
            state: DeviceState::Succeeded,
            reported_at: start + jiff::SignedDuration::from_secs(i as i64 % 3600),
            wave: None,
        })
        .collect();
    let bulk = tokio::spawn(async move { bulk_store.ingest_status("api", &reports).await });
    let (reporter, viewer) = (s.f.token(Role::Reporter), s.f.token(Role::Viewer));
    let (mut posts, mut stored, mut busy, mut during) = (0u64, 0u64, 0u32, 0u32);
    // Posts until the bulk ingest is over (a few at least), each retried
    // until stored: a 503 is an answer to come back, not a loss.
    while posts < 5 || !bulk.is_finished() {
        let running = !bulk.is_finished();
        let body: Vec<String> = (posts * EACH..(posts + 1) * EACH)
            .map(|i| {
                format!(
                    r#"{{"deviceId":"{:08x}-a91e-4000-8000-{i:012}","policyId":"{policy}","status":"error","reportedAt":"2027-01-18T09:00:00Z"}}"#,
                    (i as u32).wrapping_mul(2654435761)
                )
            })
            .collect();
        let body = format!("[{}]", body.join(","));
        let mut tries = 0;
        loop {
            tries += 1;
            ensure!(tries <= 100, "post {posts}: still busy after 100 tries");
            let r = s
                .client
                .post(format!("{}/api/ingest/status", s.base))
                .bearer_auth(reporter)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").is_some();
            let text = r.text().await.unwrap_or_default();
            match status {
                200 => {
                    let v: serde_json::Value =
                        serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
                    stored += v["inserted"].as_u64().unwrap_or(0);
                    break;
                }
                503 if retry => busy += 1,
                _ => {
                    return Err(format!(
                        "API ingest beside a bulk ingest answered {status} (Retry-After: {retry}): {text}"
                    ));
                }
            }
        }
        let r = s
            .client
            .get(format!("{}/api/waves", s.base))
            .bearer_auth(viewer)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        ensure!(
            r.status() == 200,
            "GET /api/waves beside a bulk ingest: {}",
            r.status()
        );
        posts += 1;
        during += u32::from(running);
    }
    let got = bulk
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("the bulk ingest failed: {e}"))?;
    ensure!(
        got.inserted == BULK,
        "the bulk ingest stored {} of {BULK}",
        got.inserted
    );
    ensure!(
        stored == posts * EACH,
        "the API stored {stored} of {}",
        posts * EACH
    );
    let latest =
        s.f.state
            .store
            .latest_states("api", None)
            .await
            .map_err(|e| e.to_string())?
            .0;
    let kept = |mark: &str| latest.iter().filter(|l| l.device.contains(mark)).count() as u64;
    ensure!(
        (kept("-b01c-"), kept("-a91e-")) == (BULK, posts * EACH),
        "stored: {} bulk, {} posted",
        kept("-b01c-"),
        kept("-a91e-")
    );
    println!(
        "  bulk ingest of {BULK}: {during} API posts during it, {busy} answered 503 and were retried, none lost"
    );
    Ok(())
}

/// A sign-in form: its cookie and its key.
async fn sign_in_form(s: &Served) -> Result<(String, String), String> {
    let r = s
        .client
        .get(format!("{}/login", s.base))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("rm_login="))
        .and_then(|v| v.split(';').next())
        .ok_or("no rm_login cookie")?
        .to_string();
    let key = cookie.trim_start_matches("rm_login=").to_string();
    Ok((cookie, key))
}

async fn sign_in(s: &Served, cookie: &str, form: String) -> Result<reqwest::Response, String> {
    s.client
        .post(format!("{}/login", s.base))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .map_err(|e| e.to_string())
}

/// 7. A sign-in's return path with control characters falls back to /ui.
async fn return_paths_are_checked_first(s: &Served) -> Outcome {
    let token = s.f.token(Role::Viewer);
    for next in [
        "%2Fui%0Aevil",
        "%2Fui%2Fplan%0D%0ASet-Cookie%3A+x%3Dy",
        "%2Fui%00",
        "%2Fui%7F",
    ] {
        let (cookie, key) = sign_in_form(s).await?;
        let r = sign_in(s, &cookie, format!("token={token}&csrf={key}&next={next}")).await?;
        let to = r.headers().get("location").and_then(|v| v.to_str().ok());
        ensure!(
            r.status() == 303 && to == Some("/ui"),
            "next={next}: {} to {to:?}",
            r.status()
        );
    }
    Ok(())
}

/// 8. Only a sign-in key the server issued is accepted.
async fn sign_in_keys_are_the_servers(s: &Served) -> Outcome {
    let token = s.f.token(Role::Viewer);
    let (_, real) = sign_in_form(s).await?;
    let (issued, rest) = real.split_once('.').ok_or("the key has no parts")?;
    let older = format!("{}.{rest}", issued.parse::<i64>().unwrap_or(0) - 1);
    for key in ["abc", "1.2.3", older.as_str()] {
        let r = sign_in(
            s,
            &format!("rm_login={key}"),
            format!("token={token}&csrf={key}"),
        )
        .await?;
        let session = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.starts_with("rm_session=")));
        ensure!(
            r.status() == 403 && !session,
            "a key the server did not issue ({key}) answered {}",
            r.status()
        );
    }
    let (cookie, key) = sign_in_form(s).await?;
    let r = sign_in(s, &cookie, format!("token={token}&csrf={key}")).await?;
    ensure!(
        r.status() == 303,
        "an issued key was refused: {}",
        r.status()
    );
    Ok(())
}

/// 9. Malformed path parameters are not looked at before the credential.
async fn paths_wait_for_the_credential(s: &Served) -> Outcome {
    for (method, path, want) in [
        ("GET", "/api/waves/abc", 401),
        ("POST", "/api/waves/abc/pause", 401),
        ("GET", "/api/waves/99999999999", 401),
        ("GET", "/ui/waves/abc", 303),
        ("GET", "/ui/conflicts/-1", 303),
        ("POST", "/ui/waves/x/approve", 303),
    ] {
        let r = s
            .client
            .request(method.parse().unwrap(), format!("{}{path}", s.base))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        ensure!(
            r.status().as_u16() == want,
            "{method} {path} without a credential: {}",
            r.status()
        );
    }
    // With one, the parameter is checked.
    let r = s
        .client
        .get(format!("{}/api/waves/abc", s.base))
        .bearer_auth(s.f.token(Role::Viewer))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        r.status() == 400,
        "a bad wave number with a token: {}",
        r.status()
    );
    Ok(())
}

/// 10. Failed sign-ins are audited; failures are throttled per client.
async fn failures_are_audited_and_throttled(s: &Served) -> Outcome {
    let (cookie, key) = sign_in_form(s).await?;
    let guess = "rm_guessed_secret";
    let r = sign_in(s, &cookie, format!("token={guess}&csrf={key}")).await?;
    ensure!(r.status() == 401, "a wrong sign-in: {}", r.status());
    let api = |token: String| {
        s.client
            .get(format!("{}/api/plan", s.base))
            .bearer_auth(token)
            .send()
    };
    for i in 1..ringmaster_server::throttle::FAILURES_BURST {
        let r = api(format!("rm_wrong_{i}"))
            .await
            .map_err(|e| e.to_string())?;
        ensure!(r.status() == 401, "wrong token {i}: {}", r.status());
    }
    // Held now: a right token is not even tried, nor a sign-in.
    for token in ["rm_wrong_again", s.f.token(Role::Viewer)] {
        let r = api(token.to_string()).await.map_err(|e| e.to_string())?;
        ensure!(
            r.status() == 429 && r.headers().get("retry-after").is_some(),
            "after the burst: {}",
            r.status()
        );
    }
    let r = sign_in(
        s,
        &cookie,
        format!("token={}&csrf={key}", s.f.token(Role::Viewer)),
    )
    .await?;
    ensure!(r.status() == 429, "a sign-in while held: {}", r.status());
    // The held time passes.
    *s.now.lock().unwrap() += ringmaster_server::throttle::FAILURES_EVERY;
    let r = api(s.f.token(Role::Viewer).to_string())
        .await
        .map_err(|e| e.to_string())?;
    ensure!(r.status() == 200, "once the wait is over: {}", r.status());
    let log = s
        .client
        .get(format!("{}/api/audit", s.base))
        .bearer_auth(s.f.token(Role::Admin))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        log.contains("sign in refused") && log.contains("client 127.0.0.1"),
        "the refused sign-in is not in the audit log: {log}"
    );
    ensure!(
        !log.contains(guess),
        "the audit log holds the guessed token"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hardening_items_hold_against_a_served_instance() {
    let s = served().await;
    let results = [
        (
            "1 outbox webhook URLs are redacted",
            outbox_is_redacted(&s).await,
        ),
        (
            "2 the token is checked before the body is read",
            bodies_wait_for_the_token(&s).await,
        ),
        (
            "3 header and body read timeouts",
            slow_clients_are_cut_off(&s).await,
        ),
        (
            "4 API ingest beside a bulk ingest: 200 or 503, none lost",
            ingest_beside_a_bulk_ingest(&s).await,
        ),
        (
            "5 stale wave 409, busy database 503",
            races_and_a_busy_database(&s).await,
        ),
        (
            "7 sign-in return path checked first",
            return_paths_are_checked_first(&s).await,
        ),
        (
            "8 sign-in key bound to the server",
            sign_in_keys_are_the_servers(&s).await,
        ),
        (
            "9 credential before path parameters",
            paths_wait_for_the_credential(&s).await,
        ),
        // Last: it holds the probe's address for a while.
        (
            "10 failures audited and throttled",
            failures_are_audited_and_throttled(&s).await,
        ),
    ];
    let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    for (name, r) in &results {
        match r {
            Ok(()) => println!("ok     {name}"),
            Err(why) => println!("FAILED {name}: {why}"),
        }
    }
    println!(
        "hardening probe: {} tried, {} failed",
        results.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:#?}");
}
