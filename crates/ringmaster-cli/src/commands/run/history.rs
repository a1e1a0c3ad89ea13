//! `ringmaster history`: every transition of the rollout, with who and why.

use super::{Stored, Where, runtime, stamp, stored};
use std::process::ExitCode;

pub fn history(at: Where) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let Stored { store, rollout, .. } = stored(&at).await?;
        let history = store.history(&rollout).await?;
        // Transitions are on the rollout's clock; a simulated one is said.
        let mark = if ringmaster_store::simulated(store.as_ref(), &rollout).await? {
            " (simulated)"
        } else {
            ""
        };
        if at.json {
            // Each entry says whether its time is the simulation's.
            let mut out = serde_json::to_value(&history)?;
            for e in out.as_array_mut().into_iter().flatten() {
                if let Some(o) = e.as_object_mut() {
                    o.insert("simulated".into(), (!mark.is_empty()).into());
                }
            }
            crate::commands::write_json(&out)?;
            return Ok(ExitCode::SUCCESS);
        }
        for h in history {
            println!(
                "{}{mark}  {:<10} wave {} (v{}): {} → {}: {}",
                stamp(h.at),
                h.actor,
                h.key.idx + 1,
                h.key.version,
                h.from.name(),
                h.to.name(),
                h.why
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}
