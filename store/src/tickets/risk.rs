//! The `device_risk` table: the current risk per (device, component) and its flag
//! episode.

use domain::{Contribution, Prediction, Timestamp};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::ticket::ACTIVE_SQL;
use super::Tables;
use crate::{Error, Result};

/// The current risk of one component of one device (the latest score by event time).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RiskRecord {
    /// The device.
    pub device_id: String,
    /// Its type.
    pub device_type: String,
    /// The component.
    pub component: String,
    /// Latest risk in [0, 1].
    pub risk: f64,
    /// The threshold the model used.
    pub threshold: f64,
    /// Whether the device was flagged for this component.
    pub flagged: bool,
    /// Model version of the score.
    pub model_version: String,
    /// Event time of the score.
    pub ts: Timestamp,
    /// Top contributing features.
    pub top_features: Vec<Contribution>,
    /// Wall-clock time the record was written.
    pub updated_at: Timestamp,
    /// The score came from a device still in its feature warm-up: the risk is not to
    /// be trusted, and only the fault-code rule can flag it (`domain::Prediction`).
    /// Absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warming_up: bool,
}

impl Tables<'_> {
    /// Stores a prediction as the current risk of its (device, component), unless a newer
    /// score (by event time) is already stored.
    pub fn upsert_risk(&self, p: &Prediction, now: Timestamp) -> Result<()> {
        let conn = self.conn;
        let features = serde_json::to_string(&p.top_features)?;
        conn.prepare_cached(
            "INSERT INTO device_risk (device_id, component, device_type, risk, threshold, flagged,
                 model_version, ts, top_features, updated_at, flagged_at, warming_up)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, CASE WHEN ?6 THEN ?10 END, ?11)
             ON CONFLICT (device_id, component) DO UPDATE SET
                 device_type = excluded.device_type, risk = excluded.risk,
                 threshold = excluded.threshold, flagged = excluded.flagged,
                 model_version = excluded.model_version, ts = excluded.ts,
                 top_features = excluded.top_features, updated_at = excluded.updated_at,
                 warming_up = excluded.warming_up,
                 flagged_at = CASE WHEN NOT excluded.flagged THEN NULL
                     WHEN device_risk.flagged THEN device_risk.flagged_at
                     ELSE excluded.updated_at END
             WHERE excluded.ts >= device_risk.ts",
        )?
        .execute(params![
            p.device_id.as_str(),
            p.component,
            p.device_type,
            p.risk,
            p.threshold,
            p.flagged,
            p.model_version,
            p.ts.millis(),
            features,
            now.millis(),
            p.warming_up,
        ])?;
        Ok(())
    }

    /// The current risk of every component of a device, by component name.
    pub fn device_risk(&self, device_id: &str) -> Result<Vec<RiskRecord>> {
        let conn = self.conn;
        let mut st = conn.prepare_cached(
            "SELECT device_id, device_type, component, risk, threshold, flagged, model_version, ts,
                 top_features, updated_at, warming_up
             FROM device_risk WHERE device_id = ?1 ORDER BY component",
        )?;
        let rows = st.query_map(params![device_id], |r| {
            Ok((
                RiskRecord {
                    device_id: r.get(0)?,
                    device_type: r.get(1)?,
                    component: r.get(2)?,
                    risk: r.get(3)?,
                    threshold: r.get(4)?,
                    flagged: r.get(5)?,
                    model_version: r.get(6)?,
                    ts: Timestamp(r.get(7)?),
                    top_features: Vec::new(),
                    updated_at: Timestamp(r.get(9)?),
                    warming_up: r.get(10)?,
                },
                r.get::<_, String>(8)?,
            ))
        })?;
        rows.map(|row| {
            let (mut rec, features) = row?;
            rec.top_features = serde_json::from_str::<Vec<Contribution>>(&features)
                .map_err(|e| Error::Corrupt(format!("device_risk.top_features: {e}")))?;
            Ok(rec)
        })
        .collect()
    }

    /// Whether the stored current risk of a pair is flagged (`None`: never scored).
    pub fn risk_flagged(
        &self,
        device_id: &str,
        component: &str,
    ) -> Result<Option<(bool, Timestamp)>> {
        let conn = self.conn;
        Ok(conn
            .prepare_cached(
                "SELECT flagged, ts FROM device_risk WHERE device_id = ?1 AND component = ?2",
            )?
            .query_row(params![device_id, component], |r| {
                Ok((r.get::<_, bool>(0)?, Timestamp(r.get(1)?)))
            })
            .optional()?)
    }

    /// Whether the current flag episode of a (device, component) is done with tickets:
    /// the pair has no active ticket, and one of its tickets ended (resolved or dismissed,
    /// `ended_at`) after the episode's first flagged score was recorded
    /// (`device_risk.flagged_at`; an end in the same millisecond counts as before). False
    /// when the pair is not flagged. One statement: a flagged score costs one round trip.
    pub fn episode_ticket_ended(&self, device_id: &str, component: &str) -> Result<bool> {
        let conn = self.conn;
        Ok(conn
            .prepare_cached(&format!(
                "SELECT EXISTS (SELECT 1 FROM device_risk r JOIN tickets t
                     ON t.device_id = r.device_id AND t.component = r.component
                     WHERE r.device_id = ?1 AND r.component = ?2 AND r.flagged
                         AND t.ended_at > r.flagged_at)
                 AND NOT EXISTS (SELECT 1 FROM tickets WHERE device_id = ?1
                     AND component = ?2 AND status IN {ACTIVE_SQL})"
            ))?
            .query_row(params![device_id, component], |r| r.get(0))?)
    }
}
