//! Where every interrupt and exception lands after the entry stub saved the
//! registers: one dispatcher by vector.
//!
//! Handlers here run with interrupts masked and must not allocate (the heap
//! lock may be held by the code they interrupted). A trap from user mode
//! ends with the scheduler's return-to-user check (time slice, kill).

mod exception;

use crate::arch::apic::{self, vector};
use crate::arch::Regs;
use crate::cpu;
use core::sync::atomic::Ordering;

/// Handles the trap whose registers are `regs` (called from the entry stub).
pub fn dispatch(regs: Regs) {
    let (trap_vector, from_user) = regs.modify(|f| (f.vector, f.is_from_user()));
    match trap_vector as u8 {
        _ if trap_vector < 32 => exception::handle(&regs),
        vector::TLB_SHOOTDOWN => {
            crate::mm::tlb::serve();
            apic::eoi();
        }
        vector::TIMER => {
            cpu::current().counters.timer_ticks.fetch_add(1, Ordering::Relaxed);
            apic::eoi();
            crate::sched::on_timer_tick();
        }
        vector::PING => {
            cpu::current().counters.pings.fetch_add(1, Ordering::Relaxed);
            apic::eoi();
        }
        vector::RESCHEDULE => {
            apic::eoi();
            crate::sched::on_reschedule_ipi();
        }
        vector::APIC_ERROR => {
            log::warn!("apic: local APIC error interrupt");
            apic::eoi();
        }
        vector::SPURIOUS => {}
        other => {
            log::warn!("trap: unexpected interrupt vector {other:#x}");
            apic::eoi();
        }
    }
    if from_user {
        crate::sched::before_user_return();
    }
}
