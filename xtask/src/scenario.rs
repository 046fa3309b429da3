//! The QEMU scenarios in `tests/*.toml`: reading, checking and expanding them.
//!
//! A file holds one group of scenarios as `[[scenario]]` tables (the format
//! is described in `tests/README.md` and `docs/testing.md`). A scenario whose
//! `smp` or `memory` is a list stands for one run per combination; its name
//! and texts then use `{smp}` and `{memory}`, replaced in each run.

use crate::cli::{Bootloader, parse_memory};
use anyhow::{Context, Result, bail};
use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// How the guest must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Exit {
    /// The kernel reported success (port 0xf4 ← 0x10, QEMU exits 33).
    Success,
    /// The kernel reported failure (port 0xf4 ← 0x11, QEMU exits 35).
    Failure,
    /// The guest powered off without a verdict (QEMU exits 0).
    Poweroff,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Exit::Success => "success",
            Exit::Failure => "failure",
            Exit::Poweroff => "poweroff",
        })
    }
}

/// What a log line is matched against.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// `"text"`: the line contains the text.
    Contains(String),
    /// `{ regex = "..." }`: the regular expression matches in the line.
    Regex(Regex),
    /// `{ all = ["a", "b"] }`: the line contains each text, in any order.
    All(Vec<String>),
}

impl Pattern {
    /// Whether `line` matches.
    pub fn matches(&self, line: &str) -> bool {
        match self {
            Pattern::Contains(text) => line.contains(text.as_str()),
            Pattern::Regex(re) => re.is_match(line),
            Pattern::All(texts) => texts.iter().all(|t| line.contains(t.as_str())),
        }
    }

    fn map_text(&self, f: &impl Fn(&str) -> String) -> Result<Self> {
        Ok(match self {
            Pattern::Contains(t) => Pattern::Contains(f(t)),
            Pattern::Regex(re) => {
                let source = f(&unescape_placeholders(re.as_str()));
                Pattern::Regex(
                    Regex::new(&source).with_context(|| format!("bad regex `{source}`"))?,
                )
            }
            Pattern::All(texts) => Pattern::All(texts.iter().map(|t| f(t)).collect()),
        })
    }
}

/// The placeholders a scenario's texts may hold.
const PLACEHOLDERS: [&str; 2] = ["{smp}", "{memory}"];

/// A regex source with the placeholders as literal text, so that it
/// compiles before they are filled in (`{smp}` alone would read as a
/// repetition).
fn escape_placeholders(source: &str) -> String {
    PLACEHOLDERS.iter().fold(source.to_string(), |s, p| {
        s.replace(p, &regex::escape(p))
    })
}

/// The inverse of [`escape_placeholders`].
fn unescape_placeholders(source: &str) -> String {
    PLACEHOLDERS.iter().fold(source.to_string(), |s, p| {
        s.replace(&regex::escape(p), p)
    })
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Contains(t) => write!(f, "`{t}`"),
            Pattern::Regex(re) => write!(f, "regex `{}`", re.as_str()),
            Pattern::All(texts) => {
                let texts: Vec<String> = texts.iter().map(|t| format!("`{t}`")).collect();
                write!(f, "one line with {}", texts.join(" and "))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PatternVisitor;
        impl<'de> Visitor<'de> for PatternVisitor {
            type Value = Pattern;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a text, { regex = "..." } or { all = ["...", "..."] }"#)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Pattern, E> {
                if text.is_empty() {
                    return Err(E::custom("an empty pattern matches every line"));
                }
                Ok(Pattern::Contains(text.to_string()))
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Pattern, M::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        r#"an empty table: write { regex = "..." } or { all = [...] }"#,
                    ));
                };
                let pattern = match key.as_str() {
                    "regex" => {
                        let source: String = map.next_value()?;
                        Pattern::Regex(
                            Regex::new(&escape_placeholders(&source))
                                .map_err(|e| de::Error::custom(format!("bad regex: {e}")))?,
                        )
                    }
                    "all" => {
                        let texts: Vec<String> = map.next_value()?;
                        if texts.is_empty() || texts.iter().any(String::is_empty) {
                            return Err(de::Error::custom(
                                "`all` needs one or more non-empty texts",
                            ));
                        }
                        Pattern::All(texts)
                    }
                    other => return Err(de::Error::unknown_field(other, &["regex", "all"])),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "a pattern has one key (`regex` or `all`), not also `{extra}`"
                    )));
                }
                Ok(pattern)
            }
        }
        deserializer.deserialize_any(PatternVisitor)
    }
}

/// A value or a list of values (one run per value).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, expecting = "a value or a list of values")]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A scenario as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    description: String,
    smp: Option<OneOrMany<u32>>,
    memory: Option<OneOrMany<String>>,
    #[serde(default)]
    cmdline: String,
    config: Option<PathBuf>,
    #[serde(default)]
    missing_ok: Vec<String>,
    timeout: Option<u64>,
    exit: Exit,
    #[serde(default)]
    expect: Vec<Pattern>,
    #[serde(default)]
    forbid: Vec<Pattern>,
    bootloader: Option<Bootloader>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    scenario: Vec<RawScenario>,
}

/// Defaults for what a scenario leaves out.
pub const DEFAULT_SMP: u32 = 4;
/// Default guest memory.
pub const DEFAULT_MEMORY: &str = "256M";
/// Default time limit, in seconds.
pub const DEFAULT_TIMEOUT: u64 = 60;

/// One QEMU run to make and check.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Unique name (placeholders replaced).
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The file it comes from.
    pub file: PathBuf,
    /// CPUs.
    pub smp: u32,
    /// Guest memory (QEMU notation).
    pub memory: String,
    /// Kernel command line set in the boot entry.
    pub cmdline: String,
    /// Alternative limine.conf (absolute), instead of the root one.
    pub config: Option<PathBuf>,
    /// Files the configuration names that may be absent from the build.
    pub missing_ok: Vec<String>,
    /// Time limit in seconds.
    pub timeout: u64,
    /// How the guest must end.
    pub exit: Exit,
    /// Lines that must appear, in this order.
    pub expect: Vec<Pattern>,
    /// Lines that must not appear.
    pub forbid: Vec<Pattern>,
    /// The boot loader this scenario tests; skipped under the other one.
    pub bootloader: Option<Bootloader>,
}

/// Reads every `*.toml` in `dir`, sorted by file name; names are checked to
/// be unique across files.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("could not read the scenario directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        let text = fs::read_to_string(&file)
            .with_context(|| format!("could not read {}", file.display()))?;
        for scenario in parse_file(&text, &file)? {
            if let Some(first) = seen.insert(scenario.name.clone(), file.clone()) {
                bail!(
                    "{}: scenario `{}` is already defined in {}",
                    file.display(),
                    scenario.name,
                    first.display()
                );
            }
            all.push(scenario);
        }
    }
    Ok(all)
}

/// Parses one scenario file; `file` locates it (and its `config` paths).
pub fn parse_file(text: &str, file: &Path) -> Result<Vec<Scenario>> {
    let raw: RawFile = toml::from_str(text)
        .with_context(|| format!("{} is not a valid scenario file", file.display()))?;
    let mut out = Vec::new();
    for (index, scenario) in raw.scenario.into_iter().enumerate() {
        let label = format!(
            "{}: scenario #{} (`{}`)",
            file.display(),
            index + 1,
            scenario.name
        );
        out.extend(expand(scenario, file).with_context(|| label)?);
    }
    Ok(out)
}

fn expand(raw: RawScenario, file: &Path) -> Result<Vec<Scenario>> {
    let smps = raw.smp.map_or(vec![DEFAULT_SMP], OneOrMany::into_vec);
    let memories = raw
        .memory
        .map_or(vec![DEFAULT_MEMORY.to_string()], OneOrMany::into_vec);
    if smps.is_empty() || memories.is_empty() {
        bail!("`smp` and `memory` need at least one value");
    }
    if let Some(bad) = smps.iter().find(|&&n| n == 0 || n > 255) {
        bail!("`smp = {bad}`: a machine has 1 to 255 CPUs");
    }
    let memories = memories
        .iter()
        .map(|m| parse_memory(m).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    for (field, count) in [("smp", smps.len()), ("memory", memories.len())] {
        if count > 1 && !raw.name.contains(&format!("{{{field}}}")) {
            bail!(
                "`{field}` has {count} values, so the name must contain `{{{field}}}` to tell the runs apart"
            );
        }
    }
    let timeout = raw.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if timeout == 0 {
        bail!("`timeout` is in seconds and must be at least 1");
    }
    if raw.cmdline.contains('\n') {
        bail!("`cmdline` must be one line");
    }
    let config = match raw.config {
        Some(path) => {
            let full = file.parent().unwrap_or(Path::new(".")).join(&path);
            if !full.is_file() {
                bail!(
                    "`config = \"{}\"`: no such file {}",
                    path.display(),
                    full.display()
                );
            }
            Some(full)
        }
        None => None,
    };
    let mut out = Vec::new();
    for &smp in &smps {
        for memory in &memories {
            let fill = |text: &str| {
                text.replace("{smp}", &smp.to_string())
                    .replace("{memory}", memory)
            };
            let name = fill(&raw.name);
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                bail!(
                    "the name `{name}` may only use letters, digits, `-`, `_` and `.` (it names a log file)"
                );
            }
            out.push(Scenario {
                name,
                description: fill(&raw.description),
                file: file.to_path_buf(),
                smp,
                memory: memory.clone(),
                cmdline: fill(&raw.cmdline),
                config: config.clone(),
                missing_ok: raw.missing_ok.clone(),
                timeout,
                exit: raw.exit,
                expect: raw
                    .expect
                    .iter()
                    .map(|p| p.map_text(&fill))
                    .collect::<Result<_>>()?,
                forbid: raw
                    .forbid
                    .iter()
                    .map(|p| p.map_text(&fill))
                    .collect::<Result<_>>()?,
                bootloader: raw.bootloader,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Scenario>> {
        parse_file(text, Path::new("/nonexistent/tests/t.toml"))
    }

    #[test]
    fn a_matrix_expands_into_named_runs() {
        let s = parse(
            r#"
            [[scenario]]
            name = "boot-smp{smp}"
            description = "boots on {smp} CPUs"
            smp = [1, 2]
            exit = "success"
            expect = ["smp: {smp} of {smp} CPUs online", { regex = 'rip=0x[0-9a-f]{16}' }, { regex = '^\d+ of {smp}$' }]
            forbid = [{ all = ["cpu {smp}", "stuck"] }]
            "#,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert!(s[1].expect[2].matches("7 of 2") && !s[1].expect[2].matches("7 of 1"), "placeholders in a regex");
        assert_eq!(s[1].name, "boot-smp2");
        assert_eq!(s[1].description, "boots on 2 CPUs");
        assert_eq!(
            (s[1].smp, s[1].memory.as_str(), s[1].timeout),
            (2, "256M", DEFAULT_TIMEOUT)
        );
        assert!(s[1].expect[0].matches("smp: 2 of 2 CPUs online"));
        assert!(!s[0].expect[0].matches("smp: 2 of 2 CPUs online"));
        assert!(
            s[0].expect[1].matches("rip=0xffffffff80001234"),
            "{{16}} is a regex quantifier, not a placeholder"
        );
        assert!(s[1].forbid[0].matches("stuck on cpu 2") && !s[1].forbid[0].matches("cpu 2 fine"));
        assert_eq!(s[0].exit, Exit::Success);
    }

    #[test]
    fn every_field() {
        let s = parse(
            r#"
            [[scenario]]
            name = "x"
            description = "d"
            smp = 8
            memory = "1g"
            cmdline = "test=page-fault"
            timeout = 30
            exit = "poweroff"
            missing_ok = ["no-such-kernel"]
            bootloader = "builtin"
            "#,
        )
        .unwrap();
        let s = &s[0];
        assert_eq!(
            (s.smp, s.memory.as_str(), s.cmdline.as_str(), s.timeout),
            (8, "1G", "test=page-fault", 30)
        );
        assert_eq!(s.missing_ok, ["no-such-kernel"]);
        assert!(s.expect.is_empty() && s.config.is_none());
        assert_eq!(s.bootloader, Some(Bootloader::Builtin));
    }

    #[test]
    fn mistakes_are_explained() {
        for (text, needle) in [
            (
                "[[scenario]]\nname='a'\ndescription='d'\nexit='sucess'\n",
                "unknown variant",
            ),
            (
                "[[scenario]]\nname='a'\ndescription='d'\nexit='success'\ntimeot=3\n",
                "unknown field `timeot`",
            ),
            (
                "[[scenario]]\nname='a'\ndescription='d'\n",
                "missing field `exit`",
            ),
            (
                "[[scenario]]\nname='a'\ndescription='d'\nexit='success'\nsmp=[1,2]\n",
                "must contain `{smp}`",
            ),
            (
                "[[scenario]]\nname='a'\ndescription='d'\nexit='success'\nsmp=0\n",
                "1 to 255",
            ),
            (
                "[[scenario]]\nname='a'\ndescription='d'\nexit='success'\nmemory='lots'\n",
                "not a memory size",
            ),
            (
                "[[scenario]]\nname='a b'\ndescription='d'\nexit='success'\n",
                "may only use",
            ),
            (
                "[[scenario]]\nname='a'\ndescription='d'\nexit='success'\nexpect=[{regex='('}]\n",
                "bad regex",
            ),
            (
                "[[scenario]]\nname='a'\ndescription='d'\nexit='success'\nexpect=[{rgx='x'}]\n",
                "unknown field `rgx`",
            ),
            (
                "[[scenario]]\nname='a'\ndescription='d'\nexit='success'\nexpect=['']\n",
                "empty pattern",
            ),
            (
                "[[scenario]]\nname='a'\ndescription='d'\nexit='success'\nexpect=[3]\n",
                "a text, { regex",
            ),
            (
                "[[scenario]]\nname='a'\ndescription='d'\nexit='success'\nconfig='nope.conf'\n",
                "no such file",
            ),
            (
                "[[scenario]]\nname='a'\ndescription='d'\nexit='success'\ntimeout=0\n",
                "at least 1",
            ),
            (
                "[[scenario]]\nname='a'\ndescription='d'\nexit='success'\nsmp='four'\n",
                "a value or a list",
            ),
            ("[[scenarios]]\nname='a'\n", "unknown field `scenarios`"),
        ] {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(needle), "{text:?}\n  gave: {err}");
        }
    }

    #[test]
    fn the_shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
        let all = load_dir(&dir).unwrap();
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        for name in [
            "boot-smp1",
            "boot-smp2",
            "boot-smp4",
            "boot-smp8",
            "exception-invalid-opcode",
            "exception-page-fault",
            "loader-missing-kernel",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        let pf = all
            .iter()
            .find(|s| s.name == "exception-page-fault")
            .unwrap();
        let line =
            "page fault: cr2=0x000000000dead000 error=0x2 [not-present write supervisor data]";
        assert!(pf.expect.iter().any(|p| p.matches(line)));
        let loader = all
            .iter()
            .find(|s| s.name == "loader-missing-kernel")
            .unwrap();
        assert!(
            loader
                .config
                .as_ref()
                .unwrap()
                .ends_with("configs/missing-kernel.conf")
        );
    }
}
