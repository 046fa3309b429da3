//! Loading modules (the kernel's internal modules of module request
//! revision 1 first, then the entry's `module_path:` options) and describing
//! files to the kernel as `limine_file` structures.

use crate::config;
use crate::fail::{BootError, Result};
use crate::fs::{LoadedFile, Volume};
use crate::kernel::Kernel;
use crate::mem::{self, Arena, hhdm_ptr};
use crate::{say, warn};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use limine_conf::{Entry, LiminePath};
use loader_core::devpath::Partition;
use loader_core::protocol::{INTERNAL_MODULE_REQUIRED, LimineFile, REQUEST_FIELDS_OFFSET};

/// A module read into memory.
pub struct Module {
    /// Path inside the volume (`/boot/init`).
    pub path: String,
    /// Its command line.
    pub cmdline: String,
    /// The file.
    pub file: LoadedFile,
}

/// Builds the `limine_file` for a file loaded from the loader's volume.
pub fn limine_file(
    arena: &mut Arena,
    file: &LoadedFile,
    path: &str,
    cmdline: &str,
    partition: Option<Partition>,
) -> Result<&'static mut LimineFile> {
    let path = arena.c_string(path)?;
    let cmdline = arena.c_string(cmdline)?;
    let partition = partition.unwrap_or_default();
    arena.put(LimineFile {
        revision: 0,
        address: mem::hhdm(file.phys),
        size: file.size,
        path,
        cmdline,
        media_type: 0,
        unused: 0,
        tftp_ip: 0,
        tftp_port: 0,
        partition_index: partition.number,
        mbr_disk_id: partition.mbr_disk_id,
        gpt_disk_uuid: [0; 16],
        gpt_part_uuid: partition.gpt_part_uuid,
        part_uuid: [0; 16],
    })
}

fn load_one(volume: &mut Volume, path: &LiminePath, cmdline: &str, required: bool) -> Result<Option<Module>> {
    let name = path.to_string();
    if path.hash.is_some() {
        warn!("{name}: the hash suffix is not checked by this loader");
    }
    let in_volume = config::volume_path(path)?;
    match volume.read(in_volume, mem::EXECUTABLE_AND_MODULES, &name)? {
        Some(file) => {
            say!("module {name} ({} bytes)", file.size);
            Ok(Some(Module { path: in_volume.to_string(), cmdline: cmdline.to_string(), file }))
        }
        None if required => Err(BootError::new(name, "file not found")),
        None => {
            warn!("{name}: optional internal module not found; skipped");
            Ok(None)
        }
    }
}

/// Reads a NUL-terminated string at kernel virtual address `vaddr`.
fn kernel_c_string(kernel: &Kernel, vaddr: u64, what: &str) -> Result<String> {
    let start = kernel
        .image
        .offset_of(vaddr, 1)
        .ok_or_else(|| BootError::new("kernel", format!("{what} points outside the kernel image ({vaddr:#x})")))?;
    let bytes = &kernel.block[start..];
    let len = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| BootError::new("kernel", format!("{what} is not NUL-terminated inside the image")))?;
    core::str::from_utf8(&bytes[..len])
        .map(String::from)
        .map_err(|_| BootError::new("kernel", format!("{what} is not UTF-8")))
}

fn kernel_u64(kernel: &Kernel, vaddr: u64, what: &str) -> Result<u64> {
    let at = kernel
        .image
        .offset_of(vaddr, 8)
        .ok_or_else(|| BootError::new("kernel", format!("{what} points outside the kernel image ({vaddr:#x})")))?;
    Ok(u64::from_le_bytes(kernel.block[at..at + 8].try_into().unwrap_or_default()))
}

/// Resolves an internal module path: a full Limine path, a path from the
/// volume's root, or a path relative to the kernel's directory.
fn internal_path(text: &str, kernel_path: &LiminePath) -> Result<LiminePath> {
    if text.contains("):") {
        return LiminePath::parse(text, 0)
            .map_err(|e| BootError::new("kernel", format!("internal module: {}", e.message)));
    }
    let path = if text.starts_with('/') {
        text.to_string()
    } else {
        let dir = kernel_path.path.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{text}")
    };
    Ok(LiminePath { resource: kernel_path.resource.clone(), path, hash: None })
}

/// Loads the internal modules of a module request at image offset
/// `request` (revision 1 or later) and then the entry's modules.
pub fn load_all(
    volume: &mut Volume,
    kernel: &Kernel,
    kernel_path: &LiminePath,
    entry: &Entry,
    request: Option<(usize, u64)>,
) -> Result<Vec<Module>> {
    let mut modules = Vec::new();
    if let Some((offset, _)) = request.filter(|&(_, revision)| revision >= 1) {
        let field = |n: usize| -> u64 {
            let at = offset + REQUEST_FIELDS_OFFSET + 8 * n;
            u64::from_le_bytes(kernel.block[at..at + 8].try_into().unwrap_or_default())
        };
        let (count, array) = (field(0), field(1));
        for i in 0..count {
            let what = format!("internal module {i}");
            let module = kernel_u64(kernel, array + 8 * i, &what)?;
            let path = kernel_c_string(kernel, kernel_u64(kernel, module, &what)?, &what)?;
            let cmdline_ptr = kernel_u64(kernel, module + 8, &what)?;
            let cmdline = if cmdline_ptr == 0 { String::new() } else { kernel_c_string(kernel, cmdline_ptr, &what)? };
            let flags = kernel_u64(kernel, module + 16, &what)?;
            let path = internal_path(&path, kernel_path)?;
            if let Some(m) = load_one(volume, &path, &cmdline, flags & INTERNAL_MODULE_REQUIRED != 0)? {
                modules.push(m);
            }
        }
    }
    for module in &entry.modules {
        if let Some(m) = load_one(volume, &module.path, &module.cmdline, true)? {
            modules.push(m);
        }
    }
    Ok(modules)
}

/// The kernel's address of a `limine_file`.
pub fn file_ptr(file: &LimineFile) -> u64 {
    hhdm_ptr(file)
}
