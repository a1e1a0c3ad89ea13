//! `ringmaster rules check|eval`: debug a rule before saving it in the portal.

use ringmaster_core::rules::{EvalContext, Grammar, ObjValue, Object, Rule, one_row};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Validate a rule: exit 0 when valid, 2 with the place and a caret when not.
    #[command(
        after_help = "Examples:\n  ringmaster rules check 'user.department -eq \"Sales\"'\n  ringmaster rules check --grammar filter '(device.model -startsWith \"Surface\")'"
    )]
    Check {
        #[command(flatten)]
        grammar: GrammarArg,
        rule: String,
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a rule against one object and print true or false.
    #[command(
        after_help = "Example:\n  echo '{\"device\": {\"model\": \"Surface Laptop 5\"}}' > d.json\n  ringmaster rules eval --grammar filter '(device.model -startsWith \"Surface\")' --object d.json"
    )]
    Eval {
        #[command(flatten)]
        grammar: GrammarArg,
        rule: String,
        /// JSON file: {"device": {"<property>": value, ...}} or {"user": {...}}.
        #[arg(long, value_name = "FILE")]
        object: PathBuf,
        /// Instant that `system.now` stands for.
        #[arg(long, value_name = "RFC3339")]
        now: Option<jiff::Timestamp>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct GrammarArg {
    /// entra (dynamic membership), filter (Intune assignment filter) or ca (Conditional Access device filter).
    #[arg(long, default_value = "entra", value_parser = parse_grammar)]
    grammar: Grammar,
}

fn parse_grammar(s: &str) -> Result<Grammar, String> {
    Grammar::parse(s).ok_or_else(|| format!("'{s}' is not a grammar; use entra, filter or ca"))
}

/// Largest object file read by `rules eval`.
const MAX_OBJECT_BYTES: u64 = 1 << 20;

pub fn run(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Check {
            grammar,
            rule,
            json,
        } => check(grammar.grammar, &rule, json),
        Cmd::Eval {
            grammar,
            rule,
            object,
            now,
            json,
        } => eval(grammar.grammar, &rule, &object, now, json),
    }
}

fn parsed(grammar: Grammar, rule: &str, json: bool) -> Result<Rule, ExitCode> {
    match Rule::parse(grammar, rule) {
        Ok(r) => Ok(r),
        Err(e) => {
            if json {
                let v = serde_json::json!({
                    "valid": false,
                    "grammar": grammar,
                    "error": {
                        "message": e.message,
                        "expected": e.expected,
                        "column": e.column(rule),
                        "start": e.span.start,
                        "end": e.span.end,
                    }
                });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                eprintln!("invalid rule:\n{}", e.render(rule));
            }
            Err(ExitCode::from(2))
        }
    }
}

fn check(grammar: Grammar, rule: &str, json: bool) -> anyhow::Result<ExitCode> {
    let r = match parsed(grammar, rule, json) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if json {
        crate::commands::write_json(&serde_json::json!({
            "valid": true,
            "grammar": grammar,
            "object": r.object,
            "warnings": r.warnings,
        }))?;
    } else {
        println!("valid {} over {} objects", grammar.one(), r.object.prefix());
        for w in &r.warnings {
            println!("warning: {}", w.message);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn eval(
    grammar: Grammar,
    rule: &str,
    object: &std::path::Path,
    now: Option<jiff::Timestamp>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let r = match parsed(grammar, rule, json) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let text = super::read_bounded(object, MAX_OBJECT_BYTES, "")?;
    let v: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| crate::UserError(format!("{}: not valid JSON: {e}", object.display())))?;
    let (kind, props) = v
        .as_object()
        .and_then(|o| o.iter().next().filter(|_| o.len() == 1))
        .ok_or_else(|| {
            crate::UserError(format!(
                "{}: expected {{\"device\": {{...}}}} or {{\"user\": {{...}}}}",
                object.display()
            ))
        })?;
    let obj = match kind.as_str() {
        "device" => Object::Device,
        "user" => Object::User,
        "app" => Object::App,
        other => {
            return Err(crate::UserError(format!(
                "{}: '{other}' is not device, user or app",
                object.display()
            ))
            .into());
        }
    };
    if obj != r.object {
        return Err(crate::UserError(format!(
            "the rule is about {} objects but {} holds a {kind}",
            r.object.prefix(),
            object.display()
        ))
        .into());
    }
    let props = props.as_object().ok_or_else(|| {
        crate::UserError(format!(
            "{}: \"{kind}\" must be an object of properties",
            object.display()
        ))
    })?;
    let mut fields = Vec::new();
    for (k, v) in props {
        let val = to_obj_value(v)
            .map_err(|m| crate::UserError(format!("{}: property '{k}': {m}", object.display())))?;
        fields.push((k.clone(), val));
    }
    let table = one_row(grammar, obj, &fields)
        .map_err(|m| crate::UserError(format!("{}: {m}", object.display())))?;
    let ctx = EvalContext::new(now.unwrap_or_else(jiff::Timestamp::now));
    let trace = r.trace(&table, 0, &ctx);
    if json {
        crate::commands::write_json(&serde_json::json!({
            "result": trace.result,
            "grammar": grammar,
            "object": obj,
            "comparisons": trace.leaves,
            "warnings": r.warnings,
        }))?;
    } else {
        println!("{}", trace.result);
    }
    Ok(ExitCode::SUCCESS)
}

fn to_obj_value(v: &serde_json::Value) -> Result<ObjValue, String> {
    use serde_json::Value as V;
    Ok(match v {
        V::Null => ObjValue::Null,
        V::String(s) => ObjValue::Str(s.clone()),
        V::Bool(b) => ObjValue::Str(b.to_string()),
        V::Number(n) => ObjValue::Str(n.to_string()),
        V::Array(items) if items.iter().all(|i| i.is_object()) && !items.is_empty() => {
            ObjValue::Records(
                items
                    .iter()
                    .map(|i| {
                        i.as_object()
                            .into_iter()
                            .flatten()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    v.as_str()
                                        .map(str::to_string)
                                        .unwrap_or_else(|| v.to_string()),
                                )
                            })
                            .collect()
                    })
                    .collect(),
            )
        }
        V::Array(items) => ObjValue::List(
            items
                .iter()
                .map(|i| match i {
                    V::String(s) => Ok(s.clone()),
                    V::Number(n) => Ok(n.to_string()),
                    V::Bool(b) => Ok(b.to_string()),
                    _ => Err("lists hold strings".to_string()),
                })
                .collect::<Result<_, _>>()?,
        ),
        V::Object(_) => return Err("expected a string, boolean, number, list or null".into()),
    })
}
