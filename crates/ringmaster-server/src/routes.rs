//! The route table: every route's method, path, access, body limit and
//! handler in one list. [`crate::app`] builds the router from it alone, and
//! puts each handler behind the guard for that route's access, so a
//! handler cannot be reached without the check, and a route cannot exist
//! without a row here.
//!
//! The guard runs before any extractor: the credential is checked before
//! the body is read and before path parameters are parsed. Then it reads
//! the body itself, within the route's limit and the body deadline.

use crate::{ApiError, AppState, MAX_BODY, MAX_FORM, api, ui};
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use ringmaster_store::{Role, Session, TokenCheck};
use std::net::SocketAddr;
use std::time::Duration;
use utoipa::openapi::path::Paths;
use utoipa::openapi::{RefOr, schema::Schema};

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

impl Access {
    /// The roles that may, for documents.
    pub fn roles(self) -> &'static str {
        match self {
            Access::Open => "anyone",
            Access::SignedIn => "any role",
            Access::Read => "viewer, help-desk, operator, admin",
            Access::Operate | Access::Audit => "operator, admin",
            Access::ReportStatus => "reporter, operator, admin",
            Access::ReportTickets => "help-desk, operator, admin",
            Access::ReportFeedback => "reporter, help-desk, operator, admin",
        }
    }
}

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

/// The credential a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// None (open routes).
    None,
    /// `Authorization: Bearer TOKEN` (`/api`, `/metrics`).
    Token,
    /// The dashboard's session cookie (`/ui`); its forms carry the session's key.
    Session,
}

/// One row of the route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: String,
    pub access: Access,
    /// Largest body read (POST only).
    pub limit: usize,
}

impl Route {
    /// Paths under `/ui` take the session cookie, the rest of a closed
    /// route a bearer token: a cookie never authorizes an API call.
    pub fn credential(&self) -> Credential {
        match self.access {
            Access::Open => Credential::None,
            _ if self.path == "/ui" || self.path.starts_with("/ui/") => Credential::Session,
            _ => Credential::Token,
        }
    }

    /// Whether the route belongs to the JSON API (and its OpenAPI document).
    pub fn is_api(&self) -> bool {
        crate::api::is_api(&self.path)
    }
}

/// What the guard put in the request: the access it checked. The answer
/// carries it too (an extension, never sent), so tests see which row of
/// the table served a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked(pub Access);

/// The named schemas a documented handler refers to.
type Schemas = Vec<(String, RefOr<Schema>)>;

/// A documented API handler (from `utoipa_axum::routes!`).
type Documented = (Schemas, Paths, MethodRouter<AppState>);

/// A row with its handler and, for the API, its OpenAPI part.
pub(crate) struct Entry {
    pub route: Route,
    pub handler: MethodRouter<AppState>,
    pub doc: Option<(Schemas, Paths)>,
}

/// An API row: method and path come from the handler's documentation.
fn api(access: Access, limit: usize, (schemas, paths, handler): Documented) -> Entry {
    use utoipa::openapi::HttpMethod;
    let (path, item) = paths
        .paths
        .iter()
        .next()
        .expect("a documented handler has one path");
    let method = [(HttpMethod::Get, &item.get), (HttpMethod::Post, &item.post)]
        .into_iter()
        .find_map(|(m, op)| op.as_ref().map(|_| m))
        .expect("API handlers are GET or POST");
    let method = match method {
        HttpMethod::Post => Method::POST,
        _ => Method::GET,
    };
    Entry {
        route: Route {
            method,
            path: path.clone(),
            access,
            limit,
        },
        handler,
        doc: Some((schemas, paths)),
    }
}

/// A dashboard, sign-in or static row.
fn page(method: Method, path: &str, access: Access, handler: MethodRouter<AppState>) -> Entry {
    Entry {
        route: Route {
            method,
            path: path.to_string(),
            access,
            limit: MAX_FORM,
        },
        handler,
        doc: None,
    }
}

/// The route table.
pub(crate) fn table() -> Vec<Entry> {
    use Access::*;
    use Method as M;
    use utoipa_axum::routes;
    const SMALL: usize = MAX_FORM;
    vec![
        api(Open, SMALL, routes!(api::healthz)),
        api(Open, SMALL, routes!(api::readyz)),
        api(Read, SMALL, routes!(api::plan)),
        api(Read, SMALL, routes!(api::conflicts)),
        api(Read, SMALL, routes!(api::devices)),
        api(Read, SMALL, routes!(api::device)),
        api(Read, SMALL, routes!(api::group)),
        api(Read, SMALL, routes!(api::communications)),
        api(Read, SMALL, routes!(api::waves)),
        api(Read, SMALL, routes!(api::wave)),
        api(Read, SMALL, routes!(api::history)),
        api(Read, SMALL, routes!(api::runstate)),
        api(Read, SMALL, routes!(api::alerts)),
        api(Operate, SMALL, routes!(api::alert_action)),
        api(Audit, SMALL, routes!(api::audit)),
        api(Audit, SMALL, routes!(api::outbox)),
        api(Operate, SMALL, routes!(api::act)),
        api(Operate, SMALL, routes!(api::release_stratum)),
        api(ReportStatus, MAX_BODY, routes!(api::ingest_status)),
        api(ReportTickets, MAX_BODY, routes!(api::ingest_tickets)),
        api(ReportFeedback, MAX_BODY, routes!(api::ingest_feedback)),
        api(Read, SMALL, routes!(api::openapi_doc)),
        api(Read, SMALL, routes!(api::metrics)),
        page(M::GET, "/", Open, get(ui::root)),
        page(M::GET, "/login", Open, get(ui::login_page)),
        page(M::POST, "/login", Open, post(ui::login)),
        page(M::GET, "/static/{file}", Open, get(ui::static_file)),
        page(
            M::GET,
            "/feedback/{wave}/{key}",
            Open,
            get(ui::feedback_page),
        ),
        page(M::POST, "/feedback/{wave}/{key}", Open, post(ui::feedback)),
        page(M::POST, "/ui/logout", SignedIn, post(ui::logout)),
        page(M::GET, "/ui", Read, get(ui::overview)),
        page(M::GET, "/ui/plan", Read, get(ui::plan)),
        page(M::GET, "/ui/pilot", Read, get(ui::pilot)),
        page(M::GET, "/ui/conflicts", Read, get(ui::conflicts)),
        page(M::GET, "/ui/conflicts/{n}", Read, get(ui::conflict)),
        page(M::GET, "/ui/waves/{wave}", Read, get(ui::wave)),
        page(M::POST, "/ui/waves/{wave}/{action}", Operate, post(ui::act)),
        page(
            M::POST,
            "/ui/waves/{wave}/strata/release",
            Operate,
            post(ui::release_stratum),
        ),
        page(
            M::POST,
            "/ui/alerts/{action}",
            Operate,
            post(ui::alert_action),
        ),
        page(M::GET, "/ui/devices", Read, get(ui::devices)),
        page(M::GET, "/ui/devices/{device}", Read, get(ui::device)),
        page(M::GET, "/ui/helpdesk", Read, get(ui::helpdesk)),
        page(M::GET, "/ui/runstate", Read, get(ui::runstate)),
        page(M::GET, "/ui/audit", Audit, get(ui::audit)),
        page(M::GET, "/ui/notifications", Audit, get(ui::notifications)),
    ]
}

/// Every route: method, path, access, body limit. The router is built
/// from these rows and nothing else.
pub fn routes() -> Vec<Route> {
    table().into_iter().map(|e| e.route).collect()
}

/// The router of the table: each handler behind its guard.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let mut r = Router::new();
    for e in table() {
        let guard = Guard {
            state: state.clone(),
            credential: e.route.credential(),
            access: e.route.access,
            limit: e.route.limit,
        };
        let handler = e
            .handler
            .route_layer(axum::middleware::from_fn_with_state(guard, guarded))
            // The guard reads bodies itself; this bounds any other read.
            .layer(axum::extract::DefaultBodyLimit::max(e.route.limit));
        r = r.route(&e.route.path, handler);
    }
    r
}

#[derive(Clone)]
struct Guard {
    state: AppState,
    credential: Credential,
    access: Access,
    limit: usize,
}

/// How long a client may take to send a request's body once its headers
/// are in; the server's settings put it in each request.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Duration);

/// Used when a request carries no deadline (tests through `oneshot`).
const BODY_DEADLINE: Duration = Duration::from_secs(60);

/// Who a request comes from, for the failed-sign-in throttle: the peer's
/// address (an IPv6 client by its /64, which one host usually holds).
pub(crate) fn client(extensions: &axum::http::Extensions) -> String {
    use std::net::IpAddr;
    match extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    {
        Some(IpAddr::V4(a)) => a.to_string(),
        Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = a.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "local".into(),
    }
}

async fn guarded(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let access = g.access;
    let mut r = match check(&g, req).await {
        Ok(req) => next.run(req).await,
        Err(r) => r,
    };
    r.extensions_mut().insert(Checked(access));
    r
}

/// The credential, then the body: the request to pass on, or the answer.
async fn check(g: &Guard, req: Request) -> Result<Request, Response> {
    // Parts only: the body is not touched until the credential is good.
    let (mut parts, body) = req.into_parts();
    match g.credential {
        Credential::None => {}
        Credential::Token => {
            let caller = token_caller(g, &parts)
                .await
                .map_err(|e| e.into_response())?;
            parts.extensions.insert(caller);
        }
        Credential::Session => {
            let session = ui::session_for(&g.state, &parts, g.access).await?;
            parts.extensions.insert(SignedIn(session));
        }
    }
    if parts.method != Method::POST {
        return Ok(Request::from_parts(parts, body));
    }
    // Read within the limit and the deadline, then hand the bytes on.
    let deadline = parts
        .extensions
        .get::<BodyDeadline>()
        .map_or(BODY_DEADLINE, |d| d.0);
    let read = axum::body::to_bytes(body, g.limit);
    let bytes = match tokio::time::timeout(deadline, read).await {
        Err(_) => return Err(too_slow(&parts)),
        Ok(Err(_)) => return Err(too_large(&parts, g.limit)),
        Ok(Ok(b)) => b,
    };
    if g.credential == Credential::Session && !ui::form_key_matches(&parts, &bytes) {
        return Err(ui::form_expired());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn too_large(parts: &Parts, limit: usize) -> Response {
    let why = format!("the body is larger than {limit} bytes");
    if crate::api::is_api(parts.uri.path()) {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, why).into_response()
    } else {
        ui::message(StatusCode::PAYLOAD_TOO_LARGE, "Too large", &why)
    }
}

fn too_slow(parts: &Parts) -> Response {
    let why = "the body did not arrive in time";
    let mut r = if crate::api::is_api(parts.uri.path()) {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, why.into()).into_response()
    } else {
        ui::message(StatusCode::REQUEST_TIMEOUT, "Too slow", why)
    };
    // The rest of the body is not read: the connection cannot go on.
    r.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    r
}

/// The bearer token of a request, when it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Checks the bearer token against the route's needs. A client that sent
/// too many wrong tokens (or sign-ins) is refused before its token is
/// tried, so the throttle tells nothing about the token.
async fn token_caller(g: &Guard, req: &Parts) -> Result<Caller, ApiError> {
    let s = &g.state;
    let client = client(&req.extensions);
    if let Err(wait) = s.limiter.failures.check(&client) {
        return Err(ApiError::throttled(wait));
    }
    let token = bearer(&req.headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required".into(),
        )
    })?;
    // Expiry is wall-clock time, like sign-ins: tokens are made on it.
    let check = s
        .store
        .check_token(token, jiff::Timestamp::now())
        .await
        .map_err(|e| ApiError::store("checking the token", e))?;
    let (role, label) = match check {
        TokenCheck::Valid { role, label } => (role, label),
        refused => {
            s.limiter.failures.fail(&client);
            let why = match refused {
                TokenCheck::Expired(t) => format!(
                    "the token expired at {t}: make a new one with `ringmaster token create`"
                ),
                TokenCheck::Revoked(t) => format!("the token was revoked at {t}"),
                _ => "unknown token".to_string(),
            };
            tracing::warn!(%client, "API call refused: {why}");
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, why));
        }
    };
    if !allowed(role, g.access) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("the {} role may not do this", role.as_str()),
        ));
    }
    Ok(Caller {
        label,
        key: ringmaster_store::token_hash(token),
    })
}

/// The token holder behind an API request, as the guard checked it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub label: String,
    /// The token's hash: a key for per-token limits that holds no secret.
    pub key: String,
}

/// The dashboard session behind a request, as the guard checked it (and,
/// for a form, its key).
#[derive(Debug, Clone)]
pub struct SignedIn(pub Session);

/// Reached only when a handler asks for a credential its route does not take.
fn unguarded() -> Response {
    tracing::error!("a handler asked for a credential its route does not check");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the route is misconfigured".into(),
    )
    .into_response()
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(unguarded)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SignedIn>()
            .cloned()
            .ok_or_else(unguarded)
    }
}
