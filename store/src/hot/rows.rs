//! Decoding hot-store rows into records and messages.

use std::collections::BTreeMap;

use domain::{DeviceId, DeviceInfo, FaultMessage, FaultState, Message, Telemetry, Timestamp};

use super::reader::{DeviceRecord, FaultRecord, TelemetryRecord};

/// Decodes a row of `kind (0 telemetry, 1 fault), device_id, seq, ts, readings, code,
/// state, device_type, model, fw, (any), batch, region` back into the message it was
/// stored from. `None` for
/// a device id that no longer parses (ids were validated before they were stored, so
/// only a file edited by hand has one).
pub(super) fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Message>> {
    let id: String = r.get(1)?;
    let Ok(device_id) = DeviceId::parse(&id) else {
        return Ok(None);
    };
    let seq = r.get::<_, i64>(2)? as u64;
    let ts = Timestamp(r.get(3)?);
    let device = device_info(r, 7, 11)?;
    Ok(Some(if r.get::<_, i64>(0)? == 0 {
        let text: String = r.get(4)?;
        Message::Telemetry(Telemetry {
            device_id,
            ts,
            seq,
            device,
            readings: parse_readings(&text)?.into_iter().collect(),
        })
    } else {
        let state: String = r.get(6)?;
        Message::Fault(FaultMessage {
            device_id,
            ts,
            seq,
            device,
            code: r.get(5)?,
            state: fault_state(&state),
        })
    }))
}

pub(super) const DEVICE_SELECT: &str =
    "SELECT d.device_id, d.device_type, d.model, d.fw, d.first_seen, d.last_seen,
        d.last_event_ts, d.messages, s.online, s.status_at, d.batch, d.region
     FROM devices d LEFT JOIN device_status s ON s.device_id = d.device_id";

pub(super) fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        device_id: r.get(0)?,
        device: device_info(r, 1, 10)?,
        first_seen: Timestamp(r.get(4)?),
        last_seen: Timestamp(r.get(5)?),
        last_event_ts: Timestamp(r.get(6)?),
        messages: r.get::<_, i64>(7)?.max(0) as u64,
        online: r.get(8)?,
        status_at: r.get::<_, Option<i64>>(9)?.map(Timestamp),
    })
}

/// The device's type, model and firmware from the columns `type_at..type_at + 3`, its
/// batch and region from `batch_at..batch_at + 2` (they were added to the tables later,
/// so they sit at the end of a row).
fn device_info(
    r: &rusqlite::Row<'_>,
    type_at: usize,
    batch_at: usize,
) -> rusqlite::Result<DeviceInfo> {
    Ok(DeviceInfo {
        device_type: r.get(type_at)?,
        model: r.get(type_at + 1)?,
        fw: r.get(type_at + 2)?,
        batch: r.get(batch_at)?,
        region: r.get(batch_at + 1)?,
    })
}

fn parse_readings(text: &str) -> rusqlite::Result<BTreeMap<String, f64>> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(super) fn telemetry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TelemetryRecord> {
    let text: String = r.get(4)?;
    Ok(TelemetryRecord {
        device_id: r.get(0)?,
        seq: r.get::<_, i64>(1)? as u64,
        ts: Timestamp(r.get(2)?),
        received_at: Timestamp(r.get(3)?),
        readings: parse_readings(&text)?,
    })
}

pub(super) fn fault_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FaultRecord> {
    Ok(FaultRecord {
        device_id: r.get(0)?,
        seq: r.get::<_, i64>(1)? as u64,
        ts: Timestamp(r.get(2)?),
        received_at: Timestamp(r.get(3)?),
        code: r.get(4)?,
        state: fault_state(r.get_ref(5)?.as_str()?),
    })
}

/// A stored fault state (`raised` or `cleared`; anything else, which only a file
/// edited by hand holds, reads as raised).
fn fault_state(text: &str) -> FaultState {
    if text == "cleared" {
        FaultState::Cleared
    } else {
        FaultState::Raised
    }
}
