//! The wave state machine: where a wave is, what may happen to it next, and
//! what must change in the MDM (desired state) when it does. Pure: the
//! engine persists each transition and applies the effects through a
//! connector; the actual state comes back as events (`Applied`, `RolledBack`).

use crate::gates::Decision;
use serde::{Deserialize, Serialize};

/// Why a wave is paused; several can hold at once, and it resumes when none do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Manual,
    Inconclusive,
    WindowClosed,
    SourceError,
    AwaitingPromotion,
}

impl Reason {
    pub const ALL: [Reason; 5] = [
        Reason::Manual,
        Reason::Inconclusive,
        Reason::WindowClosed,
        Reason::SourceError,
        Reason::AwaitingPromotion,
    ];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Manual => "held for an operator",
            Reason::Inconclusive => "gates inconclusive",
            Reason::WindowClosed => "outside the allowed window",
            Reason::SourceError => "metrics source failing",
            Reason::AwaitingPromotion => "awaiting promotion",
        }
    }
}

/// A set of pause reasons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reasons(u8);

impl Reasons {
    pub fn of(r: Reason) -> Self {
        Reasons(r.bit())
    }
    pub fn with(self, r: Reason) -> Self {
        Reasons(self.0 | r.bit())
    }
    pub fn without(self, r: Reason) -> Self {
        Reasons(self.0 & !r.bit())
    }
    pub fn contains(self, r: Reason) -> bool {
        self.0 & r.bit() != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Reason> {
        Reason::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

/// The step a paused wave returns to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Pending,
    Applying,
    Baking,
    /// Passed its gates, waiting for the promotion to count as passed.
    Passed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WaveState {
    Pending,
    AwaitingApproval,
    Applying,
    Baking,
    Paused { reasons: Reasons, resume_to: Step },
    Passed,
    Failed,
    RollingBack,
    RolledBack,
    Superseded,
}

impl WaveState {
    pub fn name(self) -> &'static str {
        match self {
            WaveState::Pending => "pending",
            WaveState::AwaitingApproval => "awaiting approval",
            WaveState::Applying => "applying",
            WaveState::Baking => "baking",
            WaveState::Paused { .. } => "paused",
            WaveState::Passed => "passed",
            WaveState::Failed => "failed",
            WaveState::RollingBack => "rolling back",
            WaveState::RolledBack => "rolled back",
            WaveState::Superseded => "superseded",
        }
    }

    /// Nothing more happens to the wave without an operator (retry) or a new plan.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            WaveState::Passed | WaveState::Failed | WaveState::RolledBack | WaveState::Superseded
        )
    }

    /// Whether the wave's assignment should be in place (desired state).
    pub fn wants_assignment(self) -> bool {
        match self {
            WaveState::Applying | WaveState::Baking | WaveState::Passed | WaveState::Failed => true,
            WaveState::Paused { resume_to, .. } => resume_to != Step::Pending,
            _ => false,
        }
    }
}

/// Something that happened to a wave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "with", rename_all = "snake_case")]
pub enum Event {
    /// The schedule says the wave starts now.
    Start,
    Approve,
    /// The connector confirmed the assignment is in place.
    Applied,
    /// One round of gate evaluations.
    Gate(GateDecision),
    Pause,
    /// Clears a pause reason (an operator, a reopened window, a recovered source).
    Resume(Reason),
    /// The allowed window closed while applying.
    WindowClosed,
    Promote,
    Abort,
    Rollback,
    /// The connector confirmed the assignment is gone.
    RolledBack,
    Retry,
    /// A new plan version replaces this wave.
    Supersede,
    /// The same wave (same devices) already passed in an earlier plan version.
    CarriedOver,
}

/// The gates' decision as an event (serialisable, with its sentence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum GateDecision {
    Pass { why: String },
    Fail { why: String },
    Hold { why: String, inconclusive: bool },
    SourceError { why: String },
}

impl From<&Decision> for GateDecision {
    fn from(d: &Decision) -> Self {
        match d {
            Decision::Pass { why } => GateDecision::Pass { why: why.clone() },
            Decision::Fail { why } => GateDecision::Fail { why: why.clone() },
            Decision::Hold { why } => GateDecision::Hold {
                why: why.clone(),
                inconclusive: why.contains("too close to the bar"),
            },
            Decision::SourceError { why } => GateDecision::SourceError { why: why.clone() },
        }
    }
}

/// What to do when a wave fails its gates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFail {
    #[default]
    Pause,
    Rollback,
}

/// How the plan wants this wave run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// An operator approves before the wave applies.
    pub approval: bool,
    /// An operator promotes a wave that passed before the next one may start.
    pub promotion: bool,
    pub on_fail: OnFail,
    /// The isolated pilot step: keep the wave's devices out of existing
    /// policies that touch the same settings while it runs.
    pub isolated: bool,
}

/// A change the engine must make in the MDM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Fill the wave's group and add it to the new policies' assignments.
    Assign,
    /// Add the wave's group as an exclusion to the existing policies that set
    /// the same settings (isolated pilot).
    Isolate,
    /// Remove those exclusions again.
    EndIsolation,
    /// Remove the wave's group from the new policies' assignments.
    Unassign,
    /// The next wave may start.
    ReleaseNext,
    /// Tell the operators (gate failure, pause, source error).
    AlertOperators,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: WaveState,
    pub to: WaveState,
    pub effects: Vec<Effect>,
    /// One sentence: why the wave moved.
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("a wave that is {state} cannot {action}")]
pub struct Refused {
    pub state: &'static str,
    pub action: &'static str,
}

fn action(e: &Event) -> &'static str {
    match e {
        Event::Start => "start",
        Event::Approve => "be approved",
        Event::Applied => "finish applying",
        Event::Gate(_) => "be judged by its gates",
        Event::Pause => "be paused",
        Event::Resume(_) => "resume",
        Event::WindowClosed => "wait for its window",
        Event::Promote => "be promoted",
        Event::Abort => "be aborted",
        Event::Rollback => "be rolled back",
        Event::RolledBack => "finish rolling back",
        Event::Retry => "be retried",
        Event::Supersede => "be superseded",
        Event::CarriedOver => "be carried over",
    }
}

fn paused(reasons: Reasons, resume_to: Step) -> WaveState {
    WaveState::Paused { reasons, resume_to }
}

fn resume(step: Step) -> WaveState {
    match step {
        Step::Pending => WaveState::Pending,
        Step::Applying => WaveState::Applying,
        Step::Baking => WaveState::Baking,
        Step::Passed => WaveState::Passed,
    }
}

/// The next state for `event`, with the effects and a sentence; refused
/// when the event makes no sense in this state (nothing changes then).
pub fn step(state: WaveState, event: &Event, rules: &Rules) -> Result<Transition, Refused> {
    let next = match event {
        Event::Gate(d) => on_gate(state, d, rules),
        Event::Pause | Event::Resume(_) | Event::Promote => on_hold(state, event),
        _ => on_lifecycle(state, event, rules),
    };
    match next {
        Some((to, effects, why)) => Ok(Transition {
            from: state,
            to,
            effects,
            why,
        }),
        None => Err(Refused {
            state: state.name(),
            action: action(event),
        }),
    }
}

/// A move: the next state, the effects and why.
type Move = (WaveState, Vec<Effect>, String);

fn assign(rules: &Rules) -> Vec<Effect> {
    if rules.isolated {
        vec![Effect::Isolate, Effect::Assign]
    } else {
        vec![Effect::Assign]
    }
}

/// A wave that passed: passed, or waiting for promotion when the plan wants it.
fn after_pass(why: String, rules: &Rules) -> Move {
    let mut effects = Vec::new();
    if rules.isolated {
        effects.push(Effect::EndIsolation);
    }
    if rules.promotion {
        (
            paused(Reasons::of(Reason::AwaitingPromotion), Step::Passed),
            effects,
            format!("{why}; waiting for an operator to promote it"),
        )
    } else {
        effects.push(Effect::ReleaseNext);
        (WaveState::Passed, effects, why)
    }
}

/// A wave that failed: paused or rolled back, as the plan says.
fn on_fail(why: String, resume_to: Step, rules: &Rules) -> Move {
    match rules.on_fail {
        OnFail::Pause => (
            paused(Reasons::of(Reason::Manual), resume_to),
            vec![Effect::AlertOperators],
            format!("{why}; the wave is paused for an operator, as the plan says"),
        ),
        OnFail::Rollback => (
            WaveState::RollingBack,
            vec![Effect::Unassign, Effect::AlertOperators],
            format!("{why}; the wave is rolled back, as the plan says"),
        ),
    }
}

/// A gate decision: judged while baking, and also while paused for an
/// inconclusive result or a source error (not by an operator), so the wave
/// moves on by itself once the gates settle.
fn on_gate(state: WaveState, d: &GateDecision, rules: &Rules) -> Option<Move> {
    match state {
        WaveState::Baking => Some(judge(d, rules)),
        WaveState::Paused {
            reasons,
            resume_to: Step::Baking,
        } if (reasons.contains(Reason::Inconclusive) || reasons.contains(Reason::SourceError))
            && !reasons.contains(Reason::Manual) =>
        {
            Some(settle(reasons, d, rules))
        }
        _ => None,
    }
}

/// A baking wave's gate decision.
fn judge(d: &GateDecision, rules: &Rules) -> Move {
    match d {
        GateDecision::Pass { why } => after_pass(format!("the wave passed: {why}"), rules),
        GateDecision::Fail { why } => on_fail(
            format!("the wave failed its gates: {why}"),
            Step::Baking,
            rules,
        ),
        GateDecision::Hold {
            why,
            inconclusive: true,
        } => (
            paused(Reasons::of(Reason::Inconclusive), Step::Baking),
            Vec::new(),
            format!("held: {why}"),
        ),
        GateDecision::Hold { why, .. } => (
            WaveState::Baking,
            Vec::new(),
            format!("still baking: {why}"),
        ),
        GateDecision::SourceError { why } => (
            paused(Reasons::of(Reason::SourceError), Step::Baking),
            vec![Effect::AlertOperators],
            format!("paused, not rolled back: {why}"),
        ),
    }
}

/// A gate decision for a wave paused (with `reasons`) while baking.
fn settle(reasons: Reasons, d: &GateDecision, rules: &Rules) -> Move {
    let rest = reasons
        .without(Reason::Inconclusive)
        .without(Reason::SourceError);
    match d {
        GateDecision::SourceError { why } => (
            paused(rest.with(Reason::SourceError), Step::Baking),
            Vec::new(),
            format!("still paused: {why}"),
        ),
        GateDecision::Hold {
            why,
            inconclusive: true,
        } => (
            paused(rest.with(Reason::Inconclusive), Step::Baking),
            Vec::new(),
            format!("still held: {why}"),
        ),
        _ if !rest.is_empty() => (
            paused(rest, Step::Baking),
            Vec::new(),
            "the gates settled; other pause reasons remain".into(),
        ),
        GateDecision::Pass { why } => after_pass(format!("the wave passed: {why}"), rules),
        GateDecision::Fail { why } => on_fail(
            format!("the wave failed its gates: {why}"),
            Step::Baking,
            rules,
        ),
        GateDecision::Hold { why, .. } => (
            WaveState::Baking,
            Vec::new(),
            format!("baking again: {why}"),
        ),
    }
}

/// An operator's pause, resume or promotion. Pause reasons stack: a wave
/// resumes when none holds.
fn on_hold(state: WaveState, event: &Event) -> Option<Move> {
    use WaveState as S;
    let mv = |to: WaveState, effects: Vec<Effect>, why: String| Some((to, effects, why));
    match (state, event) {
        (S::Pending | S::AwaitingApproval, Event::Pause) => mv(
            paused(Reasons::of(Reason::Manual), Step::Pending),
            Vec::new(),
            "paused by an operator before it started".into(),
        ),
        (S::Applying, Event::Pause) => mv(
            paused(Reasons::of(Reason::Manual), Step::Applying),
            Vec::new(),
            "paused by an operator while applying".into(),
        ),
        (S::Baking, Event::Pause) => mv(
            paused(Reasons::of(Reason::Manual), Step::Baking),
            Vec::new(),
            "paused by an operator while baking".into(),
        ),
        (S::Paused { reasons, resume_to }, Event::Pause) if !reasons.contains(Reason::Manual) => {
            mv(
                paused(reasons.with(Reason::Manual), resume_to),
                Vec::new(),
                "an operator paused it too".into(),
            )
        }
        (S::Paused { reasons, resume_to }, Event::Resume(r)) if reasons.contains(*r) => {
            let rest = reasons.without(*r);
            if rest.is_empty() {
                let to = resume(resume_to);
                let effects = if to == S::Passed {
                    vec![Effect::ReleaseNext]
                } else {
                    Vec::new()
                };
                mv(to, effects, format!("resumed: no longer {}", r.as_str()))
            } else {
                mv(
                    paused(rest, resume_to),
                    Vec::new(),
                    format!(
                        "no longer {}, still {}",
                        r.as_str(),
                        rest.iter()
                            .map(Reason::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            }
        }
        (S::Paused { reasons, resume_to }, Event::Promote)
            if reasons.contains(Reason::AwaitingPromotion) =>
        {
            let rest = reasons.without(Reason::AwaitingPromotion);
            if rest.is_empty() {
                mv(
                    S::Passed,
                    vec![Effect::ReleaseNext],
                    "promoted by an operator".into(),
                )
            } else {
                mv(
                    paused(rest, resume_to),
                    Vec::new(),
                    "promoted; other pause reasons remain".into(),
                )
            }
        }
        _ => None,
    }
}

/// The wave's own course: start (after approval when the plan wants it),
/// applied, window closed, abort, rollback, retry, supersede, carry over.
fn on_lifecycle(state: WaveState, event: &Event, rules: &Rules) -> Option<Move> {
    use WaveState as S;
    let mv = |to: WaveState, effects: Vec<Effect>, why: String| Some((to, effects, why));
    match (state, event) {
        (_, Event::Supersede) if !matches!(state, S::Superseded | S::RolledBack) => mv(
            S::Superseded,
            Vec::new(),
            "a new version of the plan replaces this wave".into(),
        ),
        (S::Pending, Event::CarriedOver) => mv(
            S::Passed,
            Vec::new(),
            "it passed in an earlier version of the plan, on the same devices".into(),
        ),
        (S::Pending, Event::Start) if rules.approval => mv(
            S::AwaitingApproval,
            Vec::new(),
            "the wave's time has come; it waits for an operator's approval".into(),
        ),
        (S::Pending, Event::Start) | (S::AwaitingApproval, Event::Approve) => mv(
            S::Applying,
            assign(rules),
            if rules.isolated {
                "the wave starts: its devices get the new policies alone (isolated)".into()
            } else {
                "the wave starts: its devices get the new policies".into()
            },
        ),
        (S::Applying, Event::Applied) => mv(
            S::Baking,
            Vec::new(),
            "the assignment is in place; the wave bakes while devices check in".into(),
        ),
        (S::Applying, Event::WindowClosed) => mv(
            paused(Reasons::of(Reason::WindowClosed), Step::Applying),
            Vec::new(),
            "the allowed window closed before every device was reached".into(),
        ),
        (S::Pending | S::AwaitingApproval, Event::Abort) => mv(
            S::Failed,
            Vec::new(),
            "aborted by an operator before it started".into(),
        ),
        (S::Applying | S::Baking | S::Paused { .. }, Event::Abort) => mv(
            S::Failed,
            vec![Effect::AlertOperators],
            "aborted by an operator; what was applied stays until it is rolled back".into(),
        ),
        (S::Applying | S::Baking | S::Paused { .. } | S::Failed | S::Passed, Event::Rollback)
            if state.wants_assignment() =>
        {
            let mut effects = vec![Effect::Unassign];
            if rules.isolated {
                effects.insert(0, Effect::EndIsolation);
            }
            mv(
                S::RollingBack,
                effects,
                "an operator rolls the wave back".into(),
            )
        }
        (S::RollingBack, Event::RolledBack) => mv(
            S::RolledBack,
            Vec::new(),
            "the wave's assignment is removed from every device".into(),
        ),
        (S::Failed | S::RolledBack, Event::Retry) => mv(
            S::Pending,
            Vec::new(),
            "an operator retries the wave".into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(rules: Rules, events: &[Event]) -> (WaveState, Vec<Effect>) {
        let mut s = WaveState::Pending;
        let mut effects = Vec::new();
        for e in events {
            let t = step(s, e, &rules).unwrap_or_else(|r| panic!("{e:?} refused: {r}"));
            effects.extend(t.effects);
            s = t.to;
        }
        (s, effects)
    }

    fn pass() -> Event {
        Event::Gate(GateDecision::Pass { why: "ok".into() })
    }

    fn fail() -> Event {
        Event::Gate(GateDecision::Fail {
            why: "error rate 9 %".into(),
        })
    }

    #[test]
    fn a_wave_runs_to_the_end() {
        let (s, fx) = run(Rules::default(), &[Event::Start, Event::Applied, pass()]);
        assert_eq!(s, WaveState::Passed);
        assert_eq!(fx, vec![Effect::Assign, Effect::ReleaseNext]);
    }

    #[test]
    fn approval_and_promotion_wait_for_an_operator() {
        let rules = Rules {
            approval: true,
            promotion: true,
            ..Rules::default()
        };
        let (s, _) = run(rules, &[Event::Start]);
        assert_eq!(s, WaveState::AwaitingApproval);
        let (s, fx) = run(
            rules,
            &[Event::Start, Event::Approve, Event::Applied, pass()],
        );
        assert_eq!(
            s,
            paused(Reasons::of(Reason::AwaitingPromotion), Step::Passed)
        );
        assert!(!fx.contains(&Effect::ReleaseNext));
        let t = step(s, &Event::Promote, &rules).unwrap();
        assert_eq!(
            (t.to, t.effects),
            (WaveState::Passed, vec![Effect::ReleaseNext])
        );
    }

    #[test]
    fn failure_pauses_or_rolls_back_as_the_plan_says() {
        let (s, fx) = run(Rules::default(), &[Event::Start, Event::Applied, fail()]);
        assert_eq!(s, paused(Reasons::of(Reason::Manual), Step::Baking));
        assert!(fx.contains(&Effect::AlertOperators));
        let rules = Rules {
            on_fail: OnFail::Rollback,
            ..Rules::default()
        };
        let t = step(WaveState::Baking, &fail(), &rules).unwrap();
        assert_eq!(t.to, WaveState::RollingBack);
        assert!(t.effects.contains(&Effect::Unassign));
        assert!(
            t.why.contains("error rate 9 %") && t.why.contains("rolled back, as the plan says"),
            "{}",
            t.why
        );
        let t = step(t.to, &Event::RolledBack, &rules).unwrap();
        assert_eq!(t.to, WaveState::RolledBack);
        assert_eq!(
            step(t.to, &Event::Retry, &rules).unwrap().to,
            WaveState::Pending
        );
    }

    #[test]
    fn a_source_error_pauses_and_never_rolls_back() {
        let rules = Rules {
            on_fail: OnFail::Rollback,
            ..Rules::default()
        };
        let err = Event::Gate(GateDecision::SourceError {
            why: "Graph 503".into(),
        });
        let (s, fx) = run(rules, &[Event::Start, Event::Applied, err.clone(), err]);
        assert_eq!(s, paused(Reasons::of(Reason::SourceError), Step::Baking));
        assert!(!fx.contains(&Effect::Unassign));
        // When the source answers again and the gates pass, the wave moves on.
        let t = step(s, &pass(), &rules).unwrap();
        assert_eq!(t.to, WaveState::Passed);
    }

    #[test]
    fn pause_reasons_stack_and_resume_needs_all_cleared() {
        let r = Rules::default();
        let (s, _) = run(r, &[Event::Start, Event::WindowClosed, Event::Pause]);
        assert_eq!(
            s,
            paused(
                Reasons::of(Reason::WindowClosed).with(Reason::Manual),
                Step::Applying
            )
        );
        let t = step(s, &Event::Resume(Reason::Manual), &r).unwrap();
        assert!(
            matches!(t.to, WaveState::Paused { .. })
                && t.why.contains("still outside the allowed window"),
            "{}",
            t.why
        );
        let t = step(t.to, &Event::Resume(Reason::WindowClosed), &r).unwrap();
        assert_eq!(t.to, WaveState::Applying);
        // Resuming a reason that does not hold is refused, and says so.
        let e = step(WaveState::Baking, &Event::Resume(Reason::Manual), &r).unwrap_err();
        assert_eq!(e.to_string(), "a wave that is baking cannot resume");
    }

    #[test]
    fn isolated_pilot_excludes_then_ends_isolation() {
        let rules = Rules {
            isolated: true,
            ..Rules::default()
        };
        let (_, fx) = run(rules, &[Event::Start, Event::Applied, pass()]);
        assert_eq!(
            fx,
            vec![
                Effect::Isolate,
                Effect::Assign,
                Effect::EndIsolation,
                Effect::ReleaseNext
            ]
        );
        let t = step(WaveState::Baking, &Event::Rollback, &rules).unwrap();
        assert_eq!(t.effects, vec![Effect::EndIsolation, Effect::Unassign]);
    }

    #[test]
    fn nonsense_is_refused_and_finals_stay_put() {
        let r = Rules::default();
        for (s, e) in [
            (WaveState::Pending, Event::Applied),
            (WaveState::Pending, Event::Rollback),
            (WaveState::Passed, Event::Start),
            (WaveState::Baking, Event::Approve),
            (WaveState::Superseded, Event::Retry),
        ] {
            assert!(step(s, &e, &r).is_err(), "{s:?} + {e:?}");
        }
    }

    fn any_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            Just(Event::Start),
            Just(Event::Approve),
            Just(Event::Applied),
            Just(pass()),
            Just(fail()),
            Just(Event::Gate(GateDecision::Hold {
                why: "close".into(),
                inconclusive: true
            })),
            Just(Event::Gate(GateDecision::SourceError { why: "503".into() })),
            Just(Event::Pause),
            prop::sample::select(Reason::ALL.to_vec()).prop_map(Event::Resume),
            Just(Event::WindowClosed),
            Just(Event::Promote),
            Just(Event::Abort),
            Just(Event::Rollback),
            Just(Event::RolledBack),
            Just(Event::Retry),
        ]
    }

    proptest! {
        /// Whatever operators and gates do: the assignment is added only when
        /// a wave starts applying and removed only on the way to rolled back;
        /// a paused wave always has a reason; nothing leaves superseded.
        #[test]
        fn invariants_hold_for_any_sequence(
            events in prop::collection::vec(any_event(), 0..40),
            approval: bool, promotion: bool, rollback: bool, isolated: bool,
        ) {
            let rules = Rules { approval, promotion, isolated, on_fail: if rollback { OnFail::Rollback } else { OnFail::Pause } };
            let mut s = WaveState::Pending;
            for e in events.iter().chain([Event::Supersede].iter()) {
                let Ok(t) = step(s, e, &rules) else { continue };
                if t.effects.contains(&Effect::Assign) {
                    prop_assert_eq!(t.to, WaveState::Applying);
                }
                if t.effects.contains(&Effect::Unassign) {
                    prop_assert_eq!(t.to, WaveState::RollingBack);
                    prop_assert!(t.from.wants_assignment());
                }
                if let WaveState::Paused { reasons, .. } = t.to {
                    prop_assert!(!reasons.is_empty());
                }
                prop_assert!(!t.why.is_empty());
                s = t.to;
            }
            prop_assert!(matches!(s, WaveState::Superseded | WaveState::RolledBack));
            for e in events.iter() {
                prop_assert!(step(WaveState::Superseded, e, &rules).is_err());
            }
        }
    }
}
