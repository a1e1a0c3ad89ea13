//! The import snapshot changes nothing but speed: each command prints the
//! same bytes cold (importing) and warm (reading the snapshot), and a
//! changed export or a damaged snapshot leads to a fresh import.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

/// How a run loaded its organization, from the debug line `load_org` logs.
#[derive(Debug, PartialEq, Eq)]
enum Came {
    Import,
    Snapshot,
}

struct Run {
    stdout: Vec<u8>,
    stderr: String,
    came: Came,
}

fn run(cache: &Path, cwd: &Path, args: &[&str], snapshot: bool) -> Run {
    let mut c = Command::cargo_bin("ringmaster").unwrap();
    c.current_dir(cwd)
        .env("RINGMASTER_NOW", "2026-11-24T12:00:00Z")
        .env("RINGMASTER_CACHE_DIR", cache)
        .env("RUST_LOG", "ringmaster=debug")
        .env("NO_COLOR", "1")
        .args(args);
    if !snapshot {
        c.arg("--no-snapshot");
    }
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: {stderr}"
    );
    let came = if stderr.contains("from_snapshot=true") {
        Came::Snapshot
    } else {
        assert!(
            stderr.contains("from_snapshot=false") || !snapshot,
            "{stderr}"
        );
        Came::Import
    };
    Run {
        stdout: out.stdout,
        stderr,
        came,
    }
}

/// Runs `args` without a snapshot, then twice with one (the first writes
/// it unless an earlier command on the same sources did, the second reads
/// it), and checks all three print the same bytes.
fn same_cold_and_warm(cache: &Path, cwd: &Path, args: &[&str]) {
    let reference = run(cache, cwd, args, false);
    let first = run(cache, cwd, args, true);
    let warm = run(cache, cwd, args, true);
    assert_eq!(warm.came, Came::Snapshot, "{args:?}: {}", warm.stderr);
    for (name, r) in [("first", &first), ("warm", &warm)] {
        assert!(
            r.stdout == reference.stdout,
            "{args:?}: {name} run differs:\n{}\n---- without snapshot:\n{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&reference.stdout)
        );
    }
    assert!(!reference.stdout.is_empty(), "{args:?}");
}

/// The display name of the first device in a generated fleet.
fn some_device(org: &Path) -> String {
    let text = std::fs::read_to_string(org.join("managedDevices.ndjson")).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    first["deviceName"].as_str().unwrap().to_string()
}

fn snapshots(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect()
}

#[test]
fn commands_print_the_same_from_a_snapshot() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    let dir = d.path();
    Command::cargo_bin("ringmaster")
        .unwrap()
        .args(["gen", "--devices", "3000", "--seed", "7", "--proposed"])
        .arg(dir.join("proposed"))
        .arg(dir.join("org"))
        .assert()
        .success();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/ringmaster.toml");
    // The example's bars suit the demo's 6,000 devices; at 3,000 the Legal
    // wave cannot prove them.
    let text = std::fs::read_to_string(example).unwrap().replacen(
        "kind = \"enterprise\"\n",
        "kind = \"enterprise\"\njudging = \"point\"\n",
        1,
    );
    std::fs::write(dir.join("ringmaster.toml"), text).unwrap();
    let device = some_device(&dir.join("org"));
    assert_eq!(
        run(&cache, dir, &["org", "--org", "org"], true).came,
        Came::Import
    );
    std::fs::remove_dir_all(&cache).unwrap();
    same_cold_and_warm(&cache, dir, &["org", "--org", "org"]);
    same_cold_and_warm(&cache, dir, &["org", "--json", "--org", "org"]);
    same_cold_and_warm(&cache, dir, &["conflicts", "--org", "org"]);
    same_cold_and_warm(
        &cache,
        dir,
        &["conflicts", "--format", "json", "--org", "org"],
    );
    same_cold_and_warm(
        &cache,
        dir,
        &["explain", "--org", "org", "--device", &device],
    );
    same_cold_and_warm(
        &cache,
        dir,
        &["explain", "--json", "--org", "org", "--device", &device],
    );
    // The plan names its org `org` from its own folder: the same snapshot.
    same_cold_and_warm(&cache, dir, &["plan", "ringmaster.toml"]);
    same_cold_and_warm(
        &cache,
        dir,
        &["plan", "--format", "json", "ringmaster.toml"],
    );
    assert_eq!(snapshots(&cache).len(), 1);
}

#[test]
fn corpus_exports_print_the_same_from_a_snapshot() {
    let Some(exports) = ringmaster_import::corpus("exports") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    ringmaster_gen::generate(
        &d.path().join("fleet"),
        &ringmaster_gen::Options::new(400, 5),
    )
    .unwrap();
    let exports = exports.to_str().unwrap();
    // Real exports carry files ringmaster skips and warns about: the notes
    // come back from the snapshot too.
    let args = ["org", "--org", "fleet", "--org", exports];
    same_cold_and_warm(&cache, d.path(), &args);
    let report = run(&cache, d.path(), &args, true);
    assert!(
        String::from_utf8_lossy(&report.stdout).contains("skipped"),
        "the corpus has files ringmaster does not read"
    );
    same_cold_and_warm(
        &cache,
        d.path(),
        &[
            "conflicts",
            "--assume-all-devices",
            "--format",
            "json",
            "--org",
            "fleet",
            "--org",
            exports,
        ],
    );
}

#[test]
fn a_changed_export_or_a_damaged_snapshot_is_imported_again() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("cache");
    let org = d.path().join("org");
    ringmaster_gen::generate(&org, &ringmaster_gen::Options::new(300, 5)).unwrap();
    let args = ["org", "--org", "org"];
    let cwd = d.path();
    assert_eq!(run(&cache, cwd, &args, true).came, Came::Import);
    let before = run(&cache, cwd, &args, true);
    assert_eq!(before.came, Came::Snapshot);

    // One user fewer: the snapshot is stale and must not be used.
    let users = org.join("users.ndjson");
    let text = std::fs::read_to_string(&users).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(&users, kept[..kept.len() - 1].join("\n") + "\n").unwrap();
    let after = run(&cache, cwd, &args, true);
    assert_eq!(after.came, Came::Import, "{}", after.stderr);
    assert_ne!(after.stdout, before.stdout);
    assert_eq!(
        after.stdout,
        run(&cache, cwd, &args, false).stdout,
        "the re-import is what an import without snapshot prints"
    );
    assert_eq!(run(&cache, cwd, &args, true).came, Came::Snapshot);

    // A file added beside the exports (skipped, but listed) also changes the key.
    std::fs::write(org.join("notes.txt"), "hello").unwrap();
    let added = run(&cache, cwd, &args, true);
    assert_eq!(added.came, Came::Import);
    assert!(String::from_utf8_lossy(&added.stdout).contains("notes.txt"));

    let all = snapshots(&cache);
    assert_eq!(all.len(), 1, "{all:?}");
    let snap = &all[0];
    let good = std::fs::read(snap).unwrap();
    let reference = run(&cache, cwd, &args, false).stdout;
    // The trailer: the skeleton's length, a CRC-32, the file's length.
    let skeleton_len =
        u64::from_le_bytes(good[good.len() - 20..][..8].try_into().unwrap()) as usize;
    let skeleton_at = good.len() - 20 - skeleton_len;
    let mut flipped = good.clone();
    flipped[skeleton_at + skeleton_len / 2] ^= 0x40;
    let mut foreign = good.clone();
    foreign[8] = foreign[8].wrapping_add(1);
    let damages: [(&str, Vec<u8>, &str); 4] = [
        (
            "a flipped byte in the skeleton",
            flipped,
            "checksum mismatch",
        ),
        (
            "a truncation",
            good[..good.len() * 2 / 3].to_vec(),
            "truncated",
        ),
        ("another format version", foreign, "format version"),
        (
            "a foreign file",
            b"not a snapshot at all".to_vec(),
            "not a ringmaster snapshot",
        ),
    ];
    for (what, bytes, why) in damages {
        std::fs::write(snap, &bytes).unwrap();
        let r = run(&cache, cwd, &args, true);
        assert_eq!(r.came, Came::Import, "{what}: {}", r.stderr);
        assert!(r.stderr.contains(why), "{what}: {}", r.stderr);
        assert_eq!(r.stdout, reference, "{what}");
        // It was written anew, and is read again.
        assert_eq!(run(&cache, cwd, &args, true).came, Came::Snapshot, "{what}");
    }

    // Columns are checked when a command first reads them, not on opening:
    // with a byte flipped in every 4 KiB of them, the command stops with
    // the reason and removes the snapshot, and the next run imports again.
    let mut flipped = good.clone();
    for at in (4096..skeleton_at).step_by(4096) {
        flipped[at] ^= 0x40;
    }
    std::fs::write(snap, &flipped).unwrap();
    let out = Command::cargo_bin("ringmaster")
        .unwrap()
        .current_dir(cwd)
        .env("RINGMASTER_NOW", "2026-11-24T12:00:00Z")
        .env("RINGMASTER_CACHE_DIR", &cache)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: the import snapshot") && stderr.contains("checksum mismatch"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing printed from damaged data");
    assert!(!snap.exists(), "the damaged snapshot is removed");
    let again = run(&cache, cwd, &args, true);
    assert_eq!(again.came, Came::Import);
    assert_eq!(again.stdout, reference);
}
