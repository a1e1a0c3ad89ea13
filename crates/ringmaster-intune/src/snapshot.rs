//! A tenant snapshot: what `ringmaster import intune` reads from Graph and
//! writes as Graph list files (`{"value": [...]}`), the format every other
//! command already imports. Policies carry their `settings` and
//! `assignments` inline, as exports do.

use crate::client::{BatchItem, Graph, GraphError, items};
use serde_json::{Value, json};
use std::path::Path;

/// User properties the organization model reads (Graph returns only a few
/// by default).
const USER_SELECT: &str = "id,userPrincipalName,displayName,givenName,surname,mail,mailNickname,department,jobTitle,companyName,city,state,country,usageLocation,officeLocation,employeeId,employeeType,employeeHireDate,userType,accountEnabled,onPremisesSyncEnabled,preferredLanguage,onPremisesExtensionAttributes,otherMails,proxyAddresses,assignedPlans,assignedLicenses";
const GROUP_SELECT: &str = "id,displayName,description,groupTypes,membershipRule,membershipRuleProcessingState,securityEnabled,mailEnabled";
const DEVICE_SELECT: &str = "id,deviceId,displayName,operatingSystem,operatingSystemVersion,trustType,manufacturer,model,accountEnabled,physicalIds,systemLabels,profileType,extensionAttributes,enrollmentProfileName,deviceOwnership,managementType,isCompliant,mdmAppId,deviceCategory";

/// What a snapshot wrote.
#[derive(Debug, Default)]
pub struct Written {
    /// (file, records) in the order written.
    pub files: Vec<(String, usize)>,
    pub requests: u64,
    pub throttled: u64,
}

fn write(dir: &Path, name: &str, records: &[Value], w: &mut Written) -> Result<(), GraphError> {
    let path = dir.join(name);
    let text = serde_json::to_string(&json!({ "value": records }))
        .map_err(|e| GraphError::Invalid(format!("writing {name}: {e}")))?;
    // Written beside, then renamed: a cut never leaves half a file.
    let tmp = dir.join(format!(".{name}.part"));
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| GraphError::Invalid(format!("writing {}: {e}", path.display())))?;
    w.files.push((name.to_string(), records.len()));
    Ok(())
}

/// Reads the tenant into `dir`: users, groups and the members of assigned
/// groups (transitive), managed devices, Entra devices, assignment
/// filters, settings-catalog policies (endpoint security and baselines
/// among them) with settings and assignments, device configurations and
/// compliance policies with assignments. Dynamic groups keep their rule
/// (ringmaster evaluates it); their members are not read.
pub async fn read_tenant(g: &Graph, dir: &Path) -> Result<Written, GraphError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| GraphError::Invalid(format!("creating {}: {e}", dir.display())))?;
    let mut w = Written::default();
    let users = g
        // Dynamic rules read these (user.otherMails, user.proxyAddresses,
        // user.assignedPlans, manager); All users is the licensed ones.
        .get_all(&format!(
            "/users?$select={USER_SELECT}&$expand=manager($select=id)&$top=999"
        ))
        .await?;
    write(dir, "users.json", &users, &mut w)?;
    let groups = g
        .get_all(&format!("/groups?$select={GROUP_SELECT}&$top=999"))
        .await?;
    write(dir, "groups.json", &groups, &mut w)?;
    let assigned: Vec<&str> = groups
        .iter()
        .filter(|gr| {
            !gr["groupTypes"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x.as_str() == Some("DynamicMembership")))
        })
        .filter_map(|gr| gr["id"].as_str())
        .collect();
    let mut members = Vec::new();
    let pages = first_pages(
        g,
        &assigned
            .iter()
            .map(|id| format!("/groups/{id}/transitiveMembers?$select=id&$top=999"))
            .collect::<Vec<_>>(),
    )
    .await?;
    for (id, recs) in assigned.iter().zip(pages) {
        for m in recs {
            let Some(mid) = m["id"].as_str() else {
                continue;
            };
            let kind = m["@odata.type"]
                .as_str()
                .unwrap_or("")
                .trim_start_matches("#microsoft.graph.");
            members.push(json!({"groupId": id, "memberId": mid, "memberType": kind}));
        }
    }
    write(dir, "groupMembers.json", &members, &mut w)?;
    let managed = g
        .get_all("/deviceManagement/managedDevices?$top=999")
        .await?;
    write(dir, "managedDevices.json", &managed, &mut w)?;
    let devices = g
        .get_all(&format!("/devices?$select={DEVICE_SELECT}&$top=999"))
        .await?;
    write(dir, "devices.json", &devices, &mut w)?;
    let filters = g.get_all("/deviceManagement/assignmentFilters").await?;
    write(dir, "assignmentFilters.json", &filters, &mut w)?;
    let mut policies = g
        .get_all("/deviceManagement/configurationPolicies?$top=100")
        .await?;
    let ids: Vec<String> = policies
        .iter()
        .map(|p| p["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let settings = first_pages(
        g,
        &ids.iter()
            .map(|id| format!("/deviceManagement/configurationPolicies/{id}/settings?$top=1000"))
            .collect::<Vec<_>>(),
    )
    .await?;
    let assignments = first_pages(
        g,
        &ids.iter()
            .map(|id| format!("/deviceManagement/configurationPolicies/{id}/assignments"))
            .collect::<Vec<_>>(),
    )
    .await?;
    for ((p, s), a) in policies.iter_mut().zip(settings).zip(assignments) {
        p["settings"] = Value::Array(s);
        p["assignments"] = Value::Array(a);
    }
    write(dir, "configurationPolicies.json", &policies, &mut w)?;
    for (path, name) in [
        (
            "/deviceManagement/deviceConfigurations",
            "deviceConfigurations.json",
        ),
        (
            "/deviceManagement/deviceCompliancePolicies",
            "deviceCompliancePolicies.json",
        ),
    ] {
        let recs = g.get_all(&format!("{path}?$expand=assignments")).await?;
        write(dir, name, &recs, &mut w)?;
    }
    w.requests = g
        .counters
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    w.throttled = g
        .counters
        .throttled
        .load(std::sync::atomic::Ordering::Relaxed);
    Ok(w)
}

/// Each path's whole collection: first pages in `$batch`es of 20, then
/// each `nextLink` on its own.
async fn first_pages(g: &Graph, paths: &[String]) -> Result<Vec<Vec<Value>>, GraphError> {
    let reqs: Vec<BatchItem> = paths
        .iter()
        .map(|p| BatchItem {
            method: "GET",
            url: p.clone(),
            body: None,
        })
        .collect();
    let mut out = Vec::with_capacity(paths.len());
    for r in g.batch(&reqs).await {
        let page = r?;
        let mut recs = items(&page);
        let mut next = page["@odata.nextLink"].as_str().map(str::to_string);
        while let Some(link) = next.take() {
            let p = g.get(&link).await?;
            recs.extend(items(&p));
            next = p["@odata.nextLink"].as_str().map(str::to_string);
        }
        out.push(recs);
    }
    Ok(out)
}
