//! Switching between threads, a new thread's first entry to user mode, and
//! the FPU/SSE state that travels with each user thread.
//!
//! A switched-out thread's kernel stack holds its callee-saved registers
//! and the address to resume at; its `Context` is just the stack pointer.
//! A new thread's stack is prepared to look the same, resuming at
//! `thread_start`, which finishes the switch and returns to user mode
//! through the trap-return path with the thread's initial user registers.

use super::trap::TrapFrame;
use core::arch::{asm, global_asm};

/// A switched-out thread: its saved kernel stack pointer.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Context {
    rsp: u64,
}

global_asm!(
    r#"
    .section .text.context, "ax"
    .global switch_context
switch_context:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret

    .global thread_start
thread_start:
    call thread_first_run
    jmp trap_return
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    fn switch_context(prev_rsp: *mut u64, next_rsp: u64);
    fn thread_start();
}

/// First Rust code of a new thread, on its own stack: finishes the switch
/// that started it. Returning resumes the thread in user mode.
#[unsafe(no_mangle)]
extern "C" fn thread_first_run() {
    crate::sched::finish_switch();
    crate::sched::before_user_return();
}

/// Switches from the running thread (whose context is saved in `prev`) to
/// the thread whose context is `next`. Returns when something switches back
/// to `prev`.
///
/// # Safety
/// Interrupts must be masked; `prev` must be the running thread's context
/// and `next` a switched-out thread's (or a new one from
/// [`prepare_new_thread`]) whose stack stays mapped and unused by anyone
/// else until it is switched away from again.
pub unsafe fn switch(prev: *mut Context, next: *const Context) {
    // SAFETY: forwarded to the caller; the assembly saves and restores all
    // callee-saved registers, so this behaves like a function call.
    unsafe { switch_context(&raw mut (*prev).rsp, (*next).rsp) }
}

/// Prepares a new thread's kernel stack (`top` is its initial stack
/// pointer): its user registers `frame` at the top, and a switch record
/// below that resumes at `thread_start`. Returns its context.
///
/// # Safety
/// `top` must be the 16-byte aligned top of a mapped kernel stack that
/// nothing uses yet.
pub unsafe fn prepare_new_thread(top: u64, frame: &TrapFrame) -> Context {
    let frame_at = top - core::mem::size_of::<TrapFrame>() as u64;
    // SAFETY: the stack is mapped, unused and large enough (the caller's
    // contract); the frame and the switch record fit in its top 256 bytes.
    unsafe {
        (frame_at as *mut TrapFrame).write(frame.clone());
        let record = frame_at - 7 * 8;
        let words = record as *mut u64;
        // r15, r14, r13, r12, rbx, rbp, return address.
        for i in 0..6 {
            words.add(i).write(0);
        }
        words.add(6).write(thread_start as *const () as usize as u64);
        Context { rsp: record }
    }
}

/// Where the user registers of a thread whose kernel stack top is `top`
/// live while it is in the kernel.
pub fn user_frame_address(top: u64) -> u64 {
    top - core::mem::size_of::<TrapFrame>() as u64
}

/// A thread's FPU/SSE registers (FXSAVE format).
#[repr(C, align(16))]
#[derive(Clone)]
pub struct FpuState([u8; 512]);

impl FpuState {
    /// The state a fresh thread starts with (x87 initialised, SSE
    /// exceptions masked).
    pub fn initial() -> Self {
        let mut s = Self([0; 512]);
        // FCW = 0x037f (all x87 exceptions masked), MXCSR = 0x1f80.
        s.0[0] = 0x7f;
        s.0[1] = 0x03;
        s.0[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        s.0[28..32].copy_from_slice(&0xffffu32.to_le_bytes()); // MXCSR mask
        s
    }

    /// Saves this CPU's FPU/SSE registers here.
    pub fn save(&mut self) {
        // SAFETY: FXSAVE64 writes 512 bytes to a 16-byte aligned buffer,
        // which `self` is; SSE is enabled on every CPU (`enable_sse`).
        unsafe { asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack)) };
    }

    /// Loads this state into the CPU's FPU/SSE registers.
    pub fn restore(&self) {
        // SAFETY: FXRSTOR64 reads a valid FXSAVE image (from `save` or
        // `initial`, whose reserved fields are zero) from an aligned buffer.
        unsafe { asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack, readonly)) };
    }
}

/// Whether the running thread has used the FPU since it was switched in
/// (CR0.TS is clear only then: see [`fpu_trap_next_use`]).
pub fn fpu_used() -> bool {
    use x86_64::registers::control::{Cr0, Cr0Flags};
    !Cr0::read().contains(Cr0Flags::TASK_SWITCHED)
}

/// Makes the next FPU/SSE instruction trap (#NM), so a thread's FPU state
/// is loaded only if it uses the FPU at all (most threads here never do).
pub fn fpu_trap_next_use() {
    use x86_64::registers::control::{Cr0, Cr0Flags};
    let cr0 = Cr0::read();
    if !cr0.contains(Cr0Flags::TASK_SWITCHED) {
        // SAFETY: setting TS only makes FPU instructions trap; the #NM
        // handler loads the running thread's state and clears it.
        unsafe { Cr0::write(cr0 | Cr0Flags::TASK_SWITCHED) };
    }
}

/// Lets FPU/SSE instructions run again (after loading the thread's state).
pub fn fpu_allow() {
    // SAFETY: CLTS only clears CR0.TS.
    unsafe { asm!("clts", options(nomem, nostack, preserves_flags)) };
}

/// Lets user code use x87/SSE: CR0.MP on, CR0.EM off, CR4.OSFXSR and
/// CR4.OSXMMEXCPT on. The kernel itself never uses them. CR0.TS is managed
/// per switch (see [`fpu_trap_next_use`]).
pub fn enable_sse() {
    use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
    // SAFETY: these bits only make FPU/SSE instructions usable; the kernel
    // saves and restores the state per thread.
    unsafe {
        Cr0::update(|f| {
            f.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            f.insert(Cr0Flags::MONITOR_COPROCESSOR);
        });
        Cr4::update(|f| f.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
    }
}
