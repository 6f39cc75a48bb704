//! The comparison table: which figures are shown, their targets, medians over the
//! repetitions, ratios (Switchboard ÷ Node), and whether each target is met.
//!
//! Past 400 lines: one table of every scenario's figures and targets, kept in one place so
//! rows line up.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::scenarios::{Outcome, Scenario};
use crate::servers::Kind;
use crate::util::median;

/// A target on a figure.
#[derive(Debug, Clone, Copy)]
enum Target {
    None,
    /// Switchboard ÷ Node ≥ x.
    RatioMin(f64),
    /// Switchboard ÷ Node ≤ x.
    RatioMax(f64),
    /// Switchboard's value ≤ x.
    AbsMax(f64),
    /// Switchboard's value ≥ x.
    AbsMin(f64),
    /// Switchboard's value is 0.
    Zero,
}

impl Target {
    fn describe(self) -> String {
        match self {
            Target::None => String::new(),
            Target::RatioMin(x) => format!("≥ {x}× Node"),
            Target::RatioMax(x) => format!("≤ {x}× Node"),
            Target::AbsMax(x) => format!("≤ {x}"),
            Target::AbsMin(x) => format!("≥ {x}"),
            Target::Zero => "0".to_owned(),
        }
    }

    fn met(self, sb: Option<f64>, node: Option<f64>) -> Option<bool> {
        let ratio = match (sb, node) {
            (Some(a), Some(b)) if b != 0.0 => Some(a / b),
            _ => None,
        };
        match self {
            Target::None => None,
            Target::RatioMin(x) => ratio.map(|r| r >= x),
            Target::RatioMax(x) => ratio.map(|r| r <= x),
            Target::AbsMax(x) => sb.map(|v| v <= x),
            Target::AbsMin(x) => sb.map(|v| v >= x),
            Target::Zero => sb.map(|v| v == 0.0),
        }
    }
}

struct Row {
    scenario: Scenario,
    /// Keys shown in the cell, `a / b / …`; the first one carries the ratio and target.
    keys: &'static [&'static str],
    label: &'static str,
    decimals: usize,
    target: Target,
}

const fn row(
    scenario: Scenario,
    keys: &'static [&'static str],
    label: &'static str,
    decimals: usize,
    target: Target,
) -> Row {
    Row {
        scenario,
        keys,
        label,
        decimals,
        target,
    }
}

const ROWS: &[Row] = &[
    row(
        Scenario::S1,
        &["s1.conns"],
        "idle connections held",
        0,
        Target::None,
    ),
    row(
        Scenario::S1,
        &["s1.rss_per_conn_kib"],
        "RSS per idle connection, KiB",
        1,
        Target::RatioMax(0.5),
    ),
    row(
        Scenario::S1,
        &["s1.marginal_kib"],
        "RSS per connection, first → last step, KiB",
        1,
        Target::None,
    ),
    row(
        Scenario::S1,
        &["s1.connect_rate"],
        "connect rate, connections/s",
        0,
        Target::None,
    ),
    row(
        Scenario::S1,
        &["s1.rss_mib"],
        "RSS with all open, MiB",
        1,
        Target::None,
    ),
    row(
        Scenario::S1,
        &["s1.cpu_s"],
        "server CPU-s for the ramp",
        2,
        Target::None,
    ),
    row(
        Scenario::S1,
        &["s1.failed"],
        "failed connects",
        0,
        Target::Zero,
    ),
    row(
        Scenario::S1,
        &["s1.hold_dropped"],
        "dropped while held (see details)",
        0,
        Target::Zero,
    ),
    row(
        Scenario::S2,
        &["s2.saturation"],
        "max sustained acks/s (all acked, p99 ≤ 50 ms)",
        0,
        Target::None,
    ),
    row(
        Scenario::S2,
        &["s2.acks_per_cpu_s"],
        "acks per server CPU-second at that rate",
        0,
        Target::RatioMin(5.0),
    ),
    row(
        Scenario::S2,
        &["s2.cpu_us_per_ack", "s2.sys_us_per_ack"],
        "server CPU per ack at that rate (of it in the kernel), µs",
        1,
        Target::None,
    ),
    row(
        Scenario::S2,
        &["s2.p99_ms", "s2.p50_ms", "s2.p999_ms", "s2.max_ms"],
        "ack p99 (p50 / p99.9 / max) at that rate, ms",
        2,
        Target::None,
    ),
    row(
        Scenario::S2,
        &["s2.scrape_overhead_pct", "s2.scrape_rate"],
        "server CPU per ack, /metrics scraped every second vs not, % more (at acks/s)",
        1,
        Target::AbsMax(3.0),
    ),
    row(
        Scenario::S2,
        &["s2.rss_mib"],
        "peak RSS (VmHWM), MiB",
        1,
        Target::None,
    ),
    row(
        Scenario::S3,
        &["s3.slo_rate"],
        "persisted acked msgs/s with p99 ack ≤ 25 ms",
        0,
        Target::RatioMin(2.0),
    ),
    row(
        Scenario::S3,
        &["s3.vs_pgbench"],
        "… ÷ same-run pgbench INSERT tps",
        2,
        Target::AbsMin(1.0),
    ),
    row(
        Scenario::S3,
        &["s3.slo_p99_ack_ms"],
        "p99 ack at that rate, ms",
        2,
        Target::AbsMax(25.0),
    ),
    row(
        Scenario::S3,
        &["s3.slo_p99_delivery_ms"],
        "p99 delivery at that rate, ms",
        2,
        Target::None,
    ),
    row(
        Scenario::S3,
        &["s3.ref_p99_ack_ms", "s3.ref_p99_delivery_ms"],
        "p99 ack (delivery) at 200 msg/s, both, ms",
        2,
        Target::None,
    ),
    row(
        Scenario::S3,
        &["s3.max_rate", "s3.max_p99_ack_ms"],
        "max acked msgs/s, p99 ≤ 500 ms (its p99, ms)",
        0,
        Target::None,
    ),
    row(
        Scenario::S3,
        &["s3.msgs_per_cpu_s"],
        "messages per server CPU-second at max",
        0,
        Target::None,
    ),
    row(
        Scenario::S3,
        &["s3.pgbench_tps"],
        "pgbench, Switchboard's INSERT, pool-size connections, tps",
        0,
        Target::None,
    ),
    row(
        Scenario::S4,
        &["s4.deliveries_per_cpu_s"],
        "deliveries per server CPU-second",
        0,
        Target::RatioMin(5.0),
    ),
    row(
        Scenario::S4,
        &["s4.cpu_us_per_delivery", "s4.sys_us_per_delivery"],
        "server CPU per delivery (of it in the kernel), µs",
        1,
        Target::None,
    ),
    row(
        Scenario::S4,
        &[
            "s4.p99_delivery_ms",
            "s4.p50_delivery_ms",
            "s4.max_delivery_ms",
        ],
        "p99 delivery (p50 / max), ms",
        2,
        Target::RatioMax(0.3),
    ),
    row(
        Scenario::S4,
        &["s4.missing", "s4.http_errors"],
        "missing deliveries (HTTP errors)",
        0,
        Target::Zero,
    ),
    row(
        Scenario::S4,
        &["s4.cpu_s"],
        "server CPU-s for the measured orders",
        2,
        Target::None,
    ),
    row(
        Scenario::S4,
        &["s4.rss_mib"],
        "peak RSS (VmHWM), MiB",
        1,
        Target::None,
    ),
    row(
        Scenario::S5,
        &["s5.users"],
        "connected users",
        0,
        Target::None,
    ),
    row(
        Scenario::S5,
        &["s5.last_delivery_ms"],
        "time to last delivery, ms",
        1,
        Target::RatioMax(0.2),
    ),
    row(
        Scenario::S5,
        &["s5.p50_delivery_ms"],
        "median delivery, ms",
        1,
        Target::None,
    ),
    row(
        Scenario::S5,
        &["s5.missing"],
        "missing deliveries",
        0,
        Target::Zero,
    ),
    row(
        Scenario::S5,
        &["s5.rss_mib"],
        "peak RSS (VmHWM), MiB",
        1,
        Target::None,
    ),
    row(
        Scenario::S6,
        &["s6.conns"],
        "idle plain WebSocket connections held (Node: ws 8)",
        0,
        Target::None,
    ),
    row(
        Scenario::S6,
        &["s6.rss_per_conn_kib"],
        "RSS per idle plain connection, KiB",
        1,
        Target::RatioMax(0.5),
    ),
    row(
        Scenario::S6,
        &["s6.marginal_kib"],
        "RSS per connection, first → last step, KiB",
        1,
        Target::None,
    ),
    row(
        Scenario::S6,
        &["s6.connect_rate"],
        "connect rate (handshake + auth_success), connections/s",
        0,
        Target::None,
    ),
    row(
        Scenario::S6,
        &["s6.rss_mib"],
        "RSS with all open, MiB",
        1,
        Target::None,
    ),
    row(
        Scenario::S6,
        &["s6.cpu_s"],
        "server CPU-s for the ramp",
        2,
        Target::None,
    ),
    row(
        Scenario::S6,
        &["s6.failed"],
        "failed connects",
        0,
        Target::Zero,
    ),
    row(
        Scenario::S7,
        &["s7.conns", "s7.rate"],
        "plain subscribers, 20 per channel (publishes/s offered; Node: ws 8)",
        0,
        Target::None,
    ),
    row(
        Scenario::S7,
        &["s7.deliveries_per_cpu_s"],
        "deliveries per server CPU-second",
        0,
        Target::RatioMin(2.0),
    ),
    row(
        Scenario::S7,
        &["s7.cpu_us_per_delivery", "s7.sys_us_per_delivery"],
        "server CPU per delivery (of it in the kernel), µs",
        1,
        Target::None,
    ),
    row(
        Scenario::S7,
        &[
            "s7.p99_delivery_ms",
            "s7.p50_delivery_ms",
            "s7.max_delivery_ms",
        ],
        "p99 delivery, publish → subscriber (p50 / max), ms",
        2,
        Target::RatioMax(0.5),
    ),
    row(
        Scenario::S7,
        &["s7.missing", "s7.http_errors"],
        "missing deliveries (HTTP errors)",
        0,
        Target::Zero,
    ),
    row(
        Scenario::S7,
        &["s7.cpu_s"],
        "server CPU-s for the measured publishes",
        2,
        Target::None,
    ),
    row(
        Scenario::S7,
        &["s7.rss_mib"],
        "peak RSS (VmHWM), MiB",
        1,
        Target::None,
    ),
];

/// Every run's outcome, by scenario and server, in run order.
pub type Results = BTreeMap<(Scenario, Kind), Vec<Outcome>>;

/// Adds the figures derived from others in the same run.
pub fn derive(outcome: &mut Outcome) {
    if let (Some(rate), Some(tps)) = (
        outcome.figures.get("s3.slo_rate"),
        outcome.figures.get("s3.pgbench_tps"),
    ) && *tps > 0.0
    {
        let v = rate / tps;
        outcome.set("s3.vs_pgbench", v);
    }
}

/// Median of `key` over the runs that have it.
pub fn medians(runs: Option<&Vec<Outcome>>, key: &str) -> Option<f64> {
    let values: Vec<f64> = runs?
        .iter()
        .filter_map(|o| o.figures.get(key).copied())
        .collect();
    median(&values)
}

/// A table cell: `first (second / …)`, `n/a` for a missing value.
pub fn cell(values: &[Option<f64>], decimals: usize) -> String {
    let show = |v: Option<f64>| match v {
        Some(x) => format_number(x, decimals),
        None => "n/a".to_owned(),
    };
    match values {
        [] => String::new(),
        [one] => show(*one),
        [first, rest @ ..] => {
            let others: Vec<String> = rest.iter().map(|v| show(*v)).collect();
            format!("{} ({})", show(*first), others.join(" / "))
        }
    }
}

/// Thousands separated with a thin space, fixed decimals.
fn format_number(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_owned(), Some(f.to_owned())),
        None => (text.clone(), None),
    };
    let (sign, digits) = match int.strip_prefix('-') {
        Some(d) => ("-", d.to_owned()),
        None => ("", int),
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// The markdown table (with a details section of every run's notes).
pub fn render(results: &Results, scenarios: &[Scenario]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| scenario | figure | Switchboard | Node | ratio | target | met? |"
    );
    let _ = writeln!(t, "| --- | --- | ---: | ---: | ---: | --- | --- |");
    for &scenario in scenarios {
        let sb_runs = results.get(&(scenario, Kind::Switchboard));
        let node_runs = results.get(&(scenario, Kind::Node));
        let unavailable = sb_runs
            .into_iter()
            .chain(node_runs)
            .flatten()
            .find_map(|o| o.unavailable.clone());
        if let Some(why) = unavailable {
            let _ = writeln!(
                t,
                "| {} | not available: {why} | – | – | – | | not measured |",
                scenario.id().to_uppercase()
            );
            continue;
        }
        for r in ROWS.iter().filter(|r| r.scenario == scenario) {
            let sb: Vec<Option<f64>> = r.keys.iter().map(|k| medians(sb_runs, k)).collect();
            let node: Vec<Option<f64>> = r.keys.iter().map(|k| medians(node_runs, k)).collect();
            if sb.iter().chain(&node).all(Option::is_none) {
                continue;
            }
            let (a, b) = (sb[0], node[0]);
            let ratio = match (a, b) {
                (Some(a), Some(b)) if b != 0.0 => format!("{:.2}×", a / b),
                _ => "–".to_owned(),
            };
            let met = match r.target.met(a, b) {
                Some(true) => "yes",
                Some(false) => "**NO**",
                None if matches!(r.target, Target::None) => "",
                None => "n/a",
            };
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} |",
                scenario.id().to_uppercase(),
                r.label,
                cell(&sb, r.decimals),
                cell(&node, r.decimals),
                ratio,
                r.target.describe(),
                met
            );
        }
    }
    t
}

/// Every run's notes, for the details section.
pub fn details(results: &Results) -> String {
    let mut t = String::new();
    for ((scenario, kind), runs) in results {
        for (i, o) in runs.iter().enumerate() {
            let _ = writeln!(
                t,
                "\n**{} · {} · run {}**\n",
                scenario.id().to_uppercase(),
                kind.name(),
                i + 1
            );
            if let Some(u) = &o.unavailable {
                let _ = writeln!(t, "- not available: {u}");
            }
            for n in &o.notes {
                let _ = writeln!(t, "- {n}");
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_targets() {
        assert_eq!(format_number(1234567.891, 1), "1,234,567.9");
        assert_eq!(format_number(-12.0, 0), "-12");
        assert_eq!(format_number(999.0, 0), "999");
        assert_eq!(Target::RatioMin(5.0).met(Some(10.0), Some(2.0)), Some(true));
        assert_eq!(Target::RatioMax(0.5).met(Some(2.0), Some(3.0)), Some(false));
        assert_eq!(Target::AbsMax(25.0).met(Some(3.0), None), Some(true));
        assert_eq!(Target::Zero.met(None, Some(0.0)), None);
    }

    #[test]
    fn table_shows_medians_and_unavailable_scenarios() {
        let mut results = Results::new();
        for (kind, values) in [
            (Kind::Switchboard, [10.0, 30.0, 20.0]),
            (Kind::Node, [40.0, 40.0, 50.0]),
        ] {
            let runs = values
                .iter()
                .map(|v| {
                    let mut o = Outcome::default();
                    o.set("s1.rss_per_conn_kib", *v);
                    o
                })
                .collect();
            results.insert((Scenario::S1, kind), runs);
        }
        let o = Outcome {
            unavailable: Some("404".into()),
            ..Outcome::default()
        };
        results.insert((Scenario::S4, Kind::Switchboard), vec![o]);
        let t = render(&results, &[Scenario::S1, Scenario::S4]);
        assert!(
            t.contains("| 20.0 | 40.0 | 0.50× | ≤ 0.5× Node | yes |"),
            "{t}"
        );
        assert!(t.contains("not available: 404"), "{t}");
    }

    #[test]
    fn plain_scenarios_have_their_rows_and_targets() {
        let mut results = Results::new();
        for (kind, per_cpu, p99) in [
            (Kind::Switchboard, 30_000.0, 4.0),
            (Kind::Node, 10_000.0, 10.0),
        ] {
            let mut o = Outcome::default();
            o.set("s7.deliveries_per_cpu_s", per_cpu);
            o.set("s7.p99_delivery_ms", p99);
            o.set("s7.p50_delivery_ms", 1.0);
            o.set("s7.max_delivery_ms", 20.0);
            results.insert((Scenario::S7, kind), vec![o]);
        }
        let t = render(&results, &[Scenario::S6, Scenario::S7]);
        assert!(
            t.contains("| S7 | deliveries per server CPU-second | 30,000 | 10,000 | 3.00× | ≥ 2× Node | yes |"),
            "{t}"
        );
        assert!(
            t.contains(
                "| 4.00 (1.00 / 20.00) | 10.00 (1.00 / 20.00) | 0.40× | ≤ 0.5× Node | yes |"
            ),
            "{t}"
        );
        assert!(!t.contains("| S6 |"), "no S6 figures, no S6 rows: {t}");
        assert_eq!(Scenario::parse("S7"), Some(Scenario::S7));
        assert_eq!(Scenario::S6.node_peer(), "ws-server.mjs");
        assert_eq!(Scenario::S1.node_peer(), "server.mjs");
    }
}
