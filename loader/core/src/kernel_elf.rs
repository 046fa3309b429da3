//! Checking a kernel ELF file and planning how it is laid out in memory.
//!
//! The loader refuses anything it could not load exactly as linked, and it
//! does so before it changes anything on the machine: every check the
//! protocol or the x86-64 handoff needs is here, with a message that names
//! the reason. The result says where each segment goes inside one physically
//! contiguous block that starts at the page holding the lowest segment.

use crate::protocol::KERNEL_MIN_VADDR;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use elf::ElfBytes;
use elf::abi::{EM_X86_64, ET_DYN, ET_EXEC, PF_W, PF_X, PT_LOAD};
use elf::endian::AnyEndian;
use elf::file::Class;

/// Size of a page.
pub const PAGE_SIZE: u64 = 4096;

const fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

/// A loadable segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address of its first byte.
    pub vaddr: u64,
    /// Size in memory (file bytes, then zeroes).
    pub memsz: u64,
    /// Offset of its bytes in the file.
    pub offset: u64,
    /// Number of bytes taken from the file.
    pub filesz: u64,
    /// `PF_W`.
    pub writable: bool,
    /// `PF_X`.
    pub executable: bool,
}

impl Segment {
    /// One past its last byte.
    pub const fn end(&self) -> u64 {
        self.vaddr + self.memsz
    }
}

/// A kernel that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImage {
    /// `e_entry`.
    pub entry: u64,
    /// The page holding the lowest segment: the virtual base of the block.
    pub virt_base: u64,
    /// One past the page holding the end of the highest segment.
    pub virt_end: u64,
    /// Loadable segments, sorted by address, without empty ones.
    pub segments: Vec<Segment>,
    /// Things worth telling the user that do not stop the boot.
    pub warnings: Vec<String>,
}

impl KernelImage {
    /// Size of the block holding the whole image, in bytes.
    pub fn size(&self) -> u64 {
        self.virt_end - self.virt_base
    }

    /// Whether `addr` lies inside an executable segment.
    pub fn is_executable(&self, addr: u64) -> bool {
        self.segments.iter().any(|s| s.executable && (s.vaddr..s.end()).contains(&addr))
    }

    /// The offset inside the block of the `len` bytes at virtual address
    /// `vaddr`, if they all lie inside the block.
    pub fn offset_of(&self, vaddr: u64, len: u64) -> Option<usize> {
        let end = vaddr.checked_add(len)?;
        (vaddr >= self.virt_base && end <= self.virt_end).then(|| (vaddr - self.virt_base) as usize)
    }

    /// The pages to map and their permissions: each segment's pages, with a
    /// page shared by two segments getting the union of their permissions.
    pub fn page_plan(&self) -> Vec<PageRange> {
        let mut out: Vec<PageRange> = Vec::new();
        for seg in &self.segments {
            let mut start = page_down(seg.vaddr);
            let end = seg.end().next_multiple_of(PAGE_SIZE);
            if let Some(last) = out.last_mut()
                && start < last.end()
            {
                // Only the last page of the previous range can be shared:
                // segments do not overlap and are sorted.
                let shared = PageRange {
                    vaddr: start,
                    pages: (last.end() - start) / PAGE_SIZE,
                    writable: last.writable || seg.writable,
                    executable: last.executable || seg.executable,
                };
                last.pages -= shared.pages;
                if last.pages == 0 {
                    out.pop();
                }
                start = shared.end();
                out.push(shared);
            }
            if start < end {
                out.push(PageRange {
                    vaddr: start,
                    pages: (end - start) / PAGE_SIZE,
                    writable: seg.writable,
                    executable: seg.executable,
                });
            }
        }
        // Merge neighbours with the same permissions.
        let mut merged: Vec<PageRange> = Vec::with_capacity(out.len());
        for r in out {
            match merged.last_mut() {
                Some(m) if m.end() == r.vaddr && m.writable == r.writable && m.executable == r.executable => {
                    m.pages += r.pages
                }
                _ => merged.push(r),
            }
        }
        merged
    }
}

/// Pages of the kernel image mapped with the same permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRange {
    /// First page.
    pub vaddr: u64,
    /// Number of pages.
    pub pages: u64,
    /// Map writable.
    pub writable: bool,
    /// Map executable (otherwise no-execute).
    pub executable: bool,
}

impl PageRange {
    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.vaddr + self.pages * PAGE_SIZE
    }
}

/// Why a file is not a loadable kernel. The display text completes
/// "`<file>: `".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfError(pub String);

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, ElfError> {
    Err(ElfError(message.into()))
}

/// Checks `file` and describes how to load it.
pub fn parse(file: &[u8]) -> Result<KernelImage, ElfError> {
    if file.len() < 4 || &file[..4] != b"\x7fELF" {
        return err("not an ELF file (no \\x7fELF magic at the start)");
    }
    let elf = match ElfBytes::<AnyEndian>::minimal_parse(file) {
        Ok(elf) => elf,
        Err(elf::ParseError::UnsupportedElfClass(c)) => return err(format!("unknown ELF class {c}")),
        Err(elf::ParseError::UnsupportedElfEndianness(e)) => return err(format!("unknown ELF byte order {e}")),
        Err(e) => return err(format!("malformed ELF header ({e:?})")),
    };
    let header = &elf.ehdr;
    if header.class != Class::ELF64 {
        return err("a 32-bit ELF file; the kernel must be ELF64 for x86-64");
    }
    if header.endianness != AnyEndian::Little {
        return err("a big-endian ELF file; x86-64 kernels are little-endian");
    }
    if header.e_machine != EM_X86_64 {
        return err(format!("built for ELF machine {}, not x86-64 ({EM_X86_64})", header.e_machine));
    }
    match header.e_type {
        ET_EXEC => {}
        ET_DYN => {
            return err(
                "a position-independent executable (ET_DYN); this loader loads only ET_EXEC kernels linked at a fixed address",
            );
        }
        other => return err(format!("not an executable (ELF type {other}, expected ET_EXEC)")),
    }
    let table = match elf.segments() {
        Some(table) => table,
        None => return err("has no program headers"),
    };

    let mut segments = Vec::new();
    let mut warnings = Vec::new();
    for (index, ph) in table.iter().enumerate() {
        if ph.p_type != PT_LOAD || ph.p_memsz == 0 {
            continue;
        }
        let name = format!("segment {index}");
        if ph.p_filesz > ph.p_memsz {
            return err(format!(
                "{name}: file size {:#x} is larger than its memory size {:#x}",
                ph.p_filesz, ph.p_memsz
            ));
        }
        match ph.p_offset.checked_add(ph.p_filesz) {
            Some(end) if end <= file.len() as u64 => {}
            _ => {
                return err(format!(
                    "{name}: its file bytes {:#x}..{:#x} are past the end of the file ({:#x} bytes)",
                    ph.p_offset,
                    ph.p_offset.wrapping_add(ph.p_filesz),
                    file.len()
                ));
            }
        }
        if ph.p_vaddr < KERNEL_MIN_VADDR {
            return err(format!(
                "{name} at {:#x} is below the higher half: the protocol loads kernels at or above {KERNEL_MIN_VADDR:#x}",
                ph.p_vaddr
            ));
        }
        if ph.p_vaddr.checked_add(ph.p_memsz).is_none_or(|end| end > u64::MAX - PAGE_SIZE + 1) {
            return err(format!(
                "{name} at {:#x} with size {:#x} wraps around the address space",
                ph.p_vaddr, ph.p_memsz
            ));
        }
        let seg = Segment {
            vaddr: ph.p_vaddr,
            memsz: ph.p_memsz,
            offset: ph.p_offset,
            filesz: ph.p_filesz,
            writable: ph.p_flags & PF_W != 0,
            executable: ph.p_flags & PF_X != 0,
        };
        if seg.writable && seg.executable {
            warnings.push(format!("{name} at {:#x} is both writable and executable", seg.vaddr));
        }
        segments.push(seg);
    }
    if segments.is_empty() {
        return err("has no loadable (PT_LOAD) segments");
    }
    segments.sort_by_key(|s| s.vaddr);
    for pair in segments.windows(2) {
        if pair[1].vaddr < pair[0].end() {
            return err(format!(
                "segments overlap: {:#x}..{:#x} and {:#x}..{:#x}",
                pair[0].vaddr,
                pair[0].end(),
                pair[1].vaddr,
                pair[1].end()
            ));
        }
    }
    let virt_base = page_down(segments[0].vaddr);
    let virt_end = segments.iter().map(|s| s.end()).max().unwrap_or(virt_base).next_multiple_of(PAGE_SIZE);
    Ok(KernelImage { entry: header.e_entry, virt_base, virt_end, segments, warnings })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Program header of a test file: (type, flags, offset, vaddr, filesz, memsz).
    pub type Ph = (u32, u32, u64, u64, u64, u64);

    /// Builds a minimal ELF64 file with the given program headers and enough
    /// bytes after the headers for their file ranges.
    pub fn build(machine: u16, e_type: u16, phs: &[Ph], file_len: usize) -> Vec<u8> {
        let mut f = vec![0u8; file_len.max(64 + 56 * phs.len())];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // ELFCLASS64
        f[5] = 1; // little-endian
        f[6] = 1; // EV_CURRENT
        f[16..18].copy_from_slice(&e_type.to_le_bytes());
        f[18..20].copy_from_slice(&machine.to_le_bytes());
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[24..32].copy_from_slice(&0xffff_ffff_8000_1000u64.to_le_bytes()); // entry
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        f[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        f[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        f[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
        f[58..60].copy_from_slice(&64u16.to_le_bytes()); // shentsize
        for (i, &(ty, flags, off, vaddr, filesz, memsz)) in phs.iter().enumerate() {
            let p = 64 + 56 * i;
            f[p..p + 4].copy_from_slice(&ty.to_le_bytes());
            f[p + 4..p + 8].copy_from_slice(&flags.to_le_bytes());
            f[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
            f[p + 16..p + 24].copy_from_slice(&vaddr.to_le_bytes());
            f[p + 24..p + 32].copy_from_slice(&vaddr.to_le_bytes());
            f[p + 32..p + 40].copy_from_slice(&filesz.to_le_bytes());
            f[p + 40..p + 48].copy_from_slice(&memsz.to_le_bytes());
            f[p + 48..p + 56].copy_from_slice(&0x1000u64.to_le_bytes());
        }
        f
    }

    const K: u64 = 0xffff_ffff_8000_0000;
    const R: u32 = 4;
    const W: u32 = 2;
    const X: u32 = 1;

    fn typical() -> Vec<u8> {
        build(
            EM_X86_64,
            ET_EXEC,
            &[
                (PT_LOAD, R, 0x1000, K, 0x100, 0x100),
                (PT_LOAD, R | X, 0x2000, K + 0x1000, 0x1800, 0x1800),
                (PT_LOAD, R | W, 0x3800, K + 0x2800, 0x100, 0x5000), // shares a page with .text, has BSS
                (6, R, 0x40, K, 0, 0),                               // PT_PHDR: ignored
            ],
            0x4000,
        )
    }

    #[test]
    fn accepts_a_typical_kernel() {
        let k = parse(&typical()).unwrap();
        assert_eq!(k.entry, K + 0x1000);
        assert_eq!(k.virt_base, K);
        assert_eq!(k.virt_end, K + 0x8000);
        assert_eq!(k.size(), 0x8000);
        assert_eq!(k.segments.len(), 3);
        assert!(k.warnings.is_empty());
        assert!(k.is_executable(K + 0x1000));
        assert!(!k.is_executable(K));
        assert_eq!(k.offset_of(K + 0x2800, 8), Some(0x2800));
        assert_eq!(k.offset_of(K + 0x7ff8, 16), None);
    }

    #[test]
    fn shared_pages_get_both_permissions() {
        let plan = parse(&typical()).unwrap().page_plan();
        assert_eq!(
            plan,
            vec![
                PageRange { vaddr: K, pages: 1, writable: false, executable: false },
                PageRange { vaddr: K + 0x1000, pages: 1, writable: false, executable: true },
                PageRange { vaddr: K + 0x2000, pages: 1, writable: true, executable: true },
                PageRange { vaddr: K + 0x3000, pages: 5, writable: true, executable: false },
            ]
        );
    }

    #[test]
    fn three_segments_in_one_page_and_gaps() {
        let f = build(
            EM_X86_64,
            ET_EXEC,
            &[
                (PT_LOAD, R, 0x100, K, 0x10, 0x10),
                (PT_LOAD, R | X, 0x200, K + 0x200, 0x10, 0x10),
                (PT_LOAD, R, 0x300, K + 0x400, 0x10, 0x10),
                (PT_LOAD, R | W, 0x400, K + 0x10000, 0x10, 0x10),
            ],
            0x1000,
        );
        let plan = parse(&f).unwrap().page_plan();
        assert_eq!(
            plan,
            vec![
                PageRange { vaddr: K, pages: 1, writable: false, executable: true },
                PageRange { vaddr: K + 0x10000, pages: 1, writable: true, executable: false },
            ]
        );
    }

    #[test]
    fn warns_about_writable_code() {
        let f = build(EM_X86_64, ET_EXEC, &[(PT_LOAD, R | W | X, 0x1000, K, 0x10, 0x10)], 0x2000);
        let k = parse(&f).unwrap();
        assert_eq!(k.warnings.len(), 1);
        assert!(k.warnings[0].contains("writable and executable"));
    }

    #[test]
    fn refuses_what_it_cannot_load() {
        let seg = |vaddr, off, filesz, memsz| (PT_LOAD, R, off, vaddr, filesz, memsz);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"MZ\x90\x00 not elf".to_vec(), "not an ELF file"),
            (b"\x7fEL".to_vec(), "not an ELF file"),
            (b"\x7fELF\x02\x01\x01".to_vec(), "malformed ELF header"),
            (build(3, ET_EXEC, &[seg(K, 0x100, 0x10, 0x10)], 0x200), "not x86-64"),
            (build(EM_X86_64, ET_DYN, &[seg(K, 0x100, 0x10, 0x10)], 0x200), "position-independent"),
            (build(EM_X86_64, 1, &[seg(K, 0x100, 0x10, 0x10)], 0x200), "not an executable"),
            (build(EM_X86_64, ET_EXEC, &[], 0x200), "no loadable"),
            (build(EM_X86_64, ET_EXEC, &[seg(0x20_0000, 0x100, 0x10, 0x10)], 0x200), "below the higher half"),
            (build(EM_X86_64, ET_EXEC, &[seg(K, 0x100, 0x20, 0x10)], 0x200), "larger than its memory size"),
            (build(EM_X86_64, ET_EXEC, &[seg(K, 0x180, 0x100, 0x100)], 0x200), "past the end of the file"),
            (build(EM_X86_64, ET_EXEC, &[seg(K, u64::MAX, 0x10, 0x10)], 0x200), "past the end of the file"),
            (build(EM_X86_64, ET_EXEC, &[seg(u64::MAX - 0x10, 0x100, 0x10, 0x100)], 0x200), "wraps around"),
            (
                build(EM_X86_64, ET_EXEC, &[seg(K, 0x100, 0x10, 0x2000), seg(K + 0x1000, 0x100, 0x10, 0x10)], 0x200),
                "segments overlap",
            ),
        ];
        for (file, needle) in cases {
            let e = parse(&file).unwrap_err();
            assert!(e.to_string().contains(needle), "expected `{needle}`, got `{e}`");
        }
        let mut f32 = build(EM_X86_64, ET_EXEC, &[seg(K, 0x100, 0x10, 0x10)], 0x200);
        f32[4] = 1;
        assert!(parse(&f32).is_err());
    }
}
