//! The JSON API handlers.

use crate::{Access, ApiError, AppState, ROUTES, authorize};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ringmaster_core::wave::{Event, Reason};
use ringmaster_engine::ingest::{Attribution, Directory, Parsed};

/// What each API route does, for the OpenAPI document.
fn summary(path: &str) -> &'static str {
    match path {
        "/healthz" => "the process is up",
        "/readyz" => "the database answers",
        "/api/plan" => "the plan: scope, groups, phases, waves, goals, checks, communications",
        "/api/conflicts" => {
            "setting conflicts of the new policies where targets meet, and not-applicable counts"
        }
        "/api/devices/{device}" => {
            "why each policy does or does not reach a device, and its conflicts"
        }
        "/api/groups/{group}" => {
            "everything assigned to a group, directly and through the groups that contain it"
        }
        "/api/communications" => {
            "the rendered messages for pilot users, production users and the help desk"
        }
        "/api/waves" => "waves of the current plan version with their states and report counts",
        "/api/waves/{wave}" => {
            "one wave: state, counts over time, gate evaluations, tickets, feedback"
        }
        "/api/history" => "every transition with when, who and why",
        "/api/runstate" => {
            "service levels over every device in scope, and drift: regressions, devices without a report, outliers"
        }
        "/api/audit" => "the audit log",
        "/api/outbox" => "notifications with their delivery state",
        "/api/alerts" => "run-state alerts: open ones, or every one with ?all=true",
        "/api/alerts/{action}" => {
            "acknowledge or resolve an alert: JSON {\"key\": …, \"note\": …}; audited"
        }
        "/api/waves/{wave}/{action}" => {
            "approve, promote, pause, resume, abort, rollback or retry a wave"
        }
        "/api/ingest/status" => {
            "device policy states (JSON, NDJSON or CSV); bad records are listed, the rest kept"
        }
        "/api/ingest/tickets" => "help-desk tickets (ServiceNow, Zendesk or Jira shapes)",
        "/api/ingest/feedback" => "pilot feedback answers (score 1-5 and a comment)",
        "/api/openapi.json" => "this document",
        "/metrics" => {
            "Prometheus metrics: wave states, gate outcomes, stored reports, notifications"
        }
        _ => "",
    }
}

/// Whether a route belongs to the JSON API (and the OpenAPI document).
pub fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || matches!(path, "/metrics" | "/healthz" | "/readyz")
}

/// The OpenAPI 3.1 document, built from [`ROUTES`] so it cannot drift.
pub fn openapi() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for (method, path, access) in ROUTES.iter().filter(|r| is_api(r.1)) {
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
        let mut params = Vec::new();
        if path.contains("{wave}") {
            params.push(serde_json::json!({"name": "wave", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}));
        }
        if *path == "/api/alerts/{action}" {
            params.push(serde_json::json!({"name": "action", "in": "path", "required": true, "schema": {"type": "string",
                    "enum": ["acknowledge", "resolve"]}}));
        } else if path.contains("{action}") {
            params.push(serde_json::json!({"name": "action", "in": "path", "required": true, "schema": {"type": "string",
                    "enum": ["approve", "promote", "pause", "resume", "abort", "rollback", "retry"]}}));
        }
        if path.contains("{device}") {
            params.push(serde_json::json!({"name": "device", "in": "path", "required": true,
                "description": "device name, Entra object id, Entra device id, Intune id or serial number",
                "schema": {"type": "string"}}));
        }
        if path.contains("{group}") {
            params.push(
                serde_json::json!({"name": "group", "in": "path", "required": true,
                "description": "group name or Entra object id", "schema": {"type": "string"}}),
            );
        }
        if !params.is_empty() {
            op["parameters"] = serde_json::Value::Array(params);
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

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    match s.store.has_tokens().await {
        Ok(_) => "ready".into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response(),
    }
}

pub(crate) async fn waves(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    let rows = s
        .engine
        .rows()
        .await
        .map_err(|e| ApiError::internal("reading waves", e))?;
    let mut out = Vec::new();
    for r in &rows {
        let c = s
            .store
            .wave_counts(&r.key.rollout, r.key.idx, None)
            .await
            .map_err(|e| ApiError::internal("reading counts", e))?;
        out.push(serde_json::json!({
            "wave": r.key.idx + 1, "version": r.key.version, "name": r.name, "phase": r.phase,
            "state": r.state, "devices": r.members.len(), "counts": c,
        }));
    }
    Ok(axum::Json(serde_json::json!({ "rollout": s.rollout, "waves": out })).into_response())
}

pub(crate) async fn history(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    let h = s
        .store
        .history(&s.rollout)
        .await
        .map_err(|e| ApiError::internal("reading the history", e))?;
    Ok(axum::Json(h).into_response())
}

pub(crate) async fn audit(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Audit).await?;
    let log = s
        .store
        .audit_log(&s.rollout)
        .await
        .map_err(|e| ApiError::internal("reading the audit log", e))?;
    Ok(axum::Json(log).into_response())
}

pub(crate) async fn act(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((wave, action)): Path<(u32, String)>,
) -> Result<Response, ApiError> {
    let label = authorize(&s, &headers, Access::Operate).await?.label;
    let event = event_of(&action).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "unknown action: approve, promote, pause, resume, abort, rollback or retry".into(),
        )
    })?;
    let now = (s.clock)();
    match s.engine.operate(wave, event, &label, now).await {
        Ok(Ok(line)) => Ok(axum::Json(serde_json::json!({ "done": line })).into_response()),
        Ok(Err(why)) => Err(ApiError(StatusCode::CONFLICT, why)),
        Err(e) => Err(ApiError::internal("the action", e)),
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

/// One kind of record: who may send it, how it is read, tied to waves and counted.
pub(crate) struct Records<T> {
    access: Access,
    parse: fn(&str) -> Result<Parsed<T>, String>,
    attribute: fn(&Directory, &Attribution, &mut [T]) -> u64,
    counter: fn(&crate::Counters) -> &std::sync::atomic::AtomicU64,
}

/// How long after a wave starts a ticket counts for it.
const TICKET_WINDOW_HOURS: i64 = 24 * 7;

/// The steps every ingestion route shares: the token and its role, the
/// rate limit, a UTF-8 body, parsing (bad records listed, the rest kept),
/// tying records to the waves of their devices, storing, and the answer.
pub(crate) async fn ingest<T>(
    s: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    kind: Records<T>,
    store: impl AsyncFnOnce(&[T]) -> ringmaster_store::Result<ringmaster_store::Ingested>,
) -> Result<Response, ApiError> {
    let Records {
        access,
        parse,
        attribute,
        counter,
    } = kind;
    let counter = counter(&s.counters);
    let who = authorize(s, headers, access).await?;
    if let Some(r) = limited(s, &who.key) {
        return Ok(r);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "the body is not UTF-8".into()))?;
    let (mut records, rejected) = parse(text).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let attr = s
        .engine
        .attribution(jiff::SignedDuration::from_hours(TICKET_WINDOW_HOURS), &[])
        .await
        .map_err(|e| ApiError::internal("reading the waves", e))?;
    let untied = attribute(&s.view().directory, &attr, &mut records);
    let got = store(&records)
        .await
        .map_err(|e| ApiError::internal("storing the records", e))?;
    use std::sync::atomic::Ordering::Relaxed;
    counter.fetch_add(got.inserted, Relaxed);
    s.counters
        .rejected
        .fetch_add(rejected.len() as u64, Relaxed);
    Ok(axum::Json(serde_json::json!({
        "inserted": got.inserted, "duplicates": got.duplicates, "rejected": rejected,
        "not_in_a_started_wave": untied,
    }))
    .into_response())
}

pub(crate) async fn ingest_status(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let parse = |t: &str| ringmaster_engine::ingest::statuses(t, None);
    ingest(
        &s,
        &headers,
        &body,
        Records {
            access: Access::ReportStatus,
            parse,
            attribute: Directory::attribute_statuses,
            counter: |c| &c.status,
        },
        async |r| s.store.ingest_status(&s.rollout, r).await,
    )
    .await
}

pub(crate) async fn ingest_tickets(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    ingest(
        &s,
        &headers,
        &body,
        Records {
            access: Access::ReportTickets,
            parse: ringmaster_engine::ingest::tickets,
            attribute: Directory::attribute_tickets,
            counter: |c| &c.tickets,
        },
        async |r| s.store.ingest_tickets(&s.rollout, r).await,
    )
    .await
}

pub(crate) async fn ingest_feedback(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    ingest(
        &s,
        &headers,
        &body,
        Records {
            access: Access::ReportFeedback,
            parse: ringmaster_engine::ingest::feedback,
            attribute: Directory::attribute_feedback,
            counter: |c| &c.feedback,
        },
        async |r| s.store.ingest_feedback(&s.rollout, r).await,
    )
    .await
}

pub(crate) async fn plan(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    let v = s.view();
    Ok(axum::Json(ringmaster_plan::report::json(&v.plan, &v.messages)).into_response())
}

pub(crate) async fn conflicts(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    Ok(axum::Json(&s.view().plan.conflicts).into_response())
}

pub(crate) async fn communications(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    Ok(axum::Json(&s.view().messages).into_response())
}

/// The one device a search names, or an error saying why not.
pub(crate) fn find_device(v: &crate::View, needle: &str) -> Result<u32, (StatusCode, String)> {
    let found = v.org.find_devices(needle);
    match found.len() {
        1 => Ok(found[0]),
        0 => Err((
            StatusCode::NOT_FOUND,
            format!("no device matches '{needle}'"),
        )),
        n => Err((
            StatusCode::CONFLICT,
            format!("'{needle}' matches {n} devices; name one by id"),
        )),
    }
}

pub(crate) async fn device(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(needle): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    // One view for the whole answer: a reload may swap it meanwhile.
    let v = s.view();
    let row = find_device(&v, &needle).map_err(|(c, m)| ApiError(c, m))?;
    let e = ringmaster_core::explain::explain_device(&v.org, &v.res, row, None, (s.clock)());
    Ok(axum::Json(e).into_response())
}

pub(crate) async fn group(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(needle): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    let v = &s.view();
    let found = v.org.find_groups(&needle);
    let g = match found.len() {
        1 => found[0],
        0 => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no group matches '{needle}'"),
            ));
        }
        n => {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!("'{needle}' matches {n} groups; name one by id"),
            ));
        }
    };
    Ok(axum::Json(ringmaster_core::explain::explain_group(&v.org, &v.res, g)).into_response())
}

/// The run state with device labels, shared by the API and its page.
pub(crate) async fn run_state(
    s: &AppState,
    v: &crate::View,
) -> Result<serde_json::Value, ApiError> {
    let rows = s
        .engine
        .rows()
        .await
        .map_err(|e| ApiError::internal("reading waves", e))?;
    let now = (s.clock)();
    let r = ringmaster_engine::runstate::assess(
        s.store.as_ref(),
        &s.rollout,
        &rows,
        &v.plan,
        &v.org,
        &v.directory,
        now,
    )
    .await
    .map_err(|e| ApiError::internal("judging the run state", e))?;
    let devices = |list: &[u32]| -> Vec<serde_json::Value> {
        list.iter()
            .map(
                |&d| serde_json::json!({"key": v.org.device_id(d), "label": v.org.device_label(d)}),
            )
            .collect()
    };
    Ok(serde_json::json!({
        "at": now, "drifted": r.drifted(),
        "devices": r.devices, "succeeded": r.succeeded, "errors": r.errors,
        "conflicts": r.conflicts, "pending": r.pending, "unreported": r.unreported,
        "service_levels": r.service_levels,
        "regressed": devices(&r.regressed), "overdue": devices(&r.overdue),
        "outliers": r.outliers,
    }))
}

#[derive(serde::Deserialize)]
pub(crate) struct AlertsQuery {
    #[serde(default)]
    all: bool,
}

pub(crate) async fn alerts(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<AlertsQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    let list = s
        .store
        .alerts(&s.rollout, !q.all)
        .await
        .map_err(|e| ApiError::internal("reading alerts", e))?;
    Ok(axum::Json(list).into_response())
}

#[derive(serde::Deserialize)]
pub(crate) struct AlertAction {
    key: String,
    #[serde(default)]
    note: String,
}

/// The mark an action names, with its answer's verb.
pub(crate) fn alert_mark(action: &str) -> Option<(ringmaster_store::AlertMark, &'static str)> {
    match action {
        "acknowledge" | "ack" => Some((ringmaster_store::AlertMark::Acknowledge, "acknowledged")),
        "resolve" => Some((ringmaster_store::AlertMark::Resolve, "resolved")),
        _ => None,
    }
}

/// Marks an alert; the note is cut to 500 characters. Err: status and why.
pub(crate) async fn mark_alert(
    s: &AppState,
    action: &str,
    key: &str,
    note: &str,
    who: &str,
) -> Result<&'static str, (StatusCode, String)> {
    let (mark, verb) = alert_mark(action).ok_or((
        StatusCode::NOT_FOUND,
        "unknown action: acknowledge or resolve".to_string(),
    ))?;
    let note: String = note.trim().chars().take(500).collect();
    match s
        .store
        .mark_alert(&s.rollout, key, mark, who, &note, (s.clock)())
        .await
    {
        Ok(true) => Ok(verb),
        Ok(false) => Err((
            StatusCode::CONFLICT,
            format!(
                "no raised, open alert `{}`",
                key.chars().take(200).collect::<String>()
            ),
        )),
        Err(e) => {
            tracing::error!(error = %e, "marking an alert");
            Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "marking the alert failed".into(),
            ))
        }
    }
}

pub(crate) async fn alert_action(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(action): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let label = authorize(&s, &headers, Access::Operate).await?.label;
    let a: AlertAction = serde_json::from_slice(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"key\": …, \"note\": …}}: {e}"),
        )
    })?;
    match mark_alert(&s, &action, &a.key, &a.note, &label).await {
        Ok(verb) => Ok(axum::Json(
            serde_json::json!({ "done": format!("{} {verb} by {label}", a.key) }),
        )
        .into_response()),
        Err((code, why)) => Err(ApiError(code, why)),
    }
}

pub(crate) async fn runstate(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    Ok(axum::Json(run_state(&s, &s.view()).await?).into_response())
}

/// Everything about one wave, shared by the API and the wave page so the
/// two show the same figures.
pub(crate) async fn wave_detail(
    s: &AppState,
    wave: u32,
) -> Result<Option<serde_json::Value>, ApiError> {
    let rows = s
        .engine
        .rows()
        .await
        .map_err(|e| ApiError::internal("reading waves", e))?;
    let Some(r) = wave.checked_sub(1).and_then(|i| rows.get(i as usize)) else {
        return Ok(None);
    };
    let read = |e| ApiError::internal("reading the wave", e);
    let counts = s
        .store
        .wave_counts(&r.key.rollout, r.key.idx, None)
        .await
        .map_err(read)?;
    let series = s.store.counts_series(&r.key).await.map_err(read)?;
    let rounds = s.store.gate_rounds(&r.key).await.map_err(read)?;
    let (tickets, feedback) = s
        .store
        .wave_items(&s.rollout, r.key.idx, 200)
        .await
        .map_err(read)?;
    let history: Vec<_> = s
        .store
        .history(&s.rollout)
        .await
        .map_err(read)?
        .into_iter()
        .filter(|h| h.key == r.key)
        .collect();
    let view = s.view();
    let planned = view.plan.waves.get(r.key.idx as usize);
    Ok(Some(serde_json::json!({
        "wave": wave, "version": r.key.version, "name": r.name, "phase": r.phase,
        "state": r.state, "devices": r.members.len(), "counts": counts,
        "starts_at": r.starts_at,
        "planned": planned,
        "series": series.iter().map(|(at, c)| serde_json::json!({"at": at, "counts": c})).collect::<Vec<_>>(),
        "evaluations": rounds.iter().flat_map(|r| r.results.iter().map(|e| serde_json::json!({"at": r.at, "evaluation": e}))).collect::<Vec<_>>(),
        "tickets": tickets, "feedback": feedback, "history": history,
    })))
}

pub(crate) async fn wave(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(wave): Path<u32>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    match wave_detail(&s, wave).await? {
        Some(v) => Ok(axum::Json(v).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("there is no wave {wave}"),
        )),
    }
}

pub(crate) async fn outbox(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Audit).await?;
    let items = s
        .store
        .outbox(&s.rollout, 1000)
        .await
        .map_err(|e| ApiError::internal("reading the outbox", e))?;
    Ok(axum::Json(items).into_response())
}

/// The event an action name stands for.
pub(crate) fn event_of(action: &str) -> Option<Event> {
    Some(match action {
        "approve" => Event::Approve,
        "promote" => Event::Promote,
        "pause" => Event::Pause,
        "resume" => Event::Resume(Reason::Manual),
        "abort" => Event::Abort,
        "rollback" => Event::Rollback,
        "retry" => Event::Retry,
        _ => return None,
    })
}

pub(crate) async fn openapi_doc(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    Ok(axum::Json(openapi()).into_response())
}

/// Prometheus text: waves per state, gate outcomes, stored reports per wave.
pub(crate) async fn metrics(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, Access::Read).await?;
    let rows = s
        .engine
        .rows()
        .await
        .map_err(|e| ApiError::internal("reading waves", e))?;
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
            .map_err(|e| ApiError::internal("reading counts", e))?;
        reports.push_str(&format!(
            "ringmaster_wave_reports{{wave=\"{}\"}} {}\n",
            r.key.idx + 1,
            c.reported()
        ));
        for round in s
            .store
            .gate_rounds(&r.key)
            .await
            .map_err(|e| ApiError::internal("reading gates", e))?
        {
            for e in &round.results {
                *outcomes.entry(e.outcome().name().to_string()).or_default() += 1;
            }
        }
    }
    out.push_str(&reports);
    use std::sync::atomic::Ordering::Relaxed;
    let c = &s.counters;
    out.push_str("# HELP ringmaster_ingested_records_total Records taken in over HTTP since start (rejected: not kept)\n# TYPE ringmaster_ingested_records_total counter\n");
    for (kind, n) in [
        ("status", c.status.load(Relaxed)),
        ("tickets", c.tickets.load(Relaxed)),
        ("feedback", c.feedback.load(Relaxed)),
        ("rejected", c.rejected.load(Relaxed)),
    ] {
        out.push_str(&format!(
            "ringmaster_ingested_records_total{{kind=\"{kind}\"}} {n}\n"
        ));
    }
    let mut states: std::collections::BTreeMap<String, u64> = Default::default();
    for item in s
        .store
        .outbox(&s.rollout, 100_000)
        .await
        .map_err(|e| ApiError::internal("reading the outbox", e))?
    {
        *states.entry(item.state).or_default() += 1;
    }
    out.push_str("# HELP ringmaster_notifications Notifications by delivery state\n# TYPE ringmaster_notifications gauge\n");
    for state in ["pending", "sent", "failed"] {
        out.push_str(&format!(
            "ringmaster_notifications{{state=\"{state}\"}} {}\n",
            states.get(state).copied().unwrap_or(0)
        ));
    }
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
