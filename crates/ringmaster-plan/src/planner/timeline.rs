//! The schedule: phases and waves one after another, each wave after the
//! previous one has baked, its devices spread over as many allowed days as
//! the help desk's capacity needs.

use super::parse::{parse_date, parse_duration, perr};
use super::waves::Draft;
use super::{WavePlan, platforms_of, user_count};
use crate::PlanError;
use crate::schedule::{self, Freeze, Window};
use crate::spec::{HelpDesk, PhaseKind, PhaseSpec};
use jiff::Zoned;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use ringmaster_core::org::Org;
use toml::Spanned;

/// Places phases in order; `cursor` is where the next one may start.
pub(super) struct Timeline<'a> {
    tz: TimeZone,
    /// The calendar's opening hour starts phases without waves.
    opens: Time,
    freezes: &'a [Freeze],
    /// Tickets a day the help desk takes (at least 1).
    capacity: f64,
    /// Tickets per device.
    rate: f64,
    /// Devices in scope (at least 1): the denominator of a wave's share.
    scope: f64,
    cursor: Zoned,
}

/// When a phase runs: `end` is None for the run state, which has no end.
pub(super) struct PhaseTimes {
    pub start: Zoned,
    pub end: Option<Zoned>,
}

impl<'a> Timeline<'a> {
    /// A timeline opening on the rollout's start day at the calendar's first hour.
    pub fn new(
        start: Date,
        hours: (Time, Time),
        tz: TimeZone,
        hd: &HelpDesk,
        freezes: &'a [Freeze],
        scope_devices: u64,
    ) -> Self {
        let cursor = start
            .to_datetime(hours.0)
            .to_zoned(tz.clone())
            .unwrap_or_else(|_| jiff::Timestamp::UNIX_EPOCH.to_zoned(tz.clone()));
        Timeline {
            tz,
            opens: hours.0,
            freezes,
            capacity: (*hd.capacity_per_day.get_ref()).max(1) as f64,
            rate: hd.tickets_per_100_devices.max(0.0) / 100.0,
            scope: scope_devices.max(1) as f64,
            cursor,
        }
    }

    /// Places phase `pi`: its drafts as waves (appended to `waves`), or, with
    /// none, the phase alone for its duration.
    pub fn phase(
        &mut self,
        org: &Org,
        p: &PhaseSpec,
        pi: usize,
        drafts: &[Draft],
        waves: &mut Vec<WavePlan>,
        errs: &mut Vec<PlanError>,
    ) -> PhaseTimes {
        let kind = *p.kind.get_ref();
        let mine: Vec<&Draft> = drafts.iter().filter(|d| d.phase == pi).collect();
        if mine.is_empty() {
            return self.without_waves(p, errs);
        }
        let mut first = None;
        for d in mine {
            if let Some(w) = self.wave(org, kind, d, waves.last(), errs) {
                first.get_or_insert(w.start.clone());
                waves.push(w);
            }
        }
        PhaseTimes {
            start: first.unwrap_or(self.cursor.clone()),
            end: Some(self.cursor.clone()),
        }
    }

    /// A phase without waves: pinned or next, for its duration (5 days
    /// unless it says); the run state starts and never ends.
    fn without_waves(&mut self, p: &PhaseSpec, errs: &mut Vec<PlanError>) -> PhaseTimes {
        let kind = *p.kind.get_ref();
        let mut s = self.cursor.clone();
        if let Some(pin) = &p.start
            && let Some(day) = parse_date(pin, "start", errs)
        {
            let pinned = day
                .to_datetime(self.opens)
                .to_zoned(self.tz.clone())
                .unwrap_or(s.clone());
            if pinned < self.cursor {
                errs.push(perr(
                    pin.span(),
                    format!(
                        "{} is pinned to {day}, before the previous phase ends ({})",
                        kind.label(),
                        self.cursor.strftime("%Y-%m-%d %H:%M")
                    ),
                ));
            }
            s = pinned;
        }
        let mut end = None;
        if kind != PhaseKind::RunState {
            let hours = match &p.duration {
                Some(d) => parse_duration(d, "duration", errs).unwrap_or(120.0),
                None => 120.0,
            };
            let e = schedule::plus_hours(&s, hours);
            self.cursor = e.clone();
            end = Some(e);
        }
        PhaseTimes { start: s, end }
    }

    /// One wave: its first day (pinned, or the first its window allows after
    /// the cursor), as many days as the expected tickets need, then its bake.
    /// None when no day can be found (the error is recorded).
    fn wave(
        &mut self,
        org: &Org,
        kind: PhaseKind,
        d: &Draft,
        previous: Option<&WavePlan>,
        errs: &mut Vec<PlanError>,
    ) -> Option<WavePlan> {
        let n = d.set.len();
        let expected = n as f64 * self.rate;
        let days_needed = ((expected / self.capacity).ceil() as u64).clamp(1, n.max(1));
        let earliest = self.cursor.timestamp();
        let first_day = match &d.pin {
            Some(pin) => pinned_day(
                pin,
                &d.window,
                self.freezes,
                &self.cursor,
                &d.name,
                previous,
                errs,
            ),
            None => {
                let day = d.window.first_day(&earliest, self.freezes);
                if day.is_none() {
                    errs.push(perr(0..0, format!("wave '{}' finds no allowed day within ten years: check its days, hours and freezes", d.name)));
                }
                day
            }
        }?;
        let mut apply_days = vec![first_day];
        while (apply_days.len() as u64) < days_needed {
            match d
                .window
                .next_day(*apply_days.last().unwrap_or(&first_day), self.freezes)
            {
                Some(x) => apply_days.push(x),
                None => break,
            }
        }
        let wave_start = d.window.open(first_day);
        let last_open = d.window.open(*apply_days.last().unwrap_or(&first_day));
        let end = schedule::plus_hours(&last_open, d.bake);
        self.cursor = end.clone();
        Some(WavePlan {
            name: d.name.clone(),
            phase: kind,
            mode: d.mode,
            groups: d.groups.clone(),
            devices: n,
            users: user_count(org, &d.set),
            share_of_scope: n as f64 / self.scope,
            platforms: platforms_of(org, &d.set),
            time_zone: d.window.tz_name.clone(),
            start: wave_start,
            devices_per_day: n.div_ceil(apply_days.len() as u64),
            apply_days,
            expected_tickets: expected,
            bake_hours: d.bake,
            end,
            pinned: d.pin.is_some(),
            approval: d.approval,
            enrolled: (ringmaster_core::targeting::enrolled(org).0 & &d.set).len(),
            set: d.set.clone(),
        })
    }
}

/// Checks a pinned start; the pin wins, so only a broken constraint is an error.
fn pinned_day(
    pin: &Spanned<String>,
    window: &Window,
    freezes: &[Freeze],
    cursor: &Zoned,
    name: &str,
    previous: Option<&WavePlan>,
    errs: &mut Vec<PlanError>,
) -> Option<Date> {
    let text = pin.get_ref().trim();
    // jiff reads a bare day as midnight: only a text with a time is an instant.
    let (day, time) = if let Ok(d) = text.parse::<Date>()
        && !text.contains(['T', 't', ' '])
    {
        (d, None)
    } else if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        (dt.date(), Some(dt.time()))
    } else {
        errs.push(perr(
            pin.span(),
            format!(
                "pinned start `{text}` is not a day (YYYY-MM-DD) or instant (YYYY-MM-DDTHH:MM)"
            ),
        ));
        return None;
    };
    if let Err(why) = window.check(day, freezes) {
        errs.push(perr(
            pin.span(),
            format!("wave '{name}' is pinned to {day}, but {why}"),
        ));
        return None;
    }
    if let Some(t) = time
        && (t < window.hours.0 || t >= window.hours.1)
    {
        errs.push(perr(
            pin.span(),
            format!(
                "wave '{name}' is pinned to {t}, outside the hours changes are allowed ({}-{})",
                window.hours.0.strftime("%H:%M"),
                window.hours.1.strftime("%H:%M")
            ),
        ));
        return None;
    }
    if window.open(day) < *cursor {
        let after = match previous {
            Some(w) => format!(
                "wave '{}' has baked (until {})",
                w.name,
                w.end.strftime("%Y-%m-%d %H:%M %Z")
            ),
            None => format!(
                "the previous phase ends ({})",
                cursor.strftime("%Y-%m-%d %H:%M %Z")
            ),
        };
        errs.push(perr(
            pin.span(),
            format!("wave '{name}' is pinned to {day}, before {after}"),
        ));
        return None;
    }
    Some(day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::fixture::{fixture, messages, plan_file};
    use crate::planner::rollout;
    use roaring::RoaringBitmap;

    fn day(s: &str) -> Date {
        s.parse().unwrap()
    }

    /// A draft of phase 0 holding devices 0..n, in the calendar's window.
    fn wave(name: &str, n: u32, pin: Option<&str>, spec: &crate::spec::PlanFile) -> Draft {
        Draft {
            name: name.into(),
            phase: 0,
            mode: None,
            groups: Vec::new(),
            set: (0..n).collect::<RoaringBitmap>(),
            pin: pin.map(|p| Spanned::new(1..3, p.to_string())),
            bake: 24.0,
            window: rollout::calendar(spec, &mut Vec::new()).window.unwrap(),
            approval: false,
        }
    }

    fn timeline<'a>(spec: &crate::spec::PlanFile, freezes: &'a [Freeze]) -> Timeline<'a> {
        let cal = rollout::calendar(spec, &mut Vec::new());
        Timeline::new(
            cal.start.unwrap(),
            cal.hours.unwrap(),
            cal.tz.unwrap(),
            &spec.help_desk,
            freezes,
            40,
        )
    }

    #[test]
    fn a_phase_without_waves_lasts_its_duration_and_the_run_state_never_ends() {
        let spec = plan_file(
            "[[phases]]\nkind = \"project_scope\"\nduration = \"2d\"\n[[phases]]\nkind = \"run_state\"\n",
        );
        let mut t = timeline(&spec, &[]);
        let (mut waves, mut errs) = (Vec::new(), Vec::new());
        let scope = t.phase(
            &fixture().org,
            &spec.phases[0],
            0,
            &[],
            &mut waves,
            &mut errs,
        );
        assert_eq!(
            scope.start.strftime("%F %H:%M").to_string(),
            "2027-01-11 09:00"
        );
        assert_eq!(
            scope.end.unwrap().strftime("%F %H:%M").to_string(),
            "2027-01-13 09:00"
        );
        let run = t.phase(
            &fixture().org,
            &spec.phases[1],
            1,
            &[],
            &mut waves,
            &mut errs,
        );
        assert_eq!(
            run.start.strftime("%F %H:%M").to_string(),
            "2027-01-13 09:00"
        );
        assert!(run.end.is_none() && errs.is_empty() && waves.is_empty());
    }

    #[test]
    fn a_phase_pinned_before_the_previous_one_ends_is_an_error() {
        let spec = plan_file(
            "[[phases]]\nkind = \"project_scope\"\n[[phases]]\nkind = \"pilot\"\nstart = \"2027-01-12\"\n",
        );
        let mut t = timeline(&spec, &[]);
        let (mut waves, mut errs) = (Vec::new(), Vec::new());
        let org = fixture().org;
        t.phase(&org, &spec.phases[0], 0, &[], &mut waves, &mut errs);
        let pilot = t.phase(&org, &spec.phases[1], 1, &[], &mut waves, &mut errs);
        assert_eq!(
            messages(&errs),
            ["Pilot is pinned to 2027-01-12, before the previous phase ends (2027-01-16 09:00)"]
        );
        assert_eq!(pilot.start.date(), day("2027-01-12"), "the pin wins");
    }

    #[test]
    fn waves_follow_each_other_spread_over_the_days_the_help_desk_needs() {
        let spec = plan_file("[[phases]]\nkind = \"enterprise\"\n");
        let cal = rollout::calendar(&spec, &mut Vec::new());
        let mut t = timeline(&spec, &cal.freezes);
        let org = fixture().org;
        // 10 tickets per 100 devices at 2 a day: 30 devices need 2 days.
        let drafts = [
            wave("first", 30, None, &spec),
            wave("second", 5, None, &spec),
        ];
        let (mut waves, mut errs) = (Vec::new(), Vec::new());
        let times = t.phase(&org, &spec.phases[0], 0, &drafts, &mut waves, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(waves[0].apply_days, [day("2027-01-11"), day("2027-01-12")]);
        assert_eq!(waves[0].devices_per_day, 15);
        assert!((waves[0].expected_tickets - 3.0).abs() < 1e-9);
        assert_eq!(
            waves[0].end.strftime("%F %H:%M").to_string(),
            "2027-01-13 09:00"
        );
        // The second starts once the first has baked.
        assert_eq!(waves[1].apply_days, [day("2027-01-13")]);
        assert_eq!(waves[1].share_of_scope, 5.0 / 40.0);
        assert_eq!(waves[1].users, 5);
        assert_eq!(times.start, waves[0].start);
        assert_eq!(times.end.as_ref(), Some(&waves[1].end));
        // A third needs two days: Thursday, then past the weekend and the
        // freeze (18 to 22 January).
        let third = [wave("third", 30, None, &spec)];
        let mut t2 = t;
        t2.phase(&org, &spec.phases[0], 0, &third, &mut waves, &mut errs);
        assert_eq!(waves[2].apply_days, [day("2027-01-14"), day("2027-01-25")]);
    }

    #[test]
    fn a_pin_must_keep_the_calendar_and_follow_the_previous_wave() {
        let spec = plan_file("[[phases]]\nkind = \"enterprise\"\n");
        let cal = rollout::calendar(&spec, &mut Vec::new());
        let org = fixture().org;
        let cases = [
            ("2027-01-15", "wave 'w' is pinned to 2027-01-15, but"),
            (
                "2027-01-12T17:00",
                "wave 'w' is pinned to 17:00:00, outside the hours changes are allowed (09:00-16:00)",
            ),
            (
                "soon",
                "pinned start `soon` is not a day (YYYY-MM-DD) or instant (YYYY-MM-DDTHH:MM)",
            ),
            (
                "2027-01-11",
                "wave 'w' is pinned to 2027-01-11, before wave 'first' has baked (until 2027-01-12 09:00 CET)",
            ),
        ];
        for (pin, want) in cases {
            let mut t = timeline(&spec, &cal.freezes);
            let drafts = [
                wave("first", 1, None, &spec),
                wave("w", 1, Some(pin), &spec),
            ];
            let (mut waves, mut errs) = (Vec::new(), Vec::new());
            t.phase(&org, &spec.phases[0], 0, &drafts, &mut waves, &mut errs);
            assert_eq!(waves.len(), 1, "{pin}: the pinned wave is dropped");
            assert!(messages(&errs)[0].starts_with(want), "{pin}: {errs:?}");
            assert_eq!(errs[0].span, 1..3);
        }
        // A pin on an allowed day after the previous wave moves the wave there.
        let mut t = timeline(&spec, &cal.freezes);
        let drafts = [
            wave("first", 1, None, &spec),
            wave("w", 1, Some("2027-01-14"), &spec),
        ];
        let (mut waves, mut errs) = (Vec::new(), Vec::new());
        t.phase(&org, &spec.phases[0], 0, &drafts, &mut waves, &mut errs);
        assert!(errs.is_empty());
        assert_eq!(waves[1].apply_days, [day("2027-01-14")]);
        assert!(waves[1].pinned);
    }
}
