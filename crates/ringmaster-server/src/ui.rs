//! The dashboard: server-rendered pages (minijinja, every value escaped),
//! charts as inline SVG, one small script that refreshes the live part of
//! a page. Sign-in turns a token into a session cookie (HttpOnly,
//! SameSite=Strict); every form carries the session's form key. The route
//! guard checks the session and the key before a handler here runs.

use crate::api::{event_of, find_device, run_state, wave_detail};
use crate::paging::{PAGE, pager};
use crate::{Access, ApiError, AppState, Failure, SignedIn, allowed};
use axum::extract::{Form, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use minijinja::{Environment, Value, context};
use ringmaster_core::explain::Status;
use ringmaster_core::wave::{Event, Reason, WaveState, step};
use ringmaster_engine::engine::EngineError;
use ringmaster_plan::report::thousands;
use ringmaster_store::{Feedback, Session};
use std::sync::OnceLock;

const SESSION: &str = "rm_session";
const LOGIN: &str = "rm_login";
/// Hours a dashboard session lasts.
const SESSION_HOURS: u32 = 12;
/// Feedback answers allowed per minute and link.
const ANSWERS_PER_MINUTE: u32 = 120;
const MAX_COMMENT: usize = 2000;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("overview.html", include_str!("../templates/overview.html")),
    ("plan.html", include_str!("../templates/plan.html")),
    ("pilot.html", include_str!("../templates/pilot.html")),
    (
        "conflicts.html",
        include_str!("../templates/conflicts.html"),
    ),
    ("conflict.html", include_str!("../templates/conflict.html")),
    ("wave.html", include_str!("../templates/wave.html")),
    ("devices.html", include_str!("../templates/devices.html")),
    ("device.html", include_str!("../templates/device.html")),
    ("helpdesk.html", include_str!("../templates/helpdesk.html")),
    ("runstate.html", include_str!("../templates/runstate.html")),
    ("audit.html", include_str!("../templates/audit.html")),
    (
        "notifications.html",
        include_str!("../templates/notifications.html"),
    ),
    ("feedback.html", include_str!("../templates/feedback.html")),
    ("pager.html", include_str!("../templates/pager.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut e = Environment::new();
        // Templates are compiled in; a broken one fails the page tests.
        for (name, src) in TEMPLATES {
            if let Err(err) = e.add_template(name, src) {
                tracing::error!(%err, "template {name}");
            }
        }
        e.add_filter("thousands", |n: u64| thousands(n));
        e.add_filter("pct", |v: f64| format!("{:.1} %", v * 100.0));
        e.add_filter("share_bars", |pilot: f64, population: f64| {
            Value::from_safe_string(share_bars(pilot, population))
        });
        // In the plan's time zone (every page's `time_zone`), zone shown,
        // as the plan's own times are.
        e.add_filter("stamp", |state: &minijinja::State<'_, '_>, t: String| {
            let zone = zone_of(
                state
                    .lookup("time_zone")
                    .as_ref()
                    .and_then(|z| z.as_str())
                    .unwrap_or("UTC"),
            );
            t.parse::<jiff::Timestamp>()
                .map(|t| t.to_zoned(zone).strftime("%Y-%m-%d %H:%M %Z").to_string())
                .unwrap_or(t)
        });
        e
    })
}

/// A time zone by name; UTC when the name is unknown.
fn zone_of(name: &str) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(name).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// Whether the rollout runs on a simulated clock, or the page's answer when
/// that cannot be read.
async fn simulated(s: &AppState) -> Result<bool, Response> {
    ringmaster_store::simulated(s.store.as_ref(), &s.rollout)
        .await
        .map_err(|e| internal("reading the rollout's clock", e))
}

/// Two horizontal bars, the pilot's share over the population's, as an
/// inline SVG: sizes are attributes, so the page's CSP (no inline styles)
/// holds, and the text is numbers only, nothing to escape.
fn share_bars(pilot: f64, population: f64) -> String {
    let at = |v: f64| {
        if v.is_finite() {
            v.clamp(0.0, 1.0) * 100.0
        } else {
            0.0
        }
    };
    let (p, q) = (at(pilot), at(population));
    format!(
        "<svg class=\"share-bars\" viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"pilot {p:.1} %, population {q:.1} %\"><rect class=\"pilot\" x=\"0\" y=\"0.5\" height=\"4\" width=\"{p:.2}\"/><rect class=\"population\" x=\"0\" y=\"5.5\" height=\"4\" width=\"{q:.2}\"/></svg>"
    )
}

/// A page, or a plain error page when a template fails (logged).
fn render(name: &str, ctx: Value) -> Response {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(err) => {
            tracing::error!(%err, "rendering {name}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<h1>The page could not be shown</h1><p>The error is in the server log.</p>"),
            )
                .into_response()
        }
    }
}

/// A short page with a heading and a sentence (errors, thanks).
pub(crate) fn message(code: StatusCode, title: &str, text: &str) -> Response {
    let mut r = render("message.html", context! { title, text });
    *r.status_mut() = code;
    r
}

/// A failed store or engine call as a page: 409 when a wave changed
/// under the request, 503 with `Retry-After` when the database is busy,
/// else 500 with the cause in the log only.
fn internal(what: &str, e: impl Into<EngineError>) -> Response {
    let e = e.into();
    match Failure::of(&e) {
        Failure::Stale(wave) => message(StatusCode::CONFLICT, "Not done", &Failure::stale(wave)),
        Failure::Busy => {
            tracing::warn!(error = %e, "{what}: the database is busy");
            let mut r = message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                &format!("{what} could not be done now: the database is busy. Try again shortly."),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(crate::BUSY_RETRY));
            r
        }
        Failure::Internal => {
            tracing::error!(error = %e, "{what} failed");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something failed",
                &format!("{what} failed; the cause is in the server log."),
            )
        }
    }
}

/// An API error shown as a page.
fn failed(e: ApiError) -> Response {
    let (status, text) = e.parts();
    let mut r = message(status, "Not done", text);
    if let Some(wait) = e.retry_after() {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    }
    r
}

/// Equal without telling by timing where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A dashboard cookie: HttpOnly, SameSite=Strict, whole site, and
/// `Secure` when the request reached us over HTTPS (through a proxy).
fn cookie(name: &'static str, value: String, max_age: i64, headers: &HeaderMap) -> Cookie<'static> {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        == Some("https");
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age))
        .secure(https)
        .build()
}

/// Where sign-in may return to: a dashboard path of plain characters
/// (no scheme, no host, no control or space characters), else `/ui`.
fn safe_next(next: Option<&str>) -> &str {
    let ok = |n: &str| {
        let Some(rest) = n.strip_prefix("/ui") else {
            return false;
        };
        (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
            && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
            && !n.contains("//")
            && n.len() <= 1000
    };
    match next {
        Some(n) if ok(n) => n,
        _ => "/ui",
    }
}

/// A 303 to a path built here (always a valid header value).
fn see_other(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => Redirect::to("/ui").into_response(),
    }
}

/// The signed-in user behind a dashboard request, if allowed `access`:
/// else the sign-in page (no or an expired session), or 403 outside the
/// role. The guard calls it before anything else of the request is read.
pub(crate) async fn session_for(
    s: &AppState,
    req: &Parts,
    access: Access,
) -> Result<Session, Response> {
    let jar = CookieJar::from_headers(&req.headers);
    let session = match jar.get(SESSION) {
        Some(c) => s
            .store
            .check_session(c.value(), jiff::Timestamp::now())
            .await
            .map_err(|e| internal("checking the session", e))?,
        None => None,
    };
    let Some(session) = session else {
        // Back to the page after signing in; after a form, to the overview.
        let back = match (&req.method, req.uri.path_and_query()) {
            (&Method::GET, Some(pq)) => pq.as_str(),
            _ => "/ui",
        };
        return Err(see_other(&format!("/login?next={}", url_escape(back))));
    };
    if !allowed(session.role, access) {
        return Err(message(
            StatusCode::FORBIDDEN,
            "Not for your role",
            &format!("The {} role may not open this page.", session.role.as_str()),
        ));
    }
    Ok(session)
}

/// Whether a dashboard form carries its session's key (the guard asks,
/// once the body is read): a form posted from elsewhere cannot know it.
pub(crate) fn form_key_matches(parts: &Parts, body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Key {
        /// Missing counts as wrong (403), not as a malformed form.
        #[serde(default)]
        csrf: String,
    }
    let key = serde_urlencoded::from_bytes::<Key>(body).map_or(String::new(), |k| k.csrf);
    parts
        .extensions
        .get::<SignedIn>()
        .is_some_and(|s| same(&s.0.csrf, &key))
}

/// The answer to a form without its session's key.
pub(crate) fn form_expired() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form does not belong to your session. Reload the page and try again.",
    )
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What every dashboard page gets: who is signed in, the form key, the rollout.
fn base(s: &AppState, session: &Session, active: &str) -> Value {
    context! {
        active,
        user => context! { label => session.label, role => session.role.as_str() },
        csrf => session.csrf,
        can_operate => allowed(session.role, Access::Operate),
        can_audit => allowed(session.role, Access::Audit),
        rollout => { let v = s.view(); context! { id => s.rollout, name => v.plan.name, purpose => v.plan.purpose } },
        time_zone => s.view().plan.time_zone.clone(),
        now => (s.clock)().to_string(),
        version => s.engine.version(),
    }
}

fn page(s: &AppState, session: &Session, active: &str, name: &str, more: Value) -> Response {
    render(name, context! { ..base(s, session, active), ..more })
}

pub(crate) async fn root() -> Redirect {
    Redirect::to("/ui")
}

pub(crate) async fn static_file(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (include_str!("../static/app.css"), "text/css; charset=utf-8"),
        "live.js" => (
            include_str!("../static/live.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

/// How long a sign-in form's key is accepted.
const LOGIN_KEY_SECONDS: i64 = 600;

/// The sign-in form's key for a nonce issued at `issued` (Unix seconds):
/// `issued.nonce.mac`, the MAC under the rollout's server-side key. Only a
/// key this server (or another of the rollout's servers) issued verifies.
fn login_key(s: &AppState, issued: i64, nonce: &str) -> String {
    use hmac::{Mac, SimpleHmac};
    let Ok(mut mac) = SimpleHmac::<sha2::Sha256>::new_from_slice(&s.link_key) else {
        return String::new();
    };
    mac.update(format!("sign-in:{}:{issued}.{nonce}", s.rollout).as_bytes());
    let tag: String = mac.finalize().into_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{issued}.{nonce}.{tag}")
}

/// Whether a sign-in form's key was issued here within the last ten minutes.
fn valid_login_key(s: &AppState, key: &str, now: jiff::Timestamp) -> bool {
    let mut parts = key.splitn(3, '.');
    let (Some(issued), Some(nonce)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(issued) = issued.parse::<i64>() else {
        return false;
    };
    // A minute of clock difference between a rollout's servers is allowed.
    let age = now.as_second() - issued;
    (-60..=LOGIN_KEY_SECONDS).contains(&age) && same(&login_key(s, issued, nonce), key)
}

/// The sign-in page with a freshly issued form key, also set as a cookie
/// (double submit: a form posted from another site has neither).
fn login_form(s: &AppState, headers: &HeaderMap, next: &str, error: &str) -> Response {
    let key = login_key(s, jiff::Timestamp::now().as_second(), &fresh());
    let jar = CookieJar::new().add(cookie(LOGIN, key.clone(), LOGIN_KEY_SECONDS, headers));
    (
        jar,
        render("login.html", context! { csrf => key, next, error }),
    )
        .into_response()
}

pub(crate) async fn login_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    login_form(&s, &headers, safe_next(q.next.as_deref()), "")
}

fn fresh() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// Signs in. Nothing is written before the form is checked: its return
/// path, its key, and whether this client has failed too often.
pub(crate) async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    ext: axum::http::Extensions,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref()).to_string();
    let now = jiff::Timestamp::now();
    let issued = jar.get(LOGIN).map(|c| c.value().to_string());
    if !issued.is_some_and(|k| same(&k, &f.csrf) && valid_login_key(&s, &k, now)) {
        return message(
            StatusCode::FORBIDDEN,
            "Sign-in form expired",
            "The form was not the one this server gave out, or it is older than ten minutes. Open the sign-in page again.",
        );
    }
    let client = crate::routes::client(&ext);
    if let Err(wait) = s.limiter.failures.check(&client) {
        let mut r = message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-ins",
            &format!(
                "Too many failed attempts from your address. Wait {wait} seconds and try again."
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return r;
    }
    let made = match s
        .store
        .create_session(f.token.trim(), SESSION_HOURS, now)
        .await
    {
        Ok(m) => m,
        Err(e) => return internal("signing in", e),
    };
    let Some((id, session)) = made else {
        s.limiter.failures.fail(&client);
        // Who tried is all that is kept: never what they typed.
        let refused = ringmaster_store::AuditEntry {
            at: now,
            actor: format!("client {client}"),
            // The service's entry, on the real clock (as sessions are),
            // even when the rollout's own clock is simulated.
            rollout: String::new(),
            action: "sign in refused".into(),
            detail: "dashboard, unknown, expired or revoked token".into(),
        };
        if let Err(e) = s.store.audit(&refused).await {
            tracing::error!(error = %e, "auditing a refused sign-in failed");
        }
        let mut r = login_form(
            &s,
            &headers,
            &next,
            "That token is unknown, expired or revoked.",
        );
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    };
    let _ = s
        .store
        .audit(&ringmaster_store::AuditEntry {
            at: now,
            actor: session.label.clone(),
            rollout: String::new(),
            action: "sign in".into(),
            detail: format!("dashboard, {} role", session.role.as_str()),
        })
        .await;
    let jar = jar
        .add(cookie(
            SESSION,
            id,
            i64::from(SESSION_HOURS) * 3600,
            &headers,
        ))
        .add(cookie(LOGIN, String::new(), 0, &headers));
    (jar, see_other(&next)).into_response()
}

pub(crate) async fn logout(
    State(s): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    _: SignedIn,
) -> Response {
    if let Some(c) = jar.get(SESSION)
        && let Err(e) = s.store.end_session(c.value()).await
    {
        return internal("signing out", e);
    }
    let jar = jar.add(cookie(SESSION, String::new(), 0, &headers));
    (jar, see_other("/login")).into_response()
}

/// The waves with their counts and latest gate outcome, for the overview.
async fn wave_rows(s: &AppState) -> Result<Vec<Value>, Response> {
    let rows = s
        .engine
        .rows()
        .await
        .map_err(|e| internal("reading waves", e))?;
    let mut out = Vec::new();
    for r in &rows {
        let f = ringmaster_engine::figures::wave_figures(s.store.as_ref(), r)
            .await
            .map_err(|e| internal("reading counts", e))?;
        // The last gate round of the wave, in words.
        let latest: Vec<Value> = s
            .store
            .gate_rounds(&r.key)
            .await
            .map_err(|e| internal("reading gates", e))?
            .pop()
            .map(|round| round.results)
            .unwrap_or_default()
            .iter()
            .map(|g| gate_line(g, r.state.is_final()))
            .collect();
        let goals = s
            .engine
            .waves()
            .get(r.key.idx as usize)
            .map_or(0, |w| w.goals.len());
        let view = s.view();
        let planned = view.plan.waves.get(r.key.idx as usize);
        out.push(context! {
            n => r.key.idx + 1,
            name => r.name,
            phase => ringmaster_plan::spec::PhaseKind::label_of_stored(&r.phase),
            state => r.state.name(),
            final_ => r.state.is_final(),
            devices => r.members.len(),
            figures => f,
            gate => latest,
            goals,
            start => planned.map(|w| w.start.strftime("%Y-%m-%d %H:%M %Z").to_string()),
            end => planned.map(|w| w.end.strftime("%Y-%m-%d %H:%M %Z").to_string()),
        });
    }
    Ok(out)
}

/// One result of a gate round for the overview, in words: a wave judged
/// on bake time alone says it has no goals, a goal without enough reports
/// says it has no data yet (or, the wave decided, that it did not wait for
/// a goal that is not critical); `outcome` stays the serialised name (a style).
fn gate_line(r: &ringmaster_core::gates::GateResult, decided: bool) -> Value {
    use ringmaster_core::gates::{GateResult, Outcome};
    let (label, sentence) = match r {
        GateResult::BakeTime { outcome } => (
            if *outcome == Outcome::Pass {
                "no goals, baked"
            } else {
                "no goals, still baking"
            },
            "the wave is judged on bake time alone",
        ),
        GateResult::Goal { evaluation: e, .. } => (
            match e.outcome {
                Outcome::NoData if decided && !e.critical => {
                    "no data (not critical: the wave did not wait for it)"
                }
                Outcome::NoData if decided => "no data",
                Outcome::NoData => "no data yet",
                o => o.as_str(),
            },
            e.sentence.as_str(),
        ),
    };
    context! { outcome => r.outcome().name(), label, sentence }
}

/// What each wave of plan `version` did, from its transitions: one stretch
/// per state it was in (running, waiting or failed), the last one up to `now`.
fn actual_bars(
    history: &[ringmaster_store::Recorded],
    version: u32,
    now: jiff::Timestamp,
) -> Vec<ringmaster_plan::report::Actual> {
    use ringmaster_plan::report::{Actual, ActualKind};
    let mut out = Vec::new();
    let mine: Vec<&ringmaster_store::Recorded> = history
        .iter()
        .filter(|r| r.key.version == version)
        .collect();
    for (i, r) in mine.iter().enumerate() {
        let kind = match r.to {
            WaveState::Applying | WaveState::Baking => ActualKind::Running,
            WaveState::AwaitingApproval | WaveState::Paused { .. } => ActualKind::Waiting,
            WaveState::Failed | WaveState::RollingBack => ActualKind::Failed,
            _ => continue,
        };
        let next = mine[i + 1..].iter().find(|n| n.key.idx == r.key.idx);
        let to = next.map_or(now, |n| n.at).max(r.at);
        let days = (to.as_second() - r.at.as_second()) as f64 / 86_400.0;
        let state = match r.to {
            WaveState::Paused { reasons, .. } => {
                let why: Vec<&str> = reasons.iter().map(|x| x.as_str()).collect();
                format!("paused ({})", why.join(", "))
            }
            st => st.name().to_string(),
        };
        out.push(Actual {
            wave: r.key.idx as usize,
            from: r.at,
            to,
            kind,
            note: format!(
                "{state} for {days:.1} d{}",
                if next.is_none() { ", so far" } else { "" }
            ),
        });
    }
    out
}

pub(crate) async fn overview(State(s): State<AppState>, SignedIn(session): SignedIn) -> Response {
    let waves = match wave_rows(&s).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let now = (s.clock)();
    let view = s.view();
    let tz = zone_of(&view.plan.time_zone);
    let today = now.to_zoned(tz).date();
    let history = match s.store.history(&s.rollout).await {
        Ok(h) => h,
        Err(e) => return internal("reading the history", e),
    };
    let simulated = match simulated(&s).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let actual = actual_bars(&history, s.engine.version(), now);
    let gantt =
        ringmaster_plan::report::gantt_with_actual(&view.plan, Some(today), &actual, Some(now));
    let current = waves
        .iter()
        .find(|w| !w.get_attr("final_").map(|v| v.is_true()).unwrap_or(true))
        .cloned();
    page(
        &s,
        &session,
        "overview",
        "overview.html",
        context! { waves, current, gantt, live => true, scope => view.plan.scope, simulated },
    )
}

pub(crate) async fn plan(State(s): State<AppState>, SignedIn(session): SignedIn) -> Response {
    let p = &s.view().plan;
    let phases: Vec<Value> = p
        .phases
        .iter()
        .map(|ph| {
            context! {
                name => ph.name, label => ph.label,
                start => ph.start.strftime("%Y-%m-%d %H:%M %Z").to_string(),
                end => ph.end.as_ref().map(|e| e.strftime("%Y-%m-%d %H:%M %Z").to_string()),
                goals => ph.goal_sentences, approval => ph.approval, promotion => ph.promotion,
                waves => ph.waves.iter().map(|&w| Value::from_serialize(wave_plan(&p.waves[w], w))).collect::<Vec<_>>(),
            }
        })
        .collect();
    page(
        &s,
        &session,
        "plan",
        "plan.html",
        context! { plan => Value::from_serialize(p), phases },
    )
}

fn wave_plan(w: &ringmaster_plan::planner::WavePlan, i: usize) -> serde_json::Value {
    serde_json::json!({
        "n": i + 1, "name": w.name, "mode": w.mode, "groups": w.groups, "devices": w.devices,
        "share": w.share_of_scope,
        "start": w.start.strftime("%Y-%m-%d %H:%M %Z").to_string(),
        "end": w.end.strftime("%Y-%m-%d %H:%M %Z").to_string(),
        "apply_days": w.apply_days.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "bake_hours": w.bake_hours, "expected_tickets": w.expected_tickets, "approval": w.approval,
        "time_zone": w.time_zone,
    })
}

pub(crate) async fn pilot(State(s): State<AppState>, SignedIn(session): SignedIn) -> Response {
    page(
        &s,
        &session,
        "pilot",
        "pilot.html",
        context! { pilot => Value::from_serialize(&s.view().plan.pilot) },
    )
}

pub(crate) async fn conflicts(State(s): State<AppState>, SignedIn(session): SignedIn) -> Response {
    let report = &s.view().plan.conflicts;
    page(
        &s,
        &session,
        "conflicts",
        "conflicts.html",
        context! { report => Value::from_serialize(report), blocking => report.blocking() },
    )
}

/// Devices listed on a drill-down page at most.
const MAX_LISTED: usize = 500;

pub(crate) async fn conflict(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(n): Path<usize>,
) -> Response {
    let view = s.view();
    let Some(f) = n
        .checked_sub(1)
        .and_then(|i| view.plan.conflicts.findings.get(i))
    else {
        return message(
            StatusCode::NOT_FOUND,
            "No such conflict",
            &format!("There is no conflict {n}."),
        );
    };
    let org = &s.view().org;
    let devices: Vec<Value> = f
        .affected
        .iter()
        .take(MAX_LISTED)
        .map(|d| {
            context! {
                key => org.device_id(d).unwrap_or_default(),
                label => org.device_label(d),
                platform => org.device_platform(d).map(|p| p.as_str()),
            }
        })
        .collect();
    page(
        &s,
        &session,
        "conflicts",
        "conflict.html",
        context! { n, f => Value::from_serialize(f), devices, more => (f.affected.len() as usize).saturating_sub(MAX_LISTED) },
    )
}

/// The actions an operator can take on a wave in its state, per the wave's rules.
fn actions(state: WaveState, rules: &ringmaster_core::wave::Rules) -> Vec<&'static str> {
    [
        "approve", "promote", "pause", "resume", "rollback", "retry", "abort",
    ]
    .into_iter()
    .filter(|a| {
        event_of(a).is_some_and(|e| {
            // An operator's resume only lifts a manual pause.
            let e = match e {
                Event::Resume(_) => Event::Resume(Reason::Manual),
                e => e,
            };
            step(state, &e, rules).is_ok()
        })
    })
    .collect()
}

pub(crate) async fn wave(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(n): Path<u32>,
    Query(q): Query<WaveItems>,
) -> Response {
    // A page of tickets (and of feedback, read again below when it is
    // paged apart), newest first.
    let window = crate::paging::Window {
        offset: Some(q.tickets),
        limit: Some(PAGE),
    };
    let mut detail = match wave_detail(&s, n, window).await {
        Ok(Some(d)) => serde_json::to_value(d).unwrap_or_default(),
        Ok(None) => {
            return message(
                StatusCode::NOT_FOUND,
                "No such wave",
                &format!("The plan has no wave {n}."),
            );
        }
        Err(e) => return failed(e),
    };
    let idx = (n - 1) as usize;
    if q.feedback != q.tickets {
        let at = u32::try_from(q.feedback).unwrap_or(u32::MAX);
        match s
            .store
            .wave_items(&s.rollout, idx as u32, at, PAGE as u32)
            .await
        {
            Ok((_, answers)) => {
                detail["feedback"] = serde_json::to_value(answers).unwrap_or_default()
            }
            Err(e) => return internal("reading feedback", e),
        }
    }
    let total = |k: &str| detail["figures"][k].as_u64().unwrap_or(0) as usize;
    let shown = |k: &str| detail[k].as_array().map_or(0, Vec::len);
    let path = format!("/ui/waves/{n}");
    // Each list's links keep the other list where it stands.
    let (tickets_at, feedback_at) = (q.tickets.to_string(), q.feedback.to_string());
    let kept_feedback: Vec<(&str, &str)> = if q.feedback > 0 {
        vec![("feedback", feedback_at.as_str())]
    } else {
        Vec::new()
    };
    let kept_tickets: Vec<(&str, &str)> = if q.tickets > 0 {
        vec![("tickets", tickets_at.as_str())]
    } else {
        Vec::new()
    };
    let pages = context! {
        tickets => pager(&path, &kept_feedback, "tickets", q.tickets, shown("tickets"), total("tickets")),
        feedback => pager(&path, &kept_tickets, "feedback", q.feedback, shown("feedback"), total("feedback_answers")),
    };
    let spec = &s.engine.waves()[idx];
    let rows = match s.engine.rows().await {
        Ok(r) => r,
        Err(e) => return internal("reading waves", e),
    };
    let state = rows[idx].state;
    let series: Vec<(jiff::Timestamp, ringmaster_store::StateCounts)> =
        serde_json::from_value(serde_json::Value::Array(
            detail["series"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| serde_json::json!([p["at"], p["counts"]]))
                        .collect()
                })
                .unwrap_or_default(),
        ))
        .unwrap_or_default();
    let zone = zone_of(&s.view().plan.time_zone);
    let chart = crate::chart::wave_states(&series, spec.members.len(), &zone);
    // Gate rounds, newest first, at most 20.
    let mut rounds: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
    for e in detail["evaluations"].as_array().into_iter().flatten() {
        let at = e["at"].as_str().unwrap_or_default().to_string();
        match rounds.last_mut() {
            Some((t, v)) if *t == at => v.push(e["evaluation"].clone()),
            _ => rounds.push((at, vec![e["evaluation"].clone()])),
        }
    }
    rounds.reverse();
    rounds.truncate(20);
    let link = crate::notify::feedback_path(&s, n);
    let simulated = match simulated(&s).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    page(
        &s,
        &session,
        "overview",
        "wave.html",
        context! {
            w => Value::from_serialize(&detail), n, chart, rounds, live => true, simulated, pages,
            actions => if allowed(session.role, Access::Operate) { actions(state, &spec.rules) } else { vec![] },
            feedback_link => link,
            reasons => match state { WaveState::Paused { reasons, .. } => reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(), _ => vec![] },
        },
    )
}

pub(crate) async fn act(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path((wave, action)): Path<(u32, String)>,
) -> Response {
    let path = format!("/ui/waves/{wave}");
    let Some(event) = event_of(&action) else {
        return message(
            StatusCode::NOT_FOUND,
            "Unknown action",
            "Actions are approve, promote, pause, resume, abort, rollback and retry.",
        );
    };
    if event == ringmaster_core::wave::Event::Approve {
        // A kept approval that does not open the wave yet shows on the
        // wave page, which says what is still missing.
        return match crate::api::approve(&s, wave, &session.label, (s.clock)()).await {
            Ok(_) => Redirect::to(&path).into_response(),
            Err(e) => failed(e),
        };
    }
    match s
        .engine
        .operate(wave, event, &session.label, (s.clock)())
        .await
    {
        Ok(Ok(_)) => Redirect::to(&path).into_response(),
        Ok(Err(why)) => message(StatusCode::CONFLICT, "Not done", &why),
        Err(e) => internal("the action", e),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct ReleaseForm {
    #[serde(default)]
    stratum: String,
}

/// Releases a held stratum from the wave page.
pub(crate) async fn release_stratum(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(wave): Path<u32>,
    Form(f): Form<ReleaseForm>,
) -> Response {
    match crate::api::release(&s, wave, &f.stratum, &session.label).await {
        Ok(_) => Redirect::to(&format!("/ui/waves/{wave}")).into_response(),
        Err(e) => failed(e),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct AlertForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    note: String,
}

pub(crate) async fn alert_action(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(action): Path<String>,
    Form(f): Form<AlertForm>,
) -> Response {
    let path = "/ui/runstate";
    match crate::api::mark_alert(&s, &action, &f.key, &f.note, &session.label).await {
        Ok(_) => Redirect::to(path).into_response(),
        Err(e) => failed(e),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct Search {
    q: Option<String>,
    #[serde(default)]
    offset: usize,
}

/// Where a list page starts: `?offset=N`.
#[derive(serde::Deserialize)]
pub(crate) struct Offset {
    #[serde(default)]
    offset: usize,
}

/// Where the wave page's tickets and feedback lists stand.
#[derive(serde::Deserialize)]
pub(crate) struct WaveItems {
    #[serde(default)]
    tickets: usize,
    #[serde(default)]
    feedback: usize,
}

pub(crate) async fn devices(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Query(q): Query<Search>,
) -> Response {
    let needle: String = q.q.unwrap_or_default().trim().chars().take(200).collect();
    let found = crate::api::search_devices(&s.view(), &needle, q.offset, PAGE);
    let pager = pager(
        "/ui/devices",
        &[("q", &needle)],
        "offset",
        q.offset,
        found.devices.len(),
        found.total as usize,
    );
    page(
        &s,
        &session,
        "devices",
        "devices.html",
        context! { q => needle, total => found.total, found => found.devices, pages => pager },
    )
}

pub(crate) async fn device(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Path(key): Path<String>,
) -> Response {
    // One view for the whole page: a reload may swap it meanwhile.
    let v = s.view();
    let row = match find_device(&v, &key) {
        Ok(r) => r,
        Err((code, why)) => return message(code, "Device not found", &why),
    };
    let mut e = ringmaster_core::explain::explain_device(&v.org, &v.res, row, None, (s.clock)());
    let traces: Vec<Vec<Option<String>>> = e
        .policies
        .iter()
        .map(|p| {
            p.assignments
                .iter()
                .map(|a| {
                    a.filter
                        .as_ref()
                        .and_then(|f| f.trace.as_ref())
                        .map(ringmaster_core::explain::describe_trace)
                })
                .collect()
        })
        .collect();
    let rows = match s.engine.rows().await {
        Ok(r) => r,
        Err(e) => return internal("reading waves", e),
    };
    let at = v.plan.waves.iter().position(|w| w.set.contains(row));
    let state = at.and_then(|i| rows.get(i)).map(|r| r.state);
    let wave = at.map(|i| {
        context! { n => i + 1, name => v.plan.waves[i].name, state => state.map(|s| s.name()) }
    });
    // The rollout's new policies reach the device through its wave's
    // assignment, which the imported org does not hold: say so instead of
    // "not targeted" once the wave has assigned them.
    let assigned = state.is_some_and(|s| s.wants_assignment());
    let rollout_policy = |id: &str| v.plan.scope.new_policies.iter().any(|p| p.id == id);
    let statuses: Vec<String> = e
        .policies
        .iter_mut()
        .map(|p| {
            if assigned && rollout_policy(&p.policy_id) && p.status == Status::NotTargeted {
                let n = at.map_or(0, |i| i + 1);
                p.reason = format!(
                    "this rollout assigns it to the devices of wave {n} ({})",
                    state.map_or("", |s| s.name())
                );
                format!("Assigned by wave {n}")
            } else {
                p.status.label().to_string()
            }
        })
        .collect();
    let mut summary: Vec<(String, usize)> = Vec::new();
    for st in &statuses {
        match summary.iter_mut().find(|(l, _)| l == st) {
            Some((_, n)) => *n += 1,
            None => summary.push((st.clone(), 1)),
        }
    }
    page(
        &s,
        &session,
        "devices",
        "device.html",
        context! {
            e => Value::from_serialize(&e), label => v.org.device_label(row), traces, wave,
            statuses, summary,
        },
    )
}

pub(crate) async fn helpdesk(State(s): State<AppState>, SignedIn(session): SignedIn) -> Response {
    let p = &s.view().plan;
    let now = (s.clock)();
    let rows = match s.engine.rows().await {
        Ok(r) => r,
        Err(e) => return internal("reading waves", e),
    };
    let mut today = Vec::new();
    let mut coming = Vec::new();
    for (i, w) in p.waves.iter().enumerate() {
        let state = rows.get(i).map(|r| r.state);
        let running = matches!(
            state,
            Some(WaveState::Applying | WaveState::Baking | WaveState::Paused { .. })
        );
        let v = context! {
            n => i + 1, name => w.name, groups => w.groups, devices => w.devices,
            start => w.start.strftime("%a %Y-%m-%d %H:%M %Z").to_string(),
            end => w.end.strftime("%a %Y-%m-%d %H:%M %Z").to_string(),
            expected_tickets => w.expected_tickets.round() as u64,
            state => state.map(|s| s.name()),
        };
        if running {
            today.push(v);
        } else if w.start.timestamp() > now && state.is_none_or(|s| !s.is_final()) {
            coming.push(v);
        }
    }
    coming.truncate(5);
    // Known issues: what the pilot waves' tickets, low scores and failing gates said.
    let mut issues: Vec<Value> = Vec::new();
    for (i, w) in p.waves.iter().enumerate() {
        if w.phase != ringmaster_plan::spec::PhaseKind::Pilot {
            continue;
        }
        let Some(r) = rows.get(i) else { continue };
        let (tickets, answers) = match s.store.wave_items(&s.rollout, i as u32, 0, 200).await {
            Ok(x) => x,
            Err(e) => return internal("reading tickets", e),
        };
        let mut by_category: std::collections::BTreeMap<String, (u64, String)> = Default::default();
        for t in &tickets {
            let c = t.category.clone().unwrap_or_else(|| "uncategorised".into());
            let e = by_category.entry(c).or_insert((0, t.text.clone()));
            e.0 += 1;
        }
        for (category, (count, example)) in by_category {
            issues.push(
                context! { wave => w.name, kind => "tickets", what => category, count, example },
            );
        }
        // Low scores alike are one row with their count, not one row each.
        let mut low: Vec<(u8, String, u64)> = Vec::new();
        for a in answers.iter().filter(|a| a.score <= 2) {
            let comment = a.comment.clone();
            match low
                .iter_mut()
                .find(|(s, c, _)| *s == a.score && *c == comment)
            {
                Some((_, _, n)) => *n += 1,
                None => low.push((a.score, comment, 1)),
            }
        }
        low.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        for (score, comment, count) in low.into_iter().take(10) {
            issues.push(context! { wave => w.name, kind => "feedback", what => format!("score {score}"), count, example => comment });
        }
        let rounds = match s.store.gate_rounds(&r.key).await {
            Ok(e) => e,
            Err(e) => return internal("reading gates", e),
        };
        for e in rounds
            .last()
            .into_iter()
            .flat_map(|round| &round.results)
            .filter(|e| e.outcome() == ringmaster_core::gates::Outcome::Fail)
        {
            issues.push(context! { wave => w.name, kind => "gate", what => "failing goal", count => 1, example => e.sentence() });
        }
    }
    let briefings: Vec<Value> = s
        .view()
        .messages
        .iter()
        .filter(|m| m.audience == ringmaster_plan::comms::Audience::HelpDesk)
        .map(|m| context! { subject => m.subject, html => Value::from_safe_string(m.html.clone()) })
        .collect();
    page(
        &s,
        &session,
        "helpdesk",
        "helpdesk.html",
        context! {
            changes => Value::from_serialize(&p.changes), help => Value::from_serialize(&p.help_desk),
            today, coming, issues, briefings, live => true,
        },
    )
}

/// Where each of the run state's lists starts.
#[derive(serde::Deserialize)]
pub(crate) struct RunPages {
    #[serde(default)]
    regressed: usize,
    #[serde(default)]
    overdue: usize,
    #[serde(default)]
    resolved: usize,
}

pub(crate) async fn runstate(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Query(at): Query<RunPages>,
) -> Response {
    let view = s.view();
    let r = match run_state(&s, &view).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let alerts = match s.store.alerts(&s.rollout, false).await {
        Ok(a) => a,
        Err(e) => return internal("reading alerts", e),
    };
    let simulated = match simulated(&s).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let show = |a: &ringmaster_core::alerts::Alert| {
        let at = |t: Option<i64>| {
            t.and_then(|t| jiff::Timestamp::from_second(t).ok())
                .map(|t| t.to_string())
        };
        context! {
            key => a.key, kind => a.kind, severity => a.severity.name(), text => a.text,
            raised_at => at(a.raised_at), resolved_at => at(a.resolved_at),
            acknowledged_by => a.acknowledged.as_ref().map(|(w, _)| w.clone()),
        }
    };
    let open: Vec<Value> = alerts
        .iter()
        .filter(|a| a.raised_at.is_some() && a.resolved_at.is_none())
        .map(show)
        .collect();
    let mut resolved: Vec<Value> = alerts
        .iter()
        .filter(|a| a.raised_at.is_some() && a.resolved_at.is_some())
        .map(show)
        .collect();
    resolved.reverse();
    // Each list a page at a time; a list's links keep the others' places.
    let keep = |skip: &str| -> Vec<(&'static str, String)> {
        [
            ("regressed", at.regressed),
            ("overdue", at.overdue),
            ("resolved", at.resolved),
        ]
        .into_iter()
        .filter(|(k, v)| *k != skip && *v > 0)
        .map(|(k, v)| (k, v.to_string()))
        .collect()
    };
    let list_pager = |name: &str, offset: usize, total: usize| {
        let kept = keep(name);
        let kept: Vec<(&str, &str)> = kept.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let shown = total.saturating_sub(offset).min(PAGE);
        pager("/ui/runstate", &kept, name, offset, shown, total)
    };
    let pages = context! {
        regressed => list_pager("regressed", at.regressed, r.regressed.len()),
        overdue => list_pager("overdue", at.overdue, r.overdue.len()),
        resolved => list_pager("resolved", at.resolved, resolved.len()),
    };
    let regressed: Vec<_> = r.regressed.iter().skip(at.regressed).take(PAGE).collect();
    let overdue: Vec<_> = r.overdue.iter().skip(at.overdue).take(PAGE).collect();
    let resolved: Vec<Value> = resolved.into_iter().skip(at.resolved).take(PAGE).collect();
    // Service levels over the last 30 days, from the sample of each check.
    let since = (s.clock)() - jiff::SignedDuration::from_hours(24 * 30);
    let samples = s
        .store
        .runstate_samples(&s.rollout, since)
        .await
        .unwrap_or_default();
    let mut devices = 0;
    let series: Vec<(jiff::Timestamp, ringmaster_store::StateCounts)> = samples
        .iter()
        .filter_map(|(t, body)| {
            let v: serde_json::Value = serde_json::from_str(body).ok()?;
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            devices = n("devices");
            Some((
                *t,
                ringmaster_store::StateCounts {
                    succeeded: n("succeeded"),
                    error: n("errors"),
                    conflict: n("conflicts"),
                    pending: n("pending"),
                    ..Default::default()
                },
            ))
        })
        .collect();
    let zone = zone_of(&s.view().plan.time_zone);
    let chart = crate::chart::wave_states(&series, devices, &zone);
    // The title says what the chart covers, not the 30 days it could.
    let span = match (series.first(), series.last()) {
        (Some((a, _)), Some((b, _))) => {
            let days = (b.as_second() - a.as_second()) as f64 / 86_400.0;
            Some(
                context! { from => a.to_string(), to => b.to_string(), days => format!("{days:.1}") },
            )
        }
        _ => None,
    };
    let rules: Vec<String> = view.plan.alerts.iter().map(|r| r.sentence()).collect();
    page(
        &s,
        &session,
        "runstate",
        "runstate.html",
        context! {
            r => Value::from_serialize(&r), live => true, open, resolved, rules, span,
            chart => Value::from_safe_string(chart), pages, simulated,
            regressed => Value::from_serialize(&regressed), overdue => Value::from_serialize(&overdue),
        },
    )
}

pub(crate) async fn audit(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Query(q): Query<Offset>,
) -> Response {
    // Newest first, a page at a time.
    let (log, total) = match s
        .store
        .audit_page(&s.rollout, true, q.offset as u64, PAGE as u64)
        .await
    {
        Ok(l) => l,
        Err(e) => return internal("reading the audit log", e),
    };
    let total = total as usize;
    let simulated = match simulated(&s).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let pager = pager("/ui/audit", &[], "offset", q.offset, log.len(), total);
    page(
        &s,
        &session,
        "audit",
        "audit.html",
        context! { log => Value::from_serialize(&log), pages => pager, simulated },
    )
}

pub(crate) async fn notifications(
    State(s): State<AppState>,
    SignedIn(session): SignedIn,
    Query(q): Query<Offset>,
) -> Response {
    let (items, total) = match s
        .store
        .outbox_page(&s.rollout, q.offset as u64, PAGE as u64)
        .await
    {
        Ok(i) => i,
        Err(e) => return internal("reading the outbox", e),
    };
    let total = total as usize;
    let pager = pager(
        "/ui/notifications",
        &[],
        "offset",
        q.offset,
        items.len(),
        total,
    );
    let routes: Vec<String> = s.channels.describe();
    page(
        &s,
        &session,
        "notifications",
        "notifications.html",
        context! { items => Value::from_serialize(&items), routes, live => true, pages => pager },
    )
}

/// The wave a feedback link is for, when its key is right.
fn feedback_wave(s: &AppState, wave: u32, key: &str) -> Option<usize> {
    let expected = crate::notify::feedback_key(s, wave);
    let i = wave.checked_sub(1)? as usize;
    (i < s.engine.waves().len() && same(&expected, key)).then_some(i)
}

fn bad_link() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "This feedback link is not valid. Use the link from your pilot message.",
    )
}

pub(crate) async fn feedback_page(
    State(s): State<AppState>,
    Path((wave, key)): Path<(u32, String)>,
) -> Response {
    let Some(idx) = feedback_wave(&s, wave, &key) else {
        return bad_link();
    };
    render(
        "feedback.html",
        context! {
            rollout => s.view().plan.name, wave => s.engine.waves()[idx].name,
            action => format!("/feedback/{wave}/{key}"), error => "", max => MAX_COMMENT,
        },
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct Answer {
    #[serde(default)]
    device: String,
    #[serde(default)]
    score: String,
    #[serde(default)]
    comment: String,
}

pub(crate) async fn feedback(
    State(s): State<AppState>,
    Path((wave, key)): Path<(u32, String)>,
    Form(a): Form<Answer>,
) -> Response {
    let Some(idx) = feedback_wave(&s, wave, &key) else {
        return bad_link();
    };
    if s.limiter
        .take(&format!("feedback:{wave}"), ANSWERS_PER_MINUTE)
        .is_err()
    {
        return message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many answers",
            "Wait a minute and send it again.",
        );
    }
    let again = |error: &str| {
        let mut r = render(
            "feedback.html",
            context! {
                rollout => s.view().plan.name, wave => s.engine.waves()[idx].name,
                action => format!("/feedback/{wave}/{key}"), error, max => MAX_COMMENT,
                device => a.device, comment => a.comment,
            },
        );
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r
    };
    let Some(score) = a.score.parse::<u8>().ok().filter(|x| (1..=5).contains(x)) else {
        return again("Choose a score from 1 to 5.");
    };
    if a.comment.chars().count() > MAX_COMMENT {
        return again(&format!(
            "The comment is longer than {MAX_COMMENT} characters."
        ));
    }
    let name = a.device.trim();
    // The device (or the user's devices) must be in this wave.
    let members = &s.engine.waves()[idx].members;
    let (dev, user) = if name.contains('@') {
        (None, Some(name))
    } else {
        (Some(name), None)
    };
    let view = s.view();
    let rows = view.directory.devices_of(dev, user);
    let Some(&row) = rows.iter().find(|r| members.contains(**r)) else {
        return again(
            "That device (or user) is not in this pilot wave. Enter your device name as shown in Settings › About, or your sign-in address.",
        );
    };
    let answer = Feedback {
        id: format!("form-{}", fresh()),
        at: (s.clock)(),
        user: user.map(str::to_string),
        device: view.org.device_id(row).map(str::to_string),
        score,
        comment: a.comment.trim().to_string(),
        wave: Some(idx as u32),
    };
    if let Err(e) = s.store.ingest_feedback(&s.rollout, &[answer]).await {
        return internal("storing the answer", e);
    }
    message(
        StatusCode::OK,
        "Thank you",
        "Your answer is in. The rollout team reads every one before the next wave starts.",
    )
}

#[cfg(test)]
mod tests {
    use super::{gate_line, safe_next};

    /// A decided wave's goal without data says whether the wave waited for
    /// it; only an undecided one has "no data yet".
    #[test]
    fn goals_without_data_say_whether_the_wave_waited() {
        use ringmaster_core::gates::{Evaluation, GateResult, Outcome};
        use ringmaster_core::goals::{Comparator, Metric};
        let goal = |critical: bool| GateResult::Goal {
            goal: 0,
            evaluation: Evaluation {
                metric: Metric::ApplySuccessRate,
                critical,
                value: None,
                interval: None,
                threshold: 0.95,
                comparator: Comparator::AtLeast,
                sample: 0,
                min_sample: 20,
                window_hours: 24.0,
                outcome: Outcome::NoData,
                sentence: "no reports yet".into(),
                control: None,
                stratum: None,
                anytime: None,
            },
        };
        let label =
            |r: &GateResult, decided| gate_line(r, decided).get_attr("label").unwrap().to_string();
        assert_eq!(label(&goal(false), false), "no data yet");
        assert_eq!(
            label(&goal(false), true),
            "no data (not critical: the wave did not wait for it)"
        );
        assert_eq!(label(&goal(true), true), "no data");
    }

    #[test]
    fn sign_in_returns_only_to_plain_dashboard_paths() {
        for (next, to) in [
            (Some("/ui/plan"), "/ui/plan"),
            (Some("/ui"), "/ui"),
            (Some("/ui/devices?q=a%20b"), "/ui/devices?q=a%20b"),
            (None, "/ui"),
            (Some("//evil.example.com"), "/ui"),
            (Some("/uievil"), "/ui"),
            (Some("/ui//evil.example.com"), "/ui"),
            (Some("/ui/\\evil"), "/ui"),
            (Some("/ui/plan\nSet-Cookie: x=y"), "/ui"),
            (Some("/ui/\u{7f}"), "/ui"),
            (Some("/ui/plan x"), "/ui"),
            (Some("/ui/é"), "/ui"),
            (Some("https://evil.example.com/ui"), "/ui"),
        ] {
            assert_eq!(safe_next(next), to, "{next:?}");
        }
    }
}
