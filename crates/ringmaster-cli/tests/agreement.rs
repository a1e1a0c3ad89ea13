//! One wave, four screens, one set of numbers: a small simulated rollout is
//! run to a passed pilot and an enterprise wave baking with reports, errors
//! and tickets; then `ringmaster status` (text and JSON), `GET
//! /api/waves/{n}` of a served dashboard on the same database, the wave
//! page and the overview must show the same devices, reported, succeeded,
//! errors, pending and tickets for each wave.

mod common;

use common::{ringmaster, wait_for};
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

const PLAN: &str = r#"
[rollout]
id = "agree"
name = "Agreement"
purpose = "Every screen shows the same numbers."
time_zone = "Europe/Amsterdam"
start = "2027-01-11"

[help_desk]
contact = "desk"
capacity_per_day = 1000

[sources]
org = ["org"]
new = ["proposed"]

[[groups]]
key = "sales"
group = "All Sales Devices"
willingness = "medium"
business_risk = "medium"

[[groups]]
key = "retail"
group = "All Retail Devices"
willingness = "low"
business_risk = "high"

[[phases]]
kind = "pilot"
judging = "point"
  [phases.pilot]
  min_devices = 40
  [[phases.goals]]
  metric = "apply_success_rate"
  threshold = ">= 90%"
  window = "24h"
  min_sample = 20
  deadline = "5d"

[[phases]]
kind = "enterprise"
judging = "point"
bake = "3d"
  [[phases.waves]]
  share = "30%"
  [[phases.waves]]
  groups = ["sales"]
  [[phases.waves]]
  rest = true
  [[phases.goals]]
  metric = "apply_success_rate"
  threshold = ">= 80%"
  window = "24h"
  min_sample = 20
  deadline = "6d"

[[accept]]
setting = "device_vendor_msft_laps_policies_passwordagedays"
reason = "the old LAPS policies retire when this one is everywhere"
expires = "2027-12-31"

[[accept]]
setting = "device_vendor_msft_laps_policies_passwordlength"
reason = "the old LAPS policies retire when this one is everywhere"
expires = "2027-12-31"
"#;

/// The figures compared, as `WaveFigures` names them.
const FIELDS: [&str; 6] = [
    "devices",
    "reported",
    "succeeded",
    "errors",
    "pending",
    "tickets",
];

fn output(dir: &Path, args: &[&str]) -> String {
    let out = ringmaster(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ringmaster {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ringmaster serve` on a free port; killed when dropped.
struct Server {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = ringmaster(dir)
            // One simulated hour per real hour: after its first tick the
            // rollout stands still while the test reads it.
            .args([
                "serve",
                "--simulate",
                "--speed",
                "1",
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Default::default();
        let out = child.stdout.take().unwrap();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(l);
            }
        });
        Server { child, lines }
    }

    /// The first printed line after the one starting with `prefix`, or the
    /// rest of that line.
    fn printed(&self, prefix: &str, next_line: bool) -> Option<String> {
        let lines = self.lines.lock().unwrap();
        let at = lines.iter().position(|l| l.starts_with(prefix))?;
        if next_line {
            lines.get(at + 1).map(|l| l.trim().to_string())
        } else {
            Some(lines[at][prefix.len()..].to_string())
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 request (the server closes the connection after it):
/// status, head and body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[String],
    form: &str,
) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(form);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

/// The value of cookie `name` set in a response head.
fn set_cookie(head: &str, name: &str) -> String {
    let key = format!("set-cookie: {name}=");
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&key))
        .unwrap_or_else(|| panic!("no cookie {name} in {head}"));
    let v = &line[key.len()..];
    v[..v.find(';').unwrap_or(v.len())].to_string()
}

/// The text of the cell `data-field="…"` in the element with id `row`.
fn cell(body: &str, row: &str, field: &str) -> u64 {
    let r = body
        .find(&format!("id=\"{row}\""))
        .unwrap_or_else(|| panic!("no {row} on the page"));
    let key = format!("data-field=\"{field}\">");
    let at = r
        + body[r..]
            .find(&key)
            .unwrap_or_else(|| panic!("no {field} in {row}"))
        + key.len();
    let text = &body[at..at + body[at..].find('<').unwrap()];
    text.replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("{row} {field}: `{text}`"))
}

/// A wave's line in `ringmaster status`: its figures in [`FIELDS`] order.
fn status_line(status: &str, wave: usize) -> Vec<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("  {wave:>2}  ")))
        .unwrap_or_else(|| panic!("no wave {wave} in\n{status}"));
    // `  #  name (34 wide) ` then the figures and the state.
    line[41..]
        .split_whitespace()
        .take(FIELDS.len())
        .map(|n| n.parse().unwrap_or_else(|_| panic!("`{line}`")))
        .collect()
}

#[test]
fn status_api_wave_page_and_overview_show_the_same_figures() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    output(
        dir,
        &[
            "gen",
            "--devices",
            "3000",
            "--seed",
            "7",
            "--proposed",
            "proposed",
            "org",
        ],
    );
    std::fs::write(dir.join("ringmaster.toml"), PLAN).unwrap();
    // The pilot passes; the first enterprise wave (wave 3), with errors
    // injected, is in the middle of its bake when the run stops.
    let run = ringmaster(dir)
        .args([
            "run",
            "--simulate",
            "--fault",
            "wave=3,error=0.15",
            "--max-days",
            "9",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{said}");
    assert!(said.ends_with("stopped after 9 simulated days\n"), "{said}");
    let until = |dir: &Path| {
        let s: serde_json::Value =
            serde_json::from_str(&output(dir, &["status", "--json"])).unwrap();
        s["reports_until"].clone()
    };
    let stopped = until(dir);

    let server = Server::start(dir);
    wait_for("the dashboard's address", 60, || {
        server.printed("dashboard: http://", false).is_some()
    });
    let addr = server.printed("dashboard: http://", false).unwrap();
    let addr = addr[..addr.find('/').unwrap()].to_string();
    let token = server
        .printed("first start: admin token", true)
        .expect("the first start prints a token");
    // The scheduler's first tick, an hour on; the next is an hour away.
    wait_for("the server's first tick", 60, || until(dir) != stopped);

    let json: serde_json::Value =
        serde_json::from_str(&output(dir, &["status", "--json"])).unwrap();
    let text = output(dir, &["status"]);
    let bearer = format!("Authorization: Bearer {token}");
    let (status, _, login) = http(&addr, "GET", "/login", &[], "");
    assert_eq!(status, 200);
    let key = {
        let k = "name=\"csrf\" value=\"";
        let at = login.find(k).unwrap() + k.len();
        login[at..at + login[at..].find('"').unwrap()].replace("&#x2f;", "/")
    };
    let (status, head, _) = http(
        &addr,
        "POST",
        "/login",
        &[format!("Cookie: rm_login={key}")],
        &format!("csrf={key}&next=%2Fui&token={token}"),
    );
    assert_eq!(status, 303, "{head}");
    let session = format!("Cookie: rm_session={}", set_cookie(&head, "rm_session"));
    let (status, _, overview) = http(&addr, "GET", "/ui", std::slice::from_ref(&session), "");
    assert_eq!(status, 200);

    let waves = json["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 5);
    for w in waves {
        let n = w["wave"].as_u64().unwrap() as usize;
        let (status, _, api) = http(
            &addr,
            "GET",
            &format!("/api/waves/{n}"),
            std::slice::from_ref(&bearer),
            "",
        );
        assert_eq!(status, 200, "{api}");
        let api: serde_json::Value = serde_json::from_str(&api).unwrap();
        let (status, _, page) = http(
            &addr,
            "GET",
            &format!("/ui/waves/{n}"),
            std::slice::from_ref(&session),
            "",
        );
        assert_eq!(status, 200);
        let line = status_line(&text, n);
        for (i, field) in FIELDS.iter().enumerate() {
            // The wave page and the overview name errors `error`.
            let shown = if *field == "errors" { "error" } else { field };
            let want = w["figures"][field].as_u64().unwrap();
            let got = [
                ("status", line[i]),
                (
                    "GET /api/waves/{n}",
                    api["figures"][field].as_u64().unwrap(),
                ),
                ("the wave page", cell(&page, "counts", shown)),
                ("the overview", cell(&overview, &format!("wave-{n}"), shown)),
            ];
            for (screen, v) in got {
                assert_eq!(
                    v, want,
                    "wave {n} {field}: {screen} shows {v}, status --json {want}"
                );
            }
        }
        assert_eq!(api["devices"], w["figures"]["devices"]);
    }
    let figures = |n: usize| &waves[n - 1]["figures"];
    let state = |n: usize| waves[n - 1]["state_text"].as_str().unwrap().to_string();
    // The states the test is about.
    assert_eq!(state(1), "passed");
    assert_eq!(state(2), "passed");
    assert_eq!(state(3), "baking");
    let baking = figures(3);
    assert!(baking["reported"].as_u64().unwrap() > 100, "{baking}");
    assert!(baking["errors"].as_u64().unwrap() > 0, "{baking}");
    assert!(baking["tickets"].as_u64().unwrap() > 0, "{baking}");
    // The isolated pilot shares its devices with the combined one, whose
    // reports now stand for them: it shows what its gates judged (at
    // least the 20 reports its goal needed), not "0 reported".
    assert!(
        figures(1)["reported"].as_u64().unwrap() >= 20,
        "{}",
        figures(1)
    );
    assert!(figures(1)["judged_at"].is_string());
    assert!(figures(3)["judged_at"].is_null());
}
