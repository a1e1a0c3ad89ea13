//! A representative pilot: devices chosen so that the pilot mirrors the
//! production population on platform, OS build family, department, location,
//! ownership and model; never a VIP's or executive's device, never a lab
//! device; IT staff first. Deterministic per plan (a stable hash of the plan
//! id and the device id orders candidates), and widening keeps who is in.

use crate::model::{DeviceAttr, UserAttr};
use crate::org::{NO_ROW, Org};
use roaring::RoaringBitmap;
use serde::Serialize;

/// A property the pilot must mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Platform,
    /// Platform and OS build family (`windows 10.0.22631`, `iOS 18`).
    OsFamily,
    /// The primary user's department.
    Department,
    /// The primary user's country.
    Location,
    Ownership,
    Model,
}

impl Dimension {
    pub const ALL: [Dimension; 6] = [
        Dimension::Platform,
        Dimension::OsFamily,
        Dimension::Department,
        Dimension::Location,
        Dimension::Ownership,
        Dimension::Model,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dimension::Platform => "platform",
            Dimension::OsFamily => "OS family",
            Dimension::Department => "department",
            Dimension::Location => "location",
            Dimension::Ownership => "ownership",
            Dimension::Model => "model",
        }
    }

    /// The stratum a device belongs to on this dimension.
    pub fn value(self, org: &Org, d: u32) -> String {
        let user = org
            .device_user
            .get(d as usize)
            .copied()
            .filter(|u| *u != NO_ROW);
        let dev = |a: DeviceAttr| org.device(a, d).unwrap_or("(unknown)").to_string();
        let usr = |a: UserAttr| {
            user.and_then(|u| org.user(a, u))
                .unwrap_or("(no user)")
                .to_string()
        };
        match self {
            Dimension::Platform => dev(DeviceAttr::Platform),
            Dimension::OsFamily => {
                let platform = dev(DeviceAttr::Platform);
                let os = org.device(DeviceAttr::OsVersion, d).unwrap_or("");
                // Windows builds differ in the third part; others in the first.
                let parts = if platform == "windows" { 3 } else { 1 };
                let family: Vec<&str> = os
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .split('.')
                    .take(parts)
                    .collect();
                format!("{platform} {}", family.join("."))
            }
            Dimension::Department => usr(UserAttr::Department),
            Dimension::Location => usr(UserAttr::Country),
            Dimension::Ownership => dev(DeviceAttr::Ownership),
            Dimension::Model => dev(DeviceAttr::Model),
        }
    }
}

/// Every device's stratum on a dimension as a small integer, with the
/// stratum names; computed from column codes, once per distinct value.
fn strata(org: &Org, dim: Dimension, rows: &[u32]) -> (Vec<u32>, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let mut ids: rustc_hash::FxHashMap<String, u32> = rustc_hash::FxHashMap::default();
    let mut intern = |s: String| -> u32 {
        let n = names.len() as u32;
        *ids.entry(s.clone()).or_insert_with(|| {
            names.push(s);
            n
        })
    };
    let device_col = |a: DeviceAttr| &org.devices.cols[a.index()];
    let user_col = |a: UserAttr| &org.users.cols[a.index()];
    let out: Vec<u32> = match dim {
        Dimension::Platform | Dimension::Ownership | Dimension::Model => {
            let col = device_col(match dim {
                Dimension::Platform => DeviceAttr::Platform,
                Dimension::Ownership => DeviceAttr::Ownership,
                _ => DeviceAttr::Model,
            });
            let map: Vec<u32> = (0..col.dict.len() as u32)
                .map(|c| intern(col.dict.value(c).unwrap_or("(unknown)").to_string()))
                .collect();
            rows.iter().map(|&d| map[col.code(d) as usize]).collect()
        }
        Dimension::OsFamily => {
            let (pc, oc) = (
                device_col(DeviceAttr::Platform),
                device_col(DeviceAttr::OsVersion),
            );
            let mut memo: rustc_hash::FxHashMap<(u32, u32), u32> = rustc_hash::FxHashMap::default();
            rows.iter()
                .map(|&d| {
                    let key = (pc.code(d), oc.code(d));
                    *memo.entry(key).or_insert_with(|| intern(dim.value(org, d)))
                })
                .collect()
        }
        Dimension::Department | Dimension::Location => {
            let col = user_col(if dim == Dimension::Department {
                UserAttr::Department
            } else {
                UserAttr::Country
            });
            let map: Vec<u32> = (0..col.dict.len() as u32)
                .map(|c| intern(col.dict.value(c).unwrap_or("(unknown)").to_string()))
                .collect();
            let none = intern("(no user)".to_string());
            rows.iter()
                .map(|&d| {
                    match org
                        .device_user
                        .get(d as usize)
                        .copied()
                        .filter(|u| *u != NO_ROW)
                    {
                        Some(u) => map[col.code(u) as usize],
                        None => none,
                    }
                })
                .collect()
        }
    };
    (out, names)
}

/// A device's place in a plan's order: [`crate::fnv1a`] of plan and id.
pub fn stable_hash(plan: &str, id: &str) -> u64 {
    let mut h = crate::fnv1a(plan.bytes().chain([0u8]).chain(id.bytes()));
    // A final mix so nearby ids spread out.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Why a user's devices may never be in a pilot: VIPs and executives.
fn barred_user(org: &Org, user: u32) -> Option<&'static str> {
    if org.user(UserAttr::IsVip, user) == Some("true") {
        return Some("VIP");
    }
    let title = org
        .user(UserAttr::JobTitle, user)
        .unwrap_or("")
        .to_ascii_lowercase();
    let dept = org
        .user(UserAttr::Department, user)
        .unwrap_or("")
        .to_ascii_lowercase();
    if dept == "executive"
        || title.starts_with("chief ")
        || title.contains("vice president")
        || title.ends_with(" officer")
    {
        return Some("executive");
    }
    None
}

/// Whether a device may never be in a pilot: a lab device, or one a VIP or
/// executive uses (as primary user, or by signing in to it when the import
/// has sign-ins: a shared device a VIP uses is theirs too).
pub fn barred(org: &Org, d: u32) -> Option<&'static str> {
    if org.device(DeviceAttr::IsLab, d) == Some("true") {
        return Some("lab device");
    }
    org.device_users(d).find_map(|u| barred_user(org, u))
}

/// The devices of `population` that `barred` refuses; users are judged once each.
pub fn barred_all(org: &Org, population: &RoaringBitmap) -> RoaringBitmap {
    let users: Vec<bool> = (0..org.users.rows)
        .map(|u| barred_user(org, u).is_some())
        .collect();
    let lab = &org.devices.cols[DeviceAttr::IsLab.index()];
    let lab_true = lab.dict.get("true");
    population
        .iter()
        .filter(|&d| {
            Some(lab.code(d)) == lab_true || org.device_users(d).any(|u| users[u as usize])
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Stratum {
    pub value: String,
    pub population: u64,
    pub pilot: u64,
    pub population_share: f64,
    pub pilot_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DimensionReport {
    pub dimension: Dimension,
    /// Total variation distance between pilot and population shares.
    pub tvd: f64,
    pub strata: Vec<Stratum>,
    /// Strata holding at least 1 % of the eligible population with no pilot device.
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pilot {
    #[serde(skip)]
    pub devices: RoaringBitmap,
    pub size: u64,
    /// Devices that may be in the pilot: the population the shares compare with.
    pub population: u64,
    /// Devices of the population that may never be (VIPs, executives, lab).
    pub barred: u64,
    pub dimensions: Vec<DimensionReport>,
    /// The smallest failure rate that shows at least one failure in the
    /// pilot with 95 % probability: 1 − 0.05^(1/n). Smaller regressions can
    /// slip through a pilot this size.
    pub detectable_failure_rate: f64,
}

/// Chooses `size` devices of `population` (plus those of `keep`, which stay
/// when still eligible) mirroring it on `dims`. `preferred` devices (IT staff,
/// groups willing to go first) are taken before others within each stratum.
pub fn select(
    org: &Org,
    population: &RoaringBitmap,
    size: u64,
    dims: &[Dimension],
    plan_id: &str,
    preferred: &RoaringBitmap,
    keep: &RoaringBitmap,
) -> Pilot {
    let barred_set = barred_all(org, population);
    let eligible: Vec<u32> = (population - &barred_set).iter().collect();
    let barred_n = barred_set.len();
    // Representativeness is measured against who may be in a pilot at all:
    // barred devices (VIPs, executives, lab) are reported, not mirrored.
    let rows: Vec<u32> = eligible.clone();
    let (value_of, names): (Vec<Vec<u32>>, Vec<Vec<String>>) =
        dims.iter().map(|&dim| strata(org, dim, &rows)).unzip();
    let value_of: Vec<Vec<usize>> = value_of
        .into_iter()
        .map(|v| v.into_iter().map(|c| c as usize).collect())
        .collect();
    let mut position = vec![u32::MAX; org.devices.rows as usize];
    for (i, &d) in rows.iter().enumerate() {
        position[d as usize] = i as u32;
    }
    let pos = |d: u32| position[d as usize] as usize;
    let mut pop_count: Vec<Vec<u64>> = names.iter().map(|n| vec![0; n.len()]).collect();
    for k in 0..dims.len() {
        for &c in &value_of[k] {
            pop_count[k][c] += 1;
        }
    }
    let size = size.min(eligible.len() as u64);
    // Quotas by largest remainder, so they add up to the pilot size exactly.
    let quotas: Vec<Vec<u64>> = pop_count
        .iter()
        .map(|counts| {
            let total: u64 = counts.iter().sum();
            let exact: Vec<f64> = counts
                .iter()
                .map(|&c| c as f64 * size as f64 / total.max(1) as f64)
                .collect();
            let mut q: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
            let mut rest: Vec<usize> = (0..q.len()).collect();
            rest.sort_by(|&a, &b| {
                (exact[b] - exact[b].floor())
                    .total_cmp(&(exact[a] - exact[a].floor()))
                    .then(a.cmp(&b))
            });
            let short = size.saturating_sub(q.iter().sum());
            for &i in rest.iter().take(short as usize) {
                q[i] += 1;
            }
            // Every stratum with 1 % of the population gets at least one
            // device, taken from the strata furthest above their exact share.
            for (i, &c) in counts.iter().enumerate() {
                if q[i] == 0 && c * 100 >= total && size > 0 {
                    q[i] = 1;
                    if let Some(j) = (0..q.len()).filter(|&j| q[j] > 1).max_by(|&a, &b| {
                        (q[a] as f64 - exact[a])
                            .total_cmp(&(q[b] as f64 - exact[b]))
                            .then(b.cmp(&a))
                    }) {
                        q[j] -= 1;
                    }
                }
            }
            q
        })
        .collect();
    let mut taken: Vec<Vec<u64>> = quotas.iter().map(|q| vec![0; q.len()]).collect();
    let mut chosen = RoaringBitmap::new();
    let add = |d: u32, taken: &mut Vec<Vec<u64>>, chosen: &mut RoaringBitmap| {
        let i = pos(d);
        for k in 0..dims.len() {
            taken[k][value_of[k][i]] += 1;
        }
        chosen.insert(d);
    };
    for d in keep
        .iter()
        .filter(|d| population.contains(*d) && !barred_set.contains(*d))
    {
        add(d, &mut taken, &mut chosen);
    }
    // Candidates in a stable order: preferred first, then by the plan's hash.
    let id = |d: u32| org.device_id(d).unwrap_or("");
    let mut order: Vec<(bool, u64, u32)> = eligible
        .iter()
        .filter(|d| !chosen.contains(**d))
        .map(|&d| (!preferred.contains(d), stable_hash(plan_id, id(d)), d))
        .collect();
    order.sort_unstable();
    // Pass 1: only devices whose every stratum is under quota. Pass 2 fills
    // what is left, preferring devices whose strata are least over quota.
    for &(_, _, d) in &order {
        if chosen.len() >= size {
            break;
        }
        let i = pos(d);
        if (0..dims.len()).all(|k| taken[k][value_of[k][i]] < quotas[k][value_of[k][i]]) {
            add(d, &mut taken, &mut chosen);
        }
    }
    if chosen.len() < size {
        let mut rest: Vec<(u64, bool, u64, u32)> = order
            .iter()
            .filter(|(_, _, d)| !chosen.contains(*d))
            .map(|&(p, h, d)| {
                let i = pos(d);
                let over: u64 = (0..dims.len())
                    .map(|k| {
                        (taken[k][value_of[k][i]] + 1).saturating_sub(quotas[k][value_of[k][i]])
                    })
                    .sum();
                (over, p, h, d)
            })
            .collect();
        // Only the best `need` are taken: a partial selection, not a full sort.
        let need = ((size - chosen.len()) as usize).min(rest.len());
        if need > 0 && need < rest.len() {
            rest.select_nth_unstable(need - 1);
            rest.truncate(need);
        }
        rest.sort_unstable();
        for &(_, _, _, d) in rest.iter().take(need) {
            add(d, &mut taken, &mut chosen);
        }
    }
    // Repair: swap a chosen device sitting in an over-quota stratum for a
    // candidate when that lowers the total distance from the quotas. Bounded,
    // so large pilots (already close by the law of large numbers) stay fast.
    let kept = |d: u32| keep.contains(d);
    for _round in 0..4 {
        let mut improved = false;
        let err = |t: &Vec<Vec<u64>>, k: usize, c: usize| t[k][c].abs_diff(quotas[k][c]) as i64;
        let over = |t: &Vec<Vec<u64>>, d: u32| {
            (0..dims.len()).any(|k| t[k][value_of[k][pos(d)]] > quotas[k][value_of[k][pos(d)]])
        };
        // At most 256 over-quota members a round keeps this linear in the candidates.
        let mut pool: Vec<u32> = chosen
            .iter()
            .filter(|&d| !kept(d) && over(&taken, d))
            .take(256)
            .collect();
        if pool.is_empty() {
            break;
        }
        let candidates: Vec<u32> = order
            .iter()
            .map(|&(_, _, d)| d)
            .filter(|d| !chosen.contains(*d))
            .take(20_000)
            .collect();
        for u in candidates {
            let iu = pos(u);
            let mut best: Option<(i64, usize)> = None;
            for (slot, &c) in pool.iter().enumerate() {
                let ic = pos(c);
                let mut delta = 0i64;
                for k in 0..dims.len() {
                    let (vu, vc) = (value_of[k][iu], value_of[k][ic]);
                    if vu == vc {
                        continue;
                    }
                    let before = err(&taken, k, vu) + err(&taken, k, vc);
                    let after = (taken[k][vu] + 1).abs_diff(quotas[k][vu]) as i64
                        + (taken[k][vc] - 1).abs_diff(quotas[k][vc]) as i64;
                    delta += after - before;
                }
                if delta < 0 && best.is_none_or(|(b, _)| delta < b) {
                    best = Some((delta, slot));
                }
            }
            if let Some((_, slot)) = best {
                let c = pool.swap_remove(slot);
                let ic = pos(c);
                for k in 0..dims.len() {
                    taken[k][value_of[k][ic]] -= 1;
                    taken[k][value_of[k][iu]] += 1;
                }
                chosen.remove(c);
                chosen.insert(u);
                improved = true;
                pool.retain(|&d| over(&taken, d));
                if pool.is_empty() {
                    break;
                }
            }
        }
        if !improved {
            break;
        }
    }
    let dimensions = dims
        .iter()
        .enumerate()
        .map(|(k, &dim)| {
            let total = rows.len() as f64;
            let n = chosen.len().max(1) as f64;
            let mut strata: Vec<Stratum> = names[k]
                .iter()
                .enumerate()
                .map(|(c, v)| Stratum {
                    value: v.clone(),
                    population: pop_count[k][c],
                    pilot: taken[k][c],
                    population_share: pop_count[k][c] as f64 / total.max(1.0),
                    pilot_share: taken[k][c] as f64 / n,
                })
                .collect();
            // Column values no eligible device holds are not strata.
            strata.retain(|s| s.population > 0 || s.pilot > 0);
            strata.sort_by(|a, b| b.population.cmp(&a.population).then(a.value.cmp(&b.value)));
            let tvd = strata
                .iter()
                .map(|s| (s.pilot_share - s.population_share).abs())
                .sum::<f64>()
                / 2.0;
            let missing = strata
                .iter()
                .filter(|s| s.pilot == 0 && s.population_share >= 0.01)
                .map(|s| s.value.clone())
                .collect();
            DimensionReport {
                dimension: dim,
                tvd,
                strata,
                missing,
            }
        })
        .collect();
    let n = chosen.len();
    Pilot {
        size: n,
        population: rows.len() as u64,
        barred: barred_n,
        dimensions,
        detectable_failure_rate: if n == 0 {
            1.0
        } else {
            1.0 - 0.05f64.powf(1.0 / n as f64)
        },
        devices: chosen,
    }
}

/// Devices whose primary user is IT staff: the usual first pilot members.
pub fn it_staff_devices(org: &Org) -> RoaringBitmap {
    (0..org.devices.rows)
        .filter(|&d| {
            org.device_user
                .get(d as usize)
                .is_some_and(|&u| u != NO_ROW && org.user(UserAttr::IsItStaff, u) == Some("true"))
        })
        .collect()
}

/// The pilot size a plan asks for: a share of the population, at least `min` devices.
pub fn size_for(population: u64, share: f64, min: u64) -> u64 {
    ((population as f64 * share).ceil() as u64)
        .max(min)
        .min(population)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{DeviceKey, OrgBuilder};

    /// A VIP's devices never join a pilot: the ones they own, and with
    /// sign-ins the shared ones they use.
    #[test]
    fn devices_a_vip_signs_in_to_are_barred() {
        let mut b = OrgBuilder::new();
        let vip = b.user("vip");
        b.set_user(vip, UserAttr::IsVip, Some("true"));
        b.user("staff");
        let own = b.device(&[DeviceKey::ObjectId("own")]);
        b.set_device(own, DeviceAttr::PrimaryUser, Some("vip"));
        let shared = b.device(&[DeviceKey::ObjectId("shared")]);
        b.set_device(shared, DeviceAttr::PrimaryUser, Some("staff"));
        b.add_logon(shared, "vip", None);
        let other = b.device(&[DeviceKey::ObjectId("other")]);
        b.set_device(other, DeviceAttr::PrimaryUser, Some("staff"));
        let org = b.finish();
        assert_eq!(barred(&org, own), Some("VIP"));
        assert_eq!(barred(&org, shared), Some("VIP"));
        assert_eq!(barred(&org, other), None);
        let all: RoaringBitmap = [own, shared, other].into_iter().collect();
        assert_eq!(barred_all(&org, &all), [own, shared].into_iter().collect());
    }
}
