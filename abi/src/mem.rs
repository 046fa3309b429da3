//! Flags for mapping memory (`MemMap`, `MemProtect`, and the memory
//! server's requests).

use crate::error::Error;
use bitflags::bitflags;

/// Bytes in a page.
pub const PAGE_SIZE: u64 = 4096;
/// Bytes in a large page.
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;
/// One past the highest user address.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// The lowest address user mappings may use (the first 2 MiB stay unmapped
/// so null-pointer accesses always fault).
pub const USER_START: u64 = 0x20_0000;

bitflags! {
    /// How memory is mapped. Always readable.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct MapFlags: u64 {
        /// Writable.
        const WRITE = 1 << 0;
        /// Executable. Never together with `WRITE`.
        const EXEC = 1 << 1;
        /// Fill the frames with zeros before mapping them.
        const ZERO = 1 << 2;
        /// Use 2 MiB pages (addresses and lengths 2 MiB-aligned).
        const LARGE = 1 << 3;
        /// (Memory server) the pages must be physically contiguous.
        const CONTIGUOUS = 1 << 4;
    }
}

impl MapFlags {
    /// Decodes flags: unknown bits and writable+executable are refused.
    pub fn from_raw(raw: u64) -> Result<Self, Error> {
        let f = Self::from_bits(raw).ok_or(Error::InvalidArgument)?;
        if f.contains(Self::WRITE | Self::EXEC) {
            return Err(Error::WriteExecute);
        }
        Ok(f)
    }

    /// Page size these flags ask for.
    pub const fn page_size(self) -> u64 {
        if self.contains(Self::LARGE) { LARGE_PAGE_SIZE } else { PAGE_SIZE }
    }
}

/// Checks that `[addr, addr + pages * page)` is a well-formed user range:
/// aligned, non-empty, no wrap, within `USER_START..USER_END`.
pub fn check_user_range(addr: u64, pages: u64, page: u64) -> Result<(), Error> {
    if pages == 0 {
        return Err(Error::InvalidArgument);
    }
    if !addr.is_multiple_of(page) {
        return Err(Error::Misaligned);
    }
    let len = pages.checked_mul(page).ok_or(Error::BadAddress)?;
    let end = addr.checked_add(len).ok_or(Error::BadAddress)?;
    if addr < USER_START || end > USER_END {
        return Err(Error::BadAddress);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_enforce_w_xor_x_and_known_bits() {
        assert_eq!(MapFlags::from_raw(0b11), Err(Error::WriteExecute));
        assert_eq!(MapFlags::from_raw(1 << 9), Err(Error::InvalidArgument));
        assert_eq!(MapFlags::from_raw(0b101), Ok(MapFlags::WRITE | MapFlags::ZERO));
        assert_eq!(MapFlags::LARGE.page_size(), LARGE_PAGE_SIZE);
    }

    #[test]
    fn user_ranges() {
        assert_eq!(check_user_range(USER_START, 1, PAGE_SIZE), Ok(()));
        assert_eq!(check_user_range(0, 1, PAGE_SIZE), Err(Error::BadAddress));
        assert_eq!(check_user_range(USER_START + 1, 1, PAGE_SIZE), Err(Error::Misaligned));
        assert_eq!(check_user_range(USER_START, 0, PAGE_SIZE), Err(Error::InvalidArgument));
        assert_eq!(check_user_range(USER_END - PAGE_SIZE, 2, PAGE_SIZE), Err(Error::BadAddress));
        assert_eq!(check_user_range(USER_START, u64::MAX / 2, PAGE_SIZE), Err(Error::BadAddress));
        assert_eq!(check_user_range(0xffff_8000_0000_0000, 1, PAGE_SIZE), Err(Error::BadAddress));
    }
}
