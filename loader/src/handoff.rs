//! ExitBootServices and everything after it.
//!
//! By the time [`Handoff::run`] is called every file is loaded, every check
//! has passed and every byte the kernel will get is allocated, so nothing
//! after ExitBootServices can fail half-way: this module only converts the
//! final memory map into a buffer that already exists, masks the legacy
//! PICs and the I/O APICs, puts the BSP in the state the protocol specifies,
//! starts the APs, and jumps.

use crate::arch::{self, Clock, Features};
use crate::console;
use crate::mem::hhdm_ptr;
use crate::smp::Mp;
use crate::trampoline::{self, TrampolineData};
use alloc::vec::Vec;
use loader_core::acpi::MadtIoApic;
use loader_core::memmap::{self, Region};
use loader_core::protocol::{MemmapEntry, MemmapResponse};
use uefi::boot;
use uefi::mem::memory_map::MemoryMap;
use x86_64::registers::control::{Cr0, Cr0Flags};

/// Where the memory map response goes.
pub struct MemmapOut {
    /// The response (arena memory).
    pub response: &'static mut MemmapResponse,
    /// Room for the entries.
    pub entries: &'static mut [MemmapEntry],
    /// Room for the pointers to them.
    pub pointers: &'static mut [u64],
}

/// Everything the last steps need.
pub struct Handoff {
    /// The memory map response, when requested.
    pub memmap: Option<MemmapOut>,
    /// The APs to start, when MP was requested.
    pub mp: Option<Mp>,
    /// The I/O APICs to mask.
    pub io_apics: Vec<MadtIoApic>,
    /// The trampoline's data block (identity address).
    pub trampoline: *mut TrampolineData,
    /// HHDM address of the trampoline page.
    pub trampoline_hhdm: u64,
    /// Physical address of the handoff PML4.
    pub cr3: u64,
    /// CPU features.
    pub features: Features,
    /// The calibrated clock.
    pub clock: Clock,
}

impl Handoff {
    /// Exits boot services and enters the kernel.
    pub fn run(mut self) -> ! {
        // SAFETY: nothing the loader still uses depends on boot services:
        // files and protocols were closed, the memory for every remaining
        // step was allocated, and console output switches to COM1 right
        // away. The memory map stays where it is (it is never freed).
        let map = unsafe { boot::exit_boot_services(None) };
        arch::cli();
        console::exited_boot_services();

        if let Some(out) = self.memmap.take() {
            let regions = map.entries().map(|d| Region { efi_type: d.ty.0, base: d.phys_start, pages: d.page_count });
            let count = match memmap::convert(regions, out.entries) {
                Ok(count) => count,
                Err(memmap::Overflow) => {
                    console::urgent(format_args!("warning: the memory map did not fit; its end is cut off"));
                    memmap::normalize(out.entries)
                }
            };
            for (slot, entry) in out.pointers.iter_mut().zip(out.entries.iter()).take(count) {
                *slot = hhdm_ptr(entry);
            }
            out.response.entry_count = count as u64;
            out.response.entries = hhdm_ptr(out.pointers.as_ptr());
        }
        core::mem::forget(map);

        mask_legacy_interrupts(&self.io_apics);
        self.set_cpu_state();
        if let Some(mp) = self.mp.as_mut() {
            mp.enable_x2apic_on_bsp();
            mp.start_aps(self.trampoline, &self.clock);
        }

        let target = self.trampoline_hhdm + trampoline::handoff_offset();
        // SAFETY: `cr3` holds the complete handoff tables: the kernel, the
        // HHDM (which covers the trampoline page and every structure the
        // kernel is given), and identity maps of `enter` and the trampoline
        // page; the trampoline data was filled before ExitBootServices. APs
        // are parked in HHDM memory or were sent back to INIT.
        unsafe { trampoline::enter(self.cr3, target, self.trampoline_hhdm) }
    }

    /// EFER.NXE, CR0.WP and the PAT, as the protocol specifies.
    fn set_cpu_state(&self) {
        // SAFETY: NXE is set only on CPUs that have it and before any table
        // that uses the NX bit is loaded; WP only affects supervisor writes
        // to read-only pages, which the loader does not make; the PAT value
        // keeps entry 0 write-back, which is what every mapping in use
        // selects.
        unsafe {
            if self.features.nx {
                let efer = arch::rdmsr(arch::MSR_EFER);
                arch::wrmsr(arch::MSR_EFER, efer | arch::EFER_NXE);
            }
            Cr0::update(|flags| *flags |= Cr0Flags::WRITE_PROTECT);
            if self.features.pat {
                arch::wrmsr(arch::MSR_PAT, arch::PAT_VALUE);
            }
        }
    }
}

/// Masks the two 8259 PICs and every I/O APIC redirection entry with fixed
/// or lowest-priority delivery.
fn mask_legacy_interrupts(io_apics: &[MadtIoApic]) {
    // SAFETY: ports 0x21 and 0xa1 are the 8259 interrupt mask registers;
    // masking every line is harmless with interrupts off and boot services
    // gone. Absent PICs ignore the writes.
    unsafe {
        arch::outb(0x21, 0xff);
        arch::outb(0xa1, 0xff);
    }
    for io_apic in io_apics {
        let base = u64::from(io_apic.address);
        let read = |reg: u32| {
            // SAFETY: `base` is an I/O APIC from the MADT, mapped by UEFI's
            // tables (still in use); IOREGSEL then IOWIN is its protocol.
            unsafe {
                arch::mmio_write(base, reg);
                arch::mmio_read(base + 0x10)
            }
        };
        let write = |reg: u32, value: u32| {
            // SAFETY: as for `read`.
            unsafe {
                arch::mmio_write(base, reg);
                arch::mmio_write(base + 0x10, value);
            }
        };
        let entries = ((read(1) >> 16) & 0xff) + 1;
        for i in 0..entries {
            let reg = 0x10 + 2 * i;
            let low = read(reg);
            let delivery = (low >> 8) & 0b111;
            if delivery <= 1 {
                write(reg, low | (1 << 16));
            }
        }
    }
}
