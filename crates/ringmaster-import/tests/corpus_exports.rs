//! Conformance over `../shared/corpus/exports` (public repositories, read in
//! place): every file is read or listed as skipped with its reason, and the
//! policies found in the JSON, counted here by a rule of this test's own,
//! are the policies loaded (less the copies the loader reports as read twice).

use ringmaster_import::load;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn exports() -> Option<PathBuf> {
    ringmaster_import::corpus("exports")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            walk(&e, out);
        } else {
            out.push(e);
        }
    }
}

/// Whether one JSON object is an Intune device policy, by its type name or,
/// without one, by the keys only policies have.
fn is_policy(o: &serde_json::Map<String, Value>) -> bool {
    if o.contains_key("RAWJson") {
        return true;
    }
    if let Some(t) = o.get("@odata.type").and_then(Value::as_str) {
        let t = t
            .trim_start_matches("#microsoft.graph.")
            .to_ascii_lowercase();
        let not = [
            "managedapp",
            "windowsinformationprotection",
            "enrollment",
            "autopilot",
        ];
        if t.ends_with("app") || not.iter().any(|n| t.contains(n)) {
            return false;
        }
        return [
            "configuration",
            "compliancepolicy",
            "configurationpolicy",
            "intent",
            "updateprofile",
        ]
        .iter()
        .any(|s| t.ends_with(s));
    }
    let has = |k: &str| o.contains_key(k);
    (has("settings") && (has("platforms") || has("technologies") || has("name")))
        || has("settingsDelta")
        || has("TemplateId")
        || has("omaSettings")
}

/// Policies one JSON file holds.
fn policies_in(v: &Value) -> usize {
    match v {
        // An array of ADMX definition values is one policy.
        Value::Array(a)
            if !a.is_empty()
                && a.iter().all(|i| {
                    i.get("definition@odata.bind").is_some() || i.get("definition").is_some()
                }) =>
        {
            1
        }
        Value::Array(a) => a.iter().map(policies_in).sum(),
        Value::Object(o) => match o.get("value") {
            Some(Value::Array(a)) => a.iter().map(policies_in).sum(),
            _ => usize::from(is_policy(o)),
        },
        _ => 0,
    }
}

struct Row {
    folder: &'static str,
    files: usize,
    /// Policies in the JSON files, counted by this test.
    present: usize,
    /// Policies loaded.
    recognised: usize,
    /// Copies the loader read once, with a warning.
    copies: usize,
}

fn check(row: &Row) {
    let Some(x) = exports() else { return };
    let dir = x.join(row.folder);
    let mut files = Vec::new();
    walk(&dir, &mut files);
    assert_eq!(files.len(), row.files, "{}: the corpus changed", row.folder);
    let ext = |f: &Path, e: &str| f.extension().is_some_and(|x| x == e);
    // JSON policies, and one per Apple profile; scripts are counted in `formats.rs`.
    let present: usize = files
        .iter()
        .filter(|f| ext(f, "json"))
        .filter_map(|f| ringmaster_import::export_text(f).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .map(|v| policies_in(&v))
        .sum::<usize>()
        + files.iter().filter(|f| ext(f, "mobileconfig")).count();
    let l = load(std::slice::from_ref(&dir)).unwrap();
    let r = &l.report;
    // Every file is read or listed with its reason.
    for f in &files {
        let name = f.display().to_string();
        let read = r.files.iter().any(|x| x.path == name);
        let listed = r
            .skipped
            .iter()
            .any(|s| s.starts_with(&format!("{name}:")) || s.starts_with(&format!("{name} (line")));
        assert!(read || listed, "{}: neither read nor listed", name);
    }
    let recognised = l
        .org
        .policies
        .iter()
        .filter(|p| p.source.ends_with(".json") || p.source.ends_with(".mobileconfig"))
        .count();
    let copies = r
        .warnings
        .iter()
        .filter(|w| w.contains("was already read from"))
        .count();
    assert_eq!(
        (present, recognised, copies),
        (row.present, row.recognised, row.copies),
        "{}: (present, recognised, copies)",
        row.folder
    );
}

macro_rules! conformance {
    ($($name:ident: $folder:literal, $files:literal files, $present:literal present, $recognised:literal recognised, $copies:literal copies;)*) => {
        $(
            #[test]
            fn $name() {
                check(&Row { folder: $folder, files: $files, present: $present, recognised: $recognised, copies: $copies });
            }
        )*
    };
}

conformance! {
    securedworkstation: "Azure+securedworkstation", 29 files, 28 present, 28 recognised, 0 copies;
    // Two snapshots of one tenant: 13 policies are in both.
    aaronparker: "aaronparker+intune-baseline", 82 files, 71 present, 58 recognised, 13 copies;
    acsc: "microsoft+Intune-ACSC-Windows-Hardening-Guidelines", 8 files, 7 present, 7 recognised, 0 copies;
    my_macs: "microsoft+intune-my-macs", 40 files, 18 present, 18 recognised, 0 copies;
    vanvfields: "vanvfields+Microsoft-365", 45 files, 24 present, 24 recognised, 0 copies;
    cipp: "KelvinTegelaar+CIPP-API", 7 files, 6 present, 6 recognised, 0 copies;
}
