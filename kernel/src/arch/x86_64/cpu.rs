//! Single instructions and control registers, wrapped safely where the
//! instruction cannot break memory safety on its own.

use core::arch::asm;
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

/// Whether maskable interrupts are enabled on this CPU.
#[inline]
pub fn interrupts_enabled() -> bool {
    x86_64::instructions::interrupts::are_enabled()
}

/// Masks interrupts on this CPU.
#[inline]
pub fn disable_interrupts() {
    x86_64::instructions::interrupts::disable();
}

/// Unmasks interrupts on this CPU.
#[inline]
pub fn enable_interrupts() {
    x86_64::instructions::interrupts::enable();
}

/// Enables interrupts and halts until one arrives, atomically (`sti; hlt`),
/// so a wake-up between the two cannot be missed.
#[inline]
pub fn enable_interrupts_and_wait() {
    x86_64::instructions::interrupts::enable_and_hlt();
}

/// Masks interrupts until dropped, then restores the previous state.
/// Taken around per-CPU data so an interrupt handler or a preemption on the
/// same CPU cannot see it half-updated.
pub struct InterruptGuard {
    was_enabled: bool,
}

impl InterruptGuard {
    /// Masks interrupts.
    #[inline]
    pub fn new() -> Self {
        let was_enabled = interrupts_enabled();
        if was_enabled {
            disable_interrupts();
        }
        Self { was_enabled }
    }
}

impl Default for InterruptGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for InterruptGuard {
    #[inline]
    fn drop(&mut self) {
        if self.was_enabled {
            enable_interrupts();
        }
    }
}

/// A spin-wait hint (`pause`): tells the CPU (and a hypervisor) that this
/// vCPU is waiting, which matters when vCPUs outnumber host cores.
#[inline]
pub fn pause() {
    core::hint::spin_loop();
}

/// Stops this CPU for good: interrupts off, `hlt` forever.
pub fn halt_forever() -> ! {
    loop {
        disable_interrupts();
        x86_64::instructions::hlt();
    }
}

/// The time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads a counter; the kernel does not set CR4.TSD in
    // a way that would fault in ring 0.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The time-stamp counter, ordered after every earlier instruction
/// (`lfence; rdtsc`), for measuring short intervals.
#[inline]
pub fn rdtsc_ordered() -> u64 {
    // SAFETY: LFENCE and RDTSC have no memory effects.
    unsafe {
        core::arch::x86_64::_mm_lfence();
        core::arch::x86_64::_rdtsc()
    }
}

/// CR2: the linear address of the last page fault.
#[inline]
pub fn read_cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// The physical address of the current page-table root (CR3 without flags).
#[inline]
pub fn current_root() -> u64 {
    x86_64::registers::control::Cr3::read_raw().0.start_address().as_u64()
}

/// Turns on the paging protections the kernel relies on: no-execute pages
/// (EFER.NXE), write protection in ring 0 (CR0.WP), global pages (CR4.PGE).
pub fn enable_paging_protections() {
    // SAFETY: setting NXE only makes the NX bit meaningful; the loader
    // already set it on CPUs that have it, and the kernel requires it.
    unsafe { Efer::update(|f| f.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    // SAFETY: WP makes ring 0 honour read-only pages; every page the kernel
    // writes is mapped writable.
    unsafe { Cr0::update(|f| f.insert(Cr0Flags::WRITE_PROTECT)) };
    // SAFETY: PGE lets global entries survive CR3 reloads; kernel-half
    // changes are flushed with `flush_tlb_all_global`.
    unsafe { Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL)) };
}

/// Whether the CPU supports no-execute pages.
pub fn has_nx() -> bool {
    let ext = core::arch::x86_64::__cpuid(0x8000_0001);
    ext.edx & (1 << 20) != 0
}

/// Invalidates the TLB entry for the page containing `addr` on this CPU.
#[inline]
pub fn invlpg(addr: u64) {
    x86_64::instructions::tlb::flush(x86_64::VirtAddr::new_truncate(addr));
}

/// Flushes every non-global TLB entry on this CPU (reloads CR3).
#[inline]
pub fn flush_tlb_nonglobal() {
    x86_64::instructions::tlb::flush_all();
}

/// Flushes every TLB entry on this CPU, global ones included (toggles
/// CR4.PGE).
pub fn flush_tlb_all_global() {
    let cr4 = Cr4::read();
    // SAFETY: clearing and restoring PGE changes no mapping; it is the
    // architectural way to drop global TLB entries.
    unsafe {
        Cr4::write(cr4 - Cr4Flags::PAGE_GLOBAL);
        Cr4::write(cr4);
    }
}

/// Writes a model-specific register.
///
/// # Safety
/// `msr` must exist and the value must not break an invariant the kernel
/// relies on.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).write(value) }
}

/// Executes `ud2`. Used by the exception self-test.
pub fn invalid_opcode() {
    // SAFETY: UD2 raises #UD, which the kernel's trap handler reports; it
    // touches no memory.
    unsafe { asm!("ud2", options(nomem, nostack)) };
}
