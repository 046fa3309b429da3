//! The application binary interface between the kernel and user space.
//!
//! Every number that crosses the user/kernel boundary is defined here once:
//! syscall numbers and the register convention ([`syscall`]), error codes
//! ([`error`]), capability handles, kinds and rights ([`cap`]), IPC message
//! layout ([`ipc`]), mapping flags ([`mem`]), the handles every task starts
//! with ([`handles`]) and the memory server's protocol ([`mm`]). The kernel,
//! the memory server and user programs all depend on this crate, so they
//! cannot disagree; every conversion from a raw value rejects values it
//! does not know.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod cap;
pub mod error;
pub mod handles;
pub mod ipc;
pub mod mem;
pub mod mm;
pub mod syscall;

pub use error::{Error, SysResult};
