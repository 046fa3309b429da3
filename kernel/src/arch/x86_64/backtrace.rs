//! Stack backtraces by frame-pointer walking (the kernel is built with
//! frame pointers). Every stack read goes through a probing load, so a
//! corrupt chain ends the walk instead of faulting again.

use core::arch::asm;

/// The most frames printed.
pub const MAX_FRAMES: usize = 32;

/// The frame pointer of the caller.
#[inline(always)]
pub fn frame_pointer() -> u64 {
    let rbp: u64;
    // SAFETY: reading RBP has no side effects.
    unsafe { asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack, preserves_flags)) };
    rbp
}

/// Calls `f(depth, return_address)` for each frame from `rbp` outwards.
pub fn walk(mut rbp: u64, mut f: impl FnMut(usize, u64)) {
    for depth in 0..MAX_FRAMES {
        if rbp == 0 {
            return;
        }
        let (Some(next), Some(ret)) = (super::extable::read_u64(rbp), super::extable::read_u64(rbp + 8))
        else {
            return;
        };
        if ret == 0 {
            return;
        }
        f(depth, ret);
        // Frames move towards higher addresses; anything else is corruption.
        if next <= rbp {
            return;
        }
        rbp = next;
    }
}
