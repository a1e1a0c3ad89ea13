//! Graph application permissions: what each call ringmaster makes needs,
//! what each feature needs, and what an access token grants (its `roles`
//! claim). Each need lists its permissions from least to most privileged,
//! as the "Permissions" table of the call's Graph page does; any one of
//! them grants the call.

use base64::Engine as _;
use std::collections::BTreeSet;

/// One requirement: any of these permissions, least privileged first.
pub type Need = &'static [&'static str];

const USERS: Need = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const DEVICES: Need = &[
    "Device.Read.All",
    "Device.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const GROUPS_READ: Need = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const GROUP_CREATE: Need = &[
    "Group.Create",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const GROUP_UPSERT: Need = &["Group.ReadWrite.All", "Directory.ReadWrite.All"];
const MEMBERS_WRITE: Need = &[
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];
/// Graph, "Add members": a device member also needs this.
const DEVICE_WRITE: Need = &["Device.ReadWrite.All", "Directory.ReadWrite.All"];
const MANAGED_READ: Need = &[
    "DeviceManagementManagedDevices.Read.All",
    "DeviceManagementManagedDevices.ReadWrite.All",
];
const CONFIG_READ: Need = &[
    "DeviceManagementConfiguration.Read.All",
    "DeviceManagementConfiguration.ReadWrite.All",
];
const CONFIG_WRITE: Need = &["DeviceManagementConfiguration.ReadWrite.All"];
/// Graph, "List roleScopeTags".
const SCOPE_TAGS_READ: Need = &[
    "DeviceManagementConfiguration.Read.All",
    "DeviceManagementConfiguration.ReadWrite.All",
    "DeviceManagementRBAC.Read.All",
    "DeviceManagementRBAC.ReadWrite.All",
];
/// Graph, "Create operationApprovalRequest" (Multi Admin Approval).
const APPROVAL_WRITE: Need = &[
    "DeviceManagementConfiguration.ReadWrite.All",
    "DeviceManagementRBAC.ReadWrite.All",
];

/// A feature of ringmaster and every need of its calls.
pub struct Feature {
    pub name: &'static str,
    pub needs: &'static [Need],
}

/// The features `ringmaster connect intune` checks, in the order a rollout
/// uses them.
pub const FEATURES: &[Feature] = &[
    Feature {
        name: "read tenant",
        needs: &[USERS, DEVICES, GROUPS_READ, MANAGED_READ, CONFIG_READ],
    },
    Feature {
        name: "create groups and add members",
        // The wave group is upserted by its unique name, never POSTed.
        needs: &[GROUP_UPSERT, MEMBERS_WRITE, DEVICE_WRITE, GROUPS_READ],
    },
    Feature {
        name: "assign",
        needs: &[CONFIG_WRITE],
    },
    Feature {
        name: "read status",
        needs: &[CONFIG_READ],
    },
    Feature {
        name: "multi admin approval",
        needs: &[APPROVAL_WRITE],
    },
];

/// What a call needs, every entry met (path after the version, query
/// ignored). Unknown calls need nothing known.
pub fn needed(method: &str, path: &str) -> Vec<Need> {
    let path = path.split('?').next().unwrap_or(path);
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, seg.as_slice()) {
        ("GET", ["users", ..]) => vec![USERS],
        ("GET", ["devices", ..]) => vec![DEVICES],
        ("GET", [g, ..]) if g.starts_with("groups") => vec![GROUPS_READ],
        ("POST", ["groups"]) => vec![GROUP_CREATE],
        ("PATCH", [g]) if g.starts_with("groups(") => vec![GROUP_UPSERT],
        // ringmaster adds devices only.
        ("PATCH", ["groups", _]) => vec![MEMBERS_WRITE, DEVICE_WRITE],
        ("DELETE", ["groups", _, "members", ..]) => vec![MEMBERS_WRITE],
        ("GET", ["deviceManagement", "managedDevices", ..]) => vec![MANAGED_READ],
        ("POST", ["deviceManagement", "reports", ..]) => vec![CONFIG_READ],
        ("POST", ["deviceManagement", "operationApprovalRequests", ..]) => vec![APPROVAL_WRITE],
        ("GET", ["deviceManagement", "roleScopeTags", ..]) => vec![SCOPE_TAGS_READ],
        ("GET", ["deviceManagement", ..]) => vec![CONFIG_READ],
        // A new policy's scope tags (`roleScopeTagIds`).
        ("PATCH", ["deviceManagement", _, _]) => vec![CONFIG_WRITE],
        ("POST", ["deviceManagement", _, _, "assign"]) => vec![CONFIG_WRITE],
        _ => Vec::new(),
    }
}

/// What to grant so every need is met: for each need neither the granted
/// permissions nor those named before meet, its least privileged one.
pub fn missing(needs: &[Need], granted: &BTreeSet<String>) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for n in needs {
        if !n.iter().any(|p| granted.contains(*p) || out.contains(p)) {
            out.push(n[0]);
        }
    }
    out
}

/// The application roles an access token grants (its `roles` claim), or
/// None when the token is not a JWT that can be read. The token is not
/// verified: Graph does that; this only explains what Graph will refuse.
pub fn roles_of(token: &str) -> Option<BTreeSet<String>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(
        v["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(roles: &[&str]) -> BTreeSet<String> {
        roles.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn calls_need_their_documented_permissions() {
        let check = |method: &str, path: &str, granted: &[&str], expect: &[&str]| {
            assert_eq!(
                missing(&needed(method, path), &set(granted)),
                expect,
                "{method} {path}"
            );
        };
        check("GET", "/users?$select=id", &[], &["User.Read.All"]);
        check("GET", "/users", &["Directory.Read.All"], &[]);
        check(
            "PATCH",
            "/groups/g1",
            &["GroupMember.ReadWrite.All"],
            &["Device.ReadWrite.All"],
        );
        check(
            "PATCH",
            "/groups/g1",
            &["Group.ReadWrite.All", "Device.ReadWrite.All"],
            &[],
        );
        check(
            "PATCH",
            "/groups(uniqueName='rm')",
            &["Group.Create"],
            &["Group.ReadWrite.All"],
        );
        check(
            "POST",
            "/deviceManagement/configurationPolicies/p1/assign",
            &["DeviceManagementConfiguration.Read.All"],
            &["DeviceManagementConfiguration.ReadWrite.All"],
        );
        check(
            "POST",
            "/deviceManagement/reports/getConfigurationPolicyDevicesReport",
            &["DeviceManagementConfiguration.ReadWrite.All"],
            &[],
        );
        check(
            "GET",
            "/deviceManagement/managedDevices",
            &["DeviceManagementConfiguration.ReadWrite.All"],
            &["DeviceManagementManagedDevices.Read.All"],
        );
    }

    #[test]
    fn a_feature_names_the_fewest_least_privileged_permissions() {
        let f = |name: &str| FEATURES.iter().find(|f| f.name == name).unwrap().needs;
        assert_eq!(
            missing(f("create groups and add members"), &set(&[])),
            ["Group.ReadWrite.All", "Device.ReadWrite.All"]
        );
        assert_eq!(
            missing(f("read tenant"), &set(&["Directory.Read.All"])),
            [
                "DeviceManagementManagedDevices.Read.All",
                "DeviceManagementConfiguration.Read.All"
            ]
        );
        assert!(
            missing(
                f("multi admin approval"),
                &set(&["DeviceManagementRBAC.ReadWrite.All"])
            )
            .is_empty()
        );
    }

    #[test]
    fn roles_come_from_the_token_payload() {
        let b = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let tok = format!(
            "{}.{}.sig",
            b(serde_json::json!({"alg": "RS256"})),
            b(serde_json::json!({"roles": ["User.Read.All", "Device.Read.All"]}))
        );
        assert_eq!(
            roles_of(&tok),
            Some(set(&["Device.Read.All", "User.Read.All"]))
        );
        assert_eq!(roles_of("opaque-token"), None);
    }
}
