//! One CPU's lazy-TLB state: whether a user-space shootdown may skip it.
//!
//! A CPU that runs only kernel code while a user address space stays in its
//! CR3 is *lazy*. An initiator that finds it lazy marks it *stale* instead
//! of interrupting it; the CPU flushes when it leaves lazy mode if it was
//! marked. Every transition is one atomic operation on one byte, so an
//! initiator and the CPU always agree: either the mark lands before the CPU
//! leaves (the CPU flushes) or the initiator sees it active (and sends the
//! IPI).

use core::sync::atomic::{AtomicU8, Ordering};

/// The CPU may use the translations of the spaces it is active in.
const ACTIVE: u8 = 0;
/// Only kernel code runs; the user space in CR3 is not used.
const LAZY: u8 = 1;
/// Lazy, and a shootdown skipped it: flush before using the space.
const LAZY_STALE: u8 = 2;

/// The state of one CPU.
#[derive(Debug)]
pub struct LazyTlb(AtomicU8);

impl LazyTlb {
    /// An active CPU.
    pub const fn new() -> Self {
        Self(AtomicU8::new(ACTIVE))
    }

    /// The CPU stops using user translations (its idle thread runs).
    pub fn enter(&self) {
        self.0.store(LAZY, Ordering::SeqCst);
    }

    /// The CPU is about to use user translations again. Returns whether a
    /// shootdown skipped it meanwhile (then it must flush first).
    pub fn leave(&self) -> bool {
        // A plain load first: the common case (not lazy) needs no locked
        // write.
        self.0.load(Ordering::Relaxed) != ACTIVE && self.0.swap(ACTIVE, Ordering::SeqCst) == LAZY_STALE
    }

    /// An initiator asks whether it may skip this CPU; if so, the CPU is
    /// now marked to flush when it leaves lazy mode.
    pub fn try_skip(&self) -> bool {
        // A load first: an active or already marked CPU needs no locked
        // write to its line (a marked one flushes when it leaves, after
        // this initiator's page-table writes, which precede the load).
        match self.0.load(Ordering::SeqCst) {
            ACTIVE => false,
            LAZY_STALE => true,
            _ => match self.0.compare_exchange(LAZY, LAZY_STALE, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => true,
                Err(state) => state == LAZY_STALE,
            },
        }
    }
}

impl Default for LazyTlb {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_cpu_is_never_skipped() {
        let t = LazyTlb::new();
        assert!(!t.try_skip());
        assert!(!t.leave(), "nothing to flush");
        assert!(!t.try_skip());
    }

    #[test]
    fn a_skipped_lazy_cpu_flushes_once_when_it_leaves() {
        let t = LazyTlb::new();
        t.enter();
        assert!(t.try_skip());
        assert!(t.try_skip(), "still lazy: later shootdowns skip it too");
        assert!(t.leave(), "it was skipped: flush");
        assert!(!t.try_skip(), "active again");
        assert!(!t.leave(), "the flush is not asked for twice");
    }

    #[test]
    fn a_lazy_period_without_shootdowns_needs_no_flush() {
        let t = LazyTlb::new();
        t.enter();
        assert!(!t.leave());
        t.enter();
        t.enter();
        assert!(!t.leave());
    }
}
