//! A UEFI application that boots the kernel over the Limine boot protocol
//! (base revisions 1 to 3) on x86-64.
//!
//! It reads `limine.conf` from its own volume, loads the kernel ELF and its
//! modules, answers the kernel's requests, builds the handoff page tables,
//! exits boot services, starts the APs itself and jumps to the kernel. See
//! `docs/boot.md` for the whole boot path. The machine-independent decisions
//! live in the `loader-core` crate, where host tests cover them.
#![no_std]
#![no_main]

extern crate alloc;

mod acpi;
mod arch;
mod boot;
mod config;
mod console;
mod fail;
mod fs;
mod handoff;
mod kernel;
mod mem;
mod modules;
mod paging;
mod responses;
mod smp;
mod trampoline;

use uefi::prelude::*;

#[entry]
fn main() -> Status {
    console::init();
    match boot::boot() {
        Ok(never) => match never {},
        Err(error) => fail::fail(error),
    }
}
