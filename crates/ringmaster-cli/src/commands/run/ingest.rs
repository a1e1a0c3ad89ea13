//! `ringmaster ingest`: device states, help-desk tickets or pilot feedback
//! read from a file and tied to the waves they belong to.

use super::{Where, open, runtime};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Device policy states (JSON, NDJSON, or Intune's per-policy CSV).
    Status,
    /// Help-desk tickets (ServiceNow, Zendesk or Jira exports).
    Tickets,
    /// Pilot feedback (score 1 to 5 and a comment).
    Feedback,
}

#[derive(clap::Args)]
pub struct IngestArgs {
    #[arg(value_enum)]
    pub kind: Kind,
    /// The file to read.
    pub input: PathBuf,
    #[command(flatten)]
    pub at: Where,
    /// The policy a one-policy status export is about.
    #[arg(long)]
    pub policy: Option<String>,
    /// How long after a wave starts its tickets and answers count for it.
    #[arg(long, default_value = "7d")]
    pub window: String,
    /// Count only tickets that mention one of these words (repeatable).
    #[arg(long)]
    pub hint: Vec<String>,
}

/// Largest file ingested at once.
const MAX_INGEST_BYTES: u64 = 1 << 30;

pub fn ingest(a: IngestArgs) -> anyhow::Result<ExitCode> {
    use ringmaster_engine::ingest;
    let text = crate::commands::read_bounded(&a.input, MAX_INGEST_BYTES, "; split it")?;
    let window = ringmaster_core::goals::parse_hours(&a.window).ok_or_else(|| {
        crate::UserError(format!(
            "--window `{}` is not a duration such as 7d",
            a.window
        ))
    })?;
    let shown = a.input.display().to_string();
    let bad_file = |e: String| crate::UserError(format!("{shown}: {e}"));
    runtime()?.block_on(async {
        let o = open(&a.at, jiff::Timestamp::now()).await?;
        let store = o.store.clone();
        let attr = o
            .engine
            .attribution(jiff::SignedDuration::from_secs((window * 3600.0) as i64), &a.hint)
            .await?;
        let dir = ingest::Directory::new(&o.loaded.org);
        let (kept, dups, rejected, unattributed) = match a.kind {
            Kind::Status => {
                let (mut recs, bad) = ingest::statuses(&text, a.policy.as_deref()).map_err(bad_file)?;
                let none = dir.attribute_statuses(&attr, &mut recs);
                let got = store.ingest_status(&o.rollout, &recs).await?;
                (got.inserted, got.duplicates, bad, none)
            }
            Kind::Tickets => {
                let (mut recs, bad) = ingest::tickets(&text).map_err(bad_file)?;
                let none = dir.attribute_tickets(&attr, &mut recs);
                let got = store.ingest_tickets(&o.rollout, &recs).await?;
                (got.inserted, got.duplicates, bad, none)
            }
            Kind::Feedback => {
                let (mut recs, bad) = ingest::feedback(&text).map_err(bad_file)?;
                let none = dir.attribute_feedback(&attr, &mut recs);
                let got = store.ingest_feedback(&o.rollout, &recs).await?;
                (got.inserted, got.duplicates, bad, none)
            }
        };
        if a.at.json {
            crate::commands::write_json(&serde_json::json!({
                "file": shown, "inserted": kept, "duplicates": dups,
                "rejected": rejected, "not_in_a_started_wave": unattributed,
            }))?;
        } else {
            println!(
                "{shown}: {kept} new, {dups} already stored, {} rejected; {unattributed} not tied to a started wave",
                rejected.len()
            );
            for r in rejected.iter().take(20) {
                println!("  record {}: {}", r.record, r.reason);
            }
            if rejected.len() > 20 {
                println!("  … and {} more", rejected.len() - 20);
            }
        }
        Ok(if rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}
