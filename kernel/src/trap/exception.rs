//! CPU exceptions: recoverable kernel faults (probing accesses with a
//! fixup), and the diagnostics for everything else.

use crate::arch::{self, TrapFrame};
use crate::kcore::exception::exception_info;
use crate::kcore::layout;
use crate::kcore::page_fault::PageFaultError;

const NMI: u8 = 2;
const DOUBLE_FAULT: u8 = 8;
const PAGE_FAULT: u8 = 14;

pub fn handle(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    if vector == NMI {
        crate::fatal::halt_if_stopping();
        log::warn!("nmi: unexpected non-maskable interrupt at rip={:#018x}", frame.rip);
        return;
    }
    let cr2 = arch::cpu::read_cr2();
    if vector == PAGE_FAULT && !frame.from_user() {
        if let Some(fixup) = arch::extable::fixup_for(frame.rip) {
            frame.rip = fixup;
            return;
        }
    }
    fatal(frame, cr2)
}

/// Reports an exception the kernel cannot recover from and ends the run.
fn fatal(frame: &TrapFrame, cr2: u64) -> ! {
    let vector = frame.vector as u8;
    let info = exception_info(vector).expect("exception vectors are below 32");
    let mut report = crate::fatal::begin();
    let cpu = crate::cpu::current_index();
    let mode = if frame.from_user() { "user" } else { "kernel" };
    report.line(format_args!(
        "EXCEPTION {} {} on cpu {cpu} ({mode} mode, task {})",
        info.mnemonic,
        info.name,
        crate::task_name()
    ));
    match vector {
        PAGE_FAULT => report.line(format_args!(
            "page fault: cr2={cr2:#018x} error={:#x} {}",
            frame.error_code,
            PageFaultError(frame.error_code)
        )),
        DOUBLE_FAULT => match layout::guard_page_slot(cr2) {
            Some(slot) => report.line(format_args!(
                "kernel stack overflow: cr2={cr2:#018x} is the guard page of stack slot {slot} ({})",
                crate::mm::stack::describe_slot(slot)
            )),
            None => report.line(format_args!("double fault: cr2={cr2:#018x} (last page-fault address)")),
        },
        _ => {}
    }
    report.line(format_args!(
        "  rip={:#018x} rsp={:#018x} rflags={:#010x} cs={:#x} ss={:#x} error={:#x}",
        frame.rip, frame.rsp, frame.rflags, frame.cs, frame.ss, frame.error_code
    ));
    report.line(format_args!(
        "  rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}",
        frame.rax, frame.rbx, frame.rcx, frame.rdx
    ));
    report.line(format_args!(
        "  rsi={:#018x} rdi={:#018x} rbp={:#018x} r8 ={:#018x}",
        frame.rsi, frame.rdi, frame.rbp, frame.r8
    ));
    report.line(format_args!(
        "  r9 ={:#018x} r10={:#018x} r11={:#018x} r12={:#018x}",
        frame.r9, frame.r10, frame.r11, frame.r12
    ));
    report.line(format_args!(
        "  r13={:#018x} r14={:#018x} r15={:#018x} cr3={:#018x}",
        frame.r13,
        frame.r14,
        frame.r15,
        arch::cpu::current_root()
    ));
    report.backtrace(Some(frame.rip), frame.rbp);
    crate::fatal::finish()
}
