//! The parts of the loader that do not touch the machine.
//!
//! The UEFI application (`loader/`) reads files, allocates memory, builds page
//! tables and starts CPUs; every decision it takes on the way — which words
//! of the kernel image are requests, whether an ELF file is loadable, what a
//! UEFI memory descriptor becomes in the Limine memory map, which CPUs the
//! MADT lists, which physical ranges the higher-half direct map covers — is
//! made by a pure function here, so that `cargo test` on the host can check
//! it without QEMU.
//!
//! Everything here is `no_std` with `alloc`, like the loader itself.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod acpi;
pub mod devpath;
pub mod kernel_elf;
pub mod memmap;
pub mod paging;
pub mod protocol;
pub mod requests;
pub mod time;
