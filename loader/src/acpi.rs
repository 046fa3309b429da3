//! Locating the ACPI tables through the UEFI configuration table and reading
//! the MADT, before ExitBootServices while firmware memory is still mapped
//! one-to-one.

use crate::warn;
use loader_core::acpi::{self, Madt, SDT_HEADER_LEN};
use uefi::table::cfg::ConfigTableEntry;

/// What the loader learned from ACPI.
#[derive(Debug, Default)]
pub struct Acpi {
    /// Physical address of the RSDP.
    pub rsdp: Option<u64>,
    /// The parsed MADT.
    pub madt: Option<Madt>,
}

/// Borrows `len` bytes of physical memory.
///
/// # Safety
///
/// The range must be mapped (boot services are running, so UEFI's identity
/// map covers it) and hold firmware tables that stay put while borrowed.
unsafe fn phys(addr: u64, len: usize) -> &'static [u8] {
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts(addr as *const u8, len) }
}

/// A whole system description table at `addr`, if its header is sane.
fn table(addr: u64) -> Option<&'static [u8]> {
    if addr == 0 {
        return None;
    }
    // SAFETY: `addr` comes from the firmware's RSDP/XSDT, which point at
    // tables in ACPI memory, mapped while boot services run.
    let header = unsafe { phys(addr, SDT_HEADER_LEN) };
    let (_, len) = acpi::sdt_header(header)?;
    if (len as usize) < SDT_HEADER_LEN || len > 16 << 20 {
        return None;
    }
    // SAFETY: as above; the length comes from the table's own header.
    Some(unsafe { phys(addr, len as usize) })
}

/// Finds the RSDP and the MADT. Problems are reported as warnings: a kernel
/// can boot without them (it then gets no RSDP response and one CPU).
pub fn discover() -> Acpi {
    let mut found = Acpi::default();
    let (v2, v1) = uefi::system::with_config_table(|entries| {
        let find = |guid| entries.iter().find(|e| e.guid == guid).map(|e| e.address as u64);
        (find(ConfigTableEntry::ACPI2_GUID), find(ConfigTableEntry::ACPI_GUID))
    });
    let Some(rsdp_addr) = v2.or(v1) else {
        warn!("ACPI: the firmware publishes no RSDP; the kernel gets no RSDP and only the boot CPU");
        return found;
    };
    // SAFETY: the firmware's configuration table points at the RSDP, which
    // is at least 20 bytes long and mapped.
    let head = unsafe { phys(rsdp_addr, 20) };
    let len = acpi::rsdp_len(head[15]);
    // SAFETY: as above, with the length its revision implies.
    let rsdp = match acpi::parse_rsdp(unsafe { phys(rsdp_addr, len) }) {
        Ok(rsdp) => rsdp,
        Err(e) => {
            warn!("ACPI: RSDP at {rsdp_addr:#x}: {e}; the kernel gets no RSDP and only the boot CPU");
            return found;
        }
    };
    found.rsdp = Some(rsdp_addr);
    let (root, wide) = match rsdp.xsdt {
        Some(x) => (table(x), true),
        None => (table(u64::from(rsdp.rsdt)), false),
    };
    let Some(root) = root else {
        warn!("ACPI: no usable RSDT/XSDT; only the boot CPU will be reported");
        return found;
    };
    for addr in acpi::root_entries(root, wide) {
        let Some(t) = table(addr) else { continue };
        if &t[..4] != b"APIC" {
            continue;
        }
        if !acpi::checksum_ok(t) {
            warn!("ACPI: the MADT's checksum is wrong; using it anyway");
        }
        match acpi::parse_madt(t) {
            Ok(madt) => found.madt = Some(madt),
            Err(e) => warn!("ACPI: MADT: {e}; only the boot CPU will be reported"),
        }
        break;
    }
    if found.madt.is_none() {
        warn!("ACPI: no MADT; only the boot CPU will be reported");
    }
    found
}
