//! A fixed-size text buffer for building one log line without allocating,
//! so that a line can be written to the serial port in one locked burst.

use core::fmt;

/// Up to `N` bytes of text; writing more truncates and marks the line.
pub struct LineBuf<const N: usize> {
    bytes: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> Default for LineBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self { bytes: [0; N], len: 0, truncated: false }
    }

    /// The text so far; a truncated line ends in `...` and a newline if the
    /// original did.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Whether some text did not fit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Empties the buffer.
    pub fn clear(&mut self) {
        self.len = 0;
        self.truncated = false;
    }

    /// Ends the line with `\n`, replacing the tail with `...` if text was lost.
    pub fn finish_line(&mut self) {
        if self.truncated {
            let keep = N.saturating_sub(4).min(self.len);
            self.len = keep;
            for &b in b"...\n".iter().take(N - keep) {
                self.bytes[self.len] = b;
                self.len += 1;
            }
        } else if self.len < N {
            self.bytes[self.len] = b'\n';
            self.len += 1;
        } else {
            self.truncated = true;
            self.finish_line();
        }
    }
}

impl<const N: usize> fmt::Write for LineBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let take = s.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            self.truncated = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn fits_and_truncates() {
        let mut b = LineBuf::<16>::new();
        write!(b, "hello {}", 42).unwrap();
        b.finish_line();
        assert_eq!(b.as_bytes(), b"hello 42\n");
        let mut b = LineBuf::<16>::new();
        write!(b, "0123456789abcdefghij").unwrap();
        assert!(b.truncated());
        b.finish_line();
        assert_eq!(b.as_bytes(), b"0123456789ab...\n");
        let mut b = LineBuf::<4>::new();
        write!(b, "abcd").unwrap();
        b.finish_line();
        assert_eq!(b.as_bytes(), b"...\n");
    }
}
