//! Turning the raw bytes of the guest's serial port into clean text lines.
//!
//! OVMF drives the serial console as a VT100 terminal: it clears the screen,
//! moves the cursor and sets colours. Echoed as they are, those sequences
//! would wipe the user's terminal; kept in a log, they would break matching.
//! [`Cleaner`] removes escape sequences and control characters from a byte
//! stream that may be cut anywhere (a sequence can span two reads) and hands
//! out complete lines.

/// Where the cleaner is inside an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Ordinary text.
    Text,
    /// After ESC.
    Escape,
    /// After `ESC [`: a control sequence, ended by a byte in 0x40..=0x7e.
    Csi,
    /// After `ESC ]` (or P, X, ^, _): a string, ended by BEL or `ESC \`.
    String,
    /// ESC seen inside a string: `\` ends it.
    StringEscape,
    /// After `ESC (`, `ESC )`, `ESC #`...: one more byte follows.
    OneMore,
    /// A carriage return was seen: `\r\n` is one line break.
    CarriageReturn,
}

/// A streaming filter from serial bytes to clean lines.
#[derive(Debug)]
pub struct Cleaner {
    state: State,
    line: Vec<u8>,
}

impl Default for Cleaner {
    fn default() -> Self {
        Self::new()
    }
}

impl Cleaner {
    /// A cleaner at the start of a stream.
    pub fn new() -> Self {
        Self {
            state: State::Text,
            line: Vec::new(),
        }
    }

    /// Feeds `bytes`; returns the lines they completed, without line ends.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &byte in bytes {
            self.byte(byte, &mut lines);
        }
        lines
    }

    /// Ends the stream: returns the last, unterminated line if it has text.
    pub fn finish(&mut self) -> Option<String> {
        self.state = State::Text;
        if self.line.is_empty() {
            return None;
        }
        Some(take_line(&mut self.line))
    }

    fn byte(&mut self, byte: u8, lines: &mut Vec<String>) {
        const ESC: u8 = 0x1b;
        const BEL: u8 = 0x07;
        match self.state {
            State::Text | State::CarriageReturn => {
                let after_cr = self.state == State::CarriageReturn;
                self.state = State::Text;
                match byte {
                    ESC => self.state = State::Escape,
                    b'\n' => lines.push(take_line(&mut self.line)),
                    // A lone carriage return rewinds the line on a terminal;
                    // for a log the text so far is worth keeping, so it is
                    // ended as a line unless `\n` follows (`\r\r\n` too).
                    b'\r' => self.state = State::CarriageReturn,
                    b'\t' => self.line.push(b'\t'),
                    0x00..=0x1f | 0x7f => {}
                    _ => {
                        if after_cr && !self.line.is_empty() {
                            lines.push(take_line(&mut self.line));
                        }
                        self.line.push(byte);
                    }
                }
            }
            State::Escape => {
                self.state = match byte {
                    b'[' => State::Csi,
                    b']' | b'P' | b'X' | b'^' | b'_' => State::String,
                    b'(' | b')' | b'*' | b'+' | b'#' | b'%' => State::OneMore,
                    ESC => State::Escape,
                    _ => State::Text,
                }
            }
            State::Csi => {
                if (0x40..=0x7e).contains(&byte) {
                    self.state = State::Text;
                } else if byte == ESC {
                    self.state = State::Escape;
                }
            }
            State::String => match byte {
                BEL => self.state = State::Text,
                ESC => self.state = State::StringEscape,
                _ => {}
            },
            State::StringEscape => {
                self.state = if byte == b'\\' {
                    State::Text
                } else {
                    State::String
                };
            }
            State::OneMore => self.state = State::Text,
        }
    }
}

fn take_line(line: &mut Vec<u8>) -> String {
    let text = String::from_utf8_lossy(line).trim_end().to_string();
    line.clear();
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(text: &str) -> String {
        let mut cleaner = Cleaner::new();
        let mut lines = cleaner.push(text.as_bytes());
        lines.extend(cleaner.finish());
        lines.join("\n")
    }

    #[test]
    fn removes_ovmf_screen_control() {
        let raw = b"\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001\r\n\x1b[0m\x1b[37m\x1b[40mloader: ok\r\n";
        let mut c = Cleaner::new();
        assert_eq!(c.push(raw), ["BdsDxe: loading Boot0001", "loader: ok"]);
        assert_eq!(c.finish(), None);
    }

    #[test]
    fn sequences_may_span_reads() {
        let mut c = Cleaner::new();
        assert!(c.push(b"smp: 4 of \x1b[1").is_empty());
        assert!(c.push(b";3").is_empty());
        assert_eq!(c.push(b"1m4 CPUs online\x1b[0m\r").len(), 0);
        assert_eq!(c.push(b"\nnext"), ["smp: 4 of 4 CPUs online"]);
        assert_eq!(c.finish().as_deref(), Some("next"));
    }

    #[test]
    fn osc_charset_and_control_bytes() {
        assert_eq!(
            strip("\x1b]0;title\x07a\x1b(Bb\x08c\x1b]2;t\x1b\\d\x00"),
            "abcd"
        );
        assert_eq!(strip("tab\tkept"), "tab\tkept");
    }

    #[test]
    fn lone_carriage_return_ends_a_line() {
        let mut c = Cleaner::new();
        assert_eq!(
            c.push(b"progress 1\rprogress 2\r\n"),
            ["progress 1", "progress 2"]
        );
        assert_eq!(c.push(b"a\r\r\nb\n"), ["a", "b"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(strip("x\u{fffd}y"), "x\u{fffd}y");
        let mut c = Cleaner::new();
        assert_eq!(c.push(b"\xff\xfeok\n"), ["\u{fffd}\u{fffd}ok"]);
    }
}
