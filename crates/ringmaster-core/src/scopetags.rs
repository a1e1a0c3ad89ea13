//! Intune scope tags (`roleScopeTagIds`): what an administrator whose role
//! is limited to one tag sees. Intune tags policies, profiles, intents and
//! managed devices; assignments and Entra groups carry no tags (Graph
//! `roleScopeTag`, memdocs `fundamentals/scope-tags.md`). An object without
//! tags is shown under the built-in Default tag, id `0`. Graph exports hold
//! ids; IntuneCD backups hold names, so a tag matches by either.

use crate::model::{DeviceAttr, DeviceMulti, Policy};
use crate::org::Org;
use roaring::RoaringBitmap;

/// Id of Intune's built-in Default scope tag.
pub const DEFAULT_TAG: &str = "0";

/// How many out-of-scope objects are named in messages (all are counted).
pub const NAMED: usize = 10;

/// The tags of a policy as Intune shows them: Default when it has none.
pub fn policy_tags(p: &Policy) -> Vec<&str> {
    if p.scope_tags.is_empty() {
        vec![DEFAULT_TAG]
    } else {
        p.scope_tags.iter().map(String::as_str).collect()
    }
}

/// A scope tag: its id and, where known, its name.
#[derive(Debug, Clone, Copy)]
pub struct Tag<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
}

impl Tag<'_> {
    /// Whether a tag as an export wrote it (an id, or IntuneCD's name) is this one.
    pub fn is(&self, written: &str) -> bool {
        written == self.id
            || self.name.is_some_and(|n| n.eq_ignore_ascii_case(written))
            || (self.id == DEFAULT_TAG && written.eq_ignore_ascii_case("Default"))
    }
}

/// Whether a policy is in the scope of `tag`.
pub fn policy_in(p: &Policy, tag: Tag<'_>) -> bool {
    policy_tags(p).into_iter().any(|t| tag.is(t))
}

/// The tags of a device row as Intune shows them: its own, Default when an
/// Intune device has none, nothing for a device Intune does not manage.
pub fn device_tags(org: &Org, row: u32, managed: bool) -> Vec<&str> {
    let own: Vec<&str> = org.devices.multi[DeviceMulti::ScopeTags.index()]
        .values(row)
        .collect();
    match (own.is_empty(), managed) {
        (false, _) => own,
        (true, true) => vec![DEFAULT_TAG],
        (true, false) => Vec::new(),
    }
}

/// The organization split by one scope tag.
#[derive(Debug, Clone)]
pub struct Within {
    /// The tag's id.
    pub tag: String,
    /// Policies that carry the tag, by index.
    pub policies: Vec<usize>,
    /// Policies that do not.
    pub policies_outside: Vec<usize>,
    /// Devices that carry the tag.
    pub devices: RoaringBitmap,
    /// Intune devices that do not (devices Intune does not manage carry no
    /// tags and are in no scope; they are neither here nor in `devices`).
    pub devices_outside: RoaringBitmap,
    /// No device in the import carries `roleScopeTagIds`: every Intune
    /// device was taken as Default.
    pub devices_untagged: bool,
}

/// Splits the policies and the managed devices (`managed`, see
/// [`crate::targeting::enrolled`]) by `tag`.
pub fn within(org: &Org, managed: &RoaringBitmap, tag: Tag<'_>) -> Within {
    let (policies, policies_outside) =
        (0..org.policies.len()).partition(|&i| policy_in(&org.policies[i], tag));
    let mut devices = RoaringBitmap::new();
    let mut devices_outside = RoaringBitmap::new();
    let col = &org.devices.multi[DeviceMulti::ScopeTags.index()];
    let mut untagged = true;
    for row in managed.iter() {
        untagged &= col.row(row).is_empty();
        if device_tags(org, row, true).into_iter().any(|t| tag.is(t)) {
            devices.insert(row);
        } else {
            devices_outside.insert(row);
        }
    }
    Within {
        tag: tag.id.to_string(),
        policies,
        policies_outside,
        devices,
        devices_outside,
        devices_untagged: untagged && !managed.is_empty(),
    }
}

impl Within {
    /// One paragraph on what lies outside the scope: counts, and the first
    /// [`NAMED`] policies and devices by name.
    pub fn outside(&self, org: &Org, label: &str) -> Vec<String> {
        let mut out = Vec::new();
        let n = self.policies_outside.len();
        if n > 0 {
            let names: Vec<String> = self
                .policies_outside
                .iter()
                .take(NAMED)
                .map(|&i| format!("'{}'", org.policies[i].name))
                .collect();
            out.push(format!(
                "{n} {} outside scope tag {label}: {}{}",
                if n == 1 { "policy" } else { "policies" },
                names.join(", "),
                more(n)
            ));
        }
        let n = self.devices_outside.len() as usize;
        if n > 0 {
            let names: Vec<String> = self
                .devices_outside
                .iter()
                .take(NAMED)
                .map(|r| device_name(org, r))
                .collect();
            out.push(format!(
                "{n} {} outside scope tag {label}: {}{}",
                if n == 1 { "device" } else { "devices" },
                names.join(", "),
                more(n)
            ));
        }
        if self.devices_untagged {
            out.push(
                "no device in the import carries roleScopeTagIds: every Intune device counts as Default (0); export managed devices with roleScopeTagIds to scope them"
                    .into(),
            );
        }
        out
    }
}

/// Cuts every policy's reach to `devices` (the devices of a tag): what an
/// administrator limited to the tag sees of the policies' effect.
pub fn restrict(org: &Org, res: &mut crate::targeting::Resolution, devices: &RoaringBitmap) {
    for (p, t) in res.policies.iter_mut().enumerate() {
        let reach = &t.devices & devices;
        let (na, by_reason) = crate::applicability::not_applicable(org, &org.policies[p], &reach);
        t.set_reach(reach, na);
        t.not_applicable_by_platform = by_reason;
    }
}

fn more(n: usize) -> String {
    if n > NAMED {
        format!(" and {} more", n - NAMED)
    } else {
        String::new()
    }
}

fn device_name(org: &Org, row: u32) -> String {
    match org.device(DeviceAttr::Name, row) {
        Some(n) => n.to_string(),
        None => org.device_label(row),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PolicyKind;
    use crate::org::{DeviceKey, OrgBuilder};

    fn policy(id: &str, tags: &[&str]) -> Policy {
        Policy {
            id: id.into(),
            name: format!("P {id}"),
            kind: PolicyKind::SettingsCatalog,
            odata_type: "x".into(),
            platforms: Vec::new(),
            template_family: None,
            assignments: Vec::new(),
            settings: Vec::new().into(),
            applicability: Vec::new(),
            source: "test".into(),
            last_modified: None,
            scope_tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn policies_and_devices_split_by_tag_with_default_for_untagged() {
        let mut b = OrgBuilder::new();
        let d0 = b.device(&[DeviceKey::ManagedId("m0")]);
        b.set_device(d0, DeviceAttr::Name, Some("PAR-001"));
        b.set_device_multi(d0, DeviceMulti::ScopeTags, ["3"]);
        let d1 = b.device(&[DeviceKey::ManagedId("m1")]);
        b.set_device(d1, DeviceAttr::Name, Some("LYO-001"));
        b.set_device_multi(d1, DeviceMulti::ScopeTags, ["4", "0"]);
        let d2 = b.device(&[DeviceKey::ManagedId("m2")]);
        b.set_device(d2, DeviceAttr::Name, Some("OLD-001"));
        b.add_policy(policy("a", &["3", "4"]));
        b.add_policy(policy("b", &[]));
        b.add_policy(policy("c", &["4"]));
        b.add_policy(policy("d", &["Paris"]));
        let org = b.finish();
        let (managed, _) = crate::targeting::enrolled(&org);

        let paris = Tag {
            id: "3",
            name: Some("paris"),
        };
        let w = within(&org, &managed, paris);
        // `d` comes from an IntuneCD backup, which names its tags.
        assert_eq!(w.policies, vec![0, 3]);
        assert_eq!(w.policies_outside, vec![1, 2]);
        assert_eq!(w.devices.iter().collect::<Vec<_>>(), vec![d0]);
        assert_eq!(w.devices_outside.len(), 2);
        assert!(!w.devices_untagged);
        let lines = w.outside(&org, "Paris (3)");
        assert_eq!(
            lines,
            vec![
                "2 policies outside scope tag Paris (3): 'P b', 'P c'".to_string(),
                "2 devices outside scope tag Paris (3): LYO-001, OLD-001".to_string(),
            ]
        );

        // Untagged objects are Default's.
        let default = Tag {
            id: DEFAULT_TAG,
            name: None,
        };
        let w = within(&org, &managed, default);
        assert_eq!(w.policies, vec![1]);
        let mut rows: Vec<u32> = w.devices.iter().collect();
        rows.sort_unstable();
        assert_eq!(rows, vec![d1, d2]);
    }

    #[test]
    fn an_import_without_device_tags_says_so() {
        let mut b = OrgBuilder::new();
        b.device(&[DeviceKey::ManagedId("m0")]);
        let org = b.finish();
        let (managed, _) = crate::targeting::enrolled(&org);
        let w = within(
            &org,
            &managed,
            Tag {
                id: "5",
                name: None,
            },
        );
        assert!(w.devices_untagged);
        assert_eq!(w.devices_outside.len(), 1);
        assert!(
            w.outside(&org, "5")
                .last()
                .unwrap()
                .contains("roleScopeTagIds")
        );
    }
}
