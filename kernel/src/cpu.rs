//! Per-CPU data: one cache-padded slot per CPU, reached through the GS base.
//!
//! Slot 0 is the boot CPU; application processors get 1, 2, ... in the
//! order the boot loader lists them. Fields that other CPUs write (the TLB
//! shootdown inbox, counters they read) are padded apart from the fields
//! only the owner writes, so the common paths never share a cache line.

use crate::arch::apic::Apic;
use crate::arch::gdt::CpuTables;
use crate::arch::percpu::{self, PerCpuHeader};
use crate::kcore::cpu_set::{CpuSet, MAX_CPUS};
use crate::mm::frame::FrameCache;
use crate::mm::tlb::Mailbox;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;
use spin::Once;

/// Counters a CPU bumps and others may read.
#[derive(Default)]
pub struct Counters {
    /// Timer interrupts taken.
    pub timer_ticks: AtomicU64,
    /// Ping IPIs answered.
    pub pings: AtomicU64,
    /// TLB shootdown requests served for other CPUs.
    pub shootdowns_served: AtomicU64,
    /// TLB shootdowns this CPU initiated.
    pub shootdowns_sent: AtomicU64,
}

/// The stacks a CPU runs on, each above an unmapped guard page.
#[derive(Clone, Copy, Debug)]
pub struct CpuStacks {
    /// Top of the CPU's kernel stack.
    pub kernel: u64,
    /// Top of the double-fault stack.
    pub double_fault: u64,
    /// Top of the NMI stack.
    pub nmi: u64,
    /// Top of the machine-check stack.
    pub machine_check: u64,
}

/// One CPU's data.
#[repr(C)]
pub struct Cpu {
    /// Must stay first: assembly reaches it at GS:0.
    pub header: PerCpuHeader,
    /// Index of this slot.
    index: AtomicUsize,
    /// x2APIC ID (from the MP response, confirmed by the CPU itself).
    pub apic_id: AtomicU32,
    /// ACPI processor UID.
    pub acpi_uid: AtomicU32,
    /// Set when the CPU finished bringing itself up.
    pub online: AtomicBool,
    /// GDT and TSS.
    pub tables: CpuTables,
    /// Local x2APIC driver.
    pub apic: Apic,
    /// Guarded stacks, set once by the boot CPU before the CPU starts.
    pub stacks: Once<CpuStacks>,
    /// Cache of free frames in front of the shared pool.
    pub frames: CachePadded<FrameCache>,
    /// TLB shootdown requests to and from this CPU.
    pub tlb: CachePadded<Mailbox>,
    /// Statistics.
    pub counters: CachePadded<Counters>,
    /// Work posted by another CPU (see `smp::run_on`).
    pub work: CachePadded<crate::smp::WorkSlot>,
    /// The scheduler.
    pub sched: CachePadded<crate::sched::CpuSched>,
}

impl Cpu {
    const fn new() -> Self {
        Self {
            header: PerCpuHeader::new(),
            index: AtomicUsize::new(0),
            apic_id: AtomicU32::new(0),
            acpi_uid: AtomicU32::new(0),
            online: AtomicBool::new(false),
            tables: CpuTables::new(),
            apic: Apic::new(),
            stacks: Once::new(),
            frames: CachePadded::new(FrameCache::new()),
            tlb: CachePadded::new(Mailbox::new()),
            counters: CachePadded::new(Counters {
                timer_ticks: AtomicU64::new(0),
                pings: AtomicU64::new(0),
                shootdowns_served: AtomicU64::new(0),
                shootdowns_sent: AtomicU64::new(0),
            }),
            work: CachePadded::new(crate::smp::WorkSlot::new()),
            sched: CachePadded::new(crate::sched::CpuSched::new()),
        }
    }

    /// This CPU's index.
    pub fn index(&self) -> usize {
        self.index.load(Ordering::Relaxed)
    }

    /// x2APIC ID.
    pub fn apic_id(&self) -> u32 {
        self.apic_id.load(Ordering::Relaxed)
    }
}

static CPUS: [CachePadded<Cpu>; MAX_CPUS] = [const { CachePadded::new(Cpu::new()) }; MAX_CPUS];

/// CPUs the machine has (as the boot loader found them), set at boot.
static PRESENT: AtomicUsize = AtomicUsize::new(1);
/// CPUs that completed bring-up.
static ONLINE: AtomicU64 = AtomicU64::new(0);

/// The data of the CPU running this code.
#[inline]
pub fn current() -> &'static Cpu {
    &CPUS[percpu::index()]
}

/// Index of the CPU running this code.
#[inline]
pub fn current_index() -> usize {
    percpu::index()
}

/// The data of CPU `index`.
pub fn get(index: usize) -> &'static Cpu {
    &CPUS[index]
}

/// The CPU with x2APIC ID `apic_id`, among those present.
pub fn by_apic_id(apic_id: u32) -> Option<&'static Cpu> {
    CPUS[..present_count()].iter().map(|c| &**c).find(|c| c.apic_id() == apic_id)
}

/// Makes slot `index` the current CPU's (sets the GS base). First thing on
/// every CPU.
pub fn install(index: usize) -> &'static Cpu {
    let cpu = &CPUS[index];
    cpu.index.store(index, Ordering::Relaxed);
    percpu::install(&cpu.header, index);
    cpu
}

/// Records how many CPUs the machine has (capped at `MAX_CPUS`).
pub fn set_present_count(n: usize) {
    PRESENT.store(n.clamp(1, MAX_CPUS), Ordering::Relaxed);
}

/// Number of CPUs present.
pub fn present_count() -> usize {
    PRESENT.load(Ordering::Relaxed)
}

/// Marks the current CPU online.
pub fn mark_online(cpu: &Cpu) {
    cpu.online.store(true, Ordering::Release);
    ONLINE.fetch_or(1 << cpu.index(), Ordering::AcqRel);
}

/// The CPUs that completed bring-up.
pub fn online() -> CpuSet {
    CpuSet(ONLINE.load(Ordering::Acquire))
}

/// Every present CPU's data.
pub fn all() -> impl Iterator<Item = &'static Cpu> {
    CPUS[..present_count()].iter().map(|c| &**c)
}
