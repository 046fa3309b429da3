//! The instructions user programs need and Rust cannot express: the
//! program entry point and the `syscall` instruction. Everything else in
//! the runtime is safe code over these.

use core::arch::{asm, global_asm};

global_asm!(
    r#"
    .section .text._start, "ax"
    .global _start
_start:
    xorl %ebp, %ebp
    andq $-16, %rsp
    call {entry}
    ud2
    "#,
    entry = sym crate::rt::entry,
    options(att_syntax)
);

unsafe extern "Rust" {
    fn __user_main(arg: u64) -> i64;
}

/// Calls the program's main (declared with `user::main!`).
pub fn call_main(arg: u64) -> i64 {
    // SAFETY: `user::main!` defines `__user_main` with exactly this
    // signature in every program.
    unsafe { __user_main(arg) }
}

/// The registers a syscall returns: `rax` (status), `rdi, rsi, rdx, r10`.
pub type Out = [u64; 5];

/// A syscall with up to six arguments.
#[inline(always)]
pub fn syscall(n: u64, a: [u64; 6]) -> Out {
    let (rax, rdi, rsi, rdx, r10);
    // SAFETY: SYSCALL enters the kernel, which preserves every register
    // except rcx and r11 (declared clobbered) and the result registers
    // (declared as outputs); it touches user memory only as the call's
    // documented arguments allow, through checked copies.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n => rax,
            inlateout("rdi") a[0] => rdi,
            inlateout("rsi") a[1] => rsi,
            inlateout("rdx") a[2] => rdx,
            inlateout("r10") a[3] => r10,
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    [rax, rdi, rsi, rdx, r10]
}

/// The registers of an IPC syscall, in and out: `rdi` (endpoint, reply or
/// badge), `rsi` (info), the six payload words, `r14` (capability) and
/// `r15` (reply capability).
#[derive(Clone, Copy, Default, Debug)]
pub struct IpcRegs {
    /// `rdi`.
    pub rdi: u64,
    /// `rsi`.
    pub rsi: u64,
    /// `rdx, r10, r8, r9, r12, r13`.
    pub words: [u64; 6],
    /// `r14`.
    pub r14: u64,
    /// `r15`.
    pub r15: u64,
}

/// An IPC syscall: returns `rax` and the registers as the kernel left them.
#[inline(always)]
pub fn ipc(n: u64, r: IpcRegs) -> (u64, IpcRegs) {
    let mut o = r;
    let rax;
    // SAFETY: as for `syscall`; every register the kernel may change is an
    // output here.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n => rax,
            inlateout("rdi") r.rdi => o.rdi,
            inlateout("rsi") r.rsi => o.rsi,
            inlateout("rdx") r.words[0] => o.words[0],
            inlateout("r10") r.words[1] => o.words[1],
            inlateout("r8") r.words[2] => o.words[2],
            inlateout("r9") r.words[3] => o.words[3],
            inlateout("r12") r.words[4] => o.words[4],
            inlateout("r13") r.words[5] => o.words[5],
            inlateout("r14") r.r14 => o.r14,
            inlateout("r15") r.r15 => o.r15,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    (rax, o)
}
