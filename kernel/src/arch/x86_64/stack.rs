//! Moving the running code onto another stack.

use core::arch::asm;

/// Switches to the stack whose top is `top` and calls `f(arg)` there. The
/// old stack is abandoned; the frame-pointer chain restarts at `f`, which
/// ends backtraces cleanly.
///
/// # Safety
/// `top` must be the 16-byte aligned top of a mapped kernel stack that
/// nothing else uses, and nothing may refer to data on the old stack after
/// the switch.
pub unsafe fn run_on_stack(top: u64, f: extern "C" fn(u64) -> !, arg: u64) -> ! {
    debug_assert_eq!(top % 16, 0, "stack top must be 16-byte aligned");
    // SAFETY: the caller guarantees the stack; `f` never returns, so nothing
    // on the old stack is used again.
    unsafe {
        asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "call {f}",
            "ud2",
            top = in(reg) top,
            f = in(reg) f,
            in("rdi") arg,
            options(noreturn)
        )
    }
}
