//! `print!` and `println!`: formatted text to the kernel log, one line per
//! call, without allocating.

use core::fmt::{self, Write};

/// Longest text one print writes; longer text is cut.
const MAX: usize = 1024;

struct Buf {
    bytes: [u8; MAX],
    len: usize,
}

impl Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let take = s.len().min(MAX - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Formats `args` and writes them to the kernel log.
pub fn print(args: fmt::Arguments<'_>) {
    let mut buf = Buf { bytes: [0; MAX], len: 0 };
    let _ = buf.write_fmt(args);
    let _ = crate::sys::debug_print(&buf.bytes[..buf.len]);
}

/// Writes formatted text to the kernel log.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::print::print(format_args!($($arg)*)) };
}

/// Writes formatted text to the kernel log (each call is one log line).
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => { $crate::print::print(format_args!($($arg)*)) };
}
