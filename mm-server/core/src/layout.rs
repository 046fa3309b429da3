//! Where the memory server puts things in its clients' address spaces
//! (the windows are part of the protocol, in `abi::mm`) and in its own.

pub use abi::mm::{ALLOC_BASE, ALLOC_END, SHARE_BASE, SHARE_END};

/// The memory server's own heap, in its own address space (it grows from
/// here as the server maps frames of its own pool).
pub const SERVER_HEAP: u64 = 0x6000_0000_0000;
