//! The page tables the kernel is entered with (4-level paging): the kernel's
//! segments with their own permissions, the higher-half direct map in the
//! largest pages that fit, and a temporary identity map of the few pages
//! the CPUs execute while switching to these tables (removed by the handoff
//! code before the kernel runs).
//!
//! Every table lives in bootloader-reclaimable memory below 4 GiB, so an AP
//! can load CR3 from 32-bit code.

use crate::fail::{BootError, Result};
use crate::kernel::Kernel;
use crate::mem::{self, PAGE_SIZE};
use alloc::format;
use loader_core::paging::{SIZE_1G, SIZE_2M, SIZE_4K, chunks};
use loader_core::protocol::{HHDM_OFFSET, KERNEL_MIN_VADDR};
use x86_64::structures::paging::mapper::MapToError;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageSize, PageTable, PageTableFlags as Flags, PhysFrame, Size1GiB,
    Size2MiB, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

const FOUR_GIB: u64 = 1 << 32;

/// Hands out zeroed reclaimable pages below 4 GiB, a few at a time.
struct TableFrames {
    next: u64,
    end: u64,
    error: Option<BootError>,
}

// SAFETY: every frame returned is a fresh, unused, zeroed page that UEFI
// allocated to the loader and that is never handed out twice.
unsafe impl FrameAllocator<Size4KiB> for TableFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        if self.next == self.end {
            match mem::allocate(mem::RECLAIMABLE, 16 * PAGE_SIZE, Some(FOUR_GIB), "page tables") {
                Ok(pages) => {
                    self.next = pages.phys;
                    self.end = pages.phys + pages.len() as u64;
                }
                Err(e) => {
                    self.error = Some(e);
                    return None;
                }
            }
        }
        let frame = PhysFrame::containing_address(PhysAddr::new(self.next));
        self.next += PAGE_SIZE;
        Some(frame)
    }
}

/// Page tables under construction.
pub struct Builder {
    mapper: OffsetPageTable<'static>,
    pml4: u64,
    frames: TableFrames,
    nx: bool,
    huge_1g: bool,
}

impl Builder {
    /// An empty PML4. `nx`: the CPU has no-execute pages; `huge_1g`: it has
    /// 1 GiB pages.
    pub fn new(nx: bool, huge_1g: bool) -> Result<Builder> {
        let page = mem::allocate(mem::RECLAIMABLE, PAGE_SIZE, Some(FOUR_GIB), "page tables")?;
        let pml4 = page.phys;
        // SAFETY: the page is fresh, zeroed and page aligned, so it is a valid
        // empty `PageTable` owned by this builder alone, and never freed.
        let table = unsafe { &mut *(pml4 as *mut PageTable) };
        // SAFETY: while boot services run, UEFI maps all physical memory
        // one-to-one, which is what an offset of 0 means.
        let mapper = unsafe { OffsetPageTable::new(table, VirtAddr::zero()) };
        Ok(Builder { mapper, pml4, frames: TableFrames { next: 0, end: 0, error: None }, nx, huge_1g })
    }

    /// Physical address of the PML4.
    pub fn pml4(&self) -> u64 {
        self.pml4
    }

    fn map<S: PageSize>(&mut self, virt: u64, phys: u64, flags: Flags) -> Result<()>
    where
        OffsetPageTable<'static>: Mapper<S>,
    {
        let page = Page::<S>::from_start_address(VirtAddr::new(virt))
            .map_err(|_| BootError::new("page tables", format!("{virt:#x} is not aligned to its page size")))?;
        let frame = PhysFrame::<S>::from_start_address(PhysAddr::new(phys))
            .map_err(|_| BootError::new("page tables", format!("{phys:#x} is not aligned to its page size")))?;
        let parent = Flags::PRESENT | Flags::WRITABLE;
        // SAFETY: the tables are not in use by any CPU yet, so no mapping can
        // change under running code; the frame is memory the kernel is meant
        // to see at `virt`.
        match unsafe { self.mapper.map_to_with_table_flags(page, frame, flags, parent, &mut self.frames) } {
            Ok(flush) => {
                flush.ignore();
                Ok(())
            }
            Err(MapToError::FrameAllocationFailed) => Err(self
                .frames
                .error
                .take()
                .unwrap_or_else(|| BootError::new("memory", "out of memory for page tables"))),
            Err(MapToError::PageAlreadyMapped(_)) => {
                Err(BootError::new("page tables", format!("{virt:#x} is mapped twice")))
            }
            Err(MapToError::ParentEntryHugePage) => {
                Err(BootError::new("page tables", format!("{virt:#x} falls inside a larger page")))
            }
        }
    }

    /// Maps the kernel's segments at their virtual addresses, each page with
    /// the permissions of the segments on it.
    pub fn map_kernel(&mut self, kernel: &Kernel) -> Result<()> {
        for range in kernel.image.page_plan() {
            let mut flags = Flags::PRESENT;
            if range.writable {
                flags |= Flags::WRITABLE;
            }
            if !range.executable && self.nx {
                flags |= Flags::NO_EXECUTE;
            }
            for i in 0..range.pages {
                let virt = range.vaddr + i * PAGE_SIZE;
                self.map::<Size4KiB>(virt, kernel.phys_of(virt), flags)?;
            }
        }
        Ok(())
    }

    /// Maps each physical range at `HHDM_OFFSET + address`, read-write-execute.
    pub fn map_hhdm(&mut self, ranges: &[(u64, u64)]) -> Result<()> {
        let flags = Flags::PRESENT | Flags::WRITABLE;
        for &(start, end) in ranges {
            if end > KERNEL_MIN_VADDR - HHDM_OFFSET {
                return Err(BootError::new(
                    "memory",
                    format!(
                        "physical memory up to {end:#x} does not fit in the higher-half direct map of 4-level paging"
                    ),
                ));
            }
            for (phys, size) in chunks(start, end, self.huge_1g) {
                let virt = HHDM_OFFSET + phys;
                match size {
                    SIZE_1G => self.map::<Size1GiB>(virt, phys, flags)?,
                    SIZE_2M => self.map::<Size2MiB>(virt, phys, flags)?,
                    _ => self.map::<Size4KiB>(virt, phys, flags)?,
                }
            }
        }
        Ok(())
    }

    /// Identity-maps the pages holding `[start, end)` (lower half, removed
    /// at the handoff).
    pub fn map_identity(&mut self, start: u64, end: u64) -> Result<()> {
        let mut page = start & !(SIZE_4K - 1);
        while page < end {
            self.map::<Size4KiB>(page, page, Flags::PRESENT | Flags::WRITABLE)?;
            page += SIZE_4K;
        }
        Ok(())
    }
}
