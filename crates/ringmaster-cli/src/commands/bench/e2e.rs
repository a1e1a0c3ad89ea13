//! `ringmaster bench e2e`: the real commands as a user runs them, each a
//! child process, timed from spawn to exit, with the child's peak resident
//! memory. Cold runs import the exports (`--no-snapshot`); warm runs read the
//! snapshot that a first run wrote. Everything lives in a folder the bench
//! makes and removes, so it never writes beside exports it did not make.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// The demo's plan: its groups and the proposed policies come from the generator.
const PLAN: &str = include_str!("../../../../../examples/demo/ringmaster.toml");

/// One measured run.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Sample {
    wall_ms: f64,
    peak_bytes: u64,
}

/// First run and median of the rest, for one command and one mode.
#[derive(Debug, serde::Serialize)]
struct Measured {
    first: Sample,
    median: Sample,
}

#[derive(Debug, serde::Serialize)]
struct Row {
    command: String,
    /// Importing the exports (`--no-snapshot`).
    cold: Measured,
    /// Importing and writing the snapshot: what the first command after a change pays.
    writing: Sample,
    /// Reading the snapshot.
    warm: Measured,
}

/// Spawns the rest of the command line, waits, and prints its wall time,
/// peak memory and exit code: run as `bench measure-child -- ARGS` so that
/// the children's peak (`getrusage(RUSAGE_CHILDREN)`) is this one command's.
pub fn measure_child(args: &[String]) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the ringmaster binary")?;
    let t = Instant::now();
    let status = Command::new(exe)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .context("running the measured command")?;
    let wall = t.elapsed();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .context("reading the child's resource usage")?;
    // Linux reports ru_maxrss in KiB.
    let peak = usage.max_rss().max(0) as u64 * 1024;
    println!("{} {peak} {}", wall.as_nanos(), status.code().unwrap_or(-1));
    Ok(ExitCode::SUCCESS)
}

/// Runs `ringmaster ARGS` in `cwd` through `measure-child`.
fn measure(root: &Path, cwd: &Path, args: &[&str]) -> anyhow::Result<Sample> {
    let exe = std::env::current_exe().context("finding the ringmaster binary")?;
    let err_file = root.join("last-stderr.txt");
    let err = std::fs::File::create(&err_file).context("creating the stderr file")?;
    let out = Command::new(exe)
        .args(["bench", "measure-child", "--"])
        .args(args)
        .current_dir(cwd)
        .env("RINGMASTER_CACHE_DIR", root.join("cache"))
        .env_remove("RINGMASTER_NO_SNAPSHOT")
        .stderr(err)
        .output()
        .context("running the measuring child")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<i64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [nanos, peak, code] = f[..] else {
        bail!("measuring `{}` failed: {text}", args.join(" "));
    };
    if !(0..=1).contains(&code) {
        let why = std::fs::read_to_string(&err_file).unwrap_or_default();
        bail!("`ringmaster {}` exited {code}:\n{why}", args.join(" "));
    }
    Ok(Sample {
        wall_ms: nanos as f64 / 1e6,
        peak_bytes: peak as u64,
    })
}

fn median(mut v: Vec<Sample>) -> Sample {
    v.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
    let wall_ms = v[v.len() / 2].wall_ms;
    let mut peaks: Vec<u64> = v.iter().map(|s| s.peak_bytes).collect();
    peaks.sort_unstable();
    Sample {
        wall_ms,
        peak_bytes: peaks[peaks.len() / 2],
    }
}

/// The first run and the median of `repeat` runs after it.
fn first_and_median(
    root: &Path,
    cwd: &Path,
    args: &[&str],
    repeat: u32,
) -> anyhow::Result<Measured> {
    let first = measure(root, cwd, args)?;
    let rest = (0..repeat.max(1))
        .map(|_| measure(root, cwd, args))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Measured {
        first,
        median: median(rest),
    })
}

/// A fresh folder the bench owns.
fn own_folder(devices: u32) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "ringmaster-bench-e2e-{devices}-{}",
        std::process::id()
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The name of the first managed device, for `explain --device`.
fn some_device(org: &Path) -> anyhow::Result<String> {
    use std::io::BufRead;
    let f = std::fs::File::open(org.join("managedDevices.ndjson"))
        .context("reading the generated devices")?;
    let mut line = String::new();
    std::io::BufReader::new(f)
        .read_line(&mut line)
        .context("reading the generated devices")?;
    let v: serde_json::Value = serde_json::from_str(&line).context("a generated device")?;
    v["deviceName"]
        .as_str()
        .map(str::to_string)
        .context("the generated device has no name")
}

pub fn run(
    devices: u32,
    seed: u64,
    policies: Option<u32>,
    layout: ringmaster_gen::Layout,
    repeat: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let root = own_folder(devices)?;
    let result = measure_all(&root, devices, seed, policies, layout, repeat);
    let _ = std::fs::remove_dir_all(&root);
    let rows = result?;
    if json {
        super::super::write_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let s = |x: f64| format!("{:.2} s", x / 1000.0);
    let mb = |b: u64| format!("{} MB", b / 1_000_000);
    let shape = match layout {
        ringmaster_gen::Layout::Realistic => "",
        ringmaster_gen::Layout::Random => " (random memberships)",
    };
    println!(
        "{devices} devices{shape}; first run, then median of {repeat}; wall time and peak memory"
    );
    println!(
        "{:<22} {:>9} {:>9} {:>8}  {:>9} {:>8}  {:>9} {:>9} {:>8}",
        "command", "cold 1st", "cold med", "peak", "write", "peak", "warm 1st", "warm med", "peak"
    );
    for r in &rows {
        println!(
            "{:<22} {:>9} {:>9} {:>8}  {:>9} {:>8}  {:>9} {:>9} {:>8}",
            r.command,
            s(r.cold.first.wall_ms),
            s(r.cold.median.wall_ms),
            mb(r.cold.median.peak_bytes),
            s(r.writing.wall_ms),
            mb(r.writing.peak_bytes),
            s(r.warm.first.wall_ms),
            s(r.warm.median.wall_ms),
            mb(r.warm.median.peak_bytes),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn measure_all(
    root: &Path,
    devices: u32,
    seed: u64,
    policies: Option<u32>,
    layout: ringmaster_gen::Layout,
    repeat: u32,
) -> anyhow::Result<Vec<Row>> {
    let org = root.join("org");
    eprintln!("generating {devices} devices into {} …", org.display());
    let mut o = ringmaster_gen::Options::new(devices, seed);
    o.layout = layout;
    o.policies = Some(policies.unwrap_or(2000));
    // The random layout keeps the anchor's 50 settings per policy.
    if layout == ringmaster_gen::Layout::Realistic {
        o.settings_per_policy = Some(80);
    }
    let progress = std::sync::Arc::default();
    crate::progress::watch(&progress, || {
        ringmaster_gen::generate_with(&org, &o, &progress)
    })
    .context("generating the organization")?;
    let device = some_device(&org)?;
    let mut commands: Vec<(&str, Vec<&str>)> = vec![
        ("org", vec!["org", "--org", "org"]),
        ("conflicts", vec!["conflicts", "--org", "org"]),
        (
            "explain --device",
            vec!["explain", "--org", "org", "--device", &device],
        ),
    ];
    // The demo plan targets the realistic layout's groups, which random
    // memberships do not have.
    if layout == ringmaster_gen::Layout::Realistic {
        ringmaster_gen::generate_proposed(&root.join("proposed"))
            .context("generating the proposed policies")?;
        std::fs::write(root.join("ringmaster.toml"), PLAN).context("writing the plan")?;
        commands.push(("plan", vec!["plan", "ringmaster.toml"]));
    }
    let mut rows = Vec::new();
    for (name, args) in commands {
        eprintln!("measuring {name} …");
        let mut cold_args = vec!["--no-snapshot"];
        cold_args.extend(&args);
        let cold = first_and_median(root, root, &cold_args, repeat)?;
        // Each command starts from no snapshot: its first run imports and writes one.
        let _ = std::fs::remove_dir_all(root.join("cache"));
        let writing = measure(root, root, &args)?;
        let warm = first_and_median(root, root, &args, repeat)?;
        rows.push(Row {
            command: name.to_string(),
            cold,
            writing,
            warm,
        });
    }
    Ok(rows)
}
