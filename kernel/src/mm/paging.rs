//! The page-table API: map, unmap, protect and translate 4 KiB and 2 MiB
//! pages in any address space, through the `x86_64` crate's
//! `OffsetPageTable` over the direct map.
//!
//! Nothing here flushes a TLB. Unmap and protect add what they changed to a
//! [`FlushBatch`] and unmap hands back the frames, so the caller can run one
//! shootdown for a whole operation and free the frames only after every CPU
//! acknowledged it.

use super::frame;
use crate::arch::paging::{hhdm_offset, phys_to_virt};
use crate::kcore::mem_kind::FrameUse;
use crate::kcore::tlb_batch::FlushBatch;
use x86_64::structures::paging::mapper::{
    MapToError, MappedFrame, Mapper as _, TranslateResult, UnmapError,
};
use x86_64::structures::paging::{
    FrameAllocator, OffsetPageTable, Page, PageTable, PageTableFlags as F, PhysFrame, Size1GiB,
    Size2MiB, Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

/// Page sizes the API handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB.
    Small,
    /// 2 MiB.
    Large,
    /// 1 GiB (direct map only).
    Huge,
}

impl PageSize {
    /// Bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Small => 4096,
            Self::Large => 2 << 20,
            Self::Huge => 1 << 30,
        }
    }
}

/// What a mapping allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Access {
    /// Writes allowed.
    pub write: bool,
    /// Instruction fetches allowed.
    pub execute: bool,
    /// Reachable from user mode.
    pub user: bool,
    /// Survives CR3 reloads (kernel half only).
    pub global: bool,
    /// Uncached (device memory).
    pub uncached: bool,
}

impl Access {
    /// Kernel data: read/write, no execute, global.
    pub const KERNEL_DATA: Self = Self { write: true, execute: false, user: false, global: true, uncached: false };

    fn flags(self) -> F {
        let mut f = F::PRESENT;
        if self.write {
            f |= F::WRITABLE;
        }
        if !self.execute {
            f |= F::NO_EXECUTE;
        }
        if self.user {
            f |= F::USER_ACCESSIBLE;
        }
        if self.global {
            f |= F::GLOBAL;
        }
        if self.uncached {
            f |= F::NO_CACHE | F::WRITE_THROUGH;
        }
        f
    }

    fn from_flags(f: F) -> Self {
        Self {
            write: f.contains(F::WRITABLE),
            execute: !f.contains(F::NO_EXECUTE),
            user: f.contains(F::USER_ACCESSIBLE),
            global: f.contains(F::GLOBAL),
            uncached: f.contains(F::NO_CACHE),
        }
    }
}

/// Why a mapping change failed. Nothing was changed when one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingError {
    /// The address is already mapped.
    AlreadyMapped,
    /// The address is not mapped (or not with this page size).
    NotMapped,
    /// A page-table page could not be allocated.
    OutOfFrames,
    /// The address or frame is not aligned to the page size.
    Misaligned,
    /// A larger page covers the address.
    InsideLargerPage,
    /// The address space was torn down (its task ended).
    Dead,
}

/// A translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address the virtual address maps to.
    pub phys: u64,
    /// The size of the page that maps it.
    pub size: PageSize,
    /// What the mapping allows.
    pub access: Access,
}

/// Intermediate page-table pages come from the frame allocator, zeroed.
struct TableFrames;

// SAFETY: every frame returned is a fresh, unused 4 KiB frame owned by the
// page tables from then on.
unsafe impl FrameAllocator<Size4KiB> for TableFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        frame::alloc_zeroed(FrameUse::PageTables).ok()
    }
}

/// One page-table tree (a PML4 and what hangs below it). Owning a
/// `&mut PageTree` is the right to change the tree; address spaces keep it
/// behind their lock.
pub struct PageTree {
    root: u64,
}

impl PageTree {
    /// Takes charge of the tree rooted at physical address `root`.
    ///
    /// # Safety
    /// `root` must be a PML4 frame, and no other `PageTree` may change the
    /// part of the tree this one changes (an address space's lower half is
    /// its own; the shared kernel half belongs to the kernel space alone).
    pub const unsafe fn from_root(root: u64) -> Self {
        Self { root }
    }

    /// A mapper for changing the tree.
    pub fn mapper(&mut self) -> Mapper<'_> {
        // SAFETY: the root is a page-table frame reachable through the direct
        // map; `&mut self` makes this the only mutable access (see
        // `from_root`).
        let pml4 = unsafe { &mut *(phys_to_virt(self.root) as *mut PageTable) };
        // SAFETY: the direct map covers all RAM at `hhdm_offset`.
        let table = unsafe { OffsetPageTable::new(pml4, VirtAddr::new(hhdm_offset())) };
        Mapper { table }
    }
}

/// Mutable access to one page-table tree, borrowed from its [`PageTree`].
pub struct Mapper<'a> {
    table: OffsetPageTable<'a>,
}

impl Mapper<'_> {
    /// Maps `virt` to `phys` with a page of `size`. Intermediate tables get
    /// the user bit when `access.user`, so user mappings are reachable.
    pub fn map(&mut self, virt: u64, phys: u64, size: PageSize, access: Access) -> Result<(), PagingError> {
        if !virt.is_multiple_of(size.bytes()) || !phys.is_multiple_of(size.bytes()) {
            return Err(PagingError::Misaligned);
        }
        let flags = access.flags();
        let parent = if access.user { F::PRESENT | F::WRITABLE | F::USER_ACCESSIBLE } else { F::PRESENT | F::WRITABLE };
        let v = VirtAddr::new(virt);
        let p = PhysAddr::new(phys);
        // SAFETY: the caller (the address-space layer) owns `phys` and hands
        // it to this mapping; the flags are what it asked for. Flushes are
        // not needed for a previously unmapped page and are otherwise the
        // caller's job (the MapperFlush values are dropped on purpose).
        unsafe {
            match size {
                PageSize::Small => self
                    .table
                    .map_to_with_table_flags(Page::<Size4KiB>::containing_address(v), PhysFrame::containing_address(p), flags, parent, &mut TableFrames)
                    .map(|f| f.ignore())
                    .map_err(map_error),
                PageSize::Large => self
                    .table
                    .map_to_with_table_flags(Page::<Size2MiB>::containing_address(v), PhysFrame::containing_address(p), flags, parent, &mut TableFrames)
                    .map(|f| f.ignore())
                    .map_err(map_error),
                PageSize::Huge => self
                    .table
                    .map_to_with_table_flags(Page::<Size1GiB>::containing_address(v), PhysFrame::containing_address(p), flags, parent, &mut TableFrames)
                    .map(|f| f.ignore())
                    .map_err(map_error),
            }
        }
    }

    /// Unmaps the page of `size` at `virt`; records it in `flush` and returns
    /// the physical address it mapped.
    pub fn unmap(&mut self, virt: u64, size: PageSize, flush: &mut FlushBatch) -> Result<u64, PagingError> {
        if !virt.is_multiple_of(size.bytes()) {
            return Err(PagingError::Misaligned);
        }
        let v = VirtAddr::new(virt);
        let phys = match size {
            PageSize::Small => self.table.unmap(Page::<Size4KiB>::containing_address(v)).map(|(f, fl)| {
                fl.ignore();
                f.start_address()
            }),
            PageSize::Large => self.table.unmap(Page::<Size2MiB>::containing_address(v)).map(|(f, fl)| {
                fl.ignore();
                f.start_address()
            }),
            PageSize::Huge => self.table.unmap(Page::<Size1GiB>::containing_address(v)).map(|(f, fl)| {
                fl.ignore();
                f.start_address()
            }),
        }
        .map_err(unmap_error)?;
        flush.add(virt, if size == PageSize::Huge { 512 } else { 1 }, size != PageSize::Small);
        Ok(phys.as_u64())
    }

    /// Changes what the page of `size` at `virt` allows; records it in
    /// `flush`.
    pub fn protect(&mut self, virt: u64, size: PageSize, access: Access, flush: &mut FlushBatch) -> Result<(), PagingError> {
        if !virt.is_multiple_of(size.bytes()) {
            return Err(PagingError::Misaligned);
        }
        let v = VirtAddr::new(virt);
        let mut flags = access.flags();
        if size != PageSize::Small {
            flags |= F::HUGE_PAGE;
        }
        // SAFETY: changing permission bits of an existing mapping cannot make
        // it point elsewhere; stale TLB entries are flushed by the caller
        // through `flush` before it relies on the new permissions.
        let result = unsafe {
            match size {
                PageSize::Small => self.table.update_flags(Page::<Size4KiB>::containing_address(v), flags).map(|f| f.ignore()),
                PageSize::Large => self.table.update_flags(Page::<Size2MiB>::containing_address(v), flags).map(|f| f.ignore()),
                PageSize::Huge => self.table.update_flags(Page::<Size1GiB>::containing_address(v), flags).map(|f| f.ignore()),
            }
        };
        result.map_err(|e| match e {
            x86_64::structures::paging::mapper::FlagUpdateError::PageNotMapped => PagingError::NotMapped,
            x86_64::structures::paging::mapper::FlagUpdateError::ParentEntryHugePage => PagingError::InsideLargerPage,
        })?;
        flush.add(virt, 1, size != PageSize::Small);
        Ok(())
    }

    /// What `virt` maps to, if anything.
    pub fn translate(&self, virt: u64) -> Option<Translation> {
        match self.table.translate(VirtAddr::new(virt)) {
            TranslateResult::Mapped { frame, offset, flags } => Some(Translation {
                phys: frame.start_address().as_u64() + offset,
                size: match frame {
                    MappedFrame::Size4KiB(_) => PageSize::Small,
                    MappedFrame::Size2MiB(_) => PageSize::Large,
                    MappedFrame::Size1GiB(_) => PageSize::Huge,
                },
                access: Access::from_flags(flags),
            }),
            _ => None,
        }
    }

    /// The PML4 of this tree.
    pub fn pml4_mut(&mut self) -> &mut PageTable {
        self.table.level_4_table_mut()
    }
}

fn map_error<S: x86_64::structures::paging::PageSize>(e: MapToError<S>) -> PagingError {
    match e {
        MapToError::FrameAllocationFailed => PagingError::OutOfFrames,
        MapToError::PageAlreadyMapped(_) => PagingError::AlreadyMapped,
        MapToError::ParentEntryHugePage => PagingError::InsideLargerPage,
    }
}

fn unmap_error(e: UnmapError) -> PagingError {
    match e {
        UnmapError::PageNotMapped => PagingError::NotMapped,
        UnmapError::ParentEntryHugePage => PagingError::InsideLargerPage,
        UnmapError::InvalidFrameAddress(_) => PagingError::NotMapped,
    }
}

/// Allocates a PML4 whose upper half is a copy of `kernel_root`'s (the same
/// 256 entries, so the same kernel tables) and whose lower half is empty.
pub fn new_root_sharing_kernel_half(kernel_root: u64) -> Result<u64, frame::OutOfFrames> {
    let root = frame::alloc_zeroed(FrameUse::PageTables)?.start_address().as_u64();
    // SAFETY: both are PML4 frames in the direct map; the new one is ours
    // alone, and the kernel's upper entries never change after boot, so
    // reading them needs no lock.
    unsafe {
        let src = &*(phys_to_virt(kernel_root) as *const PageTable);
        let dst = &mut *(phys_to_virt(root) as *mut PageTable);
        for i in 256..512 {
            dst[i] = src[i].clone();
        }
    }
    Ok(root)
}

impl PageTree {
    /// Every leaf mapping of the lower half: (address, page size).
    pub fn lower_half_leaves(&self) -> alloc::vec::Vec<(u64, PageSize)> {
        fn walk(table_phys: u64, level: u8, base: u64, out: &mut alloc::vec::Vec<(u64, PageSize)>) {
            // SAFETY: page-table frames are reachable through the direct map;
            // the caller holds the tree (`&self`), so it does not change.
            let table = unsafe { &*(phys_to_virt(table_phys) as *const PageTable) };
            let span = 1u64 << (12 + 9 * (level as u64 - 1));
            for (i, entry) in table.iter().enumerate() {
                if entry.is_unused() {
                    continue;
                }
                let va = base + i as u64 * span;
                match level {
                    1 => out.push((va, PageSize::Small)),
                    2 if entry.flags().contains(F::HUGE_PAGE) => out.push((va, PageSize::Large)),
                    3 if entry.flags().contains(F::HUGE_PAGE) => out.push((va, PageSize::Huge)),
                    _ => walk(entry.addr().as_u64(), level - 1, va, out),
                }
            }
        }
        let mut out = alloc::vec::Vec::new();
        // SAFETY: as above.
        let pml4 = unsafe { &*(phys_to_virt(self.root) as *const PageTable) };
        for (i, entry) in pml4.iter().enumerate().take(256) {
            if !entry.is_unused() {
                walk(entry.addr().as_u64(), 3, i as u64 * (1 << 39), &mut out);
            }
        }
        out
    }

    /// Frees every page-table page of the lower half (and the PML4 itself),
    /// leaving the shared kernel half alone. Leaf frames are not touched:
    /// their owners unmap and free them first. Returns how many leaf
    /// mappings were still present (a leak by the owner if not zero).
    pub fn free_lower_half(self) -> u64 {
        fn walk(table_phys: u64, level: u8, leaves: &mut u64) {
            // SAFETY: page-table frames are reachable through the direct map
            // and this tree is being torn down by its sole owner.
            let table = unsafe { &*(phys_to_virt(table_phys) as *const PageTable) };
            for entry in table.iter() {
                if entry.is_unused() {
                    continue;
                }
                if level == 1 || entry.flags().contains(F::HUGE_PAGE) {
                    *leaves += 1;
                } else {
                    walk(entry.addr().as_u64(), level - 1, leaves);
                }
            }
            if level < 4 {
                frame::free(PhysFrame::containing_address(PhysAddr::new(table_phys)), FrameUse::PageTables);
            }
        }
        let mut leaves = 0;
        // SAFETY: as above; only entries 0..256 (the lower half) are walked.
        let pml4 = unsafe { &*(phys_to_virt(self.root) as *const PageTable) };
        for entry in pml4.iter().take(256) {
            if !entry.is_unused() {
                walk(entry.addr().as_u64(), 3, &mut leaves);
            }
        }
        frame::free(PhysFrame::containing_address(PhysAddr::new(self.root)), FrameUse::PageTables);
        leaves
    }
}
