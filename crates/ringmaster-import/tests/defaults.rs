//! The securedworkstation tiers (Azure/securedworkstation: the same legacy
//! profiles at Enterprise, Specialized and Privileged level, exported with
//! every property at its default): only values both sides configure may
//! conflict, and every such difference is reported.

use ringmaster_core::conflicts::{FindingKind, Scope, analyze};
use ringmaster_core::model::{Assignment, Target};
use ringmaster_core::targeting::resolve;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    ringmaster_import::corpus("exports/Azure+securedworkstation")
}

/// Keys that describe the profile, not a device.
const METADATA: &[&str] = &[
    "id",
    "displayName",
    "description",
    "version",
    "createdDateTime",
    "lastModifiedDateTime",
    "roleScopeTagIds",
    "supportsScopeTags",
    "assignments",
];

/// Values that say "not configured" whatever the property: read from the
/// files here, independently of the importer's schema table.
const SENTINELS: &[&str] = &[
    "notConfigured",
    "notSet",
    "userDefined",
    "deviceDefault",
    "unavailable",
];

fn read(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    serde_json::from_str(text.trim_start_matches('\u{feff}')).unwrap()
}

/// A record as dotted keys (`firewallProfileDomain.firewallEnabled`), lists
/// as their sorted members.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                if k.starts_with('@') || k.contains("@odata") || METADATA.contains(&k.as_str()) {
                    continue;
                }
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) => {
            let mut members: Vec<String> = items.iter().map(Value::to_string).collect();
            members.sort();
            out.insert(prefix.to_string(), members.into());
        }
        v => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}

fn configured(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Array(a) => !a.is_empty(),
        Value::String(s) => !s.is_empty() && !SENTINELS.contains(&s.as_str()),
        _ => true,
    }
}

#[test]
fn ent_and_paw_conflict_only_where_both_configure_a_setting() {
    let Some(c) = corpus() else { return };
    let files: Vec<PathBuf> = [
        "ENT/JSON/DeviceConfiguration/Enterprise-Config-Win10-Device-Restrictions-UI_17-11-2020-17-00-43.json",
        "ENT/JSON/DeviceConfiguration/Enterprise-Config-Win10-Endpoint-Protection-UI_17-11-2020-17-00-43.json",
        "PAW/JSON/DeviceConfiguration/PAW-Win10-Config-Device-Restrictions-UI_25-11-2020-17-42-11.json",
        "PAW/JSON/DeviceConfiguration/PAW-Win10-Config-Endpoint-Protection-UI_25-11-2020-17-42-12.json",
        // A second PAW endpoint-protection profile that sets only the
        // firewall, leaving the rest at its defaults (lmAndNltm, manual…).
        "PAW/JSON/DeviceConfiguration/PAW-Win10-Windows-Defender-Firewall-UI_29-09-2020-9-50-21.json",
    ]
    .iter()
    .map(|f| c.join(f))
    .collect();

    // Expected, from the files alone: per setting, the values the profiles set.
    let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut differ: BTreeSet<String> = BTreeSet::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for f in &files {
        let record = read(f);
        let t = record["@odata.type"]
            .as_str()
            .unwrap()
            .trim_start_matches("#microsoft.graph.")
            .to_string();
        let mut flat = BTreeMap::new();
        flatten("", &record, &mut flat);
        for (k, v) in flat {
            let id = format!("{t}.{k}");
            let text = v.to_string();
            if seen.get(&id).is_some_and(|before| *before != text) {
                differ.insert(id.clone());
            }
            seen.insert(id.clone(), text.clone());
            if configured(&v) {
                values.entry(id).or_default().insert(text);
            }
        }
    }
    let real: BTreeSet<&String> = values
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(
        differ.len() > 20 && real.len() < differ.len(),
        "the tiers differ mostly by settings one side leaves alone: {} differ, {} both set",
        differ.len(),
        real.len()
    );

    // What the importer and the analysis say, all profiles on one device.
    let d = tempfile::tempdir().unwrap();
    let devices = d.path().join("devices.csv");
    std::fs::write(&devices, "id,deviceName,platform\nd1,PAW-1,Windows\n").unwrap();
    let mut paths = files.clone();
    paths.push(devices);
    let mut loaded = ringmaster_import::load(&paths).unwrap();
    for p in &mut loaded.org.policies {
        p.assignments = vec![Assignment {
            target: Target::AllDevices,
            filter: None,
        }];
    }
    let o = &loaded.org;
    let r = resolve(o, "2026-11-24T12:00:00Z".parse().unwrap());
    let all: Vec<usize> = (0..o.policies.len()).collect();
    let report = analyze(
        o,
        &r,
        &Scope {
            policies: &all,
            proposed: &vec![false; all.len()],
            accepted: &[],
            today: "2026-11-24".parse().unwrap(),
        },
    );
    let found: BTreeSet<&String> = report.findings.iter().map(|f| &f.setting_id).collect();
    for f in report.findings.iter().filter(|f| f.blocking()) {
        assert_eq!(f.kind, FindingKind::Conflict, "{}", f.setting_id);
        assert!(
            real.contains(&f.setting_id),
            "{} blocks, but one side leaves it alone: {:?}",
            f.setting_id,
            f.values
                .iter()
                .map(|v| (&v.name, &v.value))
                .collect::<Vec<_>>()
        );
    }
    for f in &report.findings {
        assert!(real.contains(&f.setting_id), "{f:?}");
    }
    for k in &real {
        assert!(
            found.contains(k),
            "{k} differs between the tiers, unreported"
        );
    }
    // The one difference both tiers mean: how a standard user's elevation is handled.
    let blocking: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.blocking())
        .map(|f| f.setting_id.as_str())
        .collect();
    assert!(
        blocking.contains(
            &"windows10EndpointProtectionConfiguration.localSecurityOptionsStandardUserElevationPromptBehavior"
        ),
        "{blocking:?}"
    );
    // Where the firewall-only profile shows a default, the difference may be
    // no difference at all: reported, never blocking.
    let doubtful = report
        .findings
        .iter()
        .find(|f| {
            f.setting_id == "windows10EndpointProtectionConfiguration.lanManagerAuthenticationLevel"
        })
        .unwrap();
    assert_eq!(doubtful.kind, FindingKind::MayBeNotConfigured);
    assert!(
        doubtful
            .values
            .iter()
            .any(|v| v.value == "lmAndNltm" && v.maybe_default.is_some())
    );
}
