//! Trap entry: one assembly stub per vector, all funnelling into a common
//! path that saves the full register frame and calls [`trap_entry`], which
//! hands the frame straight to the kernel's safe dispatcher
//! (`crate::trap::dispatch`).
//!
//! Stubs are 16 bytes apart, so stub `v` is at `trap_stubs + 16 * v`. The
//! common path swaps GS when the trap came from user mode. NMI, double fault
//! and machine check take the "paranoid" path instead, which decides from
//! the GS base MSR itself, because they can arrive at any instruction —
//! including the few between a `swapgs` and the mode change.

use core::arch::global_asm;

/// The registers of the interrupted context, as the entry stubs save them.
#[repr(C)]
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    /// Vector number, pushed by the stub.
    pub vector: u64,
    /// Error code, pushed by the CPU or (as 0) by the stub.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    /// Whether the trap interrupted user mode.
    pub fn is_from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}

/// Pushes the general registers so that, with the stack pointer then
/// pointing at `rax`, they form the start of a [`TrapFrame`]. The trap stubs
/// and the SYSCALL entry both save registers this way.
macro_rules! push_gprs {
    () => {
        "pushq %r15; pushq %r14; pushq %r13; pushq %r12; pushq %r11; pushq %r10; pushq %r9; pushq %r8
         pushq %rbp; pushq %rdi; pushq %rsi; pushq %rdx; pushq %rcx; pushq %rbx; pushq %rax"
    };
}

/// Pops what [`push_gprs`] pushed.
macro_rules! pop_gprs {
    () => {
        "popq %rax; popq %rbx; popq %rcx; popq %rdx; popq %rsi; popq %rdi; popq %rbp
         popq %r8; popq %r9; popq %r10; popq %r11; popq %r12; popq %r13; popq %r14; popq %r15"
    };
}

pub(super) use {pop_gprs, push_gprs};

global_asm!(
    r#"
    .section .text.trap_stubs, "ax"
    .global trap_stubs
    .balign 16
trap_stubs:
    .set vector, 0
    .rept 256
        .balign 16
        .if (vector == 8) || (vector == 10) || (vector == 11) || (vector == 12) || (vector == 13) || (vector == 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
        .else
            pushq $0
        .endif
        pushq $vector
        .if (vector == 2) || (vector == 8) || (vector == 18)
            jmp trap_paranoid
        .else
            jmp trap_common
        .endif
        .set vector, vector + 1
    .endr
    "#,
    r#"


    .global trap_common
trap_common:
    testb $3, 24(%rsp)
    jz 1f
    swapgs
1:
    "#,
    push_gprs!(),
    r#"
    cld
    movq %rsp, %rdi
    call trap_entry
    .global trap_return
trap_return:
    "#,
    pop_gprs!(),
    r#"
    testb $3, 24(%rsp)
    jz 2f
    swapgs
2:
    addq $16, %rsp
    iretq

trap_paranoid:
    "#,
    push_gprs!(),
    r#"
    cld
    xorl %ebx, %ebx
    movl $0xc0000101, %ecx
    rdmsr
    testl %edx, %edx
    js 1f
    swapgs
    movl $1, %ebx
1:
    movq %rsp, %rdi
    call trap_entry
    testl %ebx, %ebx
    jz 2f
    swapgs
2:
    "#,
    pop_gprs!(),
    r#"
    addq $16, %rsp
    iretq
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    /// First of the 256 entry stubs.
    static trap_stubs: [u8; 256 * 16];
}

/// Address of the entry stub for `vector`.
pub fn stub_address(vector: u8) -> u64 {
    let base = core::ptr::addr_of!(trap_stubs) as u64;
    base + 16 * vector as u64
}

/// The saved registers of the trap or syscall being handled.
///
/// It wraps the frame the entry stub just pushed and hands out only
/// short-lived borrows, because the same registers are also reached through
/// the thread (`Thread::with_frame`) by code that delivers results into
/// them while the handler runs — for instance an IPC reply that arrives
/// while the thread was blocked inside the syscall.
pub struct Regs(*mut TrapFrame);

impl Regs {
    /// A copy of the registers.
    pub fn read(&self) -> TrapFrame {
        // SAFETY: the pointer is the frame the entry stub pushed on the
        // current kernel stack, valid until the handler returns; no borrow
        // of it outlives a single call here.
        unsafe { (*self.0).clone() }
    }

    /// Changes the registers.
    pub fn modify<R>(&self, f: impl FnOnce(&mut TrapFrame) -> R) -> R {
        // SAFETY: as for `read`; the borrow ends when `f` returns, and `f`
        // does not reach the frame another way.
        f(unsafe { &mut *self.0 })
    }
}

/// Called by the stubs with the saved frame; hands it to the kernel.
#[unsafe(no_mangle)]
extern "C" fn trap_entry(frame: *mut TrapFrame) {
    crate::trap::dispatch(Regs(frame));
}

/// Wraps a syscall's saved frame (for the syscall entry).
pub(super) fn regs(frame: *mut TrapFrame) -> Regs {
    Regs(frame)
}
