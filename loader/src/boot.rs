//! The boot sequence up to the handoff: configuration, kernel, requests,
//! modules, responses, stacks, page tables and the AP trampoline — all of it
//! while boot services still run, so that any failure can still be reported
//! and the machine shut down cleanly.

use crate::arch::{Clock, Features};
use crate::fail::{self, BootError, Result};
use crate::fs::Volume;
use crate::handoff::{Handoff, MemmapOut};
use crate::mem::{self, Arena, PAGE_SIZE};
use crate::paging::Builder;
use crate::responses::{self, Facts};
use crate::trampoline;
use crate::{acpi, config, console, kernel, modules, say, smp, warn};
use alloc::format;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use core::convert::Infallible;
use loader_core::memmap::{self, Region};
use loader_core::protocol::*;
use loader_core::requests::{self, BaseRevisionDecision};
use uefi::boot::{self, MemoryType};
use uefi::mem::memory_map::MemoryMap;
use x86_64::registers::control::{Cr4, Cr4Flags};

const FOUR_GIB: u64 = 1 << 32;
/// Start-up IPIs can only start a CPU in the first megabyte, below the
/// legacy video and BIOS area.
const AP_CODE_LIMIT: u64 = 0xa_0000;

/// Loads everything and hands over to the kernel; returns only errors.
pub fn boot() -> Result<Infallible> {
    let features = Features::detect();
    if Cr4::read().contains(Cr4Flags::L5_PAGING) {
        return Err(BootError::new("firmware", "it runs with 5-level paging; this loader only sets up 4-level paging"));
    }

    let mut volume = Volume::open()?;
    let found = config::load(&mut volume)?;
    console::set_serial(found.config.serial);
    let verbose = found.config.verbose;
    say!("Ferrite loader {} (Limine boot protocol, base revisions 1 to 3)", env!("CARGO_PKG_VERSION"));
    say!("config {}", found.path);
    let entry = found.config.boot_entry().map_err(|e| found.error_at(e.line, &e.message))?;
    say!("entry `{}`", entry.title);
    for (name, _, line) in &entry.other {
        if name != "comment" {
            warn!("{} line {line}: option `{name}` is not supported by this loader; ignored", found.path);
        }
    }

    // The kernel.
    let Some((kernel_path, _)) = entry.kernel_path.as_ref() else {
        return Err(found.error_at(entry.line, "the entry names no kernel"));
    };
    let kernel_name = kernel_path.to_string();
    let kernel_in_volume = config::volume_path(kernel_path)?;
    if kernel_path.hash.is_some() {
        warn!("{kernel_name}: the hash suffix is not checked by this loader");
    }
    let file = volume
        .read(kernel_in_volume, mem::EXECUTABLE_AND_MODULES, &kernel_name)?
        .ok_or_else(|| BootError::new(&kernel_name, "file not found"))?;
    say!("kernel {kernel_name} ({} bytes)", file.size);
    if !entry.cmdline().is_empty() {
        say!("cmdline: {}", entry.cmdline());
    }
    let mut kernel = kernel::load(file, &kernel_name)?;

    // Its requests.
    let scan = requests::scan(kernel.block).map_err(|e| BootError::new(&kernel_name, e.to_string()))?;
    let base_revision = match requests::decide_base_revision(scan.base_revision) {
        BaseRevisionDecision::Supported(revision) => revision,
        BaseRevisionDecision::Newer { requested, used } => {
            warn!(
                "the kernel asks for base revision {requested}; this loader implements up to {used}, boots it with {used} and leaves the tag unchanged"
            );
            used
        }
        BaseRevisionDecision::Unsupported(_) if scan.base_revision.is_none() => {
            return Err(BootError::new(
                &kernel_name,
                "has no base revision tag, which means base revision 0; this loader supports base revisions 1 to 3 (declare one, e.g. `limine::BaseRevision::new()`)",
            ));
        }
        BaseRevisionDecision::Unsupported(revision) => {
            return Err(BootError::new(
                &kernel_name,
                format!("asks for base revision {revision}, which this loader does not support (it supports 1 to 3)"),
            ));
        }
    };
    if let Some(tag) = scan.base_revision {
        // Second word: the revision actually used; third word: 0 when the
        // requested revision is supported, untouched otherwise.
        kernel.block[tag.offset + 8..tag.offset + 16].copy_from_slice(&base_revision.to_le_bytes());
        if tag.requested <= MAX_BASE_REVISION {
            kernel.block[tag.offset + 16..tag.offset + 24].copy_from_slice(&0u64.to_le_bytes());
        }
    }
    say!("base revision {base_revision}");
    responses::report(&scan, verbose);

    if let Some(request) = scan.get(Feature::PagingMode) {
        let mode = responses::field(&kernel, request, 0);
        let min_mode = if request.revision >= 1 { responses::field(&kernel, request, 2) } else { PAGING_MODE_4LVL };
        if min_mode > PAGING_MODE_4LVL {
            return Err(BootError::new(
                &kernel_name,
                "its paging mode request requires 5-level paging (min_mode); this loader provides 4-level paging only",
            ));
        }
        if mode > PAGING_MODE_4LVL && verbose {
            say!("the kernel prefers 5-level paging; it gets 4-level paging");
        }
    }
    let (entry_point, source) = match scan.get(Feature::EntryPoint) {
        Some(request) => (responses::field(&kernel, request, 0), "from the entry point request"),
        None => (kernel.image.entry, "e_entry"),
    };
    if !kernel.image.is_executable(entry_point) {
        return Err(BootError::new(
            &kernel_name,
            format!("the entry point {entry_point:#x} ({source}) is not inside an executable segment"),
        ));
    }
    let stack_size = scan
        .get(Feature::StackSize)
        .map_or(0, |request| responses::field(&kernel, request, 0))
        .max(DEFAULT_STACK_SIZE)
        .next_multiple_of(PAGE_SIZE);

    // Modules, then the volume is no longer needed.
    let module_request = scan.get(Feature::Module).map(|r| (r.offset, r.revision));
    let modules = modules::load_all(&mut volume, &kernel, kernel_path, entry, module_request)?;
    let partition = volume.partition;
    drop(volume);

    let acpi = acpi::discover();
    let mut arena = Arena::new();
    let kernel_file = kernel.file;
    responses::answer(
        &mut arena,
        &mut kernel,
        &scan,
        &Facts {
            base_revision,
            kernel_file: (&kernel_file, kernel_in_volume),
            cmdline: entry.cmdline(),
            modules: &modules,
            partition,
            rsdp: acpi.rsdp,
        },
    )?;

    // The page that holds the GDT and the handoff code, and starts the APs.
    let mp_request = scan.get(Feature::Mp).copied();
    let mut ap_page = None;
    if mp_request.is_some() {
        ap_page = mem::allocate(mem::RECLAIMABLE, PAGE_SIZE, Some(AP_CODE_LIMIT), "the AP start-up code").ok();
    }
    let ap_phys = ap_page.as_ref().map(|p| p.phys);
    let page = match ap_page {
        Some(page) => page,
        None => mem::allocate(mem::RECLAIMABLE, PAGE_SIZE, Some(FOUR_GIB), "the handoff GDT")?,
    };
    let page_phys = page.phys;

    let mut mp = None;
    if let Some(request) = mp_request {
        let flags = responses::field(&kernel, &request, 0);
        let (plan, response) =
            smp::prepare(&mut arena, acpi.madt.as_ref(), &features, flags & MP_X2APIC != 0, stack_size, ap_phys)?;
        responses::set(&mut kernel, &request, response);
        mp = Some(plan);
    } else if let Some(madt) = &acpi.madt
        && madt.cpus.len() > 1
    {
        say!("{} CPUs; the kernel does not request MP, so the others are not started", madt.cpus.len());
    }

    let bsp_stack = mem::allocate(mem::RECLAIMABLE, stack_size, None, "the kernel stack")?;
    let bsp_stack_top = mem::hhdm(bsp_stack.phys + bsp_stack.len() as u64);

    // Page tables, with the HHDM computed from the current memory map: later
    // allocations only turn free memory into loader memory, which the HHDM
    // covers either way.
    let uefi_map = boot::memory_map(MemoryType::LOADER_DATA)
        .map_err(|e| BootError::new("memory map", format!("cannot read it ({:?})", e.status())))?;
    let regions: Vec<Region> =
        uefi_map.entries().map(|d| Region { efi_type: d.ty.0, base: d.phys_start, pages: d.page_count }).collect();
    drop(uefi_map);
    let mut converted = vec![MemmapEntry::default(); regions.len() + 8];
    let count = memmap::convert(regions.iter().copied(), &mut converted)
        .map_err(|_| BootError::new("memory map", "too many entries"))?;
    converted.truncate(count);
    let hhdm = memmap::hhdm_ranges(&converted, base_revision);
    if verbose {
        let usable: u64 = converted.iter().filter(|e| e.kind == memmap_type::USABLE).map(|e| e.length).sum();
        say!("memory: {} entries, {} MiB usable, HHDM in {} ranges", converted.len(), usable >> 20, hhdm.len());
    }
    let mut tables = Builder::new(features.nx, features.huge_1g)?;
    tables.map_kernel(&kernel)?;
    tables.map_hhdm(&hhdm)?;
    if let Some(ap) = ap_phys {
        tables.map_identity(ap, ap + PAGE_SIZE)?;
    }
    let (enter_start, enter_end) = trampoline::enter_range();
    tables.map_identity(enter_start, enter_end)?;
    let cr3 = tables.pml4();

    // The trampoline page: code, GDT and handoff data.
    let x2apic = mp.as_ref().is_some_and(|m| m.x2apic);
    let trampoline = trampoline::prepare(page, cr3, &features, x2apic, bsp_stack_top, entry_point)
        .ok_or_else(|| BootError::new("loader", "the AP start-up code does not fit in one page"))?;

    // The memory map response, filled in after ExitBootServices into room
    // allocated now (twice today's entry count: the map can only grow a
    // little from here).
    let memmap = match scan.get(Feature::Memmap) {
        Some(request) => {
            let room = boot::memory_map(MemoryType::LOADER_DATA).map(|m| m.len()).unwrap_or(256) * 2 + 64;
            let entries = arena.slice(room, MemmapEntry::default())?;
            let pointers = arena.slice(room, 0u64)?;
            let response = arena.put(MemmapResponse { revision: 0, entry_count: 0, entries: 0 })?;
            responses::set(&mut kernel, request, mem::hhdm_ptr(response));
            Some(MemmapOut { response, entries, pointers })
        }
        None => None,
    };

    let io_apics = acpi.madt.as_ref().map(|m| m.io_apics.clone()).unwrap_or_default();
    say!("starting kernel");
    let clock = Clock::calibrate(boot::stall);
    fail::remember_clock(clock.ticks_per_us());
    Handoff { memmap, mp, io_apics, trampoline, trampoline_hhdm: mem::hhdm(page_phys), cr3, features, clock }.run()
}
