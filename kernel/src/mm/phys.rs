//! The record of physical memory: every range the boot memory map reported
//! and what it is used for, plus the frame allocator's books for the RAM
//! it manages. Printed as a table at boot (and on demand), and checked:
//! free + used-by-kind + outside-the-allocator always equals the total.

use super::frame;
use crate::boot::BootInfo;
use crate::kcore::mem_kind::{FrameUse, RegionKind};
use crate::kcore::range_map::RangeMap;
use crate::kcore::PAGE_SIZE;
use crate::sync::SpinLock;

/// Ranges the record can hold; a PC's memory map has a few dozen.
const MAX_RANGES: usize = 256;

static RECORD: SpinLock<RangeMap<RegionKind, MAX_RANGES>> = SpinLock::new(RangeMap::new());

/// Builds the record from the boot memory map, carving the kernel image out
/// of the executable-and-modules ranges.
pub fn record_boot_map(boot: &BootInfo, kernel_image_size: u64) {
    let mut record = RECORD.lock();
    for entry in boot.memory_map {
        let kind = BootInfo::entry_kind(entry.entry_type);
        if record.insert(entry.base, entry.base + entry.length, kind).is_err() {
            log::warn!("mm: memory map has more than {MAX_RANGES} distinct ranges; the table is incomplete");
        }
    }
    let image = boot.kernel_phys_base..boot.kernel_phys_base + kernel_image_size.next_multiple_of(PAGE_SIZE);
    if record.insert(image.start, image.end, RegionKind::KernelImage).is_err() {
        log::warn!("mm: no room to record the kernel image range");
    }
}

/// Calls `f(start, end, kind)` for every recorded range in address order.
pub fn for_each_range(mut f: impl FnMut(u64, u64, RegionKind)) {
    let ranges: [Option<(u64, u64, RegionKind)>; MAX_RANGES] = {
        let record = RECORD.lock();
        let mut copy = [None; MAX_RANGES];
        for (slot, r) in copy.iter_mut().zip(record.iter()) {
            *slot = Some((r.start, r.end, r.kind));
        }
        copy
    };
    ranges.iter().flatten().for_each(|&(s, e, k)| f(s, e, k));
}

/// The ranges of `kind`, page-aligned inwards.
pub fn ranges_of(kind: RegionKind, mut f: impl FnMut(u64, u64)) {
    for_each_range(|s, e, k| {
        let (s, e) = (s.next_multiple_of(PAGE_SIZE), e & !(PAGE_SIZE - 1));
        if k == kind && s < e {
            f(s, e);
        }
    });
}

/// Relabels every `from` range as `to` (reclaiming the loader's memory).
pub fn relabel(from: RegionKind, to: RegionKind) -> u64 {
    let mut moved = 0;
    let mut todo = [(0u64, 0u64); MAX_RANGES];
    let mut n = 0;
    ranges_of(from, |s, e| {
        todo[n] = (s, e);
        n += 1;
    });
    let mut record = RECORD.lock();
    for &(s, e) in &todo[..n] {
        if record.insert(s, e, to).is_ok() {
            moved += e - s;
        }
    }
    moved
}

/// Totals for the summary line and the balance check (bytes).
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Everything the memory map reported.
    pub total: u64,
    /// RAM managed by the frame allocator.
    pub managed: u64,
    /// Held by the boot loader (until reclaimed).
    pub loader: u64,
    /// Kernel image and modules.
    pub image_and_modules: u64,
    /// ACPI, reserved, bad and framebuffer ranges.
    pub reserved: u64,
}

/// Sums the record.
pub fn totals() -> Totals {
    let mut t = Totals::default();
    for_each_range(|s, e, k| {
        let len = e - s;
        t.total += len;
        match k {
            RegionKind::Usable => t.managed += len,
            RegionKind::BootloaderReclaimable => t.loader += len,
            RegionKind::KernelImage | RegionKind::Modules => t.image_and_modules += len,
            _ => t.reserved += len,
        }
    });
    t
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// Prints the memory table: every range, then the allocator's books, then
/// the balance check.
pub fn print_table() {
    log::info!("mm: physical memory map:");
    log::info!("mm:   {:>18} {:>18} {:>10}  {}", "start", "end", "KiB", "use");
    for_each_range(|s, e, k| {
        log::info!("mm:   {s:#018x} {e:#018x} {:>10}  {}", (e - s) / 1024, k.name());
    });
    let stats = frame::stats();
    let t = totals();
    log::info!("mm: frames managed by the allocator: {} ({} MiB)", stats.managed, mib(stats.managed * PAGE_SIZE));
    log::info!("mm:   {:<16} {:>9} frames", "free", stats.free());
    for kind in FrameUse::ALL {
        log::info!("mm:   {:<16} {:>9} frames", kind.name(), stats.used[kind as usize]);
    }
    let check = check_balance();
    log::info!(
        "mm: total {} MiB = managed {} MiB + loader {} MiB + image/modules {} MiB + reserved {} MiB: {}",
        mib(t.total),
        mib(t.managed),
        mib(t.loader),
        mib(t.image_and_modules),
        mib(t.reserved),
        match check {
            Ok(()) => "adds up",
            Err(e) => e,
        }
    );
}

/// Checks the books: free + used equals what the allocator manages, and
/// that equals the usable RAM in the record (the other categories are the
/// rest of the total by construction).
pub fn check_balance() -> Result<(), &'static str> {
    let stats = frame::check()?;
    let t = totals();
    if stats.managed * PAGE_SIZE != t.managed {
        return Err("allocator frames differ from the usable RAM in the record");
    }
    Ok(())
}
