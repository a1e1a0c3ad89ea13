//! `ringmaster org`: what was imported, and what is wrong in it.

use super::OrgArgs;
use ringmaster_core::model::{DeviceAttr, GroupKind, Platform};
use ringmaster_core::targeting::Severity;
use std::process::ExitCode;

/// Exit 0 when the import is clean, 1 when resolving found errors (rules
/// the service rejects, unknown filters), 2 when the import itself failed.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    org: OrgArgs,
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let p = super::conflicts::load(&a.org.org, &[], &[], false)?;
    let (org, report) = (p.org, p.report);
    // Counts are all this shows of each policy's target.
    let (res, reach) = crate::progress::step("resolving groups and targets", || {
        ringmaster_core::targeting::resolve_counts(&org, a.org.now())
    });
    let dynamic = org
        .groups
        .iter()
        .filter(|g| matches!(g.kind, GroupKind::Dynamic { .. }))
        .count();
    let mut platforms: Vec<(String, u64)> = Vec::new();
    let col = &org.devices.cols[DeviceAttr::Platform.index()];
    for p in Platform::ALL {
        let hit: Vec<bool> = (0..col.dict.len() as u32)
            .map(|c| col.dict.value(c) == Some(p.as_str()))
            .collect();
        let n = col.select(&hit).len();
        if n > 0 {
            platforms.push((p.to_string(), n));
        }
    }
    let unknown = org.devices.rows as u64 - platforms.iter().map(|(_, n)| n).sum::<u64>();
    let errors = res
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if a.json {
        super::write_json(&serde_json::json!({
            "users": org.users.rows,
            "devices": org.devices.rows,
            "devices_by_platform": platforms.iter().map(|(p, n)| (p.clone(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
            "devices_without_platform": unknown,
            "groups": org.groups.len(),
            "dynamic_groups": dynamic,
            "filters": org.filters.len(),
            "policies": org.policies.iter().enumerate().map(|(i, p)| serde_json::json!({
                "id": p.id, "name": p.name, "kind": p.kind, "platforms": p.platforms,
                "assignments": p.assignments.len(),
                "devices": reach[i].0,
                "not_applicable": reach[i].1,
            })).collect::<Vec<_>>(),
            "diagnostics": res.diagnostics,
            "import": report,
        }))?;
    } else {
        println!(
            "{} users, {} devices, {} groups ({} dynamic), {} filters, {} policies",
            org.users.rows,
            org.devices.rows,
            org.groups.len(),
            dynamic,
            org.filters.len(),
            org.policies.len()
        );
        let plat: Vec<String> = platforms.iter().map(|(p, n)| format!("{p} {n}")).collect();
        if !plat.is_empty() || unknown > 0 {
            println!(
                "devices by platform: {}{}",
                plat.join(", "),
                if unknown > 0 {
                    format!(", unknown {unknown}")
                } else {
                    String::new()
                }
            );
        }
        println!("read {} file(s)", report.files.len());
        // One line per reason, with a count and an example file (the full
        // list is in --json).
        let mut reasons: std::collections::BTreeMap<&str, (usize, &str)> =
            std::collections::BTreeMap::new();
        for s in &report.skipped {
            let (file, why) = s.rsplit_once(": ").unwrap_or(("", s.as_str()));
            let e = reasons.entry(why).or_insert((0, file));
            e.0 += 1;
        }
        for (why, (n, file)) in reasons {
            println!("skipped {n} file(s): {why} (e.g. {file})");
        }
        for w in &report.warnings {
            println!("warning: {w}");
        }
        if !org.policies.is_empty() {
            println!();
            println!("{:>9} {:>9} {:>5}  policy", "devices", "n/a", "asgn");
            for (i, p) in org.policies.iter().enumerate() {
                println!(
                    "{:>9} {:>9} {:>5}  {}",
                    reach[i].0,
                    reach[i].1,
                    p.assignments.len(),
                    p.name
                );
            }
        }
        for d in &res.diagnostics {
            let sev = if d.severity == Severity::Error {
                "error"
            } else {
                "warning"
            };
            println!("{sev}: {}: {}", d.subject, d.message);
        }
    }
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
