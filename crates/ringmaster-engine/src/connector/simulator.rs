//! A simulated fleet. Each device of an assigned wave checks in once within a
//! check-in interval of the assignment and reports success or an error;
//! some are offline and never report; injected faults raise the error rate
//! for a wave or an OS build, from the start or from a given instant (drift:
//! devices that had applied the policy report again at their next check-in);
//! errors bring tickets, pilot users answer.
//! Every outcome is a pure function of the seed, the wave and the device,
//! so a restarted run reports exactly what an uninterrupted one would.

use super::{Approvals, Assigned, Connector, ConnectorError, Reported};
use async_trait::async_trait;
use ringmaster_core::model::DeviceAttr;
use ringmaster_core::org::Org;
use ringmaster_core::status::{DeviceState, Feedback, StatusReport, Ticket};
use roaring::RoaringBitmap;
use std::collections::HashMap;
use std::sync::Mutex;

/// A fault injected into the simulation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fault {
    /// Only this wave (by position), or every wave.
    pub wave: Option<u32>,
    /// Only devices whose OS version starts with this (e.g. `10.0.19045`).
    pub os_prefix: Option<String>,
    /// Only devices of this platform (`windows`, `macOS`, …).
    pub platform: Option<String>,
    /// Only devices of this model (`Latitude 7440`, case aside).
    #[serde(default)]
    pub model: Option<String>,
    /// Only when the new policies set a setting whose id contains this
    /// (a setting that breaks on some devices).
    pub setting: Option<String>,
    /// Share of the matching devices that report an error.
    pub error_rate: f64,
    /// Share of the matching devices that report a conflict with an existing policy.
    pub conflict_rate: f64,
    /// From this instant only (drift after the rollout, such as an update
    /// that breaks the policy): devices that reported before it report
    /// again at their next check-in after it.
    #[serde(default)]
    pub from: Option<jiff::Timestamp>,
}

impl std::str::FromStr for Fault {
    type Err = String;

    /// `wave=5,os=10.0.19045,error=0.4` (wave counts from 1, as reports
    /// show it); `from=2027-05-03` or `from=2027-05-03T08:00:00Z` for drift.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut f = Fault {
            wave: None,
            os_prefix: None,
            platform: None,
            model: None,
            setting: None,
            error_rate: 0.0,
            conflict_rate: 0.0,
            from: None,
        };
        let rate = |v: &str, what: &str| -> Result<f64, String> {
            let r: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{what} `{v}` is not a number"))?;
            if (0.0..=1.0).contains(&r) {
                Ok(r)
            } else {
                Err(format!("{what} must lie between 0 and 1"))
            }
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                format!(
                    "`{part}`: expected key=value (wave, os, platform, model, setting, error, conflict, from)"
                )
            })?;
            match k.trim() {
                "wave" => {
                    let n: u32 = v
                        .trim()
                        .parse()
                        .map_err(|_| format!("wave `{v}` is not a number"))?;
                    f.wave = Some(n.checked_sub(1).ok_or("waves count from 1")?);
                }
                "os" => f.os_prefix = Some(v.trim().to_string()),
                "platform" => f.platform = Some(v.trim().to_string()),
                "model" => f.model = Some(v.trim().to_string()),
                "setting" => f.setting = Some(v.trim().to_lowercase()),
                "error" => f.error_rate = rate(v, "error")?,
                "conflict" => f.conflict_rate = rate(v, "conflict")?,
                "from" => {
                    let v = v.trim();
                    let at = v.parse::<jiff::Timestamp>().ok().or_else(|| {
                        v.parse::<jiff::civil::Date>()
                            .ok()
                            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                            .map(|z| z.timestamp())
                    });
                    f.from = Some(at.ok_or_else(|| {
                        format!("from `{v}` is not a day (YYYY-MM-DD) or an instant (2027-05-03T08:00:00Z)")
                    })?);
                }
                other => {
                    return Err(format!(
                        "unknown fault key `{other}` (wave, os, platform, model, setting, error, conflict, from)"
                    ));
                }
            }
        }
        if f.error_rate == 0.0 && f.conflict_rate == 0.0 {
            f.error_rate = 0.5;
        }
        Ok(f)
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// Hours between check-ins (Intune: about 8).
    pub check_in_hours: f64,
    /// Share of devices that never check in.
    pub offline: f64,
    /// Share of devices that report an error without any fault.
    pub error_rate: f64,
    /// Tickets per 100 devices that apply cleanly; errors bring one in two.
    pub tickets_per_100: f64,
    /// Share of pilot users who answer.
    pub feedback_rate: f64,
    pub faults: Vec<Fault>,
    /// Policy id the statuses are about.
    pub policy: String,
    /// Setting ids the new policies set (for faults tied to a setting).
    pub settings: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            check_in_hours: 8.0,
            offline: 0.01,
            error_rate: 0.002,
            tickets_per_100: 0.5,
            feedback_rate: 0.5,
            faults: Vec::new(),
            policy: "new-policies".into(),
            settings: Vec::new(),
        }
    }
}

/// A wave's check-ins: (ms after the assignment, device), in time order.
type CheckIns = std::sync::Arc<Vec<(i64, u32)>>;

pub struct Simulator {
    config: SimConfig,
    keys: Vec<String>,
    /// Each device's id hashed: outcomes follow the device, not its row
    /// (rows follow the import's groups).
    dice: Vec<u64>,
    os: Vec<String>,
    platform: Vec<String>,
    model: Vec<String>,
    /// Per wave: (check-in offset in ms, device) sorted, built on first use.
    schedule: Mutex<HashMap<u32, CheckIns>>,
    /// Calls made, for tests: (call, wave).
    pub calls: Mutex<Vec<(&'static str, u32)>>,
}

/// SplitMix64 over (seed, wave, device, salt): order-free randomness.
fn mix(seed: u64, wave: u32, device: u64, salt: u64) -> f64 {
    let mut z = seed ^ (u64::from(wave) << 40) ^ device ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl Simulator {
    pub fn new(org: &Org, config: SimConfig) -> Self {
        let keys: Vec<String> = (0..org.devices.rows)
            .map(|d| org.device_id(d).unwrap_or("").to_string())
            .collect();
        let dice = keys
            .iter()
            .map(|k| ringmaster_core::fnv1a(k.bytes()))
            .collect();
        let column = |a: DeviceAttr| {
            (0..org.devices.rows)
                .map(|d| org.device(a, d).unwrap_or("").to_string())
                .collect()
        };
        let (os, platform, model) = (
            column(DeviceAttr::OsVersion),
            column(DeviceAttr::Platform),
            column(DeviceAttr::Model),
        );
        Simulator {
            config,
            keys,
            dice,
            os,
            platform,
            model,
            schedule: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// One device's roll in one wave, for `salt`.
    fn roll(&self, wave: u32, d: u32, salt: u64) -> f64 {
        mix(self.config.seed, wave, self.dice[d as usize], salt)
    }

    /// The error and conflict rates of one device in one wave, at `at_ms`.
    fn rates(&self, wave: u32, d: u32, at_ms: i64) -> (f64, f64) {
        let (mut error, mut conflict) = (self.config.error_rate, 0.0f64);
        let os = self.os.get(d as usize).map(String::as_str).unwrap_or("");
        let platform = self
            .platform
            .get(d as usize)
            .map(String::as_str)
            .unwrap_or("");
        let model = self.model.get(d as usize).map(String::as_str).unwrap_or("");
        for f in &self.config.faults {
            if f.wave.is_none_or(|w| w == wave)
                && f.from.is_none_or(|t| at_ms >= t.as_millisecond())
                && f.os_prefix.as_deref().is_none_or(|p| os.starts_with(p))
                && f.platform
                    .as_deref()
                    .is_none_or(|p| p.eq_ignore_ascii_case(platform))
                && f.model
                    .as_deref()
                    .is_none_or(|m| m.trim().eq_ignore_ascii_case(model.trim()))
                && f.setting.as_deref().is_none_or(|x| {
                    self.config
                        .settings
                        .iter()
                        .any(|id| id.to_lowercase().contains(x))
                })
            {
                error = error.max(f.error_rate);
                conflict = conflict.max(f.conflict_rate);
            }
        }
        (error, conflict)
    }

    fn schedule(&self, wave: u32, members: &RoaringBitmap) -> CheckIns {
        let mut cache = self.schedule.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(wave)
            .or_insert_with(|| {
                let interval_ms = self.config.check_in_hours * 3_600_000.0;
                let mut v: Vec<(i64, u32)> = members
                    .iter()
                    .filter(|&d| self.roll(wave, d, 1) >= self.config.offline)
                    // At least a minute after the assignment: nothing reports at once.
                    .map(|d| ((60_000.0 + self.roll(wave, d, 2) * interval_ms) as i64, d))
                    .collect();
                v.sort_unstable();
                std::sync::Arc::new(v)
            })
            .clone()
    }

    /// What a device reports at `at_ms`: one roll per device and wave, so
    /// a fault that starts later turns only some successes into errors.
    fn outcome(&self, wave: u32, d: u32, at_ms: i64) -> DeviceState {
        let (error_rate, conflict_rate) = self.rates(wave, d, at_ms);
        let roll = self.roll(wave, d, 3);
        if roll < error_rate {
            DeviceState::Error
        } else if roll < error_rate + conflict_rate {
            DeviceState::Conflict
        } else {
            DeviceState::Succeeded
        }
    }

    /// Reports caused by faults that start after a wave's devices applied
    /// the policy: each such device checks in again within a check-in
    /// interval of the fault and reports when its outcome changed.
    fn drift(
        &self,
        a: &Assigned,
        sched: &[(i64, u32)],
        from: jiff::Timestamp,
        to: jiff::Timestamp,
        out: &mut Reported,
    ) {
        let since = a.since.as_millisecond();
        let end = a.until.map(|u| u.as_millisecond()).unwrap_or(i64::MAX);
        let interval_ms = self.config.check_in_hours * 3_600_000.0;
        let (lo, hi) = (from.as_millisecond(), to.as_millisecond().min(end));
        for f in &self.config.faults {
            let Some(start) = f.from.map(|t| t.as_millisecond()) else {
                continue;
            };
            // Only faults whose re-check-ins fall in this poll's window.
            if start <= since || hi <= start || lo > start + 60_000 + interval_ms as i64 {
                continue;
            }
            for &(offset, d) in sched.iter().take_while(|(t, _)| since + t < start) {
                let at = start + 60_000 + (self.roll(a.wave, d, 7) * interval_ms) as i64;
                if at <= lo || at > hi || !a.holds(d, at) {
                    continue;
                }
                let (before, now) = (
                    self.outcome(a.wave, d, since + offset),
                    self.outcome(a.wave, d, at),
                );
                if before == now {
                    continue;
                }
                let key = &self.keys[d as usize];
                let at = jiff::Timestamp::from_millisecond(at).unwrap_or(to);
                out.statuses.push(StatusReport {
                    device: key.clone(),
                    policy: self.config.policy.clone(),
                    state: now,
                    reported_at: at,
                    wave: Some(a.wave),
                });
                if now == DeviceState::Error && self.roll(a.wave, d, 8) < 0.5 {
                    out.tickets.push(Ticket {
                        id: format!("SIM-{}-{d}-drift", a.wave + 1),
                        at,
                        user: None,
                        device: Some(key.clone()),
                        category: Some("device configuration".into()),
                        text: "settings stopped working after the update".into(),
                        wave: Some(a.wave),
                        control: false,
                    });
                }
            }
        }
    }

    fn record(&self, call: &'static str, wave: u32) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((call, wave));
    }
}

#[async_trait]
impl Connector for Simulator {
    async fn assign(
        &self,
        wave: u32,
        _members: &RoaringBitmap,
        _approvals: &Approvals,
    ) -> Result<(), ConnectorError> {
        self.record("assign", wave);
        Ok(())
    }

    async fn unassign(&self, wave: u32, _approvals: &Approvals) -> Result<(), ConnectorError> {
        self.record("unassign", wave);
        Ok(())
    }

    async fn isolate(&self, wave: u32, _approvals: &Approvals) -> Result<(), ConnectorError> {
        self.record("isolate", wave);
        Ok(())
    }

    async fn end_isolation(&self, wave: u32, _approvals: &Approvals) -> Result<(), ConnectorError> {
        self.record("end_isolation", wave);
        Ok(())
    }

    async fn poll(
        &self,
        assigned: &[Assigned],
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<Reported, ConnectorError> {
        let mut out = Reported::default();
        for a in assigned {
            let since = a.since.as_millisecond();
            let end = a.until.map(|u| u.as_millisecond()).unwrap_or(i64::MAX);
            let (lo, hi) = (
                from.as_millisecond().max(since) - since,
                to.as_millisecond().min(end) - since,
            );
            if hi <= lo {
                continue;
            }
            let sched = self.schedule(a.wave, &a.members);
            self.drift(a, &sched, from, to, &mut out);
            let start = sched.partition_point(|(t, _)| *t <= lo);
            for &(offset, d) in sched[start..].iter().take_while(|(t, _)| *t <= hi) {
                if !a.holds(d, since + offset) {
                    continue;
                }
                let at = jiff::Timestamp::from_millisecond(since + offset).unwrap_or(to);
                let state = self.outcome(a.wave, d, since + offset);
                let error = state == DeviceState::Error;
                let key = &self.keys[d as usize];
                out.statuses.push(StatusReport {
                    device: key.clone(),
                    policy: self.config.policy.clone(),
                    state,
                    reported_at: at,
                    wave: Some(a.wave),
                });
                let ticket_p = if error {
                    0.5
                } else {
                    self.config.tickets_per_100 / 100.0
                };
                if self.roll(a.wave, d, 4) < ticket_p {
                    out.tickets.push(Ticket {
                        id: format!("SIM-{}-{d}", a.wave + 1),
                        at,
                        user: None,
                        device: Some(key.clone()),
                        category: Some("device configuration".into()),
                        text: if error {
                            "settings did not apply after the update".into()
                        } else {
                            "question about the new security settings".into()
                        },
                        wave: Some(a.wave),
                        control: false,
                    });
                }
                if a.pilot && self.roll(a.wave, d, 5) < self.config.feedback_rate {
                    let score = if error {
                        2
                    } else if self.roll(a.wave, d, 6) < 0.5 {
                        4
                    } else {
                        5
                    };
                    out.feedback.push(Feedback {
                        id: format!("SIM-FB-{}-{d}", a.wave + 1),
                        at,
                        user: None,
                        device: Some(key.clone()),
                        score,
                        comment: if error {
                            "something broke".into()
                        } else {
                            "fine".into()
                        },
                        wave: Some(a.wave),
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse() {
        let f: Fault = "wave=2,os=10.0.19045,error=0.4".parse().unwrap();
        assert_eq!(
            f,
            Fault {
                wave: Some(1),
                os_prefix: Some("10.0.19045".into()),
                platform: None,
                model: None,
                setting: None,
                error_rate: 0.4,
                conflict_rate: 0.0,
                from: None,
            }
        );
        let d: Fault = "os=10.0.22631,error=0.3,from=2027-05-03".parse().unwrap();
        assert_eq!(
            d.from.map(|t| t.to_string()).as_deref(),
            Some("2027-05-03T00:00:00Z")
        );
        assert!(
            "from=soon"
                .parse::<Fault>()
                .unwrap_err()
                .contains("from `soon` is not a day")
        );
        let s: Fault = "setting=BitLocker,error=0.2".parse().unwrap();
        assert_eq!(s.setting.as_deref(), Some("bitlocker"));
        let c: Fault = "platform=macOS,conflict=0.2".parse().unwrap();
        assert_eq!(
            (c.platform.as_deref(), c.error_rate, c.conflict_rate),
            (Some("macOS"), 0.0, 0.2)
        );
        let m: Fault = "model=Latitude 7440,error=0.15".parse().unwrap();
        assert_eq!(
            (m.model.as_deref(), m.error_rate),
            (Some("Latitude 7440"), 0.15)
        );
        assert!("wave=0".parse::<Fault>().is_err());
        assert!(
            "colour=red"
                .parse::<Fault>()
                .unwrap_err()
                .contains("unknown fault key")
        );
        assert!("error=2".parse::<Fault>().is_err());
    }

    #[test]
    fn outcomes_do_not_depend_on_order() {
        let a = mix(7, 1, 42, 3);
        assert_eq!(a, mix(7, 1, 42, 3));
        assert_ne!(a, mix(7, 2, 42, 3));
        assert!((0.0..1.0).contains(&a));
    }
}
