//! The soak's samples and what they say: one row per sample, and whether each series
//! stayed flat. No I/O here, so the rules can be tested on made-up series.
//!
//! Flat means: after the warm-up (the first 10% of the run), the median of the last
//! quarter of the run is within a tolerance of the median of the second quarter. A
//! median over a quarter smooths the churn (how many short-lived clients happen to be
//! connected at the instant of a sample); the least-squares slope over every sample
//! after the warm-up is printed next to it, per hour, so a slow climb is visible even
//! when it stays inside the tolerance.

use std::fmt::Write as _;

use crate::util::median;

/// One reading of the server, taken every sample interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Seconds since the load started.
    pub elapsed_s: f64,
    /// `VmRSS`, MiB.
    pub rss_mib: f64,
    /// Entries of `/proc/<pid>/fd`.
    pub fds: f64,
    /// `Threads:` of `/proc/<pid>/status`.
    pub threads: f64,
    /// `switchboard_tokio_tasks_alive`.
    pub tasks: f64,
    /// Sum of `switchboard_sockets_connected` over namespaces.
    pub sockets: f64,
    /// `switchboard_connections_open`.
    pub connections: f64,
    /// Socket events the server received per second since the previous sample
    /// (`switchboard_events_received_total`).
    pub events_per_s: f64,
}

/// A series the verdict judges, with its tolerance.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Column name.
    pub name: &'static str,
    /// Unit for the slope.
    pub unit: &'static str,
    /// Allowed growth of the last quarter's median over the second quarter's, as a
    /// fraction of the latter.
    pub relative: f64,
    /// ... or this much in absolute terms, whichever is larger: a series of a few dozen
    /// file descriptors moves by more than 5% when three clients happen to be mid-connect.
    pub absolute: f64,
    /// Reads the series from a sample.
    pub read: fn(&Sample) -> f64,
}

/// The judged series: RSS, open files, threads and live tasks.
pub const RULES: [Rule; 4] = [
    Rule {
        name: "RSS",
        unit: "MiB",
        relative: 0.10,
        absolute: 2.0,
        read: |s| s.rss_mib,
    },
    Rule {
        name: "open files",
        unit: "fds",
        relative: 0.05,
        absolute: 10.0,
        read: |s| s.fds,
    },
    Rule {
        name: "threads",
        unit: "threads",
        relative: 0.05,
        absolute: 2.0,
        read: |s| s.threads,
    },
    Rule {
        name: "tokio tasks",
        unit: "tasks",
        relative: 0.05,
        absolute: 20.0,
        read: |s| s.tasks,
    },
];

/// What one rule concluded.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// The rule's column name.
    pub name: &'static str,
    /// Median over the second quarter of the run (after the warm-up).
    pub q2: f64,
    /// Median over the last quarter.
    pub q4: f64,
    /// The largest `q4` that passes.
    pub limit: f64,
    /// Least-squares slope over every sample after the warm-up, per hour.
    pub slope_per_h: f64,
    /// `q4 <= limit`.
    pub flat: bool,
    /// The rule's unit.
    pub unit: &'static str,
    /// The tolerance as text.
    pub tolerance: String,
}

/// Judges every rule over `samples` of a run of `duration_s` seconds. `None` when a
/// quarter has no sample (a run shorter than a few sample intervals).
pub fn judge(samples: &[Sample], duration_s: f64) -> Option<Vec<Judgement>> {
    let warm = 0.10 * duration_s;
    let in_range = |lo: f64, hi: f64| -> Vec<&Sample> {
        samples
            .iter()
            .filter(|s| s.elapsed_s > lo && s.elapsed_s <= hi)
            .collect()
    };
    let q2 = in_range(0.25 * duration_s, 0.50 * duration_s);
    let q4 = in_range(0.75 * duration_s, duration_s + 1.0);
    let after_warm: Vec<&Sample> = samples.iter().filter(|s| s.elapsed_s > warm).collect();
    if q2.is_empty() || q4.is_empty() {
        return None;
    }
    let judgements = RULES
        .iter()
        .map(|rule| {
            let of = |set: &[&Sample]| -> f64 {
                let values: Vec<f64> = set.iter().map(|s| (rule.read)(s)).collect();
                median(&values).unwrap_or(f64::NAN)
            };
            let (m2, m4) = (of(&q2), of(&q4));
            let limit = m2 + (m2 * rule.relative).max(rule.absolute);
            let points: Vec<(f64, f64)> = after_warm
                .iter()
                .map(|s| (s.elapsed_s, (rule.read)(s)))
                .collect();
            Judgement {
                name: rule.name,
                q2: m2,
                q4: m4,
                limit,
                slope_per_h: slope(&points) * 3600.0,
                flat: m4 <= limit,
                unit: rule.unit,
                tolerance: format!(
                    "+{:.0}% or +{} {}, whichever is larger",
                    rule.relative * 100.0,
                    rule.absolute,
                    rule.unit
                ),
            }
        })
        .collect();
    Some(judgements)
}

/// Least-squares slope of `y` over `x` (0 with fewer than two distinct x).
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 { 0.0 } else { sxy / sxx }
}

/// The per-sample table (markdown).
pub fn table(samples: &[Sample]) -> String {
    let mut t = String::from(
        "| elapsed | RSS MiB | open fds | threads | tokio tasks | sockets connected | TCP connections | events/s |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for s in samples {
        let _ = writeln!(
            t,
            "| {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} |",
            clock(s.elapsed_s),
            s.rss_mib,
            s.fds,
            s.threads,
            s.tasks,
            s.sockets,
            s.connections,
            s.events_per_s
        );
    }
    t
}

/// The verdict table (markdown).
pub fn verdict_table(judgements: &[Judgement]) -> String {
    let mut t = String::from(
        "| series | median, 2nd quarter | median, last quarter | allowed (tolerance) | slope after warm-up, per hour | flat? |\n\
         | --- | ---: | ---: | --- | ---: | --- |\n",
    );
    for j in judgements {
        let _ = writeln!(
            t,
            "| {} | {:.1} | {:.1} | ≤ {:.1} ({}) | {:+.2} {}/h | {} |",
            j.name,
            j.q2,
            j.q4,
            j.limit,
            j.tolerance,
            j.slope_per_h,
            j.unit,
            if j.flat { "yes" } else { "**NO**" }
        );
    }
    t
}

/// `m:ss`.
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl Fn(f64) -> f64) -> Vec<Sample> {
        (1..=60)
            .map(|i| {
                let t = i as f64 * 10.0;
                Sample {
                    elapsed_s: t,
                    rss_mib: f(t),
                    fds: 40.0,
                    threads: 4.0,
                    tasks: 500.0,
                    ..Sample::default()
                }
            })
            .collect()
    }

    #[test]
    fn a_flat_run_passes_and_a_climbing_one_does_not() {
        let flat = judge(&run(|_| 30.0), 600.0).unwrap();
        assert!(flat.iter().all(|j| j.flat), "{flat:?}");
        assert_eq!(flat[0].slope_per_h, 0.0);
        // 30 MiB growing 1 MiB a minute: the last quarter is ~8 MiB above the second.
        let leak = judge(&run(|t| 30.0 + t / 60.0), 600.0).unwrap();
        assert!(!leak[0].flat, "{leak:?}");
        assert!((leak[0].slope_per_h - 60.0).abs() < 1e-6);
        assert!(leak[1..].iter().all(|j| j.flat));
    }

    #[test]
    fn the_warm_up_is_ignored_and_short_runs_have_no_verdict() {
        // Steep growth in the first 10% only.
        let warm = judge(&run(|t| if t <= 60.0 { t } else { 60.0 }), 600.0).unwrap();
        assert!(warm[0].flat);
        assert!(judge(&run(|_| 1.0)[..2], 600.0).is_none());
    }

    #[test]
    fn tables_render() {
        let samples = run(|_| 30.0);
        assert!(table(&samples[..1]).contains("| 0:10 | 30.0 | 40 | 4 | 500 | 0 | 0 | 0.0 |"));
        let v = verdict_table(&judge(&samples, 600.0).unwrap());
        assert!(v.contains("| RSS | 30.0 | 30.0 | ≤ 33.0 (+10% or +2 MiB, whichever is larger) | +0.00 MiB/h | yes |"), "{v}");
    }
}
