//! Notifications. When a wave starts, its phase's communication plan is
//! activated: the messages for each audience are queued in the outbox; gate
//! failures, pauses and waves waiting for approval queue an alert for
//! operators. The outbox is then delivered by webhook (Teams/Slack-style
//! JSON) or SMTP, with retries and backoff, and every attempt recorded.
//!
//! Queuing is idempotent (one message per key and destination), so the
//! scheduler can run it after every tick, and again after a crash.

use crate::AppState;
use ringmaster_core::wave::WaveState;
use ringmaster_plan::comms::Audience;
use ringmaster_store::{Delivery, NewMessage, OutboxItem};

/// Who a notification is for.
pub const AUDIENCES: [&str; 4] = ["operators", "help_desk", "pilot_users", "production_users"];

/// Attempts before a message is given up.
pub const MAX_ATTEMPTS: u32 = 8;

/// A destination: a webhook URL or a mail address.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    Webhook(String),
    Mail(String),
}

/// Where notifications go. URLs can hold secrets (a webhook's key, SMTP
/// credentials): they are never logged nor shown, only their host.
#[derive(Clone, Default)]
pub struct Channels {
    pub routes: Vec<(String, Target)>,
    /// `smtp://user:pass@host:587` (STARTTLS) or `smtps://…`.
    pub smtp: Option<String>,
    pub mail_from: String,
    /// The dashboard's address as users reach it, for links in messages.
    pub public_url: String,
}

/// Shows the host of a webhook, never its path (which holds its key).
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Webhook(u) => write!(f, "Webhook({})", host(u)),
            Target::Mail(m) => write!(f, "Mail({m})"),
        }
    }
}

impl Channels {
    /// Reads `AUDIENCE=https://…` or `AUDIENCE=mailto:someone@example.com`.
    pub fn parse_route(s: &str) -> Result<(String, Target), String> {
        let (audience, target) = s.split_once('=').ok_or_else(|| {
            format!(
                "`{}`: expected AUDIENCE=URL or AUDIENCE=mailto:ADDRESS",
                shown(s)
            )
        })?;
        let audience = audience.trim().replace('-', "_");
        if !AUDIENCES.contains(&audience.as_str()) {
            return Err(format!(
                "unknown audience `{audience}`: {}",
                AUDIENCES.join(", ")
            ));
        }
        let target = target.trim();
        let t = if let Some(addr) = target.strip_prefix("mailto:") {
            if !addr.contains('@') || addr.len() > 254 {
                return Err(format!("`{addr}` is not a mail address"));
            }
            Target::Mail(addr.to_string())
        } else if target.starts_with("https://") || target.starts_with("http://") {
            reqwest::Url::parse(target)
                .map_err(|e| format!("the {audience} webhook URL is not valid: {e}"))?;
            Target::Webhook(target.to_string())
        } else {
            return Err(format!(
                "the {audience} destination must be an http(s) URL or mailto:ADDRESS"
            ));
        };
        Ok((audience, t))
    }

    /// The destinations of an audience.
    pub fn to(&self, audience: &str) -> Vec<&Target> {
        self.routes
            .iter()
            .filter(|(a, _)| a == audience)
            .map(|(_, t)| t)
            .collect()
    }

    /// One line per route for the notifications page: audience and host only.
    pub fn describe(&self) -> Vec<String> {
        self.routes
            .iter()
            .map(|(a, t)| match t {
                Target::Webhook(u) => format!("{a}: webhook to {}", host(u)),
                Target::Mail(m) => format!("{a}: mail to {m}"),
            })
            .collect()
    }
}

/// A route given on the command line, as shown in an error (no secrets).
fn shown(s: &str) -> String {
    match s.split_once('=') {
        Some((a, t)) => format!("{a}={}", host(t)),
        None => "…".into(),
    }
}

/// A queued message's destination as it may be shown: a mail address
/// whole, a webhook only as `scheme://host[:port]/…` (its path is its key).
pub(crate) fn shown_target(channel: &str, target: &str) -> String {
    if channel == "smtp" {
        return target.to_string();
    }
    match reqwest::Url::parse(target) {
        Ok(u) if u.host_str().is_some() => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{port}/…",
                u.scheme(),
                u.host_str().unwrap_or_default()
            )
        }
        _ => "(a webhook)".into(),
    }
}

/// The host of a URL: what may be shown of it.
fn host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "(invalid URL)".into())
}

/// The key in a wave's feedback link: an HMAC of the rollout, version and wave.
pub fn feedback_key(s: &AppState, wave: u32) -> String {
    use hmac::{Mac, SimpleHmac};
    let Ok(mut mac) = SimpleHmac::<sha2::Sha256>::new_from_slice(&s.link_key) else {
        return String::new();
    };
    mac.update(format!("feedback:{}:{}:{wave}", s.rollout, s.engine.version()).as_bytes());
    mac.finalize().into_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The path of a wave's feedback form.
pub fn feedback_path(s: &AppState, wave: u32) -> String {
    format!("/feedback/{wave}/{}", feedback_key(s, wave))
}

fn message(
    key: String,
    audience: &str,
    target: &Target,
    subject: &str,
    body: &str,
    html: &str,
) -> NewMessage {
    let (channel, target) = match target {
        Target::Webhook(u) => ("webhook", u.clone()),
        Target::Mail(m) => ("smtp", m.clone()),
    };
    NewMessage {
        key,
        channel: channel.into(),
        target,
        audience: audience.into(),
        subject: subject.into(),
        body: body.into(),
        html: html.into(),
    }
}

/// What the rollout's history calls for: phase communications at each
/// wave start, operator alerts at failures, pauses and approvals.
pub fn wanted(s: &AppState, history: &[ringmaster_store::Recorded]) -> Vec<NewMessage> {
    let view = s.view();
    let plan = &view.plan;
    let version = s.engine.version();
    let base = s.channels.public_url.trim_end_matches('/');
    let mut out = Vec::new();
    let to = |audience: &str| s.channels.to(audience);
    for r in history.iter().filter(|r| r.key.version == version) {
        let idx = r.key.idx as usize;
        let Some(w) = plan.waves.get(idx) else {
            continue;
        };
        let wave_no = idx + 1;
        if r.to == WaveState::Applying && r.from != WaveState::Applying {
            let first_of_phase = plan
                .phases
                .iter()
                .any(|p| p.kind == w.phase && p.waves.first() == Some(&idx));
            for m in &view.messages {
                let ours = m.wave.as_deref() == Some(w.name.as_str())
                    || (first_of_phase && m.wave.is_none() && m.phase == w.phase);
                if !ours {
                    continue;
                }
                let audience = match m.audience {
                    Audience::PilotUsers => "pilot_users",
                    Audience::ProductionUsers => "production_users",
                    Audience::HelpDesk => "help_desk",
                };
                let (mut body, mut html) = (m.markdown.clone(), m.html.clone());
                if m.audience == Audience::PilotUsers {
                    let link = format!("{base}{}", feedback_path(s, wave_no as u32));
                    body.push_str(&format!("\n\n## Feedback\nTell us how it goes: {link}\n"));
                    html.push_str(&format!(
                        "<h2>Feedback</h2><p>Tell us how it goes: <a href=\"{0}\">{0}</a></p>",
                        ringmaster_plan::report::escape(&link)
                    ));
                }
                for t in to(audience) {
                    let key = format!("start:{version}:{idx}:{audience}:{}", m.subject);
                    out.push(message(key, audience, t, &m.subject, &body, &html));
                }
            }
        }
        let alert = match r.to {
            WaveState::Paused { .. } => Some("paused"),
            WaveState::RollingBack => Some("is rolling back"),
            WaveState::Failed => Some("failed"),
            WaveState::RolledBack => Some("is rolled back"),
            WaveState::AwaitingApproval => Some("awaits approval"),
            _ => None,
        };
        if let Some(what) = alert {
            let subject = format!("{}: wave {wave_no} ({}) {what}", plan.name, w.name);
            let body = format!(
                "{subject}.\n\nWhy: {}\n\nWhen: {}\n\nBy: {}\n\nWave page: {base}/ui/waves/{wave_no}\n",
                r.why, r.at, r.actor
            );
            let html = ringmaster_plan::comms::markdown_to_html(&body);
            for t in to("operators") {
                let key = format!("alert:{version}:{idx}:{}", r.seq);
                out.push(message(key, "operators", t, &subject, &body, &html));
            }
        }
    }
    out
}

/// What the run state calls for: operators hear of alerts raised and
/// resolved (grouped by the check that found them) and get a daily digest;
/// the help desk hears of every change to a wave, the plan or its schedule.
pub fn wanted_run_state(
    s: &AppState,
    history: &[ringmaster_store::Recorded],
    alerts: &[ringmaster_core::alerts::Alert],
    audit: &[ringmaster_store::AuditEntry],
    now: jiff::Timestamp,
) -> Vec<NewMessage> {
    use std::collections::BTreeMap;
    let view = s.view();
    let plan = &view.plan;
    let base = s.channels.public_url.trim_end_matches('/');
    let to = |audience: &str| s.channels.to(audience);
    let mut out = Vec::new();
    let mut push = |audience: &str, key: String, subject: String, body: String| {
        let html = ringmaster_plan::comms::markdown_to_html(&body);
        for t in to(audience) {
            out.push(message(key.clone(), audience, t, &subject, &body, &html));
        }
    };
    let stamp = |t: i64| {
        jiff::Timestamp::from_second(t)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    // Alerts, one message per check and direction.
    let mut raised: BTreeMap<i64, Vec<&ringmaster_core::alerts::Alert>> = BTreeMap::new();
    let mut resolved: BTreeMap<i64, Vec<&ringmaster_core::alerts::Alert>> = BTreeMap::new();
    for a in alerts {
        if let Some(t) = a.raised_at {
            raised.entry(t).or_default().push(a);
        }
        if let (Some(t), Some(_)) = (a.resolved_at, a.raised_at) {
            resolved.entry(t).or_default().push(a);
        }
    }
    for (t, list) in &raised {
        let subject = format!("{}: {} alert(s) raised", plan.name, list.len());
        let mut body = format!("{subject} at {}.\n\n", stamp(*t));
        for a in list {
            body.push_str(&format!("- **{}** {}\n", a.severity.name(), a.text));
        }
        body.push_str(&format!("\nRun state: {base}/ui/runstate\n"));
        push("operators", format!("alerts:{t}"), subject, body);
    }
    for (t, list) in &resolved {
        let subject = format!("{}: {} alert(s) resolved", plan.name, list.len());
        let mut body = format!("{subject} at {}: what they showed is gone.\n\n", stamp(*t));
        for a in list {
            body.push_str(&format!("- {}\n", a.text));
        }
        push("operators", format!("alerts-resolved:{t}"), subject, body);
    }
    // The daily digest, once per (UTC) day.
    let day = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let open: Vec<_> = alerts
        .iter()
        .filter(|a| a.raised_at.is_some() && a.resolved_at.is_none())
        .collect();
    let since = now - jiff::SignedDuration::from_hours(24);
    let moves: Vec<_> = history.iter().filter(|r| r.at >= since).collect();
    let subject = format!("{}: daily digest for {day}", plan.name);
    let mut body = format!("{subject}.\n\n## Open alerts ({})\n", open.len());
    for a in &open {
        let ack = a
            .acknowledged
            .as_ref()
            .map(|(who, _)| format!(" (acknowledged by {who})"))
            .unwrap_or_default();
        body.push_str(&format!("- **{}** {}{ack}\n", a.severity.name(), a.text));
    }
    if open.is_empty() {
        body.push_str("None.\n");
    }
    body.push_str(&format!(
        "\n## The last 24 hours ({} wave change(s))\n",
        moves.len()
    ));
    for r in &moves {
        let name = plan
            .waves
            .get(r.key.idx as usize)
            .map(|w| w.name.as_str())
            .unwrap_or("?");
        body.push_str(&format!(
            "- {}: wave {} ({name}) → {}: {}\n",
            r.at,
            r.key.idx + 1,
            r.to.name(),
            r.why
        ));
    }
    body.push_str(&format!(
        "\nRun state: {base}/ui/runstate · Waves: {base}/ui\n"
    ));
    push("operators", format!("digest:{day}"), subject, body);
    // Change notices for the help desk.
    for r in history {
        let what = match (r.from, r.to) {
            (_, WaveState::Paused { .. }) => "is paused",
            (WaveState::Paused { .. }, WaveState::Applying | WaveState::Baking) => "resumes",
            (_, WaveState::RollingBack) => {
                "is being rolled back: the policy is removed from its devices"
            }
            (_, WaveState::RolledBack) => "is rolled back",
            (_, WaveState::Failed) => "failed and stopped",
            _ => continue,
        };
        let Some(w) = plan.waves.get(r.key.idx as usize) else {
            continue;
        };
        let subject = format!("{}: wave {} ({}) {what}", plan.name, r.key.idx + 1, w.name);
        let body = format!(
            "{subject}.\n\nWhy: {}\n\nWhen: {}\n\nDevices of this wave may call about it; the help-desk page lists the known issues: {base}/ui/helpdesk\n",
            r.why, r.at
        );
        push(
            "help_desk",
            format!("change:{}:{}", r.key.version, r.seq),
            subject,
            body,
        );
    }
    for e in audit
        .iter()
        .filter(|e| e.action == "plan version" || e.action == "schedule changed")
    {
        if e.action == "plan version" && e.detail.starts_with("version 1 ") {
            continue;
        }
        let subject = match e.action.as_str() {
            "plan version" => format!("{}: the rollout plan changed", plan.name),
            _ => format!("{}: the rollout schedule changed", plan.name),
        };
        let body = format!(
            "{subject} ({}) at {}.\n\nThe waves to come and their dates: {base}/ui/helpdesk\n",
            e.detail, e.at
        );
        push(
            "help_desk",
            format!("change:{}:{}", e.action, e.at),
            subject,
            body,
        );
    }
    out
}

/// Queues what the history and the run state call for; returns how many
/// messages were new.
pub async fn queue(s: &AppState) -> ringmaster_store::Result<u64> {
    if s.channels.routes.is_empty() {
        return Ok(0);
    }
    let history = s.store.history(&s.rollout).await?;
    let mut msgs = wanted(s, &history);
    let alerts = s.store.alerts(&s.rollout, false).await?;
    let audit = s.store.audit_log(&s.rollout).await?;
    msgs.extend(wanted_run_state(s, &history, &alerts, &audit, (s.clock)()));
    if ringmaster_store::simulated(s.store.as_ref(), &s.rollout).await? {
        msgs.iter_mut().for_each(mark_simulated);
    }
    s.store.enqueue(&s.rollout, &msgs, (s.clock)()).await
}

/// Said first in every message of a rollout on a simulated clock.
const SIMULATED_NOTE: &str =
    "Times in this message are simulated: this rollout runs on a simulated clock.";

/// Marks a message's times as simulated, in its text and its HTML.
fn mark_simulated(m: &mut NewMessage) {
    m.body = format!("{SIMULATED_NOTE}\n\n{}", m.body);
    m.html = format!("<p><em>{SIMULATED_NOTE}</em></p>\n{}", m.html);
}

/// Wait before attempt `n + 1`: 30 s doubling, at most an hour.
fn backoff(attempts: u32) -> jiff::SignedDuration {
    jiff::SignedDuration::from_secs((30i64 << attempts.min(7)).min(3600))
}

/// Delivers what is due; returns how many were sent.
pub async fn deliver(s: &AppState, client: &reqwest::Client) -> ringmaster_store::Result<u64> {
    let now = (s.clock)();
    let due = s.store.due_messages(&s.rollout, now, 50).await?;
    let mut sent = 0;
    for item in due {
        let outcome = match item.message.channel.as_str() {
            "webhook" => post(client, &item).await,
            "smtp" => mail(&s.channels, &item).await,
            other => Err((format!("unknown channel {other}"), false)),
        };
        let result = match outcome {
            Ok(()) => {
                sent += 1;
                Delivery::Sent
            }
            Err((e, retry)) if retry && item.attempts + 1 < MAX_ATTEMPTS => {
                Delivery::Retry(e, now + backoff(item.attempts))
            }
            Err((e, _)) => Delivery::GaveUp(e),
        };
        if let Delivery::Retry(e, _) | Delivery::GaveUp(e) = &result {
            tracing::warn!(id = item.id, audience = %item.message.audience, channel = %item.message.channel, error = %e, "notification not delivered");
        }
        s.store.finish_message(item.id, &result, now).await?;
    }
    Ok(sent)
}

/// Posts a webhook message. Err carries the reason and whether to retry.
async fn post(client: &reqwest::Client, item: &OutboxItem) -> Result<(), (String, bool)> {
    let m = &item.message;
    let body = serde_json::json!({
        "title": m.subject,
        "text": format!("**{}**\n\n{}", m.subject, m.body),
        "audience": m.audience,
    });
    match client.post(&m.target).json(&body).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            let code = r.status();
            // Throttled or the receiver failed: later. Refused: for good.
            let retry = code.as_u16() == 429 || code.as_u16() == 408 || code.is_server_error();
            Err((format!("the webhook answered {code}"), retry))
        }
        // The error text of reqwest holds the URL; it is left out.
        Err(e) => Err((format!("webhook: {}", e.without_url()), true)),
    }
}

/// Sends a mail (plain text and HTML). Err carries the reason and whether to retry.
async fn mail(c: &Channels, item: &OutboxItem) -> Result<(), (String, bool)> {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let Some(url) = &c.smtp else {
        return Err(("no SMTP server is configured".into(), false));
    };
    let m = &item.message;
    let from: Mailbox = c
        .mail_from
        .parse()
        .map_err(|_| ("the sender address is not valid".to_string(), false))?;
    let to: Mailbox = m
        .target
        .parse()
        .map_err(|_| (format!("`{}` is not a mail address", m.target), false))?;
    let email = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(m.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            m.body.clone(),
            m.html.clone(),
        ))
        .map_err(|e| (format!("building the mail: {e}"), false))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|_| ("the SMTP URL is not valid".to_string(), false))?
        .timeout(Some(std::time::Duration::from_secs(20)))
        .build();
    match transport.send(email).await {
        Ok(_) => Ok(()),
        Err(e) => Err((format!("smtp: {e}"), !e.is_permanent())),
    }
}

/// Queues and delivers, logging what fails: the scheduler calls it after each tick.
pub async fn run(s: &AppState, client: &reqwest::Client) {
    if let Err(e) = queue(s).await {
        tracing::error!(error = %e, "queuing notifications failed");
    }
    if let Err(e) = deliver(s, client).await {
        tracing::error!(error = %e, "delivering notifications failed");
    }
}

/// The HTTP client for webhooks: short timeouts, no redirects to elsewhere.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_checked_and_never_shown_whole() {
        let (a, t) =
            Channels::parse_route("help-desk=https://hooks.example.com/T0/B0/secret").unwrap();
        assert_eq!(a, "help_desk");
        assert!(t == Target::Webhook("https://hooks.example.com/T0/B0/secret".into()));
        let c = Channels {
            routes: vec![(a, t)],
            ..Default::default()
        };
        assert_eq!(
            c.describe(),
            vec!["help_desk: webhook to hooks.example.com"]
        );
        let e = Channels::parse_route("ops=https://x.example.com/secret").unwrap_err();
        assert!(e.contains("unknown audience `ops`"), "{e}");
        let e = Channels::parse_route("operators=ftp://x/secret").unwrap_err();
        assert!(!e.contains("secret") && e.contains("http(s) URL"), "{e}");
        assert!(Channels::parse_route("operators=mailto:ops@example.com").is_ok());
        assert!(Channels::parse_route("operators=mailto:nobody").is_err());
        let e = Channels::parse_route("no-equals-sign-secret").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn outbox_targets_show_the_host_only() {
        for (target, shown) in [
            (
                "https://hooks.example.com/T0/B0/secret",
                "https://hooks.example.com/…",
            ),
            (
                "https://user:pw@hooks.example.com:8443/x?sig=secret#f",
                "https://hooks.example.com:8443/…",
            ),
            ("http://10.0.0.1", "http://10.0.0.1/…"),
            ("not a url secret", "(a webhook)"),
        ] {
            assert_eq!(shown_target("webhook", target), shown, "{target}");
        }
        assert_eq!(shown_target("smtp", "desk@example.com"), "desk@example.com");
    }

    #[test]
    fn simulated_messages_say_their_times_are_simulated() {
        let mut m = message(
            "k".into(),
            "operators",
            &Target::Mail("ops@example.com".into()),
            "Baseline: wave 2 paused",
            "Baseline: wave 2 paused.\n\nWhen: 2027-01-12 09:00 CET\n",
            "<p>When: 2027-01-12 09:00 CET</p>",
        );
        mark_simulated(&mut m);
        assert!(
            m.body.starts_with(SIMULATED_NOTE) && m.body.ends_with("When: 2027-01-12 09:00 CET\n")
        );
        assert!(
            m.html
                .starts_with(&format!("<p><em>{SIMULATED_NOTE}</em></p>"))
        );
        assert_eq!(m.subject, "Baseline: wave 2 paused");
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(0).as_secs(), 30);
        assert_eq!(backoff(1).as_secs(), 60);
        assert_eq!(backoff(6).as_secs(), 1920);
        assert_eq!(backoff(7).as_secs(), 3600);
        assert_eq!(backoff(30).as_secs(), 3600);
    }
}
