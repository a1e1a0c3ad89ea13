//! Calendar arithmetic: which days a wave may apply on, and when it starts
//! and ends. Days and hours are civil, read in the wave's time zone.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// `mon`..`sun` (or full names) to a weekday index, Monday = 0.
pub fn parse_day(s: &str) -> Option<usize> {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let l = s.trim().to_ascii_lowercase();
    (0..7).find(|&i| l == DAY_NAMES[i] || l == FULL[i])
}

pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `HH:MM-HH:MM`, start before end.
pub fn parse_hours(s: &str) -> Option<(Time, Time)> {
    let (a, b) = s.split_once('-')?;
    let a: Time = a.trim().parse().ok()?;
    let b: Time = b.trim().parse().ok()?;
    (a < b).then_some((a, b))
}

#[derive(Debug, Clone)]
pub struct Freeze {
    pub from: Date,
    pub to: Date,
    pub reason: String,
}

/// Where and when one wave may apply changes.
#[derive(Debug, Clone)]
pub struct Window {
    pub tz: TimeZone,
    pub tz_name: String,
    /// Allowed weekdays, Monday first.
    pub days: [bool; 7],
    pub hours: (Time, Time),
    /// Not before this day (a group's preferred time frame).
    pub not_before: Option<Date>,
}

/// Why a day is not allowed for a wave, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotWorkingDay(&'static str),
    Frozen {
        from: Date,
        to: Date,
        reason: String,
    },
    TooEarly(Date),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotWorkingDay(d) => {
                write!(f, "{d} is not a day the wave's groups accept changes")
            }
            Refusal::Frozen { from, to, reason } => {
                write!(f, "it falls in the freeze '{reason}' ({from} to {to})")
            }
            Refusal::TooEarly(d) => write!(f, "the group asked for nothing before {d}"),
        }
    }
}

impl Window {
    /// Whether changes may be applied on `day`, and if not, why.
    pub fn check(&self, day: Date, freezes: &[Freeze]) -> Result<(), Refusal> {
        let wd = day.weekday().to_monday_zero_offset() as usize;
        if !self.days[wd] {
            return Err(Refusal::NotWorkingDay(DAY_NAMES[wd]));
        }
        if let Some(f) = freezes.iter().find(|f| f.from <= day && day <= f.to) {
            return Err(Refusal::Frozen {
                from: f.from,
                to: f.to,
                reason: f.reason.clone(),
            });
        }
        if let Some(nb) = self.not_before
            && day < nb
        {
            return Err(Refusal::TooEarly(nb));
        }
        Ok(())
    }

    pub fn open(&self, day: Date) -> Zoned {
        self.at(day, self.hours.0)
    }

    pub fn at(&self, day: Date, time: Time) -> Zoned {
        day.to_datetime(time)
            .to_zoned(self.tz.clone())
            .unwrap_or_else(|_| Timestamp::UNIX_EPOCH.to_zoned(self.tz.clone()))
    }

    /// The first allowed day whose window opens at or after `earliest`.
    /// Gives up (None) after ten years of refusals: an impossible window.
    pub fn first_day(&self, earliest: &Timestamp, freezes: &[Freeze]) -> Option<Date> {
        let mut day = earliest.to_zoned(self.tz.clone()).date();
        for _ in 0..3660 {
            if self.check(day, freezes).is_ok() && self.open(day).timestamp() >= *earliest {
                return Some(day);
            }
            day = day.tomorrow().ok()?;
        }
        None
    }

    /// The next allowed day after `day`.
    pub fn next_day(&self, day: Date, freezes: &[Freeze]) -> Option<Date> {
        let mut d = day.tomorrow().ok()?;
        for _ in 0..3660 {
            if self.check(d, freezes).is_ok() {
                return Some(d);
            }
            d = d.tomorrow().ok()?;
        }
        None
    }
}

/// Adds hours to an instant.
pub fn plus_hours(t: &Zoned, hours: f64) -> Zoned {
    let secs = (hours * 3600.0).round() as i64;
    t.checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or_else(|_| t.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn window() -> Window {
        Window {
            tz: TimeZone::get("Europe/Amsterdam").unwrap(),
            tz_name: "Europe/Amsterdam".into(),
            days: [true, true, true, true, true, false, false],
            hours: (time(9, 0, 0, 0), time(17, 0, 0, 0)),
            not_before: None,
        }
    }

    #[test]
    fn days_and_hours() {
        assert_eq!(parse_day("Tue"), Some(1));
        assert_eq!(parse_day("sunday"), Some(6));
        assert_eq!(parse_day("x"), None);
        assert_eq!(parse_day("monkey"), None);
        assert!(parse_hours("09:00-17:30").is_some());
        assert!(parse_hours("17:00-09:00").is_none());
    }

    #[test]
    fn skips_weekends_and_freezes() {
        let w = window();
        let freezes = vec![Freeze {
            from: date(2026, 12, 21),
            to: date(2027, 1, 1),
            reason: "year end".into(),
        }];
        // Saturday 19 December, after opening: next allowed is 4 January.
        let t = w.at(date(2026, 12, 19), time(10, 0, 0, 0)).timestamp();
        assert_eq!(w.first_day(&t, &freezes), Some(date(2027, 1, 4)));
        // Friday 18 December at 10:00 is after the window opened: Monday is frozen.
        let t = w.at(date(2026, 12, 18), time(10, 0, 0, 0)).timestamp();
        assert_eq!(w.first_day(&t, &freezes), Some(date(2027, 1, 4)));
        assert!(matches!(
            w.check(date(2026, 12, 22), &freezes),
            Err(Refusal::Frozen { .. })
        ));
        assert_eq!(
            w.next_day(date(2026, 12, 18), &[]),
            Some(date(2026, 12, 21))
        );
    }
}
