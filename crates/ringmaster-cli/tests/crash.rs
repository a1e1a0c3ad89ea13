//! Kill `ringmaster run` at chosen points, 20 times: each restart resumes,
//! and the end equals an uninterrupted run with the same seed: the same
//! transitions at the same simulated times (so no wave was applied twice),
//! and the same reports stored (so none acknowledged was lost). The kills
//! land after a chosen number of commits (`RINGMASTER_ABORT_AFTER_COMMITS`:
//! the process aborts, no clean-up), so they mean the same on a fast or a
//! loaded machine.

mod common;

use common::{ringmaster, wait_for};
use std::path::Path;
use std::process::{Command, Stdio};

const PLAN: &str = r#"
[rollout]
id = "crash"
name = "Crash test"
purpose = "Resume after SIGKILL."
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
bake = "1d"
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
bake = "1d"
  [[phases.waves]]
  share = "10%"
  [[phases.waves]]
  groups = ["sales"]
  [[phases.waves]]
  rest = true
  [[phases.goals]]
  metric = "apply_success_rate"
  threshold = ">= 95%"
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

/// The test fleet (3,000 devices, seed 7) with the new baseline, and PLAN, in `dir`.
fn fleet(dir: &Path) {
    let ok = ringmaster(dir)
        .args([
            "gen",
            "--devices",
            "3000",
            "--seed",
            "7",
            "--proposed",
            "proposed",
            "org",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::write(dir.join("ringmaster.toml"), PLAN).unwrap();
}

/// Runs the rollout to its end without interruption into `sqlite:whole.db`.
fn run_whole(dir: &Path) {
    let whole = ringmaster(dir)
        .args([
            "run",
            "--simulate",
            "--seed",
            "5",
            "--database",
            "sqlite:whole.db",
        ])
        .output()
        .unwrap();
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stdout)
    );
}

fn output(dir: &Path, args: &[&str]) -> String {
    let out = ringmaster(dir).args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_killed_run_resumes_to_the_same_end() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    fleet(dir);

    // The reference: one uninterrupted run (seed 5) in sqlite:whole.db.
    run_whole(dir);

    // Killed 20 times, each after a different number of its own commits,
    // so the kills walk through the run; then run to the end.
    let mut seen = std::collections::BTreeSet::new();
    let mut aborted = 0;
    for i in 0..20u64 {
        let commits = 5 + (i * 7) % 23;
        let out = ringmaster(dir)
            .args([
                "run",
                "--simulate",
                "--seed",
                "5",
                "--database",
                "sqlite:killed.db",
            ])
            .env("RINGMASTER_ABORT_AFTER_COMMITS", commits.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        aborted += usize::from(!out.success());
        // Where the rollout's clock stood ("reports read up to …").
        let polled = output(dir, &["status", "--database", "sqlite:killed.db"]);
        seen.insert(polled.lines().next().unwrap_or("").to_string());
    }
    assert!(aborted >= 10, "most runs were cut short: {aborted}");
    // The kills landed at many different moments of the simulation.
    assert!(seen.len() >= 8, "kills landed at too few moments: {seen:?}");
    let rest = ringmaster(dir)
        .args([
            "run",
            "--simulate",
            "--seed",
            "5",
            "--database",
            "sqlite:killed.db",
        ])
        .output()
        .unwrap();
    assert!(
        rest.status.success(),
        "{}",
        String::from_utf8_lossy(&rest.stdout)
    );

    let history = |db: &str| output(dir, &["history", "--database", db]);
    let status = |db: &str| output(dir, &["status", "--database", db]);
    let (h1, h2) = (history("sqlite:whole.db"), history("sqlite:killed.db"));
    assert!(h1.lines().count() > 10, "{h1}");
    assert_eq!(h1, h2, "transitions differ after kills");
    assert_eq!(status("sqlite:whole.db"), status("sqlite:killed.db"));
    // Each wave started applying exactly once.
    for wave in 1..=5 {
        let starts = h2
            .lines()
            .filter(|l| l.contains(&format!("wave {wave} (v1): pending → applying")))
            .count();
        assert_eq!(starts, 1, "wave {wave} started {starts} times:\n{h2}");
    }
}

#[test]
fn ingest_keeps_good_records_rejects_bad_ones_and_is_idempotent() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    fleet(dir);
    assert!(
        ringmaster(dir)
            .args(["run", "--simulate", "--seed", "5"])
            .status()
            .unwrap()
            .success()
    );
    // A device of the first wave, by its Intune id.
    let line = std::fs::read_to_string(dir.join("org/managedDevices.ndjson")).unwrap();
    let ids: Vec<String> = line
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect();
    let csv = format!(
        "DeviceId,ReportStatus,LastReportedDateTime\n{},Error,2027-02-01 10:00:00\n{},Exploded,2027-02-01 10:00:00\n",
        ids[0], ids[1]
    );
    std::fs::write(dir.join("status.csv"), csv).unwrap();
    let first = ringmaster(dir)
        .args(["ingest", "status", "status.csv", "--policy", "p"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&first.stdout);
    assert_eq!(first.status.code(), Some(1), "{out}");
    assert!(out.contains("1 new, 0 already stored, 1 rejected"), "{out}");
    assert!(out.contains("record 2: unknown state `Exploded`"), "{out}");
    let status: serde_json::Value =
        serde_json::from_str(&output(dir, &["status", "--json"])).unwrap();
    assert_eq!(status["waves"].as_array().unwrap().len(), 5);
    assert!(
        status["waves"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["state_text"] == "passed"),
        "{status}"
    );
    let history: serde_json::Value =
        serde_json::from_str(&output(dir, &["history", "--json"])).unwrap();
    assert!(history.as_array().unwrap().len() >= 15);
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["simulated"] == true),
        "a simulated run's transitions say so: {history}"
    );
    let again = output(
        dir,
        &["ingest", "status", "status.csv", "--policy", "p", "--json"],
    );
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(
        (again["inserted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(1)),
        "{again}"
    );
    assert_eq!(again["rejected"][0]["record"], 2, "{again}");
    // The same file as Windows tools write it (UTF-16 with a byte-order
    // mark) reads the same: nothing new, the same rejection.
    let text = std::fs::read_to_string(dir.join("status.csv")).unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    std::fs::write(dir.join("status16.csv"), utf16).unwrap();
    let wide = output(
        dir,
        &[
            "ingest",
            "status",
            "status16.csv",
            "--policy",
            "p",
            "--json",
        ],
    );
    let wide: serde_json::Value = serde_json::from_str(&wide).unwrap();
    assert_eq!(wide["duplicates"].as_u64(), Some(1), "{wide}");
    assert_eq!(wide["rejected"][0]["record"], 2, "{wide}");
    // A CSV of some other kind is refused whole, not read as empty.
    std::fs::write(dir.join("other.csv"), "Name,Colour\n").unwrap();
    let other = ringmaster(dir)
        .args(["ingest", "status", "other.csv", "--policy", "p"])
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2), "{other:?}");
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("none of the columns"),
        "{other:?}"
    );
    std::fs::write(
        dir.join("tickets.json"),
        r#"[{"number":"INC1","opened_at":"2027-02-01 10:00:00","short_description":"orphan"}]"#,
    )
    .unwrap();
    let t = output(dir, &["ingest", "tickets", "tickets.json"]);
    assert!(
        t.contains("1 rejected") && t.contains("neither a user nor a device"),
        "{t}"
    );
    // The run state: every device reports Error a week later; those that
    // had succeeded are listed as regressed, the rest of the fleet is judged.
    let mut csv = String::from("DeviceId,ReportStatus,LastReportedDateTime\n");
    for id in &ids {
        csv.push_str(&format!("{id},Error,2027-02-08 10:00:00\n"));
    }
    std::fs::write(dir.join("later.csv"), csv).unwrap();
    output(dir, &["ingest", "status", "later.csv", "--policy", "p"]);
    let run = ringmaster(dir)
        .args(["status", "--run-state", "--json"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "drift is exit 1");
    let run: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let devices = run["devices"].as_u64().unwrap();
    assert!(devices > 100, "{run}");
    assert_eq!(run["errors"].as_u64(), Some(devices), "{run}");
    assert_eq!(run["service_levels"].as_array().unwrap().len(), 3, "{run}");
    let regressed = run["regressed"].as_array().unwrap().len() as u64;
    assert!(
        regressed > devices * 9 / 10 && regressed < devices,
        "{regressed} of {devices}"
    );
}

/// A fresh database on the PostgreSQL test cluster, or None outside CI
/// when there is none (see scripts/pg-test-cluster).
fn postgres_database(name: &str) -> Option<String> {
    let Ok(url) = std::env::var("RINGMASTER_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "RINGMASTER_TEST_POSTGRES is not set: .ci/run starts a throwaway cluster"
        );
        eprintln!("skipped: set RINGMASTER_TEST_POSTGRES (scripts/pg-test-cluster start)");
        return None;
    };
    let name = format!("{name}_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        let ok = Command::new("psql")
            .args([url.as_str(), "-qc", &sql])
            .status()
            .unwrap();
        assert!(ok.success(), "{sql}");
    }
    Some(format!("{}/{name}", &url[..url.rfind('/').unwrap()]))
}

/// A `ringmaster serve` instance whose printed lines are collected.
struct Instance {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// A failing test leaves no server behind.
impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Instance {
    fn start(dir: &Path, db: &str) -> Instance {
        use std::io::BufRead;
        let mut child = ringmaster(dir)
            .args([
                "serve",
                "--simulate",
                "--seed",
                "5",
                "--speed",
                "36000",
                "--listen",
                "127.0.0.1:0",
                "--database",
                db,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let out = child.stdout.take().unwrap();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(l);
            }
        });
        Instance { child, lines }
    }

    fn said(&self, what: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(what))
            .count()
    }
}

#[test]
fn three_servers_on_postgres_survive_the_leader_being_killed() {
    let Some(db) = postgres_database("rm_instances") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    fleet(dir);
    // The reference: one uninterrupted run (seed 5) in sqlite:whole.db.
    run_whole(dir);

    // Three servers on one PostgreSQL database; the first to start leads.
    let mut servers = vec![Instance::start(dir, &db)];
    wait_for("the first server leading", 30, || {
        servers[0].said("scheduler: leading") == 1
    });
    servers.push(Instance::start(dir, &db));
    servers.push(Instance::start(dir, &db));
    wait_for("the others following", 30, || {
        servers[1..]
            .iter()
            .all(|s| s.said("scheduler: following") == 1)
    });
    // Kill the leader in the middle of a wave (SIGKILL: no hand-over).
    wait_for("a wave baking", 60, || {
        output(dir, &["status", "--database", &db]).contains("baking")
    });
    drop(servers.remove(0));
    let killed_at = std::time::Instant::now();
    wait_for("another server taking over", 15, || {
        servers.iter().any(|s| s.said("scheduler: leading") == 1)
    });
    let took = killed_at.elapsed();
    assert!(
        took < std::time::Duration::from_secs(8),
        "took over after {took:?}"
    );
    assert_eq!(
        servers
            .iter()
            .filter(|s| s.said("scheduler: leading") > 0)
            .count(),
        1,
        "exactly one leads"
    );
    wait_for("the rollout finishing", 120, || {
        let s: serde_json::Value =
            serde_json::from_str(&output(dir, &["status", "--json", "--database", &db])).unwrap();
        s["waves"]
            .as_array()
            .is_some_and(|w| w.iter().all(|w| w["state_text"] == "passed"))
    });
    drop(servers);
    // No transition lost or made twice: the history equals the uninterrupted run's.
    let history = |db: &str| output(dir, &["history", "--database", db]);
    assert_eq!(history("sqlite:whole.db"), history(&db));
    // Each action was carried out once.
    let out = Command::new("psql")
        .args([
            db.as_str(),
            "-Atc",
            "SELECT count(*), count(DISTINCT (version, idx, seq, pos)), count(done_at) FROM actions",
        ])
        .output()
        .unwrap();
    let counts = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let parts: Vec<&str> = counts.split('|').collect();
    assert!(
        parts.len() == 3 && parts[0] == parts[1] && parts[1] == parts[2],
        "{counts}"
    );
}
