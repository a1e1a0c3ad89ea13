//! `ringmaster status`: where each wave stands; with `--run-state`, the
//! service levels over the whole scope and what drifted.

use super::{Stored, Where, describe, runtime, stamp, stored};
use ringmaster_core::approvals::{ApprovalRule, Tally};
use ringmaster_core::wave::WaveState;
use ringmaster_engine::engine::Engine;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub at: Where,
    /// The run state: service levels over every device in scope, and drift
    /// (regressions, newcomers without a report, OS builds or models that fail).
    #[arg(long)]
    pub run_state: bool,
}

/// `ringmaster status --run-state`: the run-state phase's goals (or the
/// usual service levels) judged over the whole scope, and what drifted.
pub fn run_state(at: Where) -> anyhow::Result<ExitCode> {
    let loaded = crate::commands::plan::load(&at.file, jiff::Timestamp::now())?;
    let org = &loaded.org;
    runtime()?.block_on(async {
        let Stored { store, rollout, version, rows } = stored(&at).await?;
        let now = Engine::polled_until_of(store.as_ref(), &rollout)
            .await?
            .unwrap_or_else(jiff::Timestamp::now);
        let dir = ringmaster_engine::ingest::Directory::new(org);
        let r = ringmaster_engine::runstate::assess(
            store.as_ref(),
            &rollout,
            &rows,
            &loaded.plan,
            org,
            &dir,
            now,
        )
        .await?;
        let label = |d: &u32| org.device_label(*d);
        if at.json {
            crate::commands::write_json(&serde_json::json!({
                "rollout": rollout, "version": version, "at": now,
                "devices": r.devices, "succeeded": r.succeeded, "errors": r.errors,
                "conflicts": r.conflicts, "pending": r.pending, "unreported": r.unreported,
                "service_levels": r.service_levels,
                "regressed": r.regressed.iter().map(label).collect::<Vec<_>>(),
                "overdue": r.overdue.iter().map(label).collect::<Vec<_>>(),
                "outliers": r.outliers,
            }))?;
        } else {
            println!("run state of {rollout} (version {version}) at {}", stamp(now));
            println!(
                "  {} devices in scope: {} succeeded, {} errors, {} conflicts, {} pending, {} not reported",
                r.devices, r.succeeded, r.errors, r.conflicts, r.pending, r.unreported
            );
            println!("service levels");
            for e in &r.service_levels {
                println!("  {:<8} {}", format!("{:?}", e.outcome).to_lowercase(), e.sentence);
            }
            let list = |title: &str, v: &[u32]| {
                println!("{title}: {}", v.len());
                for d in v.iter().take(10) {
                    println!("  {}", label(d));
                }
                if v.len() > 10 {
                    println!("  … and {} more (--json lists all)", v.len() - 10);
                }
            };
            list("were Succeeded, now Error or Conflict", &r.regressed);
            list("entered the scope and have not reported in time", &r.overdue);
            println!("outliers: {}", r.outliers.len());
            for o in &r.outliers {
                println!("  {}", o.sentence);
            }
        }
        Ok(if r.drifted() { ExitCode::from(1) } else { ExitCode::SUCCESS })
    })
}

pub fn status(at: Where) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let Stored {
            store,
            rollout,
            version,
            rows,
        } = stored(&at).await?;
        let polled = Engine::polled_until_of(store.as_ref(), &rollout).await?;
        let tenant_requests = store.tenant_approvals(&rollout).await?;
        let (_, spec) = crate::commands::plan::read(&at.file)?;
        let requester = store.requester(&rollout, version).await?;
        let holds: Vec<ringmaster_store::HeldStratum> = store
            .held_strata(&rollout)
            .await?
            .into_iter()
            .filter(|h| h.key.version == version)
            .collect();
        let held_of = |idx: u32| holds.iter().filter(move |h| h.key.idx == idx);
        let mut approvals = Vec::new();
        for r in &rows {
            let given: Vec<String> = store
                .approvals(&r.key)
                .await?
                .into_iter()
                .map(|a| a.approver)
                .collect();
            let t = ringmaster_core::approvals::tally(
                &rule_of(&spec, &r.phase),
                requester.as_deref(),
                &given,
            );
            approvals.push((given, t));
        }
        let mut waves = Vec::new();
        for r in &rows {
            // The figures the API and the dashboard show too.
            let f = ringmaster_engine::figures::wave_figures(store.as_ref(), r).await?;
            // The latest gate round of a wave being judged, one sentence each.
            // With the verdict those rounds come to, in one sentence.
            let (mut gates, mut verdict) = (None, None);
            if matches!(r.state, WaveState::Baking | WaveState::Paused { .. }) {
                let mut rounds = store.gate_rounds(&r.key).await?;
                verdict = ringmaster_core::gates::verdict(&rounds);
                gates = rounds.pop();
            }
            let tenant = ringmaster_engine::engine::approval_note(&tenant_requests, &r.key);
            waves.push((r, f, gates, verdict, tenant));
        }
        if at.json {
            let out: Vec<serde_json::Value> = waves
                .iter()
                .zip(&approvals)
                .map(|((r, f, gates, verdict, tenant), (given, t))| {
                    serde_json::json!({
                        "approvers": given,
                        "approval": (r.state == WaveState::AwaitingApproval).then(|| t.to_string()),
                        "wave": r.key.idx + 1, "name": r.name, "phase": r.phase,
                        "state": r.state, "state_text": describe(r.state),
                        "figures": f,
                        "gates": gates.iter().flat_map(|g| &g.results).collect::<Vec<_>>(),
                        "verdict": verdict,
                        "tenant_approval": tenant,
                        "held_strata": held_of(r.key.idx).map(held_json).collect::<Vec<_>>(),
                    })
                })
                .collect();
            crate::commands::write_json(&serde_json::json!({
                "rollout": rollout, "version": version, "reports_until": polled,
                "requester": requester, "waves": out,
            }))?;
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "version {}; reports read up to {}",
            version,
            polled.map(stamp).unwrap_or_else(|| "(nothing yet)".into())
        );
        println!(
            "  {:>2}  {:<34} {:>8}  {:>8} {:>9} {:>7} {:>7} {:>8}  state",
            "#", "wave", "devices", "reported", "succeeded", "errors", "pending", "tickets"
        );
        for ((r, f, gates, verdict, tenant), (given, t)) in waves.iter().zip(&approvals) {
            println!(
                "  {:>2}  {:<34} {:>8}  {:>8} {:>9} {:>7} {:>7} {:>8}  {}",
                r.key.idx + 1,
                r.name,
                f.devices,
                f.reported,
                f.succeeded,
                f.errors,
                f.pending,
                f.tickets,
                describe(r.state)
            );
            if let Some(t) = tenant {
                println!("        {t}");
            }
            if let Some(v) = verdict {
                println!("        verdict: {}", v.sentence);
            }
            for h in held_of(r.key.idx) {
                println!("        {}", held_line(h));
            }
            if let Some(g) = gates {
                for e in &g.results {
                    println!("        {} gate: {}", stamp(g.at), e.sentence());
                }
            }
            if let Some(line) = approval_line(r.state, requester.as_deref(), given, t) {
                println!("        {line}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The approval rule of a stored wave's phase, as the plan file says it
/// (stored phases are named as `PhaseKind` prints).
fn rule_of(spec: &ringmaster_plan::spec::PlanFile, phase: &str) -> ApprovalRule {
    let distinct = spec
        .approvals
        .distinct
        .as_ref()
        .is_some_and(|d| *d.get_ref());
    spec.phases
        .iter()
        .find(|p| format!("{:?}", p.kind.get_ref()) == phase)
        .filter(|p| p.needs_approval())
        .map_or_else(ApprovalRule::default, |p| ApprovalRule {
            required: p.approvers(),
            distinct,
        })
}

/// What `status` says of a wave's approvals: what is missing while it
/// waits, who approved once it has any.
fn approval_line(
    state: WaveState,
    requester: Option<&str>,
    given: &[String],
    t: &Tally,
) -> Option<String> {
    let requested = requester.map_or(String::new(), |r| format!("; requested by {r}"));
    if state == WaveState::AwaitingApproval {
        let so_far = if given.is_empty() {
            String::new()
        } else {
            format!("; approved so far by {}", given.join(", "))
        };
        return Some(format!("approval: {t}{so_far}{requested}"));
    }
    (!given.is_empty()).then(|| format!("approved by {}{requested}", given.join(", ")))
}

/// One line of `status` per held stratum, with its evidence.
pub(crate) fn held_line(h: &ringmaster_store::HeldStratum) -> String {
    let how = if h.rollback {
        "taken out of the wave"
    } else {
        "kept back, the policy stays"
    };
    let released = match (&h.released_by, h.released_at) {
        (Some(by), Some(at)) => format!(
            "; released by {by} at {}, free to join the waves that start after",
            stamp(at)
        ),
        _ => String::new(),
    };
    format!(
        "held: {} ({} devices, {how}, since {}){released}: {}",
        h.stratum,
        h.devices.len(),
        stamp(h.held_at),
        h.evidence
    )
}

fn held_json(h: &ringmaster_store::HeldStratum) -> serde_json::Value {
    serde_json::json!({
        "stratum": h.stratum, "devices": h.devices.len(), "evidence": h.evidence,
        "rollback": h.rollback, "held_at": h.held_at, "removed_at": h.removed_at,
        "released_at": h.released_at, "released_by": h.released_by,
    })
}
