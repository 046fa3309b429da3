//! Architecture support, chosen in this one place. Every architecture module
//! exports the same names; the rest of the kernel uses only `crate::arch::*`.
//!
//! This is one of the few places where `unsafe` is allowed: it is where the
//! kernel meets registers, descriptor tables and assembly.

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/mod.rs"]
mod imp;

pub use imp::*;
