//! The local x2APIC of each CPU, through the `x2apic` crate: interrupts
//! between CPUs (IPIs), end-of-interrupt, and the timer.
//!
//! The kernel requires x2APIC mode (QEMU provides it under TCG from 8.0 on):
//! registers are MSRs, an IPI is one MSR write, and APIC IDs are 32 bits.

use core::cell::UnsafeCell;
use x2apic::lapic::{LocalApic, LocalApicBuilder, TimerDivide, TimerMode};

/// Vectors the kernel assigns to local interrupts.
pub mod vector {
    /// The per-CPU timer.
    pub const TIMER: u8 = 0xe0;
    /// TLB shootdown requests.
    pub const TLB_SHOOTDOWN: u8 = 0xf0;
    /// "Are you there?" (boot check) and generic wake-ups.
    pub const PING: u8 = 0xf1;
    /// Reschedule: a thread was made runnable on the target CPU.
    pub const RESCHEDULE: u8 = 0xf2;
    /// Local APIC errors.
    pub const APIC_ERROR: u8 = 0xfe;
    /// Spurious interrupts (never acknowledged).
    pub const SPURIOUS: u8 = 0xff;
}

/// One CPU's local APIC driver. Only its own CPU touches it, with interrupts
/// masked.
pub struct Apic {
    lapic: UnsafeCell<Option<LocalApic>>,
}

// SAFETY: each `Apic` is used only by the CPU it belongs to (see `with`), with
// interrupts masked, so there is never concurrent access.
unsafe impl Sync for Apic {}

/// Why the local APIC could not be brought up.
#[derive(Debug)]
pub enum ApicError {
    /// The CPU lacks x2APIC mode.
    NoX2Apic,
    /// The `x2apic` crate refused the configuration.
    Config(&'static str),
}

impl core::fmt::Display for ApicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoX2Apic => f.write_str("no x2APIC support"),
            Self::Config(why) => write!(f, "x2apic configuration refused: {why}"),
        }
    }
}

/// Whether this CPU supports x2APIC mode.
pub fn has_x2apic() -> bool {
    core::arch::x86_64::__cpuid(1).ecx & (1 << 21) != 0
}

impl Apic {
    /// An APIC not yet enabled.
    pub const fn new() -> Self {
        Self { lapic: UnsafeCell::new(None) }
    }

    fn with<R>(&self, f: impl FnOnce(&mut LocalApic) -> R) -> R {
        let _masked = super::cpu::InterruptGuard::new();
        // SAFETY: only the owning CPU calls this, with interrupts masked, so
        // no other reference to the cell's contents exists.
        let slot = unsafe { &mut *self.lapic.get() };
        f(slot.as_mut().expect("local APIC used before init_local"))
    }

    /// Enables this CPU's local APIC in x2APIC mode with the timer masked
    /// (one-shot, stopped) until [`Self::start_periodic_timer`].
    pub fn init_local(&self) -> Result<(), ApicError> {
        if !has_x2apic() {
            return Err(ApicError::NoX2Apic);
        }
        let mut lapic = LocalApicBuilder::new()
            .timer_vector(vector::TIMER as usize)
            .error_vector(vector::APIC_ERROR as usize)
            .spurious_vector(vector::SPURIOUS as usize)
            .timer_mode(TimerMode::OneShot)
            .timer_divide(TimerDivide::Div16)
            .timer_initial(0)
            .build()
            .map_err(ApicError::Config)?;
        let _masked = super::cpu::InterruptGuard::new();
        // SAFETY: enabling the local APIC in x2APIC mode is what the kernel
        // intends on every CPU; the vectors above have IDT entries.
        unsafe { lapic.enable() };
        // SAFETY: only the owning CPU runs `init_local`, once, before any
        // other method; interrupts are masked.
        unsafe { *self.lapic.get() = Some(lapic) };
        Ok(())
    }

    /// This CPU's x2APIC ID.
    pub fn id(&self) -> u32 {
        // SAFETY: reading the ID register has no side effects.
        self.with(|l| unsafe { l.id() })
    }

    /// Measures the timer (divider 16) against the TSC: returns timer ticks
    /// and TSC ticks over the same interval (of at least `min_tsc` TSC
    /// ticks). Each end is a (TSC, count) pair read back to back and retried
    /// until tight, so a descheduled vCPU does not skew the ratio.
    pub fn measure_timer(&self, min_tsc: u64) -> (u64, u64) {
        // SAFETY: one-shot mode counting down from the maximum; the timer
        // is stopped again below before it could expire.
        self.with(|l| unsafe {
            l.set_timer_mode(TimerMode::OneShot);
            l.set_timer_divide(TimerDivide::Div16);
            l.set_timer_initial(u32::MAX);
        });
        let sample = || {
            let mut best = (u64::MAX, 0u64, 0u32);
            for _ in 0..16 {
                let t0 = super::cpu::rdtsc();
                // SAFETY: reading the current-count register has no effect.
                let c = self.with(|l| unsafe { l.timer_current() });
                let t1 = super::cpu::rdtsc();
                if t1 - t0 < best.0 {
                    best = (t1 - t0, t0 + (t1 - t0) / 2, c);
                }
            }
            (best.1, best.2)
        };
        let (t0, c0) = sample();
        while super::cpu::rdtsc() - t0 < min_tsc {
            super::cpu::pause();
        }
        let (t1, c1) = sample();
        // SAFETY: stopping the timer.
        self.with(|l| unsafe { l.set_timer_initial(0) });
        ((c0 - c1) as u64, t1 - t0)
    }

    /// Starts the periodic timer, firing every `ticks` (divider 16).
    pub fn start_periodic_timer(&self, ticks: u32) {
        // SAFETY: the timer vector has an IDT entry.
        self.with(|l| unsafe {
            l.set_timer_divide(TimerDivide::Div16);
            l.set_timer_mode(TimerMode::Periodic);
            l.set_timer_initial(ticks.max(1));
            l.enable_timer();
        });
    }
}

impl Default for Apic {
    fn default() -> Self {
        Self::new()
    }
}

/// Signals end of interrupt without the driver object: the x2APIC EOI
/// register is the same MSR on every CPU. Used by interrupt paths that may
/// run while the per-CPU driver is in use.
pub fn eoi() {
    // SAFETY: writing 0 to the x2APIC EOI MSR (0x80b) acknowledges the
    // in-service interrupt; x2APIC mode is enabled on every CPU that takes
    // interrupts.
    unsafe { super::cpu::wrmsr(0x80b, 0) };
}

/// Sends an IPI by writing the x2APIC ICR directly: a single MSR write,
/// used on the TLB-shootdown hot path.
pub fn send_ipi_fast(apic_id: u32, vector: u8) {
    // SAFETY: ICR (MSR 0x830): destination in bits 63:32, fixed delivery,
    // physical destination, edge, assert, the vector in bits 7:0. x2APIC mode
    // is on for every CPU that sends IPIs.
    unsafe { super::cpu::wrmsr(0x830, (apic_id as u64) << 32 | 1 << 14 | vector as u64) };
}

/// Sends an NMI by writing the x2APIC ICR directly (delivery mode NMI).
/// Used to stop other CPUs on a fatal error, when the per-CPU driver may be
/// in use by the code that failed.
pub fn send_nmi_fast(apic_id: u32) {
    // SAFETY: ICR write with delivery mode 100b (NMI), physical destination,
    // assert; the NMI handler only halts or reports.
    unsafe { super::cpu::wrmsr(0x830, (apic_id as u64) << 32 | 1 << 14 | 0b100 << 8) };
}
