//! A wave's figures as every screen shows them: `ringmaster status`, the
//! API and the dashboard's overview and wave pages all read them here, so
//! the same wave never shows two sets of numbers.
//!
//! A finished wave shows what its last gate round judged. Its live counts
//! can drift from that, or empty: a device's latest report belongs to the
//! latest wave holding it, so once the combined pilot starts, the isolated
//! pilot's devices report for the combined one, and the isolated pilot
//! would show "0 reported" beside a verdict that passed it on 49 of 50.

use ringmaster_core::wave::WaveState;
use ringmaster_store::{StateCounts, Store, StoreError, WaveRow};
use serde::Serialize;

/// How far a wave has got: its devices, what they reported (each device
/// counted once, by its latest state), and the help desk's tickets and
/// pilot feedback attributed to it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct WaveFigures {
    /// Members of the wave.
    pub devices: u64,
    /// Members with a report, in any state.
    pub reported: u64,
    pub succeeded: u64,
    pub errors: u64,
    pub conflicts: u64,
    pub not_applicable: u64,
    /// Members whose latest report says the policies are still pending.
    pub pending: u64,
    /// Members without any report yet.
    pub not_reported: u64,
    /// Help-desk tickets attributed to the wave.
    pub tickets: u64,
    pub feedback_answers: u64,
    /// Mean feedback score (1 to 5), None without answers.
    pub feedback_mean: Option<f64>,
    /// When the reports shown were judged: the last gate round of a
    /// finished wave. None: they are the latest reports.
    pub judged_at: Option<jiff::Timestamp>,
}

impl WaveFigures {
    /// The figures of a wave of `devices` members from its report counts,
    /// tickets and feedback (answers and the sum of their scores).
    pub fn new(devices: u64, c: &StateCounts, tickets: u64, answers: u64, score_sum: f64) -> Self {
        let reported = c.reported();
        WaveFigures {
            devices,
            reported,
            succeeded: c.succeeded,
            errors: c.error,
            conflicts: c.conflict,
            not_applicable: c.not_applicable,
            pending: c.pending,
            not_reported: devices.saturating_sub(reported),
            tickets,
            feedback_answers: answers,
            feedback_mean: (answers > 0).then(|| score_sum / answers as f64),
            judged_at: None,
        }
    }
}

/// The figures of the wave in `row`, read from the store: the reports its
/// last gate round judged when it is finished, else the latest ones.
pub async fn wave_figures(store: &dyn Store, row: &WaveRow) -> Result<WaveFigures, StoreError> {
    let judged = if row.state.is_final() {
        store.counts_series(&row.key).await?.pop()
    } else {
        None
    };
    let (judged_at, counts) = match judged {
        Some((at, counts)) => (Some(at), counts),
        None => (None, live_counts(store, row).await?),
    };
    let (tickets, answers, sum) = store
        .wave_tickets_feedback(&row.key.rollout, row.key.idx, None)
        .await?;
    Ok(WaveFigures {
        judged_at,
        ..WaveFigures::new(row.members.len(), &counts, tickets, answers, sum)
    })
}

/// The latest reports of the wave in `row` under its own plan version:
/// those since it last started applying in that version, as its gates
/// count them. Reports are stored per wave position, not per version, so
/// without this bound a wave of an edited plan would show the reports its
/// predecessor at the same position collected. A wave that has not started
/// in this version has none; one carried over from an earlier version
/// (passed there, never started here) keeps every report of its devices.
pub async fn live_counts(store: &dyn Store, row: &WaveRow) -> Result<StateCounts, StoreError> {
    let started = store
        .history(&row.key.rollout)
        .await?
        .into_iter()
        .filter(|h| h.key == row.key && h.to == WaveState::Applying)
        .map(|h| h.at)
        .next_back();
    match started {
        Some(since) => {
            store
                .wave_counts(&row.key.rollout, row.key.idx, Some(since))
                .await
        }
        None if row.state.is_final() => {
            store.wave_counts(&row.key.rollout, row.key.idx, None).await
        }
        None => Ok(StateCounts::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_and_not_reported_add_up_to_the_wave() {
        let c = StateCounts {
            succeeded: 90,
            error: 4,
            conflict: 1,
            pending: 3,
            not_applicable: 2,
        };
        let f = WaveFigures::new(120, &c, 7, 4, 14.0);
        assert_eq!(f.reported, 100);
        assert_eq!(f.not_reported, 20);
        assert_eq!(f.reported + f.not_reported, f.devices);
        assert_eq!((f.errors, f.conflicts, f.pending), (4, 1, 3));
        assert_eq!(f.feedback_mean, Some(3.5));
        assert_eq!(WaveFigures::new(5, &c, 0, 0, 0.0).feedback_mean, None);
    }
}
