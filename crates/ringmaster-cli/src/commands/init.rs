//! `ringmaster init`: a first `ringmaster.toml` from an import (or a Graph
//! snapshot): the device groups that cover the fleet as targeted groups,
//! with first guesses at willingness and risk, and the usual phases. The
//! result is checked by planning it before it is reported written.

use anyhow::Context;
use ringmaster_core::model::Platform;
use ringmaster_core::org::Org;
use ringmaster_core::targeting::{Resolution, resolve};
use roaring::RoaringBitmap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Folder(s) or file(s) of exports to build the plan from.
    #[arg(long = "org", value_name = "DIR", required_unless_present = "example")]
    org: Vec<PathBuf>,
    /// Evaluate time-relative rules (`system.now`) at this instant instead of now.
    #[arg(long, value_name = "RFC3339", env = "RINGMASTER_NOW")]
    now: Option<jiff::Timestamp>,
    /// Write the commented example plan instead (the demo's Windows baseline;
    /// it reads `org/` and `proposed/` beside it, as `gen --proposed proposed/ org/` writes them).
    #[arg(long, conflicts_with_all = ["org", "new", "policies"])]
    example: bool,
    /// Exports of the policies this rollout deploys (written as `sources.new`).
    #[arg(long = "new", value_name = "DIR|FILE")]
    new: Vec<PathBuf>,
    /// Policies already in the exports that are the new ones (name or id).
    #[arg(long = "policy", value_name = "NAME")]
    policies: Vec<String>,
    /// The plan file to write.
    #[arg(long, short, default_value = "ringmaster.toml")]
    out: PathBuf,
    /// The rollout's name.
    #[arg(long, default_value = "New policy rollout")]
    name: String,
    /// IANA time zone of the rollout's calendar.
    #[arg(long, default_value = "UTC")]
    time_zone: String,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
    /// Report in JSON: the file, the groups chosen, the devices they cover, whether it plans.
    #[arg(long)]
    json: bool,
}

/// Groups larger than this share of the fleet are too broad to be a wave.
const BROAD: f64 = 0.6;
/// At most this many targeted groups are proposed.
const MAX_GROUPS: usize = 15;

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// First guesses from a group's name: (willingness, business risk).
fn guess(name: &str) -> (&'static str, &'static str) {
    let n = name.to_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| n.contains(w));
    if any(&["exec", "vip", "board", "leadership"]) {
        ("low", "high")
    } else if any(&["ring 0", "pilot", " it ", "it devices", "early"]) || n.starts_with("it ") {
        ("high", "low")
    } else if any(&[
        "finance", "legal", "retail", "store", "clinic", "trading", "factory",
    ]) {
        ("low", "high")
    } else {
        ("medium", "medium")
    }
}

/// `target` written relative to the folder of `base` when it lies below it.
fn relative(target: &Path, base: &Path) -> String {
    let dir = base
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (t, d) = (
        std::fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf()),
        std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
    );
    t.strip_prefix(&d)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| t.display().to_string())
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if a.out.exists() && !a.force {
        return Err(crate::UserError(format!(
            "{} exists; choose another --out or add --force",
            a.out.display()
        ))
        .into());
    }
    if a.example {
        return write_example(&a.out);
    }
    jiff::tz::TimeZone::get(&a.time_zone).map_err(|_| {
        crate::UserError(format!(
            "--time-zone `{}` is not an IANA time zone such as Europe/Amsterdam",
            a.time_zone
        ))
    })?;
    let now = a.now.unwrap_or_else(jiff::Timestamp::now);
    let loaded =
        super::import(&a.org).map_err(|e| crate::UserError(format!("import failed: {e}")))?;
    let org = loaded.org;
    for p in &a.policies {
        if org.find_policies(p).is_empty() {
            return Err(crate::UserError(format!("--policy: no policy matches '{p}'")).into());
        }
    }
    let platforms = platforms(&a, &org)?;
    let res = resolve(&org, now);
    let c = choose(&org, &res, &platforms)?;
    let t = plan_text(&a, &org, &res, &c, start_date(now)?);
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&a.out, &t).with_context(|| format!("writing {}", a.out.display()))?;
    report(&a, &org, &c, !platforms.is_empty(), now)
}

/// `init --example`: the commented example plan, as the demo writes it.
fn write_example(out: &Path) -> anyhow::Result<ExitCode> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, super::EXAMPLE_PLAN)
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote the example plan to {}: a Windows baseline for the organization in org/ (new policies in proposed/); `ringmaster plan` computes it",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The platforms the new policies are for: the groups are chosen to cover
/// the devices that can take them (empty: any device).
fn platforms(a: &Args, org: &Org) -> anyhow::Result<Vec<Platform>> {
    let mut platforms: Vec<Platform> = Vec::new();
    if !a.new.is_empty() {
        let new = super::import(&a.new)
            .map_err(|e| crate::UserError(format!("import of --new failed: {e}")))?;
        platforms.extend(
            new.org
                .policies
                .iter()
                .flat_map(|p| p.platforms.iter().copied()),
        );
    }
    for p in &a.policies {
        for i in org.find_policies(p) {
            platforms.extend(org.policies[i].platforms.iter().copied());
        }
    }
    Ok(platforms)
}

/// The targeted groups chosen, and the devices they are chosen over.
struct Choice {
    /// Groups, as indices of `Org::groups`.
    chosen: Vec<usize>,
    /// Devices the chosen groups cover.
    covered: RoaringBitmap,
    /// Devices that can take the new policies.
    eligible: RoaringBitmap,
    /// How many those are (at least 1).
    fleet: u64,
    /// A lab or test group for the proof of concept.
    lab: Option<usize>,
}

/// Device groups that partition the eligible devices well: big ones
/// first, each adding mostly devices not covered yet.
fn choose(org: &Org, res: &Resolution, platforms: &[Platform]) -> anyhow::Result<Choice> {
    let eligible: RoaringBitmap = (0..org.devices.rows)
        .filter(|&d| {
            platforms.is_empty()
                || org
                    .device_platform(d)
                    .is_some_and(|p| platforms.contains(&p))
        })
        .collect();
    let fleet = eligible.len().max(1);
    let mut groups: Vec<(usize, RoaringBitmap)> = (0..org.groups.len())
        .map(|g| (g, res.group_reach(org, g).into_owned() & &eligible))
        .filter(|(_, d)| {
            let share = d.len() as f64 / fleet as f64;
            share > 0.005 && share <= BROAD
        })
        .collect();
    // Business units (departments, locations) before technical groups
    // (platform, model, manufacturer): willingness and risk belong to people.
    let technical = |g: usize| {
        let n = org.groups[g].name.to_lowercase();
        [
            "intune",
            "manufacturer",
            "windows",
            "macos",
            "ios",
            "android",
            "linux",
            "virtual",
            "model",
            "autopilot",
            "os ",
            "device type",
        ]
        .iter()
        .any(|w| n.contains(w))
    };
    groups.sort_by(|a, b| {
        technical(a.0)
            .cmp(&technical(b.0))
            .then(b.1.len().cmp(&a.1.len()))
            .then(org.groups[a.0].name.cmp(&org.groups[b.0].name))
    });
    let mut covered = RoaringBitmap::new();
    let mut chosen = Vec::new();
    for (g, d) in &groups {
        if chosen.len() == MAX_GROUPS || covered.len() as f64 >= 0.95 * fleet as f64 {
            break;
        }
        let new = d.len() - d.intersection_len(&covered);
        if new as f64 >= 0.8 * d.len() as f64 {
            covered |= d;
            chosen.push(*g);
        }
    }
    if chosen.is_empty() {
        return Err(crate::UserError(
            "no device group between 0.5 % and 60 % of the fleet: add groups to the exports, or write the [[groups]] by hand (see examples/demo/ringmaster.toml)".into(),
        )
        .into());
    }
    let lab = org.groups.iter().position(|g| {
        let n = g.name.to_lowercase();
        n.contains("lab") || n.contains("test")
    });
    Ok(Choice {
        chosen,
        covered,
        eligible,
        fleet,
        lab,
    })
}

/// The first Monday at least two weeks from `now`.
fn start_date(now: jiff::Timestamp) -> anyhow::Result<jiff::civil::Date> {
    let start = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(jiff::Span::new().days(14))
        .context("the start date")?;
    start
        .checked_add(
            jiff::Span::new().days(i64::from((7 - start.weekday().to_monday_zero_offset()) % 7)),
        )
        .context("the start date")
}

/// The plan file's text: the rollout, its calendar, help desk, sources,
/// the chosen groups and the usual phases.
fn plan_text(
    a: &Args,
    org: &Org,
    res: &Resolution,
    c: &Choice,
    start: jiff::civil::Date,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# A first plan, written by `ringmaster init` from {}.\n# Review every line marked REVIEW, then `ringmaster plan {}`.\n# The reference: docs/plan.md; a commented example: examples/demo/ringmaster.toml.\n",
        a.org
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        a.out.display()
    );
    let _ = writeln!(
        t,
        "[rollout]\nid = {}\nname = {}\npurpose = \"REVIEW: why this change, in one sentence users understand.\"\ntime_zone = {}\nstart = \"{start}\"\ncheck_in = \"8h\"\n",
        quoted(&slug(&a.name)),
        quoted(&a.name),
        quoted(&a.time_zone)
    );
    let _ = writeln!(
        t,
        "[calendar]\nworking_days = [\"mon\", \"tue\", \"wed\", \"thu\"]\nhours = \"09:00-16:00\"\n"
    );
    let _ = writeln!(
        t,
        "[help_desk]\ncontact = \"REVIEW: the help desk's phone, address or portal\"\ncapacity_per_day = {}   # REVIEW: tickets a day the desk can take for this rollout\ntickets_per_100_devices = 1.5\n",
        (c.fleet / 200).max(20)
    );
    sources_text(&mut t, a);
    for &g in &c.chosen {
        let name = &org.groups[g].name;
        let (willing, risk) = guess(name);
        let _ = writeln!(
            t,
            "[[groups]]   # {} devices, {} of them can take the new policies\nkey = {}\ngroup = {}\nwillingness = \"{willing}\"     # REVIEW\nbusiness_risk = \"{risk}\"   # REVIEW\n",
            res.group_reach(org, g).len(),
            res.group_reach(org, g).intersection_len(&c.eligible),
            quoted(&slug(name)),
            quoted(name)
        );
    }
    // Bars the smallest enterprise wave (10 % of what the groups cover) can reach.
    let smallest = (c.covered.len() as f64 * 0.1) as u64;
    let min_sample = ((smallest as f64 * 0.5) as u64).clamp(10, 100);
    phases_text(
        &mut t,
        c.lab.map(|g| org.groups[g].name.as_str()),
        min_sample,
        &enterprise_bars(smallest),
    );
    t
}

/// The `[sources]` table: the exports, relative to the plan file.
fn sources_text(t: &mut String, a: &Args) {
    let _ = writeln!(t, "[sources]");
    let _ = writeln!(
        t,
        "org = [{}]",
        a.org
            .iter()
            .map(|p| quoted(&relative(p, &a.out)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !a.new.is_empty() {
        let _ = writeln!(
            t,
            "new = [{}]",
            a.new
                .iter()
                .map(|p| quoted(&relative(p, &a.out)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !a.policies.is_empty() {
        let _ = writeln!(
            t,
            "new_policies = [{}]",
            a.policies
                .iter()
                .map(|p| quoted(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if a.new.is_empty() && a.policies.is_empty() {
        let _ = writeln!(
            t,
            "# REVIEW: name what this rollout deploys: new = [\"exports-of-new-policies\"] or new_policies = [\"policy name\"]"
        );
    }
    let _ = writeln!(t);
}

/// The usual phases: project scope, a proof of concept when there is a lab
/// group, the pilot, three enterprise waves, the run state.
/// The enterprise phase's judging and bars: 97 % success and 1 % errors
/// where its first wave (`smallest` devices) can prove them anytime-valid
/// with two devices failing, else the tightest bars it can; the bare rates
/// when the wave is too small for any.
struct Bars {
    judging: &'static str,
    success: u64,
    errors: u64,
}

fn enterprise_bars(smallest: u64) -> Bars {
    use ringmaster_core::sequential::{RATE_PRIOR, rate_cs};
    if smallest < 20 {
        return Bars {
            judging: "judging = \"point\"   # REVIEW: waves this small cannot prove a bar\n",
            success: 97,
            errors: 1,
        };
    }
    let success = rate_cs(smallest - 2, smallest, 0.05, RATE_PRIOR).0;
    let errors = rate_cs(2, smallest, 0.05, RATE_PRIOR).1;
    Bars {
        judging: "",
        success: ((success * 100.0).floor() as u64).min(97),
        errors: ((errors * 100.0).ceil() as u64).max(1),
    }
}

fn phases_text(t: &mut String, lab: Option<&str>, min_sample: u64, bars: &Bars) {
    let _ = writeln!(
        t,
        "[[phases]]\nkind = \"project_scope\"\nduration = \"5d\"\n"
    );
    if let Some(lab) = lab {
        let _ = writeln!(
            t,
            "[[phases]]\nkind = \"proof_of_concept\"\ntest_groups = [{}]\nhelp_desk_participates = true\nbake = \"2d\"\njudging = \"point\"   # a few lab devices: a smoke test, not a sample\n  [[phases.goals]]\n  metric = \"apply_success_rate\"\n  threshold = \">= 95%\"\n  window = \"24h\"\n  min_sample = 3\n  deadline = \"3d\"\n",
            quoted(lab)
        );
    }
    let _ = writeln!(
        t,
        "[[phases]]\nkind = \"pilot\"\nbake = \"3d\"\n  [phases.pilot]\n  share = \"1%\"\n  min_devices = 50\n  [[phases.goals]]\n  metric = \"apply_success_rate\"\n  threshold = \">= 75%\"   # what 50 devices prove with three failing\n  window = \"48h\"\n  min_sample = 30\n  deadline = \"5d\"\n  [[phases.goals]]\n  metric = \"tickets_per_100_devices\"\n  threshold = \"<= 3\"\n  window = \"72h\"\n  min_sample = 30\n  deadline = \"5d\"\n"
    );
    let Bars {
        judging,
        success,
        errors,
    } = bars;
    let _ = writeln!(
        t,
        "[[phases]]\nkind = \"enterprise\"\nbake = \"3d\"\non_fail = \"pause\"\n{judging}  [[phases.waves]]\n  share = \"10%\"\n  [[phases.waves]]\n  share = \"30%\"\n  [[phases.waves]]\n  rest = true\n  # REVIEW: bars the first wave can prove with two devices failing\n  [[phases.goals]]\n  metric = \"apply_success_rate\"\n  threshold = \">= {success}%\"\n  window = \"24h\"\n  min_sample = {min_sample}\n  deadline = \"10d\"\n  [[phases.goals]]\n  metric = \"error_rate\"\n  threshold = \"<= {errors}%\"\n  window = \"24h\"\n  min_sample = {min_sample}\n  deadline = \"10d\"\n\n[[phases]]\nkind = \"run_state\"\n"
    );
}

/// Plans the written file (a scaffold that does not plan is not done) and
/// says how it went; exits 1 when it names policies but does not plan.
fn report(
    a: &Args,
    org: &Org,
    c: &Choice,
    for_platforms: bool,
    now: jiff::Timestamp,
) -> anyhow::Result<ExitCode> {
    let groups: Vec<&str> = c
        .chosen
        .iter()
        .map(|&g| org.groups[g].name.as_str())
        .collect();
    let named = !(a.new.is_empty() && a.policies.is_empty());
    let planned = named.then(|| super::plan::load(&a.out, now));
    let (plans, errors, problem) = match &planned {
        None => (
            false,
            0,
            Some("name the policies to deploy in [sources]".to_string()),
        ),
        Some(Ok(l)) => (l.plan.errors() == 0, l.plan.errors(), None),
        Some(Err(e)) => (false, 0, Some(e.to_string())),
    };
    if a.json {
        super::write_json(&serde_json::json!({
            "file": a.out.display().to_string(), "groups": groups,
            "covered_devices": c.covered.len(), "devices": c.fleet,
            "plans": plans, "check_errors": errors, "problem": problem,
        }))?;
    } else {
        println!(
            "wrote {}: {} targeted groups covering {} of the {} devices {}",
            a.out.display(),
            c.chosen.len(),
            c.covered.len(),
            c.fleet,
            if for_platforms {
                "that can take the new policies"
            } else {
                "in the organization"
            }
        );
        match &planned {
            None => println!(
                "next: name the policies to deploy in [sources], then `ringmaster plan {}`",
                a.out.display()
            ),
            Some(Ok(l)) if l.plan.errors() == 0 => println!(
                "it plans: {} waves over {} devices in scope; review the lines marked REVIEW, then `ringmaster plan {}`",
                l.plan.waves.len(),
                l.plan.scope.devices,
                a.out.display()
            ),
            Some(Ok(l)) => println!(
                "it plans with {} error(s) in its checks; `ringmaster plan {}` lists them",
                l.plan.errors(),
                a.out.display()
            ),
            Some(Err(e)) => println!("it does not plan yet:\n{e}"),
        }
    }
    Ok(if plans || !named {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_guesses() {
        assert_eq!(slug("All Sales Devices"), "all-sales-devices");
        assert_eq!(slug("  Ring 0 - IT Pilot  "), "ring-0-it-pilot");
        assert_eq!(guess("All Executive Devices"), ("low", "high"));
        assert_eq!(guess("Ring 0 - IT Pilot Devices"), ("high", "low"));
        assert_eq!(guess("All Finance Devices"), ("low", "high"));
        assert_eq!(guess("All Sales Devices"), ("medium", "medium"));
        // Any name survives the trip through the written TOML.
        for name in ["a \"b\"", "it's", "back\\slash", "line\nbreak"] {
            let v: toml::Table = toml::from_str(&format!("x = {}", quoted(name))).unwrap();
            assert_eq!(v["x"].as_str(), Some(name));
        }
    }
}
