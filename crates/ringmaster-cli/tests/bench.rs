//! The benches measure what they are asked for and leave the folders they
//! read as they found them.

use assert_cmd::Command;

fn rm() -> Command {
    Command::cargo_bin("ringmaster").unwrap()
}

fn stdout(args: &[&str]) -> String {
    let out = rm().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The line that names the organization and the plan's scope.
fn scope_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("organization:"))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string()
}

#[test]
fn bench_plan_writes_nothing_into_the_folder_it_reads() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("org");
    let dir = dir.to_str().unwrap();
    let args = [
        "bench",
        "plan",
        "--devices",
        "20000",
        "--dir",
        dir,
        "--repeat",
        "1",
    ];
    let first = stdout(&args);
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("proposed")), "{names:?}");
    // A second run reads the same folder: the same organization, not one
    // with the proposed policy added twice.
    let second = stdout(&args);
    assert_eq!(scope_line(&first), scope_line(&second));
}

/// `--devices` is measured as given (the rollout bench used to swap 1,000,000
/// for 100,000 without a word).
#[test]
fn bench_rollout_measures_the_size_asked_for() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("org");
    let out = stdout(&[
        "bench",
        "rollout",
        "--devices",
        "20000",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(out.contains("simulated fleet: 20000 devices"), "{out}");
}

/// `bench e2e --layout random` measures the commands as processes on random
/// memberships: every one but `plan` (the demo plan targets the realistic
/// layout's groups), cold, writing the snapshot and warm.
#[test]
fn bench_e2e_measures_random_memberships() {
    let out = stdout(&[
        "bench",
        "e2e",
        "--devices",
        "300",
        "--policies",
        "20",
        "--layout",
        "random",
        "--repeat",
        "1",
        "--json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = rows.as_array().unwrap();
    let commands: Vec<&str> = rows
        .iter()
        .map(|r| r["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["org", "conflicts", "explain --device"]);
    for r in rows {
        for phase in ["cold", "warm"] {
            assert!(r[phase]["median"]["wall_ms"].as_f64().unwrap() > 0.0, "{r}");
        }
        assert!(r["writing"]["peak_bytes"].as_u64().unwrap() > 0, "{r}");
    }
}
