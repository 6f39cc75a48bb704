//! The process metrics Node's prom-client exports by default (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, ...), under the same names so
//! dashboards and alerts written for a Node service read them unchanged.
//!
//! Read from `/proc/self` at scrape time (Linux); elsewhere none are exported. No
//! crate: the four files below are stable kernel ABI, and the clock tick comes from the
//! auxiliary vector instead of `sysconf` (which would need `unsafe`).

use std::sync::OnceLock;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// `AT_CLKTCK` in the auxiliary vector: the unit of `/proc/self/stat`'s times.
const AT_CLKTCK: u64 = 17;
/// Linux's `USER_HZ` on every architecture we build for, should auxv be unreadable.
const DEFAULT_CLOCK_TICKS: f64 = 100.0;

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// User CPU seconds.
    pub cpu_user: f64,
    /// System CPU seconds.
    pub cpu_system: f64,
    /// Start time, seconds since the Unix epoch.
    pub start_time: Option<f64>,
    /// Resident set size, bytes.
    pub resident_bytes: Option<i64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<i64>,
    /// Open file descriptors.
    pub open_fds: Option<i64>,
    /// The soft limit on open file descriptors (`LimitNOFILE`, `ulimit -n`).
    pub max_fds: Option<i64>,
}

impl Sample {
    /// Reads `/proc/self`; `None` where there is no procfs.
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let ticks = clock_ticks();
        // The command name (field 2) may hold spaces and parentheses: fields are
        // counted from the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // Field n of proc(5) is fields[n - 3].
        let number = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| field_after(&s, "btime"));
        Some(Sample {
            cpu_user: number(14)? / ticks,
            cpu_system: number(15)? / ticks,
            start_time: boot_time
                .zip(number(22))
                .map(|(boot, since)| boot + since / ticks),
            resident_bytes: kilobytes(&status, "VmRSS:"),
            virtual_bytes: kilobytes(&status, "VmSize:"),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|dir| i64::try_from(dir.count()).unwrap_or(i64::MAX)),
            max_fds: std::fs::read_to_string("/proc/self/limits")
                .ok()
                .and_then(|s| soft_limit(&s, "Max open files")),
        })
    }
}

/// The first number after `key` on the line that starts with it.
fn field_after(text: &str, key: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// A `/proc/self/status` size line (`VmRSS:   12345 kB`) in bytes.
fn kilobytes(status: &str, key: &str) -> Option<i64> {
    field_after(status, key).map(|kb| (kb * 1024.0) as i64)
}

/// The soft limit of a `/proc/self/limits` line (`Max open files  1024  524288  files`).
fn soft_limit(limits: &str, name: &str) -> Option<i64> {
    let rest = limits.lines().find_map(|line| line.strip_prefix(name))?;
    match rest.split_whitespace().next()? {
        "unlimited" => Some(i64::MAX),
        n => n.parse().ok(),
    }
}

/// Clock ticks per second (`AT_CLKTCK` from `/proc/self/auxv`, read once).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::fs::read("/proc/self/auxv")
            .ok()
            .and_then(|auxv| auxv_value(&auxv, AT_CLKTCK))
            .filter(|&t| t > 0)
            .map_or(DEFAULT_CLOCK_TICKS, |t| t as f64)
    })
}

/// The value of `key` in an auxiliary vector: (key, value) pairs of native words.
fn auxv_value(auxv: &[u8], key: u64) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<usize>();
    let word = |chunk: &[u8]| -> Option<u64> {
        let bytes: [u8; WORD] = chunk.try_into().ok()?;
        u64::try_from(usize::from_ne_bytes(bytes)).ok()
    };
    auxv.chunks_exact(2 * WORD).find_map(|pair| {
        let (k, v) = pair.split_at(WORD);
        (word(k)? == key).then(|| word(v)).flatten()
    })
}

/// Encodes a fresh [`Sample`] on every scrape.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = Sample::read() else {
            return Ok(());
        };
        let mut counter = |name: &str, help: &str, value: f64| {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
        };
        counter(
            "process_cpu_user_seconds",
            "Total user CPU time spent in seconds.",
            s.cpu_user,
        )?;
        counter(
            "process_cpu_system_seconds",
            "Total system CPU time spent in seconds.",
            s.cpu_system,
        )?;
        counter(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            s.cpu_user + s.cpu_system,
        )?;
        let gauges = [
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                s.start_time,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                s.resident_bytes.map(|b| b as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                s.virtual_bytes.map(|b| b as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                s.open_fds.map(|n| n as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                s.max_fds.map(|n| n as f64),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let metric = ConstGauge::new(value);
                metric.encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    metric.metric_type(),
                )?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let Some(s) = Sample::read() else {
            return; // not Linux
        };
        assert!(s.resident_bytes.is_some_and(|b| b > 0));
        assert!(s.open_fds.is_some_and(|n| n > 0));
        assert!(
            s.max_fds
                .is_some_and(|n| n >= s.open_fds.unwrap_or_default())
        );
        assert!(s.start_time.is_some_and(|t| t > 1.0e9));
    }

    #[test]
    fn limits_and_status_lines_parse() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(soft_limit(limits, "Max open files"), Some(1024));
        assert_eq!(
            kilobytes("VmRSS:\t   2048 kB\n", "VmRSS:"),
            Some(2048 * 1024)
        );
        let mut auxv = Vec::new();
        for (k, v) in [(6usize, 4096usize), (17, 100), (0, 0)] {
            auxv.extend_from_slice(&k.to_ne_bytes());
            auxv.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(auxv_value(&auxv, AT_CLKTCK), Some(100));
        assert_eq!(auxv_value(&auxv, 99), None);
    }
}
