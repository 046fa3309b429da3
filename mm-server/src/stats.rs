//! Per-CPU counters of the server, for the statistics requests and the
//! demo's table.

use core::sync::atomic::AtomicU64;

/// One CPU's counters.
#[derive(Default)]
pub struct CpuStats {
    /// Messages handled.
    pub requests: AtomicU64,
    /// Allocations served.
    pub allocs: AtomicU64,
    /// Frees served.
    pub frees: AtomicU64,
    /// Lazy faults served.
    pub faults: AtomicU64,
    /// Requests refused for quota.
    pub refusals: AtomicU64,
    /// Pages in that CPU's worker cache.
    pub cache: AtomicU64,
    /// Requests by kind: Alloc, Free, Protect, Reserve, Share, other.
    pub kinds: [AtomicU64; 6],
}

/// The slot of `kinds` a request label counts in.
pub fn kind_slot(label: u32) -> usize {
    use abi::mm::Request;
    match Request::from_label(label) {
        Ok(Request::Alloc) => 0,
        Ok(Request::Free) => 1,
        Ok(Request::Protect) => 2,
        Ok(Request::Reserve) => 3,
        Ok(Request::Share) => 4,
        _ => 5,
    }
}
