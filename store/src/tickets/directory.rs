//! The `device_directory` table (schema 7): what the service side knows of a device
//! that the device does not report (serial number, customer, address, location,
//! region). Customer reports find their device here by serial or customer reference
//! (docs/intake.md); dispatch measures distances from `lat`/`lon`.

use domain::Timestamp;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::Tables;
use crate::sqlite;
use crate::{Error, Result};

/// One device's directory entry.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    /// The device.
    pub device_id: String,
    /// Its serial number (unique among devices).
    pub serial: Option<String>,
    /// The customer it belongs to (several devices may share one).
    pub customer_ref: Option<String>,
    /// The customer's name.
    pub customer_name: Option<String>,
    /// Where it stands.
    pub address: Option<String>,
    /// Latitude in degrees (-90..90).
    pub lat: Option<f64>,
    /// Longitude in degrees (-180..180).
    pub lon: Option<f64>,
    /// The service region.
    pub region: Option<String>,
    /// When the entry was last written.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub updated_at: Timestamp,
}

const DIRECTORY_SELECT: &str = "SELECT device_id, serial, customer_ref, customer_name, address,
    lat, lon, region, updated_at FROM device_directory";

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<DirectoryEntry> {
    Ok(DirectoryEntry {
        device_id: r.get(0)?,
        serial: r.get(1)?,
        customer_ref: r.get(2)?,
        customer_name: r.get(3)?,
        address: r.get(4)?,
        lat: r.get(5)?,
        lon: r.get(6)?,
        region: r.get(7)?,
        updated_at: Timestamp(r.get(8)?),
    })
}

impl Tables<'_> {
    /// Writes a device's whole directory entry (every field replaced).
    /// [`Error::Conflict`] when its serial is another device's.
    pub fn upsert_directory(&self, e: &DirectoryEntry) -> Result<()> {
        let result = self
            .conn
            .prepare_cached(
                "INSERT INTO device_directory (device_id, serial, customer_ref, customer_name,
                     address, lat, lon, region, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (device_id) DO UPDATE SET serial = excluded.serial,
                     customer_ref = excluded.customer_ref,
                     customer_name = excluded.customer_name, address = excluded.address,
                     lat = excluded.lat, lon = excluded.lon, region = excluded.region,
                     updated_at = excluded.updated_at",
            )?
            .execute(params![
                e.device_id,
                e.serial,
                e.customer_ref,
                e.customer_name,
                e.address,
                e.lat,
                e.lon,
                e.region,
                e.updated_at.millis(),
            ]);
        match result {
            Ok(_) => Ok(()),
            Err(err) if sqlite::is_constraint(&err) => Err(Error::Conflict(format!(
                "serial {} already belongs to another device",
                e.serial.as_deref().unwrap_or_default()
            ))),
            Err(err) => Err(err.into()),
        }
    }

    /// A device's directory entry.
    pub fn directory_entry(&self, device_id: &str) -> Result<Option<DirectoryEntry>> {
        Ok(self
            .conn
            .prepare_cached(&format!("{DIRECTORY_SELECT} WHERE device_id = ?1"))?
            .query_row(params![device_id], entry)
            .optional()?)
    }

    /// The entry of the device with this serial number.
    pub fn directory_by_serial(&self, serial: &str) -> Result<Option<DirectoryEntry>> {
        Ok(self
            .conn
            .prepare_cached(&format!("{DIRECTORY_SELECT} WHERE serial = ?1"))?
            .query_row(params![serial], entry)
            .optional()?)
    }

    /// The entries of a customer's devices, by device id (at most `limit`).
    pub fn directory_by_customer(
        &self,
        customer_ref: &str,
        limit: usize,
    ) -> Result<Vec<DirectoryEntry>> {
        let mut st = self.conn.prepare_cached(&format!(
            "{DIRECTORY_SELECT} WHERE customer_ref = ?1 ORDER BY device_id LIMIT ?2"
        ))?;
        let rows = st.query_map(
            params![customer_ref, i64::try_from(limit).unwrap_or(i64::MAX)],
            entry,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::TicketDb;

    fn entry(id: &str, serial: Option<&str>, customer: Option<&str>) -> DirectoryEntry {
        DirectoryEntry {
            device_id: id.into(),
            serial: serial.map(Into::into),
            customer_ref: customer.map(Into::into),
            customer_name: None,
            address: None,
            lat: Some(31.2),
            lon: Some(121.5),
            region: None,
            updated_at: Timestamp(1_000),
        }
    }

    #[test]
    fn upsert_get_and_find_by_serial_and_customer() {
        let dir = tempfile::tempdir().unwrap();
        let db = TicketDb::open(&dir.path().join("tickets.db")).unwrap();
        db.write(|t| {
            t.upsert_directory(&entry("wm-1", Some("SN1"), Some("C1")))?;
            t.upsert_directory(&entry("wm-2", Some("SN2"), Some("C1")))?;
            t.upsert_directory(&entry("wm-3", None, None))
        })
        .unwrap();
        db.read(|t| {
            assert_eq!(
                t.directory_entry("wm-1")?.unwrap().serial.as_deref(),
                Some("SN1")
            );
            assert_eq!(t.directory_by_serial("SN2")?.unwrap().device_id, "wm-2");
            assert!(t.directory_by_serial("SN9")?.is_none());
            let c1: Vec<String> = t
                .directory_by_customer("C1", 10)?
                .into_iter()
                .map(|e| e.device_id)
                .collect();
            assert_eq!(c1, ["wm-1", "wm-2"]);
            Ok::<_, Error>(())
        })
        .unwrap();
        // A rewrite replaces every field.
        db.write(|t| t.upsert_directory(&entry("wm-1", Some("SN1b"), None)))
            .unwrap();
        let e = db.read(|t| t.directory_entry("wm-1")).unwrap().unwrap();
        assert_eq!(e.serial.as_deref(), Some("SN1b"));
        assert_eq!(e.customer_ref, None);
        // Another device's serial is a conflict.
        let err = db
            .write(|t| t.upsert_directory(&entry("wm-3", Some("SN2"), None)))
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
    }
}
