//! Checks of the host before anything is built or booted: the Rust targets,
//! QEMU (≥ 8.0, the first release whose TCG emulates the x2APIC) and the
//! OVMF firmware.
//!
//! What is missing is installed where that is safe to do unasked: Rust
//! targets through rustup, and packages through APT when running as root on
//! Debian or Ubuntu. Everywhere else xtask prints the exact commands to run
//! and stops. No check ends in a bare "file not found".

use crate::apt::{self, OsRelease};
use crate::build::{KERNEL_TARGET, LOADER_TARGET};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The oldest QEMU that emulates the x2APIC under TCG.
pub const MIN_QEMU: (u32, u32) = (8, 0);

/// The OVMF firmware pair: code (read-only flash) and a variable store
/// template (copied for each run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    /// `OVMF_CODE*.fd`.
    pub code: PathBuf,
    /// `OVMF_VARS*.fd`, matching the code's flash size.
    pub vars: PathBuf,
}

/// A host ready to boot the kernel.
#[derive(Debug, Clone)]
pub struct Host {
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// Its version, as `major.minor.patch`.
    pub qemu_version: String,
    /// The firmware.
    pub firmware: Firmware,
}

/// Known OVMF locations: Debian/Ubuntu (4 MiB and 2 MiB flash), Fedora, Arch.
const OVMF_CANDIDATES: &[(&str, &str)] = &[
    (
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    (
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
    ),
    (
        "/usr/share/edk2/ovmf/OVMF_CODE.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
    (
        "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
        "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
    ),
    (
        "/usr/share/edk2-ovmf/x64/OVMF_CODE.fd",
        "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd",
    ),
];

/// Makes sure the two Rust targets are installed (needed to build).
pub fn ensure_targets(root: &Path) -> Result<()> {
    let missing = missing_targets(root)?;
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!("rustup target add {}", missing.join(" "));
    if which("rustup").is_none() {
        bail!(
            "the Rust target(s) {} are not installed and rustup is not available to add them.\n\
             Install Rust through rustup (https://rustup.rs), then run in {}:\n    {command}",
            missing.join(", "),
            root.display()
        );
    }
    eprintln!(
        "xtask: the Rust target(s) {} are missing; running `{command}`",
        missing.join(", ")
    );
    let status = Command::new("rustup")
        .current_dir(root)
        .args(["target", "add"])
        .args(&missing)
        .status()
        .context("could not start rustup")?;
    if !status.success() {
        bail!(
            "`{command}` failed ({status}); run it yourself in {} and try again",
            root.display()
        );
    }
    let still = missing_targets(root)?;
    if !still.is_empty() {
        bail!(
            "`{command}` ran but {} is still missing from the toolchain used in {}",
            still.join(", "),
            root.display()
        );
    }
    Ok(())
}

/// The targets whose standard library is absent from the toolchain that
/// builds in `root` (the one `rust-toolchain.toml` selects).
fn missing_targets(root: &Path) -> Result<Vec<&'static str>> {
    let output = Command::new("rustc")
        .current_dir(root)
        .args(["--print", "sysroot"])
        .output()
        .context("could not run `rustc --print sysroot`: is Rust installed (https://rustup.rs)?")?;
    if !output.status.success() {
        bail!(
            "`rustc --print sysroot` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    Ok([KERNEL_TARGET, LOADER_TARGET]
        .into_iter()
        .filter(|t| !sysroot.join("lib/rustlib").join(t).join("lib").is_dir())
        .collect())
}

/// Checks (and where allowed, installs) QEMU and OVMF.
pub fn ensure_qemu_and_firmware() -> Result<Host> {
    let os = OsRelease::load();
    let can_install =
        os.is_debian_like() && rustix::process::geteuid().is_root() && which("apt-get").is_some();
    let qemu = qemu_binary();

    let qemu_problem = match qemu_version(&qemu) {
        Ok(v) if v >= MIN_QEMU => None,
        Ok((major, minor)) => Some(format!(
            "{} is QEMU {major}.{minor}; this kernel needs QEMU ≥ {}.{} (older TCG does not emulate the x2APIC)",
            qemu.display(),
            MIN_QEMU.0,
            MIN_QEMU.1
        )),
        Err(e) => Some(format!("{e:#}")),
    };
    let firmware_problem = find_firmware().err();

    if qemu_problem.is_none() && firmware_problem.is_none() {
        return finish(qemu);
    }
    // What the user chose through the environment is theirs to fix; only
    // what is missing from the system's usual places is installed.
    let overridden = |name: &str| std::env::var_os(name).is_some();
    let install_qemu = qemu_problem.is_some() && !overridden("QEMU");
    let install_firmware =
        firmware_problem.is_some() && !overridden("OVMF_CODE") && !overridden("OVMF_VARS");
    let problems: Vec<String> = qemu_problem
        .into_iter()
        .chain(firmware_problem.map(|e| format!("{e:#}")))
        .collect();
    let steps = if install_qemu || install_firmware {
        install_steps(&os, install_qemu, install_firmware)
    } else {
        Vec::new()
    };
    if can_install
        && !steps.is_empty()
        && problems.len() == usize::from(install_qemu) + usize::from(install_firmware)
    {
        eprintln!("xtask: {}", problems.join("\nxtask: "));
        eprintln!(
            "xtask: installing what is missing (running as root on {}):",
            os.id
        );
        for step in &steps {
            step.run()?;
        }
        return finish(qemu_binary())
            .context("the packages were installed, but the check still fails");
    }
    let mut message = problems.join("\n");
    if !steps.is_empty() && os.is_debian_like() {
        message.push_str("\n\nTo fix it, run:\n");
        let sudo = !rustix::process::geteuid().is_root();
        for step in &steps {
            message.push_str(&format!("    {}\n", step.shown(sudo)));
        }
    } else if !steps.is_empty() {
        message.push_str(
            "\n\nInstall QEMU (≥ 8.0) and OVMF with your package manager, e.g.\n    \
             sudo dnf install qemu-system-x86 edk2-ovmf      (Fedora)\n    \
             sudo pacman -S qemu-system-x86 edk2-ovmf        (Arch)\n",
        );
    } else {
        message.push_str("\n\nFix or unset the variable named above.\n");
    }
    message.push_str("You can also point xtask at your own files with QEMU=/path/to/qemu-system-x86_64, OVMF_CODE=... and OVMF_VARS=....");
    bail!(message)
}

fn finish(qemu: PathBuf) -> Result<Host> {
    let (major, minor) = qemu_version(&qemu)?;
    if (major, minor) < MIN_QEMU {
        bail!(
            "{} is still QEMU {major}.{minor}; QEMU ≥ 8.0 is needed",
            qemu.display()
        );
    }
    Ok(Host {
        qemu,
        qemu_version: format!("{major}.{minor}"),
        firmware: find_firmware()?,
    })
}

/// One step of an installation, run or shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Write an APT source file.
    AddSource(PathBuf, String),
    /// Run a command (as root).
    Run(Vec<String>),
}

impl Step {
    fn run(&self) -> Result<()> {
        match self {
            Step::AddSource(path, text) => {
                eprintln!(
                    "xtask: + adding {} ({})",
                    path.display(),
                    text.lines().next().unwrap_or("")
                );
                apt::write_source(path, text)
            }
            Step::Run(argv) => {
                eprintln!("xtask: + {}", argv.join(" "));
                let status = Command::new(&argv[0])
                    .args(&argv[1..])
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status()
                    .with_context(|| format!("could not start `{}`", argv[0]))?;
                if !status.success() {
                    bail!("`{}` failed ({status})", argv.join(" "));
                }
                Ok(())
            }
        }
    }

    fn shown(&self, sudo: bool) -> String {
        let sudo = if sudo { "sudo " } else { "" };
        match self {
            Step::AddSource(path, text) => {
                format!(
                    "printf '{}' | {sudo}tee {}",
                    text.replace('\n', "\\n"),
                    path.display()
                )
            }
            Step::Run(argv) => format!("{sudo}{}", argv.join(" ")),
        }
    }
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// The APT steps that fix the problems found.
fn install_steps(os: &OsRelease, need_qemu: bool, need_firmware: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut from_backports = false;
    if need_qemu && os.is_bookworm() {
        if let Some((path, text)) =
            apt::backports_source(&apt::read_sources(), "bookworm", "bookworm-backports")
        {
            steps.push(Step::AddSource(path, text));
        }
        from_backports = true;
    }
    steps.push(Step::Run(words("apt-get update")));
    if need_qemu {
        steps.push(Step::Run(words(if from_backports {
            "apt-get install -y -t bookworm-backports qemu-system-x86"
        } else {
            "apt-get install -y qemu-system-x86"
        })));
    }
    if need_firmware {
        steps.push(Step::Run(words("apt-get install -y ovmf")));
    }
    steps
}

/// The QEMU binary: `$QEMU`, or `qemu-system-x86_64` from PATH.
fn qemu_binary() -> PathBuf {
    std::env::var_os("QEMU").map_or_else(|| PathBuf::from("qemu-system-x86_64"), PathBuf::from)
}

fn qemu_version(qemu: &Path) -> Result<(u32, u32)> {
    let output = Command::new(qemu)
        .arg("--version")
        .output()
        .with_context(|| match std::env::var_os("QEMU") {
            Some(_) => format!("QEMU={} cannot be run", qemu.display()),
            None => format!("QEMU is not installed: `{}` was not found", qemu.display()),
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_qemu_version(&text).with_context(|| {
        format!(
            "could not read the version of {} from: {}",
            qemu.display(),
            text.trim()
        )
    })
}

/// Reads `QEMU emulator version 8.2.2 (Debian ...)`.
pub fn parse_qemu_version(text: &str) -> Option<(u32, u32)> {
    let rest = &text[text.find("version ")? + "version ".len()..];
    let number = rest
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let mut parts = number.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Finds OVMF: `$OVMF_CODE` + `$OVMF_VARS`, or the first known pair present.
pub fn find_firmware() -> Result<Firmware> {
    let env = |name: &str| std::env::var_os(name).map(PathBuf::from);
    pick_firmware(env("OVMF_CODE"), env("OVMF_VARS"), |p| p.is_file())
}

fn pick_firmware(
    code: Option<PathBuf>,
    vars: Option<PathBuf>,
    exists: impl Fn(&Path) -> bool,
) -> Result<Firmware> {
    match (code, vars) {
        (Some(code), Some(vars)) => {
            for (name, path) in [("OVMF_CODE", &code), ("OVMF_VARS", &vars)] {
                if !exists(path) {
                    bail!("{name}={} does not name a file", path.display());
                }
            }
            Ok(Firmware { code, vars })
        }
        (Some(_), None) | (None, Some(_)) => {
            bail!("set both OVMF_CODE and OVMF_VARS (a matching pair of OVMF firmware files), or neither")
        }
        (None, None) => OVMF_CANDIDATES
            .iter()
            .map(|(c, v)| (Path::new(c), Path::new(v)))
            .find(|(c, v)| exists(c) && exists(v))
            .map(|(c, v)| Firmware { code: c.to_path_buf(), vars: v.to_path_buf() })
            .with_context(|| {
                format!(
                    "the OVMF UEFI firmware is not installed (looked for {}; or set OVMF_CODE and OVMF_VARS)",
                    OVMF_CANDIDATES.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
                )
            }),
    }
}

/// Finds a program on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_versions() {
        assert_eq!(
            parse_qemu_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\nCopyright"),
            Some((10, 0))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)"),
            Some((7, 2))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 8.2.2"),
            Some((8, 2))
        );
        assert_eq!(parse_qemu_version("something else"), None);
        assert!((7, 2) < MIN_QEMU && (8, 0) >= MIN_QEMU && (10, 0) >= MIN_QEMU);
    }

    #[test]
    fn firmware_search_order_and_overrides() {
        let present = |names: &'static [&'static str]| {
            move |p: &Path| names.iter().any(|n| Path::new(n) == p)
        };
        let fw = pick_firmware(
            None,
            None,
            present(&[
                "/usr/share/OVMF/OVMF_CODE.fd",
                "/usr/share/OVMF/OVMF_VARS.fd",
            ]),
        )
        .unwrap();
        assert_eq!(fw.code, Path::new("/usr/share/OVMF/OVMF_CODE.fd"));
        let fw = pick_firmware(
            None,
            None,
            present(&[
                "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
                "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
            ]),
        )
        .unwrap();
        assert_eq!(fw.vars, Path::new("/usr/share/edk2/x64/OVMF_VARS.4m.fd"));
        // A code file without its vars does not count.
        let err =
            pick_firmware(None, None, present(&["/usr/share/OVMF/OVMF_CODE_4M.fd"])).unwrap_err();
        assert!(
            err.to_string()
                .contains("OVMF UEFI firmware is not installed"),
            "{err}"
        );
        let fw =
            pick_firmware(Some("/a".into()), Some("/b".into()), present(&["/a", "/b"])).unwrap();
        assert_eq!(
            (fw.code.as_path(), fw.vars.as_path()),
            (Path::new("/a"), Path::new("/b"))
        );
        assert!(
            pick_firmware(Some("/a".into()), Some("/b".into()), present(&["/a"]))
                .unwrap_err()
                .to_string()
                .contains("OVMF_VARS=/b")
        );
        assert!(pick_firmware(Some("/a".into()), None, present(&["/a"])).is_err());
    }

    #[test]
    fn install_steps_per_system() {
        let bookworm = OsRelease::parse("ID=debian\nVERSION_CODENAME=bookworm\n");
        let steps = install_steps(&bookworm, true, true);
        let shown: Vec<String> = steps.iter().map(|s| s.shown(false)).collect();
        assert!(
            shown
                .iter()
                .any(|s| s == "apt-get install -y -t bookworm-backports qemu-system-x86"),
            "{shown:?}"
        );
        assert!(shown.iter().any(|s| s == "apt-get install -y ovmf"));
        let noble = OsRelease::parse("ID=ubuntu\nVERSION_CODENAME=noble\n");
        let shown: Vec<String> = install_steps(&noble, true, false)
            .iter()
            .map(|s| s.shown(true))
            .collect();
        assert_eq!(
            shown,
            [
                "sudo apt-get update",
                "sudo apt-get install -y qemu-system-x86"
            ]
        );
    }
}
