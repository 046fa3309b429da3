//! The kernel command line: space-separated `key=value` options and flags.

/// A parsed command line; borrowing the text it came from.
#[derive(Clone, Copy, Debug)]
pub struct Cmdline<'a> {
    text: &'a str,
}

impl<'a> Cmdline<'a> {
    /// Wraps `text` (no allocation: lookups scan it).
    pub const fn new(text: &'a str) -> Self {
        Self { text }
    }

    /// The raw text.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Every option as `(key, value)`; a bare flag has the value `""`.
    pub fn options(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.text
            .split_ascii_whitespace()
            .map(|word| word.split_once('=').unwrap_or((word, "")))
    }

    /// The value of the last `key=...`, if any.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.options().filter(|(k, _)| *k == key).map(|(_, v)| v).last()
    }

    /// Whether `key` appears at all (as a flag or with a value).
    pub fn has(&self, key: &str) -> bool {
        self.options().any(|(k, _)| k == key)
    }

    /// The options whose key is not in `known`, for a warning.
    pub fn unknown<'k>(self, known: &'k [&'k str]) -> impl Iterator<Item = &'a str> + 'k
    where
        'a: 'k,
    {
        self.options().map(|(k, _)| k).filter(move |k| !known.contains(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let c = Cmdline::new("  test=page-fault log=debug quiet test=boot ");
        assert_eq!(c.get("test"), Some("boot"));
        assert_eq!(c.get("log"), Some("debug"));
        assert_eq!(c.get("quiet"), Some(""));
        assert!(c.has("quiet") && !c.has("nope"));
        assert_eq!(c.unknown(&["test", "log"]).collect::<Vec<_>>(), vec!["quiet"]);
        assert_eq!(Cmdline::new("").options().count(), 0);
    }
}
