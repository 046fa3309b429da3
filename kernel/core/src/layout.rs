//! The kernel's virtual address layout.
//!
//! Lower half: user space. Upper half, fixed for the life of the system and
//! shared by every address space through the same 256 PML4 entries:
//!
//! | range start            | what                                        |
//! |------------------------|---------------------------------------------|
//! | `0xffff_8000_0000_0000` | direct map of physical memory (HHDM), up to 64 TiB |
//! | `0xffff_c000_0000_0000` | kernel heap (grows on demand), 512 GiB      |
//! | `0xffff_c080_0000_0000` | kernel stacks, each above an unmapped guard page |
//! | `0xffff_c100_0000_0000` | scratch windows for tests and benchmarks    |
//! | `0xffff_ffff_8000_0000` | kernel image (ELF segments, W^X)            |

use crate::PAGE_SIZE;

/// First address of the upper (kernel) half.
pub const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;
/// One past the last user address (the lower half is `0..USER_END`).
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// The highest address the direct map may reach (exclusive).
pub const HHDM_LIMIT: u64 = 0xffff_c000_0000_0000;
/// Kernel heap window.
pub const HEAP_BASE: u64 = 0xffff_c000_0000_0000;
/// Size of the heap window.
pub const HEAP_MAX: u64 = 512 << 30;
/// Kernel stack window.
pub const STACKS_BASE: u64 = 0xffff_c080_0000_0000;
/// Pages of a kernel stack (64 KiB), not counting its guard page.
pub const STACK_PAGES: u64 = 16;
/// Bytes from one stack slot to the next: the guard page, then the stack.
pub const STACK_SLOT: u64 = (STACK_PAGES + 1) * PAGE_SIZE;
/// Number of stack slots in the window.
pub const STACK_SLOTS: u64 = (512 << 30) / STACK_SLOT;
/// Window for mappings made by tests and benchmarks.
pub const SCRATCH_BASE: u64 = 0xffff_c100_0000_0000;
/// Size of the scratch window.
pub const SCRATCH_SIZE: u64 = 512 << 30;
/// Where the kernel image is linked.
pub const KERNEL_IMAGE_BASE: u64 = 0xffff_ffff_8000_0000;

/// PML4 index of an address.
pub const fn pml4_index(addr: u64) -> usize {
    ((addr >> 39) & 511) as usize
}

/// Whether `addr` is canonical for 4-level paging.
pub const fn is_canonical(addr: u64) -> bool {
    let top = addr >> 47;
    top == 0 || top == 0x1_ffff
}

/// The guard page (lowest page) of stack slot `slot`.
pub const fn stack_guard(slot: u64) -> u64 {
    STACKS_BASE + slot * STACK_SLOT
}

/// The first mapped byte of stack slot `slot`.
pub const fn stack_bottom(slot: u64) -> u64 {
    stack_guard(slot) + PAGE_SIZE
}

/// One past the top of stack slot `slot` (the initial stack pointer).
pub const fn stack_top(slot: u64) -> u64 {
    stack_guard(slot) + STACK_SLOT
}

/// If `addr` lies in the guard page of a stack slot, that slot.
pub const fn guard_page_slot(addr: u64) -> Option<u64> {
    if addr < STACKS_BASE || addr >= STACKS_BASE + STACK_SLOTS * STACK_SLOT {
        return None;
    }
    let offset = addr - STACKS_BASE;
    if offset % STACK_SLOT < PAGE_SIZE { Some(offset / STACK_SLOT) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_do_not_overlap_and_sit_in_distinct_pml4_slots() {
        const {
            assert!(HEAP_BASE + HEAP_MAX <= STACKS_BASE);
            assert!(STACKS_BASE + STACK_SLOTS * STACK_SLOT <= SCRATCH_BASE);
            assert!(SCRATCH_BASE + SCRATCH_SIZE <= KERNEL_IMAGE_BASE);
            assert!(HHDM_LIMIT <= HEAP_BASE);
        }
        let slots = [HEAP_BASE, STACKS_BASE, SCRATCH_BASE, KERNEL_IMAGE_BASE].map(pml4_index);
        assert_eq!(slots, [384, 385, 386, 511]);
        assert!(pml4_index(KERNEL_HALF) == 256);
    }

    #[test]
    fn guard_pages_are_recognised() {
        assert_eq!(guard_page_slot(stack_guard(3)), Some(3));
        assert_eq!(guard_page_slot(stack_guard(3) + PAGE_SIZE - 1), Some(3));
        assert_eq!(guard_page_slot(stack_bottom(3)), None);
        assert_eq!(guard_page_slot(stack_top(3) - 8), None);
        assert_eq!(guard_page_slot(stack_top(3)), Some(4));
        assert_eq!(guard_page_slot(HEAP_BASE), None);
    }

    #[test]
    fn canonical_addresses() {
        assert!(is_canonical(0x7fff_ffff_ffff));
        assert!(!is_canonical(0x8000_0000_0000));
        assert!(is_canonical(KERNEL_HALF));
        assert!(!is_canonical(0xfff0_0000_0000_0000));
    }
}
