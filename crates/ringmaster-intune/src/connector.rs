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

use crate::client::{BatchItem, Graph, GraphError};
use async_trait::async_trait;
use ringmaster_core::status::{DeviceState, StatusReport};
use ringmaster_engine::connector::{Assigned, Connector, ConnectorError, Reported};
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
}

fn err(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError {
        system: "Intune",
        message: e.to_string(),
    }
}

/// Report rows per request (the reports API pages with skip and top).
const REPORT_PAGE: usize = 1000;

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
        }
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

    async fn find_group(&self, wave: u32) -> Result<Option<String>, GraphError> {
        if let Some(id) = self.groups.lock().await.get(&wave) {
            return Ok(Some(id.clone()));
        }
        let nick = self.nickname(wave);
        let found = self
            .graph
            .get(&format!(
                "/groups?$filter=mailNickname%20eq%20'{nick}'&$select=id,displayName"
            ))
            .await?;
        let id = crate::client::items(&found)
            .first()
            .and_then(|g| g["id"].as_str())
            .map(str::to_string);
        if let Some(id) = &id {
            self.groups.lock().await.insert(wave, id.clone());
        }
        Ok(id)
    }

    /// The wave's group, made when missing. A create whose answer was lost
    /// is never sent again blindly: the group is looked for first.
    async fn group(&self, wave: u32) -> Result<String, GraphError> {
        let mut last = None;
        for _ in 0..self.graph.retry.attempts.max(1) {
            if let Some(id) = self.find_group(wave).await? {
                return Ok(id);
            }
            let body = json!({
                "displayName": format!("ringmaster {} wave {}", self.rollout, wave + 1),
                "description": "Managed by ringmaster: its members are the devices of one rollout wave.",
                "mailEnabled": false,
                "mailNickname": self.nickname(wave),
                "securityEnabled": true,
            });
            match self
                .graph
                .send_with(reqwest::Method::POST, "/groups", Some(&body), false)
                .await
            {
                Ok(g) => {
                    let id = g["id"]
                        .as_str()
                        .ok_or_else(|| GraphError::Invalid("the new group has no id".into()))?
                        .to_string();
                    self.groups.lock().await.insert(wave, id.clone());
                    return Ok(id);
                }
                Err(e) if e.is_transport() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| GraphError::Invalid("could not make the wave group".into())))
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
        for _round in 0..4 {
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
    /// write; then read again to be sure).
    async fn set_target(
        &self,
        p: &PolicyRef,
        gid: &str,
        exclusion: bool,
        present: bool,
    ) -> Result<(), GraphError> {
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
                return Ok(());
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
            self.graph
                .send_with(
                    reqwest::Method::POST,
                    &format!("{path}/assign"),
                    Some(&json!({ "assignments": next })),
                    true,
                )
                .await?;
        }
        Err(GraphError::Invalid(format!(
            "the assignments of policy {} keep changing under ringmaster; try again",
            p.id
        )))
    }

    async fn report_rows(&self, p: &PolicyRef) -> Result<Vec<Value>, GraphError> {
        let mut out = Vec::new();
        let mut skip = 0;
        loop {
            let body = json!({
                "select": ["IntuneDeviceId", "DeviceName", "UPN", "PolicyStatus", "PspdpuLastModifiedTimeUtc"],
                "filter": format!("(PolicyId eq '{}')", p.id),
                "skip": skip, "top": REPORT_PAGE, "orderBy": [],
            });
            let page = self
                .graph
                .send_with(
                    reqwest::Method::POST,
                    "/deviceManagement/reports/getConfigurationPolicyDevicesReport",
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
            let total = page["TotalRowCount"].as_u64().unwrap_or(0) as usize;
            if n < REPORT_PAGE || skip >= total {
                return Ok(out);
            }
        }
    }
}

#[async_trait]
impl Connector for Intune {
    async fn assign(&self, wave: u32, members: &RoaringBitmap) -> Result<(), ConnectorError> {
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
            self.set_target(p, &gid, false, true).await.map_err(err)?;
        }
        Ok(())
    }

    async fn unassign(&self, wave: u32) -> Result<(), ConnectorError> {
        let Some(gid) = self.find_group(wave).await.map_err(err)? else {
            return Ok(());
        };
        for p in &self.policies {
            self.set_target(p, &gid, false, false).await.map_err(err)?;
        }
        Ok(())
    }

    async fn isolate(&self, wave: u32) -> Result<(), ConnectorError> {
        let gid = self.group(wave).await.map_err(err)?;
        for p in &self.overlapping {
            self.set_target(p, &gid, true, true).await.map_err(err)?;
        }
        Ok(())
    }

    async fn end_isolation(&self, wave: u32) -> Result<(), ConnectorError> {
        let Some(gid) = self.find_group(wave).await.map_err(err)? else {
            return Ok(());
        };
        for p in &self.overlapping {
            self.set_target(p, &gid, true, false).await.map_err(err)?;
        }
        Ok(())
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
            for r in self.report_rows(p).await.map_err(err)? {
                let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
                let status = text("PolicyStatus_loc")
                    .or_else(|| text("PolicyStatus"))
                    .or_else(|| r.get("PolicyStatus").map(Value::to_string))
                    .unwrap_or_default();
                let Some(state) = DeviceState::parse(&status) else {
                    // Not assigned (any more): nothing to say about the device.
                    if !DeviceState::is_not_assigned(&status) {
                        unknown.get_or_insert(status);
                    }
                    continue;
                };
                let Some(at) = text("PspdpuLastModifiedTimeUtc").and_then(|t| parse_time(&t))
                else {
                    continue;
                };
                if at <= from || at > to {
                    continue;
                }
                let Some(device) = text("IntuneDeviceId").or_else(|| text("DeviceName")) else {
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
}
