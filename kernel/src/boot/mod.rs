//! What the boot loader told the kernel, read once and checked.
//!
//! The kernel does not know which loader started it: the project's own
//! `loader/` or a real Limine release. It requests base revision 3 and
//! adapts when the loader only supports revision 2 (Limine 8.x): there the
//! direct map also covers ACPI tables and the RSDP arrives as a virtual
//! address, so the RSDP is normalised to a physical address here and the
//! kernel maps ACPI tables itself in every case.
//!
//! Responses live in bootloader-reclaimable memory. Everything needed after
//! that memory is reclaimed (the command line, module data locations) is
//! copied out; the rest is used only during boot.

pub mod requests;

use crate::kcore::cmdline::Cmdline;
use core::sync::atomic::{AtomicUsize, Ordering};
use limine::memory_map::{Entry, EntryType};
use limine::response::MpResponse;
use requests::*;

/// A boot module (a user program named by `module_path:` in limine.conf).
#[derive(Clone, Copy)]
pub struct Module {
    /// Its file contents, in executable-and-modules memory (never reclaimed).
    pub data: &'static [u8],
    /// The path limine.conf gave.
    pub path: &'static str,
}

/// The boot loader's answers.
pub struct BootInfo {
    /// Base revision in effect (3, or lower under an older loader).
    pub revision: u64,
    /// Offset of the direct map the loader set up (kept by the kernel).
    pub hhdm_offset: u64,
    /// Physical memory map, in address order. Valid until reclaim.
    pub memory_map: &'static [&'static Entry],
    /// Where the kernel image was loaded.
    pub kernel_phys_base: u64,
    /// Where the kernel image is linked.
    pub kernel_virt_base: u64,
    /// The kernel's ELF file as loaded (for per-segment permissions).
    pub kernel_file: &'static [u8],
    /// The ACPI RSDP's physical address.
    pub rsdp_phys: Option<u64>,
    /// UNIX time at boot, if the loader told.
    pub boot_time: Option<u64>,
    /// The CPUs and their parking spots. Valid until reclaim.
    pub mp: Option<&'static MpResponse>,
    /// Boot modules. The slice itself is valid until reclaim.
    pub modules: &'static [&'static limine::file::File],
}

/// Kernel command line, copied out of loader memory.
static CMDLINE_BUF: spin::Once<CmdlineBuf> = spin::Once::new();
static CMDLINE_LEN: AtomicUsize = AtomicUsize::new(0);

struct CmdlineBuf([u8; 1024]);

/// The kernel command line (empty before [`BootInfo::collect`]).
pub fn cmdline() -> Cmdline<'static> {
    let text = CMDLINE_BUF
        .get()
        .and_then(|b| core::str::from_utf8(&b.0[..CMDLINE_LEN.load(Ordering::Relaxed)]).ok())
        .unwrap_or("");
    Cmdline::new(text)
}

fn required<T>(what: &str, value: Option<T>) -> T {
    value.unwrap_or_else(|| panic!("boot: the boot loader did not answer the {what} request"))
}

/// Copies a C string from loader memory as `&'static str` (lossy on bad
/// UTF-8: the valid prefix).
fn c_text(s: &'static core::ffi::CStr) -> &'static str {
    let bytes = s.to_bytes();
    match core::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

impl BootInfo {
    /// Reads and checks every response. Panics (with the name of the
    /// request) when a response the kernel cannot run without is missing.
    pub fn collect() -> Self {
        let revision = if BASE_REVISION.is_supported() {
            3
        } else {
            BASE_REVISION.loaded_revision().unwrap_or(2)
        };
        let hhdm_offset = required("HHDM", HHDM.get_response()).offset();
        let memory_map = required("memory map", MEMORY_MAP.get_response()).entries();
        let address = required("executable address", EXECUTABLE_ADDRESS.get_response());
        let file = required("executable file", EXECUTABLE_FILE.get_response()).file();
        // SAFETY: the loader maps the kernel file in executable-and-modules
        // memory through the direct map; it is never reclaimed or written.
        let kernel_file = unsafe { core::slice::from_raw_parts(file.addr(), file.size() as usize) };

        let cmdline = EXECUTABLE_CMDLINE
            .get_response()
            .map(|r| c_text(r.cmdline()))
            .unwrap_or_else(|| c_text(file.string()));
        let buf = CMDLINE_BUF.call_once(|| {
            let mut b = [0u8; 1024];
            let n = cmdline.len().min(b.len());
            b[..n].copy_from_slice(&cmdline.as_bytes()[..n]);
            CMDLINE_LEN.store(n, Ordering::Relaxed);
            CmdlineBuf(b)
        });
        let _ = buf;

        // Revision 3 gives the RSDP's physical address, older revisions a
        // direct-map address: accept either.
        let rsdp_phys = RSDP.get_response().map(|r| {
            let a = r.address() as u64;
            if a >= hhdm_offset { a - hhdm_offset } else { a }
        });

        Self {
            revision,
            hhdm_offset,
            memory_map,
            kernel_phys_base: address.physical_base(),
            kernel_virt_base: address.virtual_base(),
            kernel_file,
            rsdp_phys,
            boot_time: DATE_AT_BOOT.get_response().map(|r| r.timestamp().as_secs()),
            mp: MP.get_response(),
            modules: MODULES.get_response().map_or(&[], |r| r.modules()),
        }
    }

    /// Logs who booted the kernel and with what.
    pub fn log_summary(&self) {
        let (name, version) = BOOTLOADER_INFO
            .get_response()
            .map_or(("an unnamed loader", ""), |i| (i.name(), i.version()));
        log::info!("boot: loaded by {name} {version}, Limine base revision {}", self.revision);
        if self.revision < 3 {
            log::info!("boot: revision {} loader: adapting (RSDP given as a direct-map address)", self.revision);
        }
        if let Some(t) = self.boot_time {
            log::info!("boot: date at boot {t} (UNIX seconds)");
        }
        log::info!("boot: command line \"{}\"", cmdline().as_str());
        if STACK_SIZE.get_response().is_none() {
            log::warn!("boot: the loader ignored the stack-size request (boot stacks may be 64 KiB)");
        }
        if let Some(p) = PAGING_MODE.get_response()
            && p.mode() != limine::paging::Mode::FOUR_LEVEL
        {
            panic!("boot: the loader enabled a paging mode other than 4-level");
        }
    }

    /// The boot modules, with their data.
    pub fn modules(&self) -> impl Iterator<Item = Module> + '_ {
        self.modules.iter().map(|f| Module {
            // SAFETY: module files live in executable-and-modules memory
            // through the direct map, never reclaimed or written.
            data: unsafe { core::slice::from_raw_parts(f.addr(), f.size() as usize) },
            path: c_text(f.path()),
        })
    }

    /// Whether a memory-map entry type counts as RAM.
    pub fn entry_kind(t: EntryType) -> crate::kcore::mem_kind::RegionKind {
        use crate::kcore::mem_kind::RegionKind as K;
        match t {
            EntryType::USABLE => K::Usable,
            EntryType::BOOTLOADER_RECLAIMABLE => K::BootloaderReclaimable,
            EntryType::ACPI_RECLAIMABLE => K::AcpiReclaimable,
            EntryType::ACPI_NVS => K::AcpiNvs,
            EntryType::BAD_MEMORY => K::BadMemory,
            EntryType::EXECUTABLE_AND_MODULES => K::Modules,
            EntryType::FRAMEBUFFER => K::Framebuffer,
            _ => K::Reserved,
        }
    }
}

/// Takes back a `BootInfo` boxed by the entry code to cross a stack switch.
pub fn take_boxed(raw: u64) -> alloc::boxed::Box<BootInfo> {
    // SAFETY: `raw` came from `Box::into_raw` in `kernel_entry` and is taken
    // back exactly once.
    unsafe { alloc::boxed::Box::from_raw(raw as *mut BootInfo) }
}
