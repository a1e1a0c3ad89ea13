//! The groups: dynamic ones (platform, ownership, maker, department and
//! country rules), then static ones (location × department device groups
//! nested under region and department parents, rings, lab, people groups,
//! projects), and the nesting written as group members.

use crate::reference::*;
use crate::{CO_MGMT_APP, INTUNE_PLAN, Summary, guid, line, write_page};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

pub(crate) struct GroupDef {
    pub id: String,
    pub name: String,
    pub description: String,
    pub rule: Option<String>,
    /// Nested members (group ids) for static parents.
    pub nested: Vec<String>,
    /// Whether it holds users (else devices), for choosing assignments.
    pub users: bool,
}

/// Every group, and where the ones members are drawn for sit in `defs`.
pub(crate) struct Groups {
    pub defs: Vec<GroupDef>,
    pub dynamic: u32,
    /// Whether sites are cities (else regions): a larger budget affords them.
    pub by_city: bool,
    /// The location × department device group, per place and department.
    pub loc: Vec<Vec<usize>>,
    /// Location × department groups and the parents that nest them: the
    /// scopes that settings-heavy variant policies are assigned to.
    pub sites: Vec<usize>,
    pub parents: Vec<usize>,
    pub ring0: usize,
    pub ring1: usize,
    pub lab: usize,
    pub vip: usize,
    pub execs: usize,
    pub it_users: usize,
    /// Project groups users join (not their nesting parent).
    pub projects: Vec<usize>,
}

impl Groups {
    /// The place (index into `loc`) of a city.
    pub fn place_of_city(&self, c: usize) -> usize {
        if self.by_city {
            c
        } else {
            ["AMER", "EMEA", "APAC"]
                .iter()
                .position(|r| *r == CITIES[c].region)
                .unwrap_or(0)
        }
    }
}

/// Static groups every organization has: location × department groups
/// (by city when `by_city`, else by region), their region and department
/// parents, rings, lab, people groups and the pilot rings parent.
fn fixed_static(by_city: bool) -> usize {
    if by_city {
        CITIES.len() * DEPARTMENTS.len() + 3 * DEPARTMENTS.len() + DEPARTMENTS.len() + 7
    } else {
        3 * DEPARTMENTS.len() + DEPARTMENTS.len() + 7
    }
}

fn new_group(
    g: &mut Vec<GroupDef>,
    rng: &mut ChaCha8Rng,
    name: String,
    description: &str,
    rule: Option<String>,
    users: bool,
) -> usize {
    g.push(GroupDef {
        id: guid(rng),
        name,
        description: description.into(),
        rule,
        nested: Vec::new(),
        users,
    });
    g.len() - 1
}

/// About `requested` groups, a third of them dynamic. Static groups have a
/// fixed core; the total grows to hold it so that a third stay dynamic.
pub(crate) fn define(requested: usize, rng: &mut ChaCha8Rng) -> Groups {
    let total = requested.max((fixed_static(false) * 3).div_ceil(2));
    let mut defs = Vec::new();
    let dynamic = dynamic_groups(&mut defs, total / 3, rng);
    static_groups(defs, dynamic, total, rng)
}

/// Dynamic membership rules as (name, rule, holds users): the usual
/// platform, ownership and maker groups, then department and country
/// combinations, models on builds and job titles in cities until `budget`
/// rules (at least one).
pub(crate) fn dynamic_rules(budget: usize) -> Vec<(String, String, bool)> {
    let mut dyn_rules: Vec<(String, String, bool)> = vec![
        ("Intune - Windows Devices".into(), r#"(device.deviceOSType -eq "Windows") and (device.managementType -eq "MDM")"#.into(), false),
        ("Intune - Windows 10 Devices".into(), r#"(device.deviceOSType -eq "Windows") and (device.deviceOSVersion -startsWith "10.0.1")"#.into(), false),
        ("Intune - Windows 11 Devices".into(), r#"(device.deviceOSType -eq "Windows") and (device.deviceOSVersion -startsWith "10.0.2")"#.into(), false),
        ("Intune - macOS Devices".into(), r#"(device.deviceOSType -eq "MacMDM")"#.into(), false),
        ("Intune - iPhone Devices".into(), r#"(device.deviceOSType -eq "iPhone")"#.into(), false),
        ("Intune - iPad Devices".into(), r#"(device.deviceOSType -eq "iPad")"#.into(), false),
        ("Intune - Android Devices".into(), r#"(device.deviceOSType -eq "AndroidForWork")"#.into(), false),
        ("Intune - Autopilot Devices".into(), r#"(device.devicePhysicalIds -any (_ -startsWith "[ZTDID]"))"#.into(), false),
        ("Intune - Corporate Owned Devices".into(), r#"(device.deviceOwnership -eq "Company")"#.into(), false),
        ("Intune - BYOD Devices".into(), r#"(device.deviceOwnership -eq "Personal")"#.into(), false),
        ("Intune - Virtual Machines".into(), r#"(device.deviceModel -contains "Virtual Machine") or (device.deviceModel -startsWith "Cloud PC")"#.into(), false),
        ("Intune - Co-managed Devices".into(), format!(r#"(device.deviceManagementAppId -eq "{CO_MGMT_APP}")"#), false),
        ("Secure Admin Workstations".into(), r#"(device.extensionAttribute1 -eq "SAW")"#.into(), false),
        ("New Starters (30 days)".into(), "(user.employeeHireDate -ge system.now -minus p30d)".into(), true),
        ("Intune Licensed Users".into(), format!(r#"user.assignedPlans -any (assignedPlan.servicePlanId -eq "{INTUNE_PLAN}" -and assignedPlan.capabilityStatus -eq "Enabled")"#), true),
    ];
    for m in [
        "Dell Inc.",
        "HP",
        "LENOVO",
        "Apple",
        "samsung",
        "Zebra Technologies",
    ] {
        dyn_rules.push((
            format!("Manufacturer - {m}"),
            format!(r#"(device.deviceManufacturer -eq "{m}")"#),
            false,
        ));
    }
    for d in DEPARTMENTS {
        dyn_rules.push((
            format!("Dept - {} Users", d.name),
            format!(r#"(user.department -eq "{}")"#, d.name),
            true,
        ));
    }
    let mut countries: Vec<&str> = CITIES.iter().map(|c| c.country).collect();
    countries.dedup();
    for c in &countries {
        dyn_rules.push((
            format!("Country - {c} Users"),
            format!(r#"(user.country -eq "{c}")"#),
            true,
        ));
    }
    'combos: for d in DEPARTMENTS {
        for c in &countries {
            if dyn_rules.len() >= budget * 2 {
                break 'combos;
            }
            dyn_rules.push((
                format!("{} - {c} Users", d.name),
                format!(
                    r#"(user.department -eq "{}") -and (user.country -eq "{c}")"#,
                    d.name
                ),
                true,
            ));
        }
    }
    'models: for m in MODELS {
        for (b, _) in builds(m.platform) {
            if dyn_rules.len() >= budget * 2 {
                break 'models;
            }
            dyn_rules.push((
                format!("{} on {b}", m.model),
                format!(
                    r#"(device.deviceModel -eq "{}") -and (device.deviceOSVersion -eq "{b}")"#,
                    m.model
                ),
                false,
            ));
        }
    }
    let mut t = 0;
    while dyn_rules.len() < budget {
        let d = &DEPARTMENTS[t % DEPARTMENTS.len()];
        let title = d.titles[(t / DEPARTMENTS.len()) % d.titles.len()];
        let city = CITIES[(t / 7) % CITIES.len()].name;
        dyn_rules.push((
            format!("{title}s in {city} #{t}"),
            format!(r#"(user.jobTitle -eq "{title}") -and (user.city -eq "{city}")"#),
            true,
        ));
        t += 1;
    }
    dyn_rules.truncate(budget.max(1));
    dyn_rules
}

/// Adds the dynamic groups; the last one becomes a memberOf rule over the
/// Autopilot group, as Entra allows for nesting dynamic groups.
fn dynamic_groups(defs: &mut Vec<GroupDef>, budget: usize, rng: &mut ChaCha8Rng) -> u32 {
    let mut dyn_ids = Vec::new();
    for (name, rule, users) in dynamic_rules(budget) {
        dyn_ids.push(new_group(
            defs,
            rng,
            name,
            "Dynamic membership",
            Some(rule),
            users,
        ));
    }
    if let Some(&autopilot) = dyn_ids.get(7) {
        let id = defs[autopilot].id.clone();
        let last = dyn_ids.len() - 1;
        defs[dyn_ids[last]].name = "Autopilot Devices (memberOf)".into();
        defs[dyn_ids[last]].rule = Some(format!(
            r#"device.memberOf -any (group.objectId -in ["{id}"])"#
        ));
        defs[dyn_ids[last]].users = false;
    }
    dyn_ids.len() as u32
}

/// Adds the static groups after the dynamic ones until `total`: location ×
/// department device groups nested under region and department parents;
/// rings; people groups; projects (four or more nest three under a parent).
fn static_groups(
    mut groups: Vec<GroupDef>,
    dynamic: u32,
    total: usize,
    rng: &mut ChaCha8Rng,
) -> Groups {
    let static_budget = total.saturating_sub(groups.len());
    let by_city = static_budget >= fixed_static(true);
    let places: Vec<String> = if by_city {
        CITIES.iter().map(|c| c.name.to_string()).collect()
    } else {
        vec!["AMER".into(), "EMEA".into(), "APAC".into()]
    };
    let mut loc_group = vec![vec![0usize; DEPARTMENTS.len()]; places.len()];
    for (pi, place) in places.iter().enumerate() {
        for (di, d) in DEPARTMENTS.iter().enumerate() {
            loc_group[pi][di] = new_group(
                &mut groups,
                rng,
                format!("{place} - {} Devices", d.name),
                "Assigned",
                None,
                false,
            );
        }
    }
    if by_city {
        for region in ["AMER", "EMEA", "APAC"] {
            for (di, d) in DEPARTMENTS.iter().enumerate() {
                let parent = new_group(
                    &mut groups,
                    rng,
                    format!("{region} - {} Devices (all sites)", d.name),
                    "Nested: the region's site groups",
                    None,
                    false,
                );
                groups[parent].nested = CITIES
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.region == region)
                    .map(|(ci, _)| groups[loc_group[ci][di]].id.clone())
                    .collect();
            }
        }
    }
    for (di, d) in DEPARTMENTS.iter().enumerate() {
        let parent = new_group(
            &mut groups,
            rng,
            format!("All {} Devices", d.name),
            "Nested: every location's group",
            None,
            false,
        );
        let kids: Vec<String> = if by_city {
            groups
                .iter()
                .filter(|g| {
                    g.name
                        .ends_with(&format!("- {} Devices (all sites)", d.name))
                })
                .map(|g| g.id.clone())
                .collect()
        } else {
            (0..places.len())
                .map(|pi| groups[loc_group[pi][di]].id.clone())
                .collect()
        };
        groups[parent].nested = kids;
    }
    let sites: Vec<usize> = loc_group.iter().flatten().copied().collect();
    let parents: Vec<usize> = (0..groups.len())
        .filter(|&g| !groups[g].nested.is_empty())
        .collect();
    let mut people = |name: &str, description: &str, users: bool| {
        new_group(&mut groups, rng, name.into(), description, None, users)
    };
    let ring0 = people("Ring 0 - IT Pilot Devices", "Assigned", false);
    let ring1 = people("Ring 1 - Early Adopter Devices", "Assigned", false);
    let lab = people("Lab and Test Devices", "Assigned", false);
    let vip = people("VIP Users", "Executives and VIPs: never in pilots", true);
    let execs = people("Executive Leadership", "Assigned", true);
    let it_users = people("IT Staff", "Assigned", true);
    let pilot_all = people("Pilot Rings (all)", "Nested: ring 0 and ring 1", false);
    groups[pilot_all].nested = vec![groups[ring0].id.clone(), groups[ring1].id.clone()];
    let mut projects = Vec::new();
    while groups.len() < total {
        let n = projects.len() + 1;
        projects.push(new_group(
            &mut groups,
            rng,
            format!("Project {n:03} Members"),
            "Assigned",
            None,
            true,
        ));
    }
    if projects.len() >= 4 {
        let parent = projects.pop().expect("non-empty");
        groups[parent].name = "All Project Members".into();
        groups[parent].nested = projects[..3]
            .iter()
            .map(|&p| groups[p].id.clone())
            .collect();
    }
    Groups {
        defs: groups,
        dynamic,
        by_city,
        loc: loc_group,
        sites,
        parents,
        ring0,
        ring1,
        lab,
        vip,
        execs,
        it_users,
        projects,
    }
}

/// The group members file, written as users and devices are drawn.
pub(crate) struct Members {
    w: BufWriter<File>,
    /// Members written.
    pub count: u64,
}

impl Members {
    pub fn new(w: BufWriter<File>) -> Members {
        Members { w, count: 0 }
    }

    pub fn add(&mut self, g: &GroupDef, id: &str, kind: &str) -> io::Result<()> {
        self.count += 1;
        line(
            &mut self.w,
            &json!({"groupId": g.id, "memberId": id, "memberType": kind}),
        )
    }

    /// Every nested group as a member of its parent.
    pub fn add_nesting(&mut self, groups: &[GroupDef]) -> io::Result<()> {
        for g in groups {
            for n in &g.nested {
                self.add(g, n, "group")?;
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<u64> {
        use std::io::Write;
        self.w.flush()?;
        Ok(self.count)
    }
}

pub(crate) fn write_groups(dir: &Path, groups: &[GroupDef], s: &mut Summary) -> io::Result<()> {
    let value: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut v = json!({
                "id": g.id,
                "displayName": g.name,
                "description": g.description,
                "securityEnabled": true,
                "mailEnabled": false,
                "groupTypes": if g.rule.is_some() { vec!["DynamicMembership"] } else { Vec::new() },
            });
            if let Some(r) = &g.rule {
                v["membershipRule"] = json!(r);
                v["membershipRuleProcessingState"] = json!("On");
            }
            v
        })
        .collect();
    write_page(
        dir,
        "groups.json",
        "https://graph.microsoft.com/v1.0/$metadata#groups",
        value,
        s,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(3)
    }

    #[test]
    fn dynamic_rules_start_with_the_usual_groups_and_fill_the_budget() {
        let r = dynamic_rules(40);
        assert_eq!(r.len(), 40);
        assert_eq!(r[0].0, "Intune - Windows Devices");
        assert_eq!(r[7].0, "Intune - Autopilot Devices");
        assert!(
            r.iter()
                .any(|(n, _, users)| n == "Dept - IT Users" && *users)
        );
        // A large budget is filled with job titles in cities.
        let r = dynamic_rules(2000);
        assert_eq!(r.len(), 2000);
        assert!(r.last().unwrap().1.starts_with("(user.jobTitle -eq "));
        // Never fewer than one.
        assert_eq!(dynamic_rules(0).len(), 1);
    }

    #[test]
    fn a_small_budget_groups_by_region_and_a_third_is_dynamic() {
        let g = define(40, &mut rng());
        // The fixed static core does not fit 40: the total grows to hold it.
        let total = (fixed_static(false) * 3).div_ceil(2);
        assert_eq!(g.defs.len(), total);
        assert_eq!(g.dynamic as usize, total / 3);
        assert!(!g.by_city);
        assert_eq!(g.loc.len(), 3);
        assert_eq!(
            g.defs[g.loc[g.place_of_city(0)][0]].name,
            format!("{} - {} Devices", CITIES[0].region, DEPARTMENTS[0].name)
        );
        // The last dynamic group nests the Autopilot group by a memberOf rule.
        let last = &g.defs[g.dynamic as usize - 1];
        assert_eq!(last.name, "Autopilot Devices (memberOf)");
        assert!(last.rule.as_ref().unwrap().contains(&g.defs[7].id));
        // Every department's parent nests its three region groups.
        for d in DEPARTMENTS {
            let parent = g
                .defs
                .iter()
                .find(|x| x.name == format!("All {} Devices", d.name))
                .unwrap();
            assert_eq!(parent.nested.len(), 3, "{}", d.name);
        }
        assert_eq!(g.defs[g.vip].name, "VIP Users");
        assert!(g.defs[g.vip].users && !g.defs[g.ring0].users);
    }

    #[test]
    fn a_large_budget_groups_by_city_with_region_parents_and_projects() {
        let g = define(2000, &mut rng());
        assert_eq!(g.defs.len(), 2000);
        assert!(g.by_city);
        assert_eq!(g.loc.len(), CITIES.len());
        assert_eq!(g.place_of_city(5), 5);
        let emea_it = g
            .defs
            .iter()
            .find(|x| x.name == "EMEA - IT Devices (all sites)")
            .unwrap();
        let emea_cities = CITIES.iter().filter(|c| c.region == "EMEA").count();
        assert_eq!(emea_it.nested.len(), emea_cities);
        assert!(g.parents.len() >= 4 * DEPARTMENTS.len());
        let all_projects = g
            .defs
            .iter()
            .find(|x| x.name == "All Project Members")
            .unwrap();
        assert_eq!(all_projects.nested.len(), 3);
        assert!(
            g.projects
                .iter()
                .all(|&p| g.defs[p].name.starts_with("Project "))
        );
    }

    #[test]
    fn the_same_seed_defines_the_same_groups() {
        let a = define(100, &mut rng());
        let b = define(100, &mut rng());
        let ids = |g: &Groups| g.defs.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        let c = define(100, &mut ChaCha8Rng::seed_from_u64(4));
        assert_ne!(ids(&a), ids(&c));
    }
}
