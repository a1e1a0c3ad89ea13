//! The outside anchor of issue 23 at small scale: on `gen --layout random`
//! data, ringmaster's per-setting conflict device counts equal a naive
//! per-device computation written here, and DuckDB's answer from
//! `scripts/duckdb-conflicts` (skipped when DuckDB is missing locally,
//! a failure under CI, which installs it).

use assert_cmd::Command;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

type Counts = BTreeMap<String, u64>;

fn ringmaster() -> Command {
    let mut c = Command::cargo_bin("ringmaster").unwrap();
    c.env("RINGMASTER_NOW", "2026-11-24T12:00:00Z")
        .env("NO_COLOR", "1")
        .arg("--no-snapshot");
    c
}

fn generate(dir: &Path, groups: &str, policies: &str) {
    ringmaster()
        .args([
            "gen",
            "--devices",
            "2000",
            "--seed",
            "7",
            "--layout",
            "random",
        ])
        .args(["--groups", groups, "--policies", policies])
        .arg(dir)
        .assert()
        .success();
}

/// Per-setting device counts of the conflict findings in a CSV report.
fn from_csv(text: &[u8], kind_column: bool) -> Counts {
    let mut r = csv::Reader::from_reader(text);
    let h = r.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let (setting, devices) = (col("setting_id"), col("devices"));
    let kind = kind_column.then(|| col("kind"));
    let mut out = Counts::new();
    for row in r.records() {
        let row = row.unwrap();
        if kind.is_some_and(|k| &row[k] != "conflict") {
            continue;
        }
        let n: u64 = row[devices].parse().unwrap();
        let prev = out.insert(row[setting].to_string(), n);
        assert!(prev.is_none_or(|p| p == n), "{} twice", &row[setting]);
    }
    out
}

fn ringmaster_counts(dir: &Path) -> Counts {
    let out = ringmaster()
        .args(["conflicts", "--format", "csv", "--org"])
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    from_csv(&out.stdout, true)
}

/// The question answered device by device from the files, with nothing
/// shared with ringmaster's code: a policy reaches the members of its
/// included groups that are in none of its excluded groups; a device counts
/// for a setting when the policies reaching it set two different values.
fn oracle(dir: &Path) -> Counts {
    let mut groups_of: HashMap<String, HashSet<String>> = HashMap::new();
    let members = std::fs::read_to_string(dir.join("groupMembers.ndjson")).unwrap();
    for l in members.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        groups_of
            .entry(v["memberId"].as_str().unwrap().into())
            .or_default()
            .insert(v["groupId"].as_str().unwrap().into());
    }
    let page: Value =
        serde_json::from_slice(&std::fs::read(dir.join("configurationPolicies.json")).unwrap())
            .unwrap();
    struct Policy {
        include: Vec<String>,
        exclude: Vec<String>,
        settings: Vec<(String, i64)>,
    }
    let policies: Vec<Policy> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let (mut include, mut exclude) = (Vec::new(), Vec::new());
            for a in p["assignments"].as_array().unwrap() {
                let g = a["target"]["groupId"].as_str().unwrap().to_string();
                match a["target"]["@odata.type"].as_str().unwrap() {
                    "#microsoft.graph.groupAssignmentTarget" => include.push(g),
                    "#microsoft.graph.exclusionGroupAssignmentTarget" => exclude.push(g),
                    other => panic!("unexpected target {other}"),
                }
            }
            let settings = p["settings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let i = &s["settingInstance"];
                    (
                        i["settingDefinitionId"].as_str().unwrap().to_string(),
                        i["simpleSettingValue"]["value"].as_i64().unwrap(),
                    )
                })
                .collect();
            Policy {
                include,
                exclude,
                settings,
            }
        })
        .collect();
    let mut counts = Counts::new();
    for groups in groups_of.values() {
        let mut values: HashMap<&str, HashSet<i64>> = HashMap::new();
        for p in &policies {
            let reached = p.include.iter().any(|g| groups.contains(g))
                && !p.exclude.iter().any(|g| groups.contains(g));
            if reached {
                for (s, v) in &p.settings {
                    values.entry(s).or_default().insert(*v);
                }
            }
        }
        for (s, v) in values {
            if v.len() > 1 {
                *counts.entry(s.to_string()).or_default() += 1;
            }
        }
    }
    counts
}

/// DuckDB's counts, or None when it is not installed here (never under CI).
fn duckdb_counts(dir: &Path) -> Option<Counts> {
    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "scripts",
        "duckdb-conflicts",
    ]
    .iter()
    .collect();
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg("--counts")
        .arg(dir)
        .output();
    let missing = match &out {
        Err(e) => Some(format!("python3: {e}")),
        Ok(o) if o.status.code() == Some(3) => Some(String::from_utf8_lossy(&o.stderr).into()),
        Ok(_) => None,
    };
    if let Some(why) = missing {
        assert!(
            std::env::var_os("CI").is_none(),
            "DuckDB is needed under CI (.ci/run installs it): {why}"
        );
        eprintln!("skipped the DuckDB comparison: {}", why.trim());
        return None;
    }
    let out = out.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(from_csv(&out.stdout, false))
}

#[test]
fn per_setting_conflict_counts_match_a_naive_oracle_and_duckdb() {
    let root = tempfile::tempdir().unwrap();
    // Dense (200 groups of about 100 devices) and the anchor's own shape
    // (2,000 groups of about 10), so both many and few overlaps are met.
    for (groups, policies, least) in [("200", "200", 500), ("2000", "1000", 100)] {
        let dir = root.path().join(format!("random-{groups}"));
        generate(&dir, groups, policies);
        let ours = ringmaster_counts(&dir);
        let expected = oracle(&dir);
        assert!(
            expected.len() >= least,
            "{groups} groups: only {} settings in conflict",
            expected.len()
        );
        assert_eq!(
            ours, expected,
            "{groups} groups: ringmaster against the oracle"
        );
        if let Some(duck) = duckdb_counts(&dir) {
            assert_eq!(duck, expected, "{groups} groups: DuckDB against the oracle");
        }
    }
}
