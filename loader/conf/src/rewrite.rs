//! Editing a `limine.conf` while keeping the rest of the file as written.

use crate::{parse, Error};
use alloc::string::String;

/// Returns `text` with the command line of its boot entry (see
/// [`crate::Config::boot_entry`]) replaced by `cmdline`, inserting a
/// `cmdline:` option after the kernel path when the entry has none.
/// xtask uses this to boot the same configuration with a test's command line.
pub fn set_entry_cmdline(text: &str, cmdline: &str) -> Result<String, Error> {
    if cmdline.contains('\n') {
        return Err(Error::at(0, "a command line cannot span lines"));
    }
    let config = parse(text)?;
    let entry = config.boot_entry()?;
    let (target_line, replace) = match &entry.cmdline {
        Some((_, line)) => (*line, true),
        None => (entry.kernel_path.as_ref().map_or(entry.line, |(_, l)| *l), false),
    };
    let mut out = String::with_capacity(text.len() + cmdline.len() + 16);
    for (index, raw) in text.lines().enumerate() {
        let indent = &raw[..raw.len() - raw.trim_start().len()];
        if index + 1 == target_line {
            if replace {
                out.push_str(indent);
                out.push_str("cmdline: ");
                out.push_str(cmdline);
                out.push('\n');
                continue;
            }
            out.push_str(raw);
            out.push('\n');
            out.push_str(if indent.is_empty() { "    " } else { indent });
            out.push_str("cmdline: ");
            out.push_str(cmdline);
            out.push('\n');
            continue;
        }
        out.push_str(raw);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_an_existing_cmdline() {
        let text = "/A\n    protocol: limine\n    path: boot():/a\n    cmdline: old\n";
        let out = set_entry_cmdline(text, "test=boot").unwrap();
        assert_eq!(out, "/A\n    protocol: limine\n    path: boot():/a\n    cmdline: test=boot\n");
        assert_eq!(parse(&out).unwrap().boot_entry().unwrap().cmdline(), "test=boot");
    }

    #[test]
    fn inserts_after_the_kernel_path() {
        let text = "timeout: 0\n/A\n  protocol: limine\n  kernel_path: boot():/a\n  module_path: boot():/m\n";
        let out = set_entry_cmdline(text, "x=1").unwrap();
        let c = parse(&out).unwrap();
        assert_eq!(c.boot_entry().unwrap().cmdline(), "x=1");
        assert!(out.contains("  kernel_path: boot():/a\n  cmdline: x=1\n"));
        assert_eq!(c.boot_entry().unwrap().modules.len(), 1);
    }

    #[test]
    fn refuses_what_cannot_boot() {
        assert!(set_entry_cmdline("/A\n", "x").is_err());
        assert!(set_entry_cmdline("/A\nprotocol: limine\npath: boot():/a\n", "a\nb").is_err());
    }
}
