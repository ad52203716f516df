//! Intake from every channel (docs/intake.md): customer reports and the device
//! directory they find devices in. The JSON API (`POST /api/v1/tickets`,
//! `PUT`/`GET /api/v1/devices/{device_id}/directory`) and the console's call-centre
//! form both call these, so both answer a request with the same checks and errors.
//!
//! Everything here is blocking (SQLite); async callers use `spawn_blocking`.

use std::collections::BTreeMap;

use domain::{DeviceId, DeviceInfo, ProblemCategory, ReportChannel};
use serde::Deserialize;
use store::hot::DeviceRecord;

use crate::desk::require;
use crate::http::auth::{Permission, Principal};
use crate::http::AppState;
use crate::tickets::{DiagnosisContext, DirectoryEntry, ReportInput, ReportResult};
use crate::{Error, Result};

/// Fault messages read for a pre-judgement (the window's filter comes after).
const REPORT_FAULTS: usize = 200;
/// Telemetry messages searched back for each channel's latest value.
const REPORT_READINGS_LOOKBACK: usize = 50;
/// Most characters of a serial, customer reference or region.
pub const MAX_REF: usize = 64;
/// Most characters of a customer's name.
pub const MAX_NAME: usize = 200;
/// Most characters of an address.
pub const MAX_ADDRESS: usize = 500;

/// A customer report as a caller sends it (`POST /api/v1/tickets`).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// The device by id (give exactly one of `device_id`, `serial`, `customer_ref`).
    pub device_id: Option<String>,
    /// The device by its serial number (the directory maps it).
    pub serial: Option<String>,
    /// The device by its customer's reference (the directory maps it; with
    /// `device_type` when the customer has several devices).
    pub customer_ref: Option<String>,
    /// The device type, to choose among a customer's devices (or the type of a device
    /// the registry does not know).
    pub device_type: Option<String>,
    /// `phone`, `app`, `web` or `installer`.
    #[schema(value_type = String, example = "phone")]
    pub channel: ReportChannel,
    /// `down`, `degraded`, `error_code`, `noise`, `leak`, `installation` or
    /// `question`.
    #[schema(value_type = String, example = "down")]
    pub category: ProblemCategory,
    /// The customer's words, verbatim: 1-2000 characters, no control characters but
    /// line breaks and tabs.
    pub words: String,
    /// The component, when the caller knows it (a component of the device type).
    pub component: Option<String>,
}

/// A directory entry as a caller writes it (`PUT .../directory`): every field is
/// replaced (an absent one is cleared).
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryInput {
    /// Serial number, 1-64 characters, unique among devices.
    pub serial: Option<String>,
    /// The customer's reference, 1-64 characters.
    pub customer_ref: Option<String>,
    /// The customer's name, 1-200 characters.
    pub customer_name: Option<String>,
    /// The address, 1-500 characters.
    pub address: Option<String>,
    /// Latitude, -90 to 90 (with `lon`).
    pub lat: Option<f64>,
    /// Longitude, -180 to 180 (with `lat`).
    pub lon: Option<f64>,
    /// The service region, 1-64 characters.
    pub region: Option<String>,
}

/// Checks a text field: trimmed non-empty, at most `max` characters, no control
/// characters.
fn check_text(field: &str, value: &Option<String>, max: usize) -> Result<()> {
    let Some(v) = value else {
        return Ok(());
    };
    if v.trim().is_empty() {
        return Err(Error::invalid(format!("{field}: must not be empty")));
    }
    if v.chars().count() > max {
        return Err(Error::invalid(format!("{field}: at most {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{field}: control characters are not allowed"
        )));
    }
    Ok(())
}

impl DirectoryInput {
    /// Checks every field (docs/intake.md, "The device directory").
    pub fn validate(&self) -> Result<()> {
        check_text("serial", &self.serial, MAX_REF)?;
        check_text("customer_ref", &self.customer_ref, MAX_REF)?;
        check_text("customer_name", &self.customer_name, MAX_NAME)?;
        check_text("address", &self.address, MAX_ADDRESS)?;
        check_text("region", &self.region, MAX_REF)?;
        if let Some(lat) = self.lat {
            if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
                return Err(Error::invalid("lat: a latitude from -90 to 90"));
            }
        }
        if let Some(lon) = self.lon {
            if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
                return Err(Error::invalid("lon: a longitude from -180 to 180"));
            }
        }
        if self.lat.is_some() != self.lon.is_some() {
            return Err(Error::invalid("lat: lat and lon come together"));
        }
        Ok(())
    }
}

fn parse_device_id(raw: &str) -> Result<DeviceId> {
    DeviceId::parse(raw).map_err(|e| Error::BadRequest(e.to_string()))
}

/// Writes a device's directory entry (permission `manage_directory`).
pub fn put_directory(
    state: &AppState,
    who: &Principal,
    device_id: &str,
    input: DirectoryInput,
) -> Result<DirectoryEntry> {
    require(who, Permission::ManageDirectory)?;
    let id = parse_device_id(device_id)?;
    input.validate()?;
    let trim = |v: Option<String>| v.map(|s| s.trim().to_owned());
    state.tickets().put_directory(DirectoryEntry {
        device_id: id.as_str().to_owned(),
        serial: trim(input.serial),
        customer_ref: trim(input.customer_ref),
        customer_name: trim(input.customer_name),
        address: trim(input.address),
        lat: input.lat,
        lon: input.lon,
        region: trim(input.region),
        updated_at: state.tickets().now(),
    })
}

/// A device's directory entry (permission `read_devices`), or [`Error::NotFound`].
pub fn get_directory(state: &AppState, who: &Principal, device_id: &str) -> Result<DirectoryEntry> {
    require(who, Permission::ReadDevices)?;
    let id = parse_device_id(device_id)?;
    state
        .tickets()
        .directory_entry(id.as_str())?
        .ok_or_else(|| Error::NotFound(format!("device {id} has no directory entry")))
}

/// The device a report is about, as the registry and the directory know it.
struct Resolved {
    id: DeviceId,
    record: Option<DeviceRecord>,
    directory: Option<DirectoryEntry>,
}

impl Resolved {
    fn device_type(&self) -> Option<&str> {
        self.record.as_ref().map(|r| r.device.device_type.as_str())
    }
}

/// Finds the device a report names (docs/intake.md, "Finding the device").
fn resolve(state: &AppState, req: &ReportRequest) -> Result<Resolved> {
    let given = [&req.device_id, &req.serial, &req.customer_ref]
        .iter()
        .filter(|v| v.is_some())
        .count();
    if given != 1 {
        return Err(Error::invalid(
            "device_id: give exactly one of device_id, serial or customer_ref",
        ));
    }
    check_text("serial", &req.serial, MAX_REF)?;
    check_text("customer_ref", &req.customer_ref, MAX_REF)?;
    check_text("device_type", &req.device_type, MAX_REF)?;
    if let Some(t) = &req.device_type {
        if state.profiles().get(t).is_none() {
            let known: Vec<&str> = state.profiles().types().collect();
            return Err(Error::invalid(format!(
                "device_type: unknown device type {t:?} (known: {})",
                known.join(", ")
            )));
        }
    }
    let tickets = state.tickets();
    let lookup = |id: DeviceId, directory: Option<DirectoryEntry>| -> Result<Resolved> {
        let record = state.store().device(id.as_str())?;
        let directory = match directory {
            Some(d) => Some(d),
            None => tickets.directory_entry(id.as_str())?,
        };
        Ok(Resolved {
            id,
            record,
            directory,
        })
    };
    let resolved = if let Some(raw) = &req.device_id {
        let r = lookup(parse_device_id(raw)?, None)?;
        if r.record.is_none() && r.directory.is_none() {
            return Err(Error::NotFound(format!(
                "device {} is not known: neither the device registry nor the directory has it",
                r.id
            )));
        }
        r
    } else if let Some(serial) = &req.serial {
        let serial = serial.trim();
        let entry = tickets
            .directory_by_serial(serial)?
            .ok_or_else(|| Error::NotFound(format!("no device has serial {serial}")))?;
        lookup(parse_device_id(&entry.device_id)?, Some(entry))?
    } else {
        let customer = req.customer_ref.as_deref().unwrap_or_default().trim();
        let mut found = Vec::new();
        for entry in tickets.directory_by_customer(customer)? {
            let r = lookup(parse_device_id(&entry.device_id)?, Some(entry))?;
            if req.device_type.is_none() || r.device_type() == req.device_type.as_deref() {
                found.push(r);
            }
        }
        match found.len() {
            0 => {
                return Err(Error::NotFound(match &req.device_type {
                    Some(t) => format!("customer {customer} has no device of type {t}"),
                    None => format!("customer {customer} has no device in the directory"),
                }))
            }
            1 => found.remove(0),
            _ => {
                let list: Vec<String> = found
                    .iter()
                    .map(|r| format!("{} ({})", r.id, r.device_type().unwrap_or("type unknown")))
                    .collect();
                return Err(Error::Conflict(format!(
                    "customer {customer} has {} devices: {}; give device_type or device_id",
                    found.len(),
                    list.join(", ")
                )));
            }
        }
    };
    if let (Some(asked), Some(known)) = (&req.device_type, resolved.device_type()) {
        if asked != known {
            return Err(Error::invalid(format!(
                "device_type: device {} is a {known}, not a {asked}",
                resolved.id
            )));
        }
    }
    Ok(resolved)
}

/// Takes a customer report (permission `report_problems`; docs/intake.md): finds the
/// device, reads what its data says and lets the ticket service join or open.
pub fn report(state: &AppState, who: &Principal, req: ReportRequest) -> Result<ReportResult> {
    require(who, Permission::ReportProblems)?;
    crate::tickets::check_words(&req.words)?;
    let resolved = resolve(state, &req)?;
    let device_type = resolved
        .device_type()
        .map(str::to_owned)
        .or_else(|| req.device_type.clone())
        .unwrap_or_else(|| "unknown".to_owned());
    let profile = state.profiles().get(&device_type).cloned();
    let id = resolved.id.as_str();
    let faults = if resolved.record.is_some() {
        state.store().recent_faults(id, REPORT_FAULTS)?
    } else {
        Vec::new()
    };
    let region = resolved.directory.as_ref().and_then(|d| d.region.clone());
    let info = match &resolved.record {
        Some(r) => {
            let mut info = r.device.clone();
            if info.region.is_none() {
                info.region = region;
            }
            info
        }
        None => DeviceInfo {
            device_type: device_type.clone(),
            model: String::new(),
            fw: None,
            batch: None,
            region,
        },
    };
    let readings: BTreeMap<String, f64> = if resolved.record.is_some() {
        state
            .store()
            .latest_readings(id, REPORT_READINGS_LOOKBACK)?
            .into_iter()
            .map(|(k, (v, _))| (k, v))
            .collect()
    } else {
        BTreeMap::new()
    };
    let ranges = match (state.fleet_summary(), &resolved.record) {
        (Some(f), Some(r)) => f.ranges(&r.device.device_type, &r.device.model)?,
        _ => BTreeMap::new(),
    };
    let input = ReportInput {
        device_id: resolved.id.clone(),
        device_type,
        channel: req.channel,
        category: req.category,
        words: req.words,
        component: req
            .component
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty()),
        reporter: who.name.clone(),
        customer_ref: req.customer_ref.map(|c| c.trim().to_owned()),
        context: DiagnosisContext::from_records(profile, &faults).with_device(Some(info)),
        readings,
        ranges,
        reference: resolved.record.as_ref().map(|r| r.last_event_ts),
    };
    state.tickets().report(&input)
}
