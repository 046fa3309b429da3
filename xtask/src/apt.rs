//! What xtask knows about Debian-family systems: reading `/etc/os-release`
//! and adding the `bookworm-backports` suite beside the existing APT sources
//! (Debian 12 ships QEMU 7.2; QEMU ≥ 8.0 comes from backports there).

use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// The fields of `/etc/os-release` xtask uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`: `debian`, `ubuntu`, `fedora`, `arch`, ...
    pub id: String,
    /// `ID_LIKE`, split on spaces.
    pub id_like: Vec<String>,
    /// `VERSION_CODENAME`: `bookworm`, `noble`, ...
    pub codename: String,
}

impl OsRelease {
    /// Reads `/etc/os-release`; an unreadable file gives an unknown system.
    pub fn load() -> Self {
        fs::read_to_string("/etc/os-release")
            .map(|t| Self::parse(&t))
            .unwrap_or_default()
    }

    /// Parses the text of an os-release file.
    pub fn parse(text: &str) -> Self {
        let mut os = Self::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"').trim_matches('\'');
            match key.trim() {
                "ID" => os.id = value.to_string(),
                "ID_LIKE" => os.id_like = value.split_whitespace().map(str::to_string).collect(),
                "VERSION_CODENAME" => os.codename = value.to_string(),
                _ => {}
            }
        }
        os
    }

    /// Debian, Ubuntu or a derivative: APT is the package manager.
    pub fn is_debian_like(&self) -> bool {
        self.id == "debian"
            || self.id == "ubuntu"
            || self.id_like.iter().any(|l| l == "debian" || l == "ubuntu")
    }

    /// Debian 12, whose own QEMU is too old.
    pub fn is_bookworm(&self) -> bool {
        self.id == "debian" && self.codename == "bookworm"
    }
}

/// Where APT reads its sources from.
pub const SOURCES_LIST: &str = "/etc/apt/sources.list";
/// The directory of additional source files.
pub const SOURCES_DIR: &str = "/etc/apt/sources.list.d";

/// Reads every APT source file (`sources.list`, `*.list`, `*.sources`).
pub fn read_sources() -> Vec<(PathBuf, String)> {
    let mut files = vec![PathBuf::from(SOURCES_LIST)];
    if let Ok(dir) = fs::read_dir(SOURCES_DIR) {
        let mut more: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    files
        .into_iter()
        .filter_map(|p| fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect()
}

/// A source file to add so that `suite` (e.g. `bookworm-backports`) is
/// available from the same mirror as `base` (e.g. `bookworm`). `None` when
/// the suite is already configured or no source of `base` exists to copy.
pub fn backports_source(
    sources: &[(PathBuf, String)],
    base: &str,
    suite: &str,
) -> Option<(PathBuf, String)> {
    let is_deb822 = |p: &Path| p.extension().is_some_and(|e| e == "sources");
    if sources.iter().any(|(p, t)| {
        if is_deb822(p) {
            deb822_has_suite(t, suite)
        } else {
            one_line_has_suite(t, suite)
        }
    }) {
        return None;
    }
    for (path, text) in sources {
        if is_deb822(path) {
            for stanza in text.split("\n\n") {
                let field = |name: &str| {
                    stanza.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case(name)
                            .then(|| v.trim().to_string())
                    })
                };
                let suites = field("Suites").unwrap_or_default();
                let types = field("Types").unwrap_or_default();
                if !types.split_whitespace().any(|t| t == "deb")
                    || !suites.split_whitespace().any(|s| s == base)
                {
                    continue;
                }
                let Some(uri) =
                    field("URIs").and_then(|u| u.split_whitespace().next().map(str::to_string))
                else {
                    continue;
                };
                let mut out =
                    format!("Types: deb\nURIs: {uri}\nSuites: {suite}\nComponents: main\n");
                if let Some(key) = field("Signed-By") {
                    out.push_str(&format!("Signed-By: {key}\n"));
                }
                return Some((Path::new(SOURCES_DIR).join(format!("{suite}.sources")), out));
            }
        } else {
            for line in text.lines() {
                if let Some((prefix, _)) = one_line_source(line).filter(|(_, s)| s == base) {
                    return Some((
                        Path::new(SOURCES_DIR).join(format!("{suite}.list")),
                        format!("{prefix} {suite} main\n"),
                    ));
                }
            }
        }
    }
    None
}

/// Splits a `deb [options] URI suite components...` line into
/// (`deb [options] URI`, suite).
fn one_line_source(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    let rest = line.strip_prefix("deb ")?.trim_start();
    let (options, rest) = match rest.strip_prefix('[') {
        Some(after) => {
            let (opts, rest) = after.split_once(']')?;
            (format!(" [{}]", opts.trim()), rest.trim_start())
        }
        None => (String::new(), rest),
    };
    let mut words = rest.split_whitespace();
    let uri = words.next()?;
    let suite = words.next()?;
    Some((format!("deb{options} {uri}"), suite.to_string()))
}

fn one_line_has_suite(text: &str, suite: &str) -> bool {
    text.lines()
        .any(|l| one_line_source(l).is_some_and(|(_, s)| s == suite))
}

fn deb822_has_suite(text: &str, suite: &str) -> bool {
    text.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("Suites") && v.split_whitespace().any(|s| s == suite)
        })
    })
}

/// Writes the source file `backports_source` proposed.
pub fn write_source(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("could not write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release() {
        let os = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_CODENAME=bookworm\n",
        );
        assert!(os.is_debian_like() && os.is_bookworm());
        let os =
            OsRelease::parse("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\nVERSION_CODENAME=wilma\n");
        assert!(os.is_debian_like() && !os.is_bookworm());
        assert!(!OsRelease::parse("ID=fedora\n").is_debian_like());
    }

    const DEB822: &str = "Types: deb\n# comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n";

    #[test]
    fn adds_backports_beside_a_deb822_source() {
        let sources = [(
            PathBuf::from("/etc/apt/sources.list.d/debian.sources"),
            DEB822.to_string(),
        )];
        let (path, text) = backports_source(&sources, "bookworm", "bookworm-backports").unwrap();
        assert_eq!(
            path,
            Path::new("/etc/apt/sources.list.d/bookworm-backports.sources")
        );
        assert_eq!(
            text,
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
    }

    #[test]
    fn adds_backports_beside_a_one_line_source() {
        let list = "# deb cdrom:[x]/ bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main contrib\ndeb http://security.example bookworm-security main\n";
        let sources = [(PathBuf::from(SOURCES_LIST), list.to_string())];
        let (path, text) = backports_source(&sources, "bookworm", "bookworm-backports").unwrap();
        assert_eq!(
            path,
            Path::new("/etc/apt/sources.list.d/bookworm-backports.list")
        );
        assert_eq!(
            text,
            "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm-backports main\n"
        );
    }

    #[test]
    fn nothing_to_add_when_present_or_no_base() {
        let present = [
            (
                PathBuf::from("/etc/apt/sources.list.d/debian.sources"),
                DEB822.to_string(),
            ),
            (
                PathBuf::from("/etc/apt/sources.list.d/b.sources"),
                "Types: deb\nURIs: http://m/debian\nSuites: bookworm-backports\n".to_string(),
            ),
        ];
        assert_eq!(
            backports_source(&present, "bookworm", "bookworm-backports"),
            None
        );
        let list = [(
            PathBuf::from(SOURCES_LIST),
            "deb http://m/debian bookworm-backports main\n".to_string(),
        )];
        assert_eq!(
            backports_source(&list, "bookworm", "bookworm-backports"),
            None
        );
        let other = [(
            PathBuf::from(SOURCES_LIST),
            "deb http://m/ubuntu noble main\n".to_string(),
        )];
        assert_eq!(
            backports_source(&other, "bookworm", "bookworm-backports"),
            None
        );
    }
}
