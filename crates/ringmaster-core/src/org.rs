//! The organization as dense tables: users and devices get row ids
//! `0..n`, every property is a column, and the join between devices and
//! their primary users is precomputed in both directions.

use crate::column::{DictColumn, MultiColumn};
use crate::lazy::{Lazy, Slab, csr_row as csr};
use crate::model::{
    ASSIGNED_PLAN_FIELDS, DeviceAttr, DeviceMulti, Filter, Group, GroupKind, MemberKind, Members,
    Platform, Policy, UserAttr, UserMulti,
};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

mod queue;
pub use queue::Writes;

/// Marks "no row" in row-valued vectors.
pub const NO_ROW: u32 = u32::MAX;

/// Marks a sign-in whose time the export did not give.
const NO_TIME: i64 = i64::MIN;

/// The slice `offsets[i]..offsets[i + 1]` of `values`, empty past the end.
/// Offsets of a CSR index over `n` rows from the row of each entry, sorted.
fn offsets_of(n: usize, rows: impl Iterator<Item = u32>) -> Vec<u32> {
    let mut counts = vec![0u32; n + 1];
    for r in rows {
        counts[r as usize + 1] += 1;
    }
    for i in 0..n {
        counts[i + 1] += counts[i];
    }
    counts
}

/// One object type's columns.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Table {
    pub rows: u32,
    /// Each column is stored apart in a snapshot and read when first used.
    pub cols: Vec<Lazy<DictColumn>>,
    pub multi: Vec<Lazy<MultiColumn>>,
    /// Directory extension properties (`extension_<app id>_<name>`): one
    /// column per name the import met, the name kept in lower case. A
    /// tenant defines its own, so they cannot be fixed columns.
    pub ext: Vec<(String, Lazy<DictColumn>)>,
}

impl Table {
    fn new(scalars: usize, multi: Vec<MultiColumn>) -> Self {
        Table {
            rows: 0,
            cols: (0..scalars).map(|_| Lazy::default()).collect(),
            multi: multi.into_iter().map(Lazy::new).collect(),
            ext: Vec::new(),
        }
    }

    /// The column of a directory extension property, by name in any case.
    pub fn ext_column(&self, name: &str) -> Option<&DictColumn> {
        self.ext
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, c)| &**c)
    }

    /// Sets a directory extension property; blank values are not stored.
    pub fn set_ext(&mut self, row: u32, name: &str, value: &str) {
        let value = value.trim_ascii();
        if value.is_empty() {
            return;
        }
        let i = self.ext_index(name);
        self.ext[i].1.set(row, Some(value));
    }

    /// The index in `ext` of a property's column, added when new.
    fn ext_index(&mut self, name: &str) -> usize {
        match self
            .ext
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(i) => i,
            None => {
                self.ext.push((name.to_ascii_lowercase(), Lazy::default()));
                self.ext.len() - 1
            }
        }
    }

    /// Rows whose column equals `value` exactly.
    pub fn rows_with(&self, col: usize, value: &str) -> Vec<u32> {
        let column = &self.cols[col];
        if !column.may_hold_len(value.len()) {
            return Vec::new();
        }
        // A column of ids or names has a sorted index (read from the
        // snapshot): a binary search, where the hash table of a million
        // strings would first have to be built.
        if let Some(rows) = column.lookup(&[value], false) {
            return rows
                .iter()
                .filter(|&r| column.get(r) == Some(value))
                .collect();
        }
        let Some(code) = column.dict.get(value) else {
            return Vec::new();
        };
        (column.view().iter().enumerate())
            .filter(|&(_, c)| c == code)
            .map(|(r, _)| r as u32)
            .collect()
    }

    fn finish(&mut self) {
        let n = self.rows as usize;
        self.cols.iter_mut().for_each(|c| c.finish(n));
        self.multi.iter_mut().for_each(|m| m.finish(n));
        self.ext.iter_mut().for_each(|(_, c)| c.finish(n));
    }

    /// Frees the hash tables of its large dictionaries (see
    /// [`crate::column::Dict::drop_large_table`]), once rows are found.
    fn drop_large_tables(&mut self) {
        self.cols.iter_mut().for_each(|c| c.dict.drop_large_table());
        self.multi
            .iter_mut()
            .for_each(|m| m.dict.drop_large_table());
        self.ext
            .iter_mut()
            .for_each(|(_, c)| c.dict.drop_large_table());
    }

    /// Moves row `order[i]` to row `i` (after `finish`).
    fn permute(&mut self, order: &[u32]) {
        self.cols.par_iter_mut().for_each(|c| c.permute(order));
        self.multi.iter_mut().for_each(|m| m.permute(order));
        self.ext.iter_mut().for_each(|(_, c)| c.permute(order));
    }
}

/// Users, devices, groups, filters and policies of one tenant. It
/// serializes whole (the import snapshot); caches inside columns are rebuilt.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Org {
    pub users: Table,
    pub devices: Table,
    pub groups: Vec<Group>,
    pub filters: Vec<Filter>,
    pub policies: Vec<Policy>,
    /// Primary user row of each device, or [`NO_ROW`].
    pub device_user: Slab<u32>,
    /// Devices of each user: `user_devices[user_offsets[u]..user_offsets[u + 1]]`.
    user_offsets: Slab<u32>,
    user_devices: Slab<u32>,
    /// Sign-ins (Graph `usersLoggedOn`): the users of device `d` are
    /// `logon_users[logon_offsets[d]..logon_offsets[d + 1]]`, and `logon_at`
    /// holds when each last signed in (Unix seconds, [`NO_TIME`] when the
    /// export left it out). Empty offsets: the import carries no sign-ins.
    logon_offsets: Slab<u32>,
    logon_users: Slab<u32>,
    logon_at: Slab<i64>,
    /// The inverse: devices user `u` signed in to, like `user_devices`.
    signin_offsets: Slab<u32>,
    signin_devices: Slab<u32>,
    /// Sign-in entries naming a user who is not in the import (dropped).
    pub logons_unknown_users: usize,
    group_index: FxHashMap<String, usize>,
    filter_index: FxHashMap<String, usize>,
    policy_index: FxHashMap<String, usize>,
    /// Entra object id code → row, for resolving member references.
    user_by_oid: Slab<u32>,
    device_by_oid: Slab<u32>,
    /// Static groups' member references, resolved to rows once at build time.
    pub static_members: Vec<StaticMembers>,
}

/// A static group's direct members as rows and group indices.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct StaticMembers {
    pub users: Slab<u32>,
    pub devices: Slab<u32>,
    pub groups: Vec<usize>,
    /// References to objects that are not in the import.
    pub missing: usize,
}

fn key(id: &str) -> String {
    norm_id(id).into_owned()
}

impl Org {
    /// Builds every column's lookup index now (in parallel) instead of at
    /// the first rule that needs it: before a snapshot is written, so that
    /// later commands read the indexes instead of sorting again.
    pub fn prepare_lookups(&self) {
        let cols: Vec<&DictColumn> = [&self.users, &self.devices]
            .into_iter()
            .flat_map(|t| t.cols.iter().chain(t.ext.iter().map(|(_, c)| c)))
            .map(|c| &**c)
            .collect();
        cols.par_iter().for_each(|c| c.prepare_lookups());
    }

    pub fn user(&self, attr: UserAttr, row: u32) -> Option<&str> {
        self.users.cols[attr.index()].get(row)
    }

    pub fn device(&self, attr: DeviceAttr, row: u32) -> Option<&str> {
        self.devices.cols[attr.index()].get(row)
    }

    pub fn device_platform(&self, row: u32) -> Option<Platform> {
        self.device(DeviceAttr::Platform, row)
            .and_then(Platform::parse)
    }

    /// Devices whose primary user is `user`.
    pub fn user_devices(&self, user: u32) -> &[u32] {
        csr(&self.user_offsets, &self.user_devices, user)
    }

    /// Whether the import carries sign-ins (`usersLoggedOn`) for any device.
    pub fn has_logons(&self) -> bool {
        !self.logon_offsets.is_empty()
    }

    /// Users who signed in to device `d`, by row, with when they last did.
    pub fn device_logons(
        &self,
        d: u32,
    ) -> impl Iterator<Item = (u32, Option<jiff::Timestamp>)> + '_ {
        let users = csr(&self.logon_offsets, &self.logon_users, d);
        let at = csr(&self.logon_offsets, &self.logon_at, d);
        users.iter().zip(at).map(|(&u, &t)| {
            let t = (t != NO_TIME)
                .then(|| jiff::Timestamp::from_second(t).ok())
                .flatten();
            (u, t)
        })
    }

    /// Devices `user` signed in to.
    pub fn user_signins(&self, user: u32) -> &[u32] {
        csr(&self.signin_offsets, &self.signin_devices, user)
    }

    /// Device `d`'s primary user, if it has one.
    pub fn primary_user(&self, d: u32) -> Option<u32> {
        self.device_user.at(d as usize).filter(|u| *u != NO_ROW)
    }

    /// Every user a user-targeted assignment can reach device `d` through:
    /// its primary user and those who signed in to it (a user may be both).
    pub fn device_users(&self, d: u32) -> impl Iterator<Item = u32> + '_ {
        let primary = self.device_user.at(d as usize);
        primary.filter(|u| *u != NO_ROW).into_iter().chain(
            csr(&self.logon_offsets, &self.logon_users, d)
                .iter()
                .copied(),
        )
    }

    pub fn group(&self, id: &str) -> Option<usize> {
        self.group_index.get(norm_id(id).as_ref()).copied()
    }

    pub fn filter(&self, id: &str) -> Option<usize> {
        self.filter_index.get(&key(id)).copied()
    }

    pub fn policy(&self, id: &str) -> Option<usize> {
        self.policy_index.get(&key(id)).copied()
    }

    /// A user row by Entra object id.
    pub fn user_by_id(&self, id: &str) -> Option<u32> {
        let code = self.users.cols[UserAttr::ObjectId.index()]
            .dict
            .get(&norm_id(id))?;
        self.user_by_oid
            .get(code as usize)
            .copied()
            .filter(|r| *r != NO_ROW)
    }

    /// A device row by Entra object id.
    pub fn device_by_object_id(&self, id: &str) -> Option<u32> {
        let code = self.devices.cols[DeviceAttr::EntraObjectId.index()]
            .dict
            .get(&norm_id(id))?;
        self.device_by_oid
            .get(code as usize)
            .copied()
            .filter(|r| *r != NO_ROW)
    }

    /// Devices matching a name or any of their ids (Entra object id,
    /// Entra device id, Intune id, serial number), ignoring case for names.
    pub fn find_devices(&self, needle: &str) -> Vec<u32> {
        let ids = [
            DeviceAttr::EntraObjectId,
            DeviceAttr::DeviceId,
            DeviceAttr::ManagedId,
            DeviceAttr::Serial,
            DeviceAttr::Name,
        ];
        for attr in ids {
            let id = if attr == DeviceAttr::Name || attr == DeviceAttr::Serial {
                needle.trim().into()
            } else {
                norm_id(needle)
            };
            let rows = self.devices.rows_with(attr.index(), &id);
            if !rows.is_empty() {
                return rows;
            }
        }
        let col = &self.devices.cols[DeviceAttr::Name.index()];
        let lower = needle.to_lowercase();
        let hit: Vec<bool> = (0..col.dict.len() as u32)
            .map(|c| col.dict.value(c).is_some_and(|v| v.to_lowercase() == lower))
            .collect();
        col.select(&hit).iter().collect()
    }

    /// Devices for a search box, by row, at most `limit`, with how many
    /// match in all: an exact id or name (as [`Org::find_devices`]) when
    /// one matches; otherwise names and serial numbers that start with the
    /// needle and the devices of users whose UPN or mail does, ignoring case.
    pub fn search_devices(&self, needle: &str, limit: usize) -> (Vec<u32>, u64) {
        let needle = needle.trim();
        if needle.is_empty() {
            return (Vec::new(), 0);
        }
        let exact = self.find_devices(needle);
        if !exact.is_empty() {
            let total = exact.len() as u64;
            return (exact.into_iter().take(limit).collect(), total);
        }
        let lower = needle.to_lowercase();
        let starts = |v: &str| {
            if lower.is_ascii() {
                v.len() >= lower.len()
                    && v.as_bytes()[..lower.len()].eq_ignore_ascii_case(lower.as_bytes())
            } else {
                v.to_lowercase().starts_with(&lower)
            }
        };
        let prefixed = |col: &DictColumn| {
            let hit: Vec<bool> = (0..col.dict.len() as u32)
                .map(|c| col.dict.value(c).is_some_and(starts))
                .collect();
            col.select(&hit)
        };
        let mut found = roaring::RoaringBitmap::new();
        for attr in [DeviceAttr::Name, DeviceAttr::Serial] {
            found |= prefixed(&self.devices.cols[attr.index()]);
        }
        for attr in [UserAttr::Upn, UserAttr::Mail] {
            for u in &prefixed(&self.users.cols[attr.index()]) {
                found.extend(self.user_devices(u).iter().copied());
            }
        }
        let total = found.len();
        (found.iter().take(limit).collect(), total)
    }

    /// Users matching a UPN, object id or display name.
    pub fn find_users(&self, needle: &str) -> Vec<u32> {
        for attr in [
            UserAttr::ObjectId,
            UserAttr::Upn,
            UserAttr::Mail,
            UserAttr::DisplayName,
        ] {
            let id = if attr == UserAttr::ObjectId {
                norm_id(needle)
            } else {
                needle.trim().into()
            };
            let rows = self.users.rows_with(attr.index(), &id);
            if !rows.is_empty() {
                return rows;
            }
        }
        let col = &self.users.cols[UserAttr::Upn.index()];
        let lower = needle.to_lowercase();
        (0..self.users.rows)
            .filter(|r| col.get(*r).is_some_and(|v| v.to_lowercase() == lower))
            .collect()
    }

    /// Groups matching an id or a display name (case-insensitive).
    pub fn find_groups(&self, needle: &str) -> Vec<usize> {
        if let Some(g) = self.group(needle) {
            return vec![g];
        }
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.name.eq_ignore_ascii_case(needle.trim()))
            .map(|(i, _)| i)
            .collect()
    }

    /// Policies matching an id or a name (case-insensitive).
    pub fn find_policies(&self, needle: &str) -> Vec<usize> {
        if let Some(p) = self.policy(needle) {
            return vec![p];
        }
        self.policies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.name.eq_ignore_ascii_case(needle.trim()))
            .map(|(i, _)| i)
            .collect()
    }

    /// Adds policies read after the organization (e.g. a baseline under
    /// evaluation); a policy whose id is already present is returned, not added.
    pub fn add_policies(&mut self, policies: Vec<Policy>) -> Vec<Policy> {
        let mut rejected = Vec::new();
        for p in policies {
            let k = key(&p.id);
            if self.policy_index.contains_key(&k) {
                rejected.push(p);
                continue;
            }
            self.policy_index.insert(k, self.policies.len());
            self.policies.push(p);
        }
        rejected
    }

    /// A short label for a device: its name and id.
    pub fn device_label(&self, row: u32) -> String {
        let name = self.device(DeviceAttr::Name, row).unwrap_or("(unnamed)");
        match self.device_id(row) {
            Some(id) => format!("{name} ({id})"),
            None => name.to_string(),
        }
    }

    /// A device's stable id: the Entra object id, else the Intune id. Pilot
    /// and wave hashing, and the device keys of reports, use it.
    pub fn device_id(&self, row: u32) -> Option<&str> {
        // Lazily: the fallback column is read from a snapshot only when a
        // device lacks the first (a pilot asks for a million ids).
        self.device(DeviceAttr::EntraObjectId, row)
            .or_else(|| self.device(DeviceAttr::ManagedId, row))
    }

    pub fn user_label(&self, row: u32) -> String {
        self.user(UserAttr::Upn, row)
            .or_else(|| self.user(UserAttr::DisplayName, row))
            .or_else(|| self.user(UserAttr::ObjectId, row))
            .unwrap_or("(unnamed user)")
            .to_string()
    }
}

/// Which identifier a device record carries; records about the same device
/// from Entra and Intune meet on the Entra device id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKey<'a> {
    ObjectId(&'a str),
    DeviceId(&'a str),
    ManagedId(&'a str),
}

impl<'a> DeviceKey<'a> {
    /// Its place in [`DEVICE_KEYS`] (and the builder's row maps), and its id.
    fn slot(&self) -> (usize, &'a str) {
        match *self {
            DeviceKey::ObjectId(s) => (0, s),
            DeviceKey::DeviceId(s) => (1, s),
            DeviceKey::ManagedId(s) => (2, s),
        }
    }
}

/// Builds an [`Org`] row by row; records may arrive in any order.
#[derive(Debug)]
pub struct OrgBuilder {
    org: Org,
    /// Code of the object-id column → row; ids are found through the
    /// column's own dictionary so no second copy of them is kept.
    user_rows: Vec<u32>,
    /// The same for the three device id columns.
    device_rows: [Vec<u32>; 3],
    /// Number device rows so that devices of one static group sit together.
    cluster: bool,
    /// Sign-ins as recorded: (device row, index in `logon_ids`, Unix seconds).
    logons: Vec<(u32, u32, i64)>,
    logon_ids: Vec<String>,
    logon_index: FxHashMap<String, u32>,
    /// Values set but not yet written to their columns (see `queue`).
    queued: Writes,
}

impl Default for OrgBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn is_blank_id(s: &str) -> bool {
    let t = s.trim_ascii();
    t.is_empty() || t.bytes().all(|b| b == b'0' || b == b'-')
}

/// Object ids compare case-insensitively; Graph writes them in lower case.
pub fn norm_id(s: &str) -> std::borrow::Cow<'_, str> {
    let t = s.trim_ascii();
    // Folded over every byte, not stopped at the first capital: ids are
    // almost never in upper case, and a loop without an early exit is
    // compiled to compare 16 bytes at a time.
    if (t.bytes()).fold(false, |up, b| up | b.is_ascii_uppercase()) {
        t.to_ascii_lowercase().into()
    } else {
        t.into()
    }
}

const DEVICE_KEYS: [DeviceAttr; 3] = [
    DeviceAttr::EntraObjectId,
    DeviceAttr::DeviceId,
    DeviceAttr::ManagedId,
];

impl OrgBuilder {
    pub fn new() -> Self {
        let user_multi = vec![
            MultiColumn::default(),
            MultiColumn::default(),
            MultiColumn::with_fields(ASSIGNED_PLAN_FIELDS),
        ];
        debug_assert_eq!(user_multi.len(), UserMulti::COUNT);
        let device_multi = vec![MultiColumn::default(); DeviceMulti::COUNT];
        OrgBuilder {
            org: Org {
                users: Table::new(UserAttr::SCALARS, user_multi),
                devices: Table::new(DeviceAttr::SCALARS, device_multi),
                ..Org::default()
            },
            user_rows: vec![NO_ROW],
            device_rows: [vec![NO_ROW], vec![NO_ROW], vec![NO_ROW]],
            cluster: false,
            logons: Vec::new(),
            logon_ids: Vec::new(),
            logon_index: FxHashMap::default(),
            queued: Writes::default(),
        }
    }

    /// Has [`finish`](Self::finish) number the device rows by the static
    /// groups that hold each device (or its primary user), then the user's
    /// place and department, then platform, instead of in the order records
    /// came. Exports list devices in no useful order; admins target sites and
    /// departments, so this puts each assignment's devices in few 64-row
    /// words and makes whole-fleet conflict analysis several times faster
    /// (`conflicts::dense`). Rows are still a pure function of the import.
    pub fn cluster_devices(&mut self) {
        self.cluster = true;
    }

    /// The row of the user with this object id, creating it when new.
    pub fn user(&mut self, object_id: &str) -> u32 {
        let id = norm_id(object_id);
        let col = &mut self.org.users.cols[UserAttr::ObjectId.index()];
        if let Some(c) = col.dict.get(&id)
            && let Some(&r) = self.user_rows.get(c as usize)
            && r != NO_ROW
        {
            return r;
        }
        let r = self.org.users.rows;
        self.org.users.rows += 1;
        let code = col.set(r, Some(&id)) as usize;
        if self.user_rows.len() <= code {
            self.user_rows.resize(code + 1, NO_ROW);
        }
        self.user_rows[code] = r;
        r
    }

    /// Makes room for about `n` more users, found by ids of about
    /// `id_bytes` bytes: a large import then does not grow its id columns
    /// by doubling while rows are found one by one.
    pub fn expect_users(&mut self, n: usize, id_bytes: usize) {
        let col = &mut self.org.users.cols[UserAttr::ObjectId.index()];
        col.dict.reserve(n, id_bytes);
        col.reserve(n);
        self.user_rows.reserve(n);
    }

    /// As [`Self::expect_users`], for devices found by `keys` (their kinds).
    pub fn expect_devices(&mut self, n: usize, id_bytes: usize, keys: &[DeviceKey<'_>]) {
        for k in keys {
            let (i, _) = k.slot();
            let col = &mut self.org.devices.cols[DEVICE_KEYS[i].index()];
            col.dict.reserve(n, id_bytes);
            col.reserve(n);
            self.device_rows[i].reserve(n);
        }
    }

    pub fn has_user(&self, object_id: &str) -> bool {
        self.org.users.cols[UserAttr::ObjectId.index()]
            .dict
            .get(&norm_id(object_id))
            .is_some()
    }

    /// The row of the device any of these keys names, creating it when new.
    /// Blank and all-zero ids are ignored (unregistered devices carry them).
    pub fn device(&mut self, keys: &[DeviceKey<'_>]) -> u32 {
        // Each key normalized once, for the lookup and for the write.
        assert!(keys.len() <= 3, "a device has three kinds of id");
        let norm: [Option<(usize, std::borrow::Cow<'_, str>)>; 3] = std::array::from_fn(|j| {
            let (i, s) = keys.get(j)?.slot();
            (!is_blank_id(s)).then(|| (i, norm_id(s)))
        });
        let mut row = None;
        for (i, id) in norm.iter().flatten() {
            let col = &self.org.devices.cols[DEVICE_KEYS[*i].index()];
            if let Some(c) = col.dict.get(id)
                && let Some(&r) = self.device_rows[*i].get(c as usize)
                && r != NO_ROW
            {
                row = Some(r);
                break;
            }
        }
        let row = row.unwrap_or_else(|| {
            let r = self.org.devices.rows;
            self.org.devices.rows += 1;
            r
        });
        for (i, id) in norm.iter().flatten() {
            let col = &mut self.org.devices.cols[DEVICE_KEYS[*i].index()];
            if col.code(row) != 0 {
                continue;
            }
            let code = col.set(row, Some(id)) as usize;
            let rows = &mut self.device_rows[*i];
            if rows.len() <= code {
                rows.resize(code + 1, NO_ROW);
            }
            if rows[code] == NO_ROW {
                rows[code] = row;
            }
        }
        row
    }

    /// Sets a user attribute; a missing value never erases one already given.
    pub fn set_user(&mut self, row: u32, attr: UserAttr, value: Option<&str>) {
        if attr == UserAttr::ObjectId {
            // `user` reads this column as rows are found: never queued.
            if let Some(v) = value.map(str::trim_ascii).filter(|v| !v.is_empty()) {
                self.org.users.cols[attr.index()].set(row, Some(v));
            }
            return;
        }
        self.queued.set_user(row, attr, value);
        self.spill();
    }

    /// Sets a device attribute; a missing value never erases one that another
    /// record (Entra or Intune) already gave.
    pub fn set_device(&mut self, row: u32, attr: DeviceAttr, value: Option<&str>) {
        if !self.set_key(row, attr, value) {
            self.queued.set_device(row, attr, value);
            self.spill();
        }
    }

    /// Sets a device attribute only where no record gave it a value yet.
    pub fn set_device_if_empty(&mut self, row: u32, attr: DeviceAttr, value: Option<&str>) {
        let col = &self.org.devices.cols[attr.index()];
        if DEVICE_KEYS.contains(&attr) && col.code(row) != 0 {
            return;
        }
        if !self.set_key(row, attr, value) {
            self.queued.set_device_if_empty(row, attr, value);
            self.spill();
        }
    }

    /// Sets an id column at once (`device` reads them as rows are found):
    /// false when `attr` is not one.
    fn set_key(&mut self, row: u32, attr: DeviceAttr, value: Option<&str>) -> bool {
        if !DEVICE_KEYS.contains(&attr) {
            return false;
        }
        if let Some(v) = value.map(str::trim_ascii).filter(|v| !v.is_empty()) {
            self.org.devices.cols[attr.index()].set(row, Some(v));
        }
        true
    }

    /// A device attribute as the writes so far leave it.
    pub fn device_value(&mut self, row: u32, attr: DeviceAttr) -> Option<&str> {
        self.apply(Vec::new());
        self.org.devices.cols[attr.index()].get(row)
    }

    pub fn set_device_multi<'a>(
        &mut self,
        row: u32,
        attr: DeviceMulti,
        values: impl IntoIterator<Item = &'a str>,
    ) {
        self.queued.set_device_multi(row, attr, values);
        self.spill();
    }

    /// Sets a user's directory extension property (`extension_<app id>_<name>`).
    pub fn set_user_ext(&mut self, row: u32, name: &str, value: &str) {
        self.queued.set_user_ext(row, name, value);
        self.spill();
    }

    /// Sets a device's directory extension property (`extension_<app id>_<name>`).
    pub fn set_device_ext(&mut self, row: u32, name: &str, value: &str) {
        self.queued.set_device_ext(row, name, value);
        self.spill();
    }

    pub fn set_user_multi<'a>(
        &mut self,
        row: u32,
        attr: UserMulti,
        values: impl IntoIterator<Item = &'a str>,
    ) {
        self.queued.set_user_multi(row, attr, values);
        self.spill();
    }

    pub fn set_user_records(
        &mut self,
        row: u32,
        attr: UserMulti,
        records: Vec<Vec<Option<String>>>,
    ) {
        self.queued.set_user_records(row, attr, records);
        self.spill();
    }

    /// Makes the values queued by the setters above, then `batches` in
    /// order, each column on a thread of its own.
    pub fn apply(&mut self, batches: Vec<Writes>) {
        let all = std::iter::once(std::mem::take(&mut self.queued)).chain(batches);
        let (mut users, mut devices, mut logons) = (Vec::new(), Vec::new(), Vec::new());
        for w in all {
            users.push(w.users);
            devices.push(w.devices);
            if !w.logons.is_empty() {
                logons.push((w.logons, w.logon_text));
            }
        }
        let org = &mut self.org;
        rayon::join(
            || queue::apply(&mut org.users, users),
            || queue::apply(&mut org.devices, devices),
        );
        for (entries, text) in logons {
            for (row, a, b, at) in entries {
                self.add_logon(row, &text[a..b], at);
            }
        }
    }

    /// Gathers values into the builder's own queue, made with the next
    /// [`Self::apply`] (or by `finish`).
    pub fn write_with(&mut self, f: impl FnOnce(&mut Writes)) {
        f(&mut self.queued);
        self.spill();
    }

    /// Queued text beyond which the setters make what they queued, so
    /// memory stays bounded.
    fn spill(&mut self) {
        if self.queued.size() >= 32 << 20 {
            self.apply(Vec::new());
        }
    }

    /// Records that the user with Entra object id `user_id` signed in to
    /// device `row`, last at `at` (Graph `usersLoggedOn`). Users are matched
    /// when the org is finished, so they may be imported later; a user seen
    /// twice on one device keeps the latest time.
    pub fn add_logon(&mut self, row: u32, user_id: &str, at: Option<jiff::Timestamp>) {
        let id = norm_id(user_id);
        let code = match self.logon_index.get(id.as_ref()) {
            Some(&c) => c,
            None => {
                let c = self.logon_ids.len() as u32;
                self.logon_ids.push(id.clone().into_owned());
                self.logon_index.insert(id.into_owned(), c);
                c
            }
        };
        let at = at.map_or(NO_TIME, |t| t.as_second());
        self.logons.push((row, code, at));
    }

    pub fn add_group(&mut self, g: Group) {
        self.org.groups.push(g);
    }

    pub fn add_filter(&mut self, f: Filter) {
        self.org.filters.push(f);
    }

    pub fn add_policy(&mut self, p: Policy) {
        self.org.policies.push(p);
    }

    pub fn users(&self) -> u32 {
        self.org.users.rows
    }

    pub fn devices(&self) -> u32 {
        self.org.devices.rows
    }

    /// Lays out the columns, derives what other properties imply and builds indices.
    pub fn finish(mut self) -> Org {
        self.apply(Vec::new());
        let mut org = self.org;
        org.users.finish();
        org.devices.finish();
        // Entra's deviceOSType follows the platform when no Entra record gave it.
        let n = org.devices.rows;
        for row in 0..n {
            if org.devices.cols[DeviceAttr::EntraOsType.index()].code(row) == 0
                && let Some(p) = org
                    .device(DeviceAttr::Platform, row)
                    .and_then(Platform::parse)
            {
                org.devices.cols[DeviceAttr::EntraOsType.index()].set(row, Some(p.entra_os_type()));
            }
        }
        org.user_by_oid = code_to_row(&org.users.cols[UserAttr::ObjectId.index()]).into();
        org.device_by_oid =
            code_to_row(&org.devices.cols[DeviceAttr::EntraObjectId.index()]).into();
        org.group_index = org
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (key(&g.id), i))
            .collect();
        // Each group's member ids are dropped on the thread that resolved
        // them, just after: ten million ids freed one by one on one thread,
        // each a read that misses the cache, took longer than resolving.
        let lists: Vec<Members> = (org.groups.iter_mut())
            .map(|g| match &mut g.kind {
                GroupKind::Static { members } => std::mem::take(members),
                _ => Members::default(),
            })
            .collect();
        org.static_members = (lists.into_par_iter())
            .map(|members| static_members(&org, &members))
            .collect();
        org.device_user = primary_users(&org).into();
        let mut logons = self.logons;
        // Sign-in ids to user rows; entries for users not imported are dropped.
        let logon_rows: Vec<u32> = self
            .logon_ids
            .iter()
            .map(|id| org.user_by_id(id).unwrap_or(NO_ROW))
            .collect();
        let before = logons.len();
        logons.retain_mut(|(_, u, _)| {
            *u = logon_rows[*u as usize];
            *u != NO_ROW
        });
        org.logons_unknown_users = before - logons.len();
        if self.cluster {
            let order = locality_order(&org);
            org.devices.permute(&order);
            org.device_by_oid =
                code_to_row(&org.devices.cols[DeviceAttr::EntraObjectId.index()]).into();
            org.device_user = order.iter().map(|&d| org.device_user[d as usize]).collect();
            // Static members were resolved to the rows before.
            let mut row_of = vec![0u32; order.len()];
            for (new, &old) in order.iter().enumerate() {
                row_of[old as usize] = new as u32;
            }
            for m in &mut org.static_members {
                m.devices.iter_mut().for_each(|d| *d = row_of[*d as usize]);
                m.devices.sort_unstable();
            }
            for l in &mut logons {
                l.0 = row_of[l.0 as usize];
            }
        }
        if before > 0 {
            index_logons(&mut org, logons);
        }
        // Primary users, the other direction.
        let users = org.users.rows as usize;
        let mut counts = vec![0u32; users + 1];
        for &u in &org.device_user {
            if u != NO_ROW {
                counts[u as usize + 1] += 1;
            }
        }
        for i in 0..users {
            counts[i + 1] += counts[i];
        }
        let mut fill = counts.clone();
        let mut devs = vec![0u32; *counts.last().unwrap_or(&0) as usize];
        for (d, &u) in org.device_user.iter().enumerate() {
            if u != NO_ROW {
                devs[fill[u as usize] as usize] = d as u32;
                fill[u as usize] += 1;
            }
        }
        org.user_offsets = counts.into();
        org.user_devices = devs.into();
        org.filter_index = org
            .filters
            .iter()
            .enumerate()
            .map(|(i, f)| (key(&f.id), i))
            .collect();
        org.policy_index = org
            .policies
            .iter()
            .enumerate()
            .map(|(i, p)| (key(&p.id), i))
            .collect();
        org.users.drop_large_tables();
        org.devices.drop_large_tables();
        org
    }
}

/// Builds both directions of the sign-in index from (device, user, time)
/// entries, one per device and user (the latest time wins).
fn index_logons(org: &mut Org, mut logons: Vec<(u32, u32, i64)>) {
    // By device, then user, latest first: dedup keeps the latest.
    logons.par_sort_unstable_by_key(|&(d, u, t)| (d, u, std::cmp::Reverse(t)));
    logons.dedup_by_key(|l| (l.0, l.1));
    let devices = org.devices.rows as usize;
    org.logon_offsets = offsets_of(devices, logons.iter().map(|l| l.0)).into();
    org.logon_users = logons.iter().map(|l| l.1).collect();
    org.logon_at = logons.iter().map(|l| l.2).collect();
    let users = org.users.rows as usize;
    let offsets = offsets_of(users, logons.iter().map(|l| l.1));
    let mut fill = offsets.clone();
    let mut devs = vec![0u32; logons.len()];
    // Entries come by device, so each user's devices come out sorted.
    for &(d, u, _) in &logons {
        devs[fill[u as usize] as usize] = d;
        fill[u as usize] += 1;
    }
    org.signin_offsets = offsets.into();
    org.signin_devices = devs.into();
}

/// Each device's primary user row, or [`NO_ROW`].
fn primary_users(org: &Org) -> Vec<u32> {
    let primary = &org.devices.cols[DeviceAttr::PrimaryUser.index()];
    let ucol = &org.users.cols[UserAttr::ObjectId.index()];
    let by_code: Vec<u32> = (0..primary.dict.len() as u32)
        .map(|c| {
            primary
                .dict
                .value(c)
                .and_then(|id| ucol.dict.get(&norm_id(id)))
                .and_then(|uc| org.user_by_oid.get(uc as usize).copied())
                .unwrap_or(NO_ROW)
        })
        .collect();
    (primary.view().iter())
        .map(|c| by_code[c as usize])
        .collect()
}

/// Device rows in the order [`OrgBuilder::cluster_devices`] gives them: by the
/// first static group (in import order) that lists the device or its primary
/// user, then by the user's country, city and department, then by platform,
/// then as they came. Reads `static_members` and `device_user`.
/// Where a device sits: its first static group, its user's country, city
/// and department, its platform.
type Place = (u32, [u32; 3], u32);

fn locality_order(org: &Org) -> Vec<u32> {
    let n = org.devices.rows as usize;
    let mut user_key = vec![u32::MAX; org.users.rows as usize];
    let mut device_key = vec![u32::MAX; n];
    // Groups in import order: the first one that lists a row keys it.
    for (g, m) in org.static_members.iter().enumerate().rev() {
        for &u in &m.users {
            user_key[u as usize] = g as u32;
        }
        for &d in &m.devices {
            device_key[d as usize] = g as u32;
        }
    }
    let platform = org.devices.cols[DeviceAttr::Platform.index()].view();
    // Where dynamic rules, not static groups, make the sites: the user's
    // country, city and department.
    let place = [UserAttr::Country, UserAttr::City, UserAttr::Department]
        .map(|a| &org.users.cols[a.index()]);
    let place = place.map(|c| c.view());
    let mut keyed: Vec<(Place, u32)> = (org.device_user.par_iter())
        .enumerate()
        .map(|(d, &u)| {
            let by_user = user_key.get(u as usize).copied().unwrap_or(u32::MAX);
            let place = place.map(|c| if u == NO_ROW { u32::MAX } else { c.code(u) });
            let platform = platform.code(d as u32);
            ((device_key[d].min(by_user), place, platform), d as u32)
        })
        .collect();
    // Ties keep the order records came in: the row is the last key.
    keyed.par_sort_unstable();
    keyed.into_iter().map(|(_, d)| d).collect()
}

fn static_members(org: &Org, members: &Members) -> StaticMembers {
    let mut m = StaticMembers::default();
    // Users and devices named as such, with ids as Graph writes them, are
    // looked up together afterwards (a group of thousands of devices is
    // thousands of reads that miss the cache, which then overlap); their
    // order does not matter, as both lists are sorted.
    let (mut user_ids, mut device_ids) = (Vec::new(), Vec::new());
    let texts = members.texts();
    for (id, kind) in texts.iter() {
        let user = || org.user_by_id(id);
        let device = || org.device_by_object_id(id);
        let group = || org.group(id);
        let found = match kind {
            Some(MemberKind::User) if as_written(id) => {
                user_ids.push(id);
                continue;
            }
            Some(MemberKind::Device) if as_written(id) => {
                device_ids.push(id);
                continue;
            }
            Some(MemberKind::User) => user().map(|u| m.users.make_mut().push(u)),
            Some(MemberKind::Device) => device().map(|d| m.devices.make_mut().push(d)),
            Some(MemberKind::Group) => group().map(|x| m.groups.push(x)),
            None => user()
                .map(|u| m.users.make_mut().push(u))
                .or_else(|| device().map(|d| m.devices.make_mut().push(d)))
                .or_else(|| group().map(|x| m.groups.push(x))),
        };
        if found.is_none() {
            m.missing += 1;
        }
    }
    let mut codes = Vec::new();
    for (ids, col, rows, list) in [
        (
            user_ids,
            &org.users.cols[UserAttr::ObjectId.index()],
            &org.user_by_oid,
            &mut m.users,
        ),
        (
            device_ids,
            &org.devices.cols[DeviceAttr::EntraObjectId.index()],
            &org.device_by_oid,
            &mut m.devices,
        ),
    ] {
        codes.clear();
        col.dict.get_many(&ids, &mut codes);
        let list = list.make_mut();
        for code in &codes {
            match code.and_then(|c| rows.get(c as usize).copied().filter(|r| *r != NO_ROW)) {
                Some(row) => list.push(row),
                None => m.missing += 1,
            }
        }
    }
    m.users.sort_unstable();
    m.users.make_mut().dedup();
    m.devices.sort_unstable();
    m.devices.make_mut().dedup();
    m
}

/// An id as Graph writes it (trimmed, lower case): its own normal form, so it
/// can be looked up as it stands.
fn as_written(id: &str) -> bool {
    matches!(norm_id(id), std::borrow::Cow::Borrowed(t) if t.len() == id.len())
}

fn code_to_row(col: &DictColumn) -> Vec<u32> {
    let mut out = vec![NO_ROW; col.dict.len()];
    for (row, c) in col.view().iter().enumerate() {
        if c != 0 && out[c as usize] == NO_ROW {
            out[c as usize] = row as u32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PC-0001…PC-0012 and MAC-1; jane.doe@ has PC-0003 and MAC-1.
    fn org() -> Org {
        let mut b = OrgBuilder::new();
        let jane = b.user("u-jane");
        b.set_user(jane, UserAttr::Upn, Some("Jane.Doe@contoso.com"));
        let joe = b.user("u-joe");
        b.set_user(joe, UserAttr::Upn, Some("joe@contoso.com"));
        b.set_user(joe, UserAttr::Mail, Some("jane.marketing@contoso.com"));
        let mut add = |name: &str, serial: &str, user: Option<&str>| {
            let d = b.device(&[DeviceKey::ObjectId(&format!("obj-{name}"))]);
            b.set_device(d, DeviceAttr::Name, Some(name));
            b.set_device(d, DeviceAttr::Serial, Some(serial));
            b.set_device(d, DeviceAttr::PrimaryUser, user);
        };
        for i in 1..=12 {
            let user = (i == 3).then_some("u-jane");
            add(&format!("PC-{i:04}"), &format!("SN{i:03}X"), user);
        }
        add("MAC-1", "C02XYZ", Some("u-jane"));
        add("KIOSK", "PC-0099", Some("u-joe"));
        b.finish()
    }

    fn names(org: &Org, rows: &[u32]) -> Vec<String> {
        let mut v: Vec<String> = rows
            .iter()
            .map(|r| {
                org.device(DeviceAttr::Name, *r)
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn search_takes_exact_ids_then_prefixes_of_names_serials_and_users() {
        let org = org();
        // An exact name wins over the names it is a prefix of.
        let (rows, total) = org.search_devices("pc-0001", 50);
        assert_eq!(
            (names(&org, &rows), total),
            (vec!["PC-0001".to_string()], 1)
        );
        // A prefix, any case, of names and serials (KIOSK's serial is PC-0099).
        let (rows, total) = org.search_devices("pc-00", 5);
        assert_eq!((rows.len(), total), (5, 13));
        assert!(names(&org, &org.search_devices("pc-00", 50).0).contains(&"KIOSK".to_string()));
        let (rows, _) = org.search_devices("sn01", 50);
        assert_eq!(names(&org, &rows), ["PC-0010", "PC-0011", "PC-0012"]);
        // A UPN's prefix gives the user's devices; a mail's too.
        let (rows, total) = org.search_devices("JANE.d", 50);
        assert_eq!(
            (names(&org, &rows), total),
            (vec!["MAC-1".to_string(), "PC-0003".to_string()], 2)
        );
        let (rows, _) = org.search_devices("jane", 50);
        assert_eq!(names(&org, &rows), ["KIOSK", "MAC-1", "PC-0003"]);
        assert_eq!(org.search_devices("nothing", 50), (Vec::new(), 0));
        assert_eq!(org.search_devices("   ", 50), (Vec::new(), 0));
    }
}
