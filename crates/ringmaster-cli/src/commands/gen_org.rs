//! `ringmaster gen`: a synthetic organization for demos, tests and benchmarks.

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Number of devices (1 to 2,000,000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=ringmaster_gen::MAX_DEVICES as i64))]
    pub devices: u32,
    /// Seed: the same seed writes the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Users (default: ¾ of the devices, at most max(100,000, devices/10)).
    #[arg(long)]
    pub users: Option<u32>,
    /// Groups, a third of them dynamic (default: devices/500, 40 to 2,000).
    #[arg(long)]
    pub groups: Option<u32>,
    /// Assignment filters (default: devices/5,000, 12 to 200).
    #[arg(long)]
    pub filters: Option<u32>,
    /// Policies, about four assignments each (default: devices/2,000, 20 to 500).
    #[arg(long)]
    pub policies: Option<u32>,
    /// Make most configuration policies settings-heavy, with this many settings each.
    #[arg(long)]
    pub settings_per_policy: Option<u32>,
    /// Shape: realistic (sites, departments, rings) or random (each device in 10 random groups,
    /// each policy 3 include + 1 exclude groups and 50 of 20,000 settings; defaults 2,000 groups
    /// and 2,000 policies), the data `scripts/duckdb-conflicts` compares against.
    #[arg(long, value_enum, default_value = "realistic")]
    pub layout: LayoutArg,
    #[arg(long)]
    pub json: bool,
    /// Also write the new policies of a sample rollout (a Windows baseline) here.
    #[arg(long, value_name = "DIR")]
    pub proposed: Option<PathBuf>,
    /// Folder to write into.
    pub dir: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum LayoutArg {
    Realistic,
    Random,
}

impl From<LayoutArg> for ringmaster_gen::Layout {
    fn from(l: LayoutArg) -> Self {
        match l {
            LayoutArg::Realistic => ringmaster_gen::Layout::Realistic,
            LayoutArg::Random => ringmaster_gen::Layout::Random,
        }
    }
}

impl Args {
    pub fn options(&self) -> ringmaster_gen::Options {
        ringmaster_gen::Options {
            devices: self.devices,
            users: self.users,
            groups: self.groups,
            filters: self.filters,
            policies: self.policies,
            settings_per_policy: self.settings_per_policy,
            seed: self.seed,
            layout: self.layout.into(),
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let progress = std::sync::Arc::default();
    let s = crate::progress::watch(&progress, || {
        ringmaster_gen::generate_with(&a.dir, &a.options(), &progress)
    })
    .with_context(|| format!("writing {}", a.dir.display()))?;
    if let Some(dir) = &a.proposed {
        ringmaster_gen::generate_proposed(dir)
            .with_context(|| format!("writing {}", dir.display()))?;
    }
    if a.json {
        super::write_json(&s)?;
    } else {
        println!(
            "wrote {} users, {} devices, {} groups ({} dynamic, {} nesting others), {} group memberships, {} filters, {} policies with {} assignments to {}",
            s.users,
            s.devices,
            s.groups,
            s.dynamic_groups,
            s.nested_groups,
            s.group_members,
            s.filters,
            s.policies,
            s.assignments,
            a.dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
