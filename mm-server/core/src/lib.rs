//! The memory server's pure logic, kept apart from its IPC and syscalls so
//! that `cargo test` checks it on the host: client badges, decoding and
//! validating requests, the per-client virtual-address allocator, and grouping frames
//! into runs that one mapping call can cover.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod badge;
pub mod layout;
pub mod request;
pub mod runs;
pub mod va;
