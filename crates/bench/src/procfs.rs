//! Readings of another process from `/proc` (Linux only): resident memory and CPU time.
//!
//! Memory is the "peak RSS idle and under load". CPU time is here because the benchmark machine
//! may be shared: certificates per server CPU-second stays meaningful when wall-clock rates do not. Bytes
//! written to storage per certificate show what durability costs beyond the fsync count.

use std::time::Duration;

/// Memory figures of a process, KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Current resident set (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set since the process started (`VmHWM`).
    pub hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`; `None` when the process is gone or `/proc` is unavailable.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// User plus system CPU time consumed so far by `pid` (`"self"` for this process), all threads.
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after its closing parenthesis do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, i.e. 12 and 13 after the parenthesis.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux ABI Rust targets; reading it needs sysconf, which needs unsafe.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Bytes `pid` has caused to be sent to the storage layer (`write_bytes` of `/proc/PID/io`): WAL, checkpoints
/// and temporary files included, which is what durability costs per certificate.
pub fn storage_write_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))?
        .trim()
        .parse()
        .ok()
}

/// The peak `VmRSS` of `pid` (KiB), sampled every 100 ms until `end`, for a load run's "RSS under load".
pub async fn sample_rss(pid: u32, end: std::time::Instant) -> Option<u64> {
    let mut peak: Option<u64> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while std::time::Instant::now() < end {
        tick.tick().await;
        if let Some(m) = memory(pid) {
            peak = Some(peak.map_or(m.rss_kib, |p| p.max(m.rss_kib)));
        }
    }
    peak
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        let m = super::memory(me).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        assert!(super::cpu_time("self").is_some());
        assert!(super::storage_write_bytes(me).is_some());
        assert!(super::memory(u32::MAX).is_none());
    }
}
