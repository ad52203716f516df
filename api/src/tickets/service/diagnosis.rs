//! What a ticket's diagnosis snapshot says: the score's top features, the device's
//! recent faults with catalogue text, the likely parts and remote checks, the current
//! risk of each component; and the critical-fault rule of the priority.

use domain::{ComponentRisk, Contribution, Diagnosis, FaultNote, Prediction};

use crate::tickets::{DiagnosisContext, RiskRecord, TicketConfig};
use crate::Result;

/// Most recent faults copied into a ticket's diagnosis.
const MAX_DIAGNOSIS_FAULTS: usize = 20;

/// The skills a component's repair needs, from the profile, as a JSON array.
pub(super) fn skills_json(ctx: &DiagnosisContext, component: &str) -> Result<String> {
    let skills = ctx
        .profile
        .as_ref()
        .and_then(|p| p.component(component))
        .map(|c| c.skills.clone())
        .unwrap_or_default();
    Ok(serde_json::to_string(&skills)?)
}

/// The first critical-severity fault code of the prediction's component the device
/// raised within the configured window before the prediction.
pub(super) fn critical_fault<'a>(
    config: &TicketConfig,
    p: &Prediction,
    ctx: &'a DiagnosisContext,
) -> Option<&'a str> {
    let profile = ctx.profile.as_ref()?;
    let since =
        p.ts.millis()
            .saturating_sub(config.critical_fault_window.millis());
    ctx.recent_faults
        .iter()
        .filter(|(_, ts)| ts.millis() >= since && *ts <= p.ts)
        .find(|(code, _)| {
            profile.fault(code).is_some_and(|def| {
                TicketConfig::is_critical(def.severity)
                    && def.component.as_deref() == Some(p.component.as_str())
            })
        })
        .map(|(code, _)| code.as_str())
}

/// The diagnosis snapshot: the score's top features, the device's recent faults with
/// catalogue text (newest first), the likely parts and remote checks of the catalogue
/// entries for the component (those of codes the device raised first), and the
/// current risk of each scored component.
pub(super) fn build_diagnosis(
    component: &str,
    top_features: Vec<Contribution>,
    model_version: Option<String>,
    lead_time_days: Option<f64>,
    risks: &[RiskRecord],
    ctx: &DiagnosisContext,
) -> Diagnosis {
    let profile = ctx.profile.as_deref();
    let mut faults = ctx.recent_faults.clone();
    faults.sort_by_key(|(_, ts)| std::cmp::Reverse(*ts));
    faults.truncate(MAX_DIAGNOSIS_FAULTS);
    let recent_faults = faults
        .iter()
        .map(|(code, ts)| {
            let def = profile.and_then(|pr| pr.fault(code));
            FaultNote {
                code: code.clone(),
                ts: *ts,
                title: def.map(|d| d.title.clone()),
                severity: def.map(|d| d.severity.as_str().to_owned()),
            }
        })
        .collect();

    let mut likely_parts: Vec<String> = Vec::new();
    let mut remote_checks: Vec<String> = Vec::new();
    if let Some(profile) = profile {
        let seen = |code: &str| faults.iter().any(|(c, _)| c == code);
        let mut defs: Vec<_> = profile
            .faults()
            .iter()
            .filter(|d| d.component.as_deref() == Some(component))
            .collect();
        // Stable sort: codes the device raised first, catalogue order otherwise.
        defs.sort_by_key(|d| !seen(&d.code));
        for d in defs {
            for part in &d.likely_parts {
                if !likely_parts.contains(part) {
                    likely_parts.push(part.clone());
                }
            }
            for check in &d.remote_checks {
                if !remote_checks.contains(check) {
                    remote_checks.push(check.clone());
                }
            }
        }
    }
    Diagnosis {
        top_features,
        recent_faults,
        likely_parts,
        remote_checks,
        component_risks: risks
            .iter()
            .map(|r| ComponentRisk {
                component: r.component.clone(),
                risk: r.risk,
                flagged: r.flagged,
            })
            .collect(),
        lead_time_days,
        model_version,
    }
}
