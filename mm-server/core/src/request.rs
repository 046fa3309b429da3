//! Decoding and validating a request before anything changes: a request
//! that passes is well-formed (known flags, W^X, sizes within bounds,
//! addresses in the right window, capabilities present where needed), so
//! the server only has to check it against its state.

use crate::layout::{ALLOC_BASE, ALLOC_END, SHARE_BASE, SHARE_END};
use abi::cap::Handle;
use abi::mem::{MapFlags, LARGE_PAGE_SIZE, PAGE_SIZE};
use abi::mm::{Request, MAX_REQUEST_PAGES};
use abi::Error;


/// A validated request (fields as in `docs/mm-protocol.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Req {
    /// Allocate `pages` pages (2 MiB ones if `flags` has LARGE).
    Alloc { pages: u64, flags: MapFlags },
    /// Free the region at `addr` of `pages` 4 KiB pages.
    Free { addr: u64, pages: u64 },
    /// Change the protection of `pages` pages at `addr`.
    Protect { addr: u64, pages: u64, flags: MapFlags },
    /// Reserve `pages` lazily backed pages.
    Reserve { pages: u64, flags: MapFlags },
    /// Share `pages` pages at `addr` into the address space `target`.
    Share { addr: u64, pages: u64, writable: bool, target: Handle },
    /// The caller's statistics.
    Stats,
    /// The server's counters for `cpu`.
    CpuStats { cpu: u64 },
    /// The server's books.
    Books,
    /// The server's per-kind counters for `cpu`.
    KindStats { cpu: u64 },
    /// Register a client with `quota` pages and its address space.
    RegisterClient { quota: u64, space: Handle },
}

/// The 4 KiB pages a request for `pages` pages with `flags` covers.
pub fn small_pages(pages: u64, flags: MapFlags) -> Option<u64> {
    pages.checked_mul(flags.page_size() / PAGE_SIZE)
}

fn count(pages: u64, flags: MapFlags) -> Result<u64, Error> {
    if pages == 0 {
        return Err(Error::InvalidArgument);
    }
    match small_pages(pages, flags) {
        Some(n) if n <= MAX_REQUEST_PAGES => Ok(pages),
        _ => Err(Error::OutOfRange),
    }
}

/// A range of `pages` 4 KiB pages at `addr` lying in one of `windows`.
fn range(addr: u64, pages: u64, windows: &[(u64, u64)]) -> Result<(u64, u64), Error> {
    count(pages, MapFlags::empty())?;
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Error::Misaligned);
    }
    let end = addr.checked_add(pages * PAGE_SIZE).ok_or(Error::BadAddress)?;
    if !windows.iter().any(|&(base, limit)| addr >= base && end <= limit) {
        return Err(Error::BadAddress);
    }
    Ok((addr, pages))
}

/// Where a client's own regions are.
const OWN: &[(u64, u64)] = &[(ALLOC_BASE, ALLOC_END)];
/// Where anything the server gave a client is: its regions and the pages
/// shared into it.
const ANY: &[(u64, u64)] = &[(ALLOC_BASE, ALLOC_END), (SHARE_BASE, SHARE_END)];

/// Decodes a request with `label` and payload `w`, carrying capability
/// `cap` if any; `control` says whether it came through the unbadged
/// (registering) capability.
pub fn decode(label: u32, w: &[u64; 6], cap: Option<Handle>, control: bool) -> Result<Req, Error> {
    let req = Request::from_label(label)?;
    Ok(match req {
        Request::Alloc => {
            let flags = MapFlags::from_raw(w[1])?;
            Req::Alloc { pages: count(w[0], flags)?, flags: flags - MapFlags::ZERO }
        }
        Request::Free => {
            let (addr, pages) = range(w[0], w[1], ANY)?;
            Req::Free { addr, pages }
        }
        Request::Protect => {
            let flags = MapFlags::from_raw(w[2])?;
            if flags.intersects(MapFlags::ZERO | MapFlags::CONTIGUOUS | MapFlags::LARGE) {
                return Err(Error::InvalidArgument);
            }
            let (addr, pages) = range(w[0], w[1], OWN)?;
            Req::Protect { addr, pages, flags }
        }
        Request::Reserve => {
            let flags = MapFlags::from_raw(w[1])?;
            if flags.intersects(MapFlags::CONTIGUOUS | MapFlags::LARGE) {
                return Err(Error::InvalidArgument);
            }
            Req::Reserve { pages: count(w[0], flags)?, flags: flags - MapFlags::ZERO }
        }
        Request::Share => {
            let flags = MapFlags::from_raw(w[2])?;
            if !(flags - MapFlags::WRITE).is_empty() {
                return Err(Error::InvalidArgument);
            }
            let (addr, pages) = range(w[0], w[1], OWN)?;
            let target = cap.ok_or(Error::InvalidArgument)?;
            Req::Share { addr, pages, writable: flags.contains(MapFlags::WRITE), target }
        }
        Request::Stats => Req::Stats,
        Request::CpuStats => {
            if w[0] >= 64 {
                return Err(Error::OutOfRange);
            }
            Req::CpuStats { cpu: w[0] }
        }
        Request::Books => Req::Books,
        Request::KindStats => {
            if w[0] >= 64 {
                return Err(Error::OutOfRange);
            }
            Req::KindStats { cpu: w[0] }
        }
        Request::RegisterClient => {
            if !control {
                return Err(Error::InsufficientRights);
            }
            if w[0] == 0 {
                return Err(Error::InvalidArgument);
            }
            let space = cap.ok_or(Error::InvalidArgument)?;
            Req::RegisterClient { quota: w[0], space }
        }
    })
}

/// Bytes a large page spans (re-exported for the server).
pub const LARGE: u64 = LARGE_PAGE_SIZE;

#[cfg(test)]
mod tests {
    use super::*;

    fn w(v: &[u64]) -> [u64; 6] {
        let mut a = [0; 6];
        a[..v.len()].copy_from_slice(v);
        a
    }

    const RW: u64 = 1;

    #[test]
    fn good_requests_decode() {
        assert_eq!(decode(1, &w(&[4, RW]), None, false), Ok(Req::Alloc { pages: 4, flags: MapFlags::WRITE }));
        assert_eq!(decode(2, &w(&[ALLOC_BASE, 4]), None, false), Ok(Req::Free { addr: ALLOC_BASE, pages: 4 }));
        assert_eq!(decode(6, &w(&[]), None, false), Ok(Req::Stats));
        assert_eq!(decode(2, &w(&[SHARE_BASE, 2]), None, false), Ok(Req::Free { addr: SHARE_BASE, pages: 2 }));
        let h = Handle::new(70, 0);
        assert_eq!(
            decode(5, &w(&[ALLOC_BASE, 1, RW]), Some(h), false),
            Ok(Req::Share { addr: ALLOC_BASE, pages: 1, writable: true, target: h })
        );
        assert_eq!(decode(16, &w(&[100]), Some(h), true), Ok(Req::RegisterClient { quota: 100, space: h }));
        assert_eq!(decode(8, &w(&[]), None, false), Ok(Req::Books));
    }

    #[test]
    fn bad_requests_get_their_error() {
        let h = Some(Handle::new(70, 0));
        /// label, words, capability, through the control capability, the error
        type Case = (u32, [u64; 6], Option<Handle>, bool, Error);
        let cases: [Case; 20] = [
            (0, w(&[]), None, false, Error::InvalidArgument),
            (99, w(&[]), None, false, Error::InvalidArgument),
            (1, w(&[0, RW]), None, false, Error::InvalidArgument),
            (1, w(&[MAX_REQUEST_PAGES + 1, RW]), None, false, Error::OutOfRange),
            (1, w(&[u64::MAX, RW]), None, false, Error::OutOfRange),
            (1, w(&[1, 0b11]), None, false, Error::WriteExecute),
            (1, w(&[1, 1 << 20]), None, false, Error::InvalidArgument),
            (1, w(&[MAX_REQUEST_PAGES, 1 | 8]), None, false, Error::OutOfRange),
            (2, w(&[ALLOC_BASE + 1, 1]), None, false, Error::Misaligned),
            (2, w(&[0xffff_8000_0000_0000, 1]), None, false, Error::BadAddress),
            (2, w(&[ALLOC_END - 4096, 2]), None, false, Error::BadAddress),
            (2, w(&[0x40_0000, 1]), None, false, Error::BadAddress),
            (3, w(&[ALLOC_BASE, 1, 4]), None, false, Error::InvalidArgument),
            (3, w(&[SHARE_BASE, 1, 0]), None, false, Error::BadAddress),
            (2, w(&[SHARE_END - 4096, 2]), None, false, Error::BadAddress),
            (5, w(&[ALLOC_BASE, 1, RW]), None, false, Error::InvalidArgument),
            (16, w(&[100]), h, false, Error::InsufficientRights),
            (16, w(&[0]), h, true, Error::InvalidArgument),
            (16, w(&[100]), None, true, Error::InvalidArgument),
            (7, w(&[64]), None, false, Error::OutOfRange),
        ];
        for (i, (label, words, cap, init, want)) in cases.into_iter().enumerate() {
            assert_eq!(decode(label, &words, cap, init), Err(want), "case {i}");
        }
    }
}
