//! Limine paths: `resource(argument):/path[#blake2b-hash]`.

use crate::Error;
use alloc::string::{String, ToString};
use core::fmt;

/// Where a file lives, as the first part of a Limine path names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `boot(N)`: partition N of the boot drive; `boot()` is the partition that
    /// holds the configuration file.
    Boot(Option<u32>),
    /// `hdd(D:P)`, hard disk D, partition P (P omitted: the whole disk).
    Hdd {
        /// 1-based drive number.
        drive: u32,
        /// 1-based partition number; `None` for the whole disk.
        partition: Option<u32>,
    },
    /// `odd(D:P)`, optical disk D, partition P.
    Odd {
        /// 1-based drive number.
        drive: u32,
        /// 1-based partition number; `None` for the whole disc.
        partition: Option<u32>,
    },
    /// `guid(...)` or `uuid(...)`: a filesystem or GPT partition GUID.
    Guid(String),
    /// `fslabel(...)`: a filesystem label.
    FsLabel(String),
    /// `tftp(...)`: a TFTP server (empty: the one the machine booted from).
    Tftp(String),
}

/// A parsed Limine path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiminePath {
    /// The resource the path is relative to.
    pub resource: Resource,
    /// The absolute path inside the resource, always starting with `/`.
    pub path: String,
    /// The blake2b hash suffix (`#...`), if the path carries one.
    pub hash: Option<String>,
}

impl LiminePath {
    /// Parses `text`; `line` is only used to label errors.
    pub fn parse(text: &str, line: usize) -> Result<Self, Error> {
        let text = text.trim();
        let open = text.find('(').ok_or_else(|| {
            Error::at(line, alloc::format!(
                "`{text}` is not a Limine path: expected `resource(argument):/path`, e.g. `boot():/boot/kernel`"
            ))
        })?;
        let close = text[open..].find("):").map(|i| i + open).ok_or_else(|| {
            Error::at(line, alloc::format!("`{text}`: expected `):` after the resource argument"))
        })?;
        let name = text[..open].to_ascii_lowercase();
        let argument = &text[open + 1..close];
        let rest = &text[close + 2..];
        if !rest.starts_with('/') {
            return Err(Error::at(line, alloc::format!("`{text}`: the path after `):` must start with `/`")));
        }
        let (path, hash) = match rest.split_once('#') {
            Some((path, hash)) => (path, Some(hash.to_string())),
            None => (rest, None),
        };
        if path.len() == 1 {
            return Err(Error::at(line, alloc::format!("`{text}` names a directory, not a file")));
        }
        let resource = match name.as_str() {
            "boot" => Resource::Boot(parse_optional_number(argument, text, line)?),
            "hdd" | "odd" => {
                let (drive, partition) = argument.split_once(':').ok_or_else(|| {
                    Error::at(line, alloc::format!("`{text}`: `{name}` takes `drive:partition`"))
                })?;
                let drive = parse_optional_number(drive, text, line)?.ok_or_else(|| {
                    Error::at(line, alloc::format!("`{text}`: the drive number is missing"))
                })?;
                let partition = parse_optional_number(partition, text, line)?;
                if name == "hdd" {
                    Resource::Hdd { drive, partition }
                } else {
                    Resource::Odd { drive, partition }
                }
            }
            "guid" | "uuid" => Resource::Guid(argument.to_string()),
            "fslabel" => Resource::FsLabel(argument.to_string()),
            "tftp" => Resource::Tftp(argument.to_string()),
            _ => {
                return Err(Error::at(line, alloc::format!(
                    "`{text}`: unknown resource `{name}` (expected boot, hdd, odd, guid, uuid, fslabel or tftp)"
                )))
            }
        };
        Ok(Self { resource, path: path.to_string(), hash })
    }

    /// The last component of the path (`kernel` for `boot():/boot/kernel`).
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

impl fmt::Display for Resource {
    /// The resource as a Limine path spells it: `boot()`, `hdd(1:2)`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: &Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
        match self {
            Resource::Boot(n) => write!(f, "boot({})", number(n)),
            Resource::Hdd { drive, partition } => write!(f, "hdd({drive}:{})", number(partition)),
            Resource::Odd { drive, partition } => write!(f, "odd({drive}:{})", number(partition)),
            Resource::Guid(g) => write!(f, "guid({g})"),
            Resource::FsLabel(l) => write!(f, "fslabel({l})"),
            Resource::Tftp(t) => write!(f, "tftp({t})"),
        }
    }
}

impl fmt::Display for LiminePath {
    /// The path in Limine's notation (`boot():/boot/kernel`), which reads back
    /// to the same value with [`LiminePath::parse`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource, self.path)?;
        if let Some(hash) = &self.hash {
            write!(f, "#{hash}")?;
        }
        Ok(())
    }
}

fn parse_optional_number(text: &str, whole: &str, line: usize) -> Result<Option<u32>, Error> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u32>()
        .map(Some)
        .map_err(|_| Error::at(line, alloc::format!("`{whole}`: `{text}` is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_paths() {
        let p = LiminePath::parse("boot():/boot/kernel", 1).unwrap();
        assert_eq!(p.resource, Resource::Boot(None));
        assert_eq!(p.path, "/boot/kernel");
        assert_eq!(p.file_name(), "kernel");
        assert_eq!(p.hash, None);
        let p = LiminePath::parse("BOOT(2):/a/b#abcd", 1).unwrap();
        assert_eq!(p.resource, Resource::Boot(Some(2)));
        assert_eq!(p.hash.as_deref(), Some("abcd"));
    }

    #[test]
    fn other_resources() {
        let p = LiminePath::parse("hdd(3:1):/x", 1).unwrap();
        assert_eq!(p.resource, Resource::Hdd { drive: 3, partition: Some(1) });
        let p = LiminePath::parse("odd(2:):/x", 1).unwrap();
        assert_eq!(p.resource, Resource::Odd { drive: 2, partition: None });
        let p = LiminePath::parse("uuid(736b5698-5ae1):/x", 1).unwrap();
        assert_eq!(p.resource, Resource::Guid("736b5698-5ae1".into()));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "boot():/boot/kernel",
            "boot(2):/a/b#abcd",
            "hdd(3:1):/x",
            "odd(2:):/x",
            "guid(736b5698-5ae1):/x",
            "fslabel(ROOT):/k",
            "tftp():/k",
        ] {
            let p = LiminePath::parse(text, 1).unwrap();
            assert_eq!(p.to_string(), text);
            assert_eq!(LiminePath::parse(&p.to_string(), 1).unwrap(), p);
        }
        // `uuid(...)` is read as a GUID and written back in that spelling.
        assert_eq!(LiminePath::parse("UUID(ab):/k", 1).unwrap().to_string(), "guid(ab):/k");
    }

    #[test]
    fn malformed_paths_name_the_problem() {
        for (text, needle) in [
            ("/boot/kernel", "not a Limine path"),
            ("boot(:/kernel", "expected `):`"),
            ("boot():kernel", "must start with `/`"),
            ("boot():/", "directory"),
            ("floppy():/k", "unknown resource"),
            ("boot(x):/k", "not a number"),
            ("hdd(1):/k", "drive:partition"),
        ] {
            let err = LiminePath::parse(text, 7).unwrap_err();
            assert_eq!(err.line, 7);
            assert!(err.message.contains(needle), "{text}: {}", err.message);
        }
    }
}
