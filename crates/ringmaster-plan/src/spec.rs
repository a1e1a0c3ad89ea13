//! The plan file, `ringmaster.toml`, as written by the admin. Values that
//! need checking beyond their type keep their place in the file
//! ([`Spanned`]) so errors can point at them.

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// A rollout plan: who gets the new policies, when, and how success is judged.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    pub rollout: Rollout,
    #[serde(default)]
    pub calendar: Calendar,
    pub help_desk: HelpDesk,
    pub sources: Sources,
    /// The targeted groups: every device in them is in scope.
    #[serde(default)]
    pub groups: Vec<TargetGroup>,
    /// Project scope, proof of concept, pilot, enterprise rollout, run state, in order.
    pub phases: Vec<PhaseSpec>,
    #[serde(default)]
    pub communications: Communications,
    /// Conflicts accepted on purpose: shown as accepted, never hidden.
    #[serde(default)]
    pub accept: Vec<AcceptSpec>,
    /// Alert rules for the run state; each replaces the built-in rule of its
    /// kind, and kinds not named keep theirs.
    #[serde(default)]
    pub alerts: Vec<AlertSpec>,
    /// Intune scope tags the rollout's new policies must carry
    /// (`roleScopeTagIds`) so administrators limited to those tags see and
    /// manage them; `plan` warns of a new policy without one, and
    /// `--scope-tag` finds a tag by its name here.
    #[serde(default)]
    pub scope_tags: Vec<ScopeTagSpec>,
    /// Who may approve a wave: `distinct = true` keeps whoever started the
    /// rollout from approving its waves alone.
    #[serde(default)]
    pub approvals: ApprovalsSpec,
}

/// The plan's approval rule (`[approvals]`); how many approvals a phase
/// needs is the phase's `approvals`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsSpec {
    /// The approver must differ from the requester (who started the
    /// rollout: `run --actor`, `serve --actor`, default `$USER`).
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub distinct: Option<Spanned<bool>>,
}

/// An Intune scope tag: its name (for `--scope-tag` and messages) and id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeTagSpec {
    /// The tag's display name in Intune, e.g. `Paris`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The tag's id in Intune (a number; `0` is Default).
    #[schemars(with = "String")]
    pub id: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// Stable id of the rollout: it seeds who lands in which wave, so keep it
    /// when editing the plan.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    pub name: String,
    /// Why the change is made, in words the users will read.
    pub purpose: String,
    /// IANA time zone of the plan's dates, e.g. `Europe/Amsterdam`.
    #[schemars(with = "String")]
    pub time_zone: Spanned<String>,
    /// First day of the project, `YYYY-MM-DD`.
    #[schemars(with = "String")]
    pub start: Spanned<String>,
    /// How often devices check in (Intune: about 8 hours); bake times are at least this.
    #[serde(default = "default_check_in")]
    #[schemars(with = "String")]
    pub check_in: Spanned<String>,
}

fn default_check_in() -> Spanned<String> {
    Spanned::new(0..0, "8h".to_string())
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// Days on which waves may start or apply: `mon` … `sun`.
    #[serde(default = "default_days")]
    #[schemars(with = "Vec<String>")]
    pub working_days: Vec<Spanned<String>>,
    /// Hours in which changes are applied, `HH:MM-HH:MM` in the plan's time zone.
    #[serde(default = "default_hours")]
    #[schemars(with = "String")]
    pub hours: Spanned<String>,
    /// Periods when nothing is applied (change freezes, holidays).
    #[serde(default)]
    pub freezes: Vec<Freeze>,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            working_days: default_days(),
            hours: default_hours(),
            freezes: Vec::new(),
        }
    }
}

fn default_days() -> Vec<Spanned<String>> {
    ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| Spanned::new(0..0, d.to_string()))
        .collect()
}

fn default_hours() -> Spanned<String> {
    Spanned::new(0..0, "09:00-17:00".to_string())
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    /// First frozen day, `YYYY-MM-DD`.
    #[schemars(with = "String")]
    pub from: Spanned<String>,
    /// Last frozen day (inclusive).
    #[schemars(with = "String")]
    pub to: Spanned<String>,
    pub reason: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HelpDesk {
    /// How users reach the help desk (phone, mail, portal).
    pub contact: String,
    /// Self-help pages users should try first.
    #[serde(default)]
    pub self_help: Vec<String>,
    /// Tickets per day the help desk can take for this rollout.
    #[schemars(with = "u32")]
    pub capacity_per_day: Spanned<u32>,
    /// Tickets expected per 100 devices in the days after they receive the change.
    #[serde(default = "default_ticket_rate")]
    pub tickets_per_100_devices: f64,
}

fn default_ticket_rate() -> f64 {
    2.0
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    /// Exports of the directory and the deployed policies (folders or files),
    /// relative to the plan file.
    #[serde(default)]
    pub org: Vec<String>,
    /// More exports of policies already deployed.
    #[serde(default)]
    pub existing: Vec<String>,
    /// Exports of the new policies this rollout deploys.
    #[serde(default)]
    pub new: Vec<String>,
    /// Names or ids of policies already in the exports that are the new ones.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub new_policies: Vec<Spanned<String>>,
}

/// How ready a group is for the change, or how much a failure would cost it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

/// How a group's users enroll or receive the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Approach {
    /// Users do it themselves from the Company Portal: the most common, scales.
    SelfService,
    /// A technician helps or pre-provisions the device: common for executives.
    Assisted,
    /// Users bring devices to an IT-staffed session: good in early phases.
    TechFair,
}

impl Approach {
    pub fn label(self) -> &'static str {
        match self {
            Approach::SelfService => "user self-service",
            Approach::Assisted => "user-assisted / pre-provisioned",
            Approach::TechFair => "IT tech fair",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    /// Short key the waves refer to.
    #[schemars(with = "String")]
    pub key: Spanned<String>,
    /// The directory group: display name or object id.
    #[schemars(with = "String")]
    pub group: Spanned<String>,
    pub willingness: Level,
    pub business_risk: Level,
    /// What the group needs (apps, hardware, network) before it can take the change.
    #[serde(default)]
    pub requirements: Vec<String>,
    /// Where the group works, as people say it; the directory's cities are reported too.
    #[serde(default)]
    pub location: Option<String>,
    /// The group's IANA time zone for its windows and messages; the plan's by default.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub time_zone: Option<Spanned<String>>,
    /// Days the group accepts changes on (`mon` … `sun`); the calendar's by default.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub days: Option<Vec<Spanned<String>>>,
    /// Hours the group accepts changes in, `HH:MM-HH:MM` in its time zone.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub hours: Option<Spanned<String>>,
    /// Preferred time frame: not before this day.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub not_before: Option<Spanned<String>>,
    /// Preferred time frame: done by this day (a warning when the plan cannot).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub not_after: Option<Spanned<String>>,
    /// Overrides the recommended enrollment approach.
    #[serde(default)]
    pub enrollment: Option<Approach>,
}

/// The phases of a rollout, in the order they run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    ProjectScope,
    ProofOfConcept,
    Pilot,
    Enterprise,
    RunState,
}

impl PhaseKind {
    pub fn label(self) -> &'static str {
        match self {
            PhaseKind::ProjectScope => "Project scope",
            PhaseKind::ProofOfConcept => "Proof of concept",
            PhaseKind::Pilot => "Pilot",
            PhaseKind::Enterprise => "Enterprise rollout",
            PhaseKind::RunState => "Run state",
        }
    }

    /// The label of a phase kind as the database keeps it (`ProofOfConcept`);
    /// an unknown name is shown as it is.
    pub fn label_of_stored(stored: &str) -> &str {
        [
            PhaseKind::ProjectScope,
            PhaseKind::ProofOfConcept,
            PhaseKind::Pilot,
            PhaseKind::Enterprise,
            PhaseKind::RunState,
        ]
        .into_iter()
        .find(|k| format!("{k:?}") == stored)
        .map_or(stored, |k| k.label())
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    #[schemars(with = "PhaseKind")]
    pub kind: Spanned<PhaseKind>,
    #[serde(default)]
    pub name: Option<String>,
    /// Length of a phase without waves (project scope, run state review), e.g. `5d`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub duration: Option<Spanned<String>>,
    /// How long each wave is watched after it applies: at least one check-in
    /// and as long as the phase's critical goals need (their longest window,
    /// a `pending_after` goal's `after`). Left out, it is the longest of those
    /// and the phase's usual bake (2d proof of concept, 3d pilot, 1d enterprise).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub bake: Option<Spanned<String>>,
    /// Each wave waits for an operator's approval before it starts.
    #[serde(default)]
    pub approval: bool,
    /// Different people who must approve each wave (1 to 10); implies `approval`.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub approvals: Option<Spanned<u32>>,
    /// A wave that passed waits for an operator to promote it before the next starts.
    #[serde(default)]
    pub promotion: bool,
    /// What a wave that fails its gates does: `pause` (default) or `rollback`.
    #[serde(default)]
    pub on_fail: OnFailSpec,
    /// Judge rates by their Wilson bounds instead of the point estimate: a
    /// small wave then cannot pass on luck (nor fail on bad luck), and the
    /// plan refuses bars a wave is too small to ever prove.
    #[serde(default)]
    pub wilson: bool,
    /// How rates and ticket rates are judged: `sequential` (default: an
    /// anytime-valid confidence sequence, safe to look at every round),
    /// `wilson` (fixed 95 % bounds) or `point` (the bare estimate).
    #[serde(default)]
    #[schemars(with = "Option<JudgingSpec>")]
    pub judging: Option<Spanned<JudgingSpec>>,
    /// Judge each wave's goals per stratum as well as overall: `model`,
    /// `os_family`, `os_version` (the exact build as imported; devices
    /// without one form one `(unknown)` stratum), `platform`, `department`,
    /// `location` or `ownership`.
    /// A stratum whose critical rate goal clearly misses its bar is held:
    /// its devices leave the wave (taken out with `on_fail = "rollback"`,
    /// kept back with `pause`) and every later wave, and the rest goes on.
    /// Off unless set.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub strata: Option<Spanned<String>>,
    /// Fewest devices of a wave a stratum needs to be judged alone (default 200).
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub stratum_min_devices: Option<Spanned<u64>>,
    /// Failed checks of one goal in a row that fail a wave (default 2).
    #[serde(default = "default_consecutive")]
    pub consecutive_failures: u32,
    /// Failed checks of one goal in all that fail a wave (default 3).
    #[serde(default = "default_total")]
    pub total_failures: u32,
    /// Proof of concept: directory groups of lab devices and test users.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub test_groups: Vec<Spanned<String>>,
    /// Proof of concept: the help desk takes part.
    #[serde(default)]
    pub help_desk_participates: bool,
    /// Pilot: its size and make-up.
    #[serde(default)]
    pub pilot: Option<PilotSpec>,
    /// Enterprise rollout: the waves, in order.
    #[serde(default)]
    pub waves: Vec<WaveSpec>,
    /// SMART goals every wave of the phase must meet.
    #[serde(default)]
    pub goals: Vec<GoalSpec>,
    /// Pin the phase's first wave (or the phase itself) to this day, `YYYY-MM-DD`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub start: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PilotSpec {
    /// Share of the devices in scope, e.g. `1%`.
    #[serde(default = "default_pilot_share")]
    #[schemars(with = "String")]
    pub share: Spanned<String>,
    /// At least this many devices.
    #[serde(default = "default_pilot_min")]
    pub min_devices: u64,
    /// Dimensions the pilot must mirror; by default platform, os_family,
    /// department, location, ownership and model (`os_version` only when named).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub dimensions: Option<Vec<Spanned<String>>>,
    /// Targeted group keys whose devices go first (IT staff always do).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub prefer: Vec<Spanned<String>>,
}

fn default_pilot_share() -> Spanned<String> {
    Spanned::new(0..0, "1%".to_string())
}

fn default_pilot_min() -> u64 {
    50
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaveSpec {
    #[serde(default)]
    pub name: Option<String>,
    /// Targeted group keys: the wave takes their devices not in an earlier wave.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub groups: Vec<Spanned<String>>,
    /// A share of the phase's devices, e.g. `5%`, drawn in the plan's stable order.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub share: Option<Spanned<String>>,
    /// Every device in scope not in an earlier wave.
    #[serde(default)]
    pub rest: bool,
    /// Split the wave into one wave per department, location or platform, smallest first.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub split_by: Option<Spanned<String>>,
    /// Pin the wave's start to this day (`YYYY-MM-DD`) or instant (`YYYY-MM-DDTHH:MM`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub start: Option<Spanned<String>>,
    /// Overrides the phase's bake time; held to the phase's goals the same way.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub bake: Option<Spanned<String>>,
}

/// One SMART goal. Every part is optional here so that a missing one is
/// reported by the SMART property it fails, not as a parse error.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoalSpec {
    /// Specific: what is measured (`apply_success_rate`, `error_rate`,
    /// `conflict_count`, `conflict_rate`, `not_applicable_rate`, `pending_after`, `tickets_per_100_devices`,
    /// `pilot_feedback_score`, `enrollment_completion`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub metric: Option<Spanned<String>>,
    /// Measurable: the bar, e.g. `>= 95%`, `<= 2`, `>= 4.0`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub threshold: Option<Spanned<String>>,
    /// Time-bound: the period the metric is computed over, e.g. `24h`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub window: Option<Spanned<String>>,
    /// Attainable: fewest devices (or answers) that must report before the goal is judged.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub min_sample: Option<Spanned<u64>>,
    /// Timely: by when, after the wave starts (`7d`) or a day (`YYYY-MM-DD`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub deadline: Option<Spanned<String>>,
    /// For `pending_after`: how long after the wave starts a device may still be pending.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub after: Option<Spanned<String>>,
    /// A critical goal decides the wave; an advisory one is only reported.
    #[serde(default = "default_true")]
    pub critical: bool,
}

fn default_true() -> bool {
    true
}

fn default_consecutive() -> u32 {
    2
}

fn default_total() -> u32 {
    3
}

/// How a phase's gates judge rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JudgingSpec {
    #[default]
    Sequential,
    Wilson,
    Point,
}

impl JudgingSpec {
    pub fn name(self) -> &'static str {
        match self {
            JudgingSpec::Sequential => "sequential",
            JudgingSpec::Wilson => "wilson",
            JudgingSpec::Point => "point",
        }
    }
}

/// What a wave that fails its gates does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailSpec {
    #[default]
    Pause,
    Rollback,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Communications {
    /// Folder (relative to the plan) with templates that replace the built-in
    /// ones: `pilot_users.md`, `pilot_users.html`, `production_users.md`, … .
    #[serde(default)]
    pub templates: Option<String>,
    /// Sender shown in the messages.
    #[serde(default)]
    pub from: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptSpec {
    /// Setting id (or readable name) of the accepted conflict.
    pub setting: String,
    /// The policies whose disagreement is accepted; all when empty.
    #[serde(default)]
    pub policies: Vec<String>,
    pub reason: String,
    /// `YYYY-MM-DD`; an expired acceptance shows the conflict again.
    #[schemars(with = "String")]
    pub expires: Spanned<String>,
}

/// How one kind of run-state finding alerts. The run state is judged every
/// 4 hours, so a hold shorter than that waits for the next check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    /// What is watched: `service_level` (a failing service level),
    /// `regressed` (devices that succeeded and now fail), `conflict` (a
    /// policy that now conflicts with a rolled-out one), `outlier` (an OS
    /// build, model or platform failing more than the rest), `overdue`
    /// (devices that entered the scope and have not reported in time),
    /// `tickets` (a rise in help-desk tickets).
    #[schemars(with = "String")]
    pub kind: Spanned<String>,
    /// `info`, `warning` or `critical`; `off` stops alerting on this kind.
    /// Defaults to the built-in rule's.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub severity: Option<Spanned<String>>,
    /// How long the finding must last before it raises an alert, e.g. `4h`,
    /// `1d`; `0h` raises at once. Defaults to the built-in rule's.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub hold: Option<Spanned<String>>,
    /// Share of the devices in scope the finding must concern, e.g. `2%`;
    /// `0%` for any. Defaults to the built-in rule's.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub min_share: Option<Spanned<String>>,
}

/// The JSON Schema of the plan file.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(PlanFile)).unwrap_or_default()
}

/// The plan file's reference as Markdown, from the JSON Schema: one table
/// per section with each key's type, default, whether it is required and
/// what it means. `docs/plan-reference.md` is this text.
pub fn reference_markdown() -> String {
    use serde_json::Value;
    use std::fmt::Write;
    let schema = schema();
    let defs = schema["$defs"].as_object().cloned().unwrap_or_default();
    let name_of = |v: &Value| -> Option<String> {
        v["$ref"]
            .as_str()
            .or_else(|| v["items"]["$ref"].as_str())
            .or_else(|| {
                v["anyOf"]
                    .as_array()
                    .and_then(|a| a.iter().find_map(|x| x["$ref"].as_str()))
            })
            .map(|r| r.trim_start_matches("#/$defs/").to_string())
    };
    let type_of = |v: &Value| -> String {
        if let Some(n) = name_of(v) {
            let d = &defs[&n];
            if let Some(e) = d["enum"].as_array() {
                return e
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|x| format!("`{x}`"))
                    .collect::<Vec<_>>()
                    .join(" \\| ");
            }
            if d["oneOf"].is_array() {
                let options: Vec<String> = d["oneOf"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o["const"].as_str().or_else(|| o["enum"][0].as_str()))
                    .map(|x| format!("`{x}`"))
                    .collect();
                if !options.is_empty() {
                    return options.join(" \\| ");
                }
            }
            return if v["type"] == "array" {
                format!("list of {n}")
            } else {
                n
            };
        }
        match (&v["type"], v["items"]["type"].as_str()) {
            (Value::String(t), Some(i)) if t == "array" => format!("list of {i}"),
            (Value::String(t), _) => t.clone(),
            (Value::Array(ts), _) => ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect::<Vec<_>>()
                .join(" or "),
            _ => "value".into(),
        }
    };
    let one_line = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|")
    };
    let mut out = String::from(
        "# Plan file reference\n\nGenerated from the JSON Schema (`ringmaster plan --schema`, `docs/ringmaster.schema.json`); a test keeps it current. The guide is [plan.md](plan.md); a commented example is `examples/demo/ringmaster.toml`.\n",
    );
    let table = |out: &mut String, title: &str, obj: &Value| {
        let required: Vec<&str> = obj["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let _ = write!(out, "\n## {title}\n\n");
        if let Some(d) = obj["description"].as_str() {
            let _ = write!(out, "{}\n\n", one_line(d));
        }
        let _ = writeln!(
            out,
            "| key | type | required | default | meaning |\n|---|---|---|---|---|"
        );
        for (k, v) in obj["properties"].as_object().into_iter().flatten() {
            let default = match &v["default"] {
                Value::Null => String::new(),
                d => format!("`{d}`"),
            };
            let _ = writeln!(
                out,
                "| `{k}` | {} | {} | {default} | {} |",
                type_of(v),
                if required.contains(&k.as_str()) {
                    "yes"
                } else {
                    ""
                },
                one_line(v["description"].as_str().unwrap_or(""))
            );
        }
    };
    table(&mut out, "The file", &schema);
    for (n, d) in &defs {
        if d["properties"].is_object() {
            table(&mut out, n, d);
        }
    }
    out
}

impl PhaseSpec {
    /// Whether the phase's waves wait for approval (`approval`, or `approvals`).
    pub fn needs_approval(&self) -> bool {
        self.approval || self.approvals.is_some()
    }

    /// Different approvers each wave needs (1 unless `approvals` says more).
    pub fn approvers(&self) -> u32 {
        self.approvals.as_ref().map_or(1, |n| *n.get_ref()).max(1)
    }

    /// The phase's judging: `wilson = true` (the older switch) means Wilson
    /// bounds; otherwise `judging`, sequential when unset.
    pub fn judging(&self) -> JudgingSpec {
        match (&self.judging, self.wilson) {
            (Some(j), _) => *j.get_ref(),
            (None, true) => JudgingSpec::Wilson,
            (None, false) => JudgingSpec::Sequential,
        }
    }
}
