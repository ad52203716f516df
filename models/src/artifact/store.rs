//! Saving, activating, loading and listing artefact files (see the module docs of
//! [`crate::artifact`] for the layout).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ModelArtifact, ACTIVE_FILE, FORMAT_VERSION};
use crate::{Error, Result};

/// Whether `s` may name a file: 1 to 128 ASCII letters, digits, `_`, `-` and `.`, not
/// starting with a dot.
pub(super) fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, fsync,
/// rename over the target.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process *and* per call: two threads writing the same target must not
    // share (and rename) one temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable where the platform allows it.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Saves an artefact as `{model_dir}/{device_type}/{version}.json`, then makes it the
/// active version of its type. Returns the artefact's path.
pub fn save(artifact: &ModelArtifact, model_dir: &Path) -> Result<PathBuf> {
    let dir = model_dir.join(&artifact.device_type);
    let path = dir.join(format!("{}.json", artifact.version));
    artifact
        .validate()
        .map_err(|message| Error::InvalidArtifact {
            path: path.clone(),
            message,
        })?;
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let json = serde_json::to_vec_pretty(artifact).map_err(|e| Error::InvalidArtifact {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&path, &json)?;
    activate(model_dir, &artifact.device_type, &artifact.version)?;
    Ok(path)
}

/// Makes an already saved version the active one of its device type (also a rollback).
pub fn activate(model_dir: &Path, device_type: &str, version: &str) -> Result<()> {
    let dir = model_dir.join(device_type);
    let path = dir.join(format!("{version}.json"));
    if !is_safe_name(device_type) || !is_safe_name(version) {
        return Err(Error::InvalidArtifact {
            path,
            message: "device type and version must be safe file names".into(),
        });
    }
    // Refuse to point ACTIVE at something that would not load.
    let artifact = load(&path)?;
    if artifact.device_type != device_type || artifact.version != version {
        return Err(Error::InvalidArtifact {
            path,
            message: format!(
                "file holds {}/{}, not {device_type}/{version}",
                artifact.device_type, artifact.version
            ),
        });
    }
    write_atomic(&dir.join(ACTIVE_FILE), format!("{version}\n").as_bytes())
}

/// Reads and validates one artefact file. A file of another [`FORMAT_VERSION`] is
/// refused with a message naming both versions, before its layout is interpreted.
pub fn load(path: &Path) -> Result<ModelArtifact> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    check_format_version(&bytes).map_err(|message| Error::InvalidArtifact {
        path: path.to_owned(),
        message,
    })?;
    let artifact: ModelArtifact =
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidArtifact {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    artifact
        .validate()
        .map_err(|message| Error::InvalidArtifact {
            path: path.to_owned(),
            message,
        })?;
    Ok(artifact)
}

/// Reads only `format_version` and refuses any other than [`FORMAT_VERSION`].
fn check_format_version(bytes: &[u8]) -> std::result::Result<(), String> {
    #[derive(Deserialize)]
    struct Header {
        format_version: Option<serde_json::Value>,
    }
    let header: Header = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    match header
        .format_version
        .as_ref()
        .and_then(serde_json::Value::as_u64)
    {
        Some(v) if v == u64::from(FORMAT_VERSION) => Ok(()),
        Some(v) if v < u64::from(FORMAT_VERSION) => Err(format!(
            "model format_version {v} was written by an older fixahead and is not \
             supported by this build (format_version {FORMAT_VERSION}); retrain the model \
             with `fixahead train`"
        )),
        Some(v) => Err(format!(
            "model format_version {v} is newer than this build supports \
             (format_version {FORMAT_VERSION}); upgrade fixahead or activate an older model"
        )),
        None => Err(format!(
            "model file has no valid format_version (this build reads format_version \
             {FORMAT_VERSION}); retrain the model with `fixahead train`"
        )),
    }
}

/// The versions saved for a device type, oldest name first.
pub fn list_versions(model_dir: &Path, device_type: &str) -> Result<Vec<String>> {
    let dir = model_dir.join(device_type);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(v) = name.strip_suffix(".json") {
            if !name.starts_with('.') {
                out.push(v.to_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}
