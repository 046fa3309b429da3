//! Where the memory server puts things in its clients' address spaces and
//! in its own.

/// Client allocations and lazy reservations: 16 TiB .. 64 TiB.
pub const ALLOC_BASE: u64 = 0x1000_0000_0000;
/// End of the allocation window.
pub const ALLOC_END: u64 = 0x4000_0000_0000;
/// Pages shared into a task land here (one window for every task, so two
/// shares never collide): 80 TiB .. 96 TiB.
pub const SHARE_BASE: u64 = 0x5000_0000_0000;
/// End of the share window.
pub const SHARE_END: u64 = 0x6000_0000_0000;
/// The memory server's own heap, in its own address space.
pub const SERVER_HEAP: u64 = 0x6000_0000_0000;
