//! SVG charts drawn on the server: no script, nothing to load.

use ringmaster_store::StateCounts;
use std::fmt::Write;

/// The states drawn, with their colours (colour-blind safe).
const SERIES: [(&str, &str); 5] = [
    ("succeeded", "#1b7837"),
    ("error", "#c51b7d"),
    ("conflict", "#e08214"),
    ("pending", "#6a51a3"),
    ("not reported", "#878787"),
];

fn values(c: &StateCounts, devices: u64) -> [u64; 5] {
    [
        c.succeeded,
        c.error,
        c.conflict,
        c.pending,
        devices.saturating_sub(c.reported()),
    ]
}

/// A wave's device states over time as shares of its devices, one line per
/// state, from the counts kept at each gate round.
pub fn wave_states(
    series: &[(jiff::Timestamp, StateCounts)],
    devices: u64,
    zone: &jiff::tz::TimeZone,
) -> String {
    let (w, h) = (760.0, 260.0);
    let (left, right, top, bottom) = (48.0, 150.0, 12.0, 36.0);
    let (cw, ch) = (w - left - right, h - top - bottom);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11" role="img" aria-label="device states over time">"#
    );
    for pct in [0, 25, 50, 75, 100] {
        let y = top + ch - ch * f64::from(pct) / 100.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{pct} %</text>"##,
            left + cw,
            left - 6.0,
            y + 4.0
        );
    }
    if series.is_empty() || devices == 0 {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no gate round yet</text></svg>"#,
            left + cw / 2.0,
            top + ch / 2.0
        );
        return s;
    }
    let t0 = series[0].0.as_second();
    let span = (series[series.len() - 1].0.as_second() - t0).max(1) as f64;
    let x = |t: jiff::Timestamp| left + (t.as_second() - t0) as f64 / span * cw;
    let y = |v: u64| top + ch - ch * v as f64 / devices as f64;
    for (i, (name, colour)) in SERIES.iter().enumerate() {
        let mut points = String::new();
        for (t, c) in series {
            let _ = write!(points, "{:.1},{:.1} ", x(*t), y(values(c, devices)[i]));
        }
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.trim_end()
        );
        let last = values(&series[series.len() - 1].1, devices)[i];
        let ly = top + 14.0 + i as f64 * 18.0;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="4" fill="{colour}"/><text x="{:.1}" y="{:.1}">{name} {last}</text>"#,
            left + cw + 12.0,
            ly - 6.0,
            left + cw + 30.0,
            ly
        );
    }
    // In the plan's zone, zone shown, as every other time on the page.
    let fmt = |t: jiff::Timestamp| {
        (t.to_zoned(zone.clone()))
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    let _ = write!(
        s,
        r#"<text x="{left}" y="{:.1}">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text></svg>"#,
        h - 12.0,
        fmt(series[0].0),
        left + cw,
        h - 12.0,
        fmt(series[series.len() - 1].0)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_at_the_last_counts() {
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let c = |ok, err| StateCounts {
            succeeded: ok,
            error: err,
            ..Default::default()
        };
        let svg = wave_states(
            &[
                (t("2027-01-18T08:00:00Z"), c(0, 0)),
                (t("2027-01-19T08:00:00Z"), c(80, 5)),
            ],
            100,
            &jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap(),
        );
        assert!(svg.contains("succeeded 80") && svg.contains("error 5"));
        // The axis speaks the plan's zone, as the page around it.
        assert!(svg.contains(">2027-01-19 09:00 CET<"), "{svg}");
        assert!(svg.contains("not reported 15"));
        // 80 of 100 is 80 % of the plot height (212) above its base (224), at the right edge (610).
        assert!(svg.contains("610.0,54.4"), "{svg}");
        assert!(wave_states(&[], 10, &jiff::tz::TimeZone::UTC).contains("no gate round yet"));
    }
}
