//! `cargo xtask run`: build, boot in QEMU with the serial console on the
//! terminal, symbolise kernel addresses, and turn the guest's verdict into
//! the exit status.

use crate::bootdir;
use crate::build;
use crate::cli::{Bootloader, RunArgs};
use crate::hostcheck;
use crate::launch::{self, BootSpec, MachineOptions};
use crate::qemu::{self, Event, Flow, Outcome};
use crate::symbols::Symbolizer;
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a kernel that printed a panic or exception may stay silent
/// before `run` stops QEMU (when no debugger is attached).
const AFTER_CRASH_GRACE: Duration = Duration::from_secs(10);

/// Whether a serial line reports a kernel panic or a CPU exception.
pub fn is_crash_line(line: &str) -> bool {
    line.contains("EXCEPTION") || line.to_ascii_lowercase().contains("panic")
}

/// Runs the command; returns the process exit status.
pub fn run(ws: &Workspace, args: &RunArgs) -> Result<i32> {
    bootdir::check_loader_options(args.boot.bootloader, args.boot.limine_dir.as_deref())?;
    hostcheck::ensure_targets(&ws.root)?;
    let host = hostcheck::ensure_qemu_and_firmware()?;
    let artifacts = build::build(
        ws,
        args.release,
        args.boot.bootloader == Bootloader::Builtin,
    )?;
    let efi = bootdir::loader_efi(
        args.boot.bootloader,
        args.boot.limine_dir.as_deref(),
        artifacts.loader.as_deref(),
    )?;
    let run_dir = ws.run_dir("run", "boot");
    let spec = BootSpec {
        cmdline: args.cmdline.as_deref(),
        ..BootSpec::default()
    };
    let prepared = launch::prepare(ws, &host, &artifacts, &efi, &spec, run_dir.path())?;
    let interactive = std::io::stdin().is_terminal();
    let (command, shown) = launch::command(
        &host,
        &prepared,
        MachineOptions {
            smp: args.smp,
            memory: &args.memory,
            interactive,
            gdb: args.gdb,
            extra: &args.qemu_args,
        },
    );
    let kernel = artifacts
        .kernel()
        .context("the build produced no kernel")?
        .clone();

    let loader_name = match args.boot.bootloader {
        Bootloader::Builtin => "the project's loader",
        Bootloader::Limine => "Limine",
    };
    eprintln!(
        "xtask: booting {} ({}) on {} CPU(s) with {} of memory through {loader_name}",
        ws.display(&kernel),
        artifacts.profile(),
        args.smp,
        args.memory
    );
    eprintln!("xtask: {shown}");
    if interactive {
        eprintln!("xtask: press Ctrl-A X to quit QEMU (Ctrl-A C opens its monitor)");
    }
    if args.gdb {
        print_gdb_help(ws, &kernel);
    }
    let timeout = if args.gdb {
        None
    } else {
        args.timeout.map(Duration::from_secs)
    };

    let symbols = Symbolizer::new(&kernel, &ws.root);
    let mut crash_seen = false;
    let mut last_output = Instant::now();
    let stdout = std::io::stdout();
    let outcome = qemu::run(command, interactive, timeout, |event| {
        match event {
            Event::Serial(line) => {
                last_output = Instant::now();
                let mut out = stdout.lock();
                let _ = writeln!(out, "{line}");
                for extra in symbols.annotate(line) {
                    let _ = writeln!(out, "{extra}");
                }
                let _ = out.flush();
                crash_seen |= is_crash_line(line);
            }
            Event::Stderr(line) => eprintln!("{line}"),
            Event::Tick => {
                if crash_seen && !args.gdb && last_output.elapsed() > AFTER_CRASH_GRACE {
                    return Flow::Stop(format!(
                        "the kernel crashed and then stayed silent for {} s without reporting to QEMU, so QEMU was stopped",
                        AFTER_CRASH_GRACE.as_secs()
                    ));
                }
            }
        }
        Flow::Continue
    })?;

    eprintln!("xtask: {outcome}");
    if interactive && outcome == Outcome::NoVerdict {
        eprintln!("xtask: (quitting QEMU with Ctrl-A X ends a run the same way)");
    }
    let mut code = outcome.exit_code();
    if crash_seen && code == 0 {
        eprintln!(
            "xtask: but the kernel printed a panic or an exception (see above), so this run failed"
        );
        code = 1;
    }
    if let Outcome::QemuError { .. } = outcome {
        eprintln!("xtask: the QEMU command was: {shown}");
    }
    if let Outcome::TimedOut(_) = outcome {
        eprintln!(
            "xtask: the guest hung; run again with --gdb to see where, or without --timeout to watch it"
        );
    }
    Ok(code)
}

fn print_gdb_help(ws: &Workspace, kernel: &Path) {
    let entry = kernel_entry(kernel);
    eprintln!("xtask: QEMU waits for a debugger on localhost:1234. In another terminal run:");
    eprintln!(
        "    gdb {} -ex 'target remote localhost:1234'",
        ws.display(kernel)
    );
    match entry {
        Some((address, name)) => {
            eprintln!(
                "  then stop at the kernel's entry point{name} with a hardware breakpoint and continue:"
            );
            eprintln!("    (gdb) hbreak *0x{address:x}");
        }
        None => eprintln!(
            "  then set a hardware breakpoint (hbreak) on the kernel's entry point and continue:"
        ),
    }
    eprintln!("    (gdb) continue");
    eprintln!(
        "  Use hbreak, not break, before the kernel is running: the firmware and the loader start first and load\n  \
         the kernel later, so a software breakpoint written now would be overwritten."
    );
}

/// The kernel ELF's entry address and the symbol there, if readable.
fn kernel_entry(kernel: &Path) -> Option<(u64, String)> {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(kernel).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let entry = file.entry();
    let name = file
        .symbols()
        .find(|s| s.address() == entry && s.is_definition())
        .and_then(|s| {
            s.name()
                .ok()
                .map(|n| format!(" ({})", addr2line::demangle_auto(n.into(), None)))
        })
        .unwrap_or_default();
    Some((entry, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_lines() {
        assert!(is_crash_line("EXCEPTION #UD invalid opcode on cpu 0"));
        assert!(is_crash_line("kernel PANIC at src/main.rs:3"));
        assert!(is_crash_line("panicked at kernel/src/mm.rs:10:5"));
        assert!(!is_crash_line("smp: 4 of 4 CPUs online"));
        assert!(!is_crash_line("exception handlers installed"));
    }
}
