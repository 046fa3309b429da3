//! CPU exceptions: recoverable kernel faults (probing accesses with a
//! fixup), user faults (to the task's pager, or the task dies with a
//! diagnostic while the kernel carries on), and the report for everything
//! the kernel cannot survive.

use crate::arch::{self, Regs, TrapFrame};
use crate::kcore::exception::exception_info;
use crate::kcore::layout;
use crate::kcore::page_fault::PageFaultError;

const NMI: u8 = 2;
const DEVICE_NOT_AVAILABLE: u8 = 7;
const DOUBLE_FAULT: u8 = 8;
const PAGE_FAULT: u8 = 14;

pub fn handle(regs: &Regs) {
    let frame = regs.read();
    let vector = frame.vector as u8;
    if vector == NMI {
        crate::fatal::halt_if_stopping();
        log::warn!("nmi: unexpected non-maskable interrupt at rip={:#018x}", frame.rip);
        return;
    }
    if vector == DEVICE_NOT_AVAILABLE && frame.is_from_user() {
        crate::sched::on_fpu_first_use();
        return;
    }
    let cr2 = arch::cpu::read_cr2();
    if frame.is_from_user() {
        return user_fault(&frame, cr2);
    }
    if vector == PAGE_FAULT
        && let Some(fixup) = arch::extable::fixup_for(frame.rip)
    {
        regs.modify(|f| f.rip = fixup);
        return;
    }
    fatal(&frame, cr2)
}

/// A user thread faulted. Page faults go to the task's pager, which maps
/// the page and resumes the thread; anything else (no pager, or a pager
/// that declines) kills the task, with a diagnostic, and the kernel carries
/// on.
fn user_fault(frame: &TrapFrame, cr2: u64) {
    let vector = frame.vector as u8;
    let me = crate::sched::current();
    if vector == PAGE_FAULT
        && let Some((pager, badge)) = me.task.pager()
    {
        let words = [cr2, frame.error_code, frame.rip, me.id, vector as u64, 0];
        if crate::ipc::send_fault(&me, &pager, badge, words).is_ok()
            && !me.fault_declined.swap(false, core::sync::atomic::Ordering::Relaxed)
        {
            // Resumed by the pager, or killed (the return path sees it).
            return;
        }
    }
    let info = exception_info(vector).expect("exception vectors are below 32");
    let detail = if vector == PAGE_FAULT {
        alloc::format!(" address {cr2:#x} {}", PageFaultError(frame.error_code))
    } else {
        alloc::string::String::new()
    };
    log::error!(
        "fault: task {} (id {}) thread {} on cpu {}: {} {} at rip={:#018x}{detail}; killing the task",
        me.task.name,
        me.task.id,
        me.id,
        crate::cpu::current_index(),
        info.mnemonic,
        info.name,
        frame.rip,
    );
    me.task.kill(-(vector as i64) - 1);
    drop(me);
    crate::sched::exit_current();
}

/// Reports an exception the kernel cannot recover from and ends the run.
fn fatal(frame: &TrapFrame, cr2: u64) -> ! {
    let vector = frame.vector as u8;
    let info = exception_info(vector).expect("exception vectors are below 32");
    let mut report = crate::fatal::begin();
    let cpu = crate::cpu::current_index();
    let mut name = [0u8; 64];
    let (task, thread) = crate::sched::describe_current(&mut name);
    report.line(format_args!(
        "EXCEPTION {} {} on cpu {cpu} (kernel mode, task {task}, thread {thread})",
        info.mnemonic, info.name
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
