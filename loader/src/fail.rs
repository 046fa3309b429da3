//! What happens when the boot cannot go on: one error line naming the file or
//! subject and the reason, on the screen and on the serial port, then a
//! ten-second pause (a key cuts it short) and a shutdown through the
//! firmware's ResetSystem. The loader never hangs and never jumps into a
//! kernel it could not set up completely; a panic takes the same road.

use crate::{arch, console};
use alloc::string::String;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use uefi::Status;
use uefi::boot::{self, EventType, TimerTrigger, Tpl};
use uefi::runtime::{self, ResetType};

/// Why the boot stopped.
#[derive(Debug, Clone)]
pub struct BootError {
    /// The file or subject concerned (`boot():/boot/kernel`, `limine.conf`).
    pub subject: String,
    /// What is wrong, in words a user can act on.
    pub reason: String,
    /// An optional second line (the offending configuration line).
    pub detail: Option<String>,
}

impl BootError {
    /// An error about `subject`.
    pub fn new(subject: impl Into<String>, reason: impl Into<String>) -> BootError {
        BootError { subject: subject.into(), reason: reason.into(), detail: None }
    }

    /// Adds a second line shown under the error.
    pub fn with_detail(mut self, detail: impl Into<String>) -> BootError {
        self.detail = Some(detail.into());
        self
    }
}

/// Result of a boot step.
pub type Result<T> = core::result::Result<T, BootError>;

/// TSC ticks per microsecond once calibrated, for waiting after
/// ExitBootServices.
static TICKS_PER_US: AtomicU64 = AtomicU64::new(0);

/// Remembers the calibrated clock so that a panic after ExitBootServices can
/// still wait before shutting down.
pub fn remember_clock(ticks_per_us: u64) {
    TICKS_PER_US.store(ticks_per_us, Ordering::Relaxed);
}

/// Reports `error` and shuts the machine down.
pub fn fail(error: BootError) -> ! {
    console::urgent(format_args!("error: {}: {}", error.subject, error.reason));
    if let Some(detail) = &error.detail {
        console::urgent(format_args!("{detail}"));
    }
    power_off()
}

/// Announces the shutdown, waits ten seconds or for a key, and shuts down.
pub fn power_off() -> ! {
    const PAUSE: Duration = Duration::from_secs(10);
    console::urgent(format_args!("powering off in 10 seconds (press a key to power off now)"));
    if console::boot_services_active() {
        if wait_for_key(PAUSE).is_err() {
            boot::stall(PAUSE);
        }
    } else {
        let ticks = TICKS_PER_US.load(Ordering::Relaxed).max(1000);
        let end = arch::rdtsc().saturating_add(ticks * PAUSE.as_micros() as u64);
        while arch::rdtsc() < end {
            core::hint::spin_loop();
        }
    }
    runtime::reset(ResetType::SHUTDOWN, Status::ABORTED, None)
}

fn wait_for_key(timeout: Duration) -> uefi::Result<usize> {
    // SAFETY: the event has no notification function, so nothing runs
    // behind the loader's back; it is only waited on.
    let timer = unsafe { boot::create_event(EventType::TIMER, Tpl::APPLICATION, None, None)? };
    boot::set_timer(&timer, TimerTrigger::Relative(timeout))?;
    let key = uefi::system::with_stdin(|stdin| {
        let _ = stdin.reset(false);
        stdin.wait_for_key_event()
    });
    match key {
        Ok(key) => boot::wait_for_event(&[timer, key]).map_err(|e| e.to_err_without_payload()),
        Err(_) => boot::wait_for_event(&[timer]).map_err(|e| e.to_err_without_payload()),
    }
}

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if PANICKING.swap(true, Ordering::SeqCst) {
        // A panic while reporting a panic: just stop the machine.
        runtime::reset(ResetType::SHUTDOWN, Status::ABORTED, None)
    }
    match info.location() {
        Some(at) => {
            console::urgent(format_args!("error: internal error: {} ({}:{})", info.message(), at.file(), at.line()))
        }
        None => console::urgent(format_args!("error: internal error: {}", info.message())),
    }
    power_off()
}
