//! The command line of `cargo xtask`: clap definitions plus the one piece of
//! argument rewriting clap cannot do by itself.
//!
//! QEMU users type `-smp 4`, a long option behind a single dash. clap reads
//! `-smp` as the short flags `-s -m -p`, so [`preprocess`] rewrites it to
//! `--smp` before clap sees the arguments. `-m` stays a short option, as in
//! QEMU. Everything after `--` is left alone: it belongs to QEMU.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

/// Build, run, test and benchmark the Ferrite kernel.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the kernel, the user programs and the loader.
    Build(BuildArgs),
    /// Build, then boot the kernel in QEMU with the serial console on this terminal.
    Run(RunArgs),
    /// Run the host unit tests, then the QEMU scenarios in tests/.
    Test(TestArgs),
    /// Boot a release kernel several times with `bench=...` and report medians.
    Bench(BenchArgs),
    /// Run clippy with `-D warnings` over every crate, each for its own target.
    Clippy,
}

/// Options of `build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Build with the release profile (optimised, still with debug info).
    #[arg(long)]
    pub release: bool,
}

/// Which boot loader goes into `EFI/BOOT/BOOTX64.EFI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bootloader {
    /// The project's own loader (`loader/`, built as `loader.efi`).
    #[default]
    Builtin,
    /// A Limine binary release; needs `--limine-dir`.
    Limine,
}

impl std::fmt::Display for Bootloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bootloader::Builtin => "builtin",
            Bootloader::Limine => "limine",
        })
    }
}

/// Options shared by every command that boots the kernel.
#[derive(Debug, Clone, Args)]
pub struct BootArgs {
    /// Which boot loader to boot the kernel with.
    #[arg(long, value_enum, default_value_t = Bootloader::Builtin)]
    pub bootloader: Bootloader,
    /// Directory holding a Limine binary release (its `BOOTX64.EFI` is used).
    #[arg(long, value_name = "DIR")]
    pub limine_dir: Option<PathBuf>,
}

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Number of CPUs (`-smp 4` as in QEMU also works).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=255))]
    pub smp: u32,
    /// Guest memory, in QEMU's notation (`256M`, `1G`).
    #[arg(short = 'm', long = "memory", default_value = "256M", value_parser = parse_memory)]
    pub memory: String,
    /// Build and boot the release profile.
    #[arg(long)]
    pub release: bool,
    /// Start QEMU halted and wait for a debugger on localhost:1234.
    #[arg(long)]
    pub gdb: bool,
    /// Kernel command line (replaces the one in limine.conf for this run).
    #[arg(long)]
    pub cmdline: Option<String>,
    /// Stop QEMU after this many seconds and report a hang (default: no limit).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    #[command(flatten)]
    pub boot: BootArgs,
    /// Extra arguments for QEMU, after `--`.
    #[arg(last = true, value_name = "QEMU ARGS")]
    pub qemu_args: Vec<String>,
}

/// Options of `test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Run only the tests whose name contains this text (`host` selects the host unit tests).
    pub filter: Option<String>,
    /// Build and boot the release profile.
    #[arg(long)]
    pub release: bool,
    /// How many QEMU scenarios may run at once.
    #[arg(long, short = 'j', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
    #[command(flatten)]
    pub boot: BootArgs,
}

/// Options of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How many times to boot the kernel; medians are taken over these runs.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,
    /// Run only the benchmarks the kernel selects with `bench=<FILTER>`.
    pub filter: Option<String>,
    /// Give up on a boot that takes longer than this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    #[command(flatten)]
    pub boot: BootArgs,
}

/// Checks a QEMU memory size: a number with an optional K, M, G or T suffix.
pub fn parse_memory(text: &str) -> Result<String, String> {
    let digits = text.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', 't', 'T']);
    let suffix_len = text.len() - digits.len();
    if digits.is_empty() || suffix_len > 1 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{text}` is not a memory size: write a number with an optional K, M, G or T suffix, e.g. 256M or 1G"
        ));
    }
    if digits.parse::<u64>().map_or(true, |n| n == 0) {
        return Err(format!(
            "`{text}`: the memory size must be a positive number"
        ));
    }
    Ok(text.to_ascii_uppercase())
}

/// Rewrites QEMU-style single-dash long options to what clap understands:
/// `-smp N` and `-smp=N` become `--smp N` and `--smp=N`. Arguments after
/// `--` are QEMU's own and are never touched.
pub fn preprocess<I>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = OsString>,
{
    let mut out = Vec::new();
    let mut passthrough = false;
    for arg in args {
        if passthrough {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        match arg.to_str() {
            Some("-smp") => out.push("--smp".into()),
            Some(text) if text.starts_with("-smp=") => out.push(format!("-{text}").into()),
            _ => out.push(arg),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(args: &[&str]) -> Vec<String> {
        preprocess(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(preprocess(args.iter().map(OsString::from)))
    }

    #[test]
    fn single_dash_smp_becomes_long() {
        assert_eq!(pre(&["x", "run", "-smp", "4"]), ["x", "run", "--smp", "4"]);
        assert_eq!(pre(&["x", "run", "-smp=2"]), ["x", "run", "--smp=2"]);
        assert_eq!(pre(&["x", "run", "-m", "1G"]), ["x", "run", "-m", "1G"]);
    }

    #[test]
    fn qemu_arguments_after_double_dash_are_untouched() {
        assert_eq!(
            pre(&["x", "run", "--", "-smp", "8", "-d", "int"]),
            ["x", "run", "--", "-smp", "8", "-d", "int"]
        );
    }

    #[test]
    fn run_parses_qemu_style_options() {
        let cli = parse(&[
            "x",
            "run",
            "-smp",
            "2",
            "-m",
            "512m",
            "--timeout",
            "30",
            "--",
            "-d",
            "int",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.smp, 2);
        assert_eq!(run.memory, "512M");
        assert_eq!(run.timeout, Some(30));
        assert_eq!(run.qemu_args, ["-d", "int"]);
        assert_eq!(run.boot.bootloader, Bootloader::Builtin);
    }

    #[test]
    fn run_defaults() {
        let Command::Run(run) = parse(&["x", "run"]).unwrap().command else {
            panic!()
        };
        assert_eq!(
            (run.smp, run.memory.as_str(), run.timeout, run.gdb),
            (4, "256M", None, false)
        );
    }

    #[test]
    fn bad_values_are_clap_errors() {
        assert!(parse(&["x", "run", "-smp", "0"]).is_err());
        assert!(parse(&["x", "run", "-smp", "many"]).is_err());
        assert!(parse(&["x", "run", "-m", "lots"]).is_err());
        assert!(parse(&["x", "run", "--bootloader", "grub"]).is_err());
        assert!(parse(&["x", "test", "--jobs", "0"]).is_err());
        assert!(parse(&["x", "bench", "--runs", "0"]).is_err());
    }

    #[test]
    fn test_and_bench_arguments() {
        let Command::Test(t) = parse(&["x", "test", "boot", "--jobs", "2"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(
            (t.filter.as_deref(), t.jobs, t.release),
            (Some("boot"), 2, false)
        );
        let Command::Bench(b) = parse(&["x", "bench", "--runs", "3", "ipc"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!((b.runs, b.filter.as_deref()), (3, Some("ipc")));
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("256M").unwrap(), "256M");
        assert_eq!(parse_memory("1g").unwrap(), "1G");
        assert_eq!(parse_memory("4096").unwrap(), "4096");
        for bad in ["", "M", "12MB", "-1M", "0", "1.5G"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }
}
