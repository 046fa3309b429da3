//! Copying between kernel buffers and user memory. A fault on the user side
//! (unmapped or protected page) makes the copy fail instead of bringing the
//! kernel down. When the CPU has SMAP, the kernel turns it on and these
//! copies are the only code that opens user memory (`stac` ... `clac`).

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel_core::layout::USER_END;

static SMAP: AtomicBool = AtomicBool::new(false);

global_asm!(
    r#"
    .section .text.usercopy, "ax"
    // rdi = destination, rsi = source, rdx = length. rax = 0, or 1 on fault.
    .global user_copy_plain
user_copy_plain:
    movq %rdx, %rcx
1:  rep movsb
    xorl %eax, %eax
    ret
2:  movl $1, %eax
    ret
    .pushsection .extable, "a"
    .balign 8
    .quad 1b, 2b
    .popsection

    .global user_copy_smap
user_copy_smap:
    movq %rdx, %rcx
    stac
3:  rep movsb
    clac
    xorl %eax, %eax
    ret
4:  clac
    movl $1, %eax
    ret
    .pushsection .extable, "a"
    .balign 8
    .quad 3b, 4b
    .popsection
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    fn user_copy_plain(dst: *mut u8, src: *const u8, len: usize) -> u64;
    fn user_copy_smap(dst: *mut u8, src: *const u8, len: usize) -> u64;
}

/// Turns on SMEP and SMAP on this CPU when it has them: the kernel then
/// cannot run user code, nor touch user memory outside these copies.
pub fn enable_user_protections() -> (bool, bool) {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
    let smep = leaf7.ebx & (1 << 7) != 0;
    let smap = leaf7.ebx & (1 << 20) != 0;
    // SAFETY: SMEP/SMAP only restrict what ring 0 may do with user pages;
    // the only kernel accesses to user memory go through the copies below,
    // which open it explicitly.
    unsafe {
        Cr4::update(|f| {
            f.set(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION, smep);
            f.set(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION, smap);
        });
    }
    SMAP.store(smap, Ordering::Relaxed);
    (smep, smap)
}

fn is_user_range(addr: u64, len: usize) -> bool {
    addr.checked_add(len as u64).is_some_and(|end| end <= USER_END)
}

/// Copies `dst.len()` bytes from user address `src`. `false` if the range
/// leaves user space or a page is not readable.
pub fn copy_from_user(dst: &mut [u8], src: u64) -> bool {
    if !is_user_range(src, dst.len()) {
        return false;
    }
    let f = if SMAP.load(Ordering::Relaxed) { user_copy_smap } else { user_copy_plain };
    // SAFETY: the source is a user range (checked above), so a fault there
    // is caught by the extable fixup; the destination is a kernel buffer we
    // borrow mutably.
    unsafe { f(dst.as_mut_ptr(), src as *const u8, dst.len()) == 0 }
}

/// Copies `src` to user address `dst`. `false` if the range leaves user
/// space or a page is not writable.
pub fn copy_to_user(dst: u64, src: &[u8]) -> bool {
    if !is_user_range(dst, src.len()) {
        return false;
    }
    let f = if SMAP.load(Ordering::Relaxed) { user_copy_smap } else { user_copy_plain };
    // SAFETY: the destination is a user range (checked above) whose faults
    // the extable catches; user memory is the user's to overwrite.
    unsafe { f(dst as *mut u8, src.as_ptr(), src.len()) == 0 }
}
