//! The users: department and city by weight, a few VIPs and new starters,
//! a manager per department and city, Intune licences for most.

use crate::groups::{Groups, Members};
use crate::reference::*;
use crate::{FIRST, INTUNE_PLAN, LAST, guid, line, unix_to_rfc3339, weighted_index};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use ringmaster_core::progress::Progress;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{self, BufWriter, Write};

/// What devices need to know of their user.
pub(crate) struct UserInfo {
    pub id: String,
    /// Index into `DEPARTMENTS`.
    pub dept: usize,
    /// Index into `CITIES`.
    pub city: usize,
    pub it: bool,
    pub vip: bool,
}

/// Writes `count` users to `w` and their people-group and project
/// memberships to `members`; `base` is the Unix time hire dates count back from.
pub(crate) fn write_users(
    w: &mut BufWriter<File>,
    (count, progress): (u32, &Progress),
    base: i64,
    groups: &Groups,
    members: &mut Members,
    rng: &mut ChaCha8Rng,
) -> io::Result<Vec<UserInfo>> {
    let mut users: Vec<UserInfo> = Vec::with_capacity(count as usize);
    let mut managers: Vec<Option<String>> = vec![None; DEPARTMENTS.len() * CITIES.len()];
    let projects = &groups.projects;
    let project_p = if projects.is_empty() {
        0.0
    } else {
        (projects.len() as f64 * 150.0 / count as f64).min(1.0)
    };
    for u in 0..count {
        if u % 4096 == 4095 {
            progress.add(4096);
        }
        let (info, rec) = draw_user(u, base, &mut managers, rng);
        line(w, &rec)?;
        let defs = &groups.defs;
        if info.vip {
            members.add(&defs[groups.vip], &info.id, "user")?;
        }
        if DEPARTMENTS[info.dept].name == "Executive" {
            members.add(&defs[groups.execs], &info.id, "user")?;
        }
        if info.it {
            members.add(&defs[groups.it_users], &info.id, "user")?;
        }
        if rng.random_bool(project_p) {
            let k = rng.random_range(1..=2usize.min(projects.len()));
            for _ in 0..k {
                let p = projects[rng.random_range(0..projects.len())];
                members.add(&defs[p], &info.id, "user")?;
            }
        }
        users.push(info);
    }
    w.flush()?;
    Ok(users)
}

/// User number `u` and its Graph record. The first user of a department
/// and city becomes the manager of the later ones (`managers`).
fn draw_user(
    u: u32,
    base: i64,
    managers: &mut [Option<String>],
    rng: &mut ChaCha8Rng,
) -> (UserInfo, Value) {
    let id = guid(rng);
    let di = weighted_index(rng, DEPARTMENTS, |d| d.weight);
    let ci = weighted_index(rng, CITIES, |c| c.weight);
    let (dept, city) = (&DEPARTMENTS[di], &CITIES[ci]);
    let first = FIRST.choose(rng).copied().unwrap_or("Alex");
    let last = LAST.choose(rng).copied().unwrap_or("Smith");
    let upn = format!(
        "{}.{}{}@contoso.com",
        first.to_lowercase(),
        last.to_lowercase(),
        u
    );
    let title = dept.titles.choose(rng).copied().unwrap_or("Employee");
    let is_exec = dept.name == "Executive";
    let is_vip = is_exec || rng.random_bool(0.002);
    let is_it = dept.name == "IT";
    let hire_days: i64 = if rng.random_bool(0.02) {
        rng.random_range(0..30)
    } else {
        rng.random_range(30..3650)
    };
    let hire = base - hire_days * 86_400;
    let mkey = di * CITIES.len() + ci;
    let manager = managers[mkey].clone();
    if manager.is_none() {
        managers[mkey] = Some(id.clone());
    }
    let licensed = rng.random_bool(0.96);
    let rec = json!({
        "id": id,
        "userPrincipalName": upn,
        "displayName": format!("{first} {last}"),
        "givenName": first,
        "surname": last,
        "mail": upn,
        "department": dept.name,
        "jobTitle": title,
        "companyName": "Contoso",
        "city": city.name,
        "country": city.country,
        "usageLocation": city.country,
        "employeeId": format!("E{u:07}"),
        "employeeHireDate": unix_to_rfc3339(hire),
        "userType": "Member",
        "accountEnabled": rng.random_bool(0.99),
        "manager": manager,
        "assignedPlans": [{"servicePlanId": INTUNE_PLAN, "capabilityStatus": if licensed { "Enabled" } else { "Deleted" }, "service": "SCO"}],
        "onPremisesExtensionAttributes": {"extensionAttribute1": format!("CC-{}", 1000 + di * 10 + ci % 10)},
        "isVip": is_vip,
        "isItStaff": is_it,
    });
    let info = UserInfo {
        id,
        dept: di,
        city: ci,
        it: is_it,
        vip: is_vip,
    };
    (info, rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn users_are_drawn_with_managers_vips_and_licences() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut managers = vec![None; DEPARTMENTS.len() * CITIES.len()];
        let drawn: Vec<(UserInfo, Value)> = (0..2000)
            .map(|u| draw_user(u, 1_793_491_200, &mut managers, &mut rng))
            .collect();
        for (i, (info, rec)) in drawn.iter().enumerate() {
            assert_eq!(rec["id"], info.id.as_str());
            assert_eq!(rec["department"], DEPARTMENTS[info.dept].name);
            assert_eq!(rec["city"], CITIES[info.city].name);
            assert_eq!(rec["employeeId"], format!("E{i:07}"));
            assert!(
                rec["userPrincipalName"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("{i}@contoso.com"))
            );
            if DEPARTMENTS[info.dept].name == "Executive" {
                assert!(info.vip, "executives are VIPs");
            }
            assert_eq!(info.it, DEPARTMENTS[info.dept].name == "IT");
            // The manager is the first user drawn in the same department and city.
            let first = drawn
                .iter()
                .find(|(o, _)| o.dept == info.dept && o.city == info.city)
                .unwrap();
            if first.0.id == info.id {
                assert!(rec["manager"].is_null());
            } else {
                assert_eq!(rec["manager"], first.0.id.as_str());
            }
        }
        let unlicensed = drawn
            .iter()
            .filter(|(_, r)| r["assignedPlans"][0]["capabilityStatus"] == "Deleted")
            .count();
        assert!((20..=160).contains(&unlicensed), "about 4 %: {unlicensed}");
    }
}
