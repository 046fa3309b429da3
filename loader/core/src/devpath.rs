//! Reading UEFI device paths as raw bytes.
//!
//! Two questions need an answer from a device path: does the firmware's
//! console (`ConOut`) already include a serial port, in which case the loader
//! must not copy its messages to COM1 itself (or a serial console would show
//! each line twice); and which partition the loader's volume is, which the
//! kernel finds in the `limine_file` structures.

/// Iterates over `(type, subtype, node bytes)` of every node, across all
/// instances of a multi-instance path, stopping at the end of the path or at
/// the first malformed node.
pub fn nodes(path: &[u8]) -> impl Iterator<Item = (u8, u8, &[u8])> {
    let mut rest = path;
    core::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let (kind, subtype) = (rest[0], rest[1]);
        let len = u16::from_le_bytes([rest[2], rest[3]]) as usize;
        if len < 4 || len > rest.len() || (kind == 0x7f && subtype == 0xff) {
            return None;
        }
        let node = &rest[..len];
        rest = &rest[len..];
        Some((kind, subtype, node))
    })
}

/// Messaging device path, UART subtype.
const MESSAGING: u8 = 3;
const UART: u8 = 14;
/// Media device path, hard drive subtype.
const MEDIA: u8 = 4;
const HARD_DRIVE: u8 = 1;

/// Whether any instance of the path goes through a UART.
pub fn has_uart(path: &[u8]) -> bool {
    nodes(path).any(|(kind, subtype, _)| kind == MESSAGING && subtype == UART)
}

/// A partition, as the hard drive node of a device path describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Partition {
    /// 1-based partition number (0: the whole disk).
    pub number: u32,
    /// The MBR disk signature, for a partition of an MBR disk.
    pub mbr_disk_id: u32,
    /// The unique partition GUID, for a GPT partition (as stored: the
    /// `limine_uuid` layout).
    pub gpt_part_uuid: [u8; 16],
}

/// The first hard drive node of the path, if any.
pub fn partition(path: &[u8]) -> Option<Partition> {
    let (_, _, node) = nodes(path).find(|(k, s, n)| *k == MEDIA && *s == HARD_DRIVE && n.len() >= 42)?;
    let number = u32::from_le_bytes(node[4..8].try_into().ok()?);
    let signature: [u8; 16] = node[24..40].try_into().ok()?;
    let mut p = Partition { number, ..Partition::default() };
    match node[41] {
        1 => p.mbr_disk_id = u32::from_le_bytes(signature[..4].try_into().ok()?),
        2 => p.gpt_part_uuid = signature,
        _ => {}
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: u8, subtype: u8, data: &[u8]) -> Vec<u8> {
        let mut n = vec![kind, subtype];
        n.extend(((data.len() + 4) as u16).to_le_bytes());
        n.extend_from_slice(data);
        n
    }

    fn end(instance: bool) -> Vec<u8> {
        node(0x7f, if instance { 0x01 } else { 0xff }, &[])
    }

    fn hard_drive(number: u32, format: u8, sig_type: u8, sig: [u8; 16]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend(number.to_le_bytes());
        d.extend(2048u64.to_le_bytes());
        d.extend(1000u64.to_le_bytes());
        d.extend(sig);
        d.extend([format, sig_type]);
        node(4, 1, &d)
    }

    #[test]
    fn finds_a_uart_in_a_later_instance() {
        // PciRoot/Pci(video) ; PciRoot/Pci(isa)/Serial/Uart/VenVt100 — as OVMF's ConOut.
        let mut p = node(2, 1, &[0; 8]);
        p.extend(node(1, 1, &[0, 2]));
        p.extend(end(true));
        p.extend(node(2, 1, &[0; 8]));
        p.extend(node(3, 14, &[0; 15]));
        p.extend(node(3, 10, &[0; 16]));
        p.extend(end(false));
        assert!(has_uart(&p));
        let gop_only = [node(2, 1, &[0; 8]), end(false)].concat();
        assert!(!has_uart(&gop_only));
        assert!(!has_uart(&[]));
        assert!(!has_uart(&[3, 14, 2, 0])); // malformed length
    }

    #[test]
    fn partitions() {
        let mut sig = [0u8; 16];
        sig[..4].copy_from_slice(&0xbe1a_fdfa_u32.to_le_bytes());
        let p = [node(2, 1, &[0; 8]), hard_drive(1, 1, 1, sig), end(false)].concat();
        assert_eq!(partition(&p), Some(Partition { number: 1, mbr_disk_id: 0xbe1a_fdfa, gpt_part_uuid: [0; 16] }));
        let guid = [7u8; 16];
        let p = [hard_drive(2, 2, 2, guid), end(false)].concat();
        assert_eq!(partition(&p), Some(Partition { number: 2, mbr_disk_id: 0, gpt_part_uuid: guid }));
        assert_eq!(partition(&[node(2, 1, &[0; 8]), end(false)].concat()), None);
    }
}
