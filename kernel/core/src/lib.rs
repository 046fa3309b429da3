//! The kernel's pure logic: data structures and decisions that need no
//! hardware, kept apart so that `cargo test` checks them on the host.
//!
//! The kernel proper (`kernel/`) wires these to the machine. Nothing here
//! touches a register, a page table in memory or an interrupt.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
