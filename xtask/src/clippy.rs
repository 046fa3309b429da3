//! `cargo xtask clippy`: clippy with `-D warnings` over every crate, each
//! for the target it runs on.

use crate::build::{BARE_METAL_PACKAGES, KERNEL_TARGET, LOADER_PACKAGES, LOADER_TARGET};
use crate::hostcheck;
use crate::workspace::{Workspace, cargo};
use anyhow::{Context, Result};
use std::process::Command;

/// One clippy invocation: a target (`None`: the host), its packages, and
/// whether test code is linted too.
fn invocations(ws: &Workspace) -> Vec<(Option<&'static str>, Vec<String>, bool)> {
    let owned = |list: &[&str]| list.iter().map(|s| (*s).to_string()).collect();
    vec![
        (None, ws.host_crates.clone(), true),
        (Some(KERNEL_TARGET), owned(BARE_METAL_PACKAGES), false),
        (Some(LOADER_TARGET), owned(LOADER_PACKAGES), false),
    ]
}

/// Runs the command; returns the process exit status.
pub fn run(ws: &Workspace) -> Result<i32> {
    hostcheck::ensure_targets(&ws.root)?;
    let mut failed = Vec::new();
    for (target, packages, all_targets) in invocations(ws) {
        let mut command = Command::new(cargo());
        command.current_dir(&ws.root).arg("clippy");
        if let Some(target) = target {
            command.args(["--target", target]);
        }
        for package in &packages {
            command.args(["-p", package]);
        }
        if all_targets {
            command.arg("--all-targets");
        }
        command.args(["--", "-D", "warnings"]);
        let shown = format!(
            "cargo clippy{} -p {}{} -- -D warnings",
            target.map(|t| format!(" --target {t}")).unwrap_or_default(),
            packages.join(" -p "),
            if all_targets { " --all-targets" } else { "" }
        );
        eprintln!("xtask: {shown}");
        let status = command
            .status()
            .with_context(|| format!("could not start `{shown}`"))?;
        if !status.success() {
            failed.push(shown);
        }
    }
    if failed.is_empty() {
        eprintln!("xtask: clippy found nothing");
        Ok(0)
    } else {
        eprintln!("xtask: clippy failed in:\n    {}", failed.join("\n    "));
        Ok(1)
    }
}
