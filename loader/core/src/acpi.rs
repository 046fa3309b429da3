//! Reading the few ACPI tables the loader needs: the RSDP, the root table
//! (XSDT or RSDT) and the MADT, which lists the CPUs to start and the I/O
//! APICs to mask.
//!
//! The functions take byte slices; the loader reads physical memory and
//! hands the bytes over, so everything here can be tested with made-up
//! tables.

use alloc::vec::Vec;
use core::fmt;

/// What is wrong with a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiError(pub &'static str);

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Whether the bytes add up to 0 modulo 256, as every ACPI table must.
pub fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0
}

/// The Root System Description Pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rsdp {
    /// 0 for ACPI 1.0, 2 and later for ACPI 2.0+.
    pub revision: u8,
    /// Physical address of the RSDT.
    pub rsdt: u32,
    /// Physical address of the XSDT (ACPI 2.0+, when non-zero).
    pub xsdt: Option<u64>,
}

/// Length of the RSDP for `revision` (20 bytes for ACPI 1.0, 36 after).
pub fn rsdp_len(revision: u8) -> usize {
    if revision >= 2 { 36 } else { 20 }
}

/// Parses an RSDP; `bytes` holds at least the first 20 bytes, and 36 when
/// the revision is 2 or more.
pub fn parse_rsdp(bytes: &[u8]) -> Result<Rsdp, AcpiError> {
    if bytes.len() < 20 || &bytes[..8] != b"RSD PTR " {
        return Err(AcpiError("no `RSD PTR ` signature"));
    }
    if !checksum_ok(&bytes[..20]) {
        return Err(AcpiError("bad RSDP checksum"));
    }
    let revision = bytes[15];
    let rsdt = u32_at(bytes, 16).unwrap_or(0);
    let mut xsdt = None;
    if revision >= 2 {
        let extended = bytes.get(..36).ok_or(AcpiError("ACPI 2.0 RSDP shorter than 36 bytes"))?;
        if !checksum_ok(extended) {
            return Err(AcpiError("bad extended RSDP checksum"));
        }
        xsdt = u64_at(bytes, 24).filter(|&a| a != 0);
    }
    Ok(Rsdp { revision, rsdt, xsdt })
}

/// Length of a system description table header.
pub const SDT_HEADER_LEN: usize = 36;

/// The signature and length of a table from its header.
pub fn sdt_header(bytes: &[u8]) -> Option<([u8; 4], u32)> {
    let signature: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some((signature, u32_at(bytes, 4)?))
}

/// The table addresses listed by an XSDT (`wide`, 8-byte entries) or an RSDT
/// (4-byte entries).
pub fn root_entries(table: &[u8], wide: bool) -> impl Iterator<Item = u64> + '_ {
    let size = if wide { 8 } else { 4 };
    let body = table.get(SDT_HEADER_LEN..).unwrap_or(&[]);
    body.chunks_exact(size)
        .map(move |c| if wide { u64_at(c, 0).unwrap_or(0) } else { u64::from(u32_at(c, 0).unwrap_or(0)) })
}

/// A processor listed in the MADT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MadtCpu {
    /// ACPI processor UID.
    pub processor_uid: u32,
    /// Local APIC (or x2APIC) ID.
    pub apic_id: u32,
    /// Flags bit 0: the processor is usable now.
    pub enabled: bool,
    /// Flags bit 1: the processor can be brought online.
    pub online_capable: bool,
}

/// An I/O APIC listed in the MADT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MadtIoApic {
    /// I/O APIC ID.
    pub id: u8,
    /// Physical address of its registers.
    pub address: u32,
    /// First global system interrupt it handles.
    pub gsi_base: u32,
}

/// What the loader takes from the MADT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Madt {
    /// Physical address of the local APIC (with the 64-bit override applied).
    pub lapic_address: u64,
    /// Flags bit 0: the machine also has dual legacy 8259 PICs.
    pub pcat_compat: bool,
    /// Processors that are enabled or online-capable, in table order, each
    /// APIC ID once.
    pub cpus: Vec<MadtCpu>,
    /// I/O APICs.
    pub io_apics: Vec<MadtIoApic>,
}

/// Parses the whole MADT (`APIC` table), header included.
pub fn parse_madt(table: &[u8]) -> Result<Madt, AcpiError> {
    match sdt_header(table) {
        Some((sig, len)) if &sig == b"APIC" && len as usize == table.len() => {}
        Some((sig, _)) if &sig != b"APIC" => return Err(AcpiError("not a MADT (signature is not `APIC`)")),
        _ => return Err(AcpiError("MADT length does not match its header")),
    }
    if table.len() < 44 {
        return Err(AcpiError("MADT shorter than its fixed part"));
    }
    let mut madt = Madt {
        lapic_address: u64::from(u32_at(table, 36).unwrap_or(0)),
        pcat_compat: u32_at(table, 40).unwrap_or(0) & 1 != 0,
        ..Madt::default()
    };
    let mut at = 44;
    while at + 2 <= table.len() {
        let kind = table[at];
        let len = table[at + 1] as usize;
        if len < 2 || at + len > table.len() {
            return Err(AcpiError("MADT entry runs past the end of the table"));
        }
        let entry = &table[at..at + len];
        let cpu = match (kind, len) {
            (0, 8..) => {
                let flags = u32_at(entry, 4).unwrap_or(0);
                (entry[3] != 0xff).then_some(MadtCpu {
                    processor_uid: u32::from(entry[2]),
                    apic_id: u32::from(entry[3]),
                    enabled: flags & 1 != 0,
                    online_capable: flags & 2 != 0,
                })
            }
            (9, 16..) => {
                let flags = u32_at(entry, 8).unwrap_or(0);
                Some(MadtCpu {
                    processor_uid: u32_at(entry, 12).unwrap_or(0),
                    apic_id: u32_at(entry, 4).unwrap_or(0),
                    enabled: flags & 1 != 0,
                    online_capable: flags & 2 != 0,
                })
            }
            (1, 12..) => {
                madt.io_apics.push(MadtIoApic {
                    id: entry[2],
                    address: u32_at(entry, 4).unwrap_or(0),
                    gsi_base: u32_at(entry, 8).unwrap_or(0),
                });
                None
            }
            (5, 12..) => {
                madt.lapic_address = u64_at(entry, 4).unwrap_or(madt.lapic_address);
                None
            }
            _ => None,
        };
        if let Some(cpu) = cpu
            && (cpu.enabled || cpu.online_capable)
            && !madt.cpus.iter().any(|c| c.apic_id == cpu.apic_id)
        {
            madt.cpus.push(cpu);
        }
        at += len;
    }
    Ok(madt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_checksum(mut bytes: Vec<u8>, at: usize, range: core::ops::Range<usize>) -> Vec<u8> {
        bytes[at] = 0;
        let sum = bytes[range].iter().fold(0u8, |a, b| a.wrapping_add(*b));
        bytes[at] = 0u8.wrapping_sub(sum);
        bytes
    }

    fn rsdp(revision: u8, rsdt: u32, xsdt: u64) -> Vec<u8> {
        let mut b = vec![0u8; 36];
        b[..8].copy_from_slice(b"RSD PTR ");
        b[9..15].copy_from_slice(b"FERRIT");
        b[15] = revision;
        b[16..20].copy_from_slice(&rsdt.to_le_bytes());
        b[20..24].copy_from_slice(&36u32.to_le_bytes());
        b[24..32].copy_from_slice(&xsdt.to_le_bytes());
        let b = with_checksum(b, 8, 0..20);
        with_checksum(b, 32, 0..36)
    }

    #[test]
    fn rsdp_versions() {
        assert_eq!(parse_rsdp(&rsdp(2, 0x1000, 0x2000)), Ok(Rsdp { revision: 2, rsdt: 0x1000, xsdt: Some(0x2000) }));
        assert_eq!(parse_rsdp(&rsdp(0, 0x1000, 0)[..20]), Ok(Rsdp { revision: 0, rsdt: 0x1000, xsdt: None }));
        let mut bad = rsdp(2, 0x1000, 0x2000);
        bad[16] ^= 1;
        assert!(parse_rsdp(&bad).is_err());
        assert!(parse_rsdp(b"RSD PTX 12345678901234567890").is_err());
        assert_eq!(rsdp_len(0), 20);
        assert_eq!(rsdp_len(2), 36);
    }

    fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; SDT_HEADER_LEN];
        t[..4].copy_from_slice(sig);
        t.extend_from_slice(body);
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        with_checksum(t.clone(), 9, 0..t.len())
    }

    #[test]
    fn root_tables() {
        let xsdt = table(b"XSDT", &[0x1000u64.to_le_bytes(), 0x2000u64.to_le_bytes()].concat());
        assert!(checksum_ok(&xsdt));
        assert_eq!(sdt_header(&xsdt), Some((*b"XSDT", 52)));
        assert_eq!(root_entries(&xsdt, true).collect::<Vec<_>>(), vec![0x1000, 0x2000]);
        let rsdt = table(b"RSDT", &[0x3000u32.to_le_bytes(), 0x4000u32.to_le_bytes()].concat());
        assert_eq!(root_entries(&rsdt, false).collect::<Vec<_>>(), vec![0x3000, 0x4000]);
    }

    fn lapic(uid: u8, id: u8, flags: u32) -> Vec<u8> {
        let mut e = vec![0, 8, uid, id];
        e.extend(flags.to_le_bytes());
        e
    }

    fn x2apic(uid: u32, id: u32, flags: u32) -> Vec<u8> {
        let mut e = vec![9, 16, 0, 0];
        e.extend(id.to_le_bytes());
        e.extend(flags.to_le_bytes());
        e.extend(uid.to_le_bytes());
        e
    }

    #[test]
    fn madt_processors_and_io_apics() {
        let mut body = Vec::new();
        body.extend(0xfee0_0000u32.to_le_bytes());
        body.extend(1u32.to_le_bytes());
        body.extend(lapic(0, 0, 1));
        body.extend(lapic(1, 1, 1));
        body.extend(lapic(2, 2, 0)); // disabled: left out
        body.extend(lapic(3, 3, 2)); // online capable: kept
        body.extend(lapic(4, 0xff, 1)); // invalid ID: left out
        body.extend([1, 12, 7, 0]);
        body.extend(0xfec0_0000u32.to_le_bytes());
        body.extend(0u32.to_le_bytes());
        body.extend(x2apic(300, 300, 1));
        body.extend(x2apic(9, 1, 1)); // same APIC ID as an earlier entry: left out
        body.extend([2, 10, 0, 0, 0, 0, 0, 0, 0, 0]); // interrupt source override: skipped
        let madt = parse_madt(&table(b"APIC", &body)).unwrap();
        assert_eq!(madt.lapic_address, 0xfee0_0000);
        assert!(madt.pcat_compat);
        let ids: Vec<_> = madt.cpus.iter().map(|c| (c.processor_uid, c.apic_id)).collect();
        assert_eq!(ids, vec![(0, 0), (1, 1), (3, 3), (300, 300)]);
        assert!(madt.cpus[2].online_capable && !madt.cpus[2].enabled);
        assert_eq!(madt.io_apics, vec![MadtIoApic { id: 7, address: 0xfec0_0000, gsi_base: 0 }]);
    }

    #[test]
    fn madt_errors() {
        assert!(parse_madt(&table(b"FACP", &[0; 8])).is_err());
        let mut body = vec![0u8; 8];
        body.extend([0, 20, 0, 0]);
        assert!(parse_madt(&table(b"APIC", &body)).is_err());
        let mut t = table(b"APIC", &[0; 8]);
        t.pop();
        assert!(parse_madt(&t).is_err());
    }
}
