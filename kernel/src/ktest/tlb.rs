//! TLB coherence under fire.
//!
//! Stale-TLB detector: cpu0 maps a test frame at a scratch page, wakes the
//! readers on every other CPU, waits until one of them has read the page
//! (so translations are cached), then unmaps (or write-protects) it while
//! they keep reading, and immediately gives the frame a new pattern. Once
//! the unmap or protect has returned, no reader may read the frame through
//! the page (or write it, for protect): it must fault. Readers note the
//! last completed round before each access, so a read of that round's data,
//! or of the "reused" pattern, after it proves a stale translation.
//!
//! Readers probe in bursts that end at their first fault, then halt until
//! the next round wakes them: busy readers would otherwise take every host
//! core when vCPUs outnumber them, and each shootdown would wait for the
//! host scheduler. Bursts still straddle every unmap.
//!
//! In the lazy variant the readers keep the user space in CR3 and go lazy
//! while they halt, as an idle CPU does: unmaps then skip them, and they
//! must flush when they come back (the test checks that this happened).
//!
//! Shootdown storm: every CPU maps and unmaps its own page in a loop, so
//! all of them shoot each other down at once.

use super::all_cpus;
use crate::kcore::layout::USER_END;
use crate::mm::address_space::AddressSpace;
use crate::mm::scratch::{ScratchPage, ScratchView, TestFrame, Where};
use crate::sync::SpinLock;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const MAGIC: u64 = 0x57a1_e000_0000_0000;
const MAGIC_MASK: u64 = 0xffff_f000_0000_0000;
const REUSED: u64 = 0x0bad_0000_0000_0000;

/// What the detector takes away after each round.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unmap,
    Protect,
}

static STOP: AtomicBool = AtomicBool::new(false);
/// The last round whose unmap/protect has returned.
static DONE_ROUND: AtomicU64 = AtomicU64::new(0);
static PAGE_VA: AtomicU64 = AtomicU64::new(0);
/// The user address space the readers run in (user variant only).
static SPACE: SpinLock<Option<Arc<AddressSpace>>> = SpinLock::new(None);
static PROTECT_MODE: AtomicBool = AtomicBool::new(false);
/// Readers go lazy while they halt (user variant only).
static LAZY_MODE: AtomicBool = AtomicBool::new(false);
/// Returns from lazy mode that found the reader skipped and flushed it.
static LAZY_FLUSHES: AtomicU64 = AtomicU64::new(0);
static READS: AtomicU64 = AtomicU64::new(0);
static FAULTS: AtomicU64 = AtomicU64::new(0);
static STALE: AtomicU64 = AtomicU64::new(0);
static READERS: AtomicU64 = AtomicU64::new(0);
/// Bursts that read the page and then faulted: the unmap happened while
/// the reader was reading, which is when a stale entry would show.
static STRADDLES: AtomicU64 = AtomicU64::new(0);
/// Bumped by the writer each time it wakes the readers.
static WAKE: AtomicU64 = AtomicU64::new(0);
/// The newest round some reader has seen mapped.
static SEEN: AtomicU64 = AtomicU64::new(0);
/// Probes per burst at most (a burst normally ends at the first fault).
const BURST: u32 = 256;

fn rounds() -> u64 {
    crate::boot::cmdline().get("rounds").and_then(|r| r.parse().ok()).unwrap_or(100_000)
}

/// A stale reader's marker in word 1: (round it believed done) << 8 | cpu.
fn marker(done: u64, cpu: u64) -> u64 {
    done << 8 | cpu
}

fn reader(cpu: u64) {
    if cpu == 0 {
        return;
    }
    READERS.fetch_add(1, Ordering::Relaxed);
    let space = SPACE.lock().clone();
    if let Some(s) = &space {
        s.activate(Some(crate::mm::kernel_space::kernel_space()));
    }
    let Some(page) = ScratchView::of(PAGE_VA.load(Ordering::Acquire)) else {
        log::error!("tlb: cpu{cpu} found no scratch page");
        return;
    };
    let protect = PROTECT_MODE.load(Ordering::Relaxed);
    let lazy_space = space.as_ref().filter(|_| LAZY_MODE.load(Ordering::Relaxed));
    let (mut reads, mut faults, mut stale, mut straddles, mut lazy_flushes) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut woken = WAKE.load(Ordering::Acquire);
    while !STOP.load(Ordering::Acquire) {
        let mut read_in_burst = false;
        for _ in 0..BURST {
            let done = DONE_ROUND.load(Ordering::Acquire);
            let ok = if protect {
                page.probe_write(1 + cpu, marker(done, cpu))
            } else {
                match page.probe_read(0) {
                    None => false,
                    Some(v) if v & MAGIC_MASK == MAGIC && v & !MAGIC_MASK > done => {
                        SEEN.fetch_max(v & !MAGIC_MASK, Ordering::AcqRel);
                        true
                    }
                    Some(v) => {
                        stale += 1;
                        if stale <= 3 {
                            log::error!("tlb: cpu{cpu} read {v:#x} after round {done} was unmapped: stale translation");
                        }
                        true
                    }
                }
            };
            if !ok {
                faults += 1;
                if read_in_burst {
                    straddles += 1;
                }
                break;
            }
            reads += 1;
            read_in_burst = true;
            if protect {
                SEEN.fetch_max(done + 1, Ordering::AcqRel);
            }
        }
        // Sleep until the writer wakes us for the next round.
        crate::arch::cpu::disable_interrupts();
        if lazy_space.is_some() {
            crate::mm::tlb::enter_lazy();
        }
        let now = WAKE.load(Ordering::Acquire);
        if now == woken && !STOP.load(Ordering::Acquire) {
            crate::arch::cpu::enable_interrupts_and_wait();
        } else {
            crate::arch::cpu::enable_interrupts();
        }
        if let Some(s) = lazy_space {
            lazy_flushes += s.activate(None) as u64;
        }
        woken = now;
    }
    if let Some(s) = &space {
        s.deactivate();
    }
    READS.fetch_add(reads, Ordering::Relaxed);
    STRADDLES.fetch_add(straddles, Ordering::Relaxed);
    FAULTS.fetch_add(faults, Ordering::Relaxed);
    STALE.fetch_add(stale, Ordering::Relaxed);
    LAZY_FLUSHES.fetch_add(lazy_flushes, Ordering::Relaxed);
}

fn writer(mode: Mode, page: &ScratchPage<'_>, rounds: u64) -> Result<u64, String> {
    let frames = [TestFrame::alloc().map_err(|_| "no frame")?, TestFrame::alloc().map_err(|_| "no frame")?];
    let mut protect_stale = 0;
    for round in 1..=rounds {
        let f = &frames[(round % 2) as usize];
        f.write(0, MAGIC | round);
        for w in 1..64 {
            f.write(w, 0);
        }
        page.map(f, true).map_err(|e| format!("map: {e:?}"))?;
        wake_readers();
        // Let a reader cache the translation before taking it away (bounded:
        // a reader may be descheduled).
        crate::time::wait_until(2_000, || SEEN.load(Ordering::Acquire) >= round);
        match mode {
            Mode::Unmap => page.unmap().map_err(|e| format!("unmap: {e:?}"))?,
            Mode::Protect => page.protect_read_only().map_err(|e| format!("protect: {e:?}"))?,
        }
        DONE_ROUND.store(round, Ordering::Release);
        if mode == Mode::Protect {
            page.unmap().map_err(|e| format!("unmap: {e:?}"))?;
            // Every write a reader made while believing this round was
            // already protected went through a stale writable entry.
            for w in 1..64 {
                let m = f.read(w);
                if m != 0 && m >> 8 >= round {
                    protect_stale += 1;
                    if protect_stale <= 3 {
                        log::error!("tlb: cpu{} wrote round {round}'s page after it was write-protected", m & 0xff);
                    }
                }
            }
        }
        // The frame moves on to another use.
        f.write(0, REUSED | round);
    }
    Ok(protect_stale)
}

fn wake_readers() {
    WAKE.fetch_add(1, Ordering::AcqRel);
    let me = crate::cpu::current_index();
    for c in crate::cpu::online().iter().filter(|&c| c != me) {
        crate::arch::apic::send_ipi_fast(crate::cpu::get(c).apic_id(), crate::arch::apic::vector::PING);
    }
}

fn detector(mode: Mode, user: bool, lazy: bool) -> Result<(), String> {
    let rounds = rounds();
    let space = if user {
        Some(Arc::new(AddressSpace::new_user().map_err(|_| "no memory for an address space")?))
    } else {
        None
    };
    let page = match &space {
        Some(s) => ScratchPage::new(Where::Space(s, USER_END / 2)),
        None => ScratchPage::new(Where::Kernel),
    };
    PAGE_VA.store(page.va(), Ordering::Release);
    *SPACE.lock() = space.clone();
    PROTECT_MODE.store(mode == Mode::Protect, Ordering::Relaxed);
    LAZY_MODE.store(lazy, Ordering::Relaxed);
    for c in [&READS, &FAULTS, &STALE, &READERS, &DONE_ROUND, &SEEN, &STRADDLES, &LAZY_FLUSHES] {
        c.store(0, Ordering::Relaxed);
    }
    STOP.store(false, Ordering::Release);

    // Readers on every other CPU; the writer here.
    let me = crate::cpu::current_index();
    let mut tickets = alloc::vec::Vec::new();
    for c in crate::cpu::online().iter().filter(|&c| c != me) {
        tickets.push((c, crate::smp::run_on(c, reader, c as u64).map_err(|e| format!("cpu{c}: {e:?}"))?));
    }
    let started = crate::time::micros_since_boot();
    let result = writer(mode, &page, rounds);
    STOP.store(true, Ordering::Release);
    wake_readers();
    for (c, t) in tickets {
        if !crate::smp::wait_done(c, t, 60_000_000) {
            return Err(format!("reader cpu{c} did not stop"));
        }
    }
    drop(page);
    *SPACE.lock() = None;
    drop(space);
    let protect_stale = result?;
    let secs = (crate::time::micros_since_boot() - started) as f64 / 1e6;
    let stale = STALE.load(Ordering::Relaxed) + protect_stale;
    log::info!(
        "tlb-stale: {} {} rounds in {secs:.1} s, {} readers, {} {} through the page, {} faults observed, {} bursts cut by the change, {stale} stale {}",
        rounds,
        if mode == Mode::Unmap { "unmap" } else { "write-protect" },
        READERS.load(Ordering::Relaxed),
        READS.load(Ordering::Relaxed),
        if mode == Mode::Unmap { "reads" } else { "writes" },
        FAULTS.load(Ordering::Relaxed),
        STRADDLES.load(Ordering::Relaxed),
        if mode == Mode::Unmap { "reads" } else { "writes" },
    );
    if READERS.load(Ordering::Relaxed) == 0 {
        return Err("no reader CPU: run with -smp 2 or more".into());
    }
    if STRADDLES.load(Ordering::Relaxed) == 0 {
        return Err("no reader was reading when a change happened: the test did not exercise it".into());
    }
    if lazy {
        let flushes = LAZY_FLUSHES.load(Ordering::Relaxed);
        log::info!("tlb-stale: readers came back from lazy mode marked stale and flushed {flushes} times");
        if flushes == 0 {
            return Err("no shootdown skipped a lazy reader: the test did not exercise lazy TLB".into());
        }
    }
    if stale != 0 {
        return Err(format!("{stale} accesses went through stale translations"));
    }
    Ok(())
}

pub fn stale_unmap() -> Result<(), String> {
    detector(Mode::Unmap, false, false)
}

pub fn stale_protect() -> Result<(), String> {
    detector(Mode::Protect, false, false)
}

pub fn stale_unmap_lazy() -> Result<(), String> {
    detector(Mode::Unmap, true, true)
}

pub fn stale_unmap_user() -> Result<(), String> {
    detector(Mode::Unmap, true, false)
}

const STORM_ROUNDS: u64 = 5_000;
static STORM_DONE: AtomicU64 = AtomicU64::new(0);
static STORM_ERRORS: AtomicU64 = AtomicU64::new(0);

fn storm_worker(cpu: u64) {
    let page = ScratchPage::new(Where::Kernel);
    let Ok(frame) = TestFrame::alloc() else {
        STORM_ERRORS.fetch_add(1, Ordering::Relaxed);
        return;
    };
    for round in 0..STORM_ROUNDS {
        frame.write(0, cpu << 32 | round);
        if page.map(&frame, true).is_err() || page.probe_read(0) != Some(cpu << 32 | round) || page.unmap().is_err() {
            STORM_ERRORS.fetch_add(1, Ordering::Relaxed);
        }
        if page.probe_read(0).is_some() {
            STORM_ERRORS.fetch_add(1, Ordering::Relaxed);
        }
    }
    STORM_DONE.fetch_add(STORM_ROUNDS, Ordering::Relaxed);
}

pub fn storm() -> Result<(), String> {
    let served_before: u64 = crate::cpu::all().map(|c| c.counters.shootdowns_served.load(Ordering::Relaxed)).sum();
    let cpus = all_cpus::run(storm_worker, 600)?;
    let served: u64 =
        crate::cpu::all().map(|c| c.counters.shootdowns_served.load(Ordering::Relaxed)).sum::<u64>() - served_before;
    let errors = STORM_ERRORS.load(Ordering::Relaxed);
    log::info!(
        "tlb-storm: {cpus} CPUs each mapped and unmapped {STORM_ROUNDS} times at once: {} shootdowns, {served} requests served, {errors} errors",
        STORM_DONE.load(Ordering::Relaxed)
    );
    let expected = STORM_DONE.load(Ordering::Relaxed) * (cpus as u64 - 1);
    if errors != 0 {
        return Err(format!("{errors} map/unmap errors"));
    }
    if served != expected {
        return Err(format!("{served} shootdown requests served, expected {expected}: an acknowledgement went missing"));
    }
    Ok(())
}
