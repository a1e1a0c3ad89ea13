//! The dashboard in a real browser: Debian's Chromium driven over WebDriver
//! (chromedriver). It signs in, opens every page of a running simulated
//! rollout, approves the pilot by clicking, and checks that the figures on
//! the page (refreshed live, without reloading) match the API.
//! Screenshots go to `target/screenshots/`.
//!
//! Without chromedriver the test says so and passes, except under CI
//! (`CI` set), where `.ci/run` installs it and its absence is a failure.

mod common;

use fantoccini::{ClientBuilder, Locator};
use ringmaster_engine::figures::wave_figures as figures;
use ringmaster_store::Role;
use std::time::Duration;

const DRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

fn screenshots() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts chromedriver on a free port; it stops with the returned guard.
struct Driver(std::process::Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(DRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Driver(child, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("chromedriver did not start listening");
}

async fn text(c: &fantoccini::Client, css: &str) -> String {
    // The live refresh may replace the element between finding and reading
    // it: find it again then.
    let mut tries = 0;
    loop {
        let e = c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match e.text().await {
            Ok(t) => return t,
            Err(err) if tries < 5 => {
                tries += 1;
                eprintln!("{css}: {err}; reading it again");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("{css}: {err}"),
        }
    }
}

async fn shot(c: &fantoccini::Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Waits until `check` holds (the live refresh runs every 5 s).
async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    for _ in 0..60 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{what} did not happen within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_opens_every_page_and_approves_the_pilot() {
    if !std::path::Path::new(DRIVER).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{DRIVER} is missing: .ci/run installs chromium-driver"
        );
        eprintln!("skipped: {DRIVER} is not installed (apt-get install chromium chromium-driver)");
        return;
    }
    // fantoccini's TLS stack builds two crypto providers in; pick one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let f = common::fixture().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ringmaster_server::serve(
        listener,
        f.state.clone(),
        std::future::pending(),
    ));
    let d = driver().await;
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,1100",
                format!("--user-data-dir={}", profile.path().display())],
        }),
    );
    let c = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.1))
        .await
        .expect("connecting to chromedriver");

    // Sign in: the dashboard sends us to the sign-in page first.
    c.goto(&format!("{base}/ui/waves/1")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/login"));
    shot(&c, "01-sign-in").await;
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(f.token(Role::Operator))
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("arriving at the wave page", async || {
        c.current_url().await.unwrap().path() == "/ui/waves/1"
    })
    .await;
    assert_eq!(text(&c, "#wave-state").await, "awaiting approval");
    shot(&c, "02-wave-awaiting-approval").await;

    // Approve by clicking; the API agrees.
    c.find(Locator::Id("action-approve"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("the approval", async || {
        text(&c, "#wave-state").await == "applying"
    })
    .await;
    let rows = f.state.engine.rows().await.unwrap();
    assert_eq!(rows[0].state.name(), "applying");

    // The rollout runs on while the overview is open: it refreshes itself.
    c.goto(&format!("{base}/ui")).await.unwrap();
    let before = text(&c, "#wave-1 [data-field=succeeded]").await;
    f.run_hours(72).await;
    let rows = f.state.engine.rows().await.unwrap();
    let api = figures(f.state.store.as_ref(), &rows[0]).await.unwrap();
    assert!(api.succeeded > 0);
    eventually("the live refresh", async || {
        text(&c, "#wave-1 [data-field=succeeded]").await == api.succeeded.to_string()
    })
    .await;
    assert_ne!(before, api.succeeded.to_string());
    // Every figure in the table matches the API.
    for (i, r) in f.state.engine.rows().await.unwrap().iter().enumerate() {
        let c2 = figures(f.state.store.as_ref(), r).await.unwrap();
        let row = format!("#wave-{}", i + 1);
        for (field, want) in [
            ("succeeded", c2.succeeded),
            ("error", c2.errors),
            ("conflict", c2.conflicts),
            ("pending", c2.pending),
            ("reported", c2.reported),
            ("tickets", c2.tickets),
            ("devices", r.members.len()),
        ] {
            assert_eq!(
                text(&c, &format!("{row} [data-field={field}]")).await,
                want.to_string(),
                "{row} {field}"
            );
        }
        assert_eq!(
            text(&c, &format!("{row} [data-field=state]")).await,
            r.state.name()
        );
    }
    shot(&c, "03-overview").await;

    // Every other page opens and shows its heading.
    let device = common::FIRST_DEVICE.get().unwrap().clone();
    for (name, path, heading) in [
        ("04-plan", "/ui/plan".to_string(), "Plan: API"),
        ("05-pilot", "/ui/pilot".into(), "Pilot representativeness"),
        ("06-conflicts", "/ui/conflicts".into(), "Setting conflicts"),
        ("07-conflict", "/ui/conflicts/1".into(), ""),
        ("08-wave", "/ui/waves/1".into(), "Wave 1: Pilot (isolated)"),
        ("09-devices", "/ui/devices?q=NL".into(), "Devices"),
        ("10-device", format!("/ui/devices/{device}"), ""),
        ("11-help-desk", "/ui/helpdesk".into(), "Help desk: API"),
        ("12-audit", "/ui/audit".into(), "Audit log"),
        (
            "13-notifications",
            "/ui/notifications".into(),
            "Notifications",
        ),
        ("14-run-state", "/ui/runstate".into(), "Run state"),
    ] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        let h1 = text(&c, "h1").await;
        assert!(h1.starts_with(heading), "{path}: {h1}");
        shot(&c, name).await;
    }
    // The device page shows the hostile name as text, and no dialog opened.
    c.goto(&format!("{base}/ui/devices/{device}"))
        .await
        .unwrap();
    assert!(
        text(&c, "h1")
            .await
            .contains("<script>alert('device')</script>")
    );
    assert!(c.get_alert_text().await.is_err(), "no script ran");
    // The wave page's figures match the API's wave detail.
    c.goto(&format!("{base}/ui/waves/1")).await.unwrap();
    let rows = f.state.engine.rows().await.unwrap();
    let counts = figures(f.state.store.as_ref(), &rows[0]).await.unwrap();
    assert_eq!(
        text(&c, "#counts [data-field=succeeded]").await,
        counts.succeeded.to_string()
    );
    assert_eq!(
        text(&c, "#counts [data-field=error]").await,
        counts.errors.to_string()
    );
    // The run state's figure matches the API's.
    c.goto(&format!("{base}/ui/runstate")).await.unwrap();
    let devices = f.state.view().plan.scope.devices;
    assert_eq!(
        text(&c, "#rs-devices").await,
        ringmaster_plan::report::thousands(devices)
    );
    // Its title is plain text and it lists the plan's alert rules.
    let title = c.title().await.unwrap();
    assert!(
        title.starts_with("Run state · ") && !title.contains('<'),
        "{title}"
    );
    let rules = text(&c, "#rules").await;
    assert!(
        rules.contains("regressed raises a critical alert at once"),
        "{rules}"
    );
    // The audit log names the approval.
    c.goto(&format!("{base}/ui/audit")).await.unwrap();
    assert!(text(&c, "#audit").await.contains("operator token"));
    c.close().await.unwrap();
}
