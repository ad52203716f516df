//! What the benchmarks read from the machine they run on (memory, load, fsync
//! latency, all from Linux's /proc or the disk) and the temporary directories they
//! work in.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::stats::percentile;
use crate::Result;

/// Where a benchmark builds its stores: `dir` if given, else /dev/shm when it exists
/// (tmpfs: generating tickets is a durable commit per change, which a disk turns into
/// minutes of fsyncs), else the system's temporary directory.
pub(crate) fn scratch_base(dir: Option<&Path>) -> PathBuf {
    if let Some(d) = dir {
        return d.to_owned();
    }
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// A temporary directory, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    /// `fixahead-bench-{label}-{pid}` under the system's temporary directory.
    pub(crate) fn new(label: &str) -> TempDir {
        TempDir::under(&std::env::temp_dir(), label)
    }

    /// `fixahead-bench-{label}-{pid}` under `base`.
    pub(crate) fn under(base: &Path, label: &str) -> TempDir {
        TempDir(base.join(format!("fixahead-bench-{label}-{}", std::process::id())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A field of /proc/self/status (`VmHWM:`, `VmRSS:`) in bytes.
pub(crate) fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Peak resident memory of this process.
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    proc_status_bytes("VmHWM:")
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn load_average() -> Option<Vec<f64>> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace()
        .take(3)
        .map(|s| s.parse().ok())
        .collect()
}

/// Median and p99, in ms, of appending 4 KiB to a file in `dir` and fsyncing it, as a
/// SQLite WAL commit does; 50 times.
pub(crate) fn fsync_latency(dir: &Path) -> Result<(f64, f64)> {
    use std::io::Write as _;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [0u8; 4096];
    let mut ms = Vec::with_capacity(50);
    for _ in 0..50 {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_all()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok((percentile(&ms, 0.5), percentile(&ms, 0.99)))
}
