//! The memory server: a privileged user-space task that owns all free RAM and
//! serves frame and mapping requests from user tasks over capability IPC.
//!
//! Physical-memory policy (who gets which pages, quotas, lazy backing,
//! sharing) lives here rather than in the kernel.

#![no_std]
#![deny(unsafe_code)]
