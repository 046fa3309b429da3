//! Turning the UEFI memory map into the Limine one, and choosing what the
//! higher-half direct map covers.
//!
//! The loader tags its own allocations with two OS-defined UEFI memory types
//! ([`EFI_BOOTLOADER_RECLAIMABLE`] and [`EFI_EXECUTABLE_AND_MODULES`]), so
//! the final UEFI map, read at ExitBootServices, already says which pages
//! hold responses, page tables and stacks and which hold the kernel and its
//! modules. Everything the kernel may read after the handoff lives in such an
//! allocation, which is why the loader's own image and pool (LoaderCode and
//! LoaderData) can be handed over as usable memory.
//!
//! The conversion works in place on a buffer allocated before
//! ExitBootServices, because nothing can be allocated after it.

use crate::protocol::{MemmapEntry, memmap_type as limine};
use alloc::vec::Vec;

/// OS-defined UEFI memory type of the loader's allocations that the kernel
/// may read and may later reclaim.
pub const EFI_BOOTLOADER_RECLAIMABLE: u32 = 0x8000_0005;
/// OS-defined UEFI memory type of the kernel image, the kernel file and the
/// modules.
pub const EFI_EXECUTABLE_AND_MODULES: u32 = 0x8000_0006;

/// UEFI memory types (UEFI 2.10, table 7.10).
#[allow(missing_docs)]
pub mod efi {
    pub const RESERVED: u32 = 0;
    pub const LOADER_CODE: u32 = 1;
    pub const LOADER_DATA: u32 = 2;
    pub const BOOT_SERVICES_CODE: u32 = 3;
    pub const BOOT_SERVICES_DATA: u32 = 4;
    pub const RUNTIME_SERVICES_CODE: u32 = 5;
    pub const RUNTIME_SERVICES_DATA: u32 = 6;
    pub const CONVENTIONAL: u32 = 7;
    pub const UNUSABLE: u32 = 8;
    pub const ACPI_RECLAIM: u32 = 9;
    pub const ACPI_NVS: u32 = 10;
    pub const MMIO: u32 = 11;
    pub const MMIO_PORT_SPACE: u32 = 12;
    pub const PAL_CODE: u32 = 13;
    pub const PERSISTENT: u32 = 14;
    pub const UNACCEPTED: u32 = 15;
}

const PAGE: u64 = 4096;

/// The Limine type of memory that UEFI describes with `efi_type`, once boot
/// services have been exited.
pub fn limine_type(efi_type: u32) -> u64 {
    match efi_type {
        efi::CONVENTIONAL | efi::BOOT_SERVICES_CODE | efi::BOOT_SERVICES_DATA => limine::USABLE,
        efi::LOADER_CODE | efi::LOADER_DATA => limine::USABLE,
        EFI_BOOTLOADER_RECLAIMABLE => limine::BOOTLOADER_RECLAIMABLE,
        EFI_EXECUTABLE_AND_MODULES => limine::EXECUTABLE_AND_MODULES,
        efi::ACPI_RECLAIM => limine::ACPI_RECLAIMABLE,
        efi::ACPI_NVS => limine::ACPI_NVS,
        efi::UNUSABLE => limine::BAD_MEMORY,
        // Runtime services, MMIO, persistent and unaccepted memory, and any
        // type this loader does not know stay out of the kernel's hands.
        _ => limine::RESERVED,
    }
}

/// A UEFI memory descriptor, reduced to what the conversion needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// UEFI memory type.
    pub efi_type: u32,
    /// Physical start (page aligned).
    pub base: u64,
    /// Number of 4 KiB pages.
    pub pages: u64,
}

/// The converted map did not fit in the buffer it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// Converts `regions` into Limine entries in `out` and returns how many there
/// are. The result is sorted, free of overlaps, merged, with usable and
/// bootloader-reclaimable entries 4 KiB aligned and page 0 never usable.
/// Allocates nothing.
pub fn convert(regions: impl IntoIterator<Item = Region>, out: &mut [MemmapEntry]) -> Result<usize, Overflow> {
    let mut len = 0;
    for region in regions {
        let kind = limine_type(region.efi_type);
        let Some(length) = region.pages.checked_mul(PAGE) else { continue };
        let mut base = region.base;
        let mut end = base.saturating_add(length);
        if matches!(kind, limine::USABLE | limine::BOOTLOADER_RECLAIMABLE) {
            base = base.next_multiple_of(PAGE).max(if kind == limine::USABLE { PAGE } else { 0 });
            end &= !(PAGE - 1);
        }
        if end <= base {
            continue;
        }
        if len == out.len() {
            len = normalize(&mut out[..len]);
            if len == out.len() {
                return Err(Overflow);
            }
        }
        out[len] = MemmapEntry { base, length: end - base, kind };
        len += 1;
    }
    Ok(normalize(&mut out[..len]))
}

/// How strongly a type holds on to memory when two entries overlap: the
/// firmware's own types win over memory the kernel may use.
fn rank(kind: u64) -> u8 {
    match kind {
        limine::USABLE => 0,
        limine::BOOTLOADER_RECLAIMABLE => 1,
        _ => 2,
    }
}

/// Sorts `entries`, resolves overlaps, merges neighbours of the same type and
/// returns the number of entries left at the front of the slice.
pub fn normalize(entries: &mut [MemmapEntry]) -> usize {
    entries.sort_unstable_by_key(|e| (e.base, e.length));
    let mut len = 0;
    for i in 0..entries.len() {
        let mut cur = entries[i];
        if cur.length == 0 {
            continue;
        }
        if len > 0 {
            let prev = &mut entries[len - 1];
            if cur.base < prev.end() {
                if rank(prev.kind) < rank(cur.kind) {
                    // Give the overlap to `cur`; what `prev` had beyond it
                    // is dropped rather than risk handing it out twice.
                    prev.length = cur.base - prev.base;
                    if prev.length == 0 {
                        len -= 1;
                    }
                } else {
                    if cur.end() <= prev.end() {
                        continue;
                    }
                    let end = cur.end();
                    cur.base = prev.end();
                    cur.length = end - cur.base;
                }
            }
        }
        if len > 0 {
            let prev = &mut entries[len - 1];
            if prev.kind == cur.kind && prev.end() == cur.base {
                prev.length += cur.length;
                continue;
            }
        }
        entries[len] = cur;
        len += 1;
    }
    len
}

/// The physical ranges the higher-half direct map covers for `base_revision`,
/// sorted, merged and page aligned.
///
/// Base revision 3 maps only usable, bootloader-reclaimable,
/// executable-and-modules and framebuffer memory. Revisions 1 and 2 map the
/// first 4 GiB whole, plus every entry above it that is neither reserved nor
/// bad memory.
pub fn hhdm_ranges(entries: &[MemmapEntry], base_revision: u64) -> Vec<(u64, u64)> {
    const FOUR_GIB: u64 = 1 << 32;
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    if base_revision >= 3 {
        for e in entries {
            if matches!(
                e.kind,
                limine::USABLE | limine::BOOTLOADER_RECLAIMABLE | limine::EXECUTABLE_AND_MODULES | limine::FRAMEBUFFER
            ) {
                ranges.push((e.base & !(PAGE - 1), e.end().next_multiple_of(PAGE)));
            }
        }
    } else {
        ranges.push((0, FOUR_GIB));
        for e in entries {
            if !matches!(e.kind, limine::RESERVED | limine::BAD_MEMORY) && e.end() > FOUR_GIB {
                ranges.push((e.base.max(FOUR_GIB) & !(PAGE - 1), e.end().next_multiple_of(PAGE)));
            }
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::memmap_type::*;

    fn r(efi_type: u32, base: u64, pages: u64) -> Region {
        Region { efi_type, base, pages }
    }

    fn e(base: u64, length: u64, kind: u64) -> MemmapEntry {
        MemmapEntry { base, length, kind }
    }

    fn run(regions: &[Region]) -> Vec<MemmapEntry> {
        let mut out = vec![MemmapEntry::default(); regions.len() + 4];
        let n = convert(regions.iter().copied(), &mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn types_are_converted_and_neighbours_merged() {
        let map = run(&[
            r(efi::CONVENTIONAL, 0, 0xa0),
            r(efi::RESERVED, 0xa0000, 0x60),
            r(efi::BOOT_SERVICES_CODE, 0x100000, 0x10),
            r(efi::LOADER_DATA, 0x110000, 0x10),
            r(EFI_BOOTLOADER_RECLAIMABLE, 0x120000, 0x4),
            r(EFI_EXECUTABLE_AND_MODULES, 0x124000, 0x100),
            r(EFI_BOOTLOADER_RECLAIMABLE, 0x224000, 0x1),
            r(efi::ACPI_RECLAIM, 0x225000, 0x1),
            r(efi::ACPI_NVS, 0x226000, 0x1),
            r(efi::RUNTIME_SERVICES_DATA, 0x227000, 0x1),
            r(efi::UNUSABLE, 0x228000, 0x1),
            r(efi::MMIO, 0xfee0_0000, 0x1),
            r(0x8000_0123, 0x300000, 0x1),
        ]);
        assert_eq!(
            map,
            vec![
                e(0x1000, 0x9f000, USABLE),
                e(0xa0000, 0x60000, RESERVED),
                e(0x100000, 0x20000, USABLE),
                e(0x120000, 0x4000, BOOTLOADER_RECLAIMABLE),
                e(0x124000, 0x100000, EXECUTABLE_AND_MODULES),
                e(0x224000, 0x1000, BOOTLOADER_RECLAIMABLE),
                e(0x225000, 0x1000, ACPI_RECLAIMABLE),
                e(0x226000, 0x1000, ACPI_NVS),
                e(0x227000, 0x1000, RESERVED),
                e(0x228000, 0x1000, BAD_MEMORY),
                e(0x300000, 0x1000, RESERVED),
                e(0xfee0_0000, 0x1000, RESERVED),
            ]
        );
    }

    #[test]
    fn unsorted_input_is_sorted() {
        let map =
            run(&[r(efi::CONVENTIONAL, 0x200000, 2), r(efi::CONVENTIONAL, 0x100000, 1), r(efi::ACPI_NVS, 0x1000, 1)]);
        assert_eq!(map, vec![e(0x1000, 0x1000, ACPI_NVS), e(0x100000, 0x1000, USABLE), e(0x200000, 0x2000, USABLE)]);
    }

    #[test]
    fn overlaps_never_leave_usable_memory_over_something_else() {
        // A usable range with a reserved one inside: the reserved one wins.
        let map = run(&[r(efi::CONVENTIONAL, 0x10000, 0x10), r(efi::RESERVED, 0x14000, 1)]);
        assert_eq!(map, vec![e(0x10000, 0x4000, USABLE), e(0x14000, 0x1000, RESERVED)]);
        // A reserved range with a usable one overlapping its end: trimmed.
        let map = run(&[r(efi::RESERVED, 0x10000, 4), r(efi::CONVENTIONAL, 0x12000, 4)]);
        assert_eq!(map, vec![e(0x10000, 0x4000, RESERVED), e(0x14000, 0x2000, USABLE)]);
        // Completely covered: dropped.
        let map = run(&[r(efi::RESERVED, 0x10000, 4), r(efi::CONVENTIONAL, 0x11000, 1)]);
        assert_eq!(map, vec![e(0x10000, 0x4000, RESERVED)]);
        // Same start, the stronger one wins.
        let map = run(&[r(efi::CONVENTIONAL, 0x10000, 4), r(efi::ACPI_NVS, 0x10000, 1)]);
        assert_eq!(map, vec![e(0x10000, 0x1000, ACPI_NVS), e(0x11000, 0x3000, USABLE)]);
        for pair in map.windows(2) {
            assert!(pair[0].end() <= pair[1].base);
        }
    }

    #[test]
    fn compacts_when_the_buffer_fills_up() {
        let regions: Vec<Region> = (0..10).map(|i| r(efi::CONVENTIONAL, 0x100000 + i * 0x1000, 1)).collect();
        let mut out = vec![MemmapEntry::default(); 3];
        assert_eq!(convert(regions.iter().copied(), &mut out), Ok(1));
        assert_eq!(out[0], e(0x100000, 0xa000, USABLE));
        let alternating: Vec<Region> = (0..10)
            .map(|i| r(if i % 2 == 0 { efi::CONVENTIONAL } else { efi::ACPI_NVS }, i * 0x1000 + 0x1000, 1))
            .collect();
        assert_eq!(convert(alternating, &mut out), Err(Overflow));
    }

    #[test]
    fn empty_and_zero_page_regions() {
        assert!(run(&[r(efi::CONVENTIONAL, 0, 1), r(efi::CONVENTIONAL, 0x5000, 0)]).is_empty());
        assert_eq!(run(&[r(efi::RESERVED, 0, 1)]), vec![e(0, 0x1000, RESERVED)]);
    }

    #[test]
    fn hhdm_of_revision_3_covers_only_memory_the_kernel_owns() {
        let map = [
            e(0x1000, 0x9f000, USABLE),
            e(0xa0000, 0x60000, RESERVED),
            e(0x100000, 0x100000, USABLE),
            e(0x200000, 0x1000, BOOTLOADER_RECLAIMABLE),
            e(0x201000, 0x10000, EXECUTABLE_AND_MODULES),
            e(0x211000, 0x1000, ACPI_RECLAIMABLE),
            e(0x212000, 0x1000, USABLE),
            e(0xfee0_0000, 0x1000, RESERVED),
        ];
        assert_eq!(hhdm_ranges(&map, 3), vec![(0x1000, 0xa0000), (0x100000, 0x211000), (0x212000, 0x213000)]);
    }

    #[test]
    fn hhdm_of_revisions_1_and_2_covers_4_gib_and_more() {
        let map = [
            e(0x1000, 0x9f000, USABLE),
            e(0xfee0_0000, 0x1000, RESERVED),
            e(0x1_0000_0000, 0x1000_0000, USABLE),
            e(0x1_1000_0000, 0x1000, ACPI_NVS),
            e(0x2_0000_0000, 0x1000, RESERVED),
            e(0x3_0000_0000, 0x1000, BAD_MEMORY),
        ];
        assert_eq!(hhdm_ranges(&map, 2), vec![(0, 0x1_1000_1000)]);
        assert_eq!(hhdm_ranges(&map, 1), hhdm_ranges(&map, 2));
    }
}
