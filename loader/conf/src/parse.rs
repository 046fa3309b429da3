//! Reading `limine.conf` into a [`Config`].

use crate::{Error, LiminePath};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::format;

/// How long the menu waits before booting the default entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// Boot after this many seconds (0: at once).
    Seconds(u64),
    /// `timeout: no`: wait for the user.
    Never,
}

/// A module of a Limine-protocol entry (`module_path:` + `module_cmdline:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Where the module file is.
    pub path: LiminePath,
    /// Its command line (empty when none was given).
    pub cmdline: String,
    /// Line of the `module_path:` option.
    pub line: usize,
}

/// A menu entry and its local options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The title shown in the menu.
    pub title: String,
    /// 1 for `/title`, 2 for `//title`, ...
    pub depth: usize,
    /// `true` when the entry is a directory holding sub-entries.
    pub is_directory: bool,
    /// Line of the title.
    pub line: usize,
    /// `protocol:` (lower-cased), if given.
    pub protocol: Option<String>,
    /// `path:` or `kernel_path:`, with the line it is on.
    pub kernel_path: Option<(LiminePath, usize)>,
    /// `cmdline:` or `kernel_cmdline:`, with the line it is on.
    pub cmdline: Option<(String, usize)>,
    /// `module_path:` options in file order.
    pub modules: Vec<Module>,
    /// Other local options (lower-cased name, value, line), kept so that a
    /// caller can report what it does not support.
    pub other: Vec<(String, String, usize)>,
}

impl Entry {
    /// The kernel command line, empty when the entry gives none.
    pub fn cmdline(&self) -> &str {
        self.cmdline.as_ref().map_or("", |(c, _)| c.as_str())
    }
}

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `timeout:` (Limine's default is 5 seconds).
    pub timeout: Timeout,
    /// `serial: yes`: the boot loader also talks on the serial port.
    pub serial: bool,
    /// `verbose: yes`: print more while booting.
    pub verbose: bool,
    /// `default_entry:`, 1-based, counting bootable (non-directory) entries.
    pub default_entry: usize,
    /// Every menu entry, directories included, in file order.
    pub entries: Vec<Entry>,
    /// Global options this crate does not interpret (name, value, line).
    pub other_globals: Vec<(String, String, usize)>,
}

impl Config {
    /// The entry booted without user interaction, checked to be bootable over
    /// the Limine protocol: it must say `protocol: limine` and name a kernel.
    pub fn boot_entry(&self) -> Result<&Entry, Error> {
        let bootable: Vec<&Entry> = self.entries.iter().filter(|e| !e.is_directory).collect();
        if bootable.is_empty() {
            return Err(Error::at(0, "no boot entry: add a line like `/My kernel` followed by `protocol: limine` and `kernel_path: boot():/boot/kernel`"));
        }
        let entry = bootable.get(self.default_entry - 1).ok_or_else(|| {
            Error::at(0, format!(
                "default_entry is {} but the file has only {} boot entr{}",
                self.default_entry,
                bootable.len(),
                if bootable.len() == 1 { "y" } else { "ies" }
            ))
        })?;
        match entry.protocol.as_deref() {
            Some("limine") => {}
            Some(other) => {
                return Err(Error::at(entry.line, format!(
                    "entry `{}` uses protocol `{other}`; only `protocol: limine` can boot this kernel",
                    entry.title
                )))
            }
            None => {
                return Err(Error::at(entry.line, format!(
                    "entry `{}` has no `protocol:` option (expected `protocol: limine`)",
                    entry.title
                )))
            }
        }
        if entry.kernel_path.is_none() {
            return Err(Error::at(entry.line, format!(
                "entry `{}` names no kernel: add `kernel_path: boot():/path/to/kernel`",
                entry.title
            )));
        }
        Ok(entry)
    }
}

/// Global options of the Limine 8.x format; these may appear anywhere.
const GLOBAL_OPTIONS: &[&str] = &[
    "timeout", "quiet", "serial", "serial_baudrate", "default_entry", "remember_last_entry",
    "graphics", "wallpaper", "wallpaper_style", "backdrop", "verbose", "randomise_memory",
    "randomize_memory", "hash_mismatch_panic", "interface_resolution", "interface_branding",
    "interface_branding_colour", "interface_branding_color", "interface_help_hidden",
    "term_font", "term_font_size", "term_font_scale", "term_font_spacing", "term_palette",
    "term_palette_bright", "term_background", "term_foreground", "term_background_bright",
    "term_foreground_bright", "term_margin", "term_margin_gradient", "editor_enabled",
    "editor_highlighting", "editor_validation",
];

/// Parses the text of a `limine.conf`.
pub fn parse(text: &str) -> Result<Config, Error> {
    let mut config = Config {
        timeout: Timeout::Seconds(5),
        serial: false,
        verbose: false,
        default_entry: 1,
        entries: Vec::new(),
        other_globals: Vec::new(),
    };
    let mut macros: Vec<(String, String)> = alloc::vec![("ARCH".into(), "x86-64".into())];

    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(definition) = trimmed.strip_prefix("${") {
            let (name, value) = definition.split_once("}=").ok_or_else(|| {
                Error::at(line, "a macro definition must look like `${NAME}=value`")
            })?;
            if name.is_empty() {
                return Err(Error::at(line, "a macro needs a name: `${NAME}=value`"));
            }
            let value = expand(value, &macros, line)?;
            macros.retain(|(n, _)| n != name);
            macros.push((name.to_string(), value));
            continue;
        }
        let expanded = expand(trimmed, &macros, line)?;
        if expanded.starts_with('/') {
            start_entry(&mut config, &expanded, line)?;
        } else {
            let (name, value) = split_option(&expanded, line)?;
            apply_option(&mut config, &name, value, line)?;
        }
    }
    Ok(config)
}

fn expand(text: &str, macros: &[(String, String)], line: usize) -> Result<String, Error> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| Error::at(line, "`${` without a closing `}`"))?;
        let name = &after[..end];
        let value = macros
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| Error::at(line, format!("macro `${{{name}}}` is used but never defined")))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn start_entry(config: &mut Config, text: &str, line: usize) -> Result<(), Error> {
    let depth = text.chars().take_while(|&c| c == '/').count();
    let mut title = &text[depth..];
    if let Some(rest) = title.strip_prefix('+') {
        title = rest;
    }
    let title = title.trim();
    if title.is_empty() {
        return Err(Error::at(line, "a menu entry needs a title after the `/`"));
    }
    if let Some(parent) = config.entries.last_mut() {
        if depth > parent.depth + 1 {
            return Err(Error::at(line, format!(
                "entry `{title}` is nested {} levels below `{}`; sub-entries go one level deeper at a time",
                depth - parent.depth,
                parent.title
            )));
        }
        if depth == parent.depth + 1 {
            parent.is_directory = true;
        }
    } else if depth != 1 {
        return Err(Error::at(line, format!("the first entry must start with a single `/`, not {depth}")));
    }
    config.entries.push(Entry {
        title: title.to_string(),
        depth,
        is_directory: false,
        line,
        protocol: None,
        kernel_path: None,
        cmdline: None,
        modules: Vec::new(),
        other: Vec::new(),
    });
    Ok(())
}

fn split_option(text: &str, line: usize) -> Result<(String, &str), Error> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() && !name.contains(char::is_whitespace) => {
            Ok((name.trim().to_ascii_lowercase(), value.trim()))
        }
        _ if text.contains('=') => Err(Error::at(line, format!(
            "`{text}` uses the old limine.cfg `KEY=VALUE` syntax; limine.conf options are `key: value`"
        ))),
        _ => Err(Error::at(line, format!("`{text}` is neither an entry (`/title`) nor an option (`name: value`)"))),
    }
}

fn parse_bool(name: &str, value: &str, line: usize) -> Result<bool, Error> {
    match value.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(Error::at(line, format!("`{name}` must be `yes` or `no`, not `{value}`"))),
    }
}

fn apply_option(config: &mut Config, name: &str, value: &str, line: usize) -> Result<(), Error> {
    if GLOBAL_OPTIONS.contains(&name) {
        match name {
            "timeout" => {
                config.timeout = if value.eq_ignore_ascii_case("no") {
                    Timeout::Never
                } else {
                    Timeout::Seconds(value.parse().map_err(|_| {
                        Error::at(line, format!("`timeout` must be a number of seconds or `no`, not `{value}`"))
                    })?)
                }
            }
            "serial" => config.serial = parse_bool(name, value, line)?,
            "verbose" => config.verbose = parse_bool(name, value, line)?,
            "default_entry" => {
                config.default_entry = match value.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(Error::at(line, format!("`default_entry` is 1-based: expected 1, 2, ..., not `{value}`"))),
                }
            }
            _ => config.other_globals.push((name.to_string(), value.to_string(), line)),
        }
        return Ok(());
    }
    let Some(entry) = config.entries.last_mut() else {
        config.other_globals.push((name.to_string(), value.to_string(), line));
        return Ok(());
    };
    match name {
        "protocol" => entry.protocol = Some(value.to_ascii_lowercase()),
        "path" | "kernel_path" => {
            if let Some((_, first)) = &entry.kernel_path {
                return Err(Error::at(line, format!(
                    "entry `{}` names its kernel twice (lines {first} and {line})",
                    entry.title
                )));
            }
            entry.kernel_path = Some((LiminePath::parse(value, line)?, line));
        }
        "cmdline" | "kernel_cmdline" => entry.cmdline = Some((value.to_string(), line)),
        "module_path" => entry.modules.push(Module {
            path: LiminePath::parse(value, line)?,
            cmdline: String::new(),
            line,
        }),
        "module_cmdline" | "module_string" => match entry.modules.last_mut() {
            Some(module) => module.cmdline = value.to_string(),
            None => return Err(Error::at(line, "`module_cmdline` must follow the `module_path` it belongs to")),
        },
        _ => entry.other.push((name.to_string(), value.to_string(), line)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;

    const SAMPLE: &str = "\
# comment
timeout: 3
SERIAL: yes
${ROOT}=boot():/boot

/Kernel
    protocol: limine
    kernel_path: ${ROOT}/kernel
    cmdline: log=debug test=boot
    module_path: ${ROOT}/init
    module_cmdline: init --verbose
    module_path: ${ROOT}/mm-server
    kaslr: no
";

    #[test]
    fn reads_the_sample() {
        let c = parse(SAMPLE).unwrap();
        assert_eq!(c.timeout, Timeout::Seconds(3));
        assert!(c.serial);
        let e = c.boot_entry().unwrap();
        assert_eq!(e.title, "Kernel");
        assert_eq!(e.kernel_path.as_ref().unwrap().0.path, "/boot/kernel");
        assert_eq!(e.kernel_path.as_ref().unwrap().0.resource, Resource::Boot(None));
        assert_eq!(e.cmdline(), "log=debug test=boot");
        assert_eq!(e.modules.len(), 2);
        assert_eq!(e.modules[0].cmdline, "init --verbose");
        assert_eq!(e.modules[1].path.file_name(), "mm-server");
        assert_eq!(e.modules[1].cmdline, "");
        assert_eq!(e.other, alloc::vec![("kaslr".into(), "no".into(), 13)]);
    }

    #[test]
    fn path_and_kernel_path_are_the_same_option() {
        let c = parse("/K\nprotocol: limine\npath: boot():/k\n").unwrap();
        assert_eq!(c.boot_entry().unwrap().kernel_path.as_ref().unwrap().0.path, "/k");
        let err = parse("/K\npath: boot():/k\nkernel_path: boot():/j\n").unwrap_err();
        assert!(err.message.contains("twice"), "{err}");
        assert_eq!(err.line, 3);
    }

    #[test]
    fn directories_and_default_entry() {
        let text = "default_entry: 2\n/+Dir\n//A\nprotocol: limine\npath: boot():/a\n//B\nprotocol: limine\npath: boot():/b\n";
        let c = parse(text).unwrap();
        assert!(c.entries[0].is_directory);
        assert_eq!(c.boot_entry().unwrap().title, "B");
        let c = parse("default_entry: 3\n/A\nprotocol: limine\npath: boot():/a\n").unwrap();
        assert!(c.boot_entry().unwrap_err().message.contains("only 1 boot entry"));
    }

    #[test]
    fn timeout_forms() {
        assert_eq!(parse("timeout: no").unwrap().timeout, Timeout::Never);
        assert_eq!(parse("timeout: 0").unwrap().timeout, Timeout::Seconds(0));
        assert_eq!(parse("").unwrap().timeout, Timeout::Seconds(5));
        assert!(parse("timeout: soon").unwrap_err().message.contains("timeout"));
    }

    #[test]
    fn bad_files_get_line_numbers() {
        for (text, line, needle) in [
            ("TIMEOUT=3", 1, "old limine.cfg"),
            ("\n/\n", 2, "needs a title"),
            ("//Deep\n", 1, "first entry"),
            ("/A\n///C\n", 2, "one level deeper"),
            ("/A\nmodule_cmdline: x\n", 2, "must follow"),
            ("/A\ncmdline: ${NOPE}\n", 2, "never defined"),
            ("serial: maybe", 1, "`yes` or `no`"),
            ("default_entry: 0", 1, "1-based"),
            ("just words", 1, "neither an entry"),
            ("/A\nkernel_path: /boot/kernel\n", 2, "not a Limine path"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.message.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn entries_that_cannot_boot() {
        let no_protocol = parse("/A\npath: boot():/a\n").unwrap();
        assert!(no_protocol.boot_entry().unwrap_err().message.contains("no `protocol:`"));
        let linux = parse("/A\nprotocol: linux\npath: boot():/a\n").unwrap();
        assert!(linux.boot_entry().unwrap_err().message.contains("only `protocol: limine`"));
        let no_kernel = parse("/A\nprotocol: limine\n").unwrap();
        assert!(no_kernel.boot_entry().unwrap_err().message.contains("names no kernel"));
        assert!(parse("timeout: 0\n").unwrap().boot_entry().unwrap_err().message.contains("no boot entry"));
    }

    #[test]
    fn globals_inside_entries_stay_global() {
        let c = parse("/A\nprotocol: limine\nserial: yes\npath: boot():/a\n").unwrap();
        assert!(c.serial);
        assert!(c.entries[0].other.is_empty());
    }
}
