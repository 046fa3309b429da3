//! Deliberately faulting accesses, for the tests that check the kernel's
//! fault diagnostics. Each is meant to trap; the trap handler reports it and
//! ends the run, so none of these returns normally in a passing test.

use core::arch::asm;

/// Writes a byte to `addr` (expected to be unmapped or read-only).
pub fn write_byte(addr: u64) {
    // SAFETY: the write is meant to fault (the address is unmapped or
    // read-only); if it unexpectedly succeeds, the test reports a failure.
    unsafe { asm!("mov byte ptr [{}], 0x5a", in(reg) addr, options(nostack)) };
}

/// Jumps to `addr` (expected to be non-executable).
pub fn execute_at(addr: u64) {
    // SAFETY: the fetch is meant to fault on a no-execute page; nothing runs.
    unsafe { asm!("call {}", in(reg) addr, clobber_abi("C")) };
}

/// Recurses without bound, to hit a stack's guard page. The buffer stays
/// live across the call, so the compiler cannot turn the recursion into a
/// loop.
#[allow(unconditional_recursion)]
pub fn overflow_stack(depth: u64) -> u64 {
    let mut pad = [depth as u8; 512];
    core::hint::black_box(&mut pad);
    let r = overflow_stack(depth + 1);
    core::hint::black_box(&mut pad);
    r + pad[7] as u64
}
