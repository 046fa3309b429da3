//! The end of the line: reporting a panic or a fatal exception.
//!
//! The first CPU to fail stops every other CPU with an NMI (so the report
//! is not buried under other output and nothing else changes state), then
//! prints the report through the emergency serial path and ends the run
//! with a failure status. A second CPU failing meanwhile just halts.

use crate::arch;
use crate::kcore::line_buf::LineBuf;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const NOBODY: usize = usize::MAX;
static REPORTER: AtomicUsize = AtomicUsize::new(NOBODY);

/// Whether some CPU is reporting a fatal error.
pub fn in_progress() -> bool {
    REPORTER.load(Ordering::Relaxed) != NOBODY
}

/// Writes report lines with the usual log prefix, bypassing the log lock.
pub struct Report {
    _private: (),
}

impl Report {
    /// Writes one line.
    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        let mut line = LineBuf::<512>::new();
        let _ = crate::klog::write_prefix(&mut line);
        let _ = line.write_fmt(args);
        line.finish_line();
        crate::klog::write_emergency(line.as_bytes());
    }

    /// Writes a backtrace starting at `rip` and walking frame pointers from
    /// `rbp`, in the `bt #N 0x...` form xtask symbolises.
    pub fn backtrace(&mut self, rip: Option<u64>, rbp: u64) {
        self.line(format_args!("backtrace:"));
        let mut n = 0;
        if let Some(rip) = rip {
            self.line(format_args!("  bt #{n} 0x{rip:016x}"));
            n += 1;
        }
        arch::backtrace::walk(rbp, |_, ret| {
            // A return address points after the call; report the call itself.
            self.line(format_args!("  bt #{n} 0x{:016x}", ret - 1));
            n += 1;
        });
    }
}

/// Becomes the reporting CPU: masks interrupts and stops the others. If
/// another CPU is already reporting, this CPU halts here for good.
pub fn begin() -> Report {
    arch::cpu::disable_interrupts();
    let me = crate::cpu::current_index();
    match REPORTER.compare_exchange(NOBODY, me, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            stop_other_cpus(me);
            Report { _private: () }
        }
        // The report itself failed on this CPU: say so once and give up,
        // rather than recursing.
        Err(owner) if owner == me => {
            if NESTED.swap(true, Ordering::AcqRel) {
                finish();
            }
            crate::klog::write_emergency(b"(a second failure happened while reporting the first)\n");
            Report { _private: () }
        }
        Err(_) => arch::cpu::halt_forever(),
    }
}

static NESTED: AtomicBool = AtomicBool::new(false);

fn stop_other_cpus(me: usize) {
    for cpu in crate::cpu::online().iter().filter(|&c| c != me) {
        arch::apic::send_nmi_fast(crate::cpu::get(cpu).apic_id());
    }
}

/// Called by the NMI handler: if a fatal report is in progress elsewhere,
/// this CPU stops here.
pub fn halt_if_stopping() {
    if in_progress() {
        arch::cpu::halt_forever();
    }
}

/// Ends the run with a failure status.
pub fn finish() -> ! {
    arch::io::exit(arch::io::ExitCode::Failure)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut report = begin();
    let cpu = crate::cpu::current_index();
    let mut name = [0u8; 64];
    let (task, thread) = crate::sched::describe_current(&mut name);
    report.line(format_args!("PANIC on cpu {cpu} (task {task}, thread {thread}): {}", info.message()));
    if let Some(loc) = info.location() {
        report.line(format_args!("  at {}:{}:{}", loc.file(), loc.line(), loc.column()));
    }
    let rbp = arch::backtrace::frame_pointer();
    let rip = arch::extable::read_u64(rbp + 8).map(|r| r - 1);
    if let Some(rip) = rip {
        report.line(format_args!("  rip=0x{rip:016x}"));
    }
    report.backtrace(None, rbp);
    finish()
}
