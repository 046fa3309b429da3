//! Getting one boot ready: a run directory with the boot drive and a private
//! copy of the OVMF variable store, and the QEMU command that boots it.
//! `run`, `test` and `bench` all boot through here.

use crate::bootdir;
use crate::build::Artifacts;
use crate::hostcheck::Host;
use crate::qemu::Machine;
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What to boot.
#[derive(Debug, Clone, Default)]
pub struct BootSpec<'a> {
    /// An alternative limine.conf; `None` boots the one at the root.
    pub config: Option<&'a Path>,
    /// A kernel command line to set in the boot entry; `None` keeps the file's.
    pub cmdline: Option<&'a str>,
    /// Files the configuration may name although nothing builds them.
    pub missing_ok: &'a [String],
}

/// A run directory ready to boot.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `<run dir>/boot`, the FAT drive.
    pub boot_dir: PathBuf,
    /// `<run dir>/OVMF_VARS.fd`.
    pub vars: PathBuf,
}

/// Fills `run_dir` for one boot of `spec`, with `efi` as the boot loader.
pub fn prepare(
    ws: &Workspace,
    host: &Host,
    artifacts: &Artifacts,
    efi: &Path,
    spec: &BootSpec<'_>,
    run_dir: &Path,
) -> Result<Prepared> {
    let conf_path = spec
        .config
        .map_or_else(|| ws.limine_conf(), Path::to_path_buf);
    let label = ws.display(&conf_path).to_string();
    let mut text = fs::read_to_string(&conf_path)
        .with_context(|| format!("could not read {}", conf_path.display()))?;
    if let Some(cmdline) = spec.cmdline {
        text = limine_conf::set_entry_cmdline(&text, cmdline).with_context(|| {
            format!("could not set the kernel command line `{cmdline}` in {label}")
        })?;
    }
    let placements = bootdir::plan(&text, &label, &artifacts.executables, spec.missing_ok)?;
    let boot_dir = run_dir.join("boot");
    bootdir::assemble(&boot_dir, efi, &text, &placements)?;
    let vars = run_dir.join("OVMF_VARS.fd");
    fs::copy(&host.firmware.vars, &vars).with_context(|| {
        format!(
            "could not copy the OVMF variable store {} to {}",
            host.firmware.vars.display(),
            vars.display()
        )
    })?;
    // The template may be read-only; QEMU must be able to write the copy.
    let mut permissions = fs::metadata(&vars)?.permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    fs::set_permissions(&vars, permissions)
        .with_context(|| format!("could not make {} writable", vars.display()))?;
    Ok(Prepared { boot_dir, vars })
}

/// Options of the machine beyond the boot drive.
#[derive(Debug, Clone, Copy)]
pub struct MachineOptions<'a> {
    /// CPUs.
    pub smp: u32,
    /// Memory, QEMU notation.
    pub memory: &'a str,
    /// Serial and monitor on the terminal.
    pub interactive: bool,
    /// Wait for gdb.
    pub gdb: bool,
    /// Extra QEMU arguments.
    pub extra: &'a [String],
}

/// The QEMU command for a prepared run, and the same as one shell line.
pub fn command(host: &Host, prepared: &Prepared, options: MachineOptions<'_>) -> (Command, String) {
    let machine = Machine {
        smp: options.smp,
        memory: options.memory,
        ovmf_code: &host.firmware.code,
        ovmf_vars: &prepared.vars,
        boot_dir: &prepared.boot_dir,
        monitor_on_stdio: options.interactive,
        gdb: options.gdb,
        extra: options.extra,
    };
    let args = machine.args();
    let shown = std::iter::once(host.qemu.display().to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = Command::new(&host.qemu);
    command.args(&args);
    (command, shown)
}

/// Quotes `text` for a POSIX shell when it needs it.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,:/+@%".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("fat:rw:/a/b"), "fat:rw:/a/b");
        assert_eq!(
            shell_quote("test=page-fault bench=all"),
            "'test=page-fault bench=all'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
