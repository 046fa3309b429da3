//! The application binary interface between the kernel and user space.
//!
//! Every number that crosses the user/kernel boundary is defined here once:
//! syscall numbers, the register convention, error codes, capability handles
//! and rights, message layouts and object kinds. The kernel, the memory server
//! and user programs all depend on this crate, so they cannot disagree; every
//! conversion from a raw value rejects values it does not know.

#![no_std]
#![deny(unsafe_code)]
