//! The cursor file: the archive's position in the hot store.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The archive's position in the hot store: the `arrival` of the last row the server
/// accepted (or skipped as refused), in a file of its own. Written atomically
/// (temporary file, fsync, rename), so it is the old or the new position, never part.
#[derive(Clone, Debug)]
pub struct Cursor {
    path: PathBuf,
}

impl Cursor {
    /// The cursor in `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored position; 0 (the start of the store) if there is no file yet. An
    /// unreadable or garbled file is an error (the caller starts from 0: sending rows
    /// again is harmless, skipping them is not).
    pub fn load(&self) -> Result<i64> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(Error::Io {
                    context: format!("reading {}", self.path.display()),
                    source,
                })
            }
        };
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .and_then(|l| l.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                Error::Archive(format!(
                    "{} does not hold an archive position",
                    self.path.display()
                ))
            })
    }

    /// Stores `position` durably.
    pub fn store(&self, position: i64) -> Result<()> {
        let io = |context: &str, source| Error::Io {
            context: format!("{context} {}", self.path.display()),
            source,
        };
        let tmp = self.path.with_extension("cursor.tmp");
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
            write!(
                f,
                "# The InfluxDB archive's position in hot.db: the arrival of the last row sent.\n{position}\n"
            )
            .map_err(|e| io("writing", e))?;
            f.sync_all().map_err(|e| io("syncing", e))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| io("renaming to", e))?;
        if let Some(dir) = self.path.parent() {
            // The rename itself is durable once the directory is synced.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::ArchiveSettings;

    #[test]
    fn the_cursor_starts_at_zero_and_survives_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cursor::new(dir.path().join(ArchiveSettings::CURSOR_FILE));
        assert_eq!(c.load().unwrap(), 0, "no file: the start of the store");
        c.store(17).unwrap();
        assert_eq!(c.load().unwrap(), 17);
        c.store(4096).unwrap();
        assert_eq!(c.load().unwrap(), 4096);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
        std::fs::write(c.path(), "garbage\n").unwrap();
        assert!(c.load().is_err());
        std::fs::write(c.path(), "-3\n").unwrap();
        assert!(c.load().is_err());
    }
}
