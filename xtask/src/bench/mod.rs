//! `cargo xtask bench`: boots a release kernel several times with
//! `bench=<filter>` on the command line, collects the `bench:` lines it
//! prints, and reports medians, extremes and spread over the runs, plus the
//! ratios the project is judged by.
//!
//! The kernel measures many samples per benchmark and prints one summary
//! line per benchmark and boot (text before `bench:` is its log prefix):
//!
//! ```text
//! bench: {"name":"frame_alloc_free","unit":"cycles","samples":10000,"min":..,"p10":..,"median":..,"p90":..,"max":..}
//! ```
//!
//! Each boot contributes that median; xtask reports the median, minimum and
//! maximum of those medians over the boots. Other `bench:` lines (progress
//! messages) are ignored.

mod stats;

pub use stats::{aggregate, parse_line, ratios, table};

use crate::bootdir;
use crate::build;
use crate::cli::{BenchArgs, Bootloader};
use crate::hostcheck;
use crate::launch::{self, BootSpec, MachineOptions};
use crate::qemu::{self, Event, Flow, Outcome};
use crate::run_cmd::is_crash_line;
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use serde::Serialize;
use stats::{Ratio, Stats};
use std::collections::VecDeque;
use std::fs;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const BENCH_SMP: u32 = 4;
/// Memory of every benchmark boot.
pub const BENCH_MEMORY: &str = "256M";

#[derive(Debug, Serialize)]
struct Report<'a> {
    date: String,
    runs: u32,
    smp: u32,
    memory: &'a str,
    cmdline: &'a str,
    qemu: &'a str,
    benchmarks: &'a [Stats],
    ratios: &'a [Ratio],
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (UTC).
pub fn timestamp(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let secs = unix_seconds % 86_400;
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Runs the command; returns the process exit status.
pub fn run(ws: &Workspace, args: &BenchArgs) -> Result<i32> {
    bootdir::check_loader_options(args.boot.bootloader, args.boot.limine_dir.as_deref())?;
    hostcheck::ensure_targets(&ws.root)?;
    let host = hostcheck::ensure_qemu_and_firmware()?;
    let artifacts = build::build(ws, true, args.boot.bootloader == Bootloader::Builtin)?;
    let efi = bootdir::loader_efi(
        args.boot.bootloader,
        args.boot.limine_dir.as_deref(),
        artifacts.loader.as_deref(),
    )?;
    let cmdline = format!("bench={}", args.filter.as_deref().unwrap_or("all"));
    let bench_dir = ws.target_dir.join("bench");
    let log_dir = bench_dir.join("logs");
    // Logs of an earlier, longer series would be mistaken for this one's.
    let _ = fs::remove_dir_all(&log_dir);
    fs::create_dir_all(&log_dir)
        .with_context(|| format!("could not create {}", log_dir.display()))?;
    eprintln!(
        "xtask: {} boot(s) of the release kernel with `{cmdline}` on {BENCH_SMP} CPUs, up to {} s each",
        args.runs, args.timeout
    );

    let mut samples = Vec::new();
    for run in 1..=args.runs {
        let spec = BootSpec {
            cmdline: Some(&cmdline),
            ..BootSpec::default()
        };
        let run_dir = ws.run_dir("bench", &format!("run{run}"));
        let prepared = launch::prepare(ws, &host, &artifacts, &efi, &spec, run_dir.path())?;
        let options = MachineOptions {
            smp: BENCH_SMP,
            memory: BENCH_MEMORY,
            interactive: false,
            gdb: false,
            extra: &[],
        };
        let (command, shown) = launch::command(&host, &prepared, options);
        let start = Instant::now();
        let mut log = format!("# qemu: {shown}\n");
        let mut tail: VecDeque<String> = VecDeque::new();
        let mut crash = None;
        let mut found = Vec::new();
        let mut malformed = Vec::new();
        let outcome = qemu::run(
            command,
            false,
            Some(Duration::from_secs(args.timeout)),
            |event| {
                if let Event::Serial(line) | Event::Stderr(line) = event {
                    log.push_str(line);
                    log.push('\n');
                    if tail.len() == 40 {
                        tail.pop_front();
                    }
                    tail.push_back(line.to_string());
                    if let Event::Serial(line) = event {
                        if is_crash_line(line) && crash.is_none() {
                            crash = Some(line.to_string());
                        }
                        match parse_line(line) {
                            Some(Ok(sample)) => found.push(sample),
                            Some(Err(problem)) => malformed.push(problem),
                            None => {}
                        }
                    }
                }
                Flow::Continue
            },
        )?;
        log.push_str(&format!("# ended: {outcome}\n"));
        let log_path = log_dir.join(format!("run-{run}.log"));
        fs::write(&log_path, &log)
            .with_context(|| format!("could not write {}", log_path.display()))?;
        if outcome != Outcome::GuestSuccess || crash.is_some() {
            eprintln!(
                "xtask: benchmark run {run} of {} failed: {outcome}",
                args.runs
            );
            if let Some(line) = crash {
                eprintln!("xtask: the kernel crashed: {line}");
            }
            for line in &tail {
                eprintln!("    | {line}");
            }
            eprintln!("xtask: full log: {}", ws.display(&log_path));
            return Ok(1);
        }
        for problem in &malformed {
            eprintln!("xtask: warning: run {run}: ignoring a malformed benchmark line: {problem}");
        }
        eprintln!(
            "xtask: run {run}/{}: {} result(s) in {:.1} s",
            args.runs,
            found.len(),
            start.elapsed().as_secs_f64()
        );
        samples.extend(found);
    }

    let stats = aggregate(&samples)?;
    let ratios = ratios(&stats);
    if stats.is_empty() {
        println!(
            "no benchmarks reported: the kernel printed no `bench: {{\"name\":...}}` line for `{cmdline}`"
        );
    } else {
        print!("{}", table(&stats, &ratios));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let report = Report {
        date: timestamp(now),
        runs: args.runs,
        smp: BENCH_SMP,
        memory: BENCH_MEMORY,
        cmdline: &cmdline,
        qemu: &host.qemu_version,
        benchmarks: &stats,
        ratios: &ratios,
    };
    let json = serde_json::to_string_pretty(&report)?;
    let latest = bench_dir.join("report.json");
    let dated = bench_dir.join(format!("report-{}.json", report.date));
    for path in [&latest, &dated] {
        fs::write(path, &json).with_context(|| format!("could not write {}", path.display()))?;
    }
    println!(
        "report: {} (and {})",
        ws.display(&latest),
        ws.display(&dated)
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "19700101T000000Z");
        assert_eq!(timestamp(951_782_400), "20000229T000000Z");
        assert_eq!(timestamp(1_763_722_080), "20251121T104800Z");
    }
}
