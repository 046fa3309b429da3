//! Checking a user program's ELF image before the kernel loads it: every
//! way a file can be malformed, or ask for something the kernel refuses
//! (a writable and executable segment, memory outside user space), becomes
//! a clear error instead of a half-loaded task.

use crate::layout::USER_END;
use crate::PAGE_SIZE;
use core::fmt;
use elf::abi::{EM_X86_64, ET_EXEC, PF_R, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use elf::ElfBytes;

/// The lowest address a program may use (the first 2 MiB stay unmapped).
pub const USER_START: u64 = 0x20_0000;
/// Most loadable segments a program may have.
pub const MAX_SEGMENTS: usize = 8;

/// A loadable segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address of the first byte.
    pub vaddr: u64,
    /// Bytes in memory (the part past `file_size` is zero).
    pub mem_size: u64,
    /// Bytes taken from the file.
    pub file_size: u64,
    /// Where those bytes start in the file.
    pub offset: u64,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

impl Segment {
    /// First page.
    pub fn page_start(&self) -> u64 {
        self.vaddr & !(PAGE_SIZE - 1)
    }
    /// One past the last page.
    pub fn page_end(&self) -> u64 {
        (self.vaddr + self.mem_size).next_multiple_of(PAGE_SIZE)
    }
}

/// A checked program image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserImage {
    /// Entry point.
    pub entry: u64,
    segments: [Option<Segment>; MAX_SEGMENTS],
}

impl UserImage {
    /// The loadable segments in address order.
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        self.segments.iter().flatten().copied()
    }
}

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not an ELF file, or its headers do not parse.
    Malformed(&'static str),
    /// Not a 64-bit little-endian x86-64 file.
    WrongMachine,
    /// Not a statically linked executable (ET_EXEC).
    NotExecutable,
    /// No loadable segment.
    NoSegments,
    /// More than [`MAX_SEGMENTS`] loadable segments.
    TooManySegments,
    /// A segment's bytes lie past the end of the file.
    TruncatedSegment(u64),
    /// A segment has more bytes in the file than in memory.
    FileLargerThanMemory(u64),
    /// A segment reaches outside user space.
    OutsideUserSpace(u64),
    /// Two segments share a page.
    Overlap(u64),
    /// A segment is writable and executable.
    WritableAndExecutable(u64),
    /// A segment's file offset and address disagree modulo the page size.
    Misaligned(u64),
    /// The entry point is not in an executable segment.
    BadEntry(u64),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "not a valid ELF file ({why})"),
            Self::WrongMachine => f.write_str("not a 64-bit little-endian x86-64 ELF file"),
            Self::NotExecutable => f.write_str("not a static executable (ET_EXEC)"),
            Self::NoSegments => f.write_str("no loadable segment"),
            Self::TooManySegments => write!(f, "more than {MAX_SEGMENTS} loadable segments"),
            Self::TruncatedSegment(a) => write!(f, "segment at {a:#x} extends past the end of the file"),
            Self::FileLargerThanMemory(a) => write!(f, "segment at {a:#x} has more file bytes than memory bytes"),
            Self::OutsideUserSpace(a) => write!(f, "segment at {a:#x} lies outside user space ({USER_START:#x}..{USER_END:#x})"),
            Self::Overlap(a) => write!(f, "segment at {a:#x} overlaps another segment"),
            Self::WritableAndExecutable(a) => write!(f, "segment at {a:#x} is writable and executable (W^X)"),
            Self::Misaligned(a) => write!(f, "segment at {a:#x}: file offset and address differ modulo the page size"),
            Self::BadEntry(a) => write!(f, "entry point {a:#x} is not in an executable segment"),
        }
    }
}

/// Checks `data` as a user program.
pub fn check(data: &[u8]) -> Result<UserImage, ElfError> {
    let file = ElfBytes::<LittleEndian>::minimal_parse(data).map_err(|e| {
        Elf::malformed(e)
    })?;
    let h = &file.ehdr;
    if h.class != elf::file::Class::ELF64 || h.e_machine != EM_X86_64 {
        return Err(ElfError::WrongMachine);
    }
    if h.e_type != ET_EXEC {
        return Err(ElfError::NotExecutable);
    }
    let headers = file.segments().ok_or(ElfError::NoSegments)?;
    let mut image = UserImage { entry: h.e_entry, segments: [None; MAX_SEGMENTS] };
    let mut n = 0;
    for p in headers.iter().filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0) {
        if n == MAX_SEGMENTS {
            return Err(ElfError::TooManySegments);
        }
        let a = p.p_vaddr;
        if p.p_filesz > p.p_memsz {
            return Err(ElfError::FileLargerThanMemory(a));
        }
        if p.p_offset.checked_add(p.p_filesz).is_none_or(|end| end > data.len() as u64) {
            return Err(ElfError::TruncatedSegment(a));
        }
        if a < USER_START || a.checked_add(p.p_memsz).is_none_or(|end| end > USER_END) {
            return Err(ElfError::OutsideUserSpace(a));
        }
        if p.p_flags & PF_W != 0 && p.p_flags & PF_X != 0 {
            return Err(ElfError::WritableAndExecutable(a));
        }
        if p.p_offset % PAGE_SIZE != a % PAGE_SIZE {
            return Err(ElfError::Misaligned(a));
        }
        let _ = PF_R;
        let seg = Segment {
            vaddr: a,
            mem_size: p.p_memsz,
            file_size: p.p_filesz,
            offset: p.p_offset,
            write: p.p_flags & PF_W != 0,
            execute: p.p_flags & PF_X != 0,
        };
        if image.segments().any(|s| seg.page_start() < s.page_end() && s.page_start() < seg.page_end()) {
            return Err(ElfError::Overlap(a));
        }
        image.segments[n] = Some(seg);
        n += 1;
    }
    if n == 0 {
        return Err(ElfError::NoSegments);
    }
    image.segments[..n].sort_unstable_by_key(|s| s.map(|s| s.vaddr));
    if !image.segments().any(|s| s.execute && s.vaddr <= image.entry && image.entry < s.vaddr + s.mem_size) {
        return Err(ElfError::BadEntry(image.entry));
    }
    Ok(image)
}

struct Elf;

impl Elf {
    fn malformed(e: elf::ParseError) -> ElfError {
        use elf::ParseError as P;
        ElfError::Malformed(match e {
            P::BadMagic(_) => "bad magic",
            P::UnsupportedElfClass(_) => "unsupported class",
            P::UnsupportedElfEndianness(_) => "unsupported endianness",
            P::UnsupportedVersion(_) => "unsupported version",
            P::SliceReadError(_) | P::BadOffset(_) => "truncated headers",
            _ => "headers do not parse",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a minimal ELF64 x86-64 executable with the given program
    /// headers `(type, flags, offset, vaddr, filesz, memsz)`.
    fn build(e_type: u16, entry: u64, phdrs: &[(u32, u32, u64, u64, u64, u64)], file_len: usize) -> Vec<u8> {
        let mut f = vec![0u8; file_len.max(64 + 56 * phdrs.len())];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little endian
        f[6] = 1; // version
        f[16..18].copy_from_slice(&e_type.to_le_bytes());
        f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[24..32].copy_from_slice(&entry.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        f[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
        f[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        f[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, &(t, flags, off, va, fs, ms)) in phdrs.iter().enumerate() {
            let p = 64 + 56 * i;
            f[p..p + 4].copy_from_slice(&t.to_le_bytes());
            f[p + 4..p + 8].copy_from_slice(&flags.to_le_bytes());
            f[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
            f[p + 16..p + 24].copy_from_slice(&va.to_le_bytes());
            f[p + 32..p + 40].copy_from_slice(&fs.to_le_bytes());
            f[p + 40..p + 48].copy_from_slice(&ms.to_le_bytes());
            f[p + 48..p + 56].copy_from_slice(&4096u64.to_le_bytes());
        }
        f
    }

    const RX: u32 = PF_R | PF_X;
    const RW: u32 = PF_R | PF_W;

    #[test]
    fn accepts_a_well_formed_program() {
        let f = build(ET_EXEC, 0x40_1000, &[(1, RX, 0x1000, 0x40_1000, 0x100, 0x100), (1, RW, 0x2000, 0x40_2000, 0x10, 0x3000)], 0x3000);
        let img = check(&f).unwrap();
        assert_eq!(img.entry, 0x40_1000);
        let segs: Vec<Segment> = img.segments().collect();
        assert_eq!(segs.len(), 2);
        assert!(segs[0].execute && !segs[0].write);
        assert_eq!(segs[1].page_end(), 0x40_5000);
    }

    #[test]
    fn refuses_each_kind_of_bad_image() {
        let ok_text = (1, RX, 0x1000, 0x40_1000, 0x100, 0x100);
        let cases: Vec<(Vec<u8>, ElfError)> = vec![
            (vec![0; 10], ElfError::Malformed("truncated headers")),
            (b"NOTANELF-and-some-more-bytes-to-make-it-long-enough-for-a-header.".to_vec(), ElfError::Malformed("bad magic")),
            (build(3, 0x40_1000, &[ok_text], 0x2000), ElfError::NotExecutable),
            (build(ET_EXEC, 0x40_1000, &[], 0x2000), ElfError::NoSegments),
            (build(ET_EXEC, 0x40_1000, &[(1, PF_R | PF_W | PF_X, 0x1000, 0x40_1000, 0x10, 0x10)], 0x2000), ElfError::WritableAndExecutable(0x40_1000)),
            (build(ET_EXEC, 0x40_1000, &[(1, RX, 0x1000, 0x40_1000, 0x5000, 0x5000)], 0x2000), ElfError::TruncatedSegment(0x40_1000)),
            (build(ET_EXEC, 0x40_1000, &[(1, RX, 0x1000, 0x40_1000, 0x200, 0x100)], 0x2000), ElfError::FileLargerThanMemory(0x40_1000)),
            (build(ET_EXEC, 0x1000, &[(1, RX, 0x1000, 0x1000, 0x10, 0x10)], 0x2000), ElfError::OutsideUserSpace(0x1000)),
            (build(ET_EXEC, 0xffff_8000_0000_1000, &[(1, RX, 0x1000, 0xffff_8000_0000_1000, 0x10, 0x10)], 0x2000), ElfError::OutsideUserSpace(0xffff_8000_0000_1000)),
            (build(ET_EXEC, 0x40_1000, &[ok_text, (1, RW, 0x1800, 0x40_1800, 0x10, 0x10)], 0x2000), ElfError::Overlap(0x40_1800)),
            (build(ET_EXEC, 0x40_1000, &[(1, RX, 0x1200, 0x40_1000, 0x10, 0x10)], 0x2000), ElfError::Misaligned(0x40_1000)),
            (build(ET_EXEC, 0x50_0000, &[ok_text], 0x2000), ElfError::BadEntry(0x50_0000)),
        ];
        for (i, (file, want)) in cases.into_iter().enumerate() {
            assert_eq!(check(&file), Err(want), "case {i}");
        }
        let nine: Vec<_> = (0..9).map(|i| (1, RX, 0x1000, 0x40_0000 + i * 0x10_0000, 0x10, 0x10)).collect();
        assert_eq!(check(&build(ET_EXEC, 0x40_0000, &nine, 0x2000)), Err(ElfError::TooManySegments));
    }
}
