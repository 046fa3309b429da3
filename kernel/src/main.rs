//! Ferrite: an SMP-first microkernel.
//!
//! The boot CPU enters at [`kernel_entry`] on the boot loader's stack, sets
//! up what every later step relies on (per-CPU data, the log, exceptions,
//! memory), moves to its own guarded stack and continues in
//! [`boot_cpu_main`]: ACPI, the x2APIC, the application processors, and
//! finally the work the command line asks for.

#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

pub use kernel_core as kcore;

#[allow(unsafe_code)]
mod acpi;
#[allow(unsafe_code)]
mod arch;
mod bench;
#[allow(unsafe_code)]
mod boot;
mod cpu;
mod fatal;
mod ipc;
mod klog;
mod ktest;
#[allow(unsafe_code)]
mod mm;
mod modules;
#[allow(unsafe_code)]
mod object;
#[allow(unsafe_code)]
mod sched;
mod smp;
#[allow(unsafe_code)]
mod sync;
mod syscall;
mod time;
mod trap;
mod user;

use arch::io::{exit, ExitCode};

/// Ends the run: success or failure status to the host.
pub fn shutdown(success: bool) -> ! {
    exit(if success { ExitCode::Success } else { ExitCode::Failure })
}
use boot::BootInfo;
use core::sync::atomic::{AtomicU64, Ordering};

/// Options the kernel understands on its command line.
const KNOWN_OPTIONS: &[&str] = &["log", "test", "bench", "rounds", "run"];

/// Interrupt stacks for the boot CPU until its guarded ones exist.
#[repr(C, align(16))]
struct EarlyStack([u8; 16 * 1024]);
static mut EARLY_IST: [EarlyStack; 3] = [const { EarlyStack([0; 16 * 1024]) }; 3];

/// Boot time of the kernel's first instruction, for the boot summary.
static ENTRY_MICROS: AtomicU64 = AtomicU64::new(0);

/// The boot CPU's first Rust code (entered from `arch::entry`).
pub fn kernel_main() -> ! {
    // Per-CPU data first: logging and fault handling read it.
    let cpu0 = cpu::install(0);
    time::start();
    let early = &raw mut EARLY_IST;
    let ist_top = |i: usize| (early as u64) + ((i + 1) * core::mem::size_of::<EarlyStack>()) as u64;
    cpu0.tables.load(arch::gdt::TssStacks {
        kernel: ist_top(0),
        double_fault: ist_top(0),
        nmi: ist_top(1),
        machine_check: ist_top(2),
    });
    arch::idt::load();
    arch::cpu::enable_paging_protections();

    let boot = BootInfo::collect();
    let level = klog::level_from(boot::cmdline().get("log"));
    klog::init(level.unwrap_or(log::LevelFilter::Info));
    if let Err(bad) = level {
        log::warn!("kernel: unknown log level `{bad}` (use error, warn, info, debug or trace); using info");
    }
    time::calibrate();
    ENTRY_MICROS.store(time::micros_since_boot(), Ordering::Relaxed);
    log::info!("kernel: Ferrite {} starting on cpu0", env!("CARGO_PKG_VERSION"));
    log::info!("time: TSC runs at {} MHz", time::tsc_per_micro());
    boot.log_summary();
    for unknown in boot::cmdline().unknown(KNOWN_OPTIONS) {
        log::warn!("kernel: ignoring unknown command-line option `{unknown}`");
    }
    if !arch::cpu::has_nx() {
        panic!("kernel: this CPU lacks no-execute pages (NX), which the kernel requires");
    }

    mm::init(&boot);
    smp::init_boot_cpu();
    // The BootInfo moves to the heap so the new stack can reach it.
    let boot = alloc::boxed::Box::into_raw(alloc::boxed::Box::new(boot)) as u64;
    // Nothing on the loader's stack is used after the switch (the BootInfo
    // is boxed).
    mm::stack::enter_cpu_stack(cpu0, boot_cpu_main_trampoline, boot)
}

extern "C" fn boot_cpu_main_trampoline(boot: u64) -> ! {
    let boot = boot::take_boxed(boot);
    boot_cpu_main(*boot)
}

fn boot_cpu_main(boot: BootInfo) -> ! {
    let cpu0 = cpu::current();
    smp::init_boot_apic();
    cpu::mark_online(cpu0);
    arch::cpu::enable_interrupts();

    let online = smp::start_aps(&boot);
    smp::cross_check_madt(&boot);
    let ipis_ok = smp::check_ipis();
    modules::record(&boot);

    // Every AP left its loader stack and nothing reads the loader's
    // responses any more: its memory joins the free pool. If an AP never
    // came up it may still spin in loader memory, so keep that memory then.
    let present = cpu::present_count();
    if online == present {
        let bytes = mm::reclaim_boot_memory();
        log::info!("mm: reclaimed {} KiB of boot loader memory", bytes / 1024);
    } else {
        log::warn!("mm: keeping boot loader memory: {} CPU(s) may still be parked in it", present - online);
    }
    // Moved out so that any later read of the loader's responses (whose
    // memory may just have been reclaimed) fails to compile. BootInfo has no
    // Drop of its own: the move is the point.
    #[allow(clippy::drop_non_drop)]
    drop(boot);

    mm::phys::print_table();
    let elapsed = time::micros_since_boot() - ENTRY_MICROS.load(Ordering::Relaxed);
    log::info!("kernel: boot took {}.{:03} ms", elapsed / 1000, elapsed % 1000);
    log::info!("smp: {online} of {present} CPUs online");
    if online != present || !ipis_ok {
        log::error!("kernel: not every CPU is usable");
        exit(ExitCode::Failure);
    }

    sched::init_this_cpu();
    let cmdline = boot::cmdline();
    let result = if let Some(name) = cmdline.get("test") {
        ktest::run(name)
    } else {
        // Benchmarks run in the kernel first; init runs the user-space ones
        // (it sees `bench=` too) and powers the machine off.
        let benches = cmdline.get("bench").map_or(Ok(()), bench::run);
        match benches.and_then(|()| user::start()) {
            Ok(()) => sched::idle_loop(),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => {
            log::info!("kernel: all work done, powering off");
            exit(ExitCode::Success)
        }
        Err(e) => {
            log::error!("kernel: {e}");
            exit(ExitCode::Failure)
        }
    }
}
