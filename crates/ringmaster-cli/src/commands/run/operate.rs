//! `ringmaster approve`, `promote`, `pause`, `resume`, `abort`, `rollback`,
//! `retry` and `release`: an operator's action on one wave.

use super::{Where, open, runtime};
use ringmaster_core::wave::Event;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct WaveArgs {
    #[command(flatten)]
    pub at: Where,
    /// The wave, numbered as `status` shows it.
    #[arg(long)]
    pub wave: u32,
    /// Who acts (recorded in the audit log).
    #[arg(long, env = "USER", default_value = "operator")]
    pub actor: String,
    /// For `pause`: an override that expires after this long (e.g. 2d); the wave then resumes.
    #[arg(long = "for", value_name = "DURATION")]
    pub for_: Option<String>,
}

/// An operator's action on one wave.
pub fn operate(a: WaveArgs, event: Event) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let o = open(&a.at, jiff::Timestamp::now()).await?;
        // Operators act at the rollout's own time (the simulated clock, if any).
        let now = o
            .engine
            .polled_until()
            .await?
            .unwrap_or_else(jiff::Timestamp::now);
        let until = match &a.for_ {
            Some(d) => {
                let h = ringmaster_core::goals::parse_hours(d).ok_or_else(|| {
                    crate::UserError(format!("--for `{d}` is not a duration such as 2d"))
                })?;
                Some(now + jiff::SignedDuration::from_secs((h * 3600.0) as i64))
            }
            None => None,
        };
        let outcome = (o.engine)
            .operate_until(a.wave, event, &a.actor, now, until)
            .await?;
        report(a.at.json, a.wave, outcome)
    })
}

#[derive(clap::Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub at: Where,
    /// The wave that held the stratum, numbered as `status` shows it.
    #[arg(long)]
    pub wave: u32,
    /// The held stratum as `status` names it (`model Latitude 7440`).
    #[arg(long)]
    pub stratum: String,
    /// Who releases it (recorded in the audit log).
    #[arg(long, env = "USER", default_value = "operator")]
    pub actor: String,
}

/// Releases a held stratum: its devices may join the waves that start from
/// now on (never the wave that held it).
pub fn release(a: ReleaseArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let o = open(&a.at, jiff::Timestamp::now()).await?;
        let now = o
            .engine
            .polled_until()
            .await?
            .unwrap_or_else(jiff::Timestamp::now);
        let outcome = (o.engine)
            .release_stratum(a.wave, &a.stratum, &a.actor, now)
            .await?;
        report(a.at.json, a.wave, outcome)
    })
}

/// What an operator's action did, or why it was refused (a user error).
fn report(json: bool, wave: u32, outcome: Result<String, String>) -> anyhow::Result<ExitCode> {
    let line = outcome.map_err(crate::UserError)?;
    if json {
        crate::commands::write_json(&serde_json::json!({ "wave": wave, "done": line }))?;
    } else {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
