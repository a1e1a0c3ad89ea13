//! The HTTP side of ringmaster: a JSON API behind bearer tokens, and a
//! server-rendered dashboard behind a session cookie, both role-checked.
//! `app(state)` builds the router; `serve(listener, state, shutdown)` runs
//! it, so tests bind port 0. `scheduler::Scheduler` drives the rollout
//! beside it (lease, ticks, run-state watch, notifications, reloads).
//!
//! Every route is listed once in [`ROUTES`] with what it needs, so the
//! security tests can walk them all. API routes (`/api`, `/metrics`) take
//! only bearer tokens and the dashboard (`/ui`) only its cookie: a cookie
//! never authorizes an API call, so the API needs no CSRF defence, and
//! every dashboard form carries the session's form key.

mod api;
mod chart;
pub mod notify;
pub mod scheduler;
mod ui;
pub mod watch;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ringmaster_core::org::Org;
use ringmaster_core::targeting::Resolution;
use ringmaster_engine::engine::Engine;
use ringmaster_plan::comms::Message;
use ringmaster_plan::planner::Plan;
use ringmaster_store::{Role, Store};
use std::sync::Arc;

pub use notify::Channels;

/// Largest request body accepted (a status batch of ~100,000 reports fits).
pub const MAX_BODY: usize = 32 << 20;
/// Largest form body (sign-in, actions, feedback).
pub const MAX_FORM: usize = 16 << 10;

/// The plan being run and the organization it was computed on: what the
/// plan, conflict, explain and help-desk views show. Read-only.
pub struct View {
    pub plan: Plan,
    pub messages: Vec<Message>,
    pub org: Org,
    pub res: Resolution,
    /// Devices by any id, for tying ingested records to waves.
    pub directory: ringmaster_engine::ingest::Directory,
}

impl View {
    pub fn new(plan: Plan, messages: Vec<Message>, org: Org, res: Resolution) -> View {
        let directory = ringmaster_engine::ingest::Directory::new(&org);
        View {
            plan,
            messages,
            org,
            res,
            directory,
        }
    }
}

/// The current [`View`] and its generation (how many times it was replaced).
#[derive(Clone)]
pub struct Views(Arc<std::sync::RwLock<(Arc<View>, u64)>>);

impl Views {
    pub fn new(v: View) -> Views {
        Views(Arc::new(std::sync::RwLock::new((Arc::new(v), 0))))
    }

    pub fn current(&self) -> (Arc<View>, u64) {
        let g = self.0.read().unwrap_or_else(|e| e.into_inner());
        (g.0.clone(), g.1)
    }

    /// Puts a freshly loaded view in place; requests under way keep theirs.
    pub fn replace(&self, v: View) {
        let mut g = self.0.write().unwrap_or_else(|e| e.into_inner());
        *g = (Arc::new(v), g.1 + 1);
    }
}

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
    /// What the plan, the directory and the policies say now: swapped
    /// whole when they are imported again.
    pub views: Views,
    /// Signs feedback links; kept in the database so links outlive restarts.
    pub link_key: Arc<[u8]>,
    /// Where notifications go.
    pub channels: Arc<Channels>,
    /// Records taken in since start, for the metrics.
    pub counters: Arc<Counters>,
}

impl AppState {
    /// The plan, directory and policies as now loaded.
    pub fn view(&self) -> Arc<View> {
        self.views.current().0
    }
}

/// Records ingested over HTTP since the process started, by kind.
#[derive(Default)]
pub struct Counters {
    pub status: std::sync::atomic::AtomicU64,
    pub tickets: std::sync::atomic::AtomicU64,
    pub feedback: std::sync::atomic::AtomicU64,
    pub rejected: std::sync::atomic::AtomicU64,
}

/// The key that signs a rollout's feedback links: made on first use, then kept.
pub async fn link_key(store: &dyn Store, rollout: &str) -> ringmaster_store::Result<Arc<[u8]>> {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let fresh: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // Servers starting together agree on whichever was stored first.
    let k = store
        .meta_or_insert(rollout, "feedback_link_key", &fresh)
        .await?;
    Ok(k.into_bytes().into())
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
    /// No token needed (health, sign-in, static files, keyed feedback links).
    Open,
    /// Any signed-in role (sign out).
    SignedIn,
    /// Read the plan and rollout state.
    Read,
    /// Change a wave.
    Operate,
    /// Send device status.
    ReportStatus,
    /// Send help-desk tickets.
    ReportTickets,
    /// Send pilot feedback collected elsewhere (a survey tool).
    ReportFeedback,
    /// Read the audit log and the notification outbox.
    Audit,
}

/// Every route: method, path, what it needs. Paths under `/ui` are the
/// dashboard (session cookie); `/api` and `/metrics` take bearer tokens.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Open),
    ("GET", "/readyz", Access::Open),
    ("GET", "/api/plan", Access::Read),
    ("GET", "/api/conflicts", Access::Read),
    ("GET", "/api/devices/{device}", Access::Read),
    ("GET", "/api/groups/{group}", Access::Read),
    ("GET", "/api/communications", Access::Read),
    ("GET", "/api/waves", Access::Read),
    ("GET", "/api/waves/{wave}", Access::Read),
    ("GET", "/api/history", Access::Read),
    ("GET", "/api/runstate", Access::Read),
    ("GET", "/api/alerts", Access::Read),
    ("POST", "/api/alerts/{action}", Access::Operate),
    ("GET", "/api/audit", Access::Audit),
    ("GET", "/api/outbox", Access::Audit),
    ("POST", "/api/waves/{wave}/{action}", Access::Operate),
    ("POST", "/api/ingest/status", Access::ReportStatus),
    ("POST", "/api/ingest/tickets", Access::ReportTickets),
    ("POST", "/api/ingest/feedback", Access::ReportFeedback),
    ("GET", "/api/openapi.json", Access::Read),
    ("GET", "/metrics", Access::Read),
    ("GET", "/", Access::Open),
    ("GET", "/login", Access::Open),
    ("POST", "/login", Access::Open),
    ("GET", "/static/{file}", Access::Open),
    ("GET", "/feedback/{wave}/{key}", Access::Open),
    ("POST", "/feedback/{wave}/{key}", Access::Open),
    ("POST", "/ui/logout", Access::SignedIn),
    ("GET", "/ui", Access::Read),
    ("GET", "/ui/plan", Access::Read),
    ("GET", "/ui/pilot", Access::Read),
    ("GET", "/ui/conflicts", Access::Read),
    ("GET", "/ui/conflicts/{n}", Access::Read),
    ("GET", "/ui/waves/{wave}", Access::Read),
    ("POST", "/ui/waves/{wave}/{action}", Access::Operate),
    ("POST", "/ui/alerts/{action}", Access::Operate),
    ("GET", "/ui/devices", Access::Read),
    ("GET", "/ui/devices/{device}", Access::Read),
    ("GET", "/ui/helpdesk", Access::Read),
    ("GET", "/ui/runstate", Access::Read),
    ("GET", "/ui/audit", Access::Audit),
    ("GET", "/ui/notifications", Access::Audit),
];

/// Whether a role may use a route of this kind.
pub fn allowed(role: Role, access: Access) -> bool {
    use Access::*;
    match access {
        Open | SignedIn => true,
        Read => matches!(
            role,
            Role::Viewer | Role::HelpDesk | Role::Operator | Role::Admin
        ),
        Operate => matches!(role, Role::Operator | Role::Admin),
        ReportStatus => matches!(role, Role::Reporter | Role::Operator | Role::Admin),
        ReportTickets => matches!(role, Role::HelpDesk | Role::Operator | Role::Admin),
        ReportFeedback => matches!(
            role,
            Role::Reporter | Role::HelpDesk | Role::Operator | Role::Admin
        ),
        Audit => matches!(role, Role::Operator | Role::Admin),
    }
}

/// One error type for every API route: a status and a message safe to
/// show. Internal causes go to the log, not to clients.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl ApiError {
    fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "{what} failed");
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
        .map_err(|e| ApiError::internal("checking the token", e))?
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

/// Security headers on every answer: no framing, no sniffing, and a
/// content policy that allows only this server's own scripts and styles.
async fn headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::header::{self, HeaderValue};
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// One log line per request: method, path (never the query, which may
/// carry a link key), status, milliseconds.
async fn log(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let t = std::time::Instant::now();
    let r = next.run(req).await;
    tracing::info!(
        target: "ringmaster::http",
        %method,
        path = %redact(&path),
        status = r.status().as_u16(),
        ms = t.elapsed().as_millis() as u64,
        "request"
    );
    r
}

/// A path as logged: a feedback link's key is replaced.
fn redact(path: &str) -> String {
    match path.strip_prefix("/feedback/") {
        Some(rest) => format!("/feedback/{}/…", rest.split('/').next().unwrap_or_default()),
        None => path.to_string(),
    }
}

/// The router: every route of [`ROUTES`], with body limits and headers.
pub fn app(state: AppState) -> Router {
    let forms = Router::new()
        .route("/login", get(ui::login_page).post(ui::login))
        .route("/ui/logout", post(ui::logout))
        .route("/ui/waves/{wave}/{action}", post(ui::act))
        .route("/ui/alerts/{action}", post(ui::alert_action))
        .route(
            "/feedback/{wave}/{key}",
            get(ui::feedback_page).post(ui::feedback),
        )
        .layer(DefaultBodyLimit::max(MAX_FORM));
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/api/plan", get(api::plan))
        .route("/api/conflicts", get(api::conflicts))
        .route("/api/devices/{device}", get(api::device))
        .route("/api/groups/{group}", get(api::group))
        .route("/api/communications", get(api::communications))
        .route("/api/waves", get(api::waves))
        .route("/api/waves/{wave}", get(api::wave))
        .route("/api/history", get(api::history))
        .route("/api/runstate", get(api::runstate))
        .route("/api/alerts", get(api::alerts))
        .route("/api/alerts/{action}", post(api::alert_action))
        .route("/api/audit", get(api::audit))
        .route("/api/outbox", get(api::outbox))
        .route("/api/waves/{wave}/{action}", post(api::act))
        .route("/api/ingest/status", post(api::ingest_status))
        .route("/api/ingest/tickets", post(api::ingest_tickets))
        .route("/api/ingest/feedback", post(api::ingest_feedback))
        .route("/api/openapi.json", get(api::openapi_doc))
        .route("/metrics", get(api::metrics))
        .route("/", get(ui::root))
        .route("/static/{file}", get(ui::static_file))
        .route("/ui", get(ui::overview))
        .route("/ui/plan", get(ui::plan))
        .route("/ui/pilot", get(ui::pilot))
        .route("/ui/conflicts", get(ui::conflicts))
        .route("/ui/conflicts/{n}", get(ui::conflict))
        .route("/ui/waves/{wave}", get(ui::wave))
        .route("/ui/devices", get(ui::devices))
        .route("/ui/devices/{device}", get(ui::device))
        .route("/ui/helpdesk", get(ui::helpdesk))
        .route("/ui/runstate", get(ui::runstate))
        .route("/ui/audit", get(ui::audit))
        .route("/ui/notifications", get(ui::notifications))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .merge(forms)
        .layer(axum::middleware::from_fn(headers))
        .layer(axum::middleware::from_fn(log))
        .with_state(state)
}

pub use api::{is_api, openapi};

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer's address reaches the handlers (sign-in attempts are limited per client).
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}
