//! Kernel accesses that may fault on purpose, and their fixups.
//!
//! Each instruction allowed to fault has an entry `(instruction, fixup)` in
//! the `.extable` section. When a page fault hits such an instruction in
//! kernel mode, the fault handler resumes at the fixup instead of declaring
//! the kernel broken. Backtraces use this to read stack memory they cannot
//! trust; tests use it to touch pages that may have been unmapped.

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text.extable_probes, "ax"

    .global probe_read_u64
probe_read_u64:
    xorl %edx, %edx
1:  movq (%rdi), %rax
    ret
2:  movl $1, %edx
    xorl %eax, %eax
    ret
    .pushsection .extable, "a"
    .balign 8
    .quad 1b, 2b
    .popsection

    .global probe_write_u64
probe_write_u64:
    xorl %edx, %edx
    xorl %eax, %eax
3:  movq %rsi, (%rdi)
    ret
4:  movl $1, %edx
    ret
    .pushsection .extable, "a"
    .balign 8
    .quad 3b, 4b
    .popsection
    "#,
    options(att_syntax)
);

#[repr(C)]
struct ProbeResult {
    value: u64,
    faulted: u64,
}

unsafe extern "C" {
    fn probe_read_u64(addr: u64) -> ProbeResult;
    fn probe_write_u64(addr: u64, value: u64) -> ProbeResult;
    static __extable_start: [ExtableEntry; 0];
    static __extable_end: [ExtableEntry; 0];
}

#[repr(C)]
#[derive(Clone, Copy)]
struct ExtableEntry {
    instruction: u64,
    fixup: u64,
}

/// Reads the `u64` at kernel address `addr`; `None` if the read page-faults.
/// `addr` must be 8-aligned and in the kernel half.
pub fn read_u64(addr: u64) -> Option<u64> {
    if addr < kernel_core::layout::KERNEL_HALF {
        return None;
    }
    read_u64_any(addr)
}

/// Reads the `u64` at `addr` (kernel half, or the lower half of the current
/// address space); `None` if the read page-faults or `addr` is unaligned.
pub fn read_u64_any(addr: u64) -> Option<u64> {
    if !addr.is_multiple_of(8) {
        return None;
    }
    // SAFETY: the load is covered by an extable entry, so a fault resumes at
    // the fixup; a read of RAM has no side effects, and device memory is
    // mapped only where the kernel never probes.
    let r = unsafe { probe_read_u64(addr) };
    (r.faulted == 0).then_some(r.value)
}

/// Writes `value` to address `addr` (8-aligned); `false` if the write
/// page-faults.
///
/// # Safety
/// `addr` must be memory the caller owns, or a page whose mapping it is
/// deliberately probing that can only map memory the caller owns.
pub unsafe fn write_u64(addr: u64, value: u64) -> bool {
    if !addr.is_multiple_of(8) {
        return false;
    }
    // SAFETY: the store is covered by an extable entry, and the caller
    // guarantees where a successful store can land.
    let r = unsafe { probe_write_u64(addr, value) };
    r.faulted == 0
}

/// The fixup address for a fault at `rip`, if `rip` is a probing instruction.
pub fn fixup_for(rip: u64) -> Option<u64> {
    // SAFETY: the linker script brackets the `.extable` section with these
    // symbols; the entries between them are `(u64, u64)` pairs emitted above.
    let table = unsafe {
        let start = core::ptr::addr_of!(__extable_start) as *const ExtableEntry;
        let end = core::ptr::addr_of!(__extable_end) as *const ExtableEntry;
        core::slice::from_raw_parts(start, end.offset_from(start) as usize)
    };
    table.iter().find(|e| e.instruction == rip).map(|e| e.fixup)
}
