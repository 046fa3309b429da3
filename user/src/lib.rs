//! The user-space runtime (entry point, syscall wrappers, heap backed by the
//! memory server) and the programs built on it: init, the demo, and the
//! stress and fuzz programs the tests boot.

#![no_std]
#![deny(unsafe_code)]
