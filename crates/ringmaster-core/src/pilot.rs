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
    /// Platform and the exact OS version or build as imported
    /// (`windows 10.0.22631.4460`); a device without one is `(unknown)`.
    OsVersion,
}

impl Dimension {
    /// Every attribute a plan may name (pilot `dimensions`, `strata`).
    pub const ALL: [Dimension; 7] = [
        Dimension::Platform,
        Dimension::OsFamily,
        Dimension::Department,
        Dimension::Location,
        Dimension::Ownership,
        Dimension::Model,
        Dimension::OsVersion,
    ];

    /// What a pilot mirrors unless the plan says otherwise. Not the exact
    /// OS version: builds are many and short-lived, so mirroring each one
    /// would crowd out the other dimensions of a small pilot.
    pub const PILOT: [Dimension; 6] = [
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
            Dimension::OsVersion => "OS version",
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
            Dimension::OsVersion => match org
                .device(DeviceAttr::OsVersion, d)
                .map(str::trim)
                .filter(|v| !v.is_empty())
            {
                // One stratum for every device without a version, whatever its platform.
                None => "(unknown)".to_string(),
                Some(v) => format!("{} {v}", dev(DeviceAttr::Platform)),
            },
        }
    }
}

/// Every device's stratum on a dimension as a small integer, with the
/// stratum names; computed from column codes, once per distinct value.
pub fn strata(org: &Org, dim: Dimension, rows: &[u32]) -> (Vec<u32>, Vec<String>) {
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
            let col = col.view();
            rows.iter().map(|&d| map[col.code(d) as usize]).collect()
        }
        Dimension::OsFamily | Dimension::OsVersion => {
            let (pc, oc) = (
                device_col(DeviceAttr::Platform).view(),
                device_col(DeviceAttr::OsVersion).view(),
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
            let (col, device_user) = (col.view(), &*org.device_user);
            rows.iter()
                .map(|&d| {
                    match device_user
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

/// [`stable_hash`] of each device of `rows` (by [`Org::device_id`]), on
/// every core. For many devices the ids are hashed once per dictionary
/// entry, in the dictionary's order, and looked up per row: reading each
/// row's id instead jumps around a dictionary that at two million devices
/// is far larger than the caches.
pub fn stable_hashes(org: &Org, plan: &str, rows: &[u32]) -> Vec<u64> {
    use rayon::prelude::*;
    let col = &org.devices.cols[DeviceAttr::EntraObjectId.index()];
    let direct = |d: u32| stable_hash(plan, org.device_id(d).unwrap_or(""));
    if rows.len() < col.dict_len() / 2 {
        return rows.par_iter().map(|&d| direct(d)).collect();
    }
    let dict = col.dict.view();
    let by_code: Vec<u64> = (0..col.dict_len() as u32)
        .into_par_iter()
        .map(|c| dict.value(c).map_or(0, |id| stable_hash(plan, id)))
        .collect();
    let codes = col.view();
    rows.par_iter()
        .map(|&d| match codes.code(d) {
            // No Entra id: the Intune id, as `device_id` takes it.
            crate::column::NULL => direct(d),
            c => by_code
                .get(c as usize)
                .copied()
                .unwrap_or_else(|| direct(d)),
        })
        .collect()
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
    /// The dimension as people read it ("OS family").
    pub label: &'static str,
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
    // Representativeness is measured against who may be in a pilot at all:
    // barred devices (VIPs, executives, lab) are reported, not mirrored.
    let rows: Vec<u32> = (population - &barred_set).iter().collect();
    let (value_of, names): (Vec<Vec<u32>>, Vec<Vec<String>>) =
        dims.iter().map(|&dim| strata(org, dim, &rows)).unzip();
    let size = size.min(rows.len() as u64);
    let mut t = Tally::new(org.devices.rows, &rows, value_of, &names, size);
    let mut chosen = RoaringBitmap::new();
    for d in keep
        .iter()
        .filter(|d| population.contains(*d) && !barred_set.contains(*d))
    {
        t.add(d, &mut chosen);
    }
    // Candidates in a stable order: preferred first, then by the plan's hash.
    // On every core: at a million devices, hashing the ids is most of a
    // plan. Keys are unique (the row is in them), so the order is the same
    // however the work is split.
    use rayon::prelude::*;
    let hashes = stable_hashes(org, plan_id, &rows);
    let mut order: Vec<Candidate> = rows
        .par_iter()
        .zip(&hashes)
        .enumerate()
        .filter(|(_, (d, _))| !chosen.contains(**d))
        .map(|(i, (&d, &h))| (!preferred.contains(d), h, d, i as u32))
        .collect();
    order.par_sort_unstable();
    t.fill(&order, size, &mut chosen);
    t.repair(&order, keep, &mut chosen);
    let n = chosen.len();
    let dimensions = dims
        .iter()
        .enumerate()
        .map(|(k, &dim)| t.report(k, dim, &names[k], rows.len() as u64, n))
        .collect();
    Pilot {
        size: n,
        population: rows.len() as u64,
        barred: barred_set.len(),
        dimensions,
        detectable_failure_rate: if n == 0 {
            1.0
        } else {
            1.0 - 0.05f64.powf(1.0 / n as f64)
        },
        devices: chosen,
    }
}

/// Quotas of `size` devices over strata of `counts` by largest remainder,
/// so they add up to `size` exactly. Every stratum with 1 % of the
/// population gets at least one device, taken from the strata furthest
/// above their exact share.
fn quotas(counts: &[u64], size: u64) -> Vec<u64> {
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
}

/// A candidate in the pilot's order: not preferred, the plan's hash, the
/// device row, and its eligible index (the row decides the order alone;
/// the index saves a lookup per stratum on a walk in hash order, which
/// at two million devices misses the caches).
type Candidate = (bool, u64, u32, u32);

/// Per dimension: each eligible device's stratum, and per stratum the
/// population, the quota and the devices taken so far.
struct Tally {
    /// `value_of[k][i]`: the stratum on dimension `k` of eligible device `i`.
    value_of: Vec<Vec<u32>>,
    /// Eligible index of each device row (`u32::MAX` when not eligible).
    position: Vec<u32>,
    population: Vec<Vec<u64>>,
    quotas: Vec<Vec<u64>>,
    taken: Vec<Vec<u64>>,
}

impl Tally {
    fn new(
        device_rows: u32,
        rows: &[u32],
        value_of: Vec<Vec<u32>>,
        names: &[Vec<String>],
        size: u64,
    ) -> Tally {
        let mut position = vec![u32::MAX; device_rows as usize];
        for (i, &d) in rows.iter().enumerate() {
            position[d as usize] = i as u32;
        }
        let mut population: Vec<Vec<u64>> = names.iter().map(|n| vec![0; n.len()]).collect();
        for (k, values) in value_of.iter().enumerate() {
            for &c in values {
                population[k][c as usize] += 1;
            }
        }
        let quotas: Vec<Vec<u64>> = population.iter().map(|c| quotas(c, size)).collect();
        let taken = quotas.iter().map(|q| vec![0; q.len()]).collect();
        Tally {
            value_of,
            position,
            population,
            quotas,
            taken,
        }
    }

    /// Device `d`'s stratum on dimension `k`.
    fn value(&self, k: usize, d: u32) -> usize {
        self.value_at(k, self.position[d as usize])
    }

    /// Eligible device `i`'s stratum on dimension `k`.
    fn value_at(&self, k: usize, i: u32) -> usize {
        self.value_of[k][i as usize] as usize
    }

    fn add(&mut self, d: u32, chosen: &mut RoaringBitmap) {
        for k in 0..self.value_of.len() {
            let c = self.value(k, d);
            self.taken[k][c] += 1;
        }
        chosen.insert(d);
    }

    /// Some stratum of `d` holds more than its quota.
    fn over(&self, d: u32) -> bool {
        (0..self.value_of.len()).any(|k| {
            let c = self.value(k, d);
            self.taken[k][c] > self.quotas[k][c]
        })
    }

    /// Fills the pilot to `size` from `order`. Pass 1 takes only devices
    /// whose every stratum is under quota; pass 2 fills what is left,
    /// preferring devices whose strata are least over quota.
    fn fill(&mut self, order: &[Candidate], size: u64, chosen: &mut RoaringBitmap) {
        let dims = self.value_of.len();
        let mut n = chosen.len();
        // Which of `order` pass 1 took.
        let mut took = vec![false; order.len()];
        for (j, &(_, _, d, i)) in order.iter().enumerate() {
            if n >= size {
                break;
            }
            if (0..dims).all(|k| {
                let c = self.value_at(k, i);
                self.taken[k][c] < self.quotas[k][c]
            }) {
                self.add(d, chosen);
                took[j] = true;
                n += 1;
            }
        }
        if n >= size {
            return;
        }
        let mut rest: Vec<(u64, bool, u64, u32)> = order
            .iter()
            .zip(&took)
            .filter(|(_, took)| !**took)
            .map(|(&(p, h, d, i), _)| {
                let over: u64 = (0..dims)
                    .map(|k| {
                        let c = self.value_at(k, i);
                        (self.taken[k][c] + 1).saturating_sub(self.quotas[k][c])
                    })
                    .sum();
                (over, p, h, d)
            })
            .collect();
        // Only the best `need` are taken: a partial selection, not a full sort.
        let need = ((size - n) as usize).min(rest.len());
        if need > 0 && need < rest.len() {
            rest.select_nth_unstable(need - 1);
            rest.truncate(need);
        }
        rest.sort_unstable();
        for &(_, _, _, d) in rest.iter().take(need) {
            self.add(d, chosen);
        }
    }

    /// How much swapping chosen device `c` for candidate `u` changes the
    /// total distance from the quotas (negative: closer).
    fn swap_delta(&self, u: u32, c: u32) -> i64 {
        let mut delta = 0i64;
        for k in 0..self.value_of.len() {
            let (vu, vc) = (self.value(k, u), self.value(k, c));
            if vu == vc {
                continue;
            }
            let (t, q) = (&self.taken[k], &self.quotas[k]);
            let before = t[vu].abs_diff(q[vu]) as i64 + t[vc].abs_diff(q[vc]) as i64;
            let after = (t[vu] + 1).abs_diff(q[vu]) as i64 + (t[vc] - 1).abs_diff(q[vc]) as i64;
            delta += after - before;
        }
        delta
    }

    /// Swaps a chosen device sitting in an over-quota stratum for a
    /// candidate when that lowers the total distance from the quotas.
    /// Bounded (4 rounds, 256 members and 20,000 candidates a round), so
    /// large pilots, already close by the law of large numbers, stay fast.
    /// Devices of `keep` stay.
    fn repair(&mut self, order: &[Candidate], keep: &RoaringBitmap, chosen: &mut RoaringBitmap) {
        for _round in 0..4 {
            let mut improved = false;
            let mut pool: Vec<u32> = chosen
                .iter()
                .filter(|&d| !keep.contains(d) && self.over(d))
                .take(256)
                .collect();
            if pool.is_empty() {
                break;
            }
            let candidates: Vec<u32> = order
                .iter()
                .map(|&(_, _, d, _)| d)
                .filter(|d| !chosen.contains(*d))
                .take(20_000)
                .collect();
            for u in candidates {
                let mut best: Option<(i64, usize)> = None;
                for (slot, &c) in pool.iter().enumerate() {
                    let delta = self.swap_delta(u, c);
                    if delta < 0 && best.is_none_or(|(b, _)| delta < b) {
                        best = Some((delta, slot));
                    }
                }
                if let Some((_, slot)) = best {
                    let c = pool.swap_remove(slot);
                    for k in 0..self.value_of.len() {
                        let (vc, vu) = (self.value(k, c), self.value(k, u));
                        self.taken[k][vc] -= 1;
                        self.taken[k][vu] += 1;
                    }
                    chosen.remove(c);
                    chosen.insert(u);
                    improved = true;
                    pool.retain(|&d| self.over(d));
                    if pool.is_empty() {
                        break;
                    }
                }
            }
            if !improved {
                break;
            }
        }
    }

    /// Dimension `k` of the report: shares in the population of `total`
    /// eligible devices and in the pilot of `n`, the TVD, missing strata.
    fn report(
        &self,
        k: usize,
        dim: Dimension,
        names: &[String],
        total: u64,
        n: u64,
    ) -> DimensionReport {
        let total = total as f64;
        let n = n.max(1) as f64;
        let mut strata: Vec<Stratum> = names
            .iter()
            .enumerate()
            .map(|(c, v)| Stratum {
                value: v.clone(),
                population: self.population[k][c],
                pilot: self.taken[k][c],
                population_share: self.population[k][c] as f64 / total.max(1.0),
                pilot_share: self.taken[k][c] as f64 / n,
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
            label: dim.name(),
            tvd,
            strata,
            missing,
        }
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
    use crate::model::DeviceAttr;
    use crate::org::{DeviceKey, OrgBuilder};

    #[test]
    fn quotas_add_up_by_largest_remainder() {
        assert_eq!(quotas(&[70, 20, 10], 10), [7, 2, 1]);
        // 3.5, 3.5, 3: the tie goes to the first stratum.
        assert_eq!(quotas(&[35, 35, 30], 10), [4, 3, 3]);
        assert_eq!(quotas(&[5, 5], 0), [0, 0]);
    }

    #[test]
    fn quotas_give_every_one_percent_stratum_a_device() {
        // 2 % of the population would get 0.2 of 10 devices: it gets one,
        // taken from the stratum furthest above its exact share.
        assert_eq!(quotas(&[880, 100, 20], 10), [8, 1, 1]);
        // Below 1 % a stratum may go without.
        assert_eq!(quotas(&[995, 5], 10), [10, 0]);
    }

    /// d0..d99: windows d0..d69, macOS d70..d89, iOS d90..d99; d0 and d1
    /// belong to a VIP; d99 is a lab device.
    fn org() -> Org {
        let mut b = OrgBuilder::new();
        let vip = b.user("vip");
        b.set_user(vip, UserAttr::IsVip, Some("true"));
        for i in 0..100u32 {
            let d = b.device(&[DeviceKey::ObjectId(&format!("d{i}"))]);
            let platform = match i {
                0..70 => "windows",
                70..90 => "macOS",
                _ => "iOS",
            };
            b.set_device(d, DeviceAttr::Platform, Some(platform));
            if i < 2 {
                b.set_device(d, DeviceAttr::PrimaryUser, Some("vip"));
            }
            if i == 99 {
                b.set_device(d, DeviceAttr::IsLab, Some("true"));
            }
        }
        b.finish()
    }

    #[test]
    fn select_mirrors_the_population_without_barred_devices() {
        let org = org();
        let all: RoaringBitmap = (0..100).collect();
        let none = RoaringBitmap::new();
        let p = select(&org, &all, 10, &[Dimension::Platform], "plan", &none, &none);
        assert_eq!((p.size, p.population, p.barred), (10, 97, 3));
        assert!(!p.devices.contains(0) && !p.devices.contains(1) && !p.devices.contains(99));
        let dim = &p.dimensions[0];
        let pilot: Vec<(&str, u64)> = dim
            .strata
            .iter()
            .map(|s| (s.value.as_str(), s.pilot))
            .collect();
        assert_eq!(pilot, [("windows", 7), ("macOS", 2), ("iOS", 1)]);
        assert!(dim.missing.is_empty());
        // The same plan id chooses the same devices; another chooses others.
        let again = select(&org, &all, 10, &[Dimension::Platform], "plan", &none, &none);
        assert_eq!(again.devices, p.devices);
        let other = select(
            &org,
            &all,
            10,
            &[Dimension::Platform],
            "other",
            &none,
            &none,
        );
        assert_ne!(other.devices, p.devices);
    }

    #[test]
    fn select_prefers_and_keeps_devices_within_the_quotas() {
        let org = org();
        let all: RoaringBitmap = (0..100).collect();
        let preferred: RoaringBitmap = (10..20).chain(70..72).collect();
        let keep: RoaringBitmap = [95, 0].into_iter().collect();
        let p = select(
            &org,
            &all,
            10,
            &[Dimension::Platform],
            "plan",
            &preferred,
            &keep,
        );
        assert!(p.devices.contains(95), "kept");
        assert!(!p.devices.contains(0), "a barred device is not kept");
        let windows: Vec<u32> = p.devices.iter().filter(|d| *d < 70).collect();
        assert_eq!(windows.len(), 7);
        assert!(windows.iter().all(|d| (10..20).contains(d)), "{windows:?}");
        assert!(p.devices.contains(70) && p.devices.contains(71));
    }

    #[test]
    fn a_pilot_is_never_larger_than_the_eligible_devices() {
        let org = org();
        let few: RoaringBitmap = (0..5).collect();
        let none = RoaringBitmap::new();
        let p = select(&org, &few, 50, &Dimension::PILOT, "plan", &none, &none);
        assert_eq!(p.size, 3);
        assert_eq!(p.devices.iter().collect::<Vec<_>>(), [2, 3, 4]);
        assert!((p.detectable_failure_rate - (1.0 - 0.05f64.powf(1.0 / 3.0))).abs() < 1e-12);
    }

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

#[cfg(test)]
mod os_version_tests {
    use super::*;
    use crate::org::{DeviceKey, OrgBuilder};

    #[test]
    fn os_version_strata_are_exact_builds_with_one_unknown() {
        let mut b = OrgBuilder::new();
        let rows: Vec<(&str, Option<&str>)> = vec![
            ("windows", Some("10.0.22631.4460")),
            ("windows", Some("10.0.22631.4317")),
            ("windows", Some("10.0.22631.4460")),
            ("windows", None),
            ("macOS", Some("")),
            ("iOS", Some("18.1")),
        ];
        for (i, (platform, os)) in rows.iter().enumerate() {
            let d = b.device(&[DeviceKey::ObjectId(&format!("d{i}"))]);
            b.set_device(d, DeviceAttr::Platform, Some(platform));
            b.set_device(d, DeviceAttr::OsVersion, *os);
        }
        let org = b.finish();
        let all: Vec<u32> = (0..rows.len() as u32).collect();
        let (codes, names) = strata(&org, Dimension::OsVersion, &all);
        assert_eq!(
            names,
            [
                "windows 10.0.22631.4460",
                "windows 10.0.22631.4317",
                "(unknown)",
                "iOS 18.1"
            ]
        );
        assert_eq!(codes, [0, 1, 0, 2, 2, 3]);
        // The family groups the two builds the exact version tells apart.
        let (family, _) = strata(&org, Dimension::OsFamily, &all);
        assert_eq!(family[0], family[1]);
        assert_eq!(
            Dimension::OsVersion.value(&org, 1),
            "windows 10.0.22631.4317"
        );
    }
}
