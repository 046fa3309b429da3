//! Where things are: the workspace root, the real target directory (which
//! `CARGO_TARGET_DIR` or `build.target-dir` may move) and the host crates,
//! all as `cargo metadata` reports them.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace as cargo sees it.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The directory holding the root `Cargo.toml` and `limine.conf`.
    pub root: PathBuf,
    /// Cargo's target directory.
    pub target_dir: PathBuf,
    /// Names of the `default-members` packages: the crates that build and
    /// test on the host.
    pub host_crates: Vec<String>,
}

#[derive(Deserialize)]
struct Metadata {
    workspace_root: PathBuf,
    target_directory: PathBuf,
    packages: Vec<Package>,
    #[serde(default)]
    workspace_default_members: Vec<String>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    id: String,
}

/// Host crates beyond `default-members` whose unit tests `cargo xtask test`
/// runs too. Empty today; a bare-metal crate that grows host-testable logic
/// behind `cfg(test)` is listed here.
pub const EXTRA_HOST_CRATES: &[&str] = &[];

impl Workspace {
    /// Asks cargo about the workspace this xtask belongs to.
    pub fn discover() -> Result<Self> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("Cargo.toml");
        let output = Command::new(cargo())
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--manifest-path",
            ])
            .arg(&manifest)
            .output()
            .context("could not run `cargo metadata` (is cargo on PATH?)")?;
        if !output.status.success() {
            bail!(
                "`cargo metadata` failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Self::from_metadata(&output.stdout)
    }

    fn from_metadata(json: &[u8]) -> Result<Self> {
        let meta: Metadata = serde_json::from_slice(json)
            .context("could not read the output of `cargo metadata`")?;
        let mut host_crates: Vec<String> = meta
            .packages
            .iter()
            .filter(|p| meta.workspace_default_members.contains(&p.id))
            .map(|p| p.name.clone())
            .collect();
        for extra in EXTRA_HOST_CRATES {
            if !host_crates.iter().any(|c| c == extra) {
                host_crates.push((*extra).to_string());
            }
        }
        Ok(Self {
            root: meta.workspace_root,
            target_dir: meta.target_directory,
            host_crates,
        })
    }

    /// `limine.conf` at the workspace root.
    pub fn limine_conf(&self) -> PathBuf {
        self.root.join("limine.conf")
    }

    /// The `tests/` directory holding the QEMU scenarios.
    pub fn tests_dir(&self) -> PathBuf {
        self.root.join("tests")
    }

    /// A scratch directory for one boot, `target/xtask/<kind>/<name>-<pid>`:
    /// private to this process, so two xtask runs never share a boot drive.
    pub fn run_dir(&self, kind: &str, name: &str) -> RunDir {
        RunDir(
            self.target_dir
                .join("xtask")
                .join(kind)
                .join(format!("{name}-{}", std::process::id())),
        )
    }

    /// A path shown relative to the workspace root when it lies inside it.
    pub fn display<'a>(&self, path: &'a Path) -> std::path::Display<'a> {
        path.strip_prefix(&self.root).unwrap_or(path).display()
    }
}

/// A boot's scratch directory (boot drive, firmware variables), removed
/// when dropped: the log is what is kept.
#[derive(Debug)]
pub struct RunDir(PathBuf);

impl RunDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The cargo that started xtask (`$CARGO`), or `cargo` from PATH.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_default_members_and_target_dir() {
        let json = br#"{
            "workspace_root": "/w", "target_directory": "/t",
            "packages": [
                {"name": "abi", "id": "path+file:///w/abi#0.1.0"},
                {"name": "kernel", "id": "path+file:///w/kernel#0.1.0"},
                {"name": "xtask", "id": "path+file:///w/xtask#0.1.0"}
            ],
            "workspace_default_members": ["path+file:///w/abi#0.1.0", "path+file:///w/xtask#0.1.0"],
            "version": 1
        }"#;
        let ws = Workspace::from_metadata(json).unwrap();
        assert_eq!(ws.target_dir, Path::new("/t"));
        assert_eq!(ws.host_crates, ["abi", "xtask"]);
        assert_eq!(
            ws.display(Path::new("/w/tests/a.toml")).to_string(),
            "tests/a.toml"
        );
        assert_eq!(
            ws.display(Path::new("/elsewhere")).to_string(),
            "/elsewhere"
        );
    }
}
