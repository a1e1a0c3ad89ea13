//! The HTTP side of ringmaster: a JSON API behind bearer tokens, and a
//! server-rendered dashboard behind a session cookie, both role-checked.
//! `app(state)` builds the router; `serve(listener, state, shutdown)` runs
//! it, so tests bind port 0. `scheduler::Scheduler` drives the rollout
//! beside it (lease, ticks, run-state watch, notifications, reloads).
//!
//! Every route is one row of the route table ([`routes`]): method, path,
//! access, body limit and handler. The router is built from the table
//! alone, each handler behind a guard that checks the route's credential
//! before anything else of the request is read. API routes (`/api`,
//! `/metrics`) take only bearer tokens and the dashboard (`/ui`) only its
//! cookie: a cookie never authorizes an API call, so the API needs no CSRF
//! defence, and the guard checks every dashboard form's session key.
//!
//! - `routes`: the table, the guard, the [`Caller`] and [`SignedIn`] extractors.
//! - `api`: JSON handlers and their records; the OpenAPI document.
//! - `ui`: dashboard pages, sign-in.
//! - `throttle`: ingestion limits and the failed-authentication throttle.
//! - [`notify`], [`watch`]: notifications and run-state alerts.
//! - [`scheduler`]: the rollout's driver beside the server.

mod api;
mod chart;
pub mod notify;
mod paging;
mod routes;
pub mod scheduler;
pub mod throttle;
mod ui;
pub mod watch;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ringmaster_core::org::Org;
use ringmaster_core::targeting::Resolution;
use ringmaster_engine::engine::Engine;
use ringmaster_plan::comms::Message;
use ringmaster_plan::planner::Plan;
use ringmaster_store::Store;
use std::sync::Arc;

pub use notify::Channels;
pub use routes::{
    Access, BodyDeadline, Caller, Checked, Credential, Route, SignedIn, allowed, routes,
};
pub use throttle::{Clock, Limiter, Throttle};

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

/// Why a store or engine call failed, as far as a client may know.
pub(crate) enum Failure {
    /// The wave moved between reading and writing (another action came first).
    Stale(u32),
    /// The database is busy: the same request may succeed later.
    Busy,
    /// Anything else: logged, not shown.
    Internal,
}

impl Failure {
    pub(crate) fn of(e: &ringmaster_engine::engine::EngineError) -> Failure {
        use ringmaster_engine::engine::EngineError;
        use ringmaster_store::StoreError;
        match e {
            EngineError::Store(StoreError::Stale { idx, .. }) => Failure::Stale(idx + 1),
            EngineError::Store(s) if s.is_busy() => Failure::Busy,
            _ => Failure::Internal,
        }
    }

    /// The message for a wave changed under a request.
    pub(crate) fn stale(wave: u32) -> String {
        format!(
            "wave {wave} changed while this request was handled (another action came first): nothing was done; reload and try again"
        )
    }
}

/// Seconds a client is told to wait when the database is busy.
pub(crate) const BUSY_RETRY: u64 = 2;

/// One error type for every API route: a status and a message safe to
/// show, and how long to wait when it helps. Internal causes go to the
/// log, not to clients.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(api::ErrorBody {
            error: self.message,
        });
        match self.retry_after {
            Some(s) => (
                self.status,
                [(axum::http::header::RETRY_AFTER, s.to_string())],
                body,
            )
                .into_response(),
            None => (self.status, body).into_response(),
        }
    }
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: String) -> ApiError {
        ApiError {
            status,
            message,
            retry_after: None,
        }
    }

    pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "{what} failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{what} failed"))
    }

    /// A store or engine failure: 409 when a wave changed under the
    /// request, 503 with `Retry-After` when the database is busy, else 500.
    pub(crate) fn store(
        what: &str,
        e: impl Into<ringmaster_engine::engine::EngineError>,
    ) -> ApiError {
        let e = e.into();
        match Failure::of(&e) {
            Failure::Stale(wave) => ApiError::new(StatusCode::CONFLICT, Failure::stale(wave)),
            Failure::Busy => {
                tracing::warn!(error = %e, "{what}: the database is busy");
                ApiError {
                    retry_after: Some(BUSY_RETRY),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("{what}: the database is busy; try again shortly"),
                    )
                }
            }
            Failure::Internal => ApiError::internal(what, e),
        }
    }

    /// The status and the message.
    pub(crate) fn parts(&self) -> (StatusCode, &str) {
        (self.status, &self.message)
    }

    pub(crate) fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// 429: too many failed attempts from this client.
    pub(crate) fn throttled(wait: u64) -> ApiError {
        ApiError {
            retry_after: Some(wait),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed attempts from this address: retry in {wait} s"),
            )
        }
    }
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

/// The router: every route of the table behind its guard, with the
/// security headers and the request log.
pub fn app(state: AppState) -> Router {
    routes::router(&state)
        .layer(axum::middleware::from_fn(headers))
        .layer(axum::middleware::from_fn(log))
        .with_state(state)
}

pub use api::{is_api, openapi};

/// How long a client may take: the bounds that keep half-sent requests
/// from holding connections open.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To send the request line and headers (also: idle between requests).
    pub headers: std::time::Duration,
    /// To send the body, once the headers are in.
    pub body: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            headers: std::time::Duration::from_secs(10),
            body: std::time::Duration::from_secs(60),
        }
    }
}

/// Serves until `shutdown` resolves, with the default [`Timeouts`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, Timeouts::default(), shutdown).await
}

/// Serves until `shutdown` resolves; then stops accepting and lets the
/// requests under way finish.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    timeouts: Timeouts,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let app = app(state);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.headers);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait a little, go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        // The peer's address reaches the guard (failed sign-ins are counted per client).
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req.extensions_mut()
                    .insert(routes::BodyDeadline(timeouts.body));
                tower::ServiceExt::oneshot(app.clone(), req)
            });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmaster_store::StoreError;

    #[test]
    fn store_failures_map_to_what_a_client_can_do() {
        let stale = StoreError::Stale {
            rollout: "r".into(),
            idx: 0,
            expected: 3,
            found: 4,
        };
        let e = ApiError::store("the action", stale);
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert!(e.message.contains("wave 1 changed"), "{}", e.message);
        let e = ApiError::store("the action", StoreError::Db(sqlx::Error::PoolTimedOut));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after, Some(BUSY_RETRY));
        let r = e.into_response();
        assert_eq!(r.headers()["retry-after"], "2");
        let e = ApiError::store("the action", StoreError::Corrupt("x".into()));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains('x'), "causes are not shown");
    }
}
