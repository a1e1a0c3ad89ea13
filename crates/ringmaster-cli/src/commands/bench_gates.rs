//! `ringmaster bench gates`: old gates against new on simulated rollouts
//! with a known truth, and the time to judge a large wave per stratum.

use ringmaster_core::gates::{GatePolicy, Observed};
use ringmaster_core::gatesim::{self, Gate, Setup};
use ringmaster_core::sequential::Rng;
use ringmaster_core::strata;
use std::time::Instant;

pub fn run(runs: u32) -> anyhow::Result<()> {
    let setup = Setup {
        runs,
        ..Setup::default()
    };
    println!(
        "{} runs per row; wave of {} devices in {} models, control of {}, checked every hour for {} h",
        setup.runs, setup.devices, setup.models, setup.control_devices, setup.hours
    );
    println!(
        "goals: error rate ≤ 1.5 % (1 % healthy); tickets ≤ 8 per 1000 device-days (old) or ≤ control + 2 (new), 5 healthy; bake 48 h"
    );
    println!(
        "\n| scenario | gate | promoted | stopped | median h to stop |\n|---|---|---:|---:|---:|"
    );
    for t in gatesim::simulate(&setup) {
        let share = |n: u32| format!("{:.1} %", 100.0 * n as f64 / t.runs.max(1) as f64);
        println!(
            "| {} | {} | {} | {} | {} |",
            t.scenario.label(),
            t.gate.label(),
            share(t.promoted),
            share(t.stopped),
            t.median_hours()
                .map_or_else(|| "–".to_string(), |h| h.to_string())
        );
    }
    timing();
    Ok(())
}

/// A 100,000-device wave in 50 strata, judged per stratum over 30 rounds:
/// each round tallies every device and judges every stratum.
fn timing() {
    const DEVICES: usize = 100_000;
    const STRATA: usize = 50;
    let goals = gatesim::goals(Gate::Sequential);
    let mut rng = Rng::new(1);
    let stratum: Vec<u8> = (0..DEVICES)
        .map(|_| rng.below(STRATA as u64) as u8)
        .collect();
    // 0: no report yet, 1: succeeded, 2: error.
    let mut state = vec![0u8; DEVICES];
    let policy = GatePolicy::sequential();
    let mut worst = 0.0f64;
    let mut total = 0.0;
    for round in 1..=30u32 {
        for s in state.iter_mut() {
            if *s == 0 && rng.bernoulli(0.1) {
                *s = if rng.bernoulli(0.01) { 2 } else { 1 };
            }
        }
        let t = Instant::now();
        let mut rows: Vec<(String, Observed)> = (0..STRATA)
            .map(|i| {
                (
                    format!("stratum {i}"),
                    Observed {
                        round,
                        ..Observed::default()
                    },
                )
            })
            .collect();
        for (s, st) in stratum.iter().zip(&state) {
            let o = &mut rows[*s as usize].1;
            o.devices += 1;
            match st {
                1 => {
                    o.reported += 1;
                    o.succeeded += 1;
                }
                2 => {
                    o.reported += 1;
                    o.errors += 1;
                }
                _ => {}
            }
        }
        let verdicts = strata::judge(&goals[..1], &rows, 200, &policy);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        std::hint::black_box(verdicts);
        worst = worst.max(ms);
        total += ms;
    }
    println!(
        "\njudging a {DEVICES}-device wave in {STRATA} strata: {:.2} ms per round on average, {:.2} ms at worst (30 rounds; budget 50 ms)",
        total / 30.0,
        worst
    );
}
