//! A Microsoft Graph client for an app (client credentials): tokens,
//! a request budget, throttling, retries, paging and JSON batching.
//!
//! Graph throttles per app and tenant (Intune's device configuration:
//! 1,000 requests per 20 s per app and tenant, of them 100 writes; 2,000
//! for all apps of a tenant) and answers 429 or 503, mostly with
//! `Retry-After`. The client spends its own budget first, so it rarely meets
//! a 429; when it does, every request of this client waits the time asked
//! (or, without `Retry-After`, an exponential backoff), not only the one
//! that was refused.

use crate::auth::{Credential, Secret};
use serde_json::{Value, json};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Where and who: the tenant and the app registration.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub tenant: String,
    pub client_id: String,
    /// Graph's base with its version (`https://graph.microsoft.com/beta`:
    /// the settings catalog and reports are only there).
    pub graph_url: String,
    /// The identity platform (`https://login.microsoftonline.com`).
    pub login_url: String,
}

/// How many requests, and of them writes, may start in a window (Intune's
/// device configuration: 1,000 per 20 s per app and tenant, 100 of them
/// writes; the default keeps a margin for other tools of the same app).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub requests: usize,
    pub writes: usize,
    pub window: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            requests: 900,
            writes: 90,
            window: Duration::from_secs(20),
        }
    }
}

/// Retries of throttled and transient failures.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Tries of a request that fails for other reasons than throttling
    /// (5xx, lost connections).
    pub attempts: u32,
    /// First backoff; doubled each time, up to `cap`.
    pub base: Duration,
    pub cap: Duration,
    /// Throttling is waited out however often Graph asks, up to this much
    /// waiting for one request: a storm passes, a wave must not fail by it.
    pub throttled_for: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 8,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
            throttled_for: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error status.
    #[error("{method} {path}: {status} {code}: {message}")]
    Status {
        method: String,
        path: String,
        status: u16,
        code: String,
        message: String,
    },
    /// No answer (connection refused or cut, timeout) after every retry.
    #[error("{method} {path}: no answer from Graph: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
    },
    /// Graph refused the call for want of application permissions the
    /// token does not grant.
    #[error(
        "{method} {path}: 403 {code}: the app lacks the Graph application permission {missing} (add it to the app registration and grant admin consent)"
    )]
    Forbidden {
        method: String,
        path: String,
        code: String,
        /// The least privileged permission of each unmet need, joined.
        missing: String,
    },
    #[error("signing in to tenant {tenant}: {message}")]
    Auth { tenant: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl GraphError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Status { status, .. } => Some(*status),
            GraphError::Forbidden { .. } => Some(403),
            _ => None,
        }
    }

    /// The request may or may not have been carried out.
    pub fn is_transport(&self) -> bool {
        matches!(self, GraphError::Transport { .. })
    }
}

/// What the client did, for logs and tests.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub retried: AtomicU64,
    pub tokens: AtomicU64,
}

/// One request of a `$batch`.
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub method: &'static str,
    /// Relative to the version: `/groups/{id}/members/{m}/$ref`.
    pub url: String,
    pub body: Option<Value>,
}

pub struct Graph {
    http: reqwest::Client,
    endpoint: Endpoint,
    credential: Credential,
    pub budget: Budget,
    pub retry: Retry,
    token: Mutex<Option<(Secret, Instant)>>,
    /// The application roles the current token grants, when readable.
    roles: std::sync::Mutex<Option<BTreeSet<String>>>,
    started: Mutex<VecDeque<Instant>>,
    written: Mutex<VecDeque<Instant>>,
    not_before: Mutex<Option<Instant>>,
    pub counters: Counters,
}

/// Largest response read (a page of managed devices is a few MB).
const MAX_RESPONSE: usize = 64 << 20;

/// Graph accepts up to 20 requests in a `$batch`.
pub const BATCH_SIZE: usize = 20;

impl Graph {
    pub fn new(endpoint: Endpoint, credential: Credential) -> Result<Graph, GraphError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("ringmaster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GraphError::Invalid(format!("starting the HTTP client: {e}")))?;
        Ok(Graph {
            http,
            endpoint,
            credential,
            budget: Budget::default(),
            retry: Retry::default(),
            token: Mutex::new(None),
            roles: std::sync::Mutex::new(None),
            started: Mutex::new(VecDeque::new()),
            written: Mutex::new(VecDeque::new()),
            not_before: Mutex::new(None),
            counters: Counters::default(),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The origin of Graph (`https://graph.microsoft.com`): the token's
    /// scope, and the only host a `nextLink` may point at.
    fn origin(&self) -> &str {
        let u = &self.endpoint.graph_url;
        let after = u.find("://").map_or(0, |i| i + 3);
        match u[after..].find('/') {
            Some(i) => &u[..after + i],
            None => u,
        }
    }

    async fn token(&self, renew: bool) -> Result<Secret, GraphError> {
        let mut t = self.token.lock().await;
        if let Some((tok, until)) = t.as_ref()
            && !renew
            && Instant::now() < *until
        {
            return Ok(tok.clone());
        }
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.endpoint.login_url.trim_end_matches('/'),
            self.endpoint.tenant
        );
        let auth_err = |message: String| GraphError::Auth {
            tenant: self.endpoint.tenant.clone(),
            message,
        };
        let scope = format!("{}/.default", self.origin());
        let mut form = vec![
            ("client_id", self.endpoint.client_id.clone()),
            ("scope", scope),
            ("grant_type", "client_credentials".to_string()),
        ];
        form.extend(
            self.credential
                .form(&self.endpoint.client_id, &url)
                .map_err(auth_err)?,
        );
        let mut last = String::new();
        for attempt in 0..self.retry.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
            self.counters.tokens.fetch_add(1, Ordering::Relaxed);
            let resp = match self.http.post(&url).form(&form).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("no answer: {}", without_url(&e));
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if status == 200 {
                let token = body["access_token"]
                    .as_str()
                    .ok_or_else(|| auth_err("the answer holds no access_token".into()))?;
                let secs = body["expires_in"].as_u64().unwrap_or(3599);
                // Renew five minutes early: a long wave outlives a token.
                let until = Instant::now() + Duration::from_secs(secs.saturating_sub(300).max(30));
                let tok = Secret::new(token.to_string());
                *self.roles.lock().unwrap_or_else(|e| e.into_inner()) =
                    crate::permissions::roles_of(token);
                *t = Some((tok.clone(), until));
                return Ok(tok);
            }
            last = format!(
                "{status} {}: {}",
                body["error"].as_str().unwrap_or("error"),
                body["error_description"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
            );
            if !(status == 429 || status >= 500) {
                break;
            }
        }
        Err(auth_err(last))
    }

    /// The application roles the app's token grants (None: the token
    /// cannot be read, as Graph allows). Signs in if needed.
    pub async fn granted_roles(&self) -> Result<Option<BTreeSet<String>>, GraphError> {
        self.token(false).await?;
        Ok(self.roles.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// A refused call: when the token lacks what the call needs, say which
    /// permission; otherwise (Intune roles, approvals) Graph's own words.
    fn refused(
        &self,
        method: &str,
        path: String,
        status: u16,
        code: String,
        message: String,
    ) -> GraphError {
        if status == 403 {
            let granted = self.roles.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let needs = crate::permissions::needed(method, &path);
            let missing = match &granted {
                Some(g) => crate::permissions::missing(&needs, g),
                // Unreadable token: name what the call needs.
                None => needs.iter().map(|n| n[0]).collect(),
            };
            if !missing.is_empty() {
                return GraphError::Forbidden {
                    method: method.to_string(),
                    path,
                    code,
                    missing: missing.join(" and "),
                };
            }
        }
        GraphError::Status {
            method: method.to_string(),
            path,
            status,
            code,
            message,
        }
    }

    /// The wait before try `attempt` of something the caller repeats
    /// (doubling from the retry base, capped).
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        self.backoff(attempt)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let d = self.retry.base.saturating_mul(1 << attempt.min(16));
        d.min(self.retry.cap)
    }

    /// Waits until a request carrying `writes` writes (a `$batch` carries
    /// many) may start: the pause a 429 asked for, then the budgets.
    async fn admit(&self, writes: usize) {
        loop {
            let wait = (*self.not_before.lock().await)
                .and_then(|t| t.checked_duration_since(Instant::now()));
            match wait {
                Some(w) if !w.is_zero() => tokio::time::sleep(w).await,
                _ => break,
            }
        }
        let window = self.budget.window;
        Self::take(&self.started, 1, self.budget.requests, window).await;
        if writes > 0 {
            Self::take(&self.written, writes, self.budget.writes, window).await;
        }
    }

    /// Waits until `n` more starts fit `limit` per `window`, then records them.
    async fn take(log: &Mutex<VecDeque<Instant>>, n: usize, limit: usize, window: Duration) {
        let n = n.min(limit.max(1));
        loop {
            let mut s = log.lock().await;
            let now = Instant::now();
            while s.front().is_some_and(|t| now.duration_since(*t) >= window) {
                s.pop_front();
            }
            if s.len() + n <= limit.max(1) {
                s.extend(std::iter::repeat_n(now, n));
                return;
            }
            let wait = window - now.duration_since(s[s.len() + n - limit.max(1) - 1]);
            drop(s);
            tokio::time::sleep(wait).await;
        }
    }

    fn url(&self, path: &str) -> Result<String, GraphError> {
        if path.starts_with("http://") || path.starts_with("https://") {
            // A nextLink: the token goes only to Graph itself.
            let origin = self.origin();
            if path.starts_with(origin) && path[origin.len()..].starts_with('/') {
                return Ok(path.to_string());
            }
            return Err(GraphError::Invalid(format!(
                "refusing to follow a link away from {origin}"
            )));
        }
        Ok(format!(
            "{}{}",
            self.endpoint.graph_url.trim_end_matches('/'),
            path
        ))
    }

    /// One request with retries: throttling (429, 503, 504) waits what
    /// `Retry-After` says; other 5xx and lost connections back off; a 401
    /// renews the token once. `retry_transport` false: a request whose
    /// effect cannot be repeated safely is not sent again after a lost
    /// answer (the caller looks first).
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        retry_transport: bool,
    ) -> Result<Value, GraphError> {
        self.send_headed(method, path, body, retry_transport, &[])
            .await
    }

    /// [`Graph::send_with`] with request headers: `Prefer:
    /// create-if-missing` makes a PATCH by alternate key an upsert; the
    /// Multi Admin Approval headers ask for, or use, a tenant's approval.
    pub async fn send_headed(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        retry_transport: bool,
        headers: &[(&str, &str)],
    ) -> Result<Value, GraphError> {
        let url = self.url(path)?;
        let shown = shown_path(path);
        let mut renewed = false;
        let mut attempt = 0;
        let mut throttles = 0;
        let mut waited = Duration::ZERO;
        let writes = writes_in(&method, path, body);
        loop {
            self.admit(writes).await;
            let token = self.token(false).await?;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token.expose())
                .header("Accept", "application/json");
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            // No answer, or one that broke off: the request may or may not
            // have been carried out.
            let answer = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = retry_after(resp.headers());
                    read_limited(resp).await.map(|b| (status, retry_after, b))
                }
                Err(e) => Err(without_url(&e)),
            };
            let (status, retry_after, bytes) = match answer {
                Ok(a) => a,
                Err(message) => {
                    attempt += 1;
                    if !retry_transport || attempt >= self.retry.attempts {
                        return Err(GraphError::Transport {
                            method: method.to_string(),
                            path: shown,
                            message,
                        });
                    }
                    self.counters.retried.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(path = %shown, attempt, "Graph did not answer; retrying");
                    tokio::time::sleep(self.backoff(attempt)).await;
                    continue;
                }
            };
            if (200..300).contains(&status) {
                return Ok(if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).map_err(|e| GraphError::Status {
                        method: method.to_string(),
                        path: shown.clone(),
                        status,
                        code: "badJson".into(),
                        message: e.to_string(),
                    })?
                });
            }
            let (code, message) = error_of(&bytes);
            if status == 401 && !renewed {
                renewed = true;
                self.token(true).await?;
                continue;
            }
            let throttled = matches!(status, 429 | 503 | 504);
            if throttled && waited < self.retry.throttled_for {
                // Without Retry-After, each refusal in a row waits twice as long.
                throttles += 1;
                let wait = retry_after.unwrap_or_else(|| self.backoff(throttles));
                waited += wait;
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                self.pause(wait).await;
                tracing::info!(path = %shown, wait_ms = wait.as_millis() as u64, "Graph throttled the request; waiting");
                continue;
            }
            attempt += 1;
            if status >= 500 && !throttled && attempt < self.retry.attempts {
                self.counters.retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(retry_after.unwrap_or_else(|| self.backoff(attempt))).await;
                continue;
            }
            return Err(self.refused(method.as_str(), shown, status, code, message));
        }
    }

    /// Every request of this client waits `d` (Graph throttles the app,
    /// not one request).
    async fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut nb = self.not_before.lock().await;
        if nb.is_none_or(|t| t < until) {
            *nb = Some(until);
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, GraphError> {
        self.send_with(reqwest::Method::GET, path, None, true).await
    }

    /// Every item of a collection, following `@odata.nextLink`.
    pub async fn get_all(&self, path: &str) -> Result<Vec<Value>, GraphError> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(p) = next.take() {
            let page = self.get(&p).await?;
            out.extend(items(&page));
            next = page["@odata.nextLink"].as_str().map(str::to_string);
        }
        Ok(out)
    }

    /// Runs requests in `$batch`es of 20. Each item gets its own answer:
    /// throttled items are sent again after the wait Graph asks for, other
    /// failures are reported for that item alone.
    pub async fn batch(&self, items: &[BatchItem]) -> Vec<Result<Value, GraphError>> {
        let mut out: Vec<Option<Result<Value, GraphError>>> =
            (0..items.len()).map(|_| None).collect();
        for chunk in (0..items.len()).collect::<Vec<_>>().chunks(BATCH_SIZE) {
            let mut todo: Vec<usize> = chunk.to_vec();
            let mut attempt = 0;
            let mut rounds = 0;
            let mut waited = Duration::ZERO;
            while !todo.is_empty() {
                let requests: Vec<Value> = todo
                    .iter()
                    .map(|&i| {
                        let it = &items[i];
                        let mut r =
                            json!({"id": i.to_string(), "method": it.method, "url": it.url});
                        if let Some(b) = &it.body {
                            r["body"] = b.clone();
                            r["headers"] = json!({"Content-Type": "application/json"});
                        }
                        r
                    })
                    .collect();
                let answer = match self
                    .send_with(
                        reqwest::Method::POST,
                        "/$batch",
                        Some(&json!({ "requests": requests })),
                        true,
                    )
                    .await
                {
                    Ok(a) => a,
                    Err(e) => {
                        let msg = e.to_string();
                        for &i in &todo {
                            out[i] = Some(Err(GraphError::Transport {
                                method: items[i].method.into(),
                                path: shown_path(&items[i].url),
                                message: msg.clone(),
                            }));
                        }
                        break;
                    }
                };
                let mut again = Vec::new();
                let mut wait = Duration::ZERO;
                let mut only_throttled = true;
                let responses = answer["responses"].as_array().cloned().unwrap_or_default();
                for &i in &todo {
                    let Some(r) = responses
                        .iter()
                        .find(|r| r["id"].as_str() == Some(&i.to_string()))
                    else {
                        again.push(i);
                        continue;
                    };
                    let status = r["status"].as_u64().unwrap_or(500) as u16;
                    if (200..300).contains(&status) {
                        out[i] = Some(Ok(r["body"].clone()));
                    } else if matches!(status, 429 | 503 | 504) || status >= 500 {
                        if let Some(s) = r["headers"]["Retry-After"]
                            .as_str()
                            .and_then(|s| s.trim().parse::<u64>().ok())
                        {
                            wait = wait.max(Duration::from_secs(s));
                        }
                        again.push(i);
                        if matches!(status, 429 | 503 | 504) {
                            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                        } else {
                            only_throttled = false;
                        }
                    } else {
                        let body = r["body"].to_string();
                        let (code, message) = error_of(body.as_bytes());
                        out[i] = Some(Err(self.refused(
                            items[i].method,
                            shown_path(&items[i].url),
                            status,
                            code,
                            message,
                        )));
                    }
                }
                if !only_throttled || waited >= self.retry.throttled_for {
                    attempt += 1;
                }
                if !again.is_empty() && attempt >= self.retry.attempts {
                    for &i in &again {
                        out[i] = Some(Err(GraphError::Status {
                            method: items[i].method.into(),
                            path: shown_path(&items[i].url),
                            status: 429,
                            code: "throttled".into(),
                            message: format!("still throttled after {attempt} tries"),
                        }));
                    }
                    break;
                }
                if !again.is_empty() {
                    rounds += 1;
                    let wait = if wait.is_zero() {
                        self.backoff(rounds)
                    } else {
                        wait
                    };
                    waited += wait;
                    self.pause(wait).await;
                }
                todo = again;
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(GraphError::Invalid("no answer in the batch".into()))))
            .collect()
    }
}

/// How many writes a request makes against the write budget: a `$batch`
/// counts its items; report queries are POSTs that read.
fn writes_in(method: &reqwest::Method, path: &str, body: Option<&Value>) -> usize {
    if path == "/$batch" {
        return body
            .and_then(|b| b["requests"].as_array())
            .map_or(0, |r| r.iter().filter(|r| r["method"] != "GET").count());
    }
    usize::from(method != reqwest::Method::GET && !path.contains("/reports/"))
}

/// The items of a collection page (`value`), or the object itself.
pub fn items(page: &Value) -> Vec<Value> {
    match &page["value"] {
        Value::Array(a) => a.clone(),
        _ => Vec::new(),
    }
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get("retry-after")?.to_str().ok()?.trim();
    // Graph sends seconds; cap a silly value so a wave is not stuck for a day.
    v.parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(600)))
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > MAX_RESPONSE {
                    return Err(format!("answer larger than {} MiB", MAX_RESPONSE >> 20));
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(format!("reading the answer: {}", without_url(&e))),
        }
    }
}

/// Graph's `{"error": {"code", "message"}}`.
fn error_of(bytes: &[u8]) -> (String, String) {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let e = &v["error"];
    (
        e["code"].as_str().unwrap_or("error").to_string(),
        e["message"]
            .as_str()
            .map(|m| m.chars().take(300).collect())
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
            }),
    )
}

/// A path as logs and errors show it: no query (it may hold filters with
/// names) beyond its first 80 characters.
fn shown_path(p: &str) -> String {
    let p = p
        .split_once("/beta")
        .or_else(|| p.split_once("/v1.0"))
        .map_or(p, |(_, rest)| rest);
    p.chars().take(120).collect()
}

/// reqwest's error text without the URL (it may carry a skip token).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the connection failed"
    };
    kind.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_shown_without_the_host_and_links_only_to_graph() {
        assert_eq!(
            shown_path("https://graph.microsoft.com/beta/groups?$skiptoken=x"),
            "/groups?$skiptoken=x"
        );
        let g = Graph::new(
            Endpoint {
                tenant: "t".into(),
                client_id: "c".into(),
                graph_url: "https://graph.microsoft.com/beta".into(),
                login_url: "https://login.microsoftonline.com".into(),
            },
            Credential::Secret(Secret::new("s".into())),
        )
        .unwrap();
        assert_eq!(g.origin(), "https://graph.microsoft.com");
        assert!(
            g.url("https://graph.microsoft.com/beta/users?$skiptoken=1")
                .is_ok()
        );
        assert!(
            g.url("https://graph.microsoft.com.evil.example/beta/users")
                .is_err()
        );
        assert!(g.url("https://evil.example/beta/users").is_err());
        assert_eq!(
            g.url("/users").unwrap(),
            "https://graph.microsoft.com/beta/users"
        );
    }
}
