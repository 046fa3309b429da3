//! The kernel's pure logic: data structures and decisions that need no
//! hardware, kept apart so that `cargo test` checks them on the host.
//!
//! The kernel proper (`kernel/`) wires these to the machine. Nothing here
//! touches a register, a page table in memory or an interrupt.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod cmdline;
pub mod cpu_set;
pub mod exception;
pub mod frame_bitmap;
pub mod layout;
pub mod lazy_tlb;
pub mod line_buf;
pub mod mem_kind;
pub mod page_fault;
pub mod range_map;
pub mod rng;
pub mod stats;
pub mod tlb_batch;
pub mod user_elf;

/// Bytes in a small page.
pub const PAGE_SIZE: u64 = 4096;
/// Bytes in a large (2 MiB) page.
pub const LARGE_PAGE_SIZE: u64 = 2 * 1024 * 1024;
/// Small pages per large page.
pub const PAGES_PER_LARGE: u64 = LARGE_PAGE_SIZE / PAGE_SIZE;
