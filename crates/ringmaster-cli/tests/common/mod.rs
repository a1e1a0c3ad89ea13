//! What several test binaries of the CLI share.

use assert_cmd::cargo::CommandCargoExt;
use std::path::Path;
use std::process::Command;

/// `ringmaster` in `dir`, on the tests' fixed clock.
pub fn ringmaster(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("ringmaster").unwrap();
    c.current_dir(dir)
        .env("RINGMASTER_NOW", "2026-11-24T12:00:00Z");
    c
}

/// Polls `done` until it holds; fails the test after `secs` seconds (a
/// bound for a hung process, far above what a slow machine needs).
pub fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        assert!(
            std::time::Instant::now() < until,
            "{what}: not within {secs} s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
