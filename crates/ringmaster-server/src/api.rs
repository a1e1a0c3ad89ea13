//! The JSON API handlers, with the records they take and give. Each
//! handler carries its OpenAPI description; [`openapi`] puts them together
//! with what the route table says of access.

use crate::paging::Window;
use crate::routes::{Caller, table};
use crate::{Access, ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ringmaster_core::wave::{Event, Reason};
use ringmaster_engine::figures::{WaveFigures, live_counts, wave_figures};
use ringmaster_engine::ingest::{Attribution, Directory, Parsed};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether a route belongs to the JSON API (and the OpenAPI document).
pub fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || matches!(path, "/metrics" | "/healthz" | "/readyz")
}

/// An error answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, safe to show.
    pub error: String,
}

/// An action's answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct Done {
    /// What was done, as a sentence (the transition, or the alert mark).
    done: String,
}

/// The OpenAPI 3.1 document: the handlers' descriptions, with each route's
/// credential, roles and refusals taken from the route table.
pub fn openapi() -> serde_json::Value {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    use utoipa::openapi::{
        ComponentsBuilder, InfoBuilder, OpenApiBuilder, ResponseBuilder, SecurityRequirement,
        path::Paths,
    };
    let mut paths = Paths::new();
    let mut components = ComponentsBuilder::new().security_scheme(
        "token",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components = components.schema_from::<ErrorBody>();
    // The refusals every route may give, described once.
    const REFUSALS: [(&str, &str, &str); 6] = [
        (
            "401",
            "Unauthorized",
            "no token, or an unknown, expired or revoked one",
        ),
        ("403", "Forbidden", "the token's role may not do this"),
        (
            "429",
            "Throttled",
            "too many failed attempts from this address; see Retry-After",
        ),
        ("408", "TooSlow", "the body did not arrive in time"),
        (
            "413",
            "TooLarge",
            "the body is larger than the route's limit",
        ),
        ("503", "Busy", "the database is busy; see Retry-After"),
    ];
    for (_, name, what) in REFUSALS {
        let content = utoipa::openapi::ContentBuilder::new()
            .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
            .build();
        components = components.response(
            name,
            ResponseBuilder::new()
                .description(what)
                .content("application/json", content)
                .build(),
        );
    }
    for e in table() {
        let Some((schemas, mut doc)) = e.doc else {
            continue;
        };
        let r = &e.route;
        for (name, schema) in schemas {
            components = components.schema(name, schema);
        }
        for item in doc.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                let closed = r.access != Access::Open;
                if closed {
                    op.description = Some(format!("Roles: {}.", r.access.roles()));
                } else {
                    op.security = Some(vec![SecurityRequirement::default()]);
                }
                let post = r.method == axum::http::Method::POST;
                for (code, name, _) in REFUSALS {
                    let applies = match code {
                        "401" | "403" | "429" => closed,
                        "408" | "413" => post,
                        _ => true,
                    };
                    if applies {
                        op.responses
                            .responses
                            .entry(code.to_string())
                            .or_insert_with(|| {
                                utoipa::openapi::Ref::new(format!("#/components/responses/{name}"))
                                    .into()
                            });
                    }
                }
            }
        }
        paths.merge(doc);
    }
    let doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("ringmaster")
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .security(Some(vec![SecurityRequirement::new(
            "token",
            Vec::<String>::new(),
        )]))
        .build();
    serde_json::to_value(&doc).unwrap_or_default()
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, description = "`ready`", body = String, content_type = "text/plain"),
    (status = 503, description = "`database unavailable`", body = String, content_type = "text/plain"),
))]
pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    match s.store.has_tokens().await {
        Ok(_) => "ready".into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response(),
    }
}

/// A wave of the current plan version with its state and report counts.
#[derive(Serialize, ToSchema)]
pub(crate) struct WaveSummary {
    /// 1-based.
    wave: u32,
    /// The plan version the wave belongs to.
    version: u32,
    name: String,
    phase: String,
    /// The phase as people read it ("Proof of concept").
    phase_label: String,
    #[schema(value_type = Object)]
    state: ringmaster_core::wave::WaveState,
    devices: u64,
    /// Devices per reported state.
    #[schema(value_type = Object)]
    counts: ringmaster_store::StateCounts,
    /// Devices, reports, tickets and feedback as every screen shows them
    /// (`ringmaster_engine::figures::WaveFigures`).
    #[schema(value_type = Object)]
    figures: WaveFigures,
}

/// The waves of the rollout.
#[derive(Serialize, ToSchema)]
pub(crate) struct Waves {
    rollout: String,
    waves: Vec<WaveSummary>,
}

/// Waves of the current plan version with their states and report counts.
#[utoipa::path(get, path = "/api/waves", responses((status = 200, description = "the waves", body = Waves)))]
pub(crate) async fn waves(State(s): State<AppState>) -> Result<axum::Json<Waves>, ApiError> {
    let rows = s
        .engine
        .rows()
        .await
        .map_err(|e| ApiError::store("reading waves", e))?;
    let mut waves = Vec::new();
    for r in rows {
        let read = |e| ApiError::store("reading counts", e);
        let counts = live_counts(s.store.as_ref(), &r).await.map_err(read)?;
        let figures = wave_figures(s.store.as_ref(), &r).await.map_err(read)?;
        waves.push(WaveSummary {
            wave: r.key.idx + 1,
            version: r.key.version,
            devices: r.members.len(),
            name: r.name,
            phase_label: ringmaster_plan::spec::PhaseKind::label_of_stored(&r.phase).to_string(),
            phase: r.phase,
            state: r.state,
            counts,
            figures,
        });
    }
    Ok(axum::Json(Waves {
        rollout: s.rollout.clone(),
        waves,
    }))
}

/// Every transition with when, who and why.
#[utoipa::path(get, path = "/api/history", responses((status = 200, description = "transitions, oldest first", body = [Object])))]
pub(crate) async fn history(State(s): State<AppState>) -> Result<Response, ApiError> {
    let h = s
        .store
        .history(&s.rollout)
        .await
        .map_err(|e| ApiError::store("reading the history", e))?;
    Ok(axum::Json(h).into_response())
}

/// An entry of the audit log.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditRecord {
    #[schema(value_type = String, format = DateTime)]
    at: jiff::Timestamp,
    /// The token's label, or the client address of a refused sign-in.
    actor: String,
    rollout: String,
    action: String,
    detail: String,
    /// `at` is on the rollout's simulated clock (a simulated rollout's own
    /// entries); false for real time (the service's entries, rollout "").
    simulated: bool,
}

/// The audit log: transitions, sign-ins (refused ones too), alert marks, tokens.
#[utoipa::path(get, path = "/api/audit", params(Window),
    responses((status = 200, description = "entries, oldest first, a window at a time",
        body = [AuditRecord], headers(("x-total-count" = u64, description = "entries in all")))))]
pub(crate) async fn audit(
    State(s): State<AppState>,
    Query(w): Query<Window>,
) -> Result<Response, ApiError> {
    let (offset, limit) = w.bounds();
    let (log, total) = s
        .store
        .audit_page(&s.rollout, false, offset as u64, limit as u64)
        .await
        .map_err(|e| ApiError::store("reading the audit log", e))?;
    let simulated = ringmaster_store::simulated(s.store.as_ref(), &s.rollout)
        .await
        .map_err(|e| ApiError::store("reading the rollout's clock", e))?;
    let items: Vec<AuditRecord> = log
        .into_iter()
        .map(|e| AuditRecord {
            simulated: simulated && !e.rollout.is_empty(),
            at: e.at,
            actor: e.actor,
            rollout: e.rollout,
            action: e.action,
            detail: e.detail,
        })
        .collect();
    Ok(paged(items, total))
}

/// A window of a list, its total in the `x-total-count` header.
fn paged<T: Serialize>(items: Vec<T>, total: impl std::fmt::Display) -> Response {
    (
        [(crate::paging::TOTAL, total.to_string())],
        axum::Json(items),
    )
        .into_response()
}

/// Approve, promote, pause, resume, abort, rollback or retry a wave.
#[utoipa::path(post, path = "/api/waves/{wave}/{action}",
    params(
        ("wave" = u32, Path, description = "1-based wave number", minimum = 1),
        ("action" = String, Path, description = "approve, promote, pause, resume, abort, rollback or retry"),
    ),
    responses(
        (status = 200, description = "done: the transition", body = Done),
        (status = 202, description = "approve: the approval is kept; the wave still waits for more (the answer says what is missing)", body = Done),
        (status = 403, description = "the token's role may not do this; or, approving, the requester cannot approve alone under `[approvals] distinct`", body = ErrorBody),
        (status = 404, description = "no such action", body = ErrorBody),
        (status = 409, description = "the wave's state does not allow it, this person approved it already, or another action came first", body = ErrorBody),
    ))]
pub(crate) async fn act(
    State(s): State<AppState>,
    who: Caller,
    Path((wave, action)): Path<(u32, String)>,
) -> Result<Response, ApiError> {
    let event = event_of(&action).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown action: approve, promote, pause, resume, abort, rollback or retry".into(),
        )
    })?;
    let now = (s.clock)();
    if event == Event::Approve {
        let (status, done) = approve(&s, wave, &who.label, now).await?;
        return Ok((status, axum::Json(Done { done })).into_response());
    }
    match s.engine.operate(wave, event, &who.label, now).await {
        Ok(Ok(line)) => Ok(axum::Json(Done { done: line }).into_response()),
        Ok(Err(why)) => Err(ApiError::new(StatusCode::CONFLICT, why)),
        Err(e) => Err(ApiError::store("the action", e)),
    }
}

/// An approval by `who`, as the API and the dashboard answer it: 200 when
/// it opened the wave, 202 when it was kept and more are needed, 403 for
/// the requester under a two-person rule, 409 when nothing changed.
pub(crate) async fn approve(
    s: &AppState,
    wave: u32,
    who: &str,
    now: jiff::Timestamp,
) -> Result<(StatusCode, String), ApiError> {
    use ringmaster_engine::engine::Approval;
    match s.engine.approve(wave, who, now).await {
        Ok(Approval::Opened(line)) => Ok((StatusCode::OK, line)),
        Ok(Approval::Recorded(line)) => Ok((StatusCode::ACCEPTED, line)),
        Ok(Approval::Forbidden(why)) => Err(ApiError::new(StatusCode::FORBIDDEN, why)),
        Ok(Approval::Refused(why)) => Err(ApiError::new(StatusCode::CONFLICT, why)),
        Err(e) => Err(ApiError::store("the approval", e)),
    }
}

/// The 429 answer when `who` has used up its ingestion allowance.
fn limited(s: &AppState, who: &str) -> Option<Response> {
    s.limiter.take(who, s.ingest_per_minute).err().map(|wait| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, wait.to_string())],
            axum::Json(ErrorBody {
                error: format!("too many ingestion requests: retry in {wait} s"),
            }),
        )
            .into_response()
    })
}

/// One kind of record: how it is read, tied to waves and counted.
pub(crate) struct Records<T> {
    parse: fn(&str) -> Result<Parsed<T>, String>,
    attribute: fn(&Directory, &Attribution, &mut [T]) -> u64,
    counter: fn(&crate::Counters) -> &std::sync::atomic::AtomicU64,
}

/// A record that was not kept, and why.
#[derive(Serialize, ToSchema)]
pub(crate) struct Rejection {
    /// 1-based record number (CSV: data row; NDJSON: line).
    record: usize,
    reason: String,
}

/// What an ingestion did.
#[derive(Serialize, ToSchema)]
pub(crate) struct Ingested {
    /// New records kept.
    inserted: u64,
    /// Records already stored (sent again): ignored.
    duplicates: u64,
    /// Records not kept, with their place and reason.
    rejected: Vec<Rejection>,
    /// Kept records whose device is in no started wave.
    not_in_a_started_wave: u64,
}

/// How long after a wave starts a ticket counts for it.
const TICKET_WINDOW_HOURS: i64 = 24 * 7;

/// The steps every ingestion route shares once the guard let the caller
/// in: the rate limit, a UTF-8 body, parsing (bad records listed, the rest
/// kept), tying records to the waves of their devices, storing, the answer.
pub(crate) async fn ingest<T>(
    s: &AppState,
    who: &Caller,
    body: &Bytes,
    kind: Records<T>,
    store: impl AsyncFnOnce(&[T]) -> ringmaster_store::Result<ringmaster_store::Ingested>,
) -> Result<Response, ApiError> {
    let Records {
        parse,
        attribute,
        counter,
    } = kind;
    let counter = counter(&s.counters);
    if let Some(r) = limited(s, &who.key) {
        return Ok(r);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the body is not UTF-8".into()))?;
    let (mut records, rejected) =
        parse(text).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let attr = s
        .engine
        .attribution(jiff::SignedDuration::from_hours(TICKET_WINDOW_HOURS), &[])
        .await
        .map_err(|e| ApiError::store("reading the waves", e))?;
    let untied = attribute(&s.view().directory, &attr, &mut records);
    let got = store(&records)
        .await
        .map_err(|e| ApiError::store("storing the records", e))?;
    use std::sync::atomic::Ordering::Relaxed;
    counter.fetch_add(got.inserted, Relaxed);
    s.counters
        .rejected
        .fetch_add(rejected.len() as u64, Relaxed);
    Ok(axum::Json(Ingested {
        inserted: got.inserted,
        duplicates: got.duplicates,
        rejected: rejected
            .into_iter()
            .map(|r| Rejection {
                record: r.record,
                reason: r.reason,
            })
            .collect(),
        not_in_a_started_wave: untied,
    })
    .into_response())
}

/// Device policy states (JSON, Graph pages, NDJSON or CSV); bad records are listed, the rest kept.
#[utoipa::path(post, path = "/api/ingest/status",
    request_body(content = String, description = "JSON array, Graph page, NDJSON or CSV", content_type = "application/json"),
    responses(
        (status = 200, description = "what was kept and what was not", body = Ingested),
        (status = 400, description = "the body is not UTF-8 or not in a known shape", body = ErrorBody),
    ))]
pub(crate) async fn ingest_status(
    State(s): State<AppState>,
    who: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let parse = |t: &str| ringmaster_engine::ingest::statuses(t, None);
    ingest(
        &s,
        &who,
        &body,
        Records {
            parse,
            attribute: Directory::attribute_statuses,
            counter: |c| &c.status,
        },
        async |r| s.store.ingest_status(&s.rollout, r).await,
    )
    .await
}

/// Help-desk tickets (ServiceNow, Zendesk or Jira shapes).
#[utoipa::path(post, path = "/api/ingest/tickets",
    request_body(content = String, description = "a ServiceNow, Zendesk or Jira export", content_type = "application/json"),
    responses(
        (status = 200, description = "what was kept and what was not", body = Ingested),
        (status = 400, description = "the body is not UTF-8 or not in a known shape", body = ErrorBody),
    ))]
pub(crate) async fn ingest_tickets(
    State(s): State<AppState>,
    who: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    ingest(
        &s,
        &who,
        &body,
        Records {
            parse: ringmaster_engine::ingest::tickets,
            attribute: Directory::attribute_tickets,
            counter: |c| &c.tickets,
        },
        async |r| s.store.ingest_tickets(&s.rollout, r).await,
    )
    .await
}

/// Pilot feedback answers (score 1-5 and a comment).
#[utoipa::path(post, path = "/api/ingest/feedback",
    request_body(content = String, description = "survey answers: JSON, NDJSON or CSV", content_type = "application/json"),
    responses(
        (status = 200, description = "what was kept and what was not", body = Ingested),
        (status = 400, description = "the body is not UTF-8 or not in a known shape", body = ErrorBody),
    ))]
pub(crate) async fn ingest_feedback(
    State(s): State<AppState>,
    who: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    ingest(
        &s,
        &who,
        &body,
        Records {
            parse: ringmaster_engine::ingest::feedback,
            attribute: Directory::attribute_feedback,
            counter: |c| &c.feedback,
        },
        async |r| s.store.ingest_feedback(&s.rollout, r).await,
    )
    .await
}

/// The plan: scope, groups, phases, waves, goals, checks, communications.
#[utoipa::path(get, path = "/api/plan", responses((status = 200, description = "the plan report", body = Object)))]
pub(crate) async fn plan(State(s): State<AppState>) -> Response {
    let v = s.view();
    axum::Json(ringmaster_plan::report::json(&v.plan, &v.messages)).into_response()
}

/// Setting conflicts of the new policies where targets meet, and not-applicable counts.
#[utoipa::path(get, path = "/api/conflicts", responses((status = 200, description = "the conflict report", body = Object)))]
pub(crate) async fn conflicts(State(s): State<AppState>) -> Response {
    axum::Json(&s.view().plan.conflicts).into_response()
}

/// The rendered messages for pilot users, production users and the help desk.
#[utoipa::path(get, path = "/api/communications", responses((status = 200, description = "the messages", body = [Object])))]
pub(crate) async fn communications(State(s): State<AppState>) -> Response {
    axum::Json(&s.view().messages).into_response()
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeviceQuery {
    /// A device's name, serial number or id, or the start of a name, a
    /// serial number or its primary user's UPN or mail (any case).
    q: String,
    /// Devices listed at most (default 50, at most 500).
    limit: Option<usize>,
    /// Matches skipped before the first listed (default 0).
    #[serde(default)]
    offset: usize,
}

/// What a device search found; the dashboard's device search shows the same.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeviceSearch {
    /// Devices that match in all.
    pub(crate) total: u64,
    /// Those of the page asked for, by import order.
    pub(crate) devices: Vec<FoundDevice>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct FoundDevice {
    /// The id `/api/devices/{device}` and the device page take.
    pub(crate) key: String,
    pub(crate) name: String,
    /// Name with ids, as pages show it.
    pub(crate) label: String,
    pub(crate) primary_user: Option<String>,
}

/// The search both the API and the dashboard answer with.
pub(crate) fn search_devices(
    v: &crate::View,
    needle: &str,
    offset: usize,
    limit: usize,
) -> DeviceSearch {
    let needle: String = needle.trim().chars().take(200).collect();
    let limit = limit.clamp(1, 500);
    let (rows, total) = v.org.search_devices(&needle, offset.saturating_add(limit));
    let devices = rows
        .into_iter()
        .skip(offset)
        .map(|d| FoundDevice {
            key: v.org.device_id(d).unwrap_or_default().to_string(),
            name: v
                .org
                .device(ringmaster_core::model::DeviceAttr::Name, d)
                .unwrap_or_default()
                .to_string(),
            label: v.org.device_label(d),
            primary_user: v.org.primary_user(d).map(|u| v.org.user_label(u)),
        })
        .collect();
    DeviceSearch { total, devices }
}

/// Devices by name, serial, id, or the start of a name, serial or user.
#[utoipa::path(get, path = "/api/devices", params(DeviceQuery),
    responses((status = 200, description = "the devices found", body = DeviceSearch)))]
pub(crate) async fn devices(State(s): State<AppState>, Query(q): Query<DeviceQuery>) -> Response {
    axum::Json(search_devices(
        &s.view(),
        &q.q,
        q.offset,
        q.limit.unwrap_or(50),
    ))
    .into_response()
}

/// Why each policy does or does not reach a device, and its conflicts.
#[utoipa::path(get, path = "/api/devices/{device}",
    params(("device" = String, Path, description = "device name, Entra object id, Entra device id, Intune id or serial number")),
    responses(
        (status = 200, description = "the explanation", body = Object),
        (status = 404, description = "no device matches", body = ErrorBody),
        (status = 409, description = "several devices match: name one by id", body = ErrorBody),
    ))]
pub(crate) async fn device(
    State(s): State<AppState>,
    Path(needle): Path<String>,
) -> Result<Response, ApiError> {
    // One view for the whole answer: a reload may swap it meanwhile.
    let v = s.view();
    let row = find_device(&v, &needle).map_err(|(c, m)| ApiError::new(c, m))?;
    let e = ringmaster_core::explain::explain_device(&v.org, &v.res, row, None, (s.clock)());
    Ok(axum::Json(e).into_response())
}

/// Everything assigned to a group, directly and through the groups that contain it.
#[utoipa::path(get, path = "/api/groups/{group}",
    params(("group" = String, Path, description = "group name or Entra object id")),
    responses(
        (status = 200, description = "the explanation", body = Object),
        (status = 404, description = "no group matches", body = ErrorBody),
        (status = 409, description = "several groups match: name one by id", body = ErrorBody),
    ))]
pub(crate) async fn group(
    State(s): State<AppState>,
    Path(needle): Path<String>,
) -> Result<Response, ApiError> {
    let v = &s.view();
    let found = v.org.find_groups(&needle);
    let g = match found.len() {
        1 => found[0],
        0 => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no group matches '{needle}'"),
            ));
        }
        n => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("'{needle}' matches {n} groups; name one by id"),
            ));
        }
    };
    Ok(axum::Json(ringmaster_core::explain::explain_group(&v.org, &v.res, g)).into_response())
}

/// A device as listed in the run state.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeviceRef {
    /// Its stable id.
    key: Option<String>,
    label: String,
}

/// Service levels over every device in scope, and drift.
#[derive(Serialize, ToSchema)]
pub(crate) struct RunStateAnswer {
    #[schema(value_type = String, format = DateTime)]
    at: jiff::Timestamp,
    /// A service level fails.
    drifted: bool,
    devices: u64,
    succeeded: u64,
    errors: u64,
    conflicts: u64,
    pending: u64,
    unreported: u64,
    /// Each service level's evaluation.
    #[schema(value_type = Vec<Object>)]
    service_levels: Vec<ringmaster_core::gates::Evaluation>,
    /// Were succeeded, now error or conflict.
    pub(crate) regressed: Vec<DeviceRef>,
    /// In scope longer than the service level allows, with no final state.
    pub(crate) overdue: Vec<DeviceRef>,
    /// Breakdown values whose error rate stands out.
    #[schema(value_type = Vec<Object>)]
    outliers: Vec<ringmaster_core::runstate::Outlier>,
}

/// The run state with device labels, shared by the API and its page.
pub(crate) async fn run_state(s: &AppState, v: &crate::View) -> Result<RunStateAnswer, ApiError> {
    let rows = s
        .engine
        .rows()
        .await
        .map_err(|e| ApiError::store("reading waves", e))?;
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
    .map_err(|e| ApiError::store("judging the run state", e))?;
    let devices = |list: &[u32]| -> Vec<DeviceRef> {
        list.iter()
            .map(|&d| DeviceRef {
                key: v.org.device_id(d).map(str::to_string),
                label: v.org.device_label(d),
            })
            .collect()
    };
    Ok(RunStateAnswer {
        at: now,
        drifted: r.drifted(),
        devices: r.devices,
        succeeded: r.succeeded,
        errors: r.errors,
        conflicts: r.conflicts,
        pending: r.pending,
        unreported: r.unreported,
        regressed: devices(&r.regressed),
        overdue: devices(&r.overdue),
        service_levels: r.service_levels,
        outliers: r.outliers,
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertsQuery {
    /// Every alert, not only the open ones.
    #[serde(default)]
    all: bool,
    /// Alerts to skip (default 0).
    #[serde(default)]
    offset: Option<usize>,
    /// Alerts returned at most (default 100, at most 1,000).
    #[serde(default)]
    limit: Option<usize>,
}

/// Run-state alerts: open ones, or every one with `?all=true`.
#[utoipa::path(get, path = "/api/alerts", params(AlertsQuery),
    responses((status = 200, description = "the alerts, a window at a time", body = [Object],
        headers(("x-total-count" = u64, description = "alerts in all")))))]
pub(crate) async fn alerts(
    State(s): State<AppState>,
    Query(q): Query<AlertsQuery>,
) -> Result<Response, ApiError> {
    let list = s
        .store
        .alerts(&s.rollout, !q.all)
        .await
        .map_err(|e| ApiError::store("reading alerts", e))?;
    let simulated = ringmaster_store::simulated(s.store.as_ref(), &s.rollout)
        .await
        .map_err(|e| ApiError::store("reading the rollout's clock", e))?;
    let total = list.len();
    let w = Window {
        offset: q.offset,
        limit: q.limit,
    };
    // Each alert says whether its times are simulated.
    let list: Vec<serde_json::Value> = w
        .slice(list)
        .into_iter()
        .map(|a| {
            let mut v = serde_json::to_value(&a).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("simulated".into(), simulated.into());
            }
            v
        })
        .collect();
    Ok(paged(list, total))
}

/// Which alert to mark, and a note for the audit log.
#[derive(Deserialize, ToSchema)]
pub(crate) struct AlertAction {
    /// The alert's key.
    key: String,
    /// Kept up to 500 characters.
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

/// Marks an alert; the note is cut to 500 characters. Err: the answer.
pub(crate) async fn mark_alert(
    s: &AppState,
    action: &str,
    key: &str,
    note: &str,
    who: &str,
) -> Result<&'static str, ApiError> {
    let (mark, verb) = alert_mark(action).ok_or(ApiError::new(
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
        Ok(false) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "no raised, open alert `{}`",
                key.chars().take(200).collect::<String>()
            ),
        )),
        Err(e) => Err(ApiError::store("marking the alert", e)),
    }
}

/// Acknowledge or resolve an alert; audited.
#[utoipa::path(post, path = "/api/alerts/{action}",
    params(("action" = String, Path, description = "acknowledge or resolve")),
    request_body = AlertAction,
    responses(
        (status = 200, description = "marked", body = Done),
        (status = 400, description = "the body is not `{\"key\": …, \"note\": …}`", body = ErrorBody),
        (status = 404, description = "no such action", body = ErrorBody),
        (status = 409, description = "no raised, open alert has that key", body = ErrorBody),
    ))]
pub(crate) async fn alert_action(
    State(s): State<AppState>,
    who: Caller,
    Path(action): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Done>, ApiError> {
    let a: AlertAction = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"key\": …, \"note\": …}}: {e}"),
        )
    })?;
    let verb = mark_alert(&s, &action, &a.key, &a.note, &who.label).await?;
    Ok(axum::Json(Done {
        done: format!("{} {verb} by {}", a.key, who.label),
    }))
}

/// Service levels over every device in scope, and drift: regressions, devices without a report, outliers.
#[utoipa::path(get, path = "/api/runstate", responses((status = 200, description = "the run state", body = RunStateAnswer)))]
pub(crate) async fn runstate(
    State(s): State<AppState>,
) -> Result<axum::Json<RunStateAnswer>, ApiError> {
    Ok(axum::Json(run_state(&s, &s.view()).await?))
}

/// Report counts at one gate round.
#[derive(Serialize, ToSchema)]
pub(crate) struct CountsAt {
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
    #[schema(value_type = Object)]
    pub counts: ringmaster_store::StateCounts,
}

/// One gate evaluation.
#[derive(Serialize, ToSchema)]
pub(crate) struct EvaluationAt {
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
    #[schema(value_type = Object)]
    pub evaluation: ringmaster_core::gates::GateResult,
}

/// Everything about one wave.
#[derive(Serialize, ToSchema)]
pub(crate) struct WaveDetail {
    wave: u32,
    version: u32,
    name: String,
    phase: String,
    /// The phase as people read it ("Proof of concept").
    phase_label: String,
    #[schema(value_type = Object)]
    state: ringmaster_core::wave::WaveState,
    devices: u64,
    #[schema(value_type = Object)]
    counts: ringmaster_store::StateCounts,
    /// Devices, reports, tickets and feedback as every screen shows them
    /// (`ringmaster_engine::figures::WaveFigures`).
    #[schema(value_type = Object)]
    figures: WaveFigures,
    #[schema(value_type = String, format = DateTime)]
    starts_at: jiff::Timestamp,
    /// The wave as planned: window, groups, mode, expected tickets.
    #[schema(value_type = Object)]
    planned: Option<serde_json::Value>,
    /// Counts over time, oldest first.
    series: Vec<CountsAt>,
    /// What the latest gate round comes to, in one sentence with the
    /// deciding goal's estimate, interval, control, stratum and the rounds
    /// seen (`ringmaster_core::gates::Verdict`); null before the first round.
    #[schema(value_type = Option<Object>)]
    verdict: Option<ringmaster_core::gates::Verdict>,
    evaluations: Vec<EvaluationAt>,
    #[schema(value_type = Vec<Object>)]
    tickets: Vec<ringmaster_store::Ticket>,
    #[schema(value_type = Vec<Object>)]
    feedback: Vec<ringmaster_store::Feedback>,
    #[schema(value_type = Vec<Object>)]
    history: Vec<ringmaster_store::Recorded>,
    /// What the wave waits for from the tenant (Intune's Multi Admin
    /// Approval), in words: "waiting for tenant approval since …, expires …",
    /// or why it is held.
    tenant_approval: Option<String>,
    /// The wave's requests for the tenant's approval, oldest first.
    #[schema(value_type = Vec<Object>)]
    approval_requests: Vec<ringmaster_store::ApprovalRequest>,
    approvals: WaveApprovals,
    /// Strata (a model, an OS build…) this wave's gates held, oldest first:
    /// their devices left the wave and later waves.
    held_strata: Vec<HeldStratum>,
}

/// A stratum a wave's gates held.
#[derive(Serialize, ToSchema)]
pub(crate) struct HeldStratum {
    /// As the gates name it: `model Latitude 7440`.
    stratum: String,
    devices: u64,
    /// The gate's sentence: estimate, interval, stratum, rounds seen.
    evidence: String,
    /// `removed`: taken out of the wave's group (`on_fail = "rollback"`);
    /// `kept back`: the policy stays on them, the wave no longer counts them.
    how: String,
    #[schema(value_type = String, format = DateTime)]
    held_at: jiff::Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    removed_at: Option<jiff::Timestamp>,
    /// Released by an operator: the devices may join the waves that start after.
    #[schema(value_type = Option<String>, format = DateTime)]
    released_at: Option<jiff::Timestamp>,
    released_by: Option<String>,
}

impl From<ringmaster_store::HeldStratum> for HeldStratum {
    fn from(h: ringmaster_store::HeldStratum) -> HeldStratum {
        HeldStratum {
            devices: h.devices.len(),
            how: if h.rollback { "removed" } else { "kept back" }.into(),
            stratum: h.stratum,
            evidence: h.evidence,
            held_at: h.held_at,
            removed_at: h.removed_at,
            released_at: h.released_at,
            released_by: h.released_by,
        }
    }
}

/// Which held stratum to release.
#[derive(Deserialize, ToSchema)]
pub(crate) struct ReleaseStratum {
    /// As the wave names it: `model Latitude 7440`.
    stratum: String,
}

/// Release a stratum a wave's gates held: its devices may join the waves
/// that start from now on (never the wave that held it). Audited.
#[utoipa::path(post, path = "/api/waves/{wave}/strata/release",
    params(("wave" = u32, Path, description = "1-based wave number", minimum = 1)),
    request_body = ReleaseStratum,
    responses(
        (status = 200, description = "released", body = Done),
        (status = 400, description = "the body is not `{\"stratum\": …}`", body = ErrorBody),
        (status = 409, description = "no such wave or held stratum, or it was released already", body = ErrorBody),
    ))]
pub(crate) async fn release_stratum(
    State(s): State<AppState>,
    who: Caller,
    Path(wave): Path<u32>,
    body: Bytes,
) -> Result<axum::Json<Done>, ApiError> {
    let r: ReleaseStratum = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"stratum\": …}}: {e}"),
        )
    })?;
    let done = release(&s, wave, &r.stratum, &who.label).await?;
    Ok(axum::Json(Done { done }))
}

/// A release by `who`, as the API and the dashboard answer it.
pub(crate) async fn release(
    s: &AppState,
    wave: u32,
    stratum: &str,
    who: &str,
) -> Result<String, ApiError> {
    let stratum: String = stratum.chars().take(300).collect();
    match s
        .engine
        .release_stratum(wave, &stratum, who, (s.clock)())
        .await
    {
        Ok(Ok(line)) => Ok(line),
        Ok(Err(why)) => Err(ApiError::new(StatusCode::CONFLICT, why)),
        Err(e) => Err(ApiError::store("releasing the stratum", e)),
    }
}

/// Who requested a wave and who approved it, under the wave's rule.
#[derive(Serialize, ToSchema)]
pub(crate) struct WaveApprovals {
    /// Different approvers the wave needs (1 unless the phase says `approvals`).
    required: u32,
    /// The requester's own approval does not count (`[approvals] distinct`).
    distinct: bool,
    /// Who first drove this plan version, when recorded.
    requester: Option<String>,
    /// Oldest first.
    approvers: Vec<Approver>,
    /// Approvals that count.
    counted: u32,
    /// `1 of 2 approvals; alice requested it, a different approver is needed`.
    summary: String,
}

/// One approval.
#[derive(Serialize, ToSchema)]
pub(crate) struct Approver {
    name: String,
    #[schema(value_type = String, format = DateTime)]
    at: jiff::Timestamp,
}

/// Everything about one wave, shared by the API and the wave page so the
/// two show the same figures; `items` is the window of its tickets and
/// feedback (newest first; their totals are in the figures).
pub(crate) async fn wave_detail(
    s: &AppState,
    wave: u32,
    items: crate::paging::Window,
) -> Result<Option<WaveDetail>, ApiError> {
    let rows = s
        .engine
        .rows()
        .await
        .map_err(|e| ApiError::store("reading waves", e))?;
    let Some(r) = wave.checked_sub(1).and_then(|i| rows.get(i as usize)) else {
        return Ok(None);
    };
    let read = |e| ApiError::store("reading the wave", e);
    let (offset, limit) = items.bounds();
    let (offset, limit) = (
        u32::try_from(offset).unwrap_or(u32::MAX),
        u32::try_from(limit).unwrap_or(u32::MAX),
    );
    let counts = live_counts(s.store.as_ref(), r).await.map_err(read)?;
    let figures = wave_figures(s.store.as_ref(), r).await.map_err(read)?;
    let series = s.store.counts_series(&r.key).await.map_err(read)?;
    let rounds = s.store.gate_rounds(&r.key).await.map_err(read)?;
    let verdict = ringmaster_core::gates::verdict(&rounds);
    let (tickets, feedback) = s
        .store
        .wave_items(&s.rollout, r.key.idx, offset, limit)
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
    let tenant_requests = s.store.tenant_approvals(&s.rollout).await.map_err(read)?;
    let tenant_approval = ringmaster_engine::engine::approval_note(&tenant_requests, &r.key);
    let approval_requests = tenant_requests
        .into_iter()
        .filter(|a| a.key == r.key)
        .map(|a| a.request)
        .collect();
    let held_strata = s
        .store
        .held_strata(&s.rollout)
        .await
        .map_err(read)?
        .into_iter()
        .filter(|h| h.key == r.key)
        .map(HeldStratum::from)
        .collect();
    let view = s.view();
    let planned = view
        .plan
        .waves
        .get(r.key.idx as usize)
        .and_then(|w| serde_json::to_value(w).ok());
    let a = s
        .engine
        .approvals(wave)
        .await
        .map_err(|e| ApiError::store("reading approvals", e))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("there is no wave {wave}")))?;
    let approvals = WaveApprovals {
        required: a.tally.required,
        distinct: a.rule.distinct,
        counted: a.tally.counted,
        summary: a.tally.to_string(),
        requester: a.requester,
        approvers: a
            .given
            .into_iter()
            .map(|g| Approver {
                name: g.approver,
                at: g.at,
            })
            .collect(),
    };
    Ok(Some(WaveDetail {
        wave,
        version: r.key.version,
        name: r.name.clone(),
        phase: r.phase.clone(),
        phase_label: ringmaster_plan::spec::PhaseKind::label_of_stored(&r.phase).to_string(),
        state: r.state,
        devices: r.members.len(),
        counts,
        figures,
        starts_at: r.starts_at,
        planned,
        series: series
            .into_iter()
            .map(|(at, counts)| CountsAt { at, counts })
            .collect(),
        verdict,
        evaluations: rounds
            .into_iter()
            .flat_map(|r| {
                let at = r.at;
                r.results
                    .into_iter()
                    .map(move |evaluation| EvaluationAt { at, evaluation })
            })
            .collect(),
        tickets,
        feedback,
        history,
        tenant_approval,
        approval_requests,
        approvals,
        held_strata,
    }))
}

/// One wave: state, counts over time, gate evaluations, tickets, feedback
/// (newest first, a window of each: `offset`, `limit`; their totals are
/// `figures.tickets` and `figures.feedback_answers`).
#[utoipa::path(get, path = "/api/waves/{wave}",
    params(("wave" = u32, Path, description = "1-based wave number", minimum = 1),
           crate::paging::Window),
    responses(
        (status = 200, description = "the wave", body = WaveDetail),
        (status = 404, description = "no such wave", body = ErrorBody),
    ))]
pub(crate) async fn wave(
    State(s): State<AppState>,
    Path(wave): Path<u32>,
    Query(items): Query<crate::paging::Window>,
) -> Result<axum::Json<WaveDetail>, ApiError> {
    match wave_detail(&s, wave, items).await? {
        Some(v) => Ok(axum::Json(v)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("there is no wave {wave}"),
        )),
    }
}

/// A notification with its delivery state. A webhook's URL is shown only
/// up to its host: the rest is its secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct OutboxEntry {
    id: i64,
    /// What the message is for; queued once per key and destination.
    key: String,
    /// `webhook` or `smtp`.
    channel: String,
    /// The mail address, or the webhook as `scheme://host/…`.
    target: String,
    audience: String,
    subject: String,
    /// Markdown.
    body: String,
    html: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: jiff::Timestamp,
    /// `pending`, `sent` or `failed` (gave up after the last attempt).
    state: String,
    attempts: u32,
    #[schema(value_type = String, format = DateTime)]
    next_at: jiff::Timestamp,
    last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    sent_at: Option<jiff::Timestamp>,
}

impl From<ringmaster_store::OutboxItem> for OutboxEntry {
    fn from(i: ringmaster_store::OutboxItem) -> OutboxEntry {
        let m = i.message;
        OutboxEntry {
            target: crate::notify::shown_target(&m.channel, &m.target),
            id: i.id,
            key: m.key,
            channel: m.channel,
            audience: m.audience,
            subject: m.subject,
            body: m.body,
            html: m.html,
            created_at: i.created_at,
            state: i.state,
            attempts: i.attempts,
            next_at: i.next_at,
            last_error: i.last_error,
            sent_at: i.sent_at,
        }
    }
}

/// Notifications with their delivery state, newest first.
#[utoipa::path(get, path = "/api/outbox", params(Window),
    responses((status = 200, description = "notifications, newest first, a window at a time",
        body = [OutboxEntry], headers(("x-total-count" = u64, description = "notifications in all")))))]
pub(crate) async fn outbox(
    State(s): State<AppState>,
    Query(w): Query<Window>,
) -> Result<Response, ApiError> {
    let (offset, limit) = w.bounds();
    let (items, total) = s
        .store
        .outbox_page(&s.rollout, offset as u64, limit as u64)
        .await
        .map_err(|e| ApiError::store("reading the outbox", e))?;
    let items: Vec<OutboxEntry> = items.into_iter().map(OutboxEntry::from).collect();
    Ok(paged(items, total))
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

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub(crate) async fn openapi_doc() -> axum::Json<serde_json::Value> {
    axum::Json(openapi())
}

/// Prometheus metrics: wave states, gate outcomes, stored reports, notifications.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain; version=0.0.4")))]
pub(crate) async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let rows = s
        .engine
        .rows()
        .await
        .map_err(|e| ApiError::store("reading waves", e))?;
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
        let c = live_counts(s.store.as_ref(), r)
            .await
            .map_err(|e| ApiError::store("reading counts", e))?;
        reports.push_str(&format!(
            "ringmaster_wave_reports{{wave=\"{}\"}} {}\n",
            r.key.idx + 1,
            c.reported()
        ));
        for round in s
            .store
            .gate_rounds(&r.key)
            .await
            .map_err(|e| ApiError::store("reading gates", e))?
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
        .map_err(|e| ApiError::store("reading the outbox", e))?
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
