//! The MP feature: which CPUs to start (from the MADT), their
//! `limine_mp_info` structures and stacks, prepared before ExitBootServices;
//! and, after it, the INIT-SIPI-SIPI sequence that brings each AP through
//! the trampoline to its parking loop.
//!
//! APs are started one at a time: the trampoline has one set of per-AP
//! fields, and an AP reports "started" only after it has taken its stack and
//! info pointer from them. An AP that does not report within a few seconds is
//! sent INIT again (so it cannot wake up later on a reused stack), left out of
//! the response and reported on the serial console.

use crate::arch::{self, Clock, Features};
use crate::fail::Result;
use crate::mem::{self, Arena, hhdm_ptr};
use crate::trampoline::TrampolineData;
use crate::{say, warn};
use alloc::vec::Vec;
use loader_core::acpi::Madt;
use loader_core::protocol::{MpInfo, MpResponse};

/// How long an AP may take from its start-up IPI to its parking loop. Under
/// emulation with more virtual CPUs than host cores a vCPU can be descheduled
/// for a while, so this is generous.
const AP_TIMEOUT_US: u64 = 3_000_000;

/// One CPU of the response.
struct Cpu {
    apic_id: u32,
    info: *mut MpInfo,
    stack_top: u64,
    is_bsp: bool,
}

/// Everything needed to start the APs after ExitBootServices.
pub struct Mp {
    cpus: Vec<Cpu>,
    response: *mut MpResponse,
    pointers: *mut u64,
    /// Whether the local APICs run in x2APIC mode.
    pub x2apic: bool,
    lapic_base: u64,
    trampoline_phys: Option<u64>,
}

/// Decides which CPUs to report and allocates their structures and stacks.
/// `trampoline_phys` is `None` when no page below 1 MiB could be had; the
/// APs then stay unstarted.
pub fn prepare(
    arena: &mut Arena,
    madt: Option<&Madt>,
    features: &Features,
    want_x2apic: bool,
    stack_size: u64,
    trampoline_phys: Option<u64>,
) -> Result<(Mp, u64)> {
    // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU.
    let apic_base = unsafe { arch::rdmsr(arch::MSR_APIC_BASE) };
    let already_x2apic = apic_base & arch::APIC_BASE_X2APIC != 0;
    let x2apic = already_x2apic || (want_x2apic && features.x2apic);
    let bsp_id = arch::apic_id(features, x2apic);

    let mut list: Vec<(u32, u32)> = Vec::new(); // (processor UID, APIC ID)
    if let Some(madt) = madt {
        for cpu in &madt.cpus {
            if !x2apic && cpu.apic_id > 0xfe && cpu.apic_id != bsp_id {
                warn!("CPU with APIC ID {} needs x2APIC mode, which is not in use; it is left out", cpu.apic_id);
                continue;
            }
            list.push((cpu.processor_uid, cpu.apic_id));
        }
    }
    if !list.iter().any(|&(_, id)| id == bsp_id) {
        list.insert(0, (0, bsp_id));
    }
    if trampoline_phys.is_none() && list.len() > 1 {
        warn!("no free page below 1 MiB for the AP start-up code; only the boot CPU is reported");
        list.retain(|&(_, id)| id == bsp_id);
    }

    let infos = arena
        .slice(list.len(), MpInfo { processor_id: 0, lapic_id: 0, reserved: 0, goto_address: 0, extra_argument: 0 })?;
    let pointers = arena.slice(list.len(), 0u64)?;
    let response = arena.put(MpResponse { revision: 0, flags: 0, bsp_lapic_id: bsp_id, cpu_count: 0, cpus: 0 })?;
    let mut cpus = Vec::with_capacity(list.len());
    for (info, &(uid, apic_id)) in infos.iter_mut().zip(&list) {
        info.processor_id = uid;
        info.lapic_id = apic_id;
        let is_bsp = apic_id == bsp_id;
        let stack_top = if is_bsp {
            0
        } else {
            let stack = mem::allocate(mem::RECLAIMABLE, stack_size, None, "an AP stack")?;
            mem::hhdm(stack.phys + stack.len() as u64)
        };
        cpus.push(Cpu { apic_id, info, stack_top, is_bsp });
    }
    let lapic_base = apic_base & 0x000f_ffff_ffff_f000;
    say!(
        "{} CPU{} (BSP APIC ID {bsp_id}), x2APIC {}",
        cpus.len(),
        if cpus.len() == 1 { "" } else { "s" },
        if x2apic { "on" } else { "off" }
    );
    let mp = Mp { cpus, response, pointers: pointers.as_mut_ptr(), x2apic, lapic_base, trampoline_phys };
    Ok((mp, hhdm_ptr(response)))
}

impl Mp {
    /// Puts the BSP's local APIC in x2APIC mode if that was chosen. Called
    /// after ExitBootServices.
    pub fn enable_x2apic_on_bsp(&self) {
        if !self.x2apic {
            return;
        }
        // SAFETY: x2APIC was chosen only if the CPU supports it (or it was
        // already on); switching from xAPIC to x2APIC with the APIC enabled
        // is the architectural way, and nothing uses the APIC now.
        unsafe {
            let base = arch::rdmsr(arch::MSR_APIC_BASE);
            if base & arch::APIC_BASE_X2APIC == 0 {
                arch::wrmsr(arch::MSR_APIC_BASE, base | arch::APIC_BASE_ENABLE | arch::APIC_BASE_X2APIC);
            }
        }
    }

    fn send_ipi(&self, apic_id: u32, command: u32, clock: &Clock) {
        if self.x2apic {
            // SAFETY: the BSP's APIC is in x2APIC mode, where the ICR is
            // this MSR; the command is an INIT or start-up IPI.
            unsafe { arch::wrmsr(arch::MSR_X2APIC_ICR, (u64::from(apic_id) << 32) | u64::from(command)) };
            return;
        }
        let icr_low = self.lapic_base + 0x300;
        let icr_high = self.lapic_base + 0x310;
        // SAFETY: the local APIC's registers are at `lapic_base` (from
        // IA32_APIC_BASE) and UEFI's page tables, still in use, map them.
        unsafe {
            clock.wait_until(10_000, || arch::mmio_read(icr_low) & (1 << 12) == 0);
            arch::mmio_write(icr_high, apic_id << 24);
            arch::mmio_write(icr_low, command);
            clock.wait_until(10_000, || arch::mmio_read(icr_low) & (1 << 12) == 0);
        }
    }

    /// Starts every AP and fills the MP response. Called after
    /// ExitBootServices, on UEFI's page tables, with interrupts off.
    pub fn start_aps(&mut self, data: *mut TrampolineData, clock: &Clock) {
        let mut count = 0usize;
        let vector = self.trampoline_phys.map_or(0, |p| (p >> 12) as u32);
        for index in 0..self.cpus.len() {
            let cpu = &self.cpus[index];
            let started = cpu.is_bsp || self.start_one(cpu, vector, data, clock);
            if started {
                // SAFETY: `pointers` has one slot per CPU (arena memory) and
                // `count <= index`.
                unsafe { self.pointers.add(count).write(hhdm_ptr(cpu.info)) };
                count += 1;
            } else {
                crate::console::urgent(format_args!(
                    "warning: the CPU with APIC ID {} did not start within {} s; it is left out of the MP response",
                    cpu.apic_id,
                    AP_TIMEOUT_US / 1_000_000
                ));
            }
        }
        // SAFETY: `response` is the arena-allocated MP response, written by
        // nobody else.
        unsafe {
            let response = &mut *self.response;
            response.flags = u32::from(self.x2apic);
            response.cpu_count = count as u64;
            response.cpus = hhdm_ptr(self.pointers);
        }
    }

    fn start_one(&self, cpu: &Cpu, vector: u32, data: *mut TrampolineData, clock: &Clock) -> bool {
        let started = move || {
            // SAFETY: `data` points at the trampoline page's data block,
            // identity-mapped; the AP writes this field, so read it volatile.
            unsafe { core::ptr::read_volatile(&raw const (*data).ap_started) != 0 }
        };
        // SAFETY: as above; no AP is between start-up and "started" now, so
        // nobody else reads or writes these fields.
        unsafe {
            core::ptr::write_volatile(&raw mut (*data).ap_stack_top, cpu.stack_top);
            core::ptr::write_volatile(&raw mut (*data).ap_info, hhdm_ptr(cpu.info));
            core::ptr::write_volatile(&raw mut (*data).ap_started, 0);
        }
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.send_ipi(cpu.apic_id, 0x4500, clock); // INIT
        clock.delay(10_000);
        self.send_ipi(cpu.apic_id, 0x4600 | vector, clock); // start-up
        if clock.wait_until(1_000, started) {
            return true;
        }
        self.send_ipi(cpu.apic_id, 0x4600 | vector, clock); // second start-up
        if clock.wait_until(AP_TIMEOUT_US, started) {
            return true;
        }
        // Put it back to sleep so it cannot run the trampoline later.
        self.send_ipi(cpu.apic_id, 0x4500, clock);
        false
    }
}
