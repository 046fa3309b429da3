//! Reaching the current CPU's data through the GS base.
//!
//! Each CPU's data begins with a [`PerCpuHeader`]; GS points at it while the
//! CPU runs kernel code. The syscall entry (which can trust nothing else)
//! finds the kernel stack in it, and `index()` is one GS-relative load.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

const IA32_GS_BASE: u32 = 0xc000_0101;
const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;

/// The part of each CPU's data that assembly reaches through GS. Field
/// offsets are part of the contract with the entry stubs.
#[repr(C)]
pub struct PerCpuHeader {
    /// gs:0 — address of this header.
    self_ptr: AtomicU64,
    /// gs:8 — CPU index (0 is the boot CPU).
    index: AtomicU64,
    /// gs:16 — stack pointer to load on entry from user mode.
    pub kernel_rsp: AtomicU64,
    /// gs:24 — scratch slot where the syscall entry parks the user RSP.
    pub user_rsp: AtomicU64,
}

/// Offset of `kernel_rsp`, for the syscall entry stub.
pub const KERNEL_RSP_OFFSET: usize = 16;
/// Offset of `user_rsp`, for the syscall entry stub.
pub const USER_RSP_OFFSET: usize = 24;

impl PerCpuHeader {
    /// A header not yet installed on any CPU.
    pub const fn new() -> Self {
        Self {
            self_ptr: AtomicU64::new(0),
            index: AtomicU64::new(0),
            kernel_rsp: AtomicU64::new(0),
            user_rsp: AtomicU64::new(0),
        }
    }
}

impl Default for PerCpuHeader {
    fn default() -> Self {
        Self::new()
    }
}

/// Points this CPU's GS base at `header` and records `index` in it. Called
/// first thing on every CPU: [`index`] relies on it.
pub fn install(header: &'static PerCpuHeader, index: usize) {
    let addr = header as *const PerCpuHeader as u64;
    header.self_ptr.store(addr, Ordering::Relaxed);
    header.index.store(index as u64, Ordering::Relaxed);
    // SAFETY: GS_BASE and KERNEL_GS_BASE exist on every x86-64 CPU; pointing
    // GS at a 'static header is what every GS-relative access expects, and
    // the user GS base starts as 0.
    unsafe {
        super::cpu::wrmsr(IA32_GS_BASE, addr);
        super::cpu::wrmsr(IA32_KERNEL_GS_BASE, 0);
    }
}

/// The index of the CPU running this code.
#[inline]
pub fn index() -> usize {
    let index: u64;
    // SAFETY: `install` ran on this CPU before any code that can call this,
    // so gs:8 is the `index` field of this CPU's 'static header.
    unsafe {
        asm!("mov {}, gs:[8]", out(reg) index, options(nostack, preserves_flags, readonly));
    }
    index as usize
}
