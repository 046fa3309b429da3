//! The boot drive: a directory QEMU presents to the firmware as a FAT disk.
//!
//! Layout (a fixed contract with the loader and with Limine):
//!
//! ```text
//! EFI/BOOT/BOOTX64.EFI   the loader (ours, or Limine's)
//! limine.conf            the boot menu
//! boot/kernel ...        every file the boot entry names, at its path
//! ```
//!
//! Which files go on the drive is read from limine.conf itself (through the
//! `limine-conf` crate): the boot entry's kernel and each of its modules,
//! taken from the build output with the same file name.

use crate::cli::Bootloader;
use anyhow::{Context, Result, bail};
use limine_conf::Resource;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Where the loader sits on the drive.
pub const EFI_PATH: &str = "EFI/BOOT/BOOTX64.EFI";

/// One file to put on the drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Path on the drive, relative to its root.
    pub dest: PathBuf,
    /// The built file to copy there.
    pub source: PathBuf,
}

/// Works out which built file goes where for the boot entry of `conf_text`.
/// `conf_label` names the file in messages; files listed in `missing_ok`
/// (by file name) are left off the drive when nothing was built for them.
pub fn plan(
    conf_text: &str,
    conf_label: &str,
    executables: &BTreeMap<String, PathBuf>,
    missing_ok: &[String],
) -> Result<Vec<Placement>> {
    let config =
        limine_conf::parse(conf_text).with_context(|| format!("{conf_label} cannot be read"))?;
    let entry = config
        .boot_entry()
        .with_context(|| format!("{conf_label} has no usable boot entry"))?;
    let mut wanted = Vec::new();
    if let Some((path, line)) = &entry.kernel_path {
        wanted.push((path, *line, "kernel"));
    }
    for module in &entry.modules {
        wanted.push((&module.path, module.line, "module"));
    }
    let mut placements = Vec::new();
    for (path, line, what) in wanted {
        let shown = format!("{conf_label} line {line}: {what} `{}`", path.path);
        if !matches!(path.resource, Resource::Boot(_)) {
            bail!("{shown} is not on the boot drive; xtask only provides `boot():/...` paths");
        }
        let relative = Path::new(path.path.trim_start_matches('/'));
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            bail!("{shown}: the path must not contain `.` or `..`");
        }
        let name = path.file_name();
        match executables.get(name) {
            Some(source) => placements.push(Placement {
                dest: relative.to_path_buf(),
                source: source.clone(),
            }),
            None if missing_ok.iter().any(|m| m == name) => {}
            None => bail!(
                "{shown} needs a built file named `{name}`, but the build produced no such file (it produced: {}). \
                 Add a binary named `{name}` to a bare-metal crate, or fix the path in {conf_label}",
                executables.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }
    Ok(placements)
}

/// Fills `dir` (emptied first) with the loader at [`EFI_PATH`], the
/// configuration as `limine.conf`, and the planned files.
pub fn assemble(dir: &Path, efi: &Path, conf_text: &str, placements: &[Placement]) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir)
            .with_context(|| format!("could not clear the old boot directory {}", dir.display()))?;
    }
    copy(efi, &dir.join(EFI_PATH))?;
    fs::write(dir.join("limine.conf"), conf_text)
        .with_context(|| format!("could not write limine.conf into {}", dir.display()))?;
    for placement in placements {
        copy(&placement.source, &dir.join(&placement.dest))?;
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("could not create {}", parent.display()))?;
    }
    fs::copy(from, to)
        .with_context(|| format!("could not copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Where to get Limine from, for error messages.
const LIMINE_HELP: &str = "Limine publishes ready-built binaries on the `v<N>.x-binary` branches of its repository, \
for example:\n    git clone https://github.com/limine-bootloader/limine.git --branch=v8.x-binary --depth=1 limine-bin\n\
then pass `--bootloader limine --limine-dir limine-bin` (any release from 8.x on reads this limine.conf)";

/// Checks the boot loader options before anything is built.
pub fn check_loader_options(bootloader: Bootloader, limine_dir: Option<&Path>) -> Result<()> {
    limine_efi(bootloader, limine_dir).map(|_| ())
}

/// The UEFI application to boot: our `loader.efi` (`built_loader`), or
/// `BOOTX64.EFI` from a Limine binary release in `limine_dir`.
pub fn loader_efi(
    bootloader: Bootloader,
    limine_dir: Option<&Path>,
    built_loader: Option<&Path>,
) -> Result<PathBuf> {
    match limine_efi(bootloader, limine_dir)? {
        Some(efi) => Ok(efi),
        None => built_loader
            .map(Path::to_path_buf)
            .context("the loader was not built"),
    }
}

/// `Some(BOOTX64.EFI)` for Limine, `None` for the built-in loader.
fn limine_efi(bootloader: Bootloader, limine_dir: Option<&Path>) -> Result<Option<PathBuf>> {
    match (bootloader, limine_dir) {
        (Bootloader::Builtin, None) => Ok(None),
        (Bootloader::Builtin, Some(_)) => {
            bail!("--limine-dir only makes sense with --bootloader limine")
        }
        (Bootloader::Limine, None) => {
            bail!(
                "--bootloader limine needs --limine-dir DIR, a directory holding Limine's BOOTX64.EFI.\n{LIMINE_HELP}"
            )
        }
        (Bootloader::Limine, Some(dir)) => {
            if !dir.is_dir() {
                bail!(
                    "--limine-dir {}: no such directory.\n{LIMINE_HELP}",
                    dir.display()
                );
            }
            let efi = dir.join("BOOTX64.EFI");
            if !efi.is_file() {
                bail!(
                    "--limine-dir {}: the directory has no BOOTX64.EFI (Limine's UEFI application for x86-64).\n{LIMINE_HELP}",
                    dir.display()
                );
            }
            Ok(Some(efi))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(names: &[&str]) -> BTreeMap<String, PathBuf> {
        names
            .iter()
            .map(|n| (n.to_string(), PathBuf::from(format!("/t/{n}"))))
            .collect()
    }

    const CONF: &str = "timeout: 0\n/K\n    protocol: limine\n    kernel_path: boot():/boot/kernel\n    module_path: boot():/boot/mm-server\n";

    #[test]
    fn places_kernel_and_modules_by_file_name() {
        let plan = plan(
            CONF,
            "limine.conf",
            &built(&["kernel", "mm-server", "init"]),
            &[],
        )
        .unwrap();
        assert_eq!(
            plan,
            [
                Placement {
                    dest: "boot/kernel".into(),
                    source: "/t/kernel".into()
                },
                Placement {
                    dest: "boot/mm-server".into(),
                    source: "/t/mm-server".into()
                },
            ]
        );
    }

    #[test]
    fn a_missing_build_output_names_both_sides() {
        let err = plan(CONF, "limine.conf", &built(&["kernel"]), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("boot/mm-server"), "{err}");
        assert!(err.contains("produced: kernel"), "{err}");
    }

    #[test]
    fn missing_ok_leaves_a_file_off() {
        let conf = "/K\nprotocol: limine\nkernel_path: boot():/boot/no-such-kernel\n";
        let plan = plan(
            conf,
            "x.conf",
            &built(&["kernel"]),
            &["no-such-kernel".into()],
        )
        .unwrap();
        assert!(plan.is_empty());
    }

    #[test]
    fn refuses_other_resources_and_parent_dirs() {
        let conf = "/K\nprotocol: limine\nkernel_path: hdd(1:1):/kernel\n";
        assert!(
            plan(conf, "c", &built(&["kernel"]), &[])
                .unwrap_err()
                .to_string()
                .contains("boot():")
        );
        let conf = "/K\nprotocol: limine\nkernel_path: boot():/../kernel\n";
        assert!(
            plan(conf, "c", &built(&["kernel"]), &[])
                .unwrap_err()
                .to_string()
                .contains("..")
        );
        let err = plan("/K\n", "c", &built(&["kernel"]), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("protocol"), "{err:#}");
    }

    #[test]
    fn assembles_the_layout() {
        let dir = std::env::temp_dir().join(format!("xtask-bootdir-test-{}", std::process::id()));
        let src = dir.join("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("loader.efi"), b"efi").unwrap();
        fs::write(src.join("kernel"), b"elf").unwrap();
        let out = dir.join("boot");
        fs::create_dir_all(out.join("stale")).unwrap();
        let placements = [Placement {
            dest: "boot/kernel".into(),
            source: src.join("kernel"),
        }];
        assemble(&out, &src.join("loader.efi"), CONF, &placements).unwrap();
        assert_eq!(fs::read(out.join(EFI_PATH)).unwrap(), b"efi");
        assert_eq!(fs::read(out.join("boot/kernel")).unwrap(), b"elf");
        assert_eq!(fs::read_to_string(out.join("limine.conf")).unwrap(), CONF);
        assert!(!out.join("stale").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn limine_dir_errors_explain_where_to_get_limine() {
        let built = Some(Path::new("/t/loader.efi"));
        assert_eq!(
            loader_efi(Bootloader::Builtin, None, built).unwrap(),
            Path::new("/t/loader.efi")
        );
        assert!(check_loader_options(Bootloader::Builtin, Some(Path::new("/x"))).is_err());
        let err = loader_efi(Bootloader::Limine, None, built)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--limine-dir") && err.contains("binary"),
            "{err}"
        );
        let err = loader_efi(Bootloader::Limine, Some(Path::new("/no/such/dir")), built)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no such directory") && err.contains("git clone"),
            "{err}"
        );
        let empty = std::env::temp_dir();
        let err = loader_efi(Bootloader::Limine, Some(&empty), built)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no BOOTX64.EFI"), "{err}");
    }
}
