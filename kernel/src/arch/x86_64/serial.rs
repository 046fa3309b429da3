//! The first serial port (COM1), through the `uart_16550` crate.

use core::sync::atomic::{AtomicBool, Ordering};
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550};

static COM1_TAKEN: AtomicBool = AtomicBool::new(false);

/// The COM1 UART, or nothing if the machine has none (output is then
/// dropped rather than spinning on a missing device).
pub struct SerialPort(Option<Uart16550<PioBackend>>);

impl SerialPort {
    /// Opens and initialises COM1 (I/O port 0x3f8). Only the first call
    /// gets the port; later calls get `None`.
    pub fn take_com1() -> Option<Self> {
        if COM1_TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: 0x3f8..0x400 is COM1 on the PC platform, and the flag above
        // hands it out once.
        let mut uart = unsafe { Uart16550::new_port(0x3f8) }.expect("0x3f8 is a valid port base");
        Some(Self(uart.init(Config::default()).ok().map(|()| uart)))
    }

    /// A second handle on the already initialised COM1, for the fatal-error
    /// path when the normal owner is stopped mid-line. Bytes from both may
    /// interleave; nothing else can go wrong (a UART has no DMA).
    pub fn emergency() -> Self {
        // SAFETY: the port is valid; concurrent use can only mix bytes.
        Self(unsafe { Uart16550::new_port(0x3f8) }.ok())
    }

    /// Writes `bytes`, turning `\n` into `\r\n` for terminals.
    pub fn write(&mut self, bytes: &[u8]) {
        let Some(uart) = self.0.as_mut() else { return };
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            match line.split_last() {
                Some((b'\n', body)) => {
                    uart.send_bytes_exact(body);
                    uart.send_bytes_exact(b"\r\n");
                }
                _ => uart.send_bytes_exact(line),
            }
        }
    }
}
