//! The HTTP API: rollout state, operator actions and ingestion, each route
//! behind a token whose role allows it. `app(state)` builds the router;
//! `serve(listener, state, shutdown)` runs it, so tests bind port 0.
//!
//! Every route is listed once in [`ROUTES`] with the roles it admits, so the
//! security tests can walk them all.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ringmaster_core::wave::{Event, Reason};
use ringmaster_engine::engine::Engine;
use ringmaster_engine::ingest::Parsed;
use ringmaster_store::{Role, Store};
use std::sync::Arc;

/// Largest request body accepted (a status batch of ~100,000 reports fits).
pub const MAX_BODY: usize = 32 << 20;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    pub rollout: String,
    /// The rollout's clock: real time, or the simulated time of a demo.
    pub clock: Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>,
    /// Ingestion requests allowed per token and minute (a burst of that many).
    pub ingest_per_minute: u32,
    pub limiter: Arc<Limiter>,
}

/// A token bucket per token: ingestion cannot swamp the database.
#[derive(Default)]
pub struct Limiter {
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl Limiter {
    /// Takes one request from `key`'s bucket; Err with the seconds to wait.
    pub fn take(&self, key: &str, per_minute: u32) -> Result<(), u64> {
        let rate = f64::from(per_minute.max(1)) / 60.0;
        let cap = f64::from(per_minute.max(1));
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let (tokens, last) = b.entry(key.to_string()).or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(cap);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil() as u64)
        }
    }
}

/// What a route does, for the role check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (health).
    Open,
    /// Read rollout state.
    Read,
    /// Change a wave.
    Operate,
    /// Send device status.
    ReportStatus,
    /// Send help-desk tickets.
    ReportTickets,
    /// Read the audit log.
    Audit,
}

/// Every route: method, path, what it needs.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Open),
    ("GET", "/readyz", Access::Open),
    ("GET", "/api/waves", Access::Read),
    ("GET", "/api/history", Access::Read),
    ("GET", "/api/audit", Access::Audit),
    ("POST", "/api/waves/{wave}/{action}", Access::Operate),
    ("POST", "/api/ingest/status", Access::ReportStatus),
    ("POST", "/api/ingest/tickets", Access::ReportTickets),
    ("GET", "/api/openapi.json", Access::Read),
    ("GET", "/metrics", Access::Read),
];

/// What each route does, for the OpenAPI document.
fn summary(path: &str) -> &'static str {
    match path {
        "/healthz" => "the process is up",
        "/readyz" => "the database answers",
        "/api/waves" => "waves of the current plan version with their states and report counts",
        "/api/history" => "every transition with when, who and why",
        "/api/audit" => "the audit log",
        "/api/waves/{wave}/{action}" => {
            "approve, promote, pause, resume, abort, rollback or retry a wave"
        }
        "/api/ingest/status" => {
            "device policy states (JSON, NDJSON or CSV); bad records are listed, the rest kept"
        }
        "/api/ingest/tickets" => "help-desk tickets (ServiceNow, Zendesk or Jira shapes)",
        "/api/openapi.json" => "this document",
        "/metrics" => "Prometheus metrics: wave states, gate outcomes, stored reports",
        _ => "",
    }
}

/// The OpenAPI 3.1 document, built from [`ROUTES`] so it cannot drift.
pub fn openapi() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for (method, path, access) in ROUTES {
        let mut op = serde_json::json!({
            "summary": summary(path),
            "responses": {
                "200": {"description": "done"},
                "401": {"description": "no token, or an unknown one"},
                "403": {"description": "the token's role may not do this"},
                "413": {"description": "the body is larger than the limit"},
            },
        });
        if *access == Access::Open {
            op["security"] = serde_json::json!([]);
        }
        if path.contains("{wave}") {
            op["parameters"] = serde_json::json!([
                {"name": "wave", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}},
                {"name": "action", "in": "path", "required": true, "schema": {"type": "string",
                    "enum": ["approve", "promote", "pause", "resume", "abort", "rollback", "retry"]}},
            ]);
        }
        let entry = paths
            .entry(path.to_string())
            .or_insert_with(|| serde_json::json!({}));
        entry[method.to_ascii_lowercase()] = op;
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "ringmaster", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
        "paths": paths,
    })
}

/// Whether a role may use a route of this kind.
pub fn allowed(role: Role, access: Access) -> bool {
    use Access::*;
    match access {
        Open => true,
        Read => matches!(
            role,
            Role::Viewer | Role::HelpDesk | Role::Operator | Role::Admin
        ),
        Operate => matches!(role, Role::Operator | Role::Admin),
        ReportStatus => matches!(role, Role::Reporter | Role::Operator | Role::Admin),
        ReportTickets => matches!(role, Role::HelpDesk | Role::Operator | Role::Admin),
        Audit => matches!(role, Role::Operator | Role::Admin),
    }
}

/// One error type for every route: a status and a message safe to show.
/// Internal causes are not sent to clients.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl ApiError {
    fn internal(what: &str) -> ApiError {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{what} failed"))
    }
}

/// Who a request comes from.
struct Caller {
    label: String,
    /// The token's hash: a key for per-token limits that holds no secret.
    key: String,
}

/// Checks the bearer token against the route's needs; returns who it is.
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    access: Access,
) -> Result<Caller, ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required".into(),
            )
        })?;
    let (role, label) = state
        .store
        .check_token(token)
        .await
        .map_err(|_| ApiError::internal("checking the token"))?
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "unknown or revoked token".into()))?;
    if !allowed(role, access) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("the {} role may not do this", role.as_str()),
        ));
    }
    Ok(Caller {
        label,
        key: ringmaster_store::token_hash(token),
    })
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(s): State<AppState>) -> Response {
    match s.store.has_tokens().await {
        Ok(_) => "ready".into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response(),
    }
}

async fn waves(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    let rows = s
        .engine
        .rows()
        .await
        .map_err(|_| ApiError::internal("reading waves"))?;
    let mut out = Vec::new();
    for r in &rows {
        let c = s
            .store
            .wave_counts(&r.key.rollout, r.key.idx, None)
            .await
            .map_err(|_| ApiError::internal("reading counts"))?;
        out.push(serde_json::json!({
            "wave": r.key.idx + 1, "version": r.key.version, "name": r.name, "phase": r.phase,
            "state": r.state, "devices": r.members.len(), "counts": c,
        }));
    }
    Ok(axum::Json(serde_json::json!({ "rollout": s.rollout, "waves": out })).into_response())
}

async fn history(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    let h = s
        .store
        .history(&s.rollout)
        .await
        .map_err(|_| ApiError::internal("reading the history"))?;
    Ok(axum::Json(h).into_response())
}

async fn audit(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Audit).await?;
    let log = s
        .store
        .audit_log(&s.rollout)
        .await
        .map_err(|_| ApiError::internal("reading the audit log"))?;
    Ok(axum::Json(log).into_response())
}

async fn act(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((wave, action)): Path<(u32, String)>,
) -> Result<Response, ApiError> {
    let label = authorize(&s, &headers, Access::Operate).await?.label;
    let event = match action.as_str() {
        "approve" => Event::Approve,
        "promote" => Event::Promote,
        "pause" => Event::Pause,
        "resume" => Event::Resume(Reason::Manual),
        "abort" => Event::Abort,
        "rollback" => Event::Rollback,
        "retry" => Event::Retry,
        _ => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                "unknown action: approve, promote, pause, resume, abort, rollback or retry".into(),
            ));
        }
    };
    let now = (s.clock)();
    match s.engine.operate(wave, event, &label, now).await {
        Ok(Ok(line)) => Ok(axum::Json(serde_json::json!({ "done": line })).into_response()),
        Ok(Err(why)) => Err(ApiError(StatusCode::CONFLICT, why)),
        Err(_) => Err(ApiError::internal("the action")),
    }
}

/// The 429 answer when `who` has used up its ingestion allowance.
fn limited(s: &AppState, who: &str) -> Option<Response> {
    s.limiter.take(who, s.ingest_per_minute).err().map(|wait| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, wait.to_string())],
            axum::Json(serde_json::json!({
                "error": format!("too many ingestion requests: retry in {wait} s")
            })),
        )
            .into_response()
    })
}

/// The steps every ingestion route shares: the token and its role, the
/// rate limit, a UTF-8 body, parsing (bad records listed, the rest kept),
/// storing, and the answer.
async fn ingest<T>(
    s: &AppState,
    headers: &HeaderMap,
    access: Access,
    body: &Bytes,
    parse: fn(&str) -> Result<Parsed<T>, String>,
    store: impl AsyncFnOnce(&[T]) -> ringmaster_store::Result<ringmaster_store::Ingested>,
) -> Result<Response, ApiError> {
    let who = authorize(s, headers, access).await?;
    if let Some(r) = limited(s, &who.key) {
        return Ok(r);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "the body is not UTF-8".into()))?;
    let (records, rejected) = parse(text).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let got = store(&records)
        .await
        .map_err(|_| ApiError::internal("storing the records"))?;
    Ok(axum::Json(serde_json::json!({
        "inserted": got.inserted, "duplicates": got.duplicates, "rejected": rejected,
    }))
    .into_response())
}

async fn ingest_status(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let parse = |t: &str| ringmaster_engine::ingest::statuses(t, None);
    ingest(
        &s,
        &headers,
        Access::ReportStatus,
        &body,
        parse,
        async |r| s.store.ingest_status(&s.rollout, r).await,
    )
    .await
}

async fn ingest_tickets(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    ingest(
        &s,
        &headers,
        Access::ReportTickets,
        &body,
        ringmaster_engine::ingest::tickets,
        async |r| s.store.ingest_tickets(&s.rollout, r).await,
    )
    .await
}

async fn openapi_doc(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    Ok(axum::Json(openapi()).into_response())
}

/// Prometheus text: waves per state, gate outcomes, stored reports per wave.
async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    let rows = s
        .engine
        .rows()
        .await
        .map_err(|_| ApiError::internal("reading waves"))?;
    let mut out = String::from(
        "# HELP ringmaster_wave_state 1 for the state each wave is in\n# TYPE ringmaster_wave_state gauge\n",
    );
    let mut outcomes: std::collections::BTreeMap<String, u64> = Default::default();
    let mut reports = String::from(
        "# HELP ringmaster_wave_reports Devices of a wave with a reported state\n# TYPE ringmaster_wave_reports gauge\n",
    );
    for r in &rows {
        // Rollout ids and wave names come from the plan: quote-safe only.
        let name: String = r
            .name
            .chars()
            .filter(|c| !matches!(c, '"' | '\\' | '\n'))
            .collect();
        out.push_str(&format!(
            "ringmaster_wave_state{{wave=\"{}\",name=\"{name}\",state=\"{}\"}} 1\n",
            r.key.idx + 1,
            r.state.name()
        ));
        let c = s
            .store
            .wave_counts(&r.key.rollout, r.key.idx, None)
            .await
            .map_err(|_| ApiError::internal("reading counts"))?;
        reports.push_str(&format!(
            "ringmaster_wave_reports{{wave=\"{}\"}} {}\n",
            r.key.idx + 1,
            c.reported()
        ));
        for (_, e) in s
            .store
            .evaluations(&r.key)
            .await
            .map_err(|_| ApiError::internal("reading gates"))?
        {
            if let Some(o) = e["outcome"].as_str() {
                *outcomes.entry(o.to_string()).or_default() += 1;
            }
        }
    }
    out.push_str(&reports);
    out.push_str("# HELP ringmaster_gate_evaluations_total Gate evaluations by outcome\n# TYPE ringmaster_gate_evaluations_total counter\n");
    for (o, n) in outcomes {
        out.push_str(&format!(
            "ringmaster_gate_evaluations_total{{outcome=\"{o}\"}} {n}\n"
        ));
    }
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response())
}

/// The router, every route of [`ROUTES`], with the body limit.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/waves", get(waves))
        .route("/api/history", get(history))
        .route("/api/audit", get(audit))
        .route("/api/waves/{wave}/{action}", post(act))
        .route("/api/ingest/status", post(ingest_status))
        .route("/api/ingest/tickets", post(ingest_tickets))
        .route("/api/openapi.json", get(openapi_doc))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
