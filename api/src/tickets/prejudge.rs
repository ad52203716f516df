//! The pre-judgement of a customer report: which component the device's own data
//! points at, with a confidence and the evidence, before a person looks
//! (docs/intake.md, "Pre-judgement").
//!
//! Pure: it reads only what it is given. Nuisance codes (linked to no component) are
//! listed last in the evidence and weigh nothing. Every component of the profile gets a score,
//! the sum of the weights of its evidence (the `W_*` constants below, one table in
//! docs/intake.md); a component's confidence is its score over the sum of
//! all scores plus [`UNEXPLAINED`], the mass of "something the data does not show"
//! (an installation problem, a user error, a part without a sensor). The likely
//! component is the best one when its confidence reaches [`CONFIDENT`].

use std::collections::BTreeMap;

use domain::{
    ComponentScore, Evidence, PreJudgement, ProblemCategory, Profile, Severity, Timestamp,
};

use crate::tickets::RiskRecord;
use store::tickets::NormalRange;

/// A critical fault code the catalogue links to the component.
pub const W_FAULT_CRITICAL: f64 = 4.0;
/// A major fault code the catalogue links to the component.
pub const W_FAULT_MAJOR: f64 = 3.0;
/// A minor fault code the catalogue links to the component.
pub const W_FAULT_MINOR: f64 = 1.0;
/// An informational fault code the catalogue links to the component.
pub const W_FAULT_INFO: f64 = 0.5;
/// The factor on a non-critical code's weight when nothing else in the data
/// corroborates its component (no risk at half its threshold or more, no reading out
/// of range): a nuisance code alone must not make a confident judgement.
pub const UNCORROBORATED: f64 = 0.5;
/// A flagged risk: this plus the risk itself.
pub const W_RISK_FLAGGED: f64 = 3.0;
/// An unflagged risk at or above half its threshold: this times risk / threshold.
pub const W_RISK_ELEVATED: f64 = 1.0;
/// Share of its threshold from which an unflagged risk counts.
pub const ELEVATED_SHARE: f64 = 0.5;
/// One of the component's channels whose latest reading is outside the fleet's
/// p5-p95.
pub const W_READING: f64 = 1.5;
/// At most this much from readings per component.
pub const MAX_READINGS: f64 = 3.0;
/// The report's category is one of the component's `symptoms`.
pub const W_CATEGORY: f64 = 1.0;
/// The score of "something the data does not show", in every denominator.
pub const UNEXPLAINED: f64 = 2.0;
/// The confidence from which the best candidate is the judged component.
pub const CONFIDENT: f64 = 0.6;
/// Fault codes older than this before the device's newest event do not count.
pub const FAULT_WINDOW_MS: i64 = 7 * Timestamp::DAY_MS;

/// What the pre-judgement reads about one device.
#[derive(Clone, Copy, Debug)]
pub struct PrejudgeInput<'a> {
    /// The device's profile; without one nothing points anywhere.
    pub profile: Option<&'a Profile>,
    /// The report's category.
    pub category: ProblemCategory,
    /// Fault codes the device raised (code, event time), any order.
    pub faults: &'a [(String, Timestamp)],
    /// The current risk of each scored component.
    pub risks: &'a [RiskRecord],
    /// The latest value of each channel.
    pub readings: &'a BTreeMap<String, f64>,
    /// The fleet's normal range of each channel (type and model).
    pub ranges: &'a BTreeMap<String, NormalRange>,
    /// The device's newest event time: faults count from [`FAULT_WINDOW_MS`] before it.
    pub reference: Timestamp,
    /// When the judgement is made (the service's clock).
    pub at: Timestamp,
}

fn fault_weight(severity: Severity) -> f64 {
    match severity {
        Severity::Critical => W_FAULT_CRITICAL,
        Severity::Major => W_FAULT_MAJOR,
        Severity::Minor => W_FAULT_MINOR,
        Severity::Info => W_FAULT_INFO,
    }
}

/// Rounds to three decimals (confidences are read by people).
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Judges a report (see the module docs and docs/intake.md).
pub fn prejudge(input: &PrejudgeInput<'_>) -> PreJudgement {
    let empty = PreJudgement {
        at: input.at,
        component: None,
        confidence: 0.0,
        candidates: Vec::new(),
        evidence: Vec::new(),
    };
    let Some(profile) = input.profile else {
        return empty;
    };
    // (weight, evidence) per component.
    let mut found: BTreeMap<&str, Vec<(f64, Evidence)>> = BTreeMap::new();
    let mut corroborated: BTreeMap<&str, bool> = BTreeMap::new();

    for r in input.risks {
        let Some(c) = profile.component(&r.component) else {
            continue;
        };
        if !r.risk.is_finite() {
            continue;
        }
        let weight = if r.flagged {
            W_RISK_FLAGGED + r.risk.clamp(0.0, 1.0)
        } else if r.threshold > 0.0 && r.risk >= r.threshold * ELEVATED_SHARE {
            W_RISK_ELEVATED * (r.risk / r.threshold).min(1.0)
        } else {
            continue;
        };
        corroborated.insert(c.name.as_str(), true);
        found.entry(c.name.as_str()).or_default().push((
            weight,
            Evidence::Risk {
                component: c.name.clone(),
                risk: r.risk,
                flagged: r.flagged,
            },
        ));
    }

    for c in profile.components() {
        let mut from_readings = 0.0;
        for ch in &c.channels {
            let (Some(&value), Some(range)) = (input.readings.get(ch), input.ranges.get(ch)) else {
                continue;
            };
            if !value.is_finite() || (range.p5..=range.p95).contains(&value) {
                continue;
            }
            let weight = W_READING.min(MAX_READINGS - from_readings);
            if weight <= 0.0 {
                break;
            }
            from_readings += weight;
            corroborated.insert(c.name.as_str(), true);
            found.entry(c.name.as_str()).or_default().push((
                weight,
                Evidence::Reading {
                    component: c.name.clone(),
                    channel: ch.clone(),
                    value,
                    low: range.p5,
                    high: range.p95,
                },
            ));
        }
        if c.symptoms.contains(&input.category) {
            found.entry(c.name.as_str()).or_default().push((
                W_CATEGORY,
                Evidence::Category {
                    component: c.name.clone(),
                    category: input.category,
                },
            ));
        }
    }

    // Each code once, its newest raise within the window.
    let since = input.reference.millis().saturating_sub(FAULT_WINDOW_MS);
    let mut codes: BTreeMap<&str, Timestamp> = BTreeMap::new();
    for (code, ts) in input.faults {
        if ts.millis() < since || *ts > input.reference {
            continue;
        }
        let e = codes.entry(code.as_str()).or_insert(*ts);
        *e = (*e).max(*ts);
    }
    let mut nuisance = Vec::new();
    for (code, ts) in codes {
        let Some(def) = profile.fault(code) else {
            continue;
        };
        let Some(component) = def.component.as_deref() else {
            nuisance.push(Evidence::Nuisance {
                code: code.to_owned(),
                ts,
                title: Some(def.title.clone()),
                severity: Some(def.severity.as_str().to_owned()),
            });
            continue;
        };
        let mut weight = fault_weight(def.severity);
        if def.severity != Severity::Critical
            && !corroborated.get(component).copied().unwrap_or(false)
        {
            weight *= UNCORROBORATED;
        }
        found.entry(component).or_default().push((
            weight,
            Evidence::FaultCode {
                component: component.to_owned(),
                code: code.to_owned(),
                ts,
                title: Some(def.title.clone()),
                severity: Some(def.severity.as_str().to_owned()),
            },
        ));
    }

    let total: f64 = found.values().flatten().map(|(w, _)| w).sum();
    let denominator = total + UNEXPLAINED;
    let mut candidates: Vec<ComponentScore> = found
        .iter()
        .map(|(c, items)| ComponentScore {
            component: (*c).to_owned(),
            confidence: round3(items.iter().map(|(w, _)| w).sum::<f64>() / denominator),
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then_with(|| a.component.cmp(&b.component))
    });
    let mut evidence: Vec<(f64, Evidence)> = found.into_values().flatten().collect();
    evidence.sort_by(|a, b| b.0.total_cmp(&a.0));
    let best = candidates
        .first()
        .filter(|c| c.confidence >= CONFIDENT)
        .cloned();
    PreJudgement {
        at: input.at,
        component: best.as_ref().map(|c| c.component.clone()),
        confidence: best.map_or(0.0, |c| c.confidence),
        candidates,
        evidence: evidence
            .into_iter()
            .map(|(_, e)| e)
            .chain(nuisance)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    fn washer() -> std::sync::Arc<Profile> {
        domain::ProfileSet::builtin()
            .get("washer")
            .cloned()
            .unwrap()
    }

    fn risk(component: &str, risk: f64, flagged: bool) -> RiskRecord {
        RiskRecord {
            device_id: "wm-1".into(),
            device_type: "washer".into(),
            component: component.into(),
            risk,
            threshold: 0.5,
            flagged,
            model_version: "v1".into(),
            ts: NOW,
            top_features: Vec::new(),
            updated_at: NOW,
            warming_up: false,
        }
    }

    fn range(p5: f64, p95: f64) -> NormalRange {
        NormalRange {
            p5,
            p50: (p5 + p95) / 2.0,
            p95,
            devices: 100,
            computed_at: NOW,
        }
    }

    struct Case {
        category: ProblemCategory,
        faults: Vec<(String, Timestamp)>,
        risks: Vec<RiskRecord>,
        readings: BTreeMap<String, f64>,
        ranges: BTreeMap<String, NormalRange>,
    }

    impl Case {
        fn new(category: ProblemCategory) -> Self {
            Self {
                category,
                faults: Vec::new(),
                risks: Vec::new(),
                readings: BTreeMap::new(),
                ranges: BTreeMap::new(),
            }
        }

        fn judge(&self) -> PreJudgement {
            let profile = washer();
            prejudge(&PrejudgeInput {
                profile: Some(&profile),
                category: self.category,
                faults: &self.faults,
                risks: &self.risks,
                readings: &self.readings,
                ranges: &self.ranges,
                reference: NOW,
                at: NOW,
            })
        }
    }

    #[test]
    fn a_fault_code_of_a_component_wins() {
        let mut case = Case::new(ProblemCategory::Down);
        case.faults
            .push(("E23".into(), Timestamp(NOW.0 - 3_600_000)));
        let j = case.judge();
        assert_eq!(j.component.as_deref(), Some("drain_pump"), "{j:?}");
        assert!(j.confidence >= CONFIDENT);
        assert!(
            matches!(&j.evidence[0], Evidence::FaultCode { code, title: Some(t), .. } if code == "E23" && t == "Drain pump blocked")
        );
        // A code older than the window does not count.
        let mut old = Case::new(ProblemCategory::Question);
        old.faults
            .push(("E23".into(), Timestamp(NOW.0 - FAULT_WINDOW_MS - 1)));
        assert_eq!(old.judge().component, None);
    }

    #[test]
    fn a_flagged_risk_wins() {
        let mut case = Case::new(ProblemCategory::Degraded);
        case.risks.push(risk("heater", 0.8, true));
        case.risks.push(risk("drain_pump", 0.1, false));
        let j = case.judge();
        assert_eq!(j.component.as_deref(), Some("heater"), "{j:?}");
        assert!(
            j.candidates.len() >= 2,
            "the category hint adds motor_bearing"
        );
        assert!(j.candidates.iter().all(|c| c.component != "drain_pump"));
        let sum: f64 = j.candidates.iter().map(|c| c.confidence).sum();
        assert!(sum <= 1.0 + 1e-9);
    }

    #[test]
    fn a_reading_out_of_range_points_at_its_component() {
        let mut case = Case::new(ProblemCategory::Down);
        case.readings.insert("drain_time_s".into(), 95.0);
        case.ranges.insert("drain_time_s".into(), range(20.0, 45.0));
        case.readings.insert("vibration_g".into(), 1.0);
        case.ranges.insert("vibration_g".into(), range(0.5, 1.5));
        let j = case.judge();
        assert_eq!(j.candidates[0].component, "drain_pump", "{j:?}");
        assert!(j.evidence.iter().any(|e| matches!(e, Evidence::Reading { channel, value, high, .. } if channel == "drain_time_s" && *value == 95.0 && *high == 45.0)));
        assert!(!j
            .evidence
            .iter()
            .any(|e| matches!(e, Evidence::Reading { channel, .. } if channel == "vibration_g")));
        // With a major code of the same component, corroborated: confident.
        case.faults.push(("E21".into(), NOW));
        assert_eq!(case.judge().component.as_deref(), Some("drain_pump"));
    }

    #[test]
    fn a_nuisance_code_alone_is_not_confident() {
        // Linked to no component: nothing at all.
        let mut case = Case::new(ProblemCategory::ErrorCode);
        case.faults.push(("E41".into(), NOW));
        case.faults.push(("E31".into(), NOW));
        let j = case.judge();
        assert_eq!(j.component, None, "{j:?}");
        let shown: Vec<&str> = j
            .evidence
            .iter()
            .filter_map(|e| match e {
                Evidence::Nuisance { code, .. } => Some(code.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(shown, ["E31", "E41"], "listed, weighing nothing");
        // Non-critical codes of a healthy component, even with the category hint.
        let mut case = Case::new(ProblemCategory::ErrorCode);
        case.faults.push(("E52".into(), NOW));
        case.faults.push(("E61".into(), NOW));
        case.risks.push(risk("heater", 0.05, false));
        let j = case.judge();
        assert_eq!(j.component, None, "{j:?}");
        assert_eq!(j.confidence, 0.0);
        assert!(!j.candidates.is_empty());
    }

    #[test]
    fn the_category_hints_without_data() {
        let j = Case::new(ProblemCategory::Noise).judge();
        assert_eq!(j.component, None);
        assert_eq!(j.candidates[0].component, "motor_bearing", "{j:?}");
        assert!(matches!(
            j.evidence[0],
            Evidence::Category {
                category: ProblemCategory::Noise,
                ..
            }
        ));
        // A question hints nothing.
        assert!(Case::new(ProblemCategory::Question)
            .judge()
            .candidates
            .is_empty());
        // No profile: nothing.
        let j = prejudge(&PrejudgeInput {
            profile: None,
            category: ProblemCategory::Leak,
            faults: &[],
            risks: &[],
            readings: &BTreeMap::new(),
            ranges: &BTreeMap::new(),
            reference: NOW,
            at: NOW,
        });
        assert!(j.candidates.is_empty() && j.component.is_none());
    }
}
