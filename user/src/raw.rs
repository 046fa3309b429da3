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

// ---------------------------------------------------------------------------
// Threads

global_asm!(
    r#"
    .section .text.user_thread_entry, "ax"
    .global user_thread_entry
user_thread_entry:
    xorl %ebp, %ebp
    call {main}
    // `main` returned the address of the thread's "finished" word. Set it
    // and leave without touching the stack again: whoever waits for the
    // flag may free the stack as soon as it is set.
    movq $1, (%rax)
    movl ${exit}, %eax
    syscall
    ud2
    "#,
    main = sym crate::thread::thread_main,
    exit = const abi::syscall::Sys::ThreadExit as u64,
    options(att_syntax)
);

unsafe extern "C" {
    fn user_thread_entry();
}

/// The address new threads start at (`rdi` = their start key, `rsp` = the
/// top of their stack): calls `thread::thread_main`, marks the thread
/// finished and ends it.
pub fn thread_entry_address() -> u64 {
    user_thread_entry as *const () as u64
}

// ---------------------------------------------------------------------------
// Time

/// The time-stamp counter, ordered after earlier instructions.
#[inline(always)]
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: LFENCE and RDTSC read no memory and change nothing but the
    // output registers (CR4.TSD is clear, so RDTSC is allowed in ring 3).
    unsafe { asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (hi as u64) << 32 | lo as u64
}

// ---------------------------------------------------------------------------
// SSE and x87 state (for tests that the kernel keeps each thread's own)
//
// User programs are built soft-float, so compiled code never touches the
// SSE registers or MXCSR: what these functions put there stays until the
// next call of theirs, unless the kernel mixes up threads' states.

/// Loads `xmm0..xmm15` from `v` (two words per register, low word first).
pub fn sse_write(v: &[u64; 32]) {
    // SAFETY: reads the 256 bytes of `v`; writes only SSE registers, which
    // compiled code in this crate never uses (soft-float target).
    unsafe {
        asm!(
            "movdqu 0(%rdi), %xmm0",
            "movdqu 16(%rdi), %xmm1",
            "movdqu 32(%rdi), %xmm2",
            "movdqu 48(%rdi), %xmm3",
            "movdqu 64(%rdi), %xmm4",
            "movdqu 80(%rdi), %xmm5",
            "movdqu 96(%rdi), %xmm6",
            "movdqu 112(%rdi), %xmm7",
            "movdqu 128(%rdi), %xmm8",
            "movdqu 144(%rdi), %xmm9",
            "movdqu 160(%rdi), %xmm10",
            "movdqu 176(%rdi), %xmm11",
            "movdqu 192(%rdi), %xmm12",
            "movdqu 208(%rdi), %xmm13",
            "movdqu 224(%rdi), %xmm14",
            "movdqu 240(%rdi), %xmm15",
            in("rdi") v.as_ptr(),
            options(att_syntax, nostack, readonly, preserves_flags)
        );
    }
}

/// Stores `xmm0..xmm15` into `v` (two words per register, low word first).
pub fn sse_read(v: &mut [u64; 32]) {
    // SAFETY: writes exactly the 256 bytes of `v`, which we borrow mutably.
    unsafe {
        asm!(
            "movdqu %xmm0, 0(%rdi)",
            "movdqu %xmm1, 16(%rdi)",
            "movdqu %xmm2, 32(%rdi)",
            "movdqu %xmm3, 48(%rdi)",
            "movdqu %xmm4, 64(%rdi)",
            "movdqu %xmm5, 80(%rdi)",
            "movdqu %xmm6, 96(%rdi)",
            "movdqu %xmm7, 112(%rdi)",
            "movdqu %xmm8, 128(%rdi)",
            "movdqu %xmm9, 144(%rdi)",
            "movdqu %xmm10, 160(%rdi)",
            "movdqu %xmm11, 176(%rdi)",
            "movdqu %xmm12, 192(%rdi)",
            "movdqu %xmm13, 208(%rdi)",
            "movdqu %xmm14, 224(%rdi)",
            "movdqu %xmm15, 240(%rdi)",
            in("rdi") v.as_mut_ptr(),
            options(att_syntax, nostack, preserves_flags)
        );
    }
}

/// Reads MXCSR (SSE control and status).
pub fn mxcsr_read() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: STMXCSR writes the 4 bytes of `v`.
    unsafe { asm!("stmxcsr ({0})", in(reg) &raw mut v, options(att_syntax, nostack, preserves_flags)) };
    v
}

/// Writes MXCSR. Reserved bits set make the CPU raise #GP, which kills the
/// task (no memory is affected either way).
pub fn mxcsr_write(v: u32) {
    // SAFETY: LDMXCSR reads the 4 bytes of `v`; nothing in this crate
    // computes with SSE, so the new rounding and exception modes affect
    // only the test code that set them.
    unsafe { asm!("ldmxcsr ({0})", in(reg) &raw const v, options(att_syntax, nostack, readonly, preserves_flags)) };
}

/// Reads the x87 control word.
pub fn x87_control_read() -> u16 {
    let mut v: u16 = 0;
    // SAFETY: FNSTCW writes the 2 bytes of `v`.
    unsafe { asm!("fnstcw ({0})", in(reg) &raw mut v, options(att_syntax, nostack, preserves_flags)) };
    v
}

/// Writes the x87 control word.
pub fn x87_control_write(v: u16) {
    // SAFETY: FLDCW reads the 2 bytes of `v`; no compiled code uses x87.
    unsafe { asm!("fldcw ({0})", in(reg) &raw const v, options(att_syntax, nostack, readonly, preserves_flags)) };
}

// ---------------------------------------------------------------------------
// Deliberate faults (for tests of the kernel's fault handling). Each one
// returns only if the access it tries is, wrongly, allowed. The labels are
// global: the functions naming them may be inlined into a program's own
// object files (release builds), which must still find them.

global_asm!(
    r#"
    .section .rodata.fault_rodata_word, "a"
    .balign 8
    .globl fault_rodata_word
fault_rodata_word:
    .quad 0x0123456789abcdef

    .section .text.fault_text_target, "ax"
    .globl fault_text_target
fault_text_target:
    ret
    "#,
    options(att_syntax)
);

/// Reads the word at address 0 (never mapped: the first 2 MiB of every
/// address space stay empty).
pub fn fault_read_null() -> u64 {
    let v: u64;
    // SAFETY: address 0 is never mapped, so the load faults and the task
    // dies; if it were mapped the load would only read.
    unsafe { asm!("movq 0, {0}", out(reg) v, options(att_syntax, nostack, readonly, preserves_flags)) };
    v
}

/// Writes a `ret` instruction into `buf` and calls it: a data page is not
/// executable, so the fetch faults.
pub fn fault_exec_data(buf: &mut [u8]) {
    buf[0] = 0xc3;
    // SAFETY: the only instruction at `buf` is `ret`, so if the call
    // wrongly executes, it returns at once with no effect.
    unsafe { asm!("call *{0}", in(reg) buf.as_ptr(), clobber_abi("C"), options(att_syntax)) };
}

/// Writes to a word in the program's read-only data.
pub fn fault_write_rodata() {
    // SAFETY: the word is defined above, in assembly, and never read by
    // compiled code; the store faults because the segment is read-only.
    unsafe { asm!("movq $1, fault_rodata_word(%rip)", options(att_syntax, nostack, preserves_flags)) };
}

/// Reads the word the write above targets (to show it is unchanged).
pub fn rodata_word() -> u64 {
    let v: u64;
    // SAFETY: reads the 8-byte word defined above.
    unsafe { asm!("movq fault_rodata_word(%rip), {0}", out(reg) v, options(att_syntax, nostack, readonly, preserves_flags)) };
    v
}

/// The address of the read-only word (for address checks).
pub fn rodata_word_address() -> u64 {
    let v: u64;
    // SAFETY: only computes an address.
    unsafe { asm!("leaq fault_rodata_word(%rip), {0}", out(reg) v, options(att_syntax, nomem, nostack, preserves_flags)) };
    v
}

/// Writes over an instruction of the program's own code.
pub fn fault_write_text() {
    // SAFETY: the target is a `ret` defined above that nothing calls; the
    // store faults because code is mapped read-only (and, if it wrongly
    // succeeded, writes the same byte).
    unsafe { asm!("movb $0xc3, fault_text_target(%rip)", options(att_syntax, nostack, preserves_flags)) };
}

/// Executes an undefined instruction (#UD).
pub fn fault_invalid_opcode() {
    // SAFETY: UD2 always raises #UD; the task dies.
    unsafe { asm!("ud2", options(nomem, nostack)) };
}

/// Executes a privileged instruction in ring 3 (#GP).
pub fn fault_privileged() {
    // SAFETY: HLT in ring 3 raises #GP; the task dies. Were it allowed, it
    // would only wait for an interrupt.
    unsafe { asm!("hlt", options(nomem, nostack)) };
}

/// The `count` words at `addr` as atomics.
///
/// # Safety
/// `addr..addr + 8 * count` must be memory the memory server mapped for
/// this task (or shared into it), 8-byte aligned, that no Rust object
/// lives in, for as long as the slice is used. Other tasks and threads may
/// access it concurrently: every access goes through the atomics. A page
/// unmapped meanwhile (its owner freed it) faults, which the kernel
/// reports and ends the task for; it is never read as something else.
pub unsafe fn server_words<'a>(addr: u64, count: usize) -> &'a [core::sync::atomic::AtomicU64] {
    // SAFETY: as the caller promises; `AtomicU64` has the layout of `u64`.
    unsafe { core::slice::from_raw_parts(addr as *const core::sync::atomic::AtomicU64, count) }
}
