//! Bringing every CPU up: each gets guarded stacks, its GDT/TSS, the IDT,
//! its x2APIC and timer, then reports itself online. The boot CPU releases
//! the application processors through the boot loader's MP `goto_address`,
//! waits for them with a bounded wait, names any that never arrived, and
//! checks that interrupts reach every CPU.
//!
//! Until the scheduler runs, an online AP idles in `hlt` and runs work
//! posted to it with [`run_on`] (tests and checks use this).

use crate::arch::apic::vector;
use crate::arch::gdt::TssStacks;
use crate::arch::{self, cpu::InterruptGuard};
use crate::boot::BootInfo;
use crate::cpu::{self, Cpu, CpuStacks};
use crate::kcore::cpu_set::MAX_CPUS;
use crate::mm::stack::{self, StackUse};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use limine::mp::Cpu as MpCpu;

/// How long the boot CPU waits for the APs (generous: under software
/// emulation with more vCPUs than host cores, a vCPU can stall for long).
const AP_WAIT_MICROS: u64 = 20_000_000;
/// How long to wait for a CPU to answer an IPI.
const IPI_WAIT_MICROS: u64 = 5_000_000;
/// Timer period.
pub const TIMER_PERIOD_MICROS: u64 = 10_000;

/// APIC timer ticks (divider 16) per timer period, measured by the boot CPU.
static TIMER_TICKS: AtomicU32 = AtomicU32::new(0);

/// A piece of posted work: a function and its argument.
type Work = (fn(u64), u64);

/// Work posted to a CPU: a function and its argument.
pub struct WorkSlot {
    work: spin::Mutex<Option<Work>>,
    done: AtomicU64,
}

impl WorkSlot {
    /// An empty slot.
    pub const fn new() -> Self {
        Self { work: spin::Mutex::new(None), done: AtomicU64::new(0) }
    }
}

impl Default for WorkSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// Allocates a CPU's guarded stacks.
fn alloc_stacks(index: usize) -> CpuStacks {
    let get = |u| stack::alloc(u).unwrap_or_else(|_| panic!("smp: no memory for cpu{index}'s stacks")).top();
    CpuStacks {
        kernel: get(StackUse::Cpu(index)),
        double_fault: get(StackUse::DoubleFault(index)),
        nmi: get(StackUse::Nmi(index)),
        machine_check: get(StackUse::MachineCheck(index)),
    }
}

/// Loads the current CPU's GDT/TSS (on its guarded stacks) and the IDT.
fn load_tables(cpu: &'static Cpu) {
    let s = cpu.stacks.get().expect("stacks are allocated before tables are loaded");
    cpu.tables.load(TssStacks { kernel: s.kernel, double_fault: s.double_fault, nmi: s.nmi, machine_check: s.machine_check });
    arch::idt::load();
}

/// Prepares the boot CPU's guarded stacks and loads its tables on them.
pub fn init_boot_cpu() {
    let cpu = cpu::current();
    cpu.stacks.call_once(|| alloc_stacks(0));
    load_tables(cpu);
}

/// Enables the current CPU's x2APIC and, once calibrated, its timer.
fn init_local_apic(cpu: &Cpu) {
    if let Err(e) = cpu.apic.init_local() {
        panic!(
            "apic: cpu{} cannot use its local APIC in x2APIC mode ({e}). Under QEMU this needs version 8.0 or newer with -cpu max",
            cpu.index()
        );
    }
    let id = cpu.apic.id();
    let expected = cpu.apic_id();
    if cpu.index() != 0 && id != expected {
        log::warn!("apic: cpu{} reports x2APIC id {id}, the boot loader said {expected}", cpu.index());
    }
    cpu.apic_id.store(id, Ordering::Relaxed);
}

/// Calibrates the APIC timer against the TSC and starts it on the boot CPU.
pub fn init_boot_apic() {
    let cpu = cpu::current();
    init_local_apic(cpu);
    let tsc_per_period = TIMER_PERIOD_MICROS * crate::time::tsc_per_micro();
    let (timer, tsc) = cpu.apic.measure_timer(tsc_per_period);
    let ticks = (timer * tsc_per_period / tsc.max(1)).clamp(1, u32::MAX as u64) as u32;
    TIMER_TICKS.store(ticks, Ordering::Relaxed);
    log::info!(
        "apic: cpu0 x2APIC id {}, timer {} kHz (divider 16), tick every {} ms",
        cpu.apic_id(),
        ticks as u64 * 1000 / TIMER_PERIOD_MICROS,
        TIMER_PERIOD_MICROS / 1000
    );
    cpu.apic.start_periodic_timer(ticks);
}

/// Releases the application processors and waits for them. Returns how
/// many CPUs are online.
pub fn start_aps(boot: &BootInfo) -> usize {
    let Some(mp) = boot.mp else {
        log::warn!("smp: the boot loader gave no MP response; running on the boot CPU only");
        return 1;
    };
    if !mp.flags().contains(limine::mp::ResponseFlags::X2APIC) {
        log::info!("smp: the boot loader left x2APIC mode to the kernel");
    }
    let bsp = mp.bsp_lapic_id();
    cpu::get(0).apic_id.store(bsp, Ordering::Relaxed);
    let mut next = 1;
    let mut released: [Option<&'static MpCpu>; MAX_CPUS] = [None; MAX_CPUS];
    for info in mp.cpus() {
        if info.lapic_id == bsp {
            cpu::get(0).acpi_uid.store(info.id, Ordering::Relaxed);
            continue;
        }
        if next >= MAX_CPUS {
            log::warn!("smp: ignoring cpu with x2APIC id {}: the kernel drives at most {MAX_CPUS} CPUs", info.lapic_id);
            continue;
        }
        let c = cpu::get(next);
        c.apic_id.store(info.lapic_id, Ordering::Relaxed);
        c.acpi_uid.store(info.id, Ordering::Relaxed);
        c.stacks.call_once(|| alloc_stacks(next));
        released[next] = Some(info);
        next += 1;
    }
    cpu::set_present_count(next);
    for (index, info) in released.iter().enumerate() {
        if let Some(info) = info {
            info.extra.store(index as u64, Ordering::Release);
            info.goto_address.write(ap_entry);
        }
    }
    let present = next;
    crate::time::wait_until(AP_WAIT_MICROS, || cpu::online().len() == present);
    let online = cpu::online();
    for index in 1..present {
        if !online.contains(index) {
            log::error!(
                "smp: cpu{index} (x2APIC id {}) never came online within {} s",
                cpu::get(index).apic_id(),
                AP_WAIT_MICROS / 1_000_000
            );
        }
    }
    online.len()
}

/// Compares the boot loader's CPU list with the MADT's and logs every
/// difference.
pub fn cross_check_madt(boot: &BootInfo) {
    let Some(rsdp) = boot.rsdp_phys else {
        log::warn!("acpi: no RSDP from the boot loader; cannot cross-check the CPU list");
        return;
    };
    let madt = match crate::acpi::madt_cpus(rsdp) {
        Ok(m) => m,
        Err(e) => {
            log::warn!("acpi: cannot read the MADT ({e:?}); CPU list not cross-checked");
            return;
        }
    };
    let usable = madt.iter().filter(|c| c.usable).count();
    log::info!("acpi: MADT lists {} processors ({usable} usable)", madt.len());
    let mut mismatches = 0;
    for c in cpu::all() {
        match madt.iter().find(|m| m.apic_id == c.apic_id()) {
            Some(m) if m.uid == c.acpi_uid.load(Ordering::Relaxed) => {}
            Some(m) => {
                mismatches += 1;
                log::warn!(
                    "acpi: cpu{} (APIC id {}) has ACPI UID {} in the MADT but {} from the boot loader",
                    c.index(),
                    c.apic_id(),
                    m.uid,
                    c.acpi_uid.load(Ordering::Relaxed)
                );
            }
            None => {
                mismatches += 1;
                log::warn!("acpi: cpu{} (APIC id {}) is not in the MADT", c.index(), c.apic_id());
            }
        }
    }
    for m in madt.iter().filter(|m| m.usable) {
        if cpu::by_apic_id(m.apic_id).is_none() {
            mismatches += 1;
            log::warn!("acpi: MADT processor UID {} (APIC id {}) was not started by the boot loader", m.uid, m.apic_id);
        }
    }
    if mismatches == 0 {
        log::info!("acpi: MADT and boot loader agree on all {} CPUs", cpu::present_count());
    }
}

extern "C" fn ap_entry(info: &MpCpu) -> ! {
    let index = info.extra.load(Ordering::Acquire) as usize;
    let cpu = cpu::install(index);
    // Before anything else: the kernel's page tables.
    crate::mm::kernel_space::switch_to_kernel_root();
    arch::cpu::enable_paging_protections();
    crate::mm::stack::enter_cpu_stack(cpu, ap_main, index as u64)
}

extern "C" fn ap_main(index: u64) -> ! {
    let cpu = cpu::get(index as usize);
    load_tables(cpu);
    init_local_apic(cpu);
    cpu.apic.start_periodic_timer(TIMER_TICKS.load(Ordering::Relaxed));
    crate::sched::init_this_cpu();
    cpu::mark_online(cpu);
    log::info!(
        "smp: cpu{index} online (x2APIC id {}, ACPI UID {}) on the kernel's page tables (root {:#x})",
        cpu.apic_id(),
        cpu.acpi_uid.load(Ordering::Relaxed),
        arch::cpu::current_root()
    );
    crate::sched::idle_loop()
}

/// Runs work posted to this CPU, if any (called by the idle thread with
/// interrupts masked; the work runs with them on). Returns whether it ran.
pub fn run_posted_work(cpu: &'static Cpu) -> bool {
    let work = cpu.work.work.lock().take();
    match work {
        Some((f, arg)) => {
            arch::cpu::enable_interrupts();
            f(arg);
            cpu.work.done.fetch_add(1, Ordering::Release);
            true
        }
        None => false,
    }
}

/// Why work could not be posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostError {
    /// The CPU is not online.
    Offline,
    /// The CPU has unfinished posted work.
    Busy,
}

/// Posts `f(arg)` to run on CPU `index` (not the current one) and wakes it.
/// Returns a ticket for [`wait_done`].
pub fn run_on(index: usize, f: fn(u64), arg: u64) -> Result<u64, PostError> {
    if !cpu::online().contains(index) || index == cpu::current_index() {
        return Err(PostError::Offline);
    }
    let target = cpu::get(index);
    let ticket = {
        let _masked = InterruptGuard::new();
        let mut slot = target.work.work.lock();
        if slot.is_some() {
            return Err(PostError::Busy);
        }
        *slot = Some((f, arg));
        target.work.done.load(Ordering::Acquire) + 1
    };
    arch::apic::send_ipi_fast(target.apic_id(), vector::PING);
    Ok(ticket)
}

/// Waits until CPU `index` finished the work with `ticket`.
pub fn wait_done(index: usize, ticket: u64, timeout_micros: u64) -> bool {
    let target = cpu::get(index);
    crate::time::wait_until(timeout_micros, || target.work.done.load(Ordering::Acquire) >= ticket)
}

fn ping_neighbour(next: u64) {
    let target = cpu::get(next as usize);
    let before = target.counters.pings.load(Ordering::Acquire);
    arch::apic::send_ipi_fast(target.apic_id(), vector::PING);
    if !crate::time::wait_until(IPI_WAIT_MICROS, || target.counters.pings.load(Ordering::Acquire) > before) {
        log::error!("smp: cpu{} got no answer from cpu{next} to an IPI", cpu::current_index());
    }
}

/// Checks that an IPI from every online CPU reaches the next one (the boot
/// CPU pings each AP; each AP pings its successor, the last one the boot
/// CPU). Returns whether every IPI was answered.
pub fn check_ipis() -> bool {
    let online = cpu::online();
    let cpus: alloc::vec::Vec<usize> = online.iter().collect();
    let mut ok = true;
    for &c in cpus.iter().skip(1) {
        let target = cpu::get(c);
        let before = target.counters.pings.load(Ordering::Acquire);
        arch::apic::send_ipi_fast(target.apic_id(), vector::PING);
        if !crate::time::wait_until(IPI_WAIT_MICROS, || target.counters.pings.load(Ordering::Acquire) > before) {
            log::error!("smp: cpu{c} did not answer an IPI from cpu0");
            ok = false;
        }
    }
    for (i, &c) in cpus.iter().enumerate().skip(1) {
        let next = cpus[(i + 1) % cpus.len()];
        let before = cpu::get(next).counters.pings.load(Ordering::Acquire);
        match run_on(c, ping_neighbour, next as u64) {
            Ok(ticket) if wait_done(c, ticket, 2 * IPI_WAIT_MICROS) => {
                if cpu::get(next).counters.pings.load(Ordering::Acquire) <= before {
                    ok = false;
                }
            }
            _ => {
                log::error!("smp: cpu{c} did not run the IPI check");
                ok = false;
            }
        }
    }
    if ok {
        log::info!("smp: IPIs reach every CPU (cpu0 to each AP, and each AP to the next)");
    }
    ok
}
