//! Loading the kernel ELF: checked by `loader_core::kernel_elf`, then copied
//! segment by segment into one physically contiguous block of
//! executable-and-modules memory, BSS left zero.

use crate::fail::{BootError, Result};
use crate::fs::LoadedFile;
use crate::mem;
use crate::warn;
use alloc::string::ToString;
use loader_core::kernel_elf::{self, KernelImage};

/// A kernel copied to where it will run.
pub struct Kernel {
    /// The file as read from the volume.
    pub file: LoadedFile,
    /// What the ELF checks found.
    pub image: KernelImage,
    /// Physical address of the block; it holds virtual address
    /// `image.virt_base` at offset 0.
    pub phys_base: u64,
    /// The block.
    pub block: &'static mut [u8],
}

impl Kernel {
    /// Physical address of kernel virtual address `vaddr` (inside the block).
    pub fn phys_of(&self, vaddr: u64) -> u64 {
        self.phys_base + (vaddr - self.image.virt_base)
    }
}

/// Checks and loads the kernel file `file`; `subject` names it in errors.
pub fn load(file: LoadedFile, subject: &str) -> Result<Kernel> {
    let image = kernel_elf::parse(file.data).map_err(|e| BootError::new(subject, e.to_string()))?;
    for warning in &image.warnings {
        warn!("{subject}: {warning}");
    }
    let pages = mem::allocate(mem::EXECUTABLE_AND_MODULES, image.size(), None, "the kernel image")?;
    let phys_base = pages.phys;
    let block = pages.into_slice();
    for seg in &image.segments {
        let at = (seg.vaddr - image.virt_base) as usize;
        let from = seg.offset as usize;
        let len = seg.filesz as usize;
        block[at..at + len].copy_from_slice(&file.data[from..from + len]);
    }
    Ok(Kernel { file, image, phys_base, block })
}
