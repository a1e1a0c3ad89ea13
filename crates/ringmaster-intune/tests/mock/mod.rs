//! A local server that behaves like the Graph endpoints the connector uses,
//! as Microsoft's documentation describes them:
//! - the token endpoint (secret or signed assertion);
//! - paged collections with `@odata.nextLink`, and `$batch`;
//! - groups: create, upsert by alternate key (`PATCH /groups(uniqueName=…)`
//!   with `Prefer: create-if-missing`, Graph: "Upsert group"), get by
//!   `uniqueName`, `$ref` members (a PATCH adding a member already there
//!   fails whole, Graph: "Add members"). Directory replication: for `lag`
//!   requests after its creation a group is invisible to `$filter` and
//!   refuses members with 404 `Request_ResourceNotFound` (Graph: "Add
//!   members": retry after a delay);
//! - `/assign` replacing a policy's assignments; an assignment has no
//!   `roleScopeTagIds` (Graph: deviceManagementConfigurationPolicyAssignment
//!   is id, target, source, sourceId), nor has a group;
//! - scope tags: `GET /deviceManagement/roleScopeTags` (Default, id 0,
//!   always there), a policy read by id, and `PATCH` of a policy's
//!   `roleScopeTagIds`, which must name tags the tenant has; a
//!   deviceConfiguration or compliance PATCH must name its `@odata.type`;
//! - the status reports: `getConfigurationPolicyDevicesReport` for
//!   configuration policies and `getDeviceStatusByCompliacePolicyReport`
//!   (Microsoft's spelling) for compliance policies. `PolicyStatus` is a
//!   code of Graph's `complianceStatus` enum with its text in
//!   `PolicyStatus_loc`; the answer honours `select`, carries
//!   `TotalRowCount`, and caps a page at `report_cap` rows whatever `top`
//!   asks (Graph: "Export Intune reports using Graph APIs", paging);
//! - throttling: 429 with `Retry-After`, or without it;
//! - permissions: the access token is a JWT whose `roles` claim holds the
//!   application permissions granted (Microsoft identity platform, "Access
//!   token claims reference": `roles`); a call that none of them allows
//!   answers 403 `Authorization_RequestDenied` "Insufficient privileges to
//!   complete the operation." (Graph, "Microsoft Graph error responses"),
//!   the need per call taken from each call's "Permissions" table;
//! - Multi Admin Approval (Microsoft Learn, Intune: "Use Multi Admin
//!   Approval with the Microsoft Graph API"; Graph: "operationApprovalRequest
//!   resource type"): `/assign` of a protected policy without the approval
//!   headers answers 400 naming `x-msft-approval-justification`; with that
//!   header it makes one `operationApprovalRequest` (a second while one is
//!   pending for the policy is refused, 409); `decide` stands for the
//!   approver in the admin center; the write sent again with an approved
//!   request's id is carried out once and completes the request;
//! - certificate assertions: PS256 with `x5t#S256`, or the older RS256
//!   with `x5t` (Microsoft identity platform, "Certificate credentials").
//!
//! It can cut a connection after carrying out a write, so the client never
//! sees the answer.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const TENANT: &str = "contoso.onmicrosoft.com";
pub const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
pub const SECRET: &str = "mock-secret-value";

#[derive(Default)]
pub struct Tenant {
    pub users: Vec<Value>,
    pub groups: Vec<Value>,
    /// Direct members per group id.
    pub members: HashMap<String, BTreeSet<String>>,
    pub devices: Vec<Value>,
    pub managed: Vec<Value>,
    pub filters: Vec<Value>,
    /// (collection, policy without settings and assignments).
    pub policies: Vec<(String, Value)>,
    pub settings: HashMap<String, Vec<Value>>,
    pub assignments: HashMap<String, Vec<Value>>,
    /// Per policy: (Intune device id, name, status text, last modified).
    pub report: HashMap<String, Vec<(String, String, String, String)>>,
    pub next_id: u64,
    /// Per created group: the request count when it was made (replication).
    pub created_at: HashMap<String, usize>,
    /// The tenant's scope tags besides Default (`{id, displayName}`).
    pub scope_tags: Vec<Value>,
}

#[derive(Default)]
pub struct Mock {
    pub tenant: Mutex<Tenant>,
    pub page: usize,
    /// The public key that verifies client assertions.
    pub public_pem: Option<String>,
    /// The headers of the client assertions accepted.
    pub assertions: Mutex<Vec<jsonwebtoken::Header>>,
    /// The application permissions granted to the app (None: all).
    pub granted: Mutex<Option<BTreeSet<String>>>,
    /// The access tokens handed out.
    pub issued: Mutex<BTreeSet<String>>,
    /// The next N Graph requests (and batch items) answer 429.
    pub throttle: AtomicUsize,
    /// Whether those 429s say `Retry-After` (Graph mostly does, not always).
    pub bare_429: std::sync::atomic::AtomicBool,
    /// Requests a new group stays out of `$filter` and refuses members.
    pub lag: AtomicUsize,
    /// Rows per report page at most, whatever `top` asks (0: no cap).
    pub report_cap: AtomicUsize,
    /// The next N writes are carried out, then the connection is cut.
    pub cut_writes: AtomicUsize,
    pub requests: AtomicUsize,
    pub throttled: AtomicUsize,
    pub cuts: AtomicUsize,
    pub tokens: AtomicUsize,
    /// When each top-level Graph request came.
    pub times: Mutex<Vec<Instant>>,
    /// Every write carried out: (method, path).
    pub writes: Mutex<Vec<(String, String)>>,
    /// Policies Multi Admin Approval protects.
    pub protected: Mutex<BTreeSet<String>>,
    /// Approval requests by id (Graph's `operationApprovalRequest`).
    pub approvals: Mutex<BTreeMap<String, Value>>,
    /// Approval requests made, and protected writes carried out (policy ids).
    pub approvals_made: AtomicUsize,
    pub protected_writes: Mutex<Vec<String>>,
    /// The mock's clock for approval requests (requested, expiry).
    pub now: Mutex<Option<jiff::Timestamp>>,
    pub base: Mutex<String>,
}

fn load_records(p: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(p).unwrap();
    if p.extension().is_some_and(|e| e == "ndjson") {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    } else {
        let v: Value = serde_json::from_str(&text).unwrap();
        v["value"].as_array().cloned().unwrap_or_default()
    }
}

impl Tenant {
    /// A tenant holding what `ringmaster gen` wrote into `dir`.
    pub fn from_export(dir: &Path) -> Tenant {
        let mut t = Tenant::default();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            let recs = load_records(&p);
            match name.as_str() {
                "users" => t.users = recs,
                "groups" => t.groups = recs,
                "devices" => t.devices = recs,
                "managedDevices" => t.managed = recs,
                "assignmentFilters" => t.filters = recs,
                "groupMembers" => {
                    for m in recs {
                        t.members
                            .entry(m["groupId"].as_str().unwrap().to_string())
                            .or_default()
                            .insert(m["memberId"].as_str().unwrap().to_string());
                    }
                }
                "configurationPolicies" | "deviceConfigurations" | "deviceCompliancePolicies" => {
                    for mut p in recs {
                        let id = p["id"].as_str().unwrap().to_string();
                        if let Some(s) = p.as_object_mut().unwrap().remove("settings") {
                            t.settings
                                .insert(id.clone(), s.as_array().cloned().unwrap_or_default());
                        }
                        let a = p.as_object_mut().unwrap().remove("assignments");
                        t.assignments.insert(
                            id,
                            a.and_then(|a| a.as_array().cloned()).unwrap_or_default(),
                        );
                        t.policies.push((name.clone(), p));
                    }
                }
                _ => {}
            }
        }
        t
    }

    fn type_of(&self, id: &str) -> &'static str {
        if self.users.iter().any(|u| u["id"] == id) {
            "#microsoft.graph.user"
        } else if self.groups.iter().any(|g| g["id"] == id) {
            "#microsoft.graph.group"
        } else {
            "#microsoft.graph.device"
        }
    }

    fn transitive(&self, gid: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![gid.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(g) = stack.pop() {
            if !seen.insert(g.clone()) {
                continue;
            }
            for m in self.members.get(&g).into_iter().flatten() {
                out.insert(m.clone());
                if self.members.contains_key(m) {
                    stack.push(m.clone());
                }
            }
        }
        out
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012}", self.next_id)
    }
}

/// Graph's `complianceStatus` enum (v1.0 schema): the code a report's
/// `PolicyStatus` carries for a status text.
fn status_code(text: &str) -> i64 {
    match text.to_ascii_lowercase().replace(' ', "").as_str() {
        "notapplicable" => 1,
        "succeeded" | "compliant" => 2,
        "remediated" => 3,
        "noncompliant" | "notcompliant" | "failed" => 4,
        "error" => 5,
        "conflict" => 6,
        "notassigned" => 7,
        _ => 0,
    }
}

fn error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (status, json!({"error": {"code": code, "message": message}}))
}

/// Days an approval request lives (the admin center's default window).
pub const APPROVAL_DAYS: i64 = 2;

impl Mock {
    /// The approver's decision: `approved`, `rejected` or `expired`, with a note.
    pub fn decide(&self, request: &str, status: &str, note: &str) {
        let mut a = self.approvals.lock().unwrap();
        let r = a.get_mut(request).expect("no such approval request");
        r["status"] = json!(status);
        r["approvalJustification"] = json!(note);
    }

    /// The approval requests of a policy, oldest first.
    pub fn approvals_of(&self, policy: &str) -> Vec<Value> {
        self.approvals
            .lock()
            .unwrap()
            .values()
            .filter(|r| r["policyId"] == policy)
            .cloned()
            .collect()
    }

    /// Multi Admin Approval in front of a protected `/assign`: None lets
    /// the write through.
    fn approval_gate(&self, policy: &str, approval: &Approval) -> Option<(u16, Value)> {
        if !self.protected.lock().unwrap().contains(policy) {
            return None;
        }
        let mut all = self.approvals.lock().unwrap();
        if let Some(id) = &approval.id {
            return match all.get_mut(id) {
                Some(r) if r["policyId"] == policy && r["status"] == "approved" => {
                    r["status"] = json!("completed");
                    self.protected_writes.lock().unwrap().push(policy.into());
                    None
                }
                _ => Some(error(
                    400,
                    "BadRequest",
                    &format!("approval request {id} is not approved for this operation"),
                )),
            };
        }
        let Some(why) = &approval.justification else {
            return Some(error(
                400,
                "BadRequest",
                "Header 'x-msft-approval-justification' is required to request approval",
            ));
        };
        if all
            .values()
            .any(|r| r["policyId"] == policy && r["status"] == "needsApproval")
        {
            return Some(error(
                409,
                "Conflict",
                "an approval request for this resource is already pending",
            ));
        }
        let now = self
            .now
            .lock()
            .unwrap()
            .unwrap_or_else(|| "2027-01-18T08:00:00Z".parse().unwrap());
        let id = format!("oar-{}", all.len() + 1);
        let r = json!({
            "@odata.type": "#microsoft.graph.operationApprovalRequest",
            "id": id,
            "requestDateTime": now.to_string(),
            "expirationDateTime": (now + jiff::SignedDuration::from_hours(24 * APPROVAL_DAYS)).to_string(),
            "status": "needsApproval",
            "requestJustification": why,
            "approvalJustification": null,
            "policyId": policy,
        });
        all.insert(id, r.clone());
        self.approvals_made.fetch_add(1, Ordering::SeqCst);
        Some((202, r))
    }

    pub fn new(tenant: Tenant, page: usize) -> Arc<Mock> {
        Arc::new(Mock {
            tenant: Mutex::new(tenant),
            page,
            ..Default::default()
        })
    }

    /// Serves on a loopback port; returns the base URL.
    pub async fn serve(self: &Arc<Mock>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        *self.base.lock().unwrap() = base.clone();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    /// Graph's version root, e.g. `http://127.0.0.1:1234/beta`.
    pub fn graph_url(&self) -> String {
        format!("{}/beta", self.base.lock().unwrap())
    }

    pub fn max_in_window(&self, window: std::time::Duration) -> usize {
        let t = self.times.lock().unwrap();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..t.len() {
            while t[hi].duration_since(t[lo]) >= window {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    fn page_of(&self, items: Vec<Value>, path: &str, query: &BTreeMap<String, String>) -> Value {
        let skip: usize = query
            .get("$skiptoken")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let end = (skip + self.page).min(items.len());
        let mut out = json!({"value": items[skip.min(items.len())..end]});
        if end < items.len() {
            let mut q: Vec<String> = query
                .iter()
                .filter(|(k, _)| k.as_str() != "$skiptoken")
                .map(|(k, v)| format!("{k}={}", v.replace(' ', "%20")))
                .collect();
            q.push(format!("$skiptoken={end}"));
            out["@odata.nextLink"] = json!(format!("{}{path}?{}", self.graph_url(), q.join("&")));
        }
        out
    }

    /// Whether a group is visible everywhere in the directory yet.
    fn replicated(&self, t: &Tenant, gid: &str) -> bool {
        t.created_at.get(gid).is_none_or(|&at| {
            self.requests.load(Ordering::SeqCst) >= at + self.lag.load(Ordering::SeqCst)
        })
    }

    /// Graph's answer to a group body with a property groups do not have.
    fn group_refused(body: &Value) -> Option<(u16, Value)> {
        body.get("roleScopeTagIds").map(|_| {
            error(
                400,
                "Request_BadRequest",
                "Property 'roleScopeTagIds' does not exist on type 'microsoft.graph.group'.",
            )
        })
    }

    fn create_group(&self, t: &mut Tenant, body: &Value) -> Value {
        let id = t.id();
        let mut g = body.clone();
        g["id"] = json!(id);
        g["groupTypes"] = json!([]);
        t.groups.push(g.clone());
        t.created_at
            .insert(id, self.requests.load(Ordering::SeqCst));
        g
    }

    /// One Graph call; `path` is after the version (`/groups/…`).
    fn call(
        &self,
        method: &str,
        path: &str,
        query: &BTreeMap<String, String>,
        body: &Value,
        prefer: Option<&str>,
        approval: &Approval,
    ) -> (u16, Value) {
        if let Some(granted) = self.granted.lock().unwrap().as_ref() {
            let needs = ringmaster_intune::permissions::needed(method, path);
            if !ringmaster_intune::permissions::missing(&needs, granted).is_empty() {
                return error(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                );
            }
        }
        let mut t = self.tenant.lock().unwrap();
        let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
        let write = method != "GET" && !(method == "POST" && path.contains("/reports/"));
        if write {
            self.writes
                .lock()
                .unwrap()
                .push((method.to_string(), path.to_string()));
        }
        match (method, seg.as_slice()) {
            ("GET", ["users"]) => (200, self.page_of(t.users.clone(), path, query)),
            ("GET", ["devices"]) => (200, self.page_of(t.devices.clone(), path, query)),
            ("GET", ["groups"]) => {
                let mut gs = t.groups.clone();
                if let Some(f) = query.get("$filter") {
                    let nick = f.split('\'').nth(1).unwrap_or("");
                    gs.retain(|g| {
                        g["mailNickname"].as_str() == Some(nick)
                            && self.replicated(&t, g["id"].as_str().unwrap_or(""))
                    });
                }
                (200, self.page_of(gs, path, query))
            }
            ("POST", ["groups"]) => {
                if let Some(refused) = Mock::group_refused(body) {
                    return refused;
                }
                let g = self.create_group(&mut t, body);
                (201, g)
            }
            ("GET", [key]) if key.starts_with("groups(uniqueName=") => {
                let name = key.split('\'').nth(1).unwrap_or("");
                match t
                    .groups
                    .iter()
                    .find(|g| g["uniqueName"].as_str() == Some(name))
                {
                    Some(g) => (200, g.clone()),
                    None => error(
                        404,
                        "Request_ResourceNotFound",
                        "no group has that uniqueName",
                    ),
                }
            }
            ("PATCH", [key]) if key.starts_with("groups(uniqueName=") => {
                if let Some(refused) = Mock::group_refused(body) {
                    return refused;
                }
                let name = key.split('\'').nth(1).unwrap_or("").to_string();
                if let Some(g) = t
                    .groups
                    .iter_mut()
                    .find(|g| g["uniqueName"].as_str() == Some(&name))
                {
                    for (k, v) in body.as_object().into_iter().flatten() {
                        g[k.as_str()] = v.clone();
                    }
                    return (204, Value::Null);
                }
                if prefer != Some("create-if-missing") {
                    return error(
                        404,
                        "Request_ResourceNotFound",
                        "no group has that uniqueName",
                    );
                }
                let mut b = body.clone();
                b["uniqueName"] = json!(name);
                let g = self.create_group(&mut t, &b);
                (201, g)
            }
            ("PATCH", ["groups", gid]) if !self.replicated(&t, gid) => error(
                404,
                "Request_ResourceNotFound",
                &format!(
                    "Resource '{gid}' does not exist or one of its queried reference-property objects are not present."
                ),
            ),
            ("PATCH", ["groups", gid]) => {
                let Some(binds) = body["members@odata.bind"].as_array() else {
                    return (204, Value::Null);
                };
                let ids: Vec<String> = binds
                    .iter()
                    .filter_map(|b| b.as_str()?.rsplit('/').next().map(str::to_string))
                    .collect();
                let have = t.members.entry(gid.to_string()).or_default();
                if ids.iter().any(|i| have.contains(i)) {
                    return error(
                        400,
                        "Request_BadRequest",
                        "One or more added object references already exist for the following modified properties: 'members'.",
                    );
                }
                have.extend(ids);
                (204, Value::Null)
            }
            ("DELETE", ["groups", gid, "members", mid, "$ref"]) => {
                match t.members.get_mut(*gid).map(|m| m.remove(*mid)) {
                    Some(true) => (204, Value::Null),
                    _ => error(404, "Request_ResourceNotFound", "member not found"),
                }
            }
            ("GET", ["groups", gid, "members", "microsoft.graph.device"]) => {
                let ids: Vec<Value> = t
                    .members
                    .get(*gid)
                    .into_iter()
                    .flatten()
                    .filter(|m| t.type_of(m) == "#microsoft.graph.device")
                    .map(|m| json!({"id": m}))
                    .collect();
                (200, self.page_of(ids, path, query))
            }
            ("GET", ["groups", gid, "transitiveMembers"]) => {
                let ids: Vec<Value> = t
                    .transitive(gid)
                    .into_iter()
                    .map(|m| json!({"@odata.type": t.type_of(&m), "id": m}))
                    .collect();
                (200, self.page_of(ids, path, query))
            }
            ("GET", ["deviceManagement", "managedDevices"]) => {
                (200, self.page_of(t.managed.clone(), path, query))
            }
            ("GET", ["deviceManagement", "assignmentFilters"]) => {
                (200, self.page_of(t.filters.clone(), path, query))
            }
            ("GET", ["deviceManagement", "roleScopeTags"]) => {
                let mut tags =
                    vec![json!({"id": "0", "displayName": "Default", "isBuiltIn": true})];
                tags.extend(t.scope_tags.iter().cloned());
                (200, self.page_of(tags, path, query))
            }
            ("GET", ["deviceManagement", "operationApprovalRequests", id]) => {
                match self.approvals.lock().unwrap().get(*id) {
                    Some(r) => (200, r.clone()),
                    None => error(404, "ResourceNotFound", "no such approval request"),
                }
            }
            ("GET", ["deviceManagement", coll, id]) => {
                match t.policies.iter().find(|(c, p)| c == coll && p["id"] == *id) {
                    Some((_, p)) => {
                        let mut p = p.clone();
                        if p.get("roleScopeTagIds").is_none() {
                            p["roleScopeTagIds"] = json!(["0"]);
                        }
                        (200, p)
                    }
                    None => error(404, "ResourceNotFound", "no such policy"),
                }
            }
            ("PATCH", ["deviceManagement", coll, id]) => {
                let known: BTreeSet<String> = t
                    .scope_tags
                    .iter()
                    .filter_map(|s| s["id"].as_str().map(str::to_string))
                    .chain(["0".to_string()])
                    .collect();
                let Some(pos) = t
                    .policies
                    .iter()
                    .position(|(c, p)| c == coll && p["id"] == *id)
                else {
                    return error(404, "ResourceNotFound", "no such policy");
                };
                let derived = *coll != "configurationPolicies";
                if derived && body["@odata.type"].as_str().is_none() {
                    return error(
                        400,
                        "BadRequest",
                        "an update of a derived type must name its @odata.type",
                    );
                }
                for (k, v) in body.as_object().into_iter().flatten() {
                    match k.as_str() {
                        "@odata.type" => {}
                        "roleScopeTagIds" => {
                            let ids: Vec<&str> = v
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|x| x.as_str())
                                .collect();
                            if let Some(bad) = ids.iter().find(|i| !known.contains(**i)) {
                                return error(
                                    400,
                                    "BadRequest",
                                    &format!("roleScopeTagIds: no scope tag has id {bad}"),
                                );
                            }
                            t.policies[pos].1["roleScopeTagIds"] = v.clone();
                        }
                        other => {
                            return error(
                                400,
                                "BadRequest",
                                &format!("the mock updates roleScopeTagIds only, not {other}"),
                            );
                        }
                    }
                }
                (204, Value::Null)
            }
            ("GET", ["deviceManagement", coll]) => {
                let expand = query
                    .get("$expand")
                    .is_some_and(|e| e.contains("assignments"));
                let ps: Vec<Value> = t
                    .policies
                    .iter()
                    .filter(|(c, _)| c == coll)
                    .map(|(_, p)| {
                        let mut p = p.clone();
                        if expand {
                            p["assignments"] = json!(
                                t.assignments
                                    .get(p["id"].as_str().unwrap())
                                    .cloned()
                                    .unwrap_or_default()
                            );
                        }
                        p
                    })
                    .collect();
                (200, self.page_of(ps, path, query))
            }
            ("GET", ["deviceManagement", _, id, "settings"]) => (
                200,
                self.page_of(
                    t.settings.get(*id).cloned().unwrap_or_default(),
                    path,
                    query,
                ),
            ),
            ("GET", ["deviceManagement", _, id, "assignments"]) => match t.assignments.get(*id) {
                Some(a) => (200, self.page_of(a.clone(), path, query)),
                None => error(404, "ResourceNotFound", "no such policy"),
            },
            ("POST", ["deviceManagement", _, id, "assign"]) => {
                if !t.assignments.contains_key(*id) {
                    return error(404, "ResourceNotFound", "no such policy");
                }
                let sent = body["assignments"].as_array().cloned().unwrap_or_default();
                if sent.iter().any(|a| a.get("roleScopeTagIds").is_some()) {
                    return error(
                        400,
                        "BadRequest",
                        "Property 'roleScopeTagIds' does not exist on an assignment: scope tags belong to the policy.",
                    );
                }
                if let Some(refused) = self.approval_gate(id, approval) {
                    return refused;
                }
                let mut next = Vec::new();
                for (i, a) in body["assignments"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                {
                    let mut a = a;
                    a["id"] = json!(format!("{id}_{i}"));
                    next.push(a);
                }
                t.assignments.insert(id.to_string(), next.clone());
                (200, json!({"value": next}))
            }
            ("POST", ["deviceManagement", "reports", action])
                if *action == "getConfigurationPolicyDevicesReport"
                    || *action == "getDeviceStatusByCompliacePolicyReport" =>
            {
                let compliance = *action == "getDeviceStatusByCompliacePolicyReport";
                let filter = body["filter"].as_str().unwrap_or("");
                let pid = filter.split('\'').nth(1).unwrap_or("");
                let is_compliance = t
                    .policies
                    .iter()
                    .any(|(c, p)| c == "deviceCompliancePolicies" && p["id"] == pid);
                // Each report knows its own kind of policy only.
                let rows = if compliance == is_compliance {
                    t.report.get(pid).cloned().unwrap_or_default()
                } else {
                    Vec::new()
                };
                let (id_col, time_col) = if compliance {
                    ("DeviceId", "LastContact")
                } else {
                    ("IntuneDeviceId", "PspdpuLastModifiedTimeUtc")
                };
                let known = [
                    id_col,
                    "DeviceName",
                    "UPN",
                    "PolicyStatus",
                    "ReportStatus",
                    time_col,
                ];
                let mut cols: Vec<String> = Vec::new();
                for c in body["select"].as_array().into_iter().flatten() {
                    let c = c.as_str().unwrap_or("");
                    if !known.contains(&c) || (compliance && c == "ReportStatus") {
                        return error(400, "BadRequest", &format!("unknown column {c}"));
                    }
                    cols.push(c.to_string());
                    // An enum column comes with its text beside it.
                    if c == "PolicyStatus" {
                        cols.push("PolicyStatus_loc".into());
                    }
                }
                let skip = body["skip"].as_u64().unwrap_or(0) as usize;
                let mut top = body["top"].as_u64().unwrap_or(50) as usize;
                let cap = self.report_cap.load(Ordering::SeqCst);
                if cap > 0 {
                    top = top.min(cap);
                }
                let values: Vec<Value> = rows
                    .iter()
                    .skip(skip)
                    .take(top)
                    .map(|(d, n, s, at)| {
                        Value::Array(
                            cols.iter()
                                .map(|c| match c.as_str() {
                                    "PolicyStatus" => json!(status_code(s)),
                                    "PolicyStatus_loc" | "ReportStatus" => json!(s),
                                    "DeviceName" => json!(n),
                                    "UPN" => json!(""),
                                    c if c == id_col => json!(d),
                                    _ => json!(at),
                                })
                                .collect(),
                        )
                    })
                    .collect();
                let schema: Vec<Value> = cols
                    .iter()
                    .map(|c| json!({"Column": c, "PropertyType": if c == "PolicyStatus" { "Int32" } else { "String" }}))
                    .collect();
                (
                    200,
                    json!({"TotalRowCount": rows.len(), "Schema": schema, "Values": values}),
                )
            }
            _ => error(
                400,
                "BadRequest",
                &format!("the mock does not know {method} {path}"),
            ),
        }
    }
}

/// The Multi Admin Approval headers of a request.
#[derive(Default)]
struct Approval {
    justification: Option<String>,
    id: Option<String>,
}

fn parse_query(q: Option<&str>) -> BTreeMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.replace("%20", " ").replace("%27", "'"))
        })
        .collect()
}

fn respond(status: u16, v: Value) -> Response {
    let s = StatusCode::from_u16(status).unwrap();
    if v.is_null() {
        s.into_response()
    } else {
        (s, axum::Json(v)).into_response()
    }
}

/// Drops the connection without an answer (the request's effect stays).
fn cut() -> ! {
    std::panic::resume_unwind(Box::new("connection cut by the mock"))
}

async fn handle(
    axum::extract::State(m): axum::extract::State<Arc<Mock>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path.ends_with("/oauth2/v2.0/token") {
        return token(&m, &path, &body);
    }
    let Some(rest) = path.strip_prefix("/beta") else {
        return respond(404, json!({"error": {"code": "NotFound"}}));
    };
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bearer = auth.strip_prefix("Bearer ").unwrap_or("");
    if !m.issued.lock().unwrap().contains(bearer) {
        return respond(
            401,
            json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token is empty."}}),
        );
    }
    m.requests.fetch_add(1, Ordering::SeqCst);
    m.times.lock().unwrap().push(Instant::now());
    if m.throttle.load(Ordering::SeqCst) > 0 {
        m.throttle.fetch_sub(1, Ordering::SeqCst);
        m.throttled.fetch_add(1, Ordering::SeqCst);
        let body =
            axum::Json(json!({"error": {"code": "TooManyRequests", "message": "throttled"}}));
        if m.bare_429.load(Ordering::SeqCst) {
            return (StatusCode::TOO_MANY_REQUESTS, body).into_response();
        }
        return (StatusCode::TOO_MANY_REQUESTS, [("Retry-After", "1")], body).into_response();
    }
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let query = parse_query(uri.query());
    if rest == "/$batch" {
        let mut responses = Vec::new();
        let mut wrote = false;
        for r in body["requests"].as_array().cloned().unwrap_or_default() {
            let id = r["id"].clone();
            if m.throttle.load(Ordering::SeqCst) > 0 {
                m.throttle.fetch_sub(1, Ordering::SeqCst);
                m.throttled.fetch_add(1, Ordering::SeqCst);
                responses.push(json!({"id": id, "status": 429, "headers": {"Retry-After": "1"}, "body": {"error": {"code": "TooManyRequests"}}}));
                continue;
            }
            let url = r["url"].as_str().unwrap_or("");
            let (p, q) = url
                .split_once('?')
                .map_or((url, None), |(a, b)| (a, Some(b)));
            let meth = r["method"].as_str().unwrap_or("GET");
            wrote |= meth != "GET";
            let prefer = r["headers"]["Prefer"].as_str().map(str::to_string);
            let (status, b) = m.call(
                meth,
                p,
                &parse_query(q),
                &r["body"],
                prefer.as_deref(),
                &Approval::default(),
            );
            responses.push(json!({"id": id, "status": status, "body": b}));
        }
        if wrote && m.cut_writes.load(Ordering::SeqCst) > 0 {
            m.cut_writes.fetch_sub(1, Ordering::SeqCst);
            m.cuts.fetch_add(1, Ordering::SeqCst);
            cut();
        }
        return respond(200, json!({"responses": responses}));
    }
    let prefer = headers.get("prefer").and_then(|v| v.to_str().ok());
    let header = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let approval = Approval {
        justification: header(ringmaster_intune::connector::JUSTIFICATION_HEADER),
        id: header(ringmaster_intune::connector::APPROVAL_ID_HEADER),
    };
    let (status, b) = m.call(method.as_str(), rest, &query, &body, prefer, &approval);
    let write = method != Method::GET && !rest.contains("/reports/");
    if write && (200..300).contains(&status) && m.cut_writes.load(Ordering::SeqCst) > 0 {
        m.cut_writes.fetch_sub(1, Ordering::SeqCst);
        m.cuts.fetch_add(1, Ordering::SeqCst);
        cut();
    }
    respond(status, b)
}

fn token(m: &Mock, path: &str, body: &[u8]) -> Response {
    let form: HashMap<String, String> = String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.replace("%3A", ":").replace("%2F", "/").replace('+', " "),
            )
        })
        .collect();
    let bad = |d: &str| {
        respond(
            401,
            json!({"error": "invalid_client", "error_description": d}),
        )
    };
    if !path.starts_with(&format!("/{TENANT}/")) {
        return respond(
            400,
            json!({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}),
        );
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT)
        || form.get("grant_type").map(String::as_str) != Some("client_credentials")
    {
        return bad("AADSTS700016: Application not found in the directory.");
    }
    let ok = if let Some(s) = form.get("client_secret") {
        s == SECRET
    } else if let (Some(assertion), Some(pem)) = (form.get("client_assertion"), &m.public_pem) {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        match jsonwebtoken::decode_header(assertion) {
            // PS256 names the certificate by SHA-256, RS256 by SHA-1.
            Ok(h)
                if (h.alg == jsonwebtoken::Algorithm::PS256
                    && h.x5t_s256.as_ref().is_some_and(|t| t.len() == 43))
                    || (h.alg == jsonwebtoken::Algorithm::RS256
                        && h.x5t.as_ref().is_some_and(|t| t.len() == 27)) =>
            {
                let mut v = jsonwebtoken::Validation::new(h.alg);
                v.set_audience(&[format!("{}{path}", m.base.lock().unwrap())]);
                v.set_issuer(&[CLIENT]);
                let ok = jsonwebtoken::decode::<Value>(assertion, &key, &v).is_ok();
                if ok {
                    m.assertions.lock().unwrap().push(h);
                }
                ok
            }
            _ => false,
        }
    } else {
        false
    };
    if !ok {
        return bad("AADSTS7000215: Invalid client secret provided.");
    }
    let n = m.tokens.fetch_add(1, Ordering::SeqCst);
    let roles: Vec<String> = match m.granted.lock().unwrap().as_ref() {
        Some(g) => g.iter().cloned().collect(),
        None => ringmaster_intune::permissions::FEATURES
            .iter()
            .flat_map(|f| f.needs.iter().map(|n| n[0].to_string()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    // An app token as Entra issues it: a JWT with `roles` (the signature is
    // not checked by the client, so a marker stands in for it).
    let b64 = |v: Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let access = format!(
        "{}.{}.mock-signature",
        b64(json!({"typ": "JWT", "alg": "RS256"})),
        b64(json!({"aud": "https://graph.microsoft.com", "appid": CLIENT, "roles": roles, "n": n}))
    );
    m.issued.lock().unwrap().insert(access.clone());
    respond(
        200,
        json!({"token_type": "Bearer", "expires_in": 3599, "access_token": access}),
    )
}
