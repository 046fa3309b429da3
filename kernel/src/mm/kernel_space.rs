//! The kernel's own page tables, built at boot and shared by every CPU.
//!
//! The boot CPU builds one PML4 with: all 256 upper entries (each pointing
//! at a page-directory-pointer table allocated now and kept forever, so
//! every future address space can share them), the direct map over all RAM
//! with the largest pages that fit, and the kernel image segment by segment
//! with the permissions its ELF program headers give (W^X enforced). The
//! heap and the stacks are mapped into their windows later, on demand. Every
//! CPU then loads this root before doing anything else.

use super::address_space::AddressSpace;
use super::frame;
use super::paging::{Access, PageSize};
use crate::boot::BootInfo;
use crate::kcore::layout::{HHDM_LIMIT, KERNEL_HALF};
use crate::kcore::mem_kind::FrameUse;
use crate::kcore::PAGE_SIZE;
use elf::abi::{PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use elf::ElfBytes;
use spin::Once;
use x86_64::structures::paging::PageTableFlags;
use x86_64::PhysAddr;

static KERNEL_SPACE: Once<AddressSpace> = Once::new();

/// The kernel's address space (its root is in every CPU's CR3 when no user
/// address space is).
pub fn kernel_space() -> &'static AddressSpace {
    KERNEL_SPACE.get().expect("kernel page tables not built yet")
}



/// A loaded segment of the kernel image.
#[derive(Clone, Copy, Debug)]
pub struct ImageSegment {
    /// First virtual address (page-aligned).
    pub start: u64,
    /// End (page-aligned, exclusive).
    pub end: u64,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

/// The kernel image's PT_LOAD segments, page-aligned. Panics on an image
/// the kernel cannot map safely (it is the kernel's own file).
pub fn image_segments(boot: &BootInfo) -> impl Iterator<Item = ImageSegment> + '_ {
    let file = ElfBytes::<LittleEndian>::minimal_parse(boot.kernel_file)
        .unwrap_or_else(|e| panic!("mm: the kernel's own ELF file does not parse: {e}"));
    let segments = file.segments().expect("mm: the kernel ELF has no program headers");
    segments.into_iter().filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0).map(|p| {
        let seg = ImageSegment {
            start: p.p_vaddr & !(PAGE_SIZE - 1),
            end: (p.p_vaddr + p.p_memsz).next_multiple_of(PAGE_SIZE),
            write: p.p_flags & PF_W != 0,
            execute: p.p_flags & PF_X != 0,
        };
        assert!(!(seg.write && seg.execute), "mm: kernel segment at {:#x} is writable and executable", seg.start);
        seg
    })
}

/// Bytes the kernel image occupies (from its first to its last segment).
pub fn image_size(boot: &BootInfo) -> u64 {
    image_segments(boot).map(|s| s.end).max().unwrap_or(boot.kernel_virt_base) - boot.kernel_virt_base
}

fn has_huge_pages() -> bool {
    core::arch::x86_64::__cpuid(0x8000_0001).edx & (1 << 26) != 0
}

/// Maps `[phys, phys + len)` into the direct map with the largest pages
/// that fit.
fn map_direct(space: &AddressSpace, start: u64, end: u64, access: Access) {
    let hhdm = crate::arch::paging::hhdm_offset();
    let huge = has_huge_pages();
    let mut p = start;
    while p < end {
        let size = if huge && p.is_multiple_of(PageSize::Huge.bytes()) && p + PageSize::Huge.bytes() <= end {
            PageSize::Huge
        } else if p.is_multiple_of(PageSize::Large.bytes()) && p + PageSize::Large.bytes() <= end {
            PageSize::Large
        } else {
            PageSize::Small
        };
        space
            .map(hhdm + p, p, size, access)
            .unwrap_or_else(|e| panic!("mm: direct map of {p:#x} failed: {e:?}"));
        p += size.bytes();
    }
}

/// Builds the kernel page tables. Does not load them.
pub fn build(boot: &BootInfo) -> &'static AddressSpace {
    let hhdm = crate::arch::paging::hhdm_offset();
    let root = frame::alloc_zeroed(FrameUse::PageTables).expect("mm: no frame for the kernel PML4");
    let root = root.start_address().as_u64();
    // SAFETY: `root` is a fresh, zeroed frame; this is the one kernel space.
    let space = KERNEL_SPACE.call_once(|| unsafe { AddressSpace::from_tree(root, true) });

    // The upper half, allocated once and never replaced.
    space.with_tree(|tree| {
        let mut mapper = tree.mapper();
        let pml4 = mapper.pml4_mut();
        for i in 256..512 {
            let pdpt = frame::alloc_zeroed(FrameUse::PageTables).expect("mm: no frame for a kernel PDPT");
            pml4[i].set_addr(PhysAddr::new(pdpt.start_address().as_u64()), PageTableFlags::PRESENT | PageTableFlags::WRITABLE);
        }
    });

    // The direct map over every RAM range (adjacent RAM ranges merged so
    // large pages can straddle them).
    let mut run: Option<(u64, u64)> = None;
    let mut ram_end = 0;
    super::phys::for_each_range(|start, end, kind| {
        if !kind.is_ram() {
            return;
        }
        let (s, e) = (start & !(PAGE_SIZE - 1), end.next_multiple_of(PAGE_SIZE));
        ram_end = ram_end.max(e);
        match run {
            Some((rs, re)) if s <= re => run = Some((rs, re.max(e))),
            Some((rs, re)) => {
                map_direct(space, rs, re, Access::KERNEL_DATA);
                run = Some((s, e));
            }
            None => run = Some((s, e)),
        }
    });
    if let Some((rs, re)) = run {
        map_direct(space, rs, re, Access::KERNEL_DATA);
    }
    assert!(hhdm >= KERNEL_HALF && hhdm + ram_end <= HHDM_LIMIT, "mm: the direct map at {hhdm:#x} would overlap the kernel windows");

    // The kernel image, W^X, from its own program headers.
    for seg in image_segments(boot) {
        let phys = boot.kernel_phys_base + (seg.start - boot.kernel_virt_base);
        let access = Access { write: seg.write, execute: seg.execute, user: false, global: true, uncached: false };
        space
            .map_range(seg.start, phys, (seg.end - seg.start) / PAGE_SIZE, PageSize::Small, access)
            .unwrap_or_else(|e| panic!("mm: mapping kernel segment {:#x}..{:#x} failed: {e:?}", seg.start, seg.end));
        log::info!(
            "mm: kernel {:#x}..{:#x} {}{}{}",
            seg.start,
            seg.end,
            "r",
            if seg.write { "w" } else { "-" },
            if seg.execute { "x" } else { "-" }
        );
    }
    space
}

/// Loads the kernel root on this CPU.
pub fn switch_to_kernel_root() {
    super::tlb::join_kernel_users();
    // SAFETY: the kernel root maps the image, the direct map (all RAM, so the
    // current stack and loader data too) and every kernel window.
    unsafe { crate::arch::paging::load_root(kernel_space().root()) };
}

/// Makes sure `[phys, phys + len)` is reachable at its direct-map address,
/// mapping the missing pages (ACPI tables in reserved memory, device
/// registers). Idempotent and safe to call from several CPUs.
pub fn ensure_direct_mapped(phys: u64, len: u64, uncached: bool) {
    let hhdm = crate::arch::paging::hhdm_offset();
    let space = kernel_space();
    let access = Access { uncached, ..Access::KERNEL_DATA };
    let mut p = phys & !(PAGE_SIZE - 1);
    while p < phys + len {
        if space.translate(hhdm + p).is_none() {
            match space.map(hhdm + p, p, PageSize::Small, access) {
                Ok(()) | Err(super::paging::PagingError::AlreadyMapped) => {}
                Err(e) => panic!("mm: cannot map physical {p:#x}: {e:?}"),
            }
        }
        p += PAGE_SIZE;
    }
}
