//! `ringmaster explain`: per policy Included / Excluded / NotTargeted /
//! NotApplicable with the chain of reasons, or everything assigned to a group.

use super::OrgArgs;
use ringmaster_core::explain::{
    DeviceExplanation, GroupExplanation, Status, describe_trace, explain_device, explain_group,
};
use ringmaster_core::org::Org;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("subject").required(true).args(["device", "group"]))]
pub struct Args {
    #[command(flatten)]
    org: OrgArgs,
    /// Device name, Entra object id, Entra device id, Intune id or serial number.
    #[arg(long)]
    device: Option<String>,
    /// Limit to one policy (name or id).
    #[arg(long, requires = "device")]
    policy: Option<String>,
    /// Group name or id: list everything assigned to it, directly and through nesting.
    #[arg(long)]
    group: Option<String>,
    /// Treat policies without assignments as assigned to All devices.
    #[arg(long)]
    assume_all_devices: bool,
    /// Work as an administrator limited to this Intune scope tag (an id,
    /// Default, or an IntuneCD tag name): a device outside it is refused,
    /// and policies outside it are named as such.
    #[arg(long, value_name = "ID|NAME")]
    scope_tag: Option<String>,
    #[arg(long)]
    json: bool,
}

fn one<T: Copy>(
    found: Vec<T>,
    what: &str,
    needle: &str,
    label: impl Fn(T) -> String,
) -> anyhow::Result<T> {
    match found.len() {
        // Intune's built-in targets are not Entra groups: say so, and where to look.
        0 if what == "group"
            && ["all devices", "all users"].contains(&needle.trim().to_lowercase().as_str()) =>
        {
            Err(crate::UserError(format!(
                "'{needle}' is Intune's built-in assignment target, not a group in the directory: `ringmaster org` lists the policies assigned to it (asgn), and `ringmaster explain --device X` shows when it reaches a device"
            ))
            .into())
        }
        0 => Err(crate::UserError(format!("no {what} matches '{needle}'")).into()),
        1 => Ok(found[0]),
        n => {
            let list: Vec<String> = found
                .iter()
                .take(10)
                .map(|&x| format!("  {}", label(x)))
                .collect();
            Err(crate::UserError(format!(
                "'{needle}' matches {n} {what}s; name one by id:\n{}",
                list.join("\n")
            ))
            .into())
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut p = super::conflicts::load(&a.org.org, &[], &[], a.assume_all_devices)?;
    // A device is explained from a resolution of it and its users alone
    // (the same answers about it, at a fraction of the fleet's work); a
    // group needs every member.
    let device = match &a.device {
        Some(needle) => Some(one(p.org.find_devices(needle), "device", needle, |r| {
            p.org.device_label(r)
        })?),
        None => None,
    };
    p.res = crate::progress::step("resolving groups and targets", || match device {
        Some(d) => {
            let within = ringmaster_core::targeting::Within::device(&p.org, d);
            ringmaster_core::targeting::resolve_within(&p.org, a.org.now(), &within)
        }
        None => ringmaster_core::targeting::resolve(&p.org, a.org.now()),
    });
    // The tag's view: reach is not cut here, since a device in scope still
    // gets the policies outside it; those are named instead.
    let scoped = match &a.scope_tag {
        Some(t) => {
            let arg = super::conflicts::TagArg::parse(t)?;
            let w = ringmaster_core::scopetags::within(&p.org, &p.res.enrolled, arg.tag());
            Some((arg, w))
        }
        None => None,
    };
    let (org, res) = (p.org, std::mem::take(&mut p.res));
    // Policies outside the tag among `ids`, by name.
    let outside = |ids: &mut dyn Iterator<Item = &str>| -> Vec<String> {
        let Some((_, w)) = &scoped else {
            return Vec::new();
        };
        let mut v: Vec<String> = ids
            .filter_map(|id| org.policy(id))
            .filter(|i| w.policies_outside.contains(i))
            .map(|i| org.policies[i].name.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    if let Some(g) = &a.group {
        let gi = one(org.find_groups(g), "group", g, |i| {
            format!("{} ({})", org.groups[i].name, org.groups[i].id)
        })?;
        let e = explain_group(&org, &res, gi);
        let out = outside(&mut e.assignments.iter().map(|p| p.policy_id.as_str()));
        if a.json {
            let mut v = serde_json::to_value(&e)?;
            if scoped.is_some() {
                v["outside_scope_tag"] = serde_json::json!(out);
            }
            super::write_json(&v)?;
        } else {
            print_group(&e);
            if let Some((t, _)) = &scoped {
                print_outside(&t.label, &out);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    // clap asks for --device or --group, and --group returned above.
    let d = device.ok_or_else(|| crate::UserError("give --device or --group".into()))?;
    if let Some((t, w)) = &scoped
        && !w.devices.contains(d)
    {
        let tags = ringmaster_core::scopetags::device_tags(&org, d, res.enrolled.contains(d));
        return Err(crate::UserError(format!(
            "device {} is outside scope tag {} (its tags: {})",
            org.device_label(d),
            t.label,
            if tags.is_empty() {
                "none: Intune does not manage it".to_string()
            } else {
                tags.join(", ")
            }
        ))
        .into());
    }
    let only = match &a.policy {
        Some(p) => Some(vec![one(org.find_policies(p), "policy", p, |i| {
            format!("{} ({})", org.policies[i].name, org.policies[i].id)
        })?]),
        None => None,
    };
    let e = explain_device(&org, &res, d, only.as_deref(), a.org.now());
    let out = outside(&mut e.policies.iter().map(|p| p.policy_id.as_str()));
    if a.json {
        let mut v = serde_json::to_value(&e)?;
        if scoped.is_some() {
            v["outside_scope_tag"] = serde_json::json!(out);
        }
        super::write_json(&v)?;
    } else {
        print_device(&org, &e);
        // Explain every policy behind a conflicting value, named or not.
        let mut others: Vec<usize> = e
            .conflicts
            .iter()
            .flat_map(|f| f.values.iter())
            .filter_map(|v| org.policy(&v.policy_id))
            .collect();
        others.sort_unstable();
        others.dedup();
        let more = explain_device(&org, &res, d, Some(&others), a.org.now());
        let reasons = e
            .policies
            .iter()
            .chain(&more.policies)
            .map(|p| (p.policy_id.clone(), p.reason.clone()))
            .collect();
        print_conflicts(&e, &reasons);
        if let Some((t, _)) = &scoped {
            print_outside(&t.label, &out);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Policies listed above that an administrator limited to the tag cannot see.
fn print_outside(label: &str, names: &[String]) {
    if names.is_empty() {
        println!("All policies above are within scope tag {label}.");
    } else {
        println!(
            "{} of the policies above are outside scope tag {label} (its administrators cannot see or change them): {}",
            names.len(),
            names.join(", ")
        );
    }
}

pub(crate) fn print_device(org: &Org, e: &DeviceExplanation) {
    let f = &e.device;
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("Device {}", org.device_label(f.row));
    println!(
        "  platform {}  os {}  model {}  ownership {}  primary user {}",
        dash(&f.platform),
        dash(&f.os_version),
        dash(&f.model),
        dash(&f.ownership),
        dash(&f.primary_user)
    );
    if !f.signed_in.is_empty() {
        println!("  signed in:     {}", f.signed_in.join(", "));
    }
    if !e.device_groups.is_empty() {
        println!("  device groups: {}", e.device_groups.join(", "));
    }
    if !e.user_groups.is_empty() {
        println!("  user groups:   {}", e.user_groups.join(", "));
    }
    let count = |s: Status| e.policies.iter().filter(|p| p.status == s).count();
    println!(
        "  {} {}: {} included, {} excluded, {} not targeted, {} not applicable",
        e.policies.len(),
        if e.policies.len() == 1 {
            "policy"
        } else {
            "policies"
        },
        count(Status::Included),
        count(Status::Excluded),
        count(Status::NotTargeted),
        count(Status::NotApplicable)
    );
    for p in &e.policies {
        println!();
        println!("{:<14} {}", p.status.label(), p.policy);
        println!("  why: {}", p.reason);
        for (id, why) in &p.settings_not_applicable {
            println!("  setting not applicable here: {id} ({why})");
        }
        for s in &p.assignments {
            let mark = if s.reaches {
                "reaches it"
            } else {
                "does not reach it"
            };
            println!("  {} {} ({mark})", s.intent, s.target);
            for v in &s.via {
                println!("      · {v}");
            }
            if let Some(fl) = &s.filter {
                let mode = match fl.mode {
                    ringmaster_core::model::FilterMode::Include => "include",
                    ringmaster_core::model::FilterMode::Exclude => "exclude",
                };
                let how = fl
                    .trace
                    .as_ref()
                    .map(describe_trace)
                    .unwrap_or_else(|| "rule could not be evaluated".into());
                println!(
                    "      filter '{}' ({mode} mode) {}: {}",
                    fl.name,
                    if fl.matched {
                        "matches"
                    } else {
                        "does not match"
                    },
                    how
                );
            }
        }
    }
}

fn print_conflicts(e: &DeviceExplanation, reasons: &std::collections::HashMap<String, String>) {
    if e.conflicts.is_empty() {
        return;
    }
    println!();
    println!("Setting conflicts on this device:");
    for f in &e.conflicts {
        println!(
            "  {}  {} ({})",
            f.kind.as_str().to_uppercase(),
            f.setting,
            f.setting_id
        );
        for v in &f.values {
            // Where the value comes from: why that policy reaches this device.
            let why = reasons
                .get(&v.policy_id)
                .map(String::as_str)
                .unwrap_or("it reaches this device");
            println!("      {:<10} from '{}': {}", v.value, v.name, why);
            if let Some(form) = &v.written_as {
                println!("      {:<10} set as {form}", "");
            }
            if let Some(d) = &v.maybe_default {
                println!("      {:<10} may be not configured: {d}", "");
            }
        }
        if let Some(eff) = &f.effective {
            println!("      effective: {eff}");
        }
    }
}

pub(crate) fn print_group(e: &GroupExplanation) {
    println!(
        "Group '{}' ({}), {}: {} users, {} devices",
        e.name, e.id, e.kind, e.users, e.devices
    );
    if e.devices_not_enrolled > 0 {
        println!(
            "  {} of those devices have no Intune record (Entra only): assignments to the group do not reach them",
            e.devices_not_enrolled
        );
    }
    if let Some(r) = &e.rule {
        println!("  rule: {r}");
    }
    if !e.parents.is_empty() {
        println!("  nested in: {}", e.parents.join(", "));
    }
    if e.assignments.is_empty() {
        println!("  nothing is assigned to it or to any group containing it");
    }
    for a in &e.assignments {
        let filter = match (&a.filter, a.filter_mode) {
            (Some(f), Some(m)) => format!(
                " with {} filter '{f}'",
                if m == ringmaster_core::model::FilterMode::Include {
                    "include"
                } else {
                    "exclude"
                }
            ),
            _ => String::new(),
        };
        println!("  {:<8} {} ({}){filter}", a.intent, a.policy, a.via);
    }
}
