//! CPU time and memory of a server process, read from `/proc`.
//!
//! CPU-seconds are `utime + stime` (fields 14 and 15 of `/proc/PID/stat`, all threads)
//! divided by `CLK_TCK`; RSS is `VmRSS` and the peak `VmHWM` of `/proc/PID/status`.

use std::sync::OnceLock;

use crate::util::Result;

/// One reading.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system CPU time so far, seconds.
    pub cpu_s: f64,
    /// Of it, system (kernel) time: syscalls, and on loopback the peer's TCP receive
    /// path that a `send` runs.
    pub sys_s: f64,
    /// Resident set now, KiB.
    pub rss_kib: u64,
    /// Peak resident set, KiB.
    pub hwm_kib: u64,
}

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// Reads the usage of `pid`.
pub fn read(pid: u32) -> Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces; fields after it start past ')'.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or("malformed /proc stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14 → index 11, stime → 12.
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Usage {
        cpu_s: (utime + stime) as f64 / clock_ticks(),
        sys_s: stime as f64 / clock_ticks(),
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

/// CPU-seconds of every PostgreSQL backend serving `database` (matched on the process
/// title, `postgres: user database host(port) state`). Backends exit with their client,
/// so read this while the server under test is still connected.
pub fn postgres_cpu(database: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let needle = format!(" {database} ");
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let title = String::from_utf8_lossy(&c).replace('\0', " ");
                    title.starts_with("postgres:") && title.contains(&needle)
                })
                .unwrap_or(false)
        })
        .filter_map(|pid| read(pid).ok())
        .map(|u| u.cpu_s)
        .sum()
}

/// The share of all CPUs busy over `window` (from the first line of `/proc/stat`).
pub async fn machine_busy(window: std::time::Duration) -> f64 {
    fn sample() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let total: u64 = fields.iter().take(8).sum();
        let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
        Some((total, idle))
    }
    let Some((t0, i0)) = sample() else {
        return 0.0;
    };
    tokio::time::sleep(window).await;
    let Some((t1, i1)) = sample() else {
        return 0.0;
    };
    let total = t1.saturating_sub(t0).max(1) as f64;
    1.0 - i1.saturating_sub(i0) as f64 / total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let u = read(std::process::id()).unwrap();
        assert!(u.rss_kib > 0);
        assert!(u.hwm_kib >= u.rss_kib);
    }
}
