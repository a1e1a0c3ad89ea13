//! `ringmaster conflicts`: setting conflicts and not-applicable devices,
//! before anything is deployed. Exit 0 clean, 1 conflicts found, 2 bad input.

use ringmaster_core::conflicts::{
    Acceptance, Breakdowns, ConflictReport, Finding, FindingKind, PolicyValue, Scope, analyze_with,
};
use ringmaster_core::model::{Assignment, Target};
use ringmaster_core::org::Org;
use ringmaster_core::scopetags::{DEFAULT_TAG, Tag, Within, restrict, within};
use ringmaster_core::targeting::{Resolution, resolve};
use ringmaster_plan::report::thousands as count;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Folder(s) of exports: the organization and its deployed policies.
    #[arg(long = "org", required = true, value_name = "DIR")]
    org: Vec<PathBuf>,
    /// More policy exports to include (e.g. a baseline being evaluated).
    #[arg(long = "policies", value_name = "DIR|FILE")]
    policies: Vec<PathBuf>,
    /// Policy exports that are not deployed yet; marked proposed in the report.
    #[arg(long = "proposed", value_name = "DIR|FILE")]
    proposed: Vec<PathBuf>,
    /// Treat policies without assignments as assigned to All devices.
    #[arg(long)]
    assume_all_devices: bool,
    /// Analyse this policy alone (the pilot's isolated step) instead of all together.
    #[arg(long, value_name = "POLICY")]
    isolated: Option<String>,
    /// TOML file of accepted deviations: [[accept]] setting, policies, reason, expires.
    #[arg(long, value_name = "FILE")]
    accept: Option<PathBuf>,
    /// An earlier `--format json` report: say which findings are new since, and which are gone
    /// (after an import: a policy assigned or changed elsewhere that now meets this one).
    #[arg(long, value_name = "FILE")]
    since: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Show at most this many findings in text and markdown (all in json and csv).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// The instant for time-relative rules and acceptance expiry.
    #[arg(long, value_name = "RFC3339", env = "RINGMASTER_NOW")]
    now: Option<jiff::Timestamp>,
    /// Work as an administrator limited to this Intune scope tag: its id
    /// (Graph exports), Default, or its name (IntuneCD backups name tags).
    /// Only its policies are analysed, on its devices; what lies outside is
    /// counted and named.
    #[arg(long, value_name = "ID|NAME")]
    scope_tag: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Csv,
    Markdown,
}

/// Prepared organization, resolution and scope, shared with `explain`.
pub struct Prepared {
    pub org: Org,
    pub res: Resolution,
    pub proposed: Vec<bool>,
    /// What the import read and skipped; warnings include extra policies already present.
    pub report: ringmaster_import::ImportReport,
}

/// Loads the org plus extra and proposed policies, and resolves targets.
pub fn prepare(
    org: &[PathBuf],
    extra: &[PathBuf],
    proposed: &[PathBuf],
    assume_all: bool,
    now: jiff::Timestamp,
) -> anyhow::Result<Prepared> {
    let mut p = load(org, extra, proposed, assume_all)?;
    p.res = crate::progress::step("resolving groups and targets", || resolve(&p.org, now));
    Ok(p)
}

/// [`prepare`] without resolving: `res` is empty, for a caller that
/// resolves only what it asks about (one device).
pub fn load(
    org: &[PathBuf],
    extra: &[PathBuf],
    proposed: &[PathBuf],
    assume_all: bool,
) -> anyhow::Result<Prepared> {
    let mut loaded = super::load_org(org)?;
    let mut report = loaded.report;
    let mut is_proposed = vec![false; loaded.org.policies.len()];
    for (paths, flag) in [(extra, false), (proposed, true)] {
        if paths.is_empty() {
            continue;
        }
        let more =
            super::import(paths).map_err(|e| crate::UserError(format!("import failed: {e}")))?;
        let n = more.org.policies.len();
        let rejected = loaded.org.add_policies(more.org.policies);
        for p in &rejected {
            report.warnings.push(format!(
                "policy '{}' ({}) is already in the organization; the copy from {} is ignored",
                p.name, p.id, p.source
            ));
        }
        is_proposed.extend(std::iter::repeat_n(flag, n - rejected.len()));
    }
    if assume_all {
        for p in loaded
            .org
            .policies
            .iter_mut()
            .filter(|p| p.assignments.is_empty())
        {
            p.assignments.push(Assignment {
                target: Target::AllDevices,
                filter: None,
            });
        }
    }
    Ok(Prepared {
        org: loaded.org,
        res: Default::default(),
        proposed: is_proposed,
        report,
    })
}

/// The findings of an earlier JSON report, as keys.
fn earlier(path: &Path) -> anyhow::Result<Vec<ringmaster_core::conflicts::FindingKey>> {
    let text = super::read_bounded(path, 256 << 20, "")?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| crate::UserError(format!("{}: not JSON: {e}", path.display())))?;
    let findings = v["findings"].as_array().ok_or_else(|| {
        crate::UserError(format!(
            "{}: no `findings`: give a report written by `ringmaster conflicts --format json`",
            path.display()
        ))
    })?;
    findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let kind = f["kind"].as_str();
            let setting = f["setting_id"].as_str();
            let mut policies: Vec<String> = f["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["policy_id"].as_str().map(str::to_string))
                .collect();
            policies.sort_unstable();
            policies.dedup();
            match (kind, setting) {
                (Some(k), Some(s)) => Ok(ringmaster_core::conflicts::FindingKey {
                    kind: k.to_string(),
                    setting_id: s.to_string(),
                    policies,
                }),
                _ => Err(crate::UserError(format!(
                    "{}: finding {} has no kind or setting_id",
                    path.display(),
                    i + 1
                ))
                .into()),
            }
        })
        .collect()
}

fn print_changes(c: &ringmaster_core::conflicts::Changes, since: &str) {
    println!("Since {since}: {} new, {} gone", c.new.len(), c.gone.len());
    for (what, list) in [("new", &c.new), ("gone", &c.gone)] {
        for k in list.iter().take(20) {
            println!(
                "  {what:<4} {} {} ({})",
                k.kind,
                k.setting_id,
                k.policies.join(", ")
            );
        }
        if list.len() > 20 {
            println!("  … and {} more {what}", list.len() - 20);
        }
    }
    println!();
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptFile {
    #[serde(default)]
    accept: Vec<AcceptEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptEntry {
    setting: String,
    #[serde(default)]
    policies: Vec<String>,
    reason: String,
    expires: jiff::civil::Date,
}

/// Largest acceptance file read.
const MAX_ACCEPT_BYTES: u64 = 1 << 20;

pub fn read_acceptances(path: &Path) -> anyhow::Result<Vec<Acceptance>> {
    let text = super::read_bounded(path, MAX_ACCEPT_BYTES, "")?;
    let file: AcceptFile = toml::from_str(&text).map_err(|e| {
        let err = ringmaster_plan::PlanError {
            span: e.span().unwrap_or(0..0),
            message: e.message().to_string(),
        };
        crate::UserError(ringmaster_plan::render_error(
            &path.display().to_string(),
            &text,
            &err,
        ))
    })?;
    for (i, a) in file.accept.iter().enumerate() {
        if a.reason.trim().is_empty() {
            return Err(crate::UserError(format!(
                "{}: accept entry {} has an empty reason",
                path.display(),
                i + 1
            ))
            .into());
        }
    }
    Ok(file
        .accept
        .into_iter()
        .map(|a| Acceptance {
            setting: a.setting,
            policies: a.policies,
            reason: a.reason,
            expires: a.expires,
        })
        .collect())
}

/// A scope tag given on the command line, without a plan to name it.
pub struct TagArg {
    pub id: String,
    pub name: Option<String>,
    pub label: String,
}

impl TagArg {
    pub fn parse(needle: &str) -> anyhow::Result<TagArg> {
        let n = needle.trim();
        if n.is_empty() || n.chars().count() > 128 {
            return Err(crate::UserError(
                "--scope-tag needs a tag id, Default or a tag name of up to 128 characters".into(),
            )
            .into());
        }
        Ok(if n == DEFAULT_TAG || n.eq_ignore_ascii_case("default") {
            TagArg {
                id: DEFAULT_TAG.into(),
                name: Some("Default".into()),
                label: "Default (0)".into(),
            }
        } else if n.bytes().all(|b| b.is_ascii_digit()) {
            TagArg {
                id: n.into(),
                name: None,
                label: n.into(),
            }
        } else {
            // Only IntuneCD writes names; a Graph export holds ids.
            TagArg {
                id: n.into(),
                name: Some(n.into()),
                label: format!("'{n}'"),
            }
        })
    }

    pub fn tag(&self) -> Tag<'_> {
        Tag {
            id: &self.id,
            name: self.name.as_deref(),
        }
    }
}

/// Splits the prepared organization by the tag and cuts the policies'
/// reach to its devices. A tag nothing carries is an error: it is most
/// likely a name where the export holds ids.
pub fn within_tag(p: &mut Prepared, needle: &str) -> anyhow::Result<(TagArg, Within)> {
    let t = TagArg::parse(needle)?;
    let w = within(&p.org, &p.res.enrolled, t.tag());
    if w.policies.is_empty() && w.devices.is_empty() {
        return Err(crate::UserError(format!(
            "no policy or device carries scope tag {}: Graph exports hold tag ids (e.g. --scope-tag 3), IntuneCD backups hold names",
            t.label
        ))
        .into());
    }
    restrict(&p.org, &mut p.res, &w.devices);
    Ok((t, w))
}

pub fn today(now: jiff::Timestamp) -> jiff::civil::Date {
    now.to_zoned(jiff::tz::TimeZone::UTC).date()
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let now = a.now.unwrap_or_else(jiff::Timestamp::now);
    let mut p = prepare(&a.org, &a.policies, &a.proposed, a.assume_all_devices, now)?;
    let scoped = match &a.scope_tag {
        Some(t) => Some(within_tag(&mut p, t)?),
        None => None,
    };
    let accepted = match &a.accept {
        Some(f) => read_acceptances(f)?,
        None => Vec::new(),
    };
    let scope: Vec<usize> = match &a.isolated {
        Some(name) => {
            let found = p.org.find_policies(name);
            match found.as_slice() {
                [one] => vec![*one],
                [] => return Err(crate::UserError(format!("no policy matches '{name}'")).into()),
                _ => {
                    return Err(crate::UserError(format!(
                        "'{name}' matches {} policies; name one by id",
                        found.len()
                    ))
                    .into());
                }
            }
        }
        None => (0..p.org.policies.len()).collect(),
    };
    let scope: Vec<usize> = match &scoped {
        Some((t, w)) => {
            if let [one] = scope.as_slice()
                && !w.policies.contains(one)
            {
                return Err(crate::UserError(format!(
                    "policy '{}' is outside scope tag {}",
                    p.org.policies[*one].name, t.label
                ))
                .into());
            }
            scope
                .into_iter()
                .filter(|i| w.policies.contains(i))
                .collect()
        }
        None => scope,
    };
    let outside: Vec<String> = match &scoped {
        Some((t, w)) => w.outside(&p.org, &t.label),
        None => Vec::new(),
    };
    // Text and markdown show the first `--limit` findings with their
    // devices by platform and group; CSV shows none of that; JSON all of it.
    let breakdowns = match a.format {
        Format::Json => Breakdowns::All,
        Format::Csv => Breakdowns::First(0),
        Format::Text | Format::Markdown => Breakdowns::First(a.limit),
    };
    let report = crate::progress::step("finding conflicts", || {
        analyze_with(
            &p.org,
            &p.res,
            &Scope {
                policies: &scope,
                proposed: &p.proposed,
                accepted: &accepted,
                today: today(now),
            },
            breakdowns,
        )
    });
    let changes = match &a.since {
        Some(f) => Some(ringmaster_core::conflicts::changes(&earlier(f)?, &report)),
        None => None,
    };
    match a.format {
        Format::Json => {
            let mut v = serde_json::to_value(&report)?;
            if let Some(c) = &changes {
                v["changes"] = serde_json::to_value(c)?;
            }
            if let Some((t, w)) = &scoped {
                v["scope_tag"] = serde_json::json!({
                    "id": t.id,
                    "devices": w.devices.len(),
                    "policies_outside": w.policies_outside.iter().map(|&i| &p.org.policies[i].id).collect::<Vec<_>>(),
                    "devices_outside": w.devices_outside.len(),
                    "outside": outside,
                });
            }
            super::write_json(&v)?
        }
        Format::Csv => write_csv(&report)?,
        Format::Markdown => {
            let mut devices = p.org.devices.rows;
            if let Some((t, w)) = &scoped {
                println!("Within scope tag {}:\n", t.label);
                for line in &outside {
                    println!("- {line}");
                }
                println!();
                devices = w.devices.len() as u32;
            }
            print!("{}", markdown(&report, devices, a.limit))
        }
        Format::Text => {
            for w in &p.report.warnings {
                eprintln!("warning: {w}");
            }
            if let (Some(c), Some(f)) = (&changes, &a.since) {
                print_changes(c, &f.display().to_string());
            }
            let devices = match &scoped {
                Some((t, w)) => {
                    println!(
                        "Within scope tag {}: {} policies, {} devices.",
                        t.label,
                        count(w.policies.len() as u64),
                        count(w.devices.len())
                    );
                    for line in &outside {
                        println!("  {line}");
                    }
                    println!();
                    w.devices.len() as u32
                }
                None => p.org.devices.rows,
            };
            print!("{}", text(&report, devices, a.isolated.is_some(), a.limit));
        }
    }
    let code = if report.blocking() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    // The process ends next: freeing thousands of findings' device sets one
    // by one only delays that (a twentieth of a run at a million devices).
    std::mem::forget(report);
    Ok(code)
}

fn pairs(v: &[(String, u64)]) -> String {
    v.iter()
        .map(|(k, n)| format!("{k} {}", count(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary(r: &ConflictReport, devices: u32) -> String {
    let n = |k: FindingKind| r.findings.iter().filter(|f| f.kind == k).count();
    format!(
        "Checked {} policies ({} settings) on {} devices: {} conflicts, {} unverifiable overlaps, {} that may be not configured, {} resolved by most restrictive, {} where compliance wins{}; {} blocking. {} policies reach devices that cannot take them.",
        r.policies,
        count(r.settings as u64),
        count(devices as u64),
        n(FindingKind::Conflict),
        n(FindingKind::Unverifiable),
        n(FindingKind::MayBeNotConfigured),
        n(FindingKind::MostRestrictive),
        n(FindingKind::ComplianceWins),
        antivirus(n(FindingKind::MostSecure), n(FindingKind::NothingDelivered)),
        r.blocking(),
        r.not_applicable.len()
    )
}

/// Antivirus resolutions, named only where a report has any (reports from
/// tenants without antivirus overlaps read as before).
fn antivirus(most_secure: usize, nothing: usize) -> String {
    if most_secure + nothing == 0 {
        return String::new();
    }
    format!(
        ", {most_secure} resolved by most secure (antivirus), {nothing} where nothing is delivered"
    )
}

fn accepted_note(f: &Finding) -> Option<String> {
    f.accepted.as_ref().map(|a| {
        if a.expired {
            format!("acceptance EXPIRED on {}: {}", a.expires, a.reason)
        } else {
            format!("accepted until {}: {}", a.expires, a.reason)
        }
    })
}

pub fn text(r: &ConflictReport, devices: u32, isolated: bool, limit: usize) -> String {
    let mut o = String::new();
    o.push_str(&summary(r, devices));
    o.push('\n');
    if isolated {
        o.push_str("Isolated mode: the policy alone, as the pilot's first step deploys it.\n");
    }
    for f in r.findings.iter().take(limit) {
        o.push_str(&format!(
            "\n{}  {}\n  id: {}\n",
            f.kind.as_str().to_uppercase(),
            f.setting,
            f.setting_id
        ));
        o.push_str(&format!(
            "  {} devices ({})\n",
            count(f.devices),
            pairs(&f.by_platform)
        ));
        if !f.by_group.is_empty() {
            o.push_str(&format!("  through: {}\n", pairs(&f.by_group)));
        }
        for v in &f.values {
            let proposed = if v.proposed { " (proposed)" } else { "" };
            o.push_str(&format!(
                "    {:<12} {}{proposed}  [{} devices]\n",
                v.label.as_deref().unwrap_or(&v.value),
                v.name,
                count(v.devices)
            ));
            if let Some(form) = &v.written_as {
                o.push_str(&format!("                 set as {form}\n"));
            }
            if let Some(why) = &v.maybe_default {
                o.push_str(&format!("                 may be not configured: {why}\n"));
            }
        }
        if let Some(e) = &f.effective {
            o.push_str(&format!("  effective: {e}\n"));
        }
        if let Some(src) = f.source {
            o.push_str(&format!("  rule: {src}\n"));
        }
        o.push_str(&format!("  e.g. {}\n", f.sample_devices.join(", ")));
        if let Some(note) = accepted_note(f) {
            o.push_str(&format!("  {note}\n"));
        }
    }
    if r.findings.len() > limit {
        o.push_str(&format!(
            "\n… {} more findings (--limit, or --format json)\n",
            r.findings.len() - limit
        ));
    }
    if !r.not_applicable.is_empty() {
        o.push_str(
            "\nNOT APPLICABLE (devices the policy reaches but whose platform, OS edition or OS version cannot take it)\n",
        );
        for n in &r.not_applicable {
            o.push_str(&format!(
                "  {:>9}  {}  ({})\n",
                count(n.devices),
                n.name,
                pairs(&n.by_platform)
            ));
        }
    }
    if !r.settings_not_applicable.is_empty() {
        o.push_str(
            "\nSETTINGS NOT APPLICABLE (devices the policy applies to whose Windows version the setting does not support; not blocking)\n",
        );
        for n in r.settings_not_applicable.iter().take(limit) {
            o.push_str(&format!(
                "  {:>9}  {}: {} ({}) — {}\n",
                count(n.devices),
                n.name,
                n.setting,
                n.setting_id,
                n.reason
            ));
        }
        if r.settings_not_applicable.len() > limit {
            o.push_str(&format!(
                "  … {} more (--limit, or --format json)\n",
                r.settings_not_applicable.len() - limit
            ));
        }
    }
    if let Some(first) = r.rule_free_applies.first() {
        o.push_str(&format!(
            "\nAPPLIED INSTEAD (the same settings; the profile without applicability rules applies — {})\n",
            first.source
        ));
        for n in &r.rule_free_applies {
            o.push_str(&format!(
                "  {:>9}  '{}' instead of '{}'\n",
                count(n.devices),
                n.applied,
                n.instead_of
            ));
        }
    }
    o
}

/// A value, with the form the policy wrote when it differs from the
/// setting id, and why it may be the service default when it may.
fn value_note(v: &PolicyValue) -> String {
    let shown = v.label.as_deref().unwrap_or(&v.value);
    let value = match &v.written_as {
        Some(form) => format!("{shown} (set as {form})"),
        None => shown.to_string(),
    };
    match &v.maybe_default {
        Some(why) => format!("{value} (may be not configured: {why})"),
        None => value,
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(r: &ConflictReport, devices: u32, limit: usize) -> String {
    let mut o = format!("# Conflict report\n\n{}\n\n", summary(r, devices));
    o.push_str(
        "| kind | setting | policy | value | devices | accepted |\n|---|---|---|---|---:|---|\n",
    );
    for f in r.findings.iter().take(limit) {
        for v in &f.values {
            let proposed = if v.proposed { " (proposed)" } else { "" };
            o.push_str(&format!(
                "| {} | {} (`{}`) | {}{proposed} | {} | {} | {} |\n",
                f.kind.as_str(),
                md_cell(&f.setting),
                md_cell(&f.setting_id),
                md_cell(&v.name),
                md_cell(&value_note(v)),
                count(f.devices),
                md_cell(&accepted_note(f).unwrap_or_default())
            ));
        }
    }
    if !r.not_applicable.is_empty() {
        o.push_str("\n## Not applicable\n\n| policy | devices | platforms |\n|---|---:|---|\n");
        for n in &r.not_applicable {
            o.push_str(&format!(
                "| {} | {} | {} |\n",
                md_cell(&n.name),
                count(n.devices),
                pairs(&n.by_platform)
            ));
        }
    }
    if !r.settings_not_applicable.is_empty() {
        o.push_str("\n## Settings not applicable\n\n| policy | setting | needs | devices |\n|---|---|---|---:|\n");
        for n in r.settings_not_applicable.iter().take(limit) {
            o.push_str(&format!(
                "| {} | {} (`{}`) | {} | {} |\n",
                md_cell(&n.name),
                md_cell(&n.setting),
                md_cell(&n.setting_id),
                md_cell(&n.reason),
                count(n.devices)
            ));
        }
    }
    o
}

fn write_csv(r: &ConflictReport) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout());
    w.write_record([
        "kind",
        "setting_id",
        "setting",
        "policy_id",
        "policy",
        "value",
        "proposed",
        "devices",
        "policy_devices",
        "effective",
        "accepted",
        "maybe_default",
    ])?;
    for f in &r.findings {
        for v in &f.values {
            w.write_record([
                f.kind.as_str(),
                &f.setting_id,
                &f.setting,
                &v.policy_id,
                &v.name,
                &v.value,
                if v.proposed { "true" } else { "false" },
                &f.devices.to_string(),
                &v.devices.to_string(),
                f.effective.as_deref().unwrap_or(""),
                &accepted_note(f).unwrap_or_default(),
                v.maybe_default.as_deref().unwrap_or(""),
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}
