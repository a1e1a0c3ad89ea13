//! Assignment filters and policies: settings-catalog configuration
//! policies on real setting ids (themes, or settings-heavy Internet
//! Explorer zone policies) and compliance policies, each with a few
//! assignments, filters and exclusions.

use crate::groups::{GroupDef, Groups};
use crate::reference::{self, *};
use crate::{Summary, guid, write_page};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::io;
use std::path::Path;

pub(crate) struct FilterDef {
    id: String,
    platform: &'static str,
}

/// The usual filters (Windows builds, ownership, models), then build, name
/// and category filters until `count`.
pub(crate) fn write_filters(
    dir: &Path,
    count: u32,
    rng: &mut ChaCha8Rng,
    s: &mut Summary,
) -> io::Result<Vec<FilterDef>> {
    let mut defs: Vec<(String, &'static str, String)> = vec![
        ("Windows 11".into(), "windows10AndLater", r#"(device.osVersion -startsWith "10.0.2")"#.into()),
        ("Windows 10".into(), "windows10AndLater", r#"(device.osVersion -startsWith "10.0.1")"#.into()),
        ("Windows 11 24H2 or later".into(), "windows10AndLater", "(device.operatingSystemVersion -ge 10.0.26100.0)".into()),
        ("Corporate Windows".into(), "windows10AndLater", r#"(device.deviceOwnership -eq "Corporate")"#.into()),
        ("Virtual machines".into(), "windows10AndLater", r#"(device.model -contains "Virtual Machine") or (device.model -startsWith "Cloud PC")"#.into()),
        ("Surface devices".into(), "windows10AndLater", r#"(device.manufacturer -eq "Microsoft Corporation") and (device.model -startsWith "Surface")"#.into()),
        ("Autopilot enrolled".into(), "windows10AndLater", r#"(device.enrollmentProfileName -startsWith "Autopilot")"#.into()),
        ("ARM64 Windows".into(), "windows10AndLater", r#"(device.cpuArchitecture -eq "arm64")"#.into()),
        ("Hybrid joined".into(), "windows10AndLater", r#"(device.deviceTrustType -eq "Hybrid Azure AD joined")"#.into()),
        ("Corporate iPhones".into(), "iOS", r#"(device.deviceOwnership -eq "Corporate") and (device.model -startsWith "iPhone")"#.into()),
        ("MacBooks".into(), "macOS", r#"(device.model -startsWith "MacBook")"#.into()),
        ("Zebra scanners".into(), "androidForWork", r#"(device.manufacturer -eq "Zebra Technologies")"#.into()),
    ];
    let mut n = 0;
    while defs.len() < count as usize {
        let build = ["10.0.22621", "10.0.22631", "10.0.26100", "10.0.19045"][n % 4];
        let city = &CITIES[n % CITIES.len()];
        let d = &DEPARTMENTS[(n / 3) % DEPARTMENTS.len()];
        let (name, rule) = match n % 3 {
            0 => (
                format!("Build {build} #{n}"),
                format!(r#"(device.osVersion -startsWith "{build}")"#),
            ),
            1 => (
                format!("{} {} names #{n}", city.country, d.code),
                format!(
                    r#"(device.deviceName -startsWith "{}{}")"#,
                    city.country, d.code
                ),
            ),
            _ => (
                format!("{} category #{n}", d.name),
                format!(r#"(device.deviceCategory -eq "{} devices")"#, d.name),
            ),
        };
        defs.push((name, "windows10AndLater", rule));
        n += 1;
    }
    defs.truncate(count as usize);
    let mut out = Vec::new();
    let value: Vec<Value> = defs
        .into_iter()
        .map(|(name, platform, rule)| {
            let id = guid(rng);
            out.push(FilterDef { id: id.clone(), platform });
            json!({"id": id, "displayName": name, "platform": platform, "rule": rule, "assignmentFilterManagementType": "devices"})
        })
        .collect();
    s.filters = value.len() as u32;
    write_page(
        dir,
        "assignmentFilters.json",
        "https://graph.microsoft.com/beta/$metadata#deviceManagement/assignmentFilters",
        value,
        s,
    )?;
    Ok(out)
}

/// A settings-catalog setting instance: a choice for strings, an integer otherwise.
pub(crate) fn setting_json(id: &str, v: &Value) -> Value {
    match v {
        Value::String(opt) => json!({
            "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
            "settingDefinitionId": id,
            "choiceSettingValue": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingValue", "value": format!("{id}_{opt}"), "children": []}
        }),
        other => json!({
            "@odata.type": "#microsoft.graph.deviceManagementConfigurationSimpleSettingInstance",
            "settingDefinitionId": id,
            "simpleSettingValue": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationIntegerSettingValue", "value": other}
        }),
    }
}

/// Draws assignments: group, All devices or All licensed users targets,
/// a filter on about a third, an exclusion on about half the policies.
struct Assigner<'a> {
    groups: &'a Groups,
    filters: &'a [FilterDef],
    device_groups: Vec<usize>,
    user_groups: Vec<usize>,
    /// Assignments drawn so far.
    count: u32,
}

impl<'a> Assigner<'a> {
    fn new(groups: &'a Groups, filters: &'a [FilterDef]) -> Self {
        let defs: &[GroupDef] = &groups.defs;
        Assigner {
            groups,
            filters,
            device_groups: (0..defs.len()).filter(|&g| !defs[g].users).collect(),
            user_groups: (0..defs.len()).filter(|&g| defs[g].users).collect(),
            count: 0,
        }
    }

    /// Two to five includes (`scoped`: site or department groups, for
    /// settings-heavy variants) and maybe an exclusion.
    fn assign(
        &mut self,
        rng: &mut ChaCha8Rng,
        platform: &str,
        prefer_users: bool,
        scoped: bool,
    ) -> Vec<Value> {
        let groups = self.groups;
        let (sites, parents, defs) = (&groups.sites, &groups.parents, &groups.defs);
        let mut out = Vec::new();
        let includes = rng.random_range(2..=5);
        for _ in 0..includes {
            let roll: f64 = rng.random();
            let target = if scoped && !sites.is_empty() {
                // A variant for some sites, now and then for a whole department.
                let g = if rng.random_bool(0.9) || parents.is_empty() {
                    sites[rng.random_range(0..sites.len())]
                } else {
                    parents[rng.random_range(0..parents.len())]
                };
                json!({"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": defs[g].id})
            } else if roll < 0.08 {
                json!({"@odata.type": "#microsoft.graph.allDevicesAssignmentTarget"})
            } else if roll < 0.12 {
                json!({"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget"})
            } else {
                let pool = if prefer_users && !self.user_groups.is_empty() {
                    &self.user_groups
                } else {
                    &self.device_groups
                };
                let g = pool[rng.random_range(0..pool.len())];
                json!({"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": defs[g].id})
            };
            let mut target = target;
            let matching: Vec<&FilterDef> = self
                .filters
                .iter()
                .filter(|f| platform_matches(f.platform, platform))
                .collect();
            if !matching.is_empty() && rng.random_bool(0.35) {
                let f = matching[rng.random_range(0..matching.len())];
                target["deviceAndAppManagementAssignmentFilterId"] = json!(f.id);
                target["deviceAndAppManagementAssignmentFilterType"] =
                    json!(if rng.random_bool(0.6) {
                        "include"
                    } else {
                        "exclude"
                    });
            } else {
                target["deviceAndAppManagementAssignmentFilterType"] = json!("none");
            }
            out.push(
                json!({"id": format!("{}_{}", out.len(), rng.random::<u32>()), "target": target}),
            );
        }
        if rng.random_bool(0.5) {
            let g = if prefer_users {
                groups.vip
            } else if rng.random_bool(0.5) {
                groups.lab
            } else {
                groups.ring0
            };
            out.push(json!({"target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": defs[g].id}}));
        }
        self.count += out.len() as u32;
        out
    }
}

/// Writes `count` policies, a tenth (at least two) of them compliance
/// policies; with `bulk`, most configuration policies are settings-heavy.
pub(crate) fn write_policies(
    dir: &Path,
    count: u32,
    bulk: Option<u32>,
    groups: &Groups,
    filters: &[FilterDef],
    rng: &mut ChaCha8Rng,
    s: &mut Summary,
) -> io::Result<()> {
    let compliance_n = (count / 10).max(2);
    let config_n = count.saturating_sub(compliance_n);
    let mut assigner = Assigner::new(groups, filters);
    let config: Vec<Value> = (0..config_n)
        .map(|i| config_policy(i, bulk, &mut assigner, rng, s))
        .collect();
    let compliance: Vec<Value> = (0..compliance_n)
        .map(|i| compliance_policy(i, &mut assigner, rng))
        .collect();
    s.policies = config_n + compliance_n;
    write_page(
        dir,
        "configurationPolicies.json",
        "https://graph.microsoft.com/beta/$metadata#deviceManagement/configurationPolicies(assignments(),settings())",
        config,
        s,
    )?;
    write_page(
        dir,
        "deviceCompliancePolicies.json",
        "https://graph.microsoft.com/beta/$metadata#deviceManagement/deviceCompliancePolicies(assignments())",
        compliance,
        s,
    )?;
    s.assignments = assigner.count;
    Ok(())
}

/// Configuration policy number `i`: a Windows theme (now and then the
/// macOS one) with most of its settings at their usual values, or, with
/// `bulk` and six times in ten, that many Internet Explorer zone settings.
fn config_policy(
    i: u32,
    bulk: Option<u32>,
    assigner: &mut Assigner<'_>,
    rng: &mut ChaCha8Rng,
    s: &mut Summary,
) -> Value {
    let windows_themes: Vec<&Theme> = THEMES
        .iter()
        .filter(|t| t.platform == "windows10")
        .collect();
    let theme = if rng.random_bool(0.9) {
        windows_themes[i as usize % windows_themes.len()]
    } else {
        &THEMES[THEMES.len() - 1]
    };
    let bulk_policy = bulk.filter(|_| rng.random_bool(0.6));
    let chosen = match bulk_policy {
        Some(k) => zone_settings(k, rng),
        None => theme_settings(theme, rng),
    };
    s.setting_leaves += chosen.len() as u64;
    let (theme_name, collection, template) = match bulk_policy {
        Some(_) => ("Internet Explorer (Legacy)", None, "none"),
        None => (theme.name, theme.collection, theme.template_family),
    };
    let settings: Vec<Value> = match collection {
        Some(parent) => vec![json!({"id": "0", "settingInstance": {
            "@odata.type": "#microsoft.graph.deviceManagementConfigurationGroupSettingCollectionInstance",
            "settingDefinitionId": parent,
            "groupSettingCollectionValue": [{"children": chosen.iter().map(|(id, v)| setting_json(id, v)).collect::<Vec<_>>()}]
        }})],
        None => chosen
            .iter()
            .enumerate()
            .map(
                |(k, (id, v))| json!({"id": k.to_string(), "settingInstance": setting_json(id, v)}),
            )
            .collect(),
    };
    let mac = bulk_policy.is_none() && theme.platform == "macOS";
    let prefix = if mac { "macOS" } else { "Win" };
    let platform = if mac { "macOS" } else { "windows10" };
    let prefer_users = rng.random_bool(0.2);
    let asg = assigner.assign(rng, platform, prefer_users, bulk_policy.is_some());
    json!({
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy",
        "id": guid(rng),
        "name": format!("{prefix} - {theme_name} - {:03}", i + 1),
        "description": "Generated by ringmaster gen",
        "platforms": platform,
        "technologies": "mdm",
        "settingCount": settings.len(),
        "templateReference": {"templateFamily": template},
        "settings": settings,
        "assignments": asg,
    })
}

/// `k` Internet Explorer zone settings, most at the usual value, some set
/// otherwise: overlap with realistic drift.
fn zone_settings(k: u32, rng: &mut ChaCha8Rng) -> Vec<(String, Value)> {
    let pool = IE_ZONES.len() * IE_SETTINGS.len();
    rand::seq::index::sample(rng, pool, (k as usize).min(pool))
        .into_vec()
        .into_iter()
        .map(|idx| {
            let id = format!(
                "device_vendor_msft_policy_config_internetexplorer_{}{}",
                IE_ZONES[idx / IE_SETTINGS.len()],
                IE_SETTINGS[idx % IE_SETTINGS.len()]
            );
            let v = if rng.random_bool(0.9) { "1" } else { "0" };
            (id, Value::String(v.into()))
        })
        .collect()
}

/// About three in four of a theme's settings (at least one), each at its
/// usual value 85 times in 100.
fn theme_settings(theme: &Theme, rng: &mut ChaCha8Rng) -> Vec<(String, Value)> {
    let mut chosen: Vec<(String, Value)> = Vec::new();
    for st in theme.settings {
        if rng.random_bool(0.75) || chosen.is_empty() {
            let v = match &st.value {
                reference::Value::Choice(opts) => {
                    let k = if rng.random_bool(0.85) {
                        st.usual
                    } else {
                        rng.random_range(0..opts.len())
                    };
                    Value::String(opts[k].to_string())
                }
                reference::Value::Int(lo, hi) => json!(if rng.random_bool(0.85) {
                    lo + (hi - lo) / 2
                } else {
                    rng.random_range(*lo..=*hi)
                }),
            };
            chosen.push((st.id.to_string(), v));
        }
    }
    chosen
}

/// Compliance policy number `i`: Windows twice in four, then macOS, then iOS.
fn compliance_policy(i: u32, assigner: &mut Assigner<'_>, rng: &mut ChaCha8Rng) -> Value {
    let (ty, platform, extra) = match i % 4 {
        0 | 1 => (
            "windows10CompliancePolicy",
            "windows10",
            json!({"bitLockerEnabled": true, "secureBootEnabled": true, "osMinimumVersion": "10.0.19045", "passwordMinimumLength": rng.random_range(8..=14)}),
        ),
        2 => (
            "macOSCompliancePolicy",
            "macOS",
            json!({"systemIntegrityProtectionEnabled": true, "passwordMinimumLength": rng.random_range(8..=12)}),
        ),
        _ => (
            "iosCompliancePolicy",
            "iOS",
            json!({"passcodeRequired": true, "passcodeMinimumLength": rng.random_range(4..=8)}),
        ),
    };
    let mut p = json!({
        "@odata.type": format!("#microsoft.graph.{ty}"),
        "id": guid(rng),
        "displayName": format!("Compliance - {platform} - {:02}", i + 1),
        "assignments": assigner.assign(rng, platform, true, false),
    });
    if let (Some(pm), Some(em)) = (p.as_object_mut(), extra.as_object()) {
        pm.extend(em.clone());
    }
    p
}

fn platform_matches(filter_platform: &str, policy_platform: &str) -> bool {
    matches!(
        (filter_platform, policy_platform),
        ("windows10AndLater", "windows10")
            | ("macOS", "macOS")
            | ("iOS", "iOS")
            | ("androidForWork", "android")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn filters_match_their_policys_platform() {
        assert!(platform_matches("windows10AndLater", "windows10"));
        assert!(platform_matches("androidForWork", "android"));
        assert!(!platform_matches("windows10AndLater", "macOS"));
        assert!(!platform_matches("iOS", "windows10"));
    }

    #[test]
    fn settings_are_drawn_from_the_theme_or_the_zones() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let zones = zone_settings(25, &mut rng);
        assert_eq!(zones.len(), 25);
        assert!(zones.iter().all(|(id, _)| id.starts_with("device_vendor_msft_policy_config_internetexplorer_")));
        let mut ids: Vec<&String> = zones.iter().map(|(id, _)| id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 25, "no setting twice");
        for theme in THEMES {
            let chosen = theme_settings(theme, &mut rng);
            assert!(!chosen.is_empty());
            assert!(
                chosen
                    .iter()
                    .all(|(id, _)| theme.settings.iter().any(|s| s.id == id))
            );
        }
    }

    #[test]
    fn policies_are_a_tenth_compliance_with_counted_assignments() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let groups = crate::groups::define(60, &mut rng);
        let mut s = Summary::default();
        let filters = write_filters(dir.path(), 12, &mut rng, &mut s).unwrap();
        assert_eq!(s.filters, 12);
        write_policies(dir.path(), 30, None, &groups, &filters, &mut rng, &mut s).unwrap();
        assert_eq!(s.policies, 30);
        let read = |f: &str| -> Value {
            serde_json::from_slice(&std::fs::read(dir.path().join(f)).unwrap()).unwrap()
        };
        let config = read("configurationPolicies.json");
        let compliance = read("deviceCompliancePolicies.json");
        assert_eq!(config["value"].as_array().unwrap().len(), 27);
        assert_eq!(compliance["value"].as_array().unwrap().len(), 3);
        let assignments: usize = [&config, &compliance]
            .iter()
            .flat_map(|p| p["value"].as_array().unwrap())
            .map(|p| p["assignments"].as_array().unwrap().len())
            .sum();
        assert_eq!(s.assignments as usize, assignments);
    }
}
