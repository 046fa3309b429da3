//! The SYSCALL entry: saves the user registers as a [`TrapFrame`] at the
//! top of the thread's kernel stack (the same place an interrupt from user
//! mode puts them), calls the kernel's dispatcher, and returns with SYSRET
//! — or with IRETQ when the return address is not a canonical user address,
//! since SYSRET would fault in ring 0 on it.

use super::gdt::{KERNEL_CS, USER_CS, USER_SS};
use super::percpu::{KERNEL_RSP_OFFSET, USER_RSP_OFFSET};
use super::trap::{TrapFrame, pop_gprs, push_gprs};
use core::arch::global_asm;

/// The `vector` value of a frame saved by a syscall.
pub const SYSCALL_VECTOR: u64 = 0x100;

global_asm!(
    r#"
    .section .text.syscall, "ax"
    .global syscall_entry
syscall_entry:
    swapgs
    movq %rsp, %gs:{user_rsp}
    movq %gs:{kernel_rsp}, %rsp
    pushq ${user_ss}
    pushq %gs:{user_rsp}
    pushq %r11
    pushq ${user_cs}
    pushq %rcx
    pushq $0
    pushq ${vector}
    "#,
    push_gprs!(),
    r#"
    cld
    movq %rsp, %rdi
    call syscall_entry_rust
    // SYSRET needs a canonical lower-half return address.
    movq 17*8(%rsp), %rcx
    shrq $47, %rcx
    jnz trap_return
    "#,
    pop_gprs!(),
    r#"
    movq 16(%rsp), %rcx
    movq 32(%rsp), %r11
    movq 40(%rsp), %rsp
    swapgs
    sysretq
    "#,
    user_rsp = const USER_RSP_OFFSET,
    kernel_rsp = const KERNEL_RSP_OFFSET,
    user_ss = const USER_SS,
    user_cs = const USER_CS,
    vector = const SYSCALL_VECTOR,
    options(att_syntax)
);

unsafe extern "C" {
    fn syscall_entry();
}

#[unsafe(no_mangle)]
extern "C" fn syscall_entry_rust(frame: *mut TrapFrame) {
    crate::syscall::dispatch(super::trap::regs(frame));
}

/// Enables SYSCALL/SYSRET on this CPU and points it at the entry above.
pub fn init() {
    use x86_64::registers::model_specific::{Efer, EferFlags};
    // STAR: kernel CS in 47:32 (SS = CS + 8); SYSRET base in 63:48 such that
    // user SS = base + 8 and user CS = base + 16.
    let sysret_base = (USER_SS & !3) as u64 - 8;
    let star = sysret_base << 48 | (KERNEL_CS as u64) << 32;
    // Mask on entry: TF, IF, DF, NT, AC.
    let fmask: u64 = 1 << 8 | 1 << 9 | 1 << 10 | 1 << 14 | 1 << 18;
    // SAFETY: the entry point saves all state and runs on the per-CPU
    // kernel stack; the GDT layout matches STAR (checked in `gdt`).
    unsafe {
        super::cpu::wrmsr(0xc000_0081, star);
        super::cpu::wrmsr(0xc000_0082, syscall_entry as *const () as usize as u64);
        super::cpu::wrmsr(0xc000_0084, fmask);
        Efer::update(|f| f.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
    }
}
