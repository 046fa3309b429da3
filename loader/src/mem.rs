//! Memory the loader gives to the kernel.
//!
//! Everything the kernel may read after the handoff (responses, strings,
//! page tables, the GDT, stacks, the AP trampoline) is allocated here with
//! the OS-defined UEFI memory type that becomes bootloader-reclaimable in the
//! Limine memory map; the kernel image, its file and the modules get the one
//! that becomes executable-and-modules. While boot services run, UEFI maps
//! memory one-to-one, so a physical address is also a pointer.

use crate::fail::{BootError, Result};
use alloc::format;
use loader_core::memmap::{EFI_BOOTLOADER_RECLAIMABLE, EFI_EXECUTABLE_AND_MODULES};
use loader_core::protocol::HHDM_OFFSET;
use uefi::boot::{self, AllocateType, MemoryType};

/// Memory the kernel may reclaim once it no longer needs the responses.
pub const RECLAIMABLE: MemoryType = MemoryType::custom(EFI_BOOTLOADER_RECLAIMABLE);
/// The kernel image, the kernel file and the modules.
pub const EXECUTABLE_AND_MODULES: MemoryType = MemoryType::custom(EFI_EXECUTABLE_AND_MODULES);

/// 4 KiB.
pub const PAGE_SIZE: u64 = 4096;

/// The address at which the kernel sees physical address `phys`.
pub const fn hhdm(phys: u64) -> u64 {
    phys + HHDM_OFFSET
}

/// The kernel's view of a pointer into loader-allocated memory.
pub fn hhdm_ptr<T: ?Sized>(ptr: *const T) -> u64 {
    hhdm(ptr.cast::<u8>() as u64)
}

/// Zeroed physical pages.
#[derive(Debug)]
pub struct Pages {
    /// Physical address of the first page.
    pub phys: u64,
    /// Number of pages.
    pub count: usize,
}

impl Pages {
    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.count * PAGE_SIZE as usize
    }

    /// The pages as bytes. The allocation is never freed, so the slice lives
    /// as long as the loader.
    pub fn into_slice(self) -> &'static mut [u8] {
        // SAFETY: the pages were just allocated for this `Pages` alone (it is
        // consumed here, so no second slice can be made), are identity-mapped
        // while boot services run, zeroed, and never freed.
        unsafe { core::slice::from_raw_parts_mut(self.phys as *mut u8, self.len()) }
    }
}

/// Allocates `bytes` (rounded up to pages) of zeroed memory of type `kind`,
/// all of it below `below` when given. `what` names the use in the
/// out-of-memory error.
pub fn allocate(kind: MemoryType, bytes: u64, below: Option<u64>, what: &str) -> Result<Pages> {
    let count = bytes.div_ceil(PAGE_SIZE).max(1) as usize;
    let how = match below {
        Some(limit) => AllocateType::MaxAddress(limit - 1),
        None => AllocateType::AnyPages,
    };
    let ptr = boot::allocate_pages(how, kind, count).map_err(|e| {
        let kib = count as u64 * PAGE_SIZE / 1024;
        let place = match below {
            Some(limit) => format!(" below {limit:#x}"),
            None => alloc::string::String::new(),
        };
        BootError::new(
            "memory",
            format!("out of memory: cannot allocate {kib} KiB{place} for {what} ({:?})", e.status()),
        )
    })?;
    // SAFETY: UEFI just gave us `count` pages at `ptr`, identity-mapped and
    // owned by nobody else.
    unsafe { core::ptr::write_bytes(ptr.as_ptr(), 0, count * PAGE_SIZE as usize) };
    Ok(Pages { phys: ptr.as_ptr() as u64, count })
}

/// A bump allocator over bootloader-reclaimable pages, for responses and the
/// strings and arrays they point to.
#[derive(Debug, Default)]
pub struct Arena {
    next: u64,
    end: u64,
}

impl Arena {
    /// An arena that has not allocated anything yet.
    pub const fn new() -> Arena {
        Arena { next: 0, end: 0 }
    }

    fn bytes(&mut self, size: usize, align: usize) -> Result<*mut u8> {
        let mut at = self.next.next_multiple_of(align as u64);
        if at + size as u64 > self.end || self.next == 0 {
            let chunk = (size as u64).max(4 * PAGE_SIZE);
            let pages = allocate(RECLAIMABLE, chunk, None, "boot protocol responses")?;
            self.end = pages.phys + pages.len() as u64;
            at = pages.phys;
        }
        self.next = at + size as u64;
        Ok(at as *mut u8)
    }

    /// Moves `value` into reclaimable memory.
    pub fn put<T>(&mut self, value: T) -> Result<&'static mut T> {
        let ptr = self.bytes(size_of::<T>(), align_of::<T>())?.cast::<T>();
        // SAFETY: `ptr` is fresh, suitably aligned arena memory for one `T`
        // that is never handed out again or freed.
        unsafe {
            ptr.write(value);
            Ok(&mut *ptr)
        }
    }

    /// An array of `len` copies of `fill` in reclaimable memory.
    pub fn slice<T: Copy>(&mut self, len: usize, fill: T) -> Result<&'static mut [T]> {
        let ptr = self.bytes(size_of::<T>() * len.max(1), align_of::<T>())?.cast::<T>();
        for i in 0..len {
            // SAFETY: `ptr..ptr+len` is fresh, aligned arena memory.
            unsafe { ptr.add(i).write(fill) };
        }
        // SAFETY: all `len` elements were just initialised; the memory is
        // never handed out again or freed.
        Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
    }

    /// A NUL-terminated copy of `text`; returns its address as the kernel
    /// sees it.
    pub fn c_string(&mut self, text: &str) -> Result<u64> {
        let bytes = self.slice(text.len() + 1, 0u8)?;
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Ok(hhdm_ptr(bytes.as_ptr()))
    }
}
