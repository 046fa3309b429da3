//! TLB shootdown: after a mapping change, no CPU may keep using the old
//! translation.
//!
//! The initiator writes its request (a [`FlushBatch`] encoded in one
//! 64-byte line) into its own mailbox, marks its bit in each target's inbox
//! and sends one IPI per target — skipped when the target's inbox was
//! already non-empty, since an IPI is then on its way and the target will
//! see every bit when it empties the inbox. It flushes locally after
//! sending, so the targets work in parallel, then waits for the count of
//! acknowledgements to reach zero. Targets copy the request and
//! acknowledge before they flush (they run nothing else in between), which
//! shortens the initiator's wait.
//!
//! While waiting, the initiator keeps serving requests aimed at itself, and
//! so does every CPU spinning on a kernel lock ([`crate::sync::SpinLock`]):
//! two CPUs shooting each other down at once, or one waiting for a lock the
//! other holds, cannot deadlock.
//!
//! The initiator spins briefly, then sleeps (`hlt` with interrupts on) and
//! lets the last target to acknowledge wake it with an IPI. On real
//! hardware acknowledgements arrive within the spin; when vCPUs outnumber
//! host cores, a spinning initiator would only keep the very targets it
//! waits for off the host CPUs. While it sleeps its interrupt handlers run:
//! none of them may take a lock that is held around a shootdown (the
//! address-space and page-table locks), and none does.
//!
//! Only CPUs that may hold the translations are targeted: every CPU using
//! the kernel root for kernel-half changes; for a user address space, the
//! CPUs running it now (without PCIDs, switching CR3 flushes the rest).
//!
//! **Lazy TLB.** An idle CPU keeps the user address space it last ran in
//! CR3 (the kernel half is the same in every space), because under TCG a
//! CR3 load flushes the whole software TLB and costs more than the rest of
//! a context switch. While lazy it runs no code that touches user memory,
//! so a user-space shootdown skips it and marks it stale instead of
//! interrupting it; when it runs a user thread again it flushes first if it
//! was marked ([`leave_lazy`]). One atomic per CPU decides the race: either
//! the initiator marks the CPU before it leaves lazy mode (and it flushes),
//! or it finds the CPU active and sends the IPI.

use crate::arch::apic::{self, vector};
use crate::arch::cpu::{self, InterruptGuard};
use crate::kcore::cpu_set::CpuSet;
use crate::kcore::lazy_tlb::LazyTlb;
use crate::kcore::tlb_batch::{FlushBatch, FlushPlan, MAX_RANGES};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use crossbeam_utils::{Backoff, CachePadded};

/// The kernel-half scope in a request (user scopes are page-table roots).
pub const KERNEL_SCOPE: u64 = 0;

/// One CPU's shootdown state.
pub struct Mailbox {
    /// The request this CPU is currently making (one cache line).
    request: CachePadded<[AtomicU64; MAX_RANGES + 1]>,
    /// Acknowledgements still missing for that request.
    pending: CachePadded<AtomicU32>,
    /// Bit i set: CPU i has a request for this CPU.
    inbox: CachePadded<AtomicU64>,
    /// The initiator sleeps until its last acknowledgement arrives.
    sleeping: CachePadded<AtomicBool>,
    /// Whether shootdowns of the user space in CR3 may skip this CPU.
    lazy: CachePadded<LazyTlb>,
}

impl Mailbox {
    /// An idle mailbox.
    pub const fn new() -> Self {
        Self {
            request: CachePadded::new([const { AtomicU64::new(0) }; MAX_RANGES + 1]),
            pending: CachePadded::new(AtomicU32::new(0)),
            inbox: CachePadded::new(AtomicU64::new(0)),
            sleeping: CachePadded::new(AtomicBool::new(false)),
            lazy: CachePadded::new(LazyTlb::new()),
        }
    }
}

impl Default for Mailbox {
    fn default() -> Self {
        Self::new()
    }
}

/// CPUs that have loaded the kernel's page tables (and so may cache
/// kernel-half translations).
static KERNEL_USERS: AtomicU64 = AtomicU64::new(0);

/// Above this many pages, flush the whole TLB instead of page by page.
/// Chosen from `cargo xtask bench` (see docs/performance.md).
const FULL_FLUSH_THRESHOLD: u64 = 32;

/// Records that this CPU is about to load the kernel root. Must come before
/// the CR3 load, so a concurrent shootdown either sees this CPU or finished
/// changing the tables before the CPU loads them.
pub fn join_kernel_users() {
    KERNEL_USERS.fetch_or(1 << crate::cpu::current_index(), Ordering::SeqCst);
}

/// This CPU goes on running only kernel code (the idle thread) on the user
/// space in its CR3: shootdowns of that space may skip it from now on.
pub fn enter_lazy() {
    crate::cpu::current().tlb.lazy.enter();
}

/// This CPU is about to use user translations again (or load another
/// root). Returns whether a shootdown skipped it while it was lazy: then
/// the space in its CR3 must be flushed before it is used.
pub fn leave_lazy() -> bool {
    crate::cpu::current().tlb.lazy.leave()
}

/// CPUs that may cache kernel-half translations.
pub fn kernel_users() -> CpuSet {
    CpuSet(KERNEL_USERS.load(Ordering::SeqCst))
}

/// The page-count threshold for a full flush.
pub fn full_flush_threshold() -> u64 {
    FULL_FLUSH_THRESHOLD
}

/// Flushes `batch` from this CPU's TLB, for `scope` (kernel half, or the
/// address space whose root is `scope`).
pub fn flush_local(scope: u64, batch: &FlushBatch) {
    if scope != KERNEL_SCOPE && scope != cpu::current_root() {
        // Not running that address space: loading CR3 when switching to it
        // flushed every non-global entry this CPU had for it.
        return;
    }
    match batch.plan(full_flush_threshold()) {
        FlushPlan::Nothing => {}
        FlushPlan::Pages => batch.ranges().flat_map(|r| r.page_addresses()).for_each(cpu::invlpg),
        FlushPlan::Full if scope == KERNEL_SCOPE => cpu::flush_tlb_all_global(),
        FlushPlan::Full => cpu::flush_tlb_nonglobal(),
    }
}

/// Flushes `batch` for `scope` on every CPU in `targets` (this one
/// included if it is in the set) and returns once all of them have.
pub fn shootdown(targets: CpuSet, scope: u64, batch: &FlushBatch) {
    if batch.is_empty() {
        return;
    }
    let _masked = InterruptGuard::new();
    let me = crate::cpu::current();
    let my_index = me.index();
    // The page-table writes that made this shootdown necessary must be
    // visible before we read who to target (pairs with join_kernel_users
    // and address-space activation).
    core::sync::atomic::fence(Ordering::SeqCst);
    let mut others = CpuSet(targets.0 & KERNEL_USERS.load(Ordering::SeqCst)).without(my_index);
    if scope != KERNEL_SCOPE {
        for t in others.iter() {
            if crate::cpu::get(t).tlb.lazy.try_skip() {
                others = others.without(t);
            }
        }
    }
    if !others.is_empty() {
        let words = batch.encode(scope);
        for (slot, w) in me.tlb.request.iter().zip(words) {
            slot.store(w, Ordering::Relaxed);
        }
        me.tlb.pending.store(others.len() as u32, Ordering::Relaxed);
        for t in others.iter() {
            let target = crate::cpu::get(t);
            // Release: the request and the count are visible before the bit.
            if target.tlb.inbox.fetch_or(1 << my_index, Ordering::Release) == 0 {
                apic::send_ipi_fast(target.apic_id(), vector::TLB_SHOOTDOWN);
            }
        }
        me.counters.shootdowns_sent.fetch_add(1, Ordering::Relaxed);
    }
    if targets.contains(my_index) || scope == KERNEL_SCOPE {
        flush_local(scope, batch);
    }
    if !others.is_empty() {
        wait_for_acks(me);
    }
}

/// How long an initiator spins before it sleeps, in microseconds.
const SPIN_MICROS: u64 = 20;

fn wait_for_acks(me: &crate::cpu::Cpu) {
    let backoff = Backoff::new();
    let started = cpu::rdtsc();
    let spin_until = started + SPIN_MICROS * crate::time::tsc_per_micro();
    let mut warned = false;
    while me.tlb.pending.load(Ordering::Acquire) != 0 {
        serve_while_waiting();
        if !backoff.is_completed() {
            backoff.snooze();
            continue;
        }
        let now = cpu::rdtsc();
        if now < spin_until {
            cpu::pause();
            continue;
        }
        // Sleep until the last target wakes us. Announce it first, then
        // re-check, so a target that acknowledges in between sees the flag
        // (both sides use SeqCst).
        me.tlb.sleeping.store(true, Ordering::SeqCst);
        if me.tlb.pending.load(Ordering::SeqCst) != 0 {
            cpu::enable_interrupts_and_wait();
            cpu::disable_interrupts();
        }
        me.tlb.sleeping.store(false, Ordering::Relaxed);
        // Correctness requires waiting for every acknowledgement, so we
        // never give up; a target silent for seconds is worth a warning.
        if !warned && now - started > 5_000_000 * crate::time::tsc_per_micro().max(1) {
            warned = true;
            log::warn!(
                "tlb: cpu{} still waits for {} shootdown acknowledgement(s) after 5 s",
                me.index(),
                me.tlb.pending.load(Ordering::Relaxed)
            );
        }
    }
}

/// Serves the requests in this CPU's inbox (the IPI handler, and callers
/// that wait with interrupts masked).
pub fn serve() {
    let me = crate::cpu::current();
    let mut bits = me.tlb.inbox.swap(0, Ordering::Acquire);
    while bits != 0 {
        let from = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let initiator = crate::cpu::get(from);
        let mut words = [0u64; MAX_RANGES + 1];
        for (w, slot) in words.iter_mut().zip(initiator.tlb.request.iter()) {
            *w = slot.load(Ordering::Relaxed);
        }
        // Acknowledge early: the request is copied, and this CPU touches
        // none of the affected memory before the flush below. The last one
        // wakes a sleeping initiator.
        if initiator.tlb.pending.fetch_sub(1, Ordering::SeqCst) == 1
            && initiator.tlb.sleeping.load(Ordering::SeqCst)
        {
            apic::send_ipi_fast(initiator.apic_id(), vector::PING);
        }
        let (scope, batch) = FlushBatch::decode(&words);
        flush_local(scope, &batch);
        me.counters.shootdowns_served.fetch_add(1, Ordering::Relaxed);
    }
}

/// Serves pending requests if there are any; cheap when there are none.
/// Called from every spin-wait that runs with interrupts masked.
#[inline]
pub fn serve_while_waiting() {
    if crate::cpu::current().tlb.inbox.load(Ordering::Relaxed) != 0 {
        serve();
    }
}
