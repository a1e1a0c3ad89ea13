//! Simulated rollouts with a known truth, to measure gates: how often they
//! promote a harmful wave, hold a harmless one, and how fast they catch
//! harm. Each run is one wave of devices in equal-sized models, checked
//! every simulated hour with the real [`gates::evaluate`] and
//! [`gates::decide`]; seeded, so every machine gets the same table.

use crate::gates::{self, Control, Decision, FailureCount, GatePolicy, Judging, Observed, Outcome};
use crate::goals::{Goal, GoalDraft, validate};
use crate::sequential::Rng;
use crate::strata;

/// What is true in a simulated rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The change does no harm.
    Harmless,
    /// No harm, but tickets triple fleet-wide for two days (a Patch Tuesday).
    FleetSurge,
    /// Twice the error rate on every device.
    DoubleErrors,
    /// Five times the error rate on one model, 5 % of the fleet.
    OneModel,
    /// Three more tickets per 1,000 devices a day on the wave.
    ExtraTickets,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Harmless,
        Scenario::FleetSurge,
        Scenario::DoubleErrors,
        Scenario::OneModel,
        Scenario::ExtraTickets,
    ];

    pub fn harmful(self) -> bool {
        !matches!(self, Scenario::Harmless | Scenario::FleetSurge)
    }

    pub fn label(self) -> &'static str {
        match self {
            Scenario::Harmless => "harmless",
            Scenario::FleetSurge => "harmless + fleet-wide ticket surge",
            Scenario::DoubleErrors => "(a) 2x error rate everywhere",
            Scenario::OneModel => "(b) 5x errors on a 5 % model",
            Scenario::ExtraTickets => "(c) +3 tickets/1000 devices/day",
        }
    }
}

/// The gate under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Point estimates against fixed bars, every hour.
    Point,
    /// Wilson 1.96 against fixed bars, every hour.
    Wilson,
    /// Confidence sequences, tickets against the control, per model.
    Sequential,
}

impl Gate {
    pub fn label(self) -> &'static str {
        match self {
            Gate::Point => "old: point estimate",
            Gate::Wilson => "old: Wilson 1.96",
            Gate::Sequential => "new: sequential + control + strata",
        }
    }
}

/// The size of the simulation.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub runs: u32,
    pub devices: u32,
    pub control_devices: u32,
    pub models: u32,
    pub hours: u32,
    pub seed: u64,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            runs: 1000,
            devices: 10_000,
            control_devices: 40_000,
            models: 20,
            hours: 168,
            seed: 21,
        }
    }
}

/// Error share of a healthy device, and tickets per 1,000 device-days.
const BASE_ERROR: f64 = 0.01;
const BASE_TICKETS: f64 = 5.0;
/// Hours the wave bakes before it may pass.
const BAKE_HOURS: f64 = 48.0;

/// What the runs of one scenario under one gate came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    pub scenario: Scenario,
    pub gate: Gate,
    pub runs: u32,
    /// The whole wave passed.
    pub promoted: u32,
    /// The wave failed, or (sequential) a stratum was held.
    pub stopped: u32,
    /// Hours to the first stop, per stopped run.
    pub hours_to_stop: Vec<u32>,
}

impl Tally {
    pub fn median_hours(&self) -> Option<u32> {
        let mut h = self.hours_to_stop.clone();
        h.sort_unstable();
        h.get(h.len() / 2).copied()
    }
}

fn goal(metric: &str, threshold: &str) -> Goal {
    let draft = GoalDraft {
        metric: Some(metric),
        threshold: Some(threshold),
        window: Some("7d"),
        min_sample: Some(100),
        deadline: Some("14d"),
        after: None,
        critical: true,
    };
    match validate(&draft, 1.0, None) {
        Ok(g) => g,
        Err(e) => unreachable!("the simulation's own goal {metric} {threshold}: {e}"),
    }
}

/// The goals a gate judges: errors ≤ 1.5 %, and tickets ≤ 8 per 1,000
/// device-days (old) or ≤ control + 2 (new).
pub fn goals(gate: Gate) -> Vec<Goal> {
    vec![
        goal("error_rate", "<= 1.5%"),
        if gate == Gate::Sequential {
            goal("tickets_per_1000_device_days", "<= control + 2")
        } else {
            goal("tickets_per_1000_device_days", "<= 8")
        },
    ]
}

fn policy(gate: Gate) -> GatePolicy {
    GatePolicy {
        judging: match gate {
            Gate::Point => Judging::Point,
            Gate::Wilson => Judging::Wilson,
            Gate::Sequential => Judging::Sequential,
        },
        ..GatePolicy::default()
    }
}

/// One run: returns Some(hour) of the first stop, or None; and whether it
/// was promoted.
fn run(scenario: Scenario, gate: Gate, setup: &Setup, rng: &mut Rng) -> (Option<u32>, bool) {
    let models = setup.models as usize;
    let hours = setup.hours as usize;
    // Reports arriving per hour (in the first day) per model: (devices, errors).
    let mut arrivals = vec![(0u64, 0u64); models * 24];
    let mut sizes = vec![0u64; models];
    for d in 0..setup.devices as u64 {
        let m = (d % models as u64) as usize;
        let p = match scenario {
            Scenario::DoubleErrors => 2.0 * BASE_ERROR,
            Scenario::OneModel if m == 0 => 5.0 * BASE_ERROR,
            _ => BASE_ERROR,
        };
        let h = rng.below(24) as usize;
        let slot = &mut arrivals[m * 24 + h];
        slot.0 += 1;
        slot.1 += u64::from(rng.bernoulli(p));
        sizes[m] += 1;
    }
    let goals = goals(gate);
    let policy = policy(gate);
    let mut per_model = vec![Observed::default(); models];
    for (m, o) in per_model.iter_mut().enumerate() {
        o.devices = sizes[m];
    }
    let mut wave = Observed {
        devices: setup.devices as u64,
        ..Observed::default()
    };
    let (mut control_tickets, mut control_days) = (0u64, 0.0f64);
    let mut failures = vec![FailureCount::default(); goals.len()];
    let today = jiff::civil::date(2027, 1, 1);
    for hour in 0..hours {
        if hour < 24 {
            for (m, o) in per_model.iter_mut().enumerate() {
                let (n, k) = arrivals[m * 24 + hour];
                o.reported += n;
                o.errors += k;
                o.succeeded += n - k;
                wave.reported += n;
                wave.errors += k;
                wave.succeeded += n - k;
            }
        }
        // Tickets this hour, per 1,000 device-days.
        let surge = scenario == Scenario::FleetSurge && (24..72).contains(&hour);
        let base = if surge {
            3.0 * BASE_TICKETS
        } else {
            BASE_TICKETS
        };
        let treated = base
            + if scenario == Scenario::ExtraTickets {
                3.0
            } else {
                0.0
            };
        let day = 1.0 / 24.0;
        wave.tickets += rng.poisson(treated * setup.devices as f64 / 1000.0 * day);
        wave.device_days += setup.devices as f64 * day;
        control_tickets += rng.poisson(base * setup.control_devices as f64 / 1000.0 * day);
        control_days += setup.control_devices as f64 * day;
        wave.control = Control::Measured {
            tickets: control_tickets,
            device_days: control_days,
        };
        let at = (hour + 1) as f64;
        wave.hours_since_start = at;
        wave.round = hour as u32 + 1;
        let evals: Vec<_> = goals
            .iter()
            .map(|g| gates::evaluate(g, &wave, &policy, None))
            .collect();
        for (f, e) in failures.iter_mut().zip(&evals) {
            f.record(e.outcome);
        }
        if gate == Gate::Sequential {
            let rows: Vec<(String, Observed)> = per_model
                .iter()
                .enumerate()
                .map(|(m, o)| {
                    let mut o = o.clone();
                    o.round = wave.round;
                    (format!("model {m}"), o)
                })
                .collect();
            // Only the error goal is judged per model: tickets are too few.
            if strata::judge(&goals[..1], &rows, 200, &policy)
                .iter()
                .any(|s| s.held)
            {
                return (Some(hour as u32 + 1), false);
            }
        }
        match gates::decide(
            &goals,
            &evals,
            &failures,
            &policy,
            at >= BAKE_HOURS,
            at,
            today,
        ) {
            Decision::Fail { .. } => return (Some(hour as u32 + 1), false),
            Decision::Pass { .. } => return (None, true),
            _ => {}
        }
        debug_assert!(evals.iter().all(|e| e.outcome != Outcome::Error));
    }
    (None, false)
}

/// Runs every scenario under every gate.
pub fn simulate(setup: &Setup) -> Vec<Tally> {
    let mut out = Vec::new();
    for scenario in Scenario::ALL {
        for gate in [Gate::Point, Gate::Wilson, Gate::Sequential] {
            // The same truth for each gate: the seed depends on the scenario only.
            let mut rng = Rng::new(setup.seed ^ crate::fnv1a(scenario.label().bytes()));
            let mut t = Tally {
                scenario,
                gate,
                runs: setup.runs,
                promoted: 0,
                stopped: 0,
                hours_to_stop: Vec::new(),
            };
            for _ in 0..setup.runs {
                let (stop, promoted) = run(scenario, gate, setup, &mut rng);
                t.promoted += u32::from(promoted);
                if let Some(h) = stop {
                    t.stopped += 1;
                    t.hours_to_stop.push(h);
                }
            }
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_gate_holds_less_wrongly_and_catches_what_the_old_misses() {
        let setup = Setup {
            runs: 12,
            devices: 10_000,
            control_devices: 40_000,
            models: 20,
            hours: 96,
            seed: 5,
        };
        let t = simulate(&setup);
        let get = |s: Scenario, g: Gate| t.iter().find(|x| x.scenario == s && x.gate == g).unwrap();
        // The surge stops the old gates (fixed ticket bar) but not the control-aware one.
        assert!(get(Scenario::FleetSurge, Gate::Point).stopped >= 10);
        assert!(get(Scenario::FleetSurge, Gate::Sequential).stopped <= 1);
        // Harmless rollouts are not stopped by the new gate.
        assert!(get(Scenario::Harmless, Gate::Sequential).stopped <= 1);
        // One broken model is near invisible on the whole wave (Wilson), and held per model.
        assert!(get(Scenario::OneModel, Gate::Wilson).stopped <= 2);
        assert!(get(Scenario::OneModel, Gate::Sequential).stopped >= 6);
        // Doubled errors (2 % against a bar of 1.5 %) are caught by every gate,
        // later by the sequence, which pays for looking every hour.
        assert!(get(Scenario::DoubleErrors, Gate::Sequential).stopped >= 5);
        assert_eq!(get(Scenario::DoubleErrors, Gate::Wilson).stopped, 12);
    }
}
