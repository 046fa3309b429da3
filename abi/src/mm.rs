//! The memory server's protocol: requests clients send with `Call` on
//! their [`MEMORY`](crate::handles::MEMORY) endpoint, and its replies.
//!
//! Every reply has label 0 on success or an [`Error`](crate::Error) code.
//! `docs/mm-protocol.md` describes each request in full.

use crate::error::Error;

/// Request labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Request {
    /// `(pages, flags)` → `w0` address: zeroed pages mapped into the caller.
    /// Flags: WRITE, EXEC (never both), LARGE (2 MiB pages), CONTIGUOUS.
    Alloc = 1,
    /// `(address, pages)`: unmaps and frees a region the caller was given
    /// (allocated or reserved) or a part of it (the rest stays), or drops
    /// pages shared into it (the whole share).
    Free = 2,
    /// `(address, pages, flags)`: changes protection (W^X enforced).
    Protect = 3,
    /// `(pages, flags)` → `w0` address: reserves a range backed lazily;
    /// each page is mapped (zeroed) on first touch.
    Reserve = 4,
    /// `(address, pages, flags)` + capability: a copy of the target task's
    /// memory capability (its badged `MEMORY` endpoint; a GRANT-only copy
    /// is enough and lets the holder do nothing else). Maps the caller's
    /// whole region into the target too (WRITE in flags: read-write, else
    /// read-only). → `w0` the address in the target.
    Share = 5,
    /// → `w0` pages the caller holds, `w1` its quota, `w2` lazy faults
    /// served for it, `w3` free pages in the server, `w4` pages in total.
    Stats = 6,
    /// `(cpu)` → per-CPU counters of the server: `w0` requests served on
    /// that CPU, `w1` allocations, `w2` frees, `w3` faults served, `w4`
    /// quota refusals, `w5` pages in that CPU's cache.
    CpuStats = 7,
    /// → the server's books, in 4 KiB pages: `w0` pages the kernel gave
    /// it, `w1` free (pool and worker caches), `w2` owned by clients
    /// (backing their regions), `w3` held by the server itself (its heap),
    /// `w4` clients registered. At a quiet moment `w0 = w1 + w2 + w3`.
    Books = 8,
    /// `(cpu)` → requests of each kind handled on that CPU: `w0` Alloc,
    /// `w1` Free, `w2` Protect, `w3` Reserve, `w4` Share, `w5` any other
    /// (statistics, registration), refused ones included.
    KindStats = 9,
    /// (holders of the unbadged capability only) `(quota pages)` +
    /// capability: the new client's address space (MAP). → `w0` the
    /// client's badge, and a capability: its badged `MEMORY` endpoint
    /// (SEND, GRANT), to give to the client and to set as its pager.
    RegisterClient = 16,
}

impl Request {
    /// Every request.
    pub const ALL: [Request; 10] = [
        Self::Alloc,
        Self::Free,
        Self::Protect,
        Self::Reserve,
        Self::Share,
        Self::Stats,
        Self::CpuStats,
        Self::Books,
        Self::KindStats,
        Self::RegisterClient,
    ];

    /// Decodes a label.
    pub fn from_label(label: u32) -> Result<Self, Error> {
        Self::ALL.iter().copied().find(|r| *r as u32 == label).ok_or(Error::InvalidArgument)
    }
}

/// Where the server puts a client's allocations and reservations:
/// 16 TiB .. 64 TiB of its address space.
pub const ALLOC_BASE: u64 = 0x1000_0000_0000;
/// End of the allocation window.
pub const ALLOC_END: u64 = 0x4000_0000_0000;
/// Where pages shared into a client land (its own window, apart from its
/// allocations): 80 TiB .. 96 TiB.
pub const SHARE_BASE: u64 = 0x5000_0000_0000;
/// End of the share window.
pub const SHARE_END: u64 = 0x6000_0000_0000;

/// The most pages one request may ask for (1 GiB), so a request's cost
/// and the server's bookkeeping stay bounded.
pub const MAX_REQUEST_PAGES: u64 = 1 << 18;

/// Reply label for success.
pub const REPLY_OK: u32 = 0;

/// Turns a reply label into a result.
pub fn reply_status(label: u32) -> Result<(), Error> {
    match Error::from_code(label as u64) {
        Some(r) => r,
        None => Err(Error::InvalidArgument),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        for r in Request::ALL {
            assert_eq!(Request::from_label(r as u32), Ok(r));
        }
        assert_eq!(Request::from_label(0), Err(Error::InvalidArgument));
        assert_eq!(Request::from_label(99), Err(Error::InvalidArgument));
        assert_eq!(reply_status(0), Ok(()));
        assert_eq!(reply_status(Error::QuotaExceeded as u32), Err(Error::QuotaExceeded));
    }
}
