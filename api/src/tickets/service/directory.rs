//! The device directory (docs/intake.md): serial, customer, address, location and
//! region of a device, written by integrations and planners, read by customer reports
//! (which find their device by serial or customer reference) and dispatch.

use store::tickets::DirectoryEntry;

use super::TicketService;
use crate::Result;

/// Most devices a customer reference lists.
pub const MAX_CUSTOMER_DEVICES: usize = 50;

impl TicketService {
    /// Writes a device's whole directory entry, stamped with the service's time;
    /// [`crate::Error::Conflict`] when the serial is another device's. Returns the
    /// entry as stored.
    pub fn put_directory(&self, mut entry: DirectoryEntry) -> Result<DirectoryEntry> {
        self.write(|tx, now| {
            entry.updated_at = now;
            tx.upsert_directory(&entry)?;
            Ok(entry)
        })
    }

    /// A device's directory entry.
    pub fn directory_entry(&self, device_id: &str) -> Result<Option<DirectoryEntry>> {
        self.read(|t| Ok(t.directory_entry(device_id)?))
    }

    /// The entry of the device with this serial.
    pub fn directory_by_serial(&self, serial: &str) -> Result<Option<DirectoryEntry>> {
        self.read(|t| Ok(t.directory_by_serial(serial)?))
    }

    /// A customer's devices (at most [`MAX_CUSTOMER_DEVICES`]), by device id.
    pub fn directory_by_customer(&self, customer_ref: &str) -> Result<Vec<DirectoryEntry>> {
        self.read(|t| Ok(t.directory_by_customer(customer_ref, MAX_CUSTOMER_DEVICES)?))
    }
}
