//! A parser for `limine.conf`, the boot menu file of the Limine boot loader.
//!
//! The same file boots the kernel under the project's own loader (`loader/`)
//! and under a real Limine release, so both must read it the same way. This
//! crate is that one reading: the loader uses it at boot (it is `no_std` with
//! `alloc`), and xtask uses it on the host to learn which files the boot drive
//! must carry and to derive per-test configurations.
//!
//! It follows the Limine 8.x format (`../shared/reference/limine-config-v8.md`)
//! for everything the project uses: global options (`timeout`, `serial`,
//! `default_entry`, `verbose`, ...), menu entries and sub-entries (`/`, `//`,
//! `/+`), local options, the kernel path under both spellings (`path:` from
//! Limine 9, `kernel_path:` from 8.x), `cmdline:`/`kernel_cmdline:`,
//! `module_path:` with `module_cmdline:`, `${MACRO}` definitions and uses, and
//! Limine paths (`boot():/...`). Options it does not interpret are kept, so a
//! caller can warn about them instead of silently losing them.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

mod parse;
mod path;
mod rewrite;

pub use parse::{parse, Config, Entry, Module, Timeout};
pub use path::{LiminePath, Resource};
pub use rewrite::set_entry_cmdline;

use alloc::string::String;
use core::fmt;

/// Why a `limine.conf` could not be used. Every error names the line (1-based)
/// it was found on, so a user can fix the file without guessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// 1-based line number, or 0 when the error concerns the file as a whole.
    pub line: usize,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl Error {
    pub(crate) fn at(line: usize, message: impl Into<String>) -> Self {
        Self { line, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "limine.conf: {}", self.message)
        } else {
            write!(f, "limine.conf line {}: {}", self.line, self.message)
        }
    }
}

impl core::error::Error for Error {}
