//! Finding and reading `limine.conf`, with errors that show the offending
//! line.
//!
//! The file is looked for where Limine looks on a UEFI system, on the volume
//! the loader was loaded from. Parsing is the shared `limine-conf` crate, so
//! this loader and a real Limine read the file the same way.

use crate::fail::{BootError, Result};
use crate::fs::Volume;
use alloc::format;
use alloc::string::String;
use limine_conf::{Config, LiminePath, Resource};
use uefi::boot::MemoryType;

/// Where Limine looks for its configuration, in order.
pub const SEARCH_PATHS: [&str; 5] =
    ["/limine.conf", "/limine/limine.conf", "/boot/limine.conf", "/boot/limine/limine.conf", "/EFI/BOOT/limine.conf"];

/// The configuration file that was found.
pub struct Found {
    /// Where it was.
    pub path: &'static str,
    /// Its contents, parsed.
    pub config: Config,
    /// Its text, for showing lines in later errors.
    pub text: String,
}

impl Found {
    /// An error about line `line` of the file, showing that line.
    pub fn error_at(&self, line: usize, message: &str) -> BootError {
        error_at(self.path, &self.text, line, message)
    }
}

fn error_at(path: &str, text: &str, line: usize, message: &str) -> BootError {
    if line == 0 {
        return BootError::new(path, message);
    }
    let error = BootError::new(path, format!("line {line}: {message}"));
    match text.lines().nth(line - 1) {
        Some(content) => error.with_detail(format!("  {line} | {}", content.trim_end())),
        None => error,
    }
}

/// Finds, reads and parses the configuration file.
pub fn load(volume: &mut Volume) -> Result<Found> {
    for path in SEARCH_PATHS {
        let Some(file) = volume.read(path, MemoryType::LOADER_DATA, path)? else { continue };
        let text = core::str::from_utf8(file.data)
            .map_err(|e| BootError::new(path, format!("not UTF-8 text (bad byte at offset {})", e.valid_up_to())))?;
        let text = String::from(text.strip_prefix('\u{feff}').unwrap_or(text));
        let config = limine_conf::parse(&text).map_err(|e| error_at(path, &text, e.line, &e.message))?;
        return Ok(Found { path, config, text });
    }
    Err(BootError::new(
        "limine.conf",
        format!("no configuration file on the boot volume (looked for {})", SEARCH_PATHS.join(", ")),
    ))
}

/// The path inside the loader's volume that `path` names, or why this loader
/// cannot reach it.
pub fn volume_path(path: &LiminePath) -> Result<&str> {
    match path.resource {
        Resource::Boot(None) => Ok(path.path.as_str()),
        Resource::Boot(Some(n)) => Err(BootError::new(
            format!("{path}"),
            format!(
                "`boot({n})` is not supported by this loader; use `boot()` (the volume holding the loader and limine.conf)"
            ),
        )),
        ref other => Err(BootError::new(
            format!("{path}"),
            format!(
                "the `{}` resource is not supported by this loader; only `boot():` paths (the loader's own volume) are",
                resource_name(other)
            ),
        )),
    }
}

fn resource_name(resource: &Resource) -> &'static str {
    match resource {
        Resource::Boot(_) => "boot",
        Resource::Hdd { .. } => "hdd",
        Resource::Odd { .. } => "odd",
        Resource::Guid(_) => "guid",
        Resource::FsLabel(_) => "fslabel",
        Resource::Tftp(_) => "tftp",
    }
}
