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
}
