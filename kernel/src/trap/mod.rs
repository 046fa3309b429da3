//! Where every interrupt and exception lands after the entry stub saved the
//! registers: one dispatcher by vector.
//!
//! Handlers here run with interrupts masked and must not allocate (the heap
//! lock may be held by the code they interrupted).

mod exception;

use crate::arch::apic::{self, vector};
use crate::arch::TrapFrame;
use crate::cpu;
use core::sync::atomic::Ordering;

/// Handles the trap described by `frame` (called from the entry stub).
pub fn dispatch(frame: &mut TrapFrame) {
    match frame.vector as u8 {
        0..=31 => exception::handle(frame),
        vector::TLB_SHOOTDOWN => {
            crate::mm::tlb::serve();
            apic::eoi();
        }
        vector::TIMER => {
            cpu::current().counters.timer_ticks.fetch_add(1, Ordering::Relaxed);
            apic::eoi();
        }
        vector::PING => {
            cpu::current().counters.pings.fetch_add(1, Ordering::Relaxed);
            apic::eoi();
        }
        vector::RESCHEDULE => apic::eoi(),
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
}
