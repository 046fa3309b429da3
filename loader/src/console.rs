//! Where the loader's messages go.
//!
//! Every message is one line starting with `loader: `. While boot services
//! run, lines go to the firmware console (ConOut). With `serial: yes` they are
//! also written to COM1 — unless ConOut already includes a serial port (OVMF
//! puts one there under `-serial stdio`), in which case the firmware copies
//! them and a second copy would show every line twice. Errors always reach
//! the serial port, whatever the configuration says. After ExitBootServices
//! only COM1 is left, and it is used when the serial port is a console by
//! either of the two rules above.

use crate::arch;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};
use uefi::runtime::{self, VariableVendor};

static CONOUT_HAS_UART: AtomicBool = AtomicBool::new(false);
static SERIAL_REQUESTED: AtomicBool = AtomicBool::new(false);
static BOOT_SERVICES: AtomicBool = AtomicBool::new(true);
static UART_READY: AtomicBool = AtomicBool::new(false);

const COM1: u16 = 0x3f8;

/// Looks at the firmware's `ConOut` variable to learn whether the firmware
/// console already reaches a serial port.
pub fn init() {
    let has_uart = runtime::get_variable_boxed(uefi::cstr16!("ConOut"), &VariableVendor::GLOBAL_VARIABLE)
        .map(|(path, _)| loader_core::devpath::has_uart(&path))
        .unwrap_or(false);
    CONOUT_HAS_UART.store(has_uart, Ordering::Relaxed);
}

/// Applies `serial:` from the configuration.
pub fn set_serial(enabled: bool) {
    SERIAL_REQUESTED.store(enabled, Ordering::Relaxed);
}

/// Records that boot services are gone: from now on only COM1 is used.
pub fn exited_boot_services() {
    BOOT_SERVICES.store(false, Ordering::SeqCst);
}

/// Whether boot services (and so the firmware console) are still there.
pub fn boot_services_active() -> bool {
    BOOT_SERVICES.load(Ordering::SeqCst)
}

/// Prints a progress line.
pub fn line(args: fmt::Arguments<'_>) {
    let conout_uart = CONOUT_HAS_UART.load(Ordering::Relaxed);
    let serial = SERIAL_REQUESTED.load(Ordering::Relaxed);
    if boot_services_active() {
        to_conout(format_args!("loader: {args}\n"));
        if serial && !conout_uart {
            to_com1(format_args!("loader: {args}\n"));
        }
    } else if serial || conout_uart {
        to_com1(format_args!("loader: {args}\n"));
    }
}

/// Prints a line that must reach the serial port whatever the configuration
/// says (errors and what follows them).
pub fn urgent(args: fmt::Arguments<'_>) {
    if boot_services_active() {
        to_conout(format_args!("loader: {args}\n"));
        if !CONOUT_HAS_UART.load(Ordering::Relaxed) {
            to_com1(format_args!("loader: {args}\n"));
        }
    } else {
        to_com1(format_args!("loader: {args}\n"));
    }
}

/// Prints a progress line: `say!("kernel {path}")`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::console::line(format_args!($($arg)*)) };
}

/// Prints a warning line.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::console::line(format_args!("warning: {}", format_args!($($arg)*))) };
}

fn to_conout(args: fmt::Arguments<'_>) {
    uefi::system::with_stdout(|out| {
        let _ = out.write_fmt(args);
    });
}

fn to_com1(args: fmt::Arguments<'_>) {
    if !UART_READY.swap(true, Ordering::Relaxed) && !CONOUT_HAS_UART.load(Ordering::Relaxed) {
        init_uart();
    }
    let _ = Com1.write_fmt(args);
}

/// Programs COM1 for 115200 baud, 8N1, when the firmware does not use it.
fn init_uart() {
    // SAFETY: COM1's registers belong to the legacy UART, which the firmware
    // does not use as a console (checked by the caller); programming it
    // only changes how bytes leave on the wire.
    unsafe {
        arch::outb(COM1 + 1, 0x00); // no interrupts
        arch::outb(COM1 + 3, 0x80); // divisor latch
        arch::outb(COM1, 0x01); // 115200 baud
        arch::outb(COM1 + 1, 0x00);
        arch::outb(COM1 + 3, 0x03); // 8N1
        arch::outb(COM1 + 2, 0xc7); // FIFO on, cleared
        arch::outb(COM1 + 4, 0x0b); // DTR, RTS, OUT2
    }
}

struct Com1;

impl Com1 {
    fn put(byte: u8) {
        // Wait (boundedly) for the transmit holding register to empty. A
        // missing UART reads 0xff here, so this never blocks without one.
        for _ in 0..100_000 {
            // SAFETY: reading the line status register of COM1 has no side
            // effect on the device.
            if unsafe { arch::inb(COM1 + 5) } & 0x20 != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        // SAFETY: writing the transmit register sends one byte.
        unsafe { arch::outb(COM1, byte) }
    }
}

impl Write for Com1 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                Com1::put(b'\r');
            }
            Com1::put(byte);
        }
        Ok(())
    }
}
