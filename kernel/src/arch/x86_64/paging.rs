//! The physical side of paging: where the direct map is, and loading a
//! page-table root.

use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::PhysFrame;
use x86_64::PhysAddr;

static HHDM_OFFSET: AtomicU64 = AtomicU64::new(0);

/// Records the offset of the higher-half direct map (from the boot loader;
/// the kernel's own tables keep it).
pub fn set_hhdm_offset(offset: u64) {
    HHDM_OFFSET.store(offset, Ordering::Relaxed);
}

/// The offset of the higher-half direct map.
#[inline]
pub fn hhdm_offset() -> u64 {
    HHDM_OFFSET.load(Ordering::Relaxed)
}

/// The direct-map address of physical address `phys`.
#[inline]
pub fn phys_to_virt(phys: u64) -> u64 {
    phys + hhdm_offset()
}

/// Loads `root` (a PML4's physical address) into CR3, which also flushes
/// every non-global TLB entry.
///
/// # Safety
/// `root` must be a complete PML4 whose kernel half maps the running code,
/// its stack and every kernel structure in use.
pub unsafe fn load_root(root: u64) {
    let frame = PhysFrame::containing_address(PhysAddr::new(root));
    // SAFETY: forwarded to the caller.
    unsafe { Cr3::write(frame, Cr3Flags::empty()) };
}
