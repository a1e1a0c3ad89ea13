//! Readers for formats that are not Graph JSON. Each turns its input into
//! ordinary Graph-shaped records (`@odata.type`, `displayName`, `settings`,
//! `assignments`…), which then take the same path as exported JSON.
//!
//! - `jsonc`: JSON with `//` and `/* */` comments and trailing commas.
//! - `cipp`: CIPP templates (`RAWJson` holding the policy as a string).
//! - `sdk`: Graph PowerShell SDK objects written with `ConvertTo-Json`.
//! - `mobileconfig`: Apple configuration profiles (plist XML or binary).
//! - `dsc`: Microsoft365DSC `Configuration` blocks.
//! - `script`: Graph JSON in the here-strings of PowerShell scripts.
//! - `powershell`: the PowerShell tokens the last two share.

pub mod cipp;
pub mod dsc;
pub mod jsonc;
pub mod mobileconfig;
mod powershell;
pub mod script;
pub mod sdk;

use crate::{FileReport, ImportError, State};
use serde_json::Value;
use std::path::Path;

/// A Graph-shaped record made from a foreign format, and the line of the
/// source it came from (for errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub value: Value,
    pub line: Option<usize>,
}

/// What a foreign reader made of one file: records, and notes on what it
/// passed over (each becomes a `skipped` line of the report).
#[derive(Debug, Default, PartialEq)]
pub struct Read {
    pub records: Vec<Record>,
    pub skipped: Vec<String>,
}

/// Reads a `.ps1` or `.mobileconfig` file; `None` for every other file.
pub(crate) fn read(p: &Path, st: &mut State) -> Option<Result<(), ImportError>> {
    let read = match crate::ext(p).as_str() {
        "mobileconfig" => std::fs::read(p)
            .map_err(|e| ImportError::file(p, format!("cannot read: {e}")))
            .and_then(|bytes| mobileconfig::read(p, &bytes)),
        "ps1" => crate::read_text(p).and_then(|text| {
            if dsc::is_configuration(&text) {
                dsc::read(p, &text)
            } else {
                Ok(script::read(&text))
            }
        }),
        _ => return None,
    };
    Some(read.and_then(|r| apply(p, r, st)))
}

/// Turns CIPP templates and SDK objects in parsed JSON into Graph records;
/// `None` when the whole file was passed over (the reason is in the report).
pub(crate) fn graph_json(p: &Path, v: Value, st: &mut State) -> Result<Option<Value>, ImportError> {
    let mut one = |v: Value, record: Option<usize>| -> Result<Option<Value>, ImportError> {
        let at = |message: String| ImportError {
            file: p.to_path_buf(),
            record,
            line: None,
            column: None,
            field: None,
            message,
        };
        if cipp::is_template(&v) {
            return match cipp::record(v).map_err(at)? {
                Ok(r) => Ok(Some(r)),
                Err(why) => {
                    st.report.skipped.push(format!("{}: {why}", p.display()));
                    Ok(None)
                }
            };
        }
        if sdk::is_sdk_object(&v) {
            return sdk::record(v).map(Some).map_err(at);
        }
        Ok(Some(v))
    };
    match v {
        // Large Graph pages pass through untouched.
        Value::Array(items) if !items.iter().any(is_foreign) => Ok(Some(Value::Array(items))),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                out.extend(one(item, Some(i + 1))?);
            }
            Ok(Some(Value::Array(out)))
        }
        v => one(v, None),
    }
}

/// A CIPP template or an SDK object: a record [`graph_json`] turns into
/// Graph JSON.
pub(crate) fn is_foreign(v: &Value) -> bool {
    cipp::is_template(v) || sdk::is_sdk_object(v)
}

/// Applies the records a foreign reader made, in order, as `read_json`
/// applies the items of a page.
fn apply(p: &Path, read: Read, st: &mut State) -> Result<(), ImportError> {
    for why in read.skipped {
        st.report.skipped.push(format!("{}: {why}", p.display()));
    }
    if read.records.is_empty() {
        return Ok(());
    }
    let mut kinds: Vec<String> = Vec::new();
    let n = read.records.len();
    for (i, rec) in read.records.into_iter().enumerate() {
        // As for a single exported object, a type ringmaster does not read
        // (certificate profiles, say) is passed over, not refused.
        let Some(kind) = crate::value_kind(&rec.value, None) else {
            let ty = rec.value.get("@odata.type").and_then(Value::as_str);
            let line = rec.line.map(|l| format!(" (line {l})")).unwrap_or_default();
            st.report.skipped.push(format!(
                "{}{line}: {} is not an object ringmaster reads",
                p.display(),
                ty.unwrap_or("a record without @odata.type")
            ));
            continue;
        };
        let label = kind.label().to_string();
        match kind {
            crate::graph::Kind::Skip(what) => {
                if !kinds.contains(&label) {
                    st.report
                        .skipped
                        .push(format!("{}: {what} are not modelled", p.display()));
                }
            }
            kind => crate::apply(st, kind, rec.value, p, Some(i + 1), rec.line)?,
        }
        if !kinds.contains(&label) {
            kinds.push(label);
        }
    }
    st.report.files.push(FileReport {
        path: p.display().to_string(),
        records: n,
        kinds,
    });
    Ok(())
}

/// `DisplayName` → `displayName`, `OSVersion` → `osVersion`,
/// `TPMRequired` → `tpmRequired`: a leading run of capitals is one word,
/// except the capital that starts the next word.
pub fn camel_case(key: &str) -> String {
    let caps = key.chars().take_while(char::is_ascii_uppercase).count();
    let lower = match caps {
        0 => return key.to_string(),
        n if n == key.len() => n,
        1 => 1,
        n => n - 1,
    };
    let mut out = key[..lower].to_ascii_lowercase();
    out.push_str(&key[lower..]);
    out
}

/// An id that stands for "no id": empty, or only zeros and dashes.
fn placeholder_id(id: &str) -> bool {
    id.trim().is_empty() || id.bytes().all(|b| b == b'0' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_of_pascal_names() {
        let check = |input: &str, expect: &str| assert_eq!(camel_case(input), expect, "{input}");
        check("DisplayName", "displayName");
        check("Id", "id");
        check("ID", "id");
        check("OSVersion", "osVersion");
        check("TPMRequired", "tpmRequired");
        check("ICloudBlockMail", "iCloudBlockMail");
        check(
            "FirewallIPSecExemptionsAllowDHCP",
            "firewallIPSecExemptionsAllowDHCP",
        );
        check("displayName", "displayName");
        check("@odata.type", "@odata.type");
        check("", "");
    }

    #[test]
    fn placeholder_ids() {
        for (id, expect) in [
            ("00000000-0000-0000-0000-000000000000", true),
            ("0000000-0000-0000-0000-000000000000", true),
            ("", true),
            ("a409d85f-2a49-440d-884a-80fb52a557ab", false),
        ] {
            assert_eq!(placeholder_id(id), expect, "{id}");
        }
    }
}
