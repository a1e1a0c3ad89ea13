pub mod bench;
pub mod bench_gates;
pub mod conflicts;
pub mod demo;
pub mod explain;
pub mod gen_org;
pub mod init;
pub mod intune;
pub mod org;
pub mod plan;
pub mod rules;
pub mod run;

use anyhow::Context;
use ringmaster_import::snapshot::SnapshotCache;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where import snapshots are kept for this run; `None` when they are off.
static SNAPSHOTS: OnceLock<Option<SnapshotCache>> = OnceLock::new();

/// Sets where [`load_org`] keeps snapshots (`--no-snapshot`, `--cache-dir`).
pub fn use_snapshots(on: bool, cache_dir: Option<PathBuf>) {
    let cache = on
        .then(|| cache_dir.or_else(SnapshotCache::default_dir))
        .flatten()
        .map(|d| SnapshotCache::new(d.join("snapshots")));
    let _ = SNAPSHOTS.set(cache);
}

/// Imports the organization, through its snapshot when one is current.
/// Notes about a snapshot passed over go to stderr; stdout stays the same
/// whichever way the organization came.
pub fn load_org(paths: &[PathBuf]) -> anyhow::Result<ringmaster_import::Loaded> {
    let _purge = PurgeAtOnce::new();
    let failed = |e| crate::UserError(format!("import failed: {e}"));
    let progress = std::sync::Arc::default();
    let Some(Some(cache)) = SNAPSHOTS.get() else {
        return crate::progress::watch(&progress, || {
            ringmaster_import::load_with(paths, &progress)
        })
        .map_err(|e| failed(e).into());
    };
    let got =
        crate::progress::watch(&progress, || cache.load_with(paths, &progress)).map_err(failed)?;
    for n in &got.notes {
        eprintln!("note: {n}");
    }
    tracing::debug!(from_snapshot = got.from_snapshot, "organization loaded");
    Ok(got.loaded)
}

/// [`ringmaster_import::load`] with freed memory given back at once
/// ([`PurgeAtOnce`]), for imports that take no snapshot.
pub fn import(
    paths: &[PathBuf],
) -> Result<ringmaster_import::Loaded, ringmaster_import::ImportError> {
    let _purge = PurgeAtOnce::new();
    ringmaster_import::load(paths)
}

/// mimalloc's `mi_option_purge_delay` (v3's `mimalloc.h`; libmimalloc-sys
/// does not name it). The build fails if the option list changes, rather
/// than setting another option.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const _: () = assert!(libmimalloc_sys::_mi_option_last == 47);

/// While it lives, memory goes back to the system as soon as it is freed.
/// An import frees about as much as it keeps (parse buffers, vectors that
/// grew), and mimalloc's default of holding freed memory for a second put
/// about 100 MB on the peak of a 1M-device import. After it, the default
/// comes back: analyses that free and allocate again would pay in system
/// time (warm `org` at 1M took 0.1 s more when whole commands purged at
/// once).
struct PurgeAtOnce(std::ffi::c_long);

#[allow(unsafe_code)]
impl PurgeAtOnce {
    fn new() -> Self {
        // SAFETY: reads and sets an integer option; mimalloc keeps options
        // in atomics and allows them to change at any time.
        unsafe {
            let before = libmimalloc_sys::mi_option_get(PURGE_DELAY);
            libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
            PurgeAtOnce(before)
        }
    }
}

#[allow(unsafe_code)]
impl Drop for PurgeAtOnce {
    fn drop(&mut self) {
        // SAFETY: as in `new`.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, self.0) }
    }
}

/// The commented example plan (`examples/demo/ringmaster.toml`): the demo
/// writes it next to its organization, `init --example` where asked. It
/// reads `org/` and `proposed/` beside itself, as `gen --proposed` writes them.
pub const EXAMPLE_PLAN: &str = include_str!("../../../examples/demo/ringmaster.toml");

/// Where the organization comes from, shared by every command that needs one.
#[derive(clap::Args, Debug)]
pub struct OrgArgs {
    /// Folder(s) or file(s) of exports: IntuneManagement folders, IntuneCD
    /// backups, Graph JSON pages or NDJSON, CSV.
    #[arg(long = "org", required = true, value_name = "DIR")]
    pub org: Vec<PathBuf>,
    /// Evaluate time-relative rules (`system.now`) at this instant instead of now.
    #[arg(long, value_name = "RFC3339", env = "RINGMASTER_NOW")]
    pub now: Option<jiff::Timestamp>,
}

impl OrgArgs {
    pub fn now(&self) -> jiff::Timestamp {
        self.now.unwrap_or_else(jiff::Timestamp::now)
    }
}

/// Reads a text file the user named, refusing one larger than `max` bytes
/// (`advice` is added to that message, e.g. "; split it").
pub fn read_bounded(path: &std::path::Path, max: u64, advice: &str) -> anyhow::Result<String> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > max {
        return Err(crate::UserError(format!(
            "{}: larger than {max} bytes{advice}",
            path.display()
        ))
        .into());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // Windows tools (PowerShell's Out-File, Excel) write UTF-16: read it as `org` does.
    ringmaster_import::decode_text(bytes)
        .map_err(|e| crate::UserError(format!("{}: {e}", path.display())).into())
}

pub fn write_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    let s = serde_json::to_string_pretty(v).context("serialising output")?;
    println!("{s}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn purging_at_once_lasts_while_the_guard_lives() {
        // SAFETY: reads an integer option.
        let now = || unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        let before = now();
        assert_ne!(before, 0, "mimalloc's default delays purging");
        {
            let _purge = PurgeAtOnce::new();
            assert_eq!(now(), 0);
        }
        assert_eq!(now(), before);
    }
}
