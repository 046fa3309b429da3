//! The kernel log: the `log` facade written to the serial port.
//!
//! Every line starts with the time since boot and the CPU that wrote it:
//! `[    1.234567 cpu2] message`. A line is formatted into a buffer first and
//! written under a lock in one burst, so lines from different CPUs never
//! interleave. A fault while the same CPU is writing (or a fatal error
//! while another CPU is stopped mid-line) falls back to an unlocked
//! emergency writer instead of deadlocking.

use crate::arch::serial::SerialPort;
use crate::kcore::line_buf::LineBuf;
use crate::sync::SpinLock;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};
use log::{Level, LevelFilter, Log, Metadata, Record};

static PORT: SpinLock<Option<SerialPort>> = SpinLock::new(None);
/// Index of the CPU inside `PORT`'s lock, or `usize::MAX`.
static WRITER: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Longest line written in one piece; longer lines are cut with `...`.
const LINE_MAX: usize = 512;

struct KernelLog;
static LOGGER: KernelLog = KernelLog;

/// Opens the serial port and installs the logger at `level`.
pub fn init(level: LevelFilter) {
    *PORT.lock() = SerialPort::take_com1();
    // Fails only if a logger is already set, which cannot happen here.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Parses the `log=` command-line option.
pub fn level_from(text: Option<&str>) -> Result<LevelFilter, &str> {
    match text {
        None => Ok(LevelFilter::Info),
        Some(t) => t.parse().map_err(|_| t),
    }
}

/// Writes the line prefix: time since boot and CPU.
pub fn write_prefix(out: &mut impl Write) -> fmt::Result {
    let micros = crate::time::micros_since_boot();
    write!(out, "[{:>5}.{:06} cpu{}] ", micros / 1_000_000, micros % 1_000_000, crate::cpu::current_index())
}

/// Formats one line (prefix included) and writes it whole.
pub fn write_line(args: fmt::Arguments<'_>) {
    let mut line = LineBuf::<LINE_MAX>::new();
    let _ = write_prefix(&mut line);
    let _ = line.write_fmt(args);
    line.finish_line();
    write_bytes(line.as_bytes());
}

fn write_bytes(bytes: &[u8]) {
    let me = crate::cpu::current_index();
    if WRITER.load(Ordering::Relaxed) == me || crate::fatal::in_progress() {
        // Re-entered on this CPU (e.g. a fault inside the logger) or the
        // system is dying: never wait for the lock.
        SerialPort::emergency().write(bytes);
        return;
    }
    let mut port = PORT.lock();
    WRITER.store(me, Ordering::Relaxed);
    if let Some(p) = port.as_mut() {
        p.write(bytes);
    }
    WRITER.store(usize::MAX, Ordering::Relaxed);
}

/// Writes raw bytes on the emergency path (fatal errors).
pub fn write_emergency(bytes: &[u8]) {
    SerialPort::emergency().write(bytes);
}

impl Log for KernelLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let tag = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            Level::Info => "",
            Level::Debug => "debug: ",
            Level::Trace => "trace: ",
        };
        write_line(format_args!("{tag}{}", record.args()));
    }

    fn flush(&self) {}
}
