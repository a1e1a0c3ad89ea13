//! The engine's connector over Intune. Each wave gets one static security
//! group ("ringmaster ROLLOUT wave N", found again by its mail nickname);
//! the group is added to each new policy's assignments, and as an
//! exclusion on the overlapping existing policies while a pilot is
//! isolated. Every step converges on the wanted state by reading it
//! first, so a step repeated after a crash or a cut connection neither
//! loses nor duplicates anything.
//!
//! `/assign` replaces a policy's whole assignment set: the connector reads
//! the set, merges its own target in or out, and writes it back.
//!
//! Scope tags: Graph carries `roleScopeTagIds` on policies, not on their
//! assignments nor on Entra groups. The plan's `[[scope_tags]]` are checked
//! by name against `GET /deviceManagement/roleScopeTags` and added to each
//! new policy before it is assigned (tags it has are kept); the wave group
//! names them in its description.

use crate::client::{BatchItem, Graph, GraphError};
use async_trait::async_trait;
use ringmaster_core::status::{DeviceState, StatusReport};
use ringmaster_engine::connector::{
    ApprovalRequest, ApprovalStatus, Approvals, Assigned, Connector, ConnectorError, Reported,
};
use roaring::RoaringBitmap;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Where a policy lives in Graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Collection {
    /// Settings catalog, endpoint security, security baselines.
    ConfigurationPolicies,
    /// Templates and custom OMA-URI profiles, update rings.
    DeviceConfigurations,
    DeviceCompliancePolicies,
}

impl Collection {
    pub fn path(self) -> &'static str {
        match self {
            Collection::ConfigurationPolicies => "/deviceManagement/configurationPolicies",
            Collection::DeviceConfigurations => "/deviceManagement/deviceConfigurations",
            Collection::DeviceCompliancePolicies => "/deviceManagement/deviceCompliancePolicies",
        }
    }

    /// From an exported policy's `@odata.type` (settings-catalog exports
    /// carry none, or `deviceManagementConfigurationPolicy`).
    pub fn of_type(odata_type: Option<&str>) -> Collection {
        let t = odata_type.unwrap_or("").to_ascii_lowercase();
        if t.ends_with("compliancepolicy") {
            Collection::DeviceCompliancePolicies
        } else if t.is_empty() || t.ends_with("devicemanagementconfigurationpolicy") {
            Collection::ConfigurationPolicies
        } else {
            Collection::DeviceConfigurations
        }
    }
}

/// A policy the connector assigns or excludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRef {
    pub id: String,
    pub collection: Collection,
}

/// What the connector needs of the organization.
pub struct Fleet {
    /// Per device row: its Entra device object id (what a group holds).
    pub object_ids: Vec<Option<String>>,
    /// Any id a report may name (Intune id, Entra ids, name) → device row.
    pub rows: ringmaster_engine::ingest::Directory,
}

impl Fleet {
    pub fn of(org: &ringmaster_core::org::Org) -> Fleet {
        use ringmaster_core::model::DeviceAttr;
        Fleet {
            object_ids: (0..org.devices.rows)
                .map(|d| org.device(DeviceAttr::EntraObjectId, d).map(str::to_string))
                .collect(),
            rows: ringmaster_engine::ingest::Directory::new(org),
        }
    }
}

pub struct Intune {
    graph: Arc<Graph>,
    rollout: String,
    /// The new policies: their report rows are the statuses ringmaster reads.
    policies: Vec<PolicyRef>,
    /// Existing policies that overlap the new ones (excluded while isolated).
    overlapping: Vec<PolicyRef>,
    fleet: Fleet,
    groups: Mutex<HashMap<u32, String>>,
    /// The plan's scope tags: (name, id), as `[[scope_tags]]` says.
    scope_tags: Vec<(String, String)>,
    /// The tags' ids once checked against the tenant.
    tag_ids: Mutex<Option<Vec<String>>>,
    /// New policies known to carry every tag.
    tagged: Mutex<HashSet<String>>,
}

fn err(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::new("Intune", e.to_string())
}

// Multi Admin Approval over Graph (Microsoft Learn, Intune: "Use Multi
// Admin Approval with the Microsoft Graph API"): an app-only write to a
// protected resource without the approval headers is refused with 400 (one
// copy of the page says 403) naming the justification header; sent again
// with a justification it makes an `operationApprovalRequest` (Graph:
// "operationApprovalRequest resource type"); once a second administrator
// approves it, the write is sent again with the request's id.
/// Asks for approval, with why (the header named in Graph's refusal).
pub const JUSTIFICATION_HEADER: &str = "x-msft-approval-justification";
/// Sends an approved write with its request's id. The stored copies of
/// Microsoft's pages did not show this header's spelling; it is kept here
/// alone so that a correction is one line.
pub const APPROVAL_ID_HEADER: &str = "x-msft-approval-id";

/// Whether Graph refused a write for want of a tenant's approval.
fn needs_approval(e: &GraphError) -> bool {
    match e {
        GraphError::Status {
            status: 400 | 403,
            code,
            message,
            ..
        } => {
            let m = message.to_ascii_lowercase();
            m.contains(JUSTIFICATION_HEADER)
                || m.contains("multi admin approval")
                || code.eq_ignore_ascii_case("ApprovalRequired")
        }
        _ => false,
    }
}

/// A justification as a header value: printable ASCII, at most 500 characters.
fn header_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(500)
        .collect()
}

/// An `operationApprovalRequest` as Graph returns it, for `object`.
fn approval_of(v: &Value, object: &str) -> Result<ApprovalRequest, GraphError> {
    let bad = |what: &str| {
        GraphError::Invalid(format!(
            "Graph's approval request for policy {object} has no valid {what}"
        ))
    };
    let time = |k: &str| v[k].as_str().and_then(parse_time).ok_or_else(|| bad(k));
    let status = v["status"].as_str().unwrap_or("");
    Ok(ApprovalRequest {
        object: object.to_string(),
        // Read back into a URL path later: a GUID-like id only.
        id: v["id"]
            .as_str()
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= 100
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            .ok_or_else(|| bad("id"))?
            .to_string(),
        requested: time("requestDateTime")?,
        expires: time("expirationDateTime")?,
        status: ApprovalStatus::parse(status)
            .ok_or_else(|| bad(&format!("status ('{status}')")))?,
        reason: v["approvalJustification"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.chars().take(500).collect()),
    })
}

/// What one report row says: a state, no state (not assigned), or words
/// ringmaster does not know.
#[derive(Debug, PartialEq)]
enum RowState {
    State(DeviceState),
    NotAssigned,
    Unknown(String),
}

/// One report row's state: its text column when there is one (preferred:
/// what Intune's console shows), else its `PolicyStatus` code
/// ([`DeviceState::from_code`]).
fn row_state(r: &serde_json::Map<String, Value>) -> RowState {
    let text = |t: &str| match DeviceState::parse(t) {
        Some(s) => RowState::State(s),
        None if DeviceState::is_not_assigned(t) => RowState::NotAssigned,
        None => RowState::Unknown(t.to_string()),
    };
    let code = |c: i64| match DeviceState::from_code(c) {
        Some(s) => RowState::State(s),
        None if DeviceState::is_not_assigned_code(c) => RowState::NotAssigned,
        None => RowState::Unknown(format!("code {c}")),
    };
    for k in ["PolicyStatus_loc", "ReportStatus", "ComplianceStatus_loc"] {
        if let Some(t) = r
            .get(k)
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
        {
            return text(t);
        }
    }
    match r.get("PolicyStatus") {
        Some(Value::Number(n)) => n.as_i64().map_or(RowState::Unknown(n.to_string()), code),
        Some(Value::String(t)) => t.trim().parse::<i64>().map_or_else(|_| text(t), code),
        _ => RowState::Unknown(String::new()),
    }
}

/// Report rows per request (the reports API pages with skip and top).
const REPORT_PAGE: usize = 1000;

/// The report that holds a policy's per-device status, and its columns:
/// (action, select, device id column, time column). Compliance has its own
/// report (Microsoft spells the action `…CompliacePolicyReport`).
fn report_of(
    c: Collection,
) -> (
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
) {
    match c {
        Collection::DeviceCompliancePolicies => (
            "getDeviceStatusByCompliacePolicyReport",
            &[
                "DeviceId",
                "DeviceName",
                "UPN",
                "PolicyStatus",
                "LastContact",
            ],
            "DeviceId",
            "LastContact",
        ),
        _ => (
            "getConfigurationPolicyDevicesReport",
            &[
                "IntuneDeviceId",
                "DeviceName",
                "UPN",
                "ReportStatus",
                "PolicyStatus",
                "PspdpuLastModifiedTimeUtc",
            ],
            "IntuneDeviceId",
            "PspdpuLastModifiedTimeUtc",
        ),
    }
}

impl Intune {
    pub fn new(
        graph: Arc<Graph>,
        rollout: &str,
        policies: Vec<PolicyRef>,
        overlapping: Vec<PolicyRef>,
        fleet: Fleet,
    ) -> Intune {
        Intune {
            graph,
            rollout: rollout.to_string(),
            policies,
            overlapping,
            fleet,
            groups: Mutex::new(HashMap::new()),
            scope_tags: Vec::new(),
            tag_ids: Mutex::new(None),
            tagged: Mutex::new(HashSet::new()),
        }
    }

    /// The scope tags (name, id) the new policies must carry.
    pub fn with_scope_tags(mut self, tags: Vec<(String, String)>) -> Intune {
        self.scope_tags = tags;
        self
    }

    /// The plan's tags as the tenant knows them, by name; an unknown name,
    /// or a known one whose id differs from the plan's, is an error.
    async fn tag_ids(&self) -> Result<Vec<String>, GraphError> {
        if self.scope_tags.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(ids) = self.tag_ids.lock().await.as_ref() {
            return Ok(ids.clone());
        }
        let tenant = self
            .graph
            .get_all("/deviceManagement/roleScopeTags?$select=id,displayName")
            .await?;
        let shown = || {
            tenant
                .iter()
                .map(|t| {
                    format!(
                        "{} ({})",
                        t["displayName"].as_str().unwrap_or("?"),
                        t["id"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut ids = Vec::new();
        for (name, id) in &self.scope_tags {
            let found = tenant.iter().find(|t| {
                t["displayName"]
                    .as_str()
                    .is_some_and(|n| n.trim().eq_ignore_ascii_case(name.trim()))
            });
            let Some(t) = found else {
                return Err(GraphError::Invalid(format!(
                    "scope tag `{name}` of the plan is not in the tenant (it has: {}): create it under Tenant administration > Roles > Scope tags, or fix [[scope_tags]]",
                    shown()
                )));
            };
            let tid = t["id"].as_str().unwrap_or_default();
            if tid != id {
                return Err(GraphError::Invalid(format!(
                    "scope tag `{name}` has id {tid} in the tenant, but the plan's [[scope_tags]] says {id}"
                )));
            }
            ids.push(tid.to_string());
        }
        *self.tag_ids.lock().await = Some(ids.clone());
        Ok(ids)
    }

    /// Adds the plan's tags to a new policy's `roleScopeTagIds`, keeping
    /// the tags it has (read first; written only when one is missing).
    async fn tag_policy(&self, p: &PolicyRef, ids: &[String]) -> Result<(), GraphError> {
        if ids.is_empty() || self.tagged.lock().await.contains(&p.id) {
            return Ok(());
        }
        let path = format!("{}/{}", p.collection.path(), p.id);
        let now = self
            .graph
            .get(&format!("{path}?$select=id,roleScopeTagIds"))
            .await?;
        let mut tags: Vec<String> = now["roleScopeTagIds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let missing: Vec<&String> = ids.iter().filter(|i| !tags.contains(i)).collect();
        if !missing.is_empty() {
            tags.extend(missing.into_iter().cloned());
            let mut body = json!({ "roleScopeTagIds": tags });
            // Graph updates a deviceConfiguration or compliance policy
            // through its derived type, which the body must name.
            if p.collection != Collection::ConfigurationPolicies
                && let Some(t) = now["@odata.type"].as_str()
            {
                body["@odata.type"] = json!(t);
            }
            self.graph
                .send_with(reqwest::Method::PATCH, &path, Some(&body), true)
                .await?;
        }
        self.tagged.lock().await.insert(p.id.clone());
        Ok(())
    }

    /// What the wave group's description says: its purpose, and the scope
    /// it belongs to (groups carry no scope tags of their own).
    fn group_description(&self) -> String {
        let mut d =
            "Managed by ringmaster: its members are the devices of one rollout wave.".to_string();
        if !self.scope_tags.is_empty() {
            let tags: Vec<String> = self
                .scope_tags
                .iter()
                .map(|(n, i)| format!("{n} ({i})"))
                .collect();
            d.push_str(&format!(" Scope tags: {}.", tags.join(", ")));
        }
        d
    }

    /// The wave group's mail nickname: unique per rollout and wave, ASCII,
    /// at most 64 characters.
    pub fn nickname(&self, wave: u32) -> String {
        let r: String = self
            .rollout
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        format!("ringmaster-{r}-w{}", wave + 1)
    }

    /// The wave's group if it exists: by its unique name, else (groups made
    /// before ringmaster set one) by its mail nickname.
    async fn find_group(&self, wave: u32) -> Result<Option<String>, GraphError> {
        if let Some(id) = self.groups.lock().await.get(&wave) {
            return Ok(Some(id.clone()));
        }
        let nick = self.nickname(wave);
        let id = match self
            .graph
            .get(&format!("/groups(uniqueName='{nick}')?$select=id"))
            .await
        {
            Ok(g) => g["id"].as_str().map(str::to_string),
            Err(GraphError::Status { status: 404, .. }) => {
                let found = self
                    .graph
                    .get(&format!(
                        "/groups?$filter=mailNickname%20eq%20'{nick}'&$select=id,displayName"
                    ))
                    .await?;
                crate::client::items(&found)
                    .first()
                    .and_then(|g| g["id"].as_str())
                    .map(str::to_string)
            }
            Err(e) => return Err(e),
        };
        if let Some(id) = &id {
            self.groups.lock().await.insert(wave, id.clone());
        }
        Ok(id)
    }

    /// The wave's group, made when missing. The group is upserted by its
    /// unique name (`PATCH /groups(uniqueName=…)` with `Prefer:
    /// create-if-missing`), so a request repeated after a lost answer, or
    /// sent while a new group is not yet visible to `$filter` (directory
    /// replication), finds the same group instead of making a second one.
    async fn group(&self, wave: u32) -> Result<String, GraphError> {
        if let Some(id) = self.groups.lock().await.get(&wave) {
            return Ok(id.clone());
        }
        let nick = self.nickname(wave);
        let body = json!({
            "displayName": format!("ringmaster {} wave {}", self.rollout, wave + 1),
            "description": self.group_description(),
            "mailEnabled": false,
            "mailNickname": nick,
            "securityEnabled": true,
        });
        let made = self
            .graph
            .send_headed(
                reqwest::Method::PATCH,
                &format!("/groups(uniqueName='{nick}')"),
                Some(&body),
                true,
                &[("Prefer", "create-if-missing")],
            )
            .await?;
        // 201 answers with the group; 204 (it was there) with nothing.
        let id = match made["id"].as_str() {
            Some(id) => id.to_string(),
            None => self
                .graph
                .get(&format!("/groups(uniqueName='{nick}')?$select=id"))
                .await?["id"]
                .as_str()
                .ok_or_else(|| GraphError::Invalid("the wave group has no id".into()))?
                .to_string(),
        };
        self.groups.lock().await.insert(wave, id.clone());
        Ok(id)
    }

    /// Makes the group hold exactly `want` (object ids): reads what it
    /// holds, adds and removes the difference, and reads again until they
    /// agree. Objects that fail are named in the error.
    async fn sync_members(&self, gid: &str, want: &HashSet<String>) -> Result<(), GraphError> {
        let base = self
            .graph
            .endpoint()
            .graph_url
            .trim_end_matches('/')
            .to_string();
        let mut failures: Vec<String> = Vec::new();
        for round in 0..8u32 {
            let have: HashSet<String> = self
                .graph
                .get_all(&format!(
                    "/groups/{gid}/members/microsoft.graph.device?$select=id&$top=999"
                ))
                .await?
                .iter()
                .filter_map(|m| m["id"].as_str().map(str::to_string))
                .collect();
            let mut add: Vec<&String> = want.difference(&have).collect();
            let mut remove: Vec<&String> = have.difference(want).collect();
            if add.is_empty() && remove.is_empty() {
                return Ok(());
            }
            add.sort();
            remove.sort();
            failures.clear();
            let mut lagging = false;
            // 20 members per PATCH, 20 PATCHes per batch.
            let chunks: Vec<&[&String]> = add.chunks(20).collect();
            let mut reqs: Vec<BatchItem> = chunks
                .iter()
                .map(|c| BatchItem {
                    method: "PATCH",
                    url: format!("/groups/{gid}"),
                    body: Some(json!({
                        "members@odata.bind": c.iter().map(|id| format!("{base}/directoryObjects/{id}")).collect::<Vec<_>>()
                    })),
                })
                .collect();
            let adds = reqs.len();
            reqs.extend(remove.iter().map(|id| BatchItem {
                method: "DELETE",
                url: format!("/groups/{gid}/members/{id}/$ref"),
                body: None,
            }));
            for (i, r) in self.graph.batch(&reqs).await.into_iter().enumerate() {
                match r {
                    Ok(_) => {}
                    // Already there, or already gone: the next read shows it.
                    Err(GraphError::Status {
                        status: 400,
                        message,
                        ..
                    }) if message.contains("already exist") => {}
                    Err(GraphError::Status { status: 404, .. }) if i >= adds => {}
                    // A group or device just created is not yet everywhere
                    // in the directory: Graph says it does not exist. Wait
                    // and send again (Graph: "Add members", replication).
                    Err(GraphError::Status {
                        status: 400 | 404,
                        code,
                        message,
                        ..
                    }) if i < adds
                        && (code == "Request_ResourceNotFound"
                            || message.contains("does not exist")) =>
                    {
                        lagging = true;
                        failures.push(format!(
                            "adding {} device(s) from {}: not yet visible in the directory",
                            chunks[i].len(),
                            chunks[i][0]
                        ));
                    }
                    // Sending again cannot help until someone grants it.
                    Err(e @ GraphError::Forbidden { .. }) => return Err(e),
                    Err(e) => failures.push(if i < adds {
                        format!(
                            "adding {} device(s) from {}: {e}",
                            chunks[i].len(),
                            chunks[i][0]
                        )
                    } else {
                        format!("removing {}: {e}", remove[i - adds])
                    }),
                }
            }
            if lagging {
                tokio::time::sleep(self.graph.retry_delay(round + 1)).await;
            }
        }
        Err(GraphError::Invalid(format!(
            "the wave group did not converge: {}",
            if failures.is_empty() {
                "its members keep changing".to_string()
            } else {
                failures
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        )))
    }

    /// Puts `target` in or out of a policy's assignments (read, merge,
    /// write; then read again to be sure). A write the tenant holds for
    /// approval is not made: the request it asked for is returned.
    async fn set_target(
        &self,
        p: &PolicyRef,
        gid: &str,
        exclusion: bool,
        present: bool,
        approvals: &Approvals,
    ) -> Result<Option<ApprovalRequest>, GraphError> {
        let kind = if exclusion {
            "#microsoft.graph.exclusionGroupAssignmentTarget"
        } else {
            "#microsoft.graph.groupAssignmentTarget"
        };
        let is_ours = |a: &Value| {
            a["target"]["groupId"].as_str() == Some(gid)
                && a["target"]["@odata.type"].as_str() == Some(kind)
        };
        let path = format!("{}/{}", p.collection.path(), p.id);
        for _ in 0..3 {
            let current = self.graph.get_all(&format!("{path}/assignments")).await?;
            if current.iter().any(is_ours) == present {
                return Ok(None);
            }
            // Keep every other assignment as it is: only its target and
            // options travel (ids and read-only fields are Graph's).
            let mut next: Vec<Value> = current
                .iter()
                .filter(|a| !is_ours(a))
                .map(|a| {
                    let mut o = serde_json::Map::new();
                    for k in ["target", "intent", "settings", "source", "sourceId"] {
                        if let Some(v) = a.get(k).filter(|v| !v.is_null()) {
                            o.insert(k.to_string(), v.clone());
                        }
                    }
                    Value::Object(o)
                })
                .collect();
            if present {
                next.push(json!({"target": {"@odata.type": kind, "groupId": gid}}));
            }
            let body = json!({ "assignments": next });
            let assign = format!("{path}/assign");
            let approved = approvals.approved.get(&p.id);
            let headers: Vec<(&str, &str)> = approved
                .map(|id| (APPROVAL_ID_HEADER, id.as_str()))
                .into_iter()
                .collect();
            match self
                .graph
                .send_headed(reqwest::Method::POST, &assign, Some(&body), true, &headers)
                .await
            {
                Ok(_) => {}
                Err(e) if approved.is_none() && needs_approval(&e) => {
                    // Not sent again after a lost answer: that could ask
                    // twice, and Graph keeps one pending request per object.
                    let why = header_text(&format!("{}; policy {}", approvals.justification, p.id));
                    let made = self
                        .graph
                        .send_headed(
                            reqwest::Method::POST,
                            &assign,
                            Some(&body),
                            false,
                            &[(JUSTIFICATION_HEADER, &why)],
                        )
                        .await?;
                    return approval_of(&made, &p.id).map(Some);
                }
                Err(e) => return Err(e),
            }
        }
        Err(GraphError::Invalid(format!(
            "the assignments of policy {} keep changing under ringmaster; try again",
            p.id
        )))
    }

    /// Every row of a policy's status report. Pages follow `TotalRowCount`
    /// when the answer has it (a server-side cap on a page must not end
    /// the read early); without it, until an empty page.
    async fn report_rows(&self, p: &PolicyRef) -> Result<Vec<Value>, GraphError> {
        let (action, select, _, _) = report_of(p.collection);
        let mut out = Vec::new();
        let mut skip = 0;
        for _ in 0..100_000 {
            let body = json!({
                "select": select,
                "filter": format!("(PolicyId eq '{}')", p.id.replace('\'', "''")),
                "skip": skip, "top": REPORT_PAGE, "orderBy": [],
            });
            let page = self
                .graph
                .send_with(
                    reqwest::Method::POST,
                    &format!("/deviceManagement/reports/{action}"),
                    Some(&body),
                    true,
                )
                .await?;
            let cols: Vec<String> = page["Schema"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .map(|c| c["Column"].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            let values = page["Values"].as_array().cloned().unwrap_or_default();
            let n = values.len();
            for row in values {
                let mut o = serde_json::Map::new();
                for (c, v) in cols.iter().zip(row.as_array().into_iter().flatten()) {
                    o.insert(c.clone(), v.clone());
                }
                out.push(Value::Object(o));
            }
            skip += n;
            let done = match page["TotalRowCount"].as_u64() {
                Some(total) => skip as u64 >= total || n == 0,
                None => n == 0,
            };
            if done {
                return Ok(out);
            }
        }
        Err(GraphError::Invalid(format!(
            "the status report of policy {} did not end after 100,000 pages",
            p.id
        )))
    }
}

/// The outcome of writes that may wait for the tenant's approval.
fn held(requested: Vec<ApprovalRequest>) -> Result<(), ConnectorError> {
    if requested.is_empty() {
        return Ok(());
    }
    let objects: Vec<&str> = requested.iter().map(|r| r.object.as_str()).collect();
    Err(ConnectorError {
        system: "Intune",
        message: format!(
            "Multi Admin Approval: waiting for a second administrator to approve the change to policy {}",
            objects.join(", ")
        ),
        requested,
    })
}

impl Intune {
    /// Sets the wave's target on each policy; collects approval requests.
    async fn set_all(
        &self,
        policies: &[PolicyRef],
        gid: &str,
        exclusion: bool,
        present: bool,
        approvals: &Approvals,
    ) -> Result<(), ConnectorError> {
        let mut requested = Vec::new();
        for p in policies {
            if let Some(r) = self
                .set_target(p, gid, exclusion, present, approvals)
                .await
                .map_err(err)?
            {
                requested.push(r);
            }
        }
        held(requested)
    }
}

#[async_trait]
impl Connector for Intune {
    async fn assign(
        &self,
        wave: u32,
        members: &RoaringBitmap,
        approvals: &Approvals,
    ) -> Result<(), ConnectorError> {
        // An unknown tag stops the wave before anything is written.
        let tags = self.tag_ids().await.map_err(err)?;
        let gid = self.group(wave).await.map_err(err)?;
        let mut unreachable = 0;
        let want: HashSet<String> = members
            .iter()
            .filter_map(|d| {
                let id = self.fleet.object_ids.get(d as usize).cloned().flatten();
                unreachable += usize::from(id.is_none());
                id
            })
            .collect();
        if unreachable > 0 {
            tracing::warn!(
                wave = wave + 1,
                devices = unreachable,
                "devices without an Entra device object cannot be put in the wave group"
            );
        }
        self.sync_members(&gid, &want).await.map_err(err)?;
        for p in &self.policies {
            self.tag_policy(p, &tags).await.map_err(err)?;
        }
        self.set_all(&self.policies, &gid, false, true, approvals)
            .await
    }

    async fn unassign(&self, wave: u32, approvals: &Approvals) -> Result<(), ConnectorError> {
        let Some(gid) = self.find_group(wave).await.map_err(err)? else {
            return Ok(());
        };
        self.set_all(&self.policies, &gid, false, false, approvals)
            .await
    }

    async fn isolate(&self, wave: u32, approvals: &Approvals) -> Result<(), ConnectorError> {
        let gid = self.group(wave).await.map_err(err)?;
        self.set_all(&self.overlapping, &gid, true, true, approvals)
            .await
    }

    async fn end_isolation(&self, wave: u32, approvals: &Approvals) -> Result<(), ConnectorError> {
        let Some(gid) = self.find_group(wave).await.map_err(err)? else {
            return Ok(());
        };
        self.set_all(&self.overlapping, &gid, true, false, approvals)
            .await
    }

    async fn approval(&self, request: &ApprovalRequest) -> Result<ApprovalRequest, ConnectorError> {
        let v = self
            .graph
            .get(&format!(
                "/deviceManagement/operationApprovalRequests/{}",
                request.id
            ))
            .await
            .map_err(err)?;
        approval_of(&v, &request.object).map_err(err)
    }

    async fn poll(
        &self,
        assigned: &[Assigned],
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<Reported, ConnectorError> {
        let mut out = Reported::default();
        let mut unknown: Option<String> = None;
        for p in &self.policies {
            let (_, _, id_col, time_col) = report_of(p.collection);
            for r in self.report_rows(p).await.map_err(err)? {
                let Some(r) = r.as_object() else { continue };
                let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
                let state = match row_state(r) {
                    RowState::State(s) => s,
                    // Not assigned (any more): nothing to say about the device.
                    RowState::NotAssigned => continue,
                    RowState::Unknown(seen) => {
                        if !seen.is_empty() {
                            unknown.get_or_insert(seen);
                        }
                        continue;
                    }
                };
                let Some(at) = text(time_col).and_then(|t| parse_time(&t)) else {
                    continue;
                };
                if at <= from || at > to {
                    continue;
                }
                let Some(device) = text(id_col).or_else(|| text("DeviceName")) else {
                    continue;
                };
                let rows = self.fleet.rows.devices_of(Some(&device), None);
                let wave = assigned
                    .iter()
                    .filter(|a| rows.iter().any(|d| a.members.contains(*d)))
                    .map(|a| a.wave)
                    .max();
                out.statuses.push(StatusReport {
                    device,
                    policy: p.id.clone(),
                    state,
                    reported_at: at,
                    wave,
                });
            }
        }
        if let Some(s) = unknown {
            // Said, not guessed: an unknown status is neither a success nor a failure.
            tracing::warn!(status = %s, "Intune reported a device status ringmaster does not map; those rows were skipped");
        }
        Ok(out)
    }
}

/// Report times come as `2027-01-18T08:00:00Z` or without a zone (UTC).
fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse::<jiff::Timestamp>().ok().or_else(|| {
        s.parse::<jiff::civil::DateTime>()
            .ok()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_and_report_times_read() {
        assert_eq!(
            Collection::of_type(Some("#microsoft.graph.windows10CompliancePolicy")),
            Collection::DeviceCompliancePolicies
        );
        assert_eq!(Collection::of_type(None), Collection::ConfigurationPolicies);
        assert_eq!(
            Collection::of_type(Some("#microsoft.graph.windows10CustomConfiguration")),
            Collection::DeviceConfigurations
        );
        assert!(parse_time("2027-01-18T08:00:00").is_some());
    }

    #[test]
    fn report_rows_read_their_text_or_their_code() {
        use DeviceState::*;
        let row = |v: Value| row_state(v.as_object().unwrap());
        // The text column wins; the code alone is read by Graph's enum.
        assert_eq!(
            row(json!({"PolicyStatus": 4, "PolicyStatus_loc": "Not compliant"})),
            RowState::State(Error)
        );
        assert_eq!(
            row(json!({"PolicyStatus": 2, "ReportStatus": "Succeeded"})),
            RowState::State(Succeeded)
        );
        for (code, want) in [
            (0, RowState::State(Pending)),
            (1, RowState::State(NotApplicable)),
            (2, RowState::State(Succeeded)),
            (3, RowState::State(Succeeded)),
            (4, RowState::State(Error)),
            (5, RowState::State(Error)),
            (6, RowState::State(Conflict)),
            (7, RowState::NotAssigned),
        ] {
            assert_eq!(row(json!({"PolicyStatus": code})), want, "{code}");
        }
        assert_eq!(row(json!({"PolicyStatus": "6"})), RowState::State(Conflict));
        assert_eq!(
            row(json!({"PolicyStatus_loc": "Not assigned"})),
            RowState::NotAssigned
        );
        assert_eq!(
            row(json!({"PolicyStatus": 42})),
            RowState::Unknown("code 42".into())
        );
    }
}
