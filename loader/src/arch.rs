//! The x86-64 instructions the loader needs that Rust has no safe form for:
//! port I/O, model-specific registers, the time-stamp counter and MMIO.
//!
//! They are gathered here so that the rest of the loader states its
//! assumptions once, at these few `unsafe` functions, instead of sprinkling
//! inline assembly around.

use core::arch::x86_64::{__cpuid, __cpuid_count};
use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

/// `IA32_APIC_BASE`.
pub const MSR_APIC_BASE: u32 = 0x1b;
/// `IA32_PAT`.
pub const MSR_PAT: u32 = 0x277;
/// `IA32_EFER`.
pub const MSR_EFER: u32 = 0xc000_0080;
/// x2APIC interrupt command register.
pub const MSR_X2APIC_ICR: u32 = 0x830;

/// `IA32_APIC_BASE` bit 11: the local APIC is enabled.
pub const APIC_BASE_ENABLE: u64 = 1 << 11;
/// `IA32_APIC_BASE` bit 10: the local APIC is in x2APIC mode.
pub const APIC_BASE_X2APIC: u64 = 1 << 10;
/// `EFER.LME`.
pub const EFER_LME: u64 = 1 << 8;
/// `EFER.NXE`.
pub const EFER_NXE: u64 = 1 << 11;

/// The PAT layout the protocol specifies: WB, WT, UC-, UC, WP, WC, then
/// UC- and UC for the two unspecified entries.
pub const PAT_VALUE: u64 = 0x0007_0105_0007_0406;

/// CPU features the loader looks at.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    /// No-execute page protection (`EFER.NXE` can be set).
    pub nx: bool,
    /// 1 GiB pages.
    pub huge_1g: bool,
    /// Page attribute table.
    pub pat: bool,
    /// x2APIC mode.
    pub x2apic: bool,
    /// CPUID leaf 0xB (x2APIC ID).
    pub leaf_0b: bool,
}

impl Features {
    /// Reads the features of the running CPU.
    pub fn detect() -> Features {
        let max_basic = __cpuid(0).eax;
        let basic = __cpuid(1);
        let max_ext = __cpuid(0x8000_0000).eax;
        let ext = if max_ext >= 0x8000_0001 { __cpuid(0x8000_0001).edx } else { 0 };
        Features {
            nx: ext & (1 << 20) != 0,
            huge_1g: ext & (1 << 26) != 0,
            pat: basic.edx & (1 << 16) != 0,
            x2apic: basic.ecx & (1 << 21) != 0,
            leaf_0b: max_basic >= 0xb && __cpuid_count(0xb, 0).ebx != 0,
        }
    }
}

/// The APIC ID of the running CPU: the 32-bit x2APIC ID when `x2apic` is
/// set and CPUID has it, else the 8-bit initial APIC ID.
pub fn apic_id(features: &Features, x2apic: bool) -> u32 {
    if x2apic && features.leaf_0b { __cpuid_count(0xb, 0).edx } else { __cpuid(1).ebx >> 24 }
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads a counter; UEFI leaves CR4.TSD clear, so it is
    // allowed at CPL 0 in any case.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Reads a model-specific register.
///
/// # Safety
///
/// `msr` must exist on this CPU (reading a missing one raises #GP).
pub unsafe fn rdmsr(msr: u32) -> u64 {
    // SAFETY: the caller guarantees the MSR exists.
    unsafe { Msr::new(msr).read() }
}

/// Writes a model-specific register.
///
/// # Safety
///
/// `msr` must exist and `value` must be valid for it; the write must not
/// break what the running code relies on (paging, the APIC it talks to).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the MSR and the value are valid.
    unsafe { Msr::new(msr).write(value) }
}

/// Writes a byte to an I/O port.
///
/// # Safety
///
/// The port must belong to a device the loader may drive at this point.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller guarantees the port may be written.
    unsafe { Port::new(port).write(value) }
}

/// Reads a byte from an I/O port.
///
/// # Safety
///
/// The port must belong to a device the loader may read at this point.
pub unsafe fn inb(port: u16) -> u8 {
    // SAFETY: the caller guarantees the port may be read.
    unsafe { Port::new(port).read() }
}

/// Reads a 32-bit MMIO register.
///
/// # Safety
///
/// `addr` must be a mapped, 4-byte aligned device register.
pub unsafe fn mmio_read(addr: u64) -> u32 {
    // SAFETY: the caller guarantees the register is mapped and aligned.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Writes a 32-bit MMIO register.
///
/// # Safety
///
/// `addr` must be a mapped, 4-byte aligned device register that may be
/// written with `value`.
pub unsafe fn mmio_write(addr: u64, value: u32) {
    // SAFETY: the caller guarantees the register is mapped, aligned, writable.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

/// Disables maskable interrupts.
pub fn cli() {
    x86_64::instructions::interrupts::disable();
}

/// Time measured with the TSC, calibrated against the firmware's stall
/// service while boot services still exist.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    ticks_per_us: u64,
}

impl Clock {
    /// Measures the TSC rate over 10 ms of `stall`.
    pub fn calibrate(stall: impl FnOnce(core::time::Duration)) -> Clock {
        let start = rdtsc();
        stall(core::time::Duration::from_millis(10));
        let ticks = rdtsc().saturating_sub(start);
        Clock { ticks_per_us: (ticks / 10_000).max(1) }
    }

    /// TSC ticks per microsecond.
    pub fn ticks_per_us(&self) -> u64 {
        self.ticks_per_us
    }

    /// Calls `done` until it returns true or `us` microseconds pass; returns
    /// whether it returned true.
    pub fn wait_until(&self, us: u64, mut done: impl FnMut() -> bool) -> bool {
        let deadline = rdtsc().saturating_add(us.saturating_mul(self.ticks_per_us));
        loop {
            if done() {
                return true;
            }
            if rdtsc() >= deadline {
                return done();
            }
            core::hint::spin_loop();
        }
    }

    /// Spins for `us` microseconds.
    pub fn delay(&self, us: u64) {
        self.wait_until(us, || false);
    }
}
