//! ACPI, through the `acpi` crate: the MADT's list of processors and their
//! APIC IDs, which the boot cross-checks against the boot loader's list.
//!
//! The `acpi` crate asks for table memory through an [`AcpiHandler`],
//! whose contract is `unsafe`; that is why this module allows it. Tables
//! are reached through the direct map; pages outside RAM (tables in
//! reserved memory) are mapped on demand.

use crate::mm::kernel_space::ensure_direct_mapped;
use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use alloc::vec::Vec;
use core::ptr::NonNull;

#[derive(Clone, Copy, Debug)]
struct DirectMap;

impl AcpiHandler for DirectMap {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        ensure_direct_mapped(physical_address as u64, size as u64, false);
        let virt = crate::arch::paging::phys_to_virt(physical_address as u64) as *mut T;
        // SAFETY: the region is mapped at its direct-map address (just
        // ensured) and stays mapped for the life of the kernel.
        unsafe {
            PhysicalMapping::new(
                physical_address,
                NonNull::new(virt).expect("direct-map addresses are not null"),
                size,
                size,
                *self,
            )
        }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// A processor as the MADT lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadtCpu {
    /// ACPI processor UID.
    pub uid: u32,
    /// (x2)APIC ID.
    pub apic_id: u32,
    /// Usable now (enabled) or may be brought online.
    pub usable: bool,
}

/// Reads the processors from the MADT.
pub fn madt_cpus(rsdp_phys: u64) -> Result<Vec<MadtCpu>, acpi::AcpiError> {
    // SAFETY: the address is the RSDP the boot loader found in the firmware
    // tables; the handler maps what the crate reads.
    let tables = unsafe { AcpiTables::from_rsdp(DirectMap, rsdp_phys as usize) }?;
    let madt = tables.find_table::<Madt>()?;
    let mut cpus = Vec::new();
    for entry in madt.get().entries() {
        match entry {
            MadtEntry::LocalApic(e) => cpus.push(MadtCpu {
                uid: e.processor_id as u32,
                apic_id: e.apic_id as u32,
                usable: e.flags & 0b11 != 0,
            }),
            MadtEntry::LocalX2Apic(e) => cpus.push(MadtCpu {
                uid: e.processor_uid,
                apic_id: e.x2apic_id,
                usable: e.flags & 0b11 != 0,
            }),
            _ => {}
        }
    }
    Ok(cpus)
}
