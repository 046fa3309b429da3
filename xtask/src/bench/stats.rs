//! Benchmark results: reading the kernel's summary lines, statistics over
//! boots, the ratios the project's targets are stated in, and the table.

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;

/// One benchmark's result in one boot.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Benchmark name.
    pub name: String,
    /// The kernel's median for this boot.
    pub value: f64,
    /// Unit (`cycles`, ...).
    pub unit: String,
    /// The whole summary the kernel printed.
    pub raw: Value,
}

/// Reads a `bench: {...}` line: `None` for other lines, an error for a
/// summary line that is not the JSON object described above.
pub fn parse_line(line: &str) -> Option<Result<Sample, String>> {
    let rest = line[line.find("bench: ")? + "bench: ".len()..].trim();
    if !rest.starts_with('{') {
        return None;
    }
    let parsed = serde_json::from_str::<Value>(rest).map_err(|e| format!("not JSON ({e}): {rest}"));
    Some(parsed.and_then(|raw| {
        let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_string);
        let name = text("name").ok_or_else(|| format!("no \"name\": {rest}"))?;
        let unit = text("unit").ok_or_else(|| format!("no \"unit\": {rest}"))?;
        let value = raw
            .get("median")
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("no numeric \"median\": {rest}"))?;
        Ok(Sample {
            name,
            value,
            unit,
            raw,
        })
    }))
}

/// Statistics of one benchmark over all runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Benchmark name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Every sample, in run order.
    pub samples: Vec<f64>,
    /// Median of the samples.
    pub median: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// (max - min) / median, in percent.
    pub spread_percent: f64,
    /// The kernel's summary line of each boot.
    pub per_run: Vec<Value>,
}

/// Groups samples by benchmark (in the order the kernel first reported
/// them) and computes their statistics. A benchmark reported in two units is
/// an error in the kernel's output.
pub fn aggregate(samples: &[Sample]) -> Result<Vec<Stats>> {
    let mut groups: Vec<(&str, &str, Vec<f64>, Vec<Value>)> = Vec::new();
    for sample in samples {
        let index = match groups.iter().position(|g| g.0 == sample.name) {
            Some(index) => index,
            None => {
                groups.push((&sample.name, &sample.unit, Vec::new(), Vec::new()));
                groups.len() - 1
            }
        };
        let (_, unit, values, raws) = &mut groups[index];
        if *unit != sample.unit {
            bail!(
                "benchmark `{}` is reported both in `{unit}` and in `{}`",
                sample.name,
                sample.unit
            );
        }
        values.push(sample.value);
        raws.push(sample.raw.clone());
    }
    Ok(groups
        .into_iter()
        .map(|(name, unit, samples, per_run)| {
            let mut sorted = samples.clone();
            sorted.sort_by(f64::total_cmp);
            let n = sorted.len();
            let median = if n % 2 == 1 {
                sorted[n / 2]
            } else {
                (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
            };
            let (min, max) = (sorted[0], sorted[n - 1]);
            let spread_percent = if median == 0.0 {
                0.0
            } else {
                (max - min) / median.abs() * 100.0
            };
            Stats {
                name: name.to_string(),
                unit: unit.to_string(),
                samples,
                median,
                min,
                max,
                spread_percent,
                per_run,
            }
        })
        .collect())
}

/// A goal for a ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// The ratio should be at most this.
    AtMost(f64),
    /// The ratio should be at least this.
    AtLeast(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Goal::AtMost(limit) => value <= limit,
            Goal::AtLeast(limit) => value >= limit,
        }
    }
}

/// The ratios the project's performance targets are stated in:
/// (description, numerator, denominator, goal). Ratios without a goal are
/// shown for information.
pub const RATIOS: &[(&str, &str, &str, Option<Goal>)] = &[
    (
        "IPC round trip (same CPU) / null syscall",
        "ipc_roundtrip_same_cpu",
        "null_syscall",
        Some(Goal::AtMost(5.0)),
    ),
    (
        "IPC round trip, two CPUs / same CPU",
        "ipc_roundtrip_cross_cpu",
        "ipc_roundtrip_same_cpu",
        None,
    ),
    (
        "page request, 64 pages / 1 page",
        "page_request_64",
        "page_request_1",
        None,
    ),
    (
        "protect 64 pages / 1 page, 3 other CPUs",
        "protect_64pages_3cpus",
        "protect_1page_3cpus",
        Some(Goal::AtMost(1.5)),
    ),
    (
        "shootdown 64 pages / 1 page, 3 targets",
        "shootdown_64pages_3targets",
        "shootdown_1page_3targets",
        Some(Goal::AtMost(1.5)),
    ),
    (
        "shootdown 1 page, 3 targets / 1 target",
        "shootdown_1page_3targets",
        "shootdown_1page_1targets",
        None,
    ),
    (
        "page-request throughput, 2 CPUs / 1 CPU",
        "page_throughput_2cpus",
        "page_throughput_1cpu",
        Some(Goal::AtLeast(1.9)),
    ),
    (
        "page-request throughput, 4 CPUs / 1 CPU",
        "page_throughput_4cpus",
        "page_throughput_1cpu",
        None,
    ),
];

/// Absolute targets, in TSC cycles under the same QEMU, with Linux 6.1's
/// figure in that configuration: (name, Linux, target).
pub const TARGETS: &[(&str, f64, f64)] = &[
    ("null_syscall", 1_400.0, 1_400.0),
    ("ipc_roundtrip_same_cpu", 30_000.0, 6_000.0),
    ("ipc_roundtrip_cross_cpu", 270_000.0, 80_000.0),
    ("page_request_1", 136_000.0, 34_000.0),
    ("page_request_64", 2_340_000.0, 600_000.0),
    ("lazy_fault", 32_000.0, 32_000.0),
    ("protect_1page_3cpus", 1_400_000.0, 700_000.0),
];

/// A ratio computed from two medians.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratio {
    /// What it compares.
    pub description: String,
    /// Benchmark above the line.
    pub numerator: String,
    /// Benchmark below the line.
    pub denominator: String,
    /// numerator median / denominator median.
    pub value: f64,
    /// The goal, if the project sets one.
    pub goal: Option<Goal>,
    /// Whether the goal is met (`true` when there is none).
    pub met: bool,
}

/// The ratios of [`RATIOS`] whose two sides were both measured.
pub fn ratios(stats: &[Stats]) -> Vec<Ratio> {
    let median = |name: &str| stats.iter().find(|s| s.name == name).map(|s| s.median);
    RATIOS
        .iter()
        .filter_map(|&(description, numerator, denominator, goal)| {
            let (top, bottom) = (median(numerator)?, median(denominator)?);
            if bottom == 0.0 {
                return None;
            }
            let value = top / bottom;
            Some(Ratio {
                description: description.to_string(),
                numerator: numerator.to_string(),
                denominator: denominator.to_string(),
                value,
                goal,
                met: goal.is_none_or(|g| g.met(value)),
            })
        })
        .collect()
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 || value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// The table printed at the end. The Linux and target columns appear when
/// a benchmark the project has a target for was measured.
pub fn table(stats: &[Stats], ratios: &[Ratio]) -> String {
    let mut out = String::new();
    let width = stats.iter().map(|s| s.name.len()).max().unwrap_or(9).max(9);
    let target_of = |name: &str| TARGETS.iter().find(|(n, _, _)| *n == name);
    let with_targets = stats.iter().any(|s| target_of(&s.name).is_some());
    let mut row = |cells: [&str; 6], linux: &str, target: &str| {
        let [name, median, min, max, spread, unit] = cells;
        let mut line =
            format!("{name:<width$}  {median:>12}  {min:>12}  {max:>12}  {spread:>7}  {unit:<8}");
        if with_targets {
            line.push_str(&format!("  {linux:>10}  {target:>10}"));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    };
    row(
        ["benchmark", "median", "min", "max", "spread", "unit"],
        "Linux",
        "target",
    );
    for s in stats {
        let (linux, target) = target_of(&s.name)
            .map_or((String::new(), String::new()), |(_, l, t)| {
                (number(*l), format!("≤ {}", number(*t)))
            });
        let spread = format!("{:.1}%", s.spread_percent);
        row(
            [
                &s.name,
                &number(s.median),
                &number(s.min),
                &number(s.max),
                &spread,
                &s.unit,
            ],
            &linux,
            &target,
        );
    }
    if !ratios.is_empty() {
        let _ = writeln!(out, "\nratios of medians:");
        for r in ratios {
            let goal = match r.goal {
                Some(Goal::AtMost(l)) => {
                    format!("target ≤ {l}: {}", if r.met { "met" } else { "NOT met" })
                }
                Some(Goal::AtLeast(l)) => {
                    format!("target ≥ {l}: {}", if r.met { "met" } else { "NOT met" })
                }
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "{}",
                format!("  {:<45} {:>8.2}   {goal}", r.description, r.value).trim_end()
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, value: f64) -> Sample {
        Sample {
            name: name.into(),
            value,
            unit: "cycles".into(),
            raw: Value::Null,
        }
    }

    #[test]
    fn kernel_summary_lines() {
        let line = r#"[    3.250000 cpu0] bench: {"name":"shootdown_1page_3targets","unit":"cycles","samples":500,"min":9,"p10":10,"median":12,"p90":15,"max":40,"targets":3}"#;
        let s = parse_line(line).unwrap().unwrap();
        assert_eq!(
            (s.name.as_str(), s.value, s.unit.as_str()),
            ("shootdown_1page_3targets", 12.0, "cycles")
        );
        assert_eq!(s.raw["targets"], 3);
        assert!(parse_line("[    1.0 cpu0] bench: running frame_alloc_free").is_none());
        assert!(parse_line("bench: page-by-page flushing stops paying at 8 pages").is_none());
        assert!(parse_line("smp: 4 of 4 CPUs online").is_none());
        assert!(
            parse_line(r#"bench: {"name":"x","unit":"cycles""#)
                .unwrap()
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            parse_line(r#"bench: {"name":"x","unit":"cycles"}"#)
                .unwrap()
                .unwrap_err()
                .contains("median")
        );
        assert!(
            parse_line(r#"bench: {"unit":"cycles","median":3}"#)
                .unwrap()
                .unwrap_err()
                .contains("name")
        );
    }

    #[test]
    fn median_min_max_spread() {
        let samples: Vec<Sample> = [5.0, 1.0, 3.0, 2.0, 4.0]
            .iter()
            .map(|&v| sample("a", v))
            .chain([sample("b", 10.0), sample("b", 20.0)])
            .collect();
        let stats = aggregate(&samples).unwrap();
        assert_eq!(stats.len(), 2);
        let unsorted = aggregate(&[sample("z", 1.0), sample("a", 1.0)]).unwrap();
        assert_eq!(unsorted[0].name, "z", "the kernel's order is kept");
        let a = &stats[0];
        assert_eq!((a.median, a.min, a.max), (3.0, 1.0, 5.0));
        assert!((a.spread_percent - 400.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            a.samples,
            [5.0, 1.0, 3.0, 2.0, 4.0],
            "samples stay in run order"
        );
        assert_eq!(a.per_run.len(), 5);
        assert_eq!(stats[1].median, 15.0);
        let mixed = [
            sample("a", 1.0),
            Sample {
                unit: "ns".into(),
                ..sample("a", 2.0)
            },
        ];
        assert!(
            aggregate(&mixed)
                .unwrap_err()
                .to_string()
                .contains("both in")
        );
        assert!(aggregate(&[]).unwrap().is_empty());
    }

    #[test]
    fn ratios_need_both_sides() {
        let stats = aggregate(&[
            sample("null_syscall", 1000.0),
            sample("ipc_roundtrip_same_cpu", 4000.0),
        ])
        .unwrap();
        let r = ratios(&stats);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].value, r[0].met), (4.0, true));
        let stats = aggregate(&[
            sample("page_throughput_1cpu", 100.0),
            sample("page_throughput_2cpus", 150.0),
        ])
        .unwrap();
        let r = ratios(&stats);
        assert_eq!((r[0].value, r[0].met), (1.5, false));
        let text = table(&stats, &r);
        assert!(text.contains("target ≥ 1.9: NOT met"), "{text}");
        assert!(ratios(&aggregate(&[sample("null_syscall", 1.0)]).unwrap()).is_empty());
    }

    #[test]
    fn table_shows_targets_only_when_known() {
        let stats = aggregate(&[sample("null_syscall", 1200.0), sample("custom", 0.5)]).unwrap();
        let text = table(&stats, &[]);
        let row = text
            .lines()
            .find(|l| l.starts_with("null_syscall"))
            .unwrap();
        assert!(
            row.contains("1200") && row.contains("1400") && row.contains("≤ 1400"),
            "{row}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("custom") && l.contains("0.500")),
            "{text}"
        );
        let text = table(
            &aggregate(&[sample("frame_alloc_free", 90.0)]).unwrap(),
            &[],
        );
        assert!(!text.contains("Linux"), "{text}");
        assert!(text.lines().all(|l| l == l.trim_end()));
    }
}
