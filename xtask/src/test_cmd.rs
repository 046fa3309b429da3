//! `cargo xtask test`: the host unit tests of the host crates, then every
//! QEMU scenario of `tests/`, each judged by its log and its exit, ending
//! with the line `N passed, N failed`.

use crate::bootdir;
use crate::build::{self, Artifacts};
use crate::cli::{Bootloader, TestArgs};
use crate::expect::Matcher;
use crate::hostcheck::{self, Host};
use crate::launch::{self, BootSpec, MachineOptions, shell_quote};
use crate::qemu::{self, Event, Flow};
use crate::scenario::{self, Scenario};
use crate::symbols::Symbolizer;
use crate::workspace::{Workspace, cargo};
use anyhow::{Context, Result, bail};
use regex::Regex;
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many log lines a failure shows.
const TAIL_LINES: usize = 40;
/// How long a guest may keep printing after a forbidden line before it is
/// stopped (so the panic message and backtrace still reach the log).
const AFTER_FORBIDDEN_GRACE: Duration = Duration::from_secs(5);

/// Passed and failed counts, and the names of what failed.
#[derive(Debug, Default)]
pub struct Tally {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Scenarios skipped because they test the other boot loader.
    pub skipped: usize,
    /// Names of the failures, for the closing summary.
    pub failures: Vec<String>,
}

/// Whether the test named `name` is selected by `filter`.
pub fn selected(name: &str, filter: Option<&str>) -> bool {
    filter.is_none_or(|f| name.contains(f))
}

/// Runs the command; returns the process exit status.
pub fn run(ws: &Workspace, args: &TestArgs) -> Result<i32> {
    bootdir::check_loader_options(args.boot.bootloader, args.boot.limine_dir.as_deref())?;
    let filter = args.filter.as_deref();
    let all = scenario::load_dir(&ws.tests_dir())?;
    let (scenarios, skipped): (Vec<&Scenario>, Vec<&Scenario>) = all
        .iter()
        .filter(|s| selected(&s.name, filter))
        .partition(|s| s.bootloader.is_none_or(|b| b == args.boot.bootloader));
    let host_tests = selected("host", filter);
    if !host_tests && scenarios.is_empty() && skipped.is_empty() {
        let names: Vec<&str> = std::iter::once("host")
            .chain(all.iter().map(|s| s.name.as_str()))
            .collect();
        bail!(
            "no test name contains `{}`; the tests are: {}",
            filter.unwrap_or(""),
            names.join(", ")
        );
    }
    let mut tally = Tally {
        skipped: skipped.len(),
        ..Tally::default()
    };
    for s in &skipped {
        println!(
            "SKIP {} (it tests the {} boot loader)",
            s.name,
            s.bootloader.unwrap_or_default()
        );
    }
    // Check the host before the long part, so that a missing QEMU is
    // reported at once rather than after the host tests.
    let host = if scenarios.is_empty() {
        None
    } else {
        hostcheck::ensure_targets(&ws.root)?;
        Some(hostcheck::ensure_qemu_and_firmware()?)
    };
    if host_tests {
        run_host_tests(ws, &mut tally)?;
    }
    if let Some(host) = &host {
        let with_loader = args.boot.bootloader == Bootloader::Builtin;
        let built = build::build(ws, args.release, with_loader).and_then(|artifacts| {
            let limine_dir = args.boot.limine_dir.as_deref();
            let efi = bootdir::loader_efi(
                args.boot.bootloader,
                limine_dir,
                artifacts.loader.as_deref(),
            )?;
            Ok((artifacts, efi))
        });
        match built {
            Ok((artifacts, efi)) => {
                let shared = Shared {
                    ws,
                    host,
                    artifacts: &artifacts,
                    efi: &efi,
                };
                run_scenarios(&shared, &scenarios, args.jobs as usize, &mut tally);
            }
            Err(e) => {
                // Every scenario needs the build: count them all as failed.
                println!("error: {e:#}");
                for scenario in &scenarios {
                    println!("FAIL {} (not run: the build failed)", scenario.name);
                    tally.failed += 1;
                    tally.failures.push(scenario.name.clone());
                }
            }
        }
    }
    if !tally.failures.is_empty() {
        println!("\nfailed: {}", tally.failures.join(", "));
    }
    if tally.skipped > 0 {
        println!(
            "{} passed, {} failed, {} skipped",
            tally.passed, tally.failed, tally.skipped
        );
    } else {
        println!("{} passed, {} failed", tally.passed, tally.failed);
    }
    Ok(if tally.failed == 0 { 0 } else { 1 })
}

/// Counts of one libtest summary line:
/// `test result: ok. 12 passed; 0 failed; 0 ignored; ...`.
pub fn parse_test_result(line: &str) -> Option<(usize, usize)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_, counts) = rest.split_once(". ")?;
    let mut passed = None;
    let mut failed = None;
    for part in counts.split(';') {
        let mut words = part.split_whitespace();
        let (Some(number), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        match what {
            "passed" => passed = number.parse().ok(),
            "failed" => failed = number.parse().ok(),
            _ => {}
        }
    }
    Some((passed?, failed?))
}

fn run_host_tests(ws: &Workspace, tally: &mut Tally) -> Result<()> {
    let mut command = Command::new(cargo());
    command
        .current_dir(&ws.root)
        .args(["test", "--no-fail-fast"]);
    for krate in &ws.host_crates {
        command.args(["-p", krate]);
    }
    let shown = format!(
        "cargo test --no-fail-fast -p {}",
        ws.host_crates.join(" -p ")
    );
    println!("xtask: host unit tests: {shown}");
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let stdout = child
        .stdout
        .take()
        .context("cargo test's output was not captured")?;
    let failed_test = Regex::new(r"^test (\S+) \.\.\. FAILED$").expect("valid regex");
    let (mut passed, mut failed) = (0, 0);
    let mut names = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{line}");
        if let Some((p, f)) = parse_test_result(&line) {
            passed += p;
            failed += f;
        }
        if let Some(c) = failed_test.captures(&line) {
            names.push(format!("host:{}", &c[1]));
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("`{shown}` did not finish"))?;
    if !status.success() && failed == 0 {
        // It did not get as far as running tests (a build error, most likely).
        failed = 1;
        names.push(format!(
            "host ({shown} exited with {status}; see the messages above)"
        ));
    }
    tally.passed += passed;
    tally.failed += failed;
    tally.failures.extend(names);
    Ok(())
}

/// What every scenario run shares.
struct Shared<'a> {
    ws: &'a Workspace,
    host: &'a Host,
    artifacts: &'a Artifacts,
    efi: &'a Path,
}

/// The result of one scenario.
struct Verdict {
    reasons: Vec<String>,
    duration: Duration,
    tail: Vec<String>,
    log: PathBuf,
}

fn run_scenarios(shared: &Shared<'_>, scenarios: &[&Scenario], jobs: usize, tally: &mut Tally) {
    let jobs = jobs.clamp(1, scenarios.len());
    println!(
        "xtask: {} QEMU scenario(s), {} at a time; each boots a virtual machine and can take a minute",
        scenarios.len(),
        jobs
    );
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(scenario) = scenarios.get(index) else {
                        break;
                    };
                    let verdict = run_one(shared, scenario);
                    let report = report(shared.ws, scenario, &verdict);
                    // One print per scenario keeps parallel reports whole.
                    print!("{report}");
                    let _ = std::io::stdout().flush();
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((scenario.name.clone(), verdict.reasons.is_empty()));
                }
            });
        }
    });
    for (name, passed) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        if passed {
            tally.passed += 1;
        } else {
            tally.failed += 1;
            tally.failures.push(name);
        }
    }
}

fn report(ws: &Workspace, scenario: &Scenario, verdict: &Verdict) -> String {
    let seconds = verdict.duration.as_secs_f64();
    if verdict.reasons.is_empty() {
        return format!("PASS {} ({seconds:.1} s)\n", scenario.name);
    }
    let mut text = format!(
        "FAIL {} ({seconds:.1} s): {}\n",
        scenario.name, scenario.description
    );
    for reason in &verdict.reasons {
        text.push_str(&format!("    - {reason}\n"));
    }
    if verdict.tail.is_empty() {
        text.push_str("    (the guest printed nothing)\n");
    } else {
        text.push_str(&format!("    last {} log lines:\n", verdict.tail.len()));
        for line in &verdict.tail {
            text.push_str(&format!("    | {line}\n"));
        }
    }
    text.push_str(&format!("    full log: {}\n", ws.display(&verdict.log)));
    text
}

fn run_one(shared: &Shared<'_>, scenario: &Scenario) -> Verdict {
    let start = Instant::now();
    let log = shared
        .ws
        .target_dir
        .join("test-logs")
        .join(format!("{}.log", scenario.name));
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let reasons = match boot_and_check(shared, scenario, &log, &mut tail) {
        Ok(reasons) => reasons,
        Err(e) => vec![format!("{e:#}")],
    };
    Verdict {
        reasons,
        duration: start.elapsed(),
        tail: tail.into(),
        log,
    }
}

fn boot_and_check(
    shared: &Shared<'_>,
    scenario: &Scenario,
    log_path: &Path,
    tail: &mut VecDeque<String>,
) -> Result<Vec<String>> {
    let ws = shared.ws;
    if let Some(dir) = log_path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    }
    let mut log = BufWriter::new(
        File::create(log_path)
            .with_context(|| format!("could not create {}", log_path.display()))?,
    );
    writeln!(
        log,
        "# scenario {}: {}",
        scenario.name, scenario.description
    )?;
    writeln!(log, "# defined in {}", ws.display(&scenario.file))?;

    let run_dir = ws.run_dir("test", &scenario.name);
    let spec = BootSpec {
        config: scenario.config.as_deref(),
        cmdline: Some(&scenario.cmdline),
        missing_ok: &scenario.missing_ok,
    };
    let prepared = match launch::prepare(
        ws,
        shared.host,
        shared.artifacts,
        shared.efi,
        &spec,
        run_dir.path(),
    ) {
        Ok(prepared) => prepared,
        Err(e) => {
            writeln!(log, "# FAIL: could not prepare the boot: {e:#}")?;
            return Err(e);
        }
    };
    let options = MachineOptions {
        smp: scenario.smp,
        memory: &scenario.memory,
        interactive: false,
        gdb: false,
        extra: &[],
    };
    let (command, shown) = launch::command(shared.host, &prepared, options);
    writeln!(log, "# qemu: {shown}")?;
    if scenario.config.is_none() {
        writeln!(
            log,
            "# to watch it: cargo xtask run -smp {} -m {} --cmdline {} --timeout {}",
            scenario.smp,
            scenario.memory,
            shell_quote(&scenario.cmdline),
            scenario.timeout
        )?;
    }

    let symbols = shared
        .artifacts
        .kernel()
        .map(|k| Symbolizer::new(k, &ws.root));
    let mut matcher = Matcher::new(scenario);
    let mut stop_after: Option<Instant> = None;
    let mut write_error = None;
    let mut keep = |line: String, log: &mut BufWriter<File>| {
        if let Err(e) = writeln!(log, "{line}") {
            write_error.get_or_insert(e);
        }
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    };
    let outcome = qemu::run(
        command,
        false,
        Some(Duration::from_secs(scenario.timeout)),
        |event| {
            match event {
                Event::Serial(line) => {
                    if matcher.feed(line) {
                        stop_after = Some(Instant::now() + AFTER_FORBIDDEN_GRACE);
                    }
                    keep(line.to_string(), &mut log);
                    for extra in symbols.iter().flat_map(|s| s.annotate(line)) {
                        keep(extra, &mut log);
                    }
                }
                Event::Stderr(line) => keep(format!("[qemu] {line}"), &mut log),
                Event::Tick => {}
            }
            match stop_after {
                Some(at) if Instant::now() >= at => Flow::Stop(format!(
                    "QEMU was stopped {} s after a forbidden line appeared",
                    AFTER_FORBIDDEN_GRACE.as_secs()
                )),
                _ => Flow::Continue,
            }
        },
    )?;
    let reasons = matcher.failures(&outcome);
    writeln!(log, "# ended: {outcome}")?;
    if reasons.is_empty() {
        writeln!(log, "# PASS")?;
    }
    for reason in &reasons {
        writeln!(log, "# FAIL: {reason}")?;
    }
    log.flush()?;
    if let Some(e) = write_error {
        return Err(e).with_context(|| format!("could not write {}", log_path.display()));
    }
    Ok(reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_summary_lines() {
        assert_eq!(
            parse_test_result(
                "test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s"
            ),
            Some((12, 0))
        );
        assert_eq!(
            parse_test_result(
                "test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out"
            ),
            Some((3, 2))
        );
        assert_eq!(parse_test_result("running 12 tests"), None);
        assert_eq!(parse_test_result("test result: garbled"), None);
    }

    #[test]
    fn filters() {
        assert!(selected("boot-smp4", None));
        assert!(selected("boot-smp4", Some("smp")));
        assert!(!selected("boot-smp4", Some("exception")));
        assert!(
            selected("host", Some("host"))
                && selected("host", Some("os"))
                && !selected("host", Some("boot"))
        );
    }
}
