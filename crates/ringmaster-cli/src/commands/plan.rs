//! `ringmaster plan`: reads `ringmaster.toml`, loads its sources and prints
//! or writes the plan. Exit 0 ready, 1 the plan has errors in its checks,
//! 2 bad input (the file, its sources or a template).

use anyhow::Context;
use ringmaster_plan::planner::{Inputs, Plan};
use ringmaster_plan::{comms, report};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The plan file.
    #[arg(default_value = "ringmaster.toml")]
    file: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write the report here instead of printing it (markdown also writes
    /// gantt.svg beside it).
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write every communication (Markdown and HTML) into this folder.
    #[arg(long, value_name = "DIR")]
    comms: Option<PathBuf>,
    /// Print the JSON Schema of the plan file and exit.
    #[arg(long)]
    schema: bool,
    /// The instant for time-relative rules and the chart's today marker.
    #[arg(long, value_name = "RFC3339", env = "RINGMASTER_NOW")]
    now: Option<jiff::Timestamp>,
    /// Plan as an administrator limited to this Intune scope tag (a name from
    /// the plan's [[scope_tags]], an id, or Default): only its devices enter
    /// the waves, and the checks count and name what lies outside.
    #[arg(long, value_name = "NAME|ID")]
    scope_tag: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Markdown,
    Html,
}

/// A plan computed from a file, with everything needed to render it.
pub struct Loaded {
    pub plan: Plan,
    pub messages: Vec<comms::Message>,
    /// The organization the plan was computed on.
    pub org: ringmaster_core::org::Org,
    /// The organization's resolved targets (the plan's scope given to new policies).
    pub res: ringmaster_core::targeting::Resolution,
    /// The plan file's text (a rollout's version is this text).
    pub text: String,
}

/// Largest template file read.
const MAX_TEMPLATE_BYTES: u64 = 256 << 10;

/// Reads and computes a plan; input errors are rendered with their place.
/// Reads and parses the plan file (bounded in size); errors show their place.
pub fn read(file: &Path) -> anyhow::Result<(String, ringmaster_plan::spec::PlanFile)> {
    let shown = file.display().to_string();
    let text = super::read_bounded(file, ringmaster_plan::MAX_PLAN_BYTES as u64, "")?;
    let spec = ringmaster_plan::parse(&text)
        .map_err(|e| crate::UserError(ringmaster_plan::render_error(&shown, &text, &e)))?;
    Ok((text, spec))
}

pub fn load(file: &Path, now: jiff::Timestamp) -> anyhow::Result<Loaded> {
    load_within(file, now, None)
}

/// [`load`] within one scope tag (`plan --scope-tag`).
pub fn load_within(
    file: &Path,
    now: jiff::Timestamp,
    scope_tag: Option<&str>,
) -> anyhow::Result<Loaded> {
    let shown = file.display().to_string();
    let (text, spec) = read(file)?;
    let base = file.parent().unwrap_or(Path::new("."));
    let rel = |v: &[String]| -> Vec<PathBuf> { v.iter().map(|p| base.join(p)).collect() };
    if spec.sources.org.is_empty() {
        return Err(crate::UserError(format!(
            "error: sources.org is empty: name the folder(s) of the directory and policy exports\n  --> {shown}"
        ))
        .into());
    }
    let mut prepared = super::conflicts::prepare(
        &rel(&spec.sources.org),
        &rel(&spec.sources.existing),
        &rel(&spec.sources.new),
        false,
        now,
    )?;
    let tag = match scope_tag {
        Some(t) => Some(
            ringmaster_plan::planner::find_scope_tag(
                &ringmaster_plan::planner::scope_tags_of(&spec),
                t,
            )
            .map_err(|e| crate::UserError(format!("--scope-tag: {e}")))?,
        ),
        None => None,
    };
    let within = tag.as_ref().map(|t| {
        ringmaster_core::scopetags::within(&prepared.org, &prepared.res.enrolled, t.tag())
    });
    // Without a device there is no wave to plan; say why before the goals complain.
    if let (Some(t), Some(w)) = (&tag, &within)
        && w.devices.is_empty()
    {
        let mut msg = format!(
            "--scope-tag: no managed device carries scope tag {}",
            t.label()
        );
        for line in w.outside(&prepared.org, &t.label()) {
            msg.push_str(&format!("\n  {line}"));
        }
        return Err(crate::UserError(msg).into());
    }
    let plan = crate::progress::step("planning", || {
        ringmaster_plan::planner::build_within(
            &spec,
            Inputs {
                org: &prepared.org,
                res: &mut prepared.res,
                proposed: &prepared.proposed,
            },
            tag.as_ref().zip(within.as_ref()),
        )
    })
    .map_err(|errs| {
        let mut out = String::new();
        for e in &errs {
            out.push_str(&ringmaster_plan::render_error(&shown, &text, e));
        }
        out.push_str(&format!("{} error(s) in the plan", errs.len()));
        crate::UserError(out)
    })?;
    let mut overrides = BTreeMap::new();
    if let Some(dir) = &spec.communications.templates {
        let dir = base.join(dir);
        for (name, _) in comms::TEMPLATES {
            let path = dir.join(name);
            if !path.exists() {
                continue;
            }
            let src = super::read_bounded(&path, MAX_TEMPLATE_BYTES, "")?;
            overrides.insert(name.to_string(), src);
        }
        if overrides.is_empty() {
            return Err(crate::UserError(format!(
                "{}: no templates there (expected any of {})",
                dir.display(),
                comms::TEMPLATES.map(|t| t.0).join(", ")
            ))
            .into());
        }
    }
    let messages = comms::render(&plan, &overrides, spec.communications.from.as_deref())
        .map_err(|e| crate::UserError(format!("communications: {e}")))?;
    Ok(Loaded {
        plan,
        messages,
        org: prepared.org,
        res: prepared.res,
        text,
    })
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// File name for a message: `03-enterprise-production_users-sales.md`.
fn message_file(i: usize, m: &comms::Message) -> String {
    let wave: String = m
        .wave
        .as_deref()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let wave = wave
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let phase = format!("{:?}", m.phase).to_ascii_lowercase();
    let audience = serde_json::to_value(m.audience)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    if wave.is_empty() {
        format!("{:02}-{phase}-{audience}", i + 1)
    } else {
        format!("{:02}-{phase}-{audience}-{wave}", i + 1)
    }
}

/// Writes each message as Markdown and as an HTML e-mail body.
pub fn write_messages(dir: &Path, messages: &[comms::Message]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (i, m) in messages.iter().enumerate() {
        let name = message_file(i, m);
        write(&dir.join(format!("{name}.md")), &m.markdown)?;
        write(&dir.join(format!("{name}.html")), &m.html)?;
    }
    Ok(())
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if a.schema {
        super::write_json(&ringmaster_plan::spec::schema())?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = a.now.unwrap_or_else(jiff::Timestamp::now);
    let Loaded { plan, messages, .. } = load_within(&a.file, now, a.scope_tag.as_deref())?;
    let today = now
        .to_zoned(jiff::tz::TimeZone::get(&plan.time_zone).unwrap_or(jiff::tz::TimeZone::UTC))
        .date();
    let body = match a.format {
        Format::Text => report::text(&plan),
        Format::Json => serde_json::to_string_pretty(&report::json(&plan, &messages))
            .context("serialising the plan")?,
        Format::Markdown => report::markdown(&plan),
        Format::Html => report::html(&plan, Some(today)),
    };
    match &a.out {
        Some(path) => {
            write(path, &body)?;
            if a.format == Format::Markdown {
                let svg = path.with_file_name("gantt.svg");
                write(&svg, &report::gantt_svg(&plan, Some(today)))?;
            }
            eprintln!("wrote {}", path.display());
        }
        None => print!("{body}"),
    }
    if let Some(dir) = &a.comms {
        write_messages(dir, &messages)?;
        eprintln!("wrote {} messages to {}", messages.len(), dir.display());
    }
    Ok(if plan.errors() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
