//! Time since boot, from the time-stamp counter calibrated against the PIT.
//!
//! Under QEMU's software emulation the TSC follows host time, so it is the
//! clock of both log timestamps and benchmarks.

use crate::arch::cpu::{pause, rdtsc};
use core::sync::atomic::{AtomicU64, Ordering};
use crossbeam_utils::Backoff;

static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
static TSC_PER_MICRO: AtomicU64 = AtomicU64::new(0);

/// Marks the start of the boot clock. First thing on the boot CPU.
pub fn start() {
    BOOT_TSC.store(rdtsc(), Ordering::Relaxed);
}

/// Measures the TSC frequency against the PIT.
pub fn calibrate() {
    TSC_PER_MICRO.store(crate::arch::pit::tsc_per_micro(), Ordering::Relaxed);
}

/// TSC ticks per microsecond (0 before calibration).
pub fn tsc_per_micro() -> u64 {
    TSC_PER_MICRO.load(Ordering::Relaxed)
}

/// Microseconds since boot (0 before calibration).
pub fn micros_since_boot() -> u64 {
    match tsc_per_micro() {
        0 => 0,
        per => (rdtsc().saturating_sub(BOOT_TSC.load(Ordering::Relaxed))) / per,
    }
}

/// A point in time to wait for.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(u64);

impl Deadline {
    /// `micros` microseconds from now.
    pub fn after_micros(micros: u64) -> Self {
        Self(rdtsc().saturating_add(micros.saturating_mul(tsc_per_micro().max(1))))
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        rdtsc() >= self.0
    }
}

/// Spins until `done()` or `timeout_micros` pass; returns whether `done()`
/// became true. Backs off with `pause` so a descheduled vCPU we wait for
/// gets host time.
pub fn wait_until(timeout_micros: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Deadline::after_micros(timeout_micros);
    let backoff = Backoff::new();
    loop {
        if done() {
            return true;
        }
        if deadline.expired() {
            return done();
        }
        if backoff.is_completed() {
            pause();
        } else {
            backoff.snooze();
        }
    }
}
