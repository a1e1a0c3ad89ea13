//! `ringmaster run`: drives a rollout on the simulated fleet (a simulated
//! clock, as fast as asked) or against Intune (the real clock).

use super::{Where, database_url, describe, open, runtime, stamp, stop_signal};
use ringmaster_core::wave::{Reason, WaveState};
use ringmaster_engine::engine::{Approval, Engine};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub at: Where,
    /// Run against the built-in fleet simulator on a simulated clock.
    #[arg(long)]
    pub simulate: bool,
    /// Simulated seconds per real second (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub speed: f64,
    /// Simulated time between ticks, e.g. 1h.
    #[arg(long, default_value = "1h")]
    pub step: String,
    /// Stop after this many simulated days even if the rollout is not done.
    #[arg(long, default_value_t = 120)]
    pub max_days: u32,
    /// With --intune: one tick now, then exit (for a timer or cron).
    #[arg(long)]
    pub once: bool,
    /// Approve these waves when they ask for approval, so the run carries on
    /// through them: wave numbers (`--approve 4 --approve 5`, or `4-7`) or
    /// `all`. Each approval is audited as given on the command line.
    #[arg(long, value_name = "WAVES|all", value_parser = parse_approve)]
    pub approve: Vec<Approve>,
    /// Who drives the rollout: the requester of a plan version's waves (the
    /// first to drive it), and the approver of the waves given with --approve.
    #[arg(long, env = "USER", default_value = "operator")]
    pub actor: String,
}

/// Waves an operator approves in advance on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approve {
    All,
    /// From and to, counted from 1 as `status` shows them.
    Waves(u32, u32),
}

fn parse_approve(s: &str) -> Result<Approve, String> {
    let s = s.trim();
    if s == "all" {
        return Ok(Approve::All);
    }
    let num = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{s}`: expected a wave number, a range such as 4-7, or all"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!("`{s}`: the range runs backwards"));
            }
            Ok(Approve::Waves(a, b))
        }
        None => num(s).map(|n| Approve::Waves(n, n)),
    }
}

/// Whether `approve` covers wave `number` (from 1).
fn covers(approve: &[Approve], number: u32) -> bool {
    approve.iter().any(|a| match a {
        Approve::All => true,
        Approve::Waves(from, to) => (*from..=*to).contains(&number),
    })
}

/// Whether nothing more happens without an operator.
fn needs_operator(s: WaveState) -> bool {
    match s {
        WaveState::AwaitingApproval | WaveState::Failed | WaveState::RolledBack => true,
        WaveState::Paused { reasons, .. } => {
            reasons.contains(Reason::Manual) || reasons.contains(Reason::AwaitingPromotion)
        }
        _ => false,
    }
}

/// How driving a rollout ended.
pub(super) enum Driven {
    /// Every wave is final: this many passed, of so many.
    Done(usize, usize),
    /// A wave waits for an operator.
    Waiting(ringmaster_store::WaveRow),
    /// The time allowed ran out.
    TimeUp,
}

/// How to drive: the simulated step, the pace, when to give up, who
/// approves which waves that ask for it (the demo's operator, or the one
/// who ran `run --approve`), and a bar to move.
pub(super) struct Pace<'a> {
    pub(super) step: jiff::SignedDuration,
    pub(super) speed: f64,
    pub(super) end: jiff::Timestamp,
    pub(super) approver: Option<(&'a str, &'a [Approve])>,
    pub(super) bar: Option<(&'a indicatif::ProgressBar, jiff::Timestamp)>,
    /// The rollout's time, published for a dashboard served meanwhile.
    pub(super) clock: Option<&'a std::sync::Mutex<jiff::Timestamp>>,
}

/// Ticks the engine from `now` until the rollout ends, an operator is
/// needed or time runs out, printing every transition.
pub(super) async fn drive(
    e: &Engine,
    mut now: jiff::Timestamp,
    p: &Pace<'_>,
) -> anyhow::Result<(Driven, jiff::Timestamp)> {
    let say = |line: String| match p.bar {
        Some((bar, _)) => bar.suspend(|| println!("{line}")),
        None => println!("{line}"),
    };
    let mut tried: Vec<u32> = Vec::new();
    loop {
        if let Some(c) = p.clock {
            *c.lock().unwrap_or_else(|e| e.into_inner()) = now;
        }
        let t = e.tick(now).await?;
        for line in t.transitions.iter().chain(&t.held) {
            say(format!("{}  {line}", stamp(now)));
        }
        if let Some((bar, start)) = p.bar {
            bar.set_position(((now.as_second() - start.as_second()) / 3600).max(0) as u64);
            bar.set_message(format!("{}  {} reports this hour", stamp(now), t.statuses));
        }
        let rows = e.rows().await?;
        if rows.iter().all(|r| r.state.is_final()) {
            let passed = rows.iter().filter(|r| r.state == WaveState::Passed).count();
            return Ok((Driven::Done(passed, rows.len()), now));
        }
        if let Some((who, waves)) = p.approver
            && let Some(r) = rows.iter().find(|r| {
                r.state == WaveState::AwaitingApproval
                    && covers(waves, r.key.idx + 1)
                    && !tried.contains(&r.key.idx)
            })
        {
            // One try per wave: an approval that does not open the wave
            // (more approvers needed) leaves it to other people.
            tried.push(r.key.idx);
            match e.approve(r.key.idx + 1, who, now).await? {
                Approval::Opened(line) => say(format!(
                    "{}  {line} (approved by {who} via run --approve)",
                    stamp(now)
                )),
                Approval::Recorded(why) | Approval::Forbidden(why) | Approval::Refused(why) => {
                    say(format!("{}  {why}", stamp(now)))
                }
            }
            continue;
        }
        if let Some(r) = rows.iter().find(|r| needs_operator(r.state)) {
            return Ok((Driven::Waiting(r.clone()), now));
        }
        if now >= p.end {
            return Ok((Driven::TimeUp, now));
        }
        if p.speed > 0.0 {
            tokio::time::sleep(std::time::Duration::from_secs_f64(
                p.step.as_secs_f64() / p.speed,
            ))
            .await;
        }
        now += p.step;
    }
}

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    if a.at.intune.is_some() {
        if a.simulate {
            return Err(
                crate::UserError("--simulate and --intune exclude each other".into()).into(),
            );
        }
        return run_live(a);
    }
    // A bare `run` goes on with a rollout an earlier run simulated.
    if !a.simulate
        && !runtime()?
            .block_on(super::SimSettings::were_kept(&a.at))
            .is_ok_and(|k| k)
    {
        return Err(crate::UserError(
            "say what to drive: --simulate (the built-in fleet) or --intune intune.toml (Microsoft Intune; `ringmaster connect intune` saves the connection)"
                .into(),
        )
        .into());
    }
    let step = ringmaster_core::goals::parse_hours(&a.step).ok_or_else(|| {
        crate::UserError(format!("--step `{}` is not a duration such as 1h", a.step))
    })?;
    runtime()?.block_on(async {
        let o = open(&a.at, jiff::Timestamp::now()).await?;
        let e = &o.engine;
        // Resume the simulated clock where the last run stopped.
        let now = e.polled_until().await?.unwrap_or(o.start);
        e.request(&a.actor, now).await?;
        let end = o.start + jiff::SignedDuration::from_hours(24 * i64::from(a.max_days));
        let step = jiff::SignedDuration::from_secs((step * 3600.0) as i64);
        println!(
            "rollout {} version {} on a simulated fleet, from {} (database {})",
            o.rollout,
            e.version(),
            stamp(now),
            ringmaster_store::redact(&database_url(&a.at))
        );
        if let Some(sim) = o.sim.as_ref().filter(|s| s.kept) {
            println!(
                "the same simulation as the last run: {} (kept in the database; --seed, --fault or --no-faults change it)",
                sim.describe()
            );
        }
        let bar = hours_bar(o.start, o.planned_end.max(now));
        let pace = Pace {
            step,
            speed: a.speed,
            end,
            approver: (!a.approve.is_empty()).then_some((a.actor.as_str(), a.approve.as_slice())),
            bar: Some((&bar, o.start)),
            clock: None,
        };
        let (how, at) = drive(e, now, &pace).await?;
        bar.finish_and_clear();
        Ok(match how {
            Driven::Done(passed, total) => {
                println!("{}  done: {passed} of {total} waves passed", stamp(at));
                if passed == total {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Driven::Waiting(r) => {
                println!(
                    "{}  waiting for an operator: wave {} '{}' is {} (see `ringmaster status`)",
                    stamp(at),
                    r.key.idx + 1,
                    r.name,
                    describe(r.state)
                );
                ExitCode::from(1)
            }
            Driven::TimeUp => {
                println!("{}  stopped after {} simulated days", stamp(at), a.max_days);
                ExitCode::from(1)
            }
        })
    })
}

/// `run --intune`: ticks on the real clock every `--step` (or once with
/// `--once`, for a timer) until every wave has ended or one waits for an
/// operator.
fn run_live(a: RunArgs) -> anyhow::Result<ExitCode> {
    let step = ringmaster_core::goals::parse_hours(&a.step).ok_or_else(|| {
        crate::UserError(format!("--step `{}` is not a duration such as 1h", a.step))
    })?;
    runtime()?.block_on(async {
        let o = open(&a.at, jiff::Timestamp::now()).await?;
        let e = &o.engine;
        e.request(&a.actor, jiff::Timestamp::now()).await?;
        println!(
            "rollout {} version {} on Microsoft Intune (database {})",
            o.rollout,
            e.version(),
            ringmaster_store::redact(&database_url(&a.at))
        );
        loop {
            let now = jiff::Timestamp::now();
            let t = e.tick(now).await?;
            for line in t.transitions.iter().chain(&t.held) {
                println!("{}  {line}", stamp(now));
            }
            println!("{}  {} status reports read", stamp(now), t.statuses);
            for f in &t.failed {
                eprintln!("{}  not done, tried again next tick: {f}", stamp(now));
            }
            for line in &t.approvals {
                println!("{}  {line}", stamp(now));
            }
            let rows = e.rows().await?;
            if rows.iter().all(|r| r.state.is_final()) {
                let passed = rows.iter().filter(|r| r.state == WaveState::Passed).count();
                println!(
                    "{}  done: {passed} of {} waves passed",
                    stamp(now),
                    rows.len()
                );
                return Ok(if passed == rows.len() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            if let Some(r) = rows.iter().find(|r| needs_operator(r.state)) {
                println!(
                    "{}  waiting for an operator: wave {} '{}' is {} (see `ringmaster status`)",
                    stamp(now),
                    r.key.idx + 1,
                    r.name,
                    describe(r.state)
                );
                return Ok(ExitCode::from(1));
            }
            if a.once {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs_f64(step * 3600.0)) => {}
                _ = stop_signal() => return Ok(ExitCode::SUCCESS),
            }
        }
    })
}

/// A bar over the planned hours while a person watches (hidden when the
/// output is not a terminal); transitions print above it.
pub(super) fn hours_bar(start: jiff::Timestamp, end: jiff::Timestamp) -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::new(((end.as_second() - start.as_second()) / 3600).max(1) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}
