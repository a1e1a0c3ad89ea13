//! PowerShell scripts that post Graph JSON held in here-strings
//! (`$body = @" … "@`, `@' … '@`). Each body that is a Graph record (it has
//! an `@odata.type` ringmaster knows, or the keys of a filter or policy) is
//! read; other bodies are passed over with a note naming their line. A
//! `@"` body that expands a variable (`$tenantId`) only has its value when
//! the script runs, so it is passed over too.

use super::{Read, Record};
use serde_json::Value;

const NONE: &str = "a PowerShell script without a DSC configuration or Graph JSON";

/// A here-string: the line it opens on, its first body line, its text.
struct Here {
    line: usize,
    body_line: usize,
    text: String,
    expands: bool,
}

/// The here-strings of a script, found line by line (a here-string opens
/// at the end of a line and closes at the start of one).
fn here_strings(text: &str) -> Vec<Here> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_end();
        let quote = if t.ends_with("@\"") {
            '"'
        } else if t.ends_with("@'") {
            '\''
        } else {
            i += 1;
            continue;
        };
        let close = format!("{quote}@");
        match lines[i + 1..].iter().position(|l| l.starts_with(&close)) {
            Some(n) => {
                out.push(Here {
                    line: i + 1,
                    body_line: i + 2,
                    text: lines[i + 1..i + 1 + n].join("\n"),
                    expands: quote == '"',
                });
                i += n + 2;
            }
            None => i += 1,
        }
    }
    out
}

/// A `@"` body as PowerShell would expand it: backtick escapes applied;
/// `Err` with the first variable it expands.
fn expand(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('0') => out.push('\0'),
                Some(other) => out.push(other),
                None => out.push('`'),
            },
            '$' if chars
                .peek()
                .is_some_and(|n| n.is_alphanumeric() || "_{(".contains(*n)) =>
            {
                let var: String = std::iter::once('$')
                    .chain(std::iter::from_fn(|| {
                        chars.next_if(|n| n.is_alphanumeric() || "_:{(".contains(*n))
                    }))
                    .collect();
                return Err(var);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The Graph records in a script's here-strings, and notes on the rest.
pub fn read(text: &str) -> Read {
    let mut out = Read::default();
    for h in here_strings(text) {
        let body = h.text.trim_start();
        if !body.starts_with(['{', '[']) {
            continue;
        }
        let line = h.line;
        let json = if h.expands {
            match expand(&h.text) {
                Ok(t) => t,
                Err(var) => {
                    out.skipped.push(format!(
                        "line {line}: a JSON here-string that expands the PowerShell variable {var}, which only has a value when the script runs"
                    ));
                    continue;
                }
            }
        } else {
            h.text.clone()
        };
        let v: Value = match serde_json::from_str(&json) {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                let msg = msg
                    .rsplit_once(" at line ")
                    .map_or(msg.as_str(), |(m, _)| m);
                out.skipped.push(format!(
                    "line {line}: a here-string that is not valid JSON (line {}, column {}): {msg}",
                    h.body_line + e.line() - 1,
                    e.column()
                ));
                continue;
            }
        };
        let (items, listed) = match v {
            Value::Array(a) => (a, true),
            v => (vec![v], false),
        };
        let mut others = 0;
        let mut admx = false;
        for item in items {
            if crate::value_kind(&item, None).is_some() {
                out.records.push(Record {
                    value: item,
                    line: Some(line),
                });
            } else {
                admx |= item.get("definition@odata.bind").is_some();
                others += 1;
            }
        }
        if others > 0 {
            let what = if admx {
                "ADMX definition values, without the policy they belong to (the script names it elsewhere)"
            } else if listed {
                "JSON objects that are not Graph records ringmaster reads"
            } else {
                "a JSON object that is not a Graph record ringmaster reads"
            };
            out.skipped.push(format!("line {line}: {what}"));
        }
    }
    if out.records.is_empty() {
        out.skipped.push(NONE.into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn graph_json_in_here_strings() {
        let text = r##"# Creates filters
$url = "https://graph.microsoft.com/beta/deviceManagement/assignmentFilters"
$Corporate = @"
{
    "displayName": "Windows-Corporate",
    "platform": "windows10AndLater",
    "rule": "(device.deviceOwnership -eq \"Corporate\")"
}
"@

$Compliance = @'
{
    "@odata.type":  "#microsoft.graph.windows10CompliancePolicy",
    "displayName":  "Immediate",
    "osMinimumVersion":  "10.0.19045.0"
}
'@
$Tabs = @"
{ "@odata.type": "#microsoft.graph.windows10CustomConfiguration", "displayName": "Cost `$5" }
"@
Invoke-MgGraphRequest -Method POST -Uri $url -Body $Corporate
"##;
        let r = read(text);
        assert_eq!(r.skipped, Vec::<String>::new());
        let got: Vec<(Option<usize>, &Value)> = r
            .records
            .iter()
            .map(|r| (r.line, &r.value["displayName"]))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(3), &json!("Windows-Corporate")),
                (Some(11), &json!("Immediate")),
                (Some(18), &json!("Cost $5")),
            ]
        );
    }

    #[test]
    fn bodies_passed_over_say_why() {
        let check = |text: &str, expect: &[&str]| assert_eq!(read(text).skipped, expect, "{text}");
        check("Write-Host 'hello'\n", &[NONE]);
        check(
            "$b = @\"\n{\n  \"value\": \"$myTenantID\"\n}\n\"@\n",
            &[
                "line 1: a JSON here-string that expands the PowerShell variable $myTenantID, which only has a value when the script runs",
                NONE,
            ],
        );
        check(
            "\n$b = @'\n{\n  \"a\": 1,\n  \"b\":\n}\n'@\n",
            &[
                "line 2: a here-string that is not valid JSON (line 6, column 1): expected value",
                NONE,
            ],
        );
        check(
            "$b = @\"\n[\n {\"definition@odata.bind\": \"x\", \"enabled\": \"true\"}\n]\n\"@\n",
            &[
                "line 1: ADMX definition values, without the policy they belong to (the script names it elsewhere)",
                NONE,
            ],
        );
        // Here-strings that are not JSON are not Graph bodies at all.
        check("$t = @'\nHello $name\n'@\n", &[NONE]);
    }
}
