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
use std::path::PathBuf;

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
