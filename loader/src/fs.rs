//! Reading files from the volume the loader itself was loaded from — what a
//! Limine path calls `boot()`.
//!
//! Files are read straight into page allocations of the memory type the
//! kernel will see them as, so nothing needs copying later.

use crate::fail::{BootError, Result};
use crate::mem::{self, Pages};
use alloc::format;
use alloc::string::String;
use loader_core::devpath::{self, Partition};
use uefi::boot::{self, MemoryType, ScopedProtocol};
use uefi::proto::device_path::LoadedImageDevicePath;
use uefi::proto::media::file::{Directory, File, FileAttribute, FileInfo, FileMode, FileType, RegularFile};
use uefi::proto::media::fs::SimpleFileSystem;
use uefi::{CString16, Status};

/// The loader's own volume.
pub struct Volume {
    _fs: ScopedProtocol<SimpleFileSystem>,
    root: Directory,
    /// The partition the volume is on, when the firmware says.
    pub partition: Option<Partition>,
}

/// A file read into memory.
#[derive(Debug, Clone, Copy)]
pub struct LoadedFile {
    /// Physical address (page aligned).
    pub phys: u64,
    /// Size in bytes.
    pub size: u64,
    /// The contents.
    pub data: &'static [u8],
}

impl Volume {
    /// Opens the volume the loader was loaded from.
    pub fn open() -> Result<Volume> {
        let image = boot::image_handle();
        let mut fs = boot::get_image_file_system(image).map_err(|e| {
            BootError::new(
                "boot volume",
                format!("cannot open the file system the loader was loaded from ({:?})", e.status()),
            )
        })?;
        let root = fs
            .open_volume()
            .map_err(|e| BootError::new("boot volume", format!("cannot open its root directory ({:?})", e.status())))?;
        let partition = boot::open_protocol_exclusive::<LoadedImageDevicePath>(image)
            .ok()
            .and_then(|path| devpath::partition(path.as_bytes()));
        Ok(Volume { _fs: fs, root, partition })
    }

    fn open_file(&mut self, path: &str, subject: &str) -> Result<Option<RegularFile>> {
        let uefi_path: String = path.chars().map(|c| if c == '/' { '\\' } else { c }).collect();
        let name = CString16::try_from(uefi_path.as_str())
            .map_err(|_| BootError::new(subject, "the path has characters UEFI file names cannot hold"))?;
        let handle = match self.root.open(&name, FileMode::Read, FileAttribute::empty()) {
            Ok(handle) => handle,
            Err(e) if e.status() == Status::NOT_FOUND => return Ok(None),
            Err(e) => return Err(BootError::new(subject, format!("cannot open the file ({:?})", e.status()))),
        };
        match handle.into_type() {
            Ok(FileType::Regular(file)) => Ok(Some(file)),
            Ok(FileType::Dir(_)) => Err(BootError::new(subject, "is a directory, not a file")),
            Err(e) => Err(BootError::new(subject, format!("cannot open the file ({:?})", e.status()))),
        }
    }

    /// Reads the file at `path` (`/`-separated, from the volume's root) into
    /// pages of type `kind`. `Ok(None)` means there is no such file.
    pub fn read(&mut self, path: &str, kind: MemoryType, subject: &str) -> Result<Option<LoadedFile>> {
        let Some(mut file) = self.open_file(path, subject)? else { return Ok(None) };
        let size = file
            .get_boxed_info::<FileInfo>()
            .map_err(|e| BootError::new(subject, format!("cannot read the file's size ({:?})", e.status())))?
            .file_size();
        let pages: Pages = mem::allocate(kind, size, None, subject)?;
        let phys = pages.phys;
        let buffer = pages.into_slice();
        let mut done = 0usize;
        while (done as u64) < size {
            match file.read(&mut buffer[done..size as usize]) {
                Ok(0) => return Err(BootError::new(subject, format!("the file ended after {done} of {size} bytes"))),
                Ok(n) => done += n,
                Err(e) => return Err(BootError::new(subject, format!("read error ({:?})", e.status()))),
            }
        }
        Ok(Some(LoadedFile { phys, size, data: &buffer[..size as usize] }))
    }
}
