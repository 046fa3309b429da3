//! `cargo xtask build`: the bare-metal crates for `x86_64-unknown-none`, the
//! loader for `x86_64-unknown-uefi`.
//!
//! The paths of the produced files are taken from cargo's own JSON messages
//! rather than guessed, so they are right wherever the target directory is
//! and however many user programs the workspace grows.

use crate::workspace::{Workspace, cargo};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Target of the kernel, the memory server and user programs.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";
/// Target of the loader.
pub const LOADER_TARGET: &str = "x86_64-unknown-uefi";
/// Packages built for [`KERNEL_TARGET`].
pub const BARE_METAL_PACKAGES: &[&str] = &["kernel", "mm-server", "user"];
/// Packages built for [`LOADER_TARGET`].
pub const LOADER_PACKAGES: &[&str] = &["loader"];

/// What `build` produced.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// `true` for the release profile.
    pub release: bool,
    /// Executables built for the kernel target, by file name (`kernel`,
    /// `mm-server`, `init`, ...): the files limine.conf can name.
    pub executables: BTreeMap<String, PathBuf>,
    /// The loader, `loader.efi` (`None` when it was not asked for).
    pub loader: Option<PathBuf>,
}

impl Artifacts {
    /// The kernel ELF (with debug info, used for symbols and gdb).
    pub fn kernel(&self) -> Option<&PathBuf> {
        self.executables.get("kernel")
    }

    /// The profile's name as cargo writes it in paths.
    pub fn profile(&self) -> &'static str {
        if self.release { "release" } else { "debug" }
    }
}

/// Builds everything that boots, with the given profile; the loader only when
/// `with_loader` (booting through Limine does not need it).
pub fn build(ws: &Workspace, release: bool, with_loader: bool) -> Result<Artifacts> {
    let executables = cargo_build(ws, KERNEL_TARGET, BARE_METAL_PACKAGES, release)?;
    if !executables.contains_key("kernel") {
        bail!(
            "building for {KERNEL_TARGET} produced no `kernel` executable (built: {}); the kernel crate must keep its `[[bin]] name = \"kernel\"`",
            names(&executables)
        );
    }
    if !with_loader {
        return Ok(Artifacts {
            release,
            executables,
            loader: None,
        });
    }
    let loaders = cargo_build(ws, LOADER_TARGET, LOADER_PACKAGES, release)?;
    let loader = loaders.get("loader.efi").cloned().with_context(|| {
        format!(
            "building for {LOADER_TARGET} produced no `loader.efi` (built: {})",
            names(&loaders)
        )
    })?;
    Ok(Artifacts {
        release,
        executables,
        loader: Some(loader),
    })
}

fn names(map: &BTreeMap<String, PathBuf>) -> String {
    if map.is_empty() {
        return "nothing".into();
    }
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    executable: Option<PathBuf>,
}

/// Runs one `cargo build` and returns its executables by file name.
fn cargo_build(
    ws: &Workspace,
    target: &str,
    packages: &[&str],
    release: bool,
) -> Result<BTreeMap<String, PathBuf>> {
    let mut command = Command::new(cargo());
    command.current_dir(&ws.root).args([
        "build",
        "--message-format=json-render-diagnostics",
        "--target",
        target,
    ]);
    for package in packages {
        command.args(["-p", package]);
    }
    if release {
        command.arg("--release");
    }
    let shown = format!(
        "cargo build --target {target} -p {}{}",
        packages.join(" -p "),
        if release { " --release" } else { "" }
    );
    eprintln!("xtask: {shown}");
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let stdout = child
        .stdout
        .take()
        .context("cargo's output was not captured")?;
    let executables = executables_from(BufReader::new(stdout))?;
    let status = child
        .wait()
        .with_context(|| format!("`{shown}` did not finish"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status}); the compiler's messages are above");
    }
    Ok(executables)
}

/// Reads cargo's JSON messages and collects `executable` paths.
fn executables_from(reader: impl BufRead) -> Result<BTreeMap<String, PathBuf>> {
    let mut executables = BTreeMap::new();
    for line in reader.lines() {
        let line = line.context("could not read cargo's output")?;
        let Ok(message) = serde_json::from_str::<Message>(&line) else {
            continue;
        };
        if message.reason != "compiler-artifact" {
            continue;
        }
        if let Some(path) = message.executable
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            executables.insert(name.to_string(), path.clone());
        }
    }
    Ok(executables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_executables_from_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","package_id":"x","executable":null,"filenames":["/t/libspin.rlib"]}
{"reason":"compiler-artifact","executable":"/t/x86_64-unknown-none/debug/kernel","fresh":true}
not json at all
{"reason":"compiler-artifact","executable":"/t/x86_64-unknown-none/debug/mm-server"}
{"reason":"build-finished","success":true}"#;
        let found = executables_from(messages.as_bytes()).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            found["kernel"],
            PathBuf::from("/t/x86_64-unknown-none/debug/kernel")
        );
        assert!(found.contains_key("mm-server"));
    }
}
