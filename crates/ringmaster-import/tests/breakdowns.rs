//! A conflict report with breakdowns only for the findings it shows (text
//! and markdown) is the whole report's, less the others' breakdowns.

use ringmaster_core::conflicts::{Breakdowns, Scope, analyze, analyze_with};
use ringmaster_core::org::Org;
use ringmaster_core::targeting::resolve;

fn compare(org: &Org, first: usize) -> usize {
    let now: jiff::Timestamp = "2026-11-24T12:00:00Z".parse().unwrap();
    let res = resolve(org, now);
    let policies: Vec<usize> = (0..org.policies.len()).collect();
    let proposed = vec![false; policies.len()];
    let scope = Scope {
        policies: &policies,
        proposed: &proposed,
        accepted: &[],
        today: now.to_zoned(jiff::tz::TimeZone::UTC).date(),
    };
    let whole = analyze(org, &res, &scope);
    let shown = analyze_with(org, &res, &scope, Breakdowns::First(first));
    assert_eq!(whole.findings.len(), shown.findings.len());
    for (k, (w, s)) in whole.findings.iter().zip(&shown.findings).enumerate() {
        let (w, mut s) = (
            serde_json::to_value(w).unwrap(),
            serde_json::to_value(s).unwrap(),
        );
        if k >= first {
            assert_eq!(s["by_platform"], serde_json::json!([]), "finding {k}");
            assert_eq!(s["by_group"], serde_json::json!([]), "finding {k}");
            s["by_platform"] = w["by_platform"].clone();
            s["by_group"] = w["by_group"].clone();
        }
        assert_eq!(w, s, "finding {k}");
    }
    let mut w = serde_json::to_value(&whole).unwrap();
    let mut s = serde_json::to_value(&shown).unwrap();
    w["findings"] = serde_json::Value::Null;
    s["findings"] = serde_json::Value::Null;
    assert_eq!(w, s);
    whole.findings.len()
}

fn generated(layout: ringmaster_gen::Layout) -> Org {
    let d = tempfile::tempdir().unwrap();
    let mut o = ringmaster_gen::Options::new(3000, 11);
    o.layout = layout;
    if layout == ringmaster_gen::Layout::Random {
        (o.groups, o.policies) = (Some(60), Some(40));
    }
    ringmaster_gen::generate(d.path(), &o).unwrap();
    ringmaster_import::load(&[d.path().to_path_buf()])
        .unwrap()
        .org
}

#[test]
fn shown_findings_break_down_as_the_whole_report() {
    for (layout, first, least) in [
        (ringmaster_gen::Layout::Realistic, 3, 6),
        (ringmaster_gen::Layout::Random, 25, 50),
    ] {
        let org = generated(layout);
        let n = compare(&org, first);
        assert!(n >= least, "{layout:?}: only {n} findings");
        compare(&org, 0);
        compare(&org, n + 1);
    }
}
