//! `cargo xtask`: builds the kernel, loader and user programs, boots them in
//! QEMU, runs the test scenarios and the benchmarks.
//!
//! Exit status: 0 on success; for `run`, 1 when the kernel reported failure
//! or crashed, 2 when the guest powered off without a verdict, 3 when QEMU
//! itself failed, 124 when `--timeout` expired; 1 for a failed test or
//! benchmark run; 2 for a usage error (from clap).

#![deny(unsafe_code)]

mod ansi;
mod apt;
mod bench;
mod bootdir;
mod build;
mod cli;
mod clippy;
mod expect;
mod hostcheck;
mod launch;
mod qemu;
mod run_cmd;
mod scenario;
mod symbols;
mod test_cmd;
mod workspace;

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse_from(cli::preprocess(std::env::args_os()));
    let result = workspace::Workspace::discover().and_then(|ws| match &cli.command {
        Command::Build(args) => build::build(&ws, args.release, true).map(|artifacts| {
            let loader = artifacts.loader.iter().map(|l| ("loader.efi", l));
            for (name, path) in artifacts
                .executables
                .iter()
                .map(|(n, p)| (n.as_str(), p))
                .chain(loader)
            {
                println!("{name:<12} {}", ws.display(path));
            }
            0
        }),
        Command::Run(args) => run_cmd::run(&ws, args),
        Command::Test(args) => test_cmd::run(&ws, args),
        Command::Bench(args) => bench::run(&ws, args),
        Command::Clippy => clippy::run(&ws),
    });
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
