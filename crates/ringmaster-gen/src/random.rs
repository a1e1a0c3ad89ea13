//! The random-membership layout: the outside anchor for conflict analysis
//! (issue 23). Every device is a Windows device in `MEMBERSHIPS` static
//! groups drawn at random; every policy is a Windows configuration policy
//! assigned to three of those groups and excluding a fourth, with
//! `settings_per_policy` settings drawn from a pool of `SETTING_POOL` ids,
//! each an integer 1 to 3 so that policies meeting on a device often
//! disagree. Nothing is clustered by site or department, so no shortcut
//! that leans on realistic structure helps the analysis.
//!
//! The files are an ordinary Graph export; `scripts/duckdb-conflicts`
//! reads the same files to run the same question in DuckDB.

use crate::groups::{GroupDef, Members};
use crate::policies::setting_json;
use crate::{Options, Summary, line, ndjson, write_page};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use ringmaster_core::progress::Progress;
use serde_json::{Value, json};
use std::io;
use std::path::Path;

/// Groups each device is a member of (fewer when there are fewer groups).
pub const MEMBERSHIPS: usize = 10;
/// Distinct setting ids the policies draw from.
pub const SETTING_POOL: usize = 20_000;
/// Group assignments per policy: this many includes, then one exclusion.
pub const INCLUDES: usize = 3;

pub(crate) fn group_count(o: &Options) -> u32 {
    o.groups.unwrap_or(2000).max(1)
}
pub(crate) fn policy_count(o: &Options) -> u32 {
    o.policies.unwrap_or(2000).max(1)
}
pub(crate) fn settings_per_policy(o: &Options) -> u32 {
    o.settings_per_policy
        .unwrap_or(50)
        .clamp(1, SETTING_POOL as u32)
}

/// The setting id of pool entry `k`: an ordinary settings-catalog form.
pub fn setting_id(k: usize) -> String {
    format!("device_vendor_msft_policy_config_anchor_setting{k:05}")
}

/// Ids derived from the device number: unique, and cheap at two million.
fn device_ids(d: u32) -> (String, String, String) {
    (
        format!("a0000000-0000-4000-8000-{d:012x}"),
        format!("b0000000-0000-4000-8000-{d:012x}"),
        format!("c0000000-0000-4000-8000-{d:012x}"),
    )
}

pub(crate) fn write_all(
    dir: &Path,
    o: &Options,
    progress: &Progress,
    rng: &mut ChaCha8Rng,
) -> io::Result<Summary> {
    let mut s = Summary {
        users: 0,
        devices: o.devices,
        ..Default::default()
    };
    let groups: Vec<GroupDef> = (0..group_count(o))
        .map(|g| GroupDef {
            id: format!("d0000000-0000-4000-8000-{g:012x}"),
            name: format!("Random Group {:04}", g + 1),
            description: "Random membership (ringmaster gen --layout random)".into(),
            rule: None,
            nested: Vec::new(),
            users: false,
        })
        .collect();
    s.groups = groups.len() as u32;
    let per_device = MEMBERSHIPS.min(groups.len());

    let mut members = Members::new(ndjson(dir, "groupMembers.ndjson", &mut s.files)?);
    let mut uw = ndjson(dir, "users.ndjson", &mut s.files)?;
    io::Write::flush(&mut uw)?;
    let mut mw = ndjson(dir, "managedDevices.ndjson", &mut s.files)?;
    let mut ew = ndjson(dir, "devices.ndjson", &mut s.files)?;
    progress.begin("writing devices", "records", u64::from(o.devices));
    for d in 0..o.devices {
        let (managed, device_id, object) = device_ids(d);
        let name = format!("RND-{:07}", d + 1);
        line(
            &mut mw,
            &json!({
                "id": managed,
                "deviceName": name,
                "azureADDeviceId": device_id,
                "operatingSystem": "Windows",
                "osVersion": "10.0.26100.2894",
                "model": "Latitude 7450",
                "manufacturer": "Dell Inc.",
                "managedDeviceOwnerType": "company",
                "joinType": "azureADJoined",
                "serialNumber": format!("RND{:09}", d + 1),
                "complianceState": "compliant",
            }),
        )?;
        line(
            &mut ew,
            &json!({
                "id": object,
                "deviceId": device_id,
                "displayName": name,
                "operatingSystem": "Windows",
                "operatingSystemVersion": "10.0.26100.2894",
                "trustType": "AzureAd",
                "accountEnabled": true,
                "deviceOwnership": "Company",
                "managementType": "MDM",
            }),
        )?;
        for g in rand::seq::index::sample(rng, groups.len(), per_device) {
            members.add(&groups[g], &object, "device")?;
        }
        progress.add(1);
    }
    io::Write::flush(&mut mw)?;
    io::Write::flush(&mut ew)?;
    s.group_members = members.finish()?;

    progress.begin("writing groups and policies", "", 0);
    crate::groups::write_groups(dir, &groups, &mut s)?;
    write_page(
        dir,
        "assignmentFilters.json",
        "https://graph.microsoft.com/beta/$metadata#deviceManagement/assignmentFilters",
        Vec::new(),
        &mut s,
    )?;
    let k = settings_per_policy(o) as usize;
    let policies: Vec<Value> = (0..policy_count(o))
        .map(|i| policy(i, &groups, k, rng, &mut s))
        .collect();
    s.policies = policies.len() as u32;
    write_page(
        dir,
        "configurationPolicies.json",
        "https://graph.microsoft.com/beta/$metadata#deviceManagement/configurationPolicies(assignments(),settings())",
        policies,
        &mut s,
    )?;
    write_page(
        dir,
        "deviceCompliancePolicies.json",
        "https://graph.microsoft.com/beta/$metadata#deviceManagement/deviceCompliancePolicies(assignments())",
        Vec::new(),
        &mut s,
    )?;
    Ok(s)
}

/// Policy `i`: `k` settings from the pool, three included groups and one
/// excluded group, all distinct (fewer includes when there are fewer groups).
fn policy(i: u32, groups: &[GroupDef], k: usize, rng: &mut ChaCha8Rng, s: &mut Summary) -> Value {
    let settings: Vec<Value> = rand::seq::index::sample(rng, SETTING_POOL, k)
        .into_iter()
        .enumerate()
        .map(|(n, idx)| {
            let v = json!(rng.random_range(1..=3));
            json!({"id": n.to_string(), "settingInstance": setting_json(&setting_id(idx), &v)})
        })
        .collect();
    s.setting_leaves += k as u64;
    let m = (INCLUDES + 1).min(groups.len());
    let mut assignments: Vec<Value> = Vec::new();
    for (n, g) in rand::seq::index::sample(rng, groups.len(), m)
        .into_iter()
        .enumerate()
    {
        // The last group drawn is excluded, unless it is the only one.
        let kind = if n + 1 < m || m == 1 {
            "groupAssignmentTarget"
        } else {
            "exclusionGroupAssignmentTarget"
        };
        assignments.push(json!({
            "id": format!("{i}_{n}"),
            "target": {
                "@odata.type": format!("#microsoft.graph.{kind}"),
                "groupId": groups[g].id,
                "deviceAndAppManagementAssignmentFilterType": "none",
            },
        }));
    }
    s.assignments += assignments.len() as u32;
    json!({
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy",
        "id": format!("e0000000-0000-4000-8000-{i:012x}"),
        "name": format!("Win - Random {:04}", i + 1),
        "description": "Generated by ringmaster gen --layout random",
        "platforms": "windows10",
        "technologies": "mdm",
        "settingCount": settings.len(),
        "settings": settings,
        "assignments": assignments,
    })
}
