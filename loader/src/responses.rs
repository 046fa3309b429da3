//! Answering the kernel's requests: reading their fields in the loaded image
//! and writing response pointers into them.
//!
//! The responses that only need what is known before ExitBootServices are
//! filled here; the memory map and MP responses are allocated here too, but
//! their contents are written after ExitBootServices (`handoff`, `smp`).

use crate::fail::Result;
use crate::fs::LoadedFile;
use crate::kernel::Kernel;
use crate::mem::{self, Arena, hhdm_ptr};
use crate::modules::{self, Module};
use crate::{say, warn};
use loader_core::devpath::Partition;
use loader_core::protocol::*;
use loader_core::requests::{FoundRequest, Scan};

/// Reads request-specific field `n` (0-based, after `response`).
pub fn field(kernel: &Kernel, request: &FoundRequest, n: usize) -> u64 {
    let at = request.offset + REQUEST_FIELDS_OFFSET + 8 * n;
    u64::from_le_bytes(kernel.block[at..at + 8].try_into().unwrap_or_default())
}

/// Points the request's `response` at `response` (an HHDM address).
pub fn set(kernel: &mut Kernel, request: &FoundRequest, response: u64) {
    let at = request.offset + REQUEST_RESPONSE_OFFSET;
    kernel.block[at..at + 8].copy_from_slice(&response.to_le_bytes());
}

/// Everything the simple responses are made from.
pub struct Facts<'a> {
    /// Base revision the kernel is booted with.
    pub base_revision: u64,
    /// The kernel file and its path inside the volume.
    pub kernel_file: (&'a LoadedFile, &'a str),
    /// The entry's command line.
    pub cmdline: &'a str,
    /// Loaded modules.
    pub modules: &'a [Module],
    /// The boot volume's partition.
    pub partition: Option<Partition>,
    /// Physical address of the RSDP.
    pub rsdp: Option<u64>,
}

/// Answers every request whose response can be completed before
/// ExitBootServices (all but memory map and MP).
pub fn answer(arena: &mut Arena, kernel: &mut Kernel, scan: &Scan, facts: &Facts<'_>) -> Result<()> {
    let cmdline = arena.c_string(facts.cmdline)?;
    for request in &scan.requests {
        let response = match request.feature {
            Feature::BootloaderInfo => {
                let name = arena.c_string("Ferrite loader")?;
                let version = arena.c_string(env!("CARGO_PKG_VERSION"))?;
                hhdm_ptr(arena.put(BootloaderInfoResponse { revision: 0, name, version })?)
            }
            Feature::FirmwareType => {
                hhdm_ptr(arena.put(FirmwareTypeResponse { revision: 0, firmware_type: FIRMWARE_TYPE_UEFI64 })?)
            }
            Feature::StackSize | Feature::EntryPoint => hhdm_ptr(arena.put(EmptyResponse { revision: 0 })?),
            Feature::Hhdm => hhdm_ptr(arena.put(HhdmResponse { revision: 0, offset: HHDM_OFFSET })?),
            Feature::PagingMode => hhdm_ptr(arena.put(PagingModeResponse { revision: 0, mode: PAGING_MODE_4LVL })?),
            Feature::ExecutableFile => {
                let (file, path) = facts.kernel_file;
                let file = modules::limine_file(arena, file, path, facts.cmdline, facts.partition)?;
                let file = hhdm_ptr(file);
                hhdm_ptr(arena.put(ExecutableFileResponse { revision: 0, file })?)
            }
            Feature::Module => {
                let pointers = arena.slice(facts.modules.len(), 0u64)?;
                for (slot, module) in pointers.iter_mut().zip(facts.modules) {
                    let file =
                        modules::limine_file(arena, &module.file, &module.path, &module.cmdline, facts.partition)?;
                    *slot = modules::file_ptr(file);
                }
                let modules = hhdm_ptr(pointers.as_ptr());
                hhdm_ptr(arena.put(ModuleResponse {
                    revision: 1,
                    module_count: facts.modules.len() as u64,
                    modules,
                })?)
            }
            Feature::Rsdp => {
                let Some(rsdp) = facts.rsdp else { continue };
                // Base revision 3 returns the physical address; older ones
                // an HHDM pointer.
                let address = if facts.base_revision >= 3 { rsdp } else { mem::hhdm(rsdp) };
                hhdm_ptr(arena.put(RsdpResponse { revision: 0, address })?)
            }
            Feature::DateAtBoot => match uefi::runtime::get_time() {
                Ok(t) => {
                    let timestamp = loader_core::time::unix_seconds(
                        i64::from(t.year()),
                        u32::from(t.month()),
                        u32::from(t.day()),
                        u32::from(t.hour()),
                        u32::from(t.minute()),
                        u32::from(t.second()),
                    );
                    hhdm_ptr(arena.put(DateAtBootResponse { revision: 0, timestamp })?)
                }
                Err(e) => {
                    warn!("the firmware clock cannot be read ({:?}); no date at boot", e.status());
                    continue;
                }
            },
            Feature::ExecutableAddress => hhdm_ptr(arena.put(ExecutableAddressResponse {
                revision: 0,
                physical_base: kernel.phys_base,
                virtual_base: kernel.image.virt_base,
            })?),
            Feature::ExecutableCmdline => hhdm_ptr(arena.put(ExecutableCmdlineResponse { revision: 0, cmdline })?),
            // Filled in later, or not provided by this loader.
            Feature::Mp | Feature::Memmap => continue,
            Feature::Framebuffer | Feature::Smbios | Feature::EfiSystemTable | Feature::EfiMemmap | Feature::Dtb => {
                continue;
            }
        };
        set(kernel, request, response);
    }
    Ok(())
}

/// Reports requests newer than this loader and, when verbose, every request.
pub fn report(scan: &Scan, verbose: bool) {
    for request in &scan.requests {
        let feature = request.feature;
        if request.revision > feature.max_request_revision() {
            say!(
                "the kernel's {} request has revision {}; answering it as revision {}",
                feature.name(),
                request.revision,
                feature.max_request_revision()
            );
        }
        if verbose {
            let status = if feature.supported() { "answered" } else { "not provided by this loader" };
            say!(
                "request: {} (revision {}) at image offset {:#x}: {status}",
                feature.name(),
                request.revision,
                request.offset
            );
        }
    }
    if verbose {
        for offset in &scan.unknown {
            say!("request with an unknown identifier at image offset {offset:#x}: ignored");
        }
        if scan.delimited {
            say!("requests searched between image offsets {:#x} and {:#x} (markers)", scan.area.0, scan.area.1);
        }
    }
}
