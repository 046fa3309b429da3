//! Symbolising kernel addresses printed on the serial console.
//!
//! The kernel prints backtrace frames as `bt #<n> 0x<16 hex digits>` and
//! faulting instruction pointers as `rip=0x<16 hex digits>`. For each such
//! address inside the kernel image, xtask looks up the function (demangled,
//! inlined frames included) and the source line in the DWARF of the kernel
//! ELF that was booted.

use addr2line::Loader;
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The kernel image is linked at -2 GiB; nothing below is kernel text.
pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;

fn address_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"\bbt #\d+ 0x([0-9a-fA-F]{16})\b|\brip=0x([0-9a-fA-F]{16})\b")
            .expect("valid regex")
    })
}

/// The kernel-image addresses a log line mentions, in order. The kernel
/// already prints each return address minus one (the call instruction), so
/// every address is looked up as printed.
pub fn extract(line: &str) -> Vec<u64> {
    address_regex()
        .captures_iter(line)
        .filter_map(|c| {
            let hex = c.get(1).or_else(|| c.get(2))?;
            let address = u64::from_str_radix(hex.as_str(), 16).ok()?;
            (address >= KERNEL_BASE).then_some(address)
        })
        .collect()
}

/// Looks addresses up in one kernel ELF, loading its DWARF on first use.
pub struct Symbolizer {
    elf: PathBuf,
    root: PathBuf,
    loader: OnceLock<Result<Loader, String>>,
}

impl Symbolizer {
    /// A symboliser for `elf`; source paths are shown relative to `root`.
    pub fn new(elf: &Path, root: &Path) -> Self {
        Self {
            elf: elf.to_path_buf(),
            root: root.to_path_buf(),
            loader: OnceLock::new(),
        }
    }

    /// The extra lines to print after `line`: one indented line per frame of
    /// each kernel address in it (nothing when it has none).
    pub fn annotate(&self, line: &str) -> Vec<String> {
        let mut out = Vec::new();
        for address in extract(line) {
            out.extend(self.describe(address));
        }
        out
    }

    fn describe(&self, address: u64) -> Vec<String> {
        let loader = match self
            .loader
            .get_or_init(|| Loader::new(&self.elf).map_err(|e| e.to_string()))
        {
            Ok(loader) => loader,
            Err(e) => {
                return vec![format!(
                    "      0x{address:016x}: no symbols ({}: {e})",
                    self.elf.display()
                )];
            }
        };
        // Frames come innermost first: an inlined callee, then its callers,
        // the real function last.
        let mut frames_text = Vec::new();
        if let Ok(mut frames) = loader.find_frames(address) {
            while let Ok(Some(frame)) = frames.next() {
                let function = frame
                    .function
                    .as_ref()
                    .and_then(|f| f.demangle().ok().map(|n| n.into_owned()))
                    .unwrap_or_else(|| "??".into());
                let location = frame.location.as_ref().map_or_else(
                    || "??".to_string(),
                    |l| {
                        let file = l.file.map_or("??".into(), |f| self.shorten(f));
                        match (l.line, l.column) {
                            (Some(line), Some(col)) if col > 0 => format!("{file}:{line}:{col}"),
                            (Some(line), _) => format!("{file}:{line}"),
                            (None, _) => file,
                        }
                    },
                );
                frames_text.push(format!("{function} at {location}"));
            }
        }
        if frames_text.is_empty() {
            frames_text.push(
                loader
                    .find_symbol(address)
                    .map(|s| addr2line::demangle_auto(s.into(), None).into_owned())
                    .unwrap_or_else(|| {
                        "?? (no symbol: not in the kernel ELF that was booted?)".into()
                    }),
            );
        }
        // Print the real function first, with what was inlined into it below.
        frames_text
            .into_iter()
            .rev()
            .enumerate()
            .map(|(i, text)| {
                if i == 0 {
                    format!("      0x{address:016x}: {text}")
                } else {
                    format!("        inlined: {text}")
                }
            })
            .collect()
    }

    fn shorten(&self, file: &str) -> String {
        Path::new(file)
            .strip_prefix(&self.root)
            .map_or_else(|_| file.to_string(), |p| p.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_backtrace_and_rip_addresses() {
        assert_eq!(
            extract("[    0.17 cpu0]   bt #0 0xffffffff80012345"),
            [0xffff_ffff_8001_2345]
        );
        let found = extract("  rip=0xFFFFFFFF80001000 rsp=0xffffc08000010d40 rflags=0x00010286");
        assert_eq!(found, [0xffff_ffff_8000_1000]);
        let found = extract("  bt #12 0xffffffff80000010  bt #13 0xffffffff80000020");
        assert_eq!(found, [0xffff_ffff_8000_0010, 0xffff_ffff_8000_0020]);
    }

    #[test]
    fn ignores_user_addresses_and_near_misses() {
        assert!(
            extract("rip=0x0000000000401000").is_empty(),
            "user space is not the kernel image"
        );
        assert!(
            extract("rip=0xffff800000001000").is_empty(),
            "the HHDM is not the kernel image"
        );
        assert!(extract("rip=0xffffffff8000100").is_empty(), "15 digits");
        assert!(extract("rip=0xffffffff800010000").is_empty(), "17 digits");
        assert!(extract("bt 0xffffffff80001000").is_empty());
        assert!(extract("grip=0xffffffff80001000").is_empty());
    }

    #[test]
    fn an_unreadable_elf_is_reported_not_fatal() {
        let s = Symbolizer::new(Path::new("/no/such/kernel"), Path::new("/"));
        let lines = s.annotate("bt #0 0xffffffff80001000");
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("no symbols"), "{lines:?}");
        assert!(s.annotate("nothing here").is_empty());
    }

    #[test]
    fn symbolises_against_a_real_elf() {
        // The test binary is an ELF with DWARF: find this very function in
        // its symbol table and look its address up.
        use object::{Object, ObjectSymbol};
        let exe = std::env::current_exe().unwrap();
        let data = std::fs::read(&exe).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let address = file
            .symbols()
            .find(|s| {
                s.name()
                    .is_ok_and(|n| n.contains("symbolises_against_a_real_elf"))
            })
            .expect("the test binary has a symbol table")
            .address();
        let s = Symbolizer::new(&exe, Path::new(env!("CARGO_MANIFEST_DIR")));
        let lines = s.describe(address);
        assert!(
            lines[0].starts_with(&format!("      0x{address:016x}: ")),
            "{lines:?}"
        );
        assert!(
            lines[0].contains("symbols::tests::symbolises_against_a_real_elf"),
            "{lines:?}"
        );
        assert!(lines[0].contains("src/symbols.rs:"), "{lines:?}");
    }
}
