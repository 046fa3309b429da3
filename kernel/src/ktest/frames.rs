//! The frame allocator under load from every CPU: no frame is handed out
//! twice, tags written by one owner survive until it frees them, 2 MiB
//! frames behave the same, exhaustion is an error, and the books balance.

use super::all_cpus;
use crate::kcore::mem_kind::FrameUse;
use crate::kcore::rng::Rng;
use crate::mm::frame;
use crate::mm::scratch::{TestFrame, TestLargeFrame};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

const ROUNDS: u64 = 2000;
const LARGE_ROUNDS: u64 = 40;

/// One bit per frame: set while some test owner holds it.
static OWNED: spin::Once<Vec<AtomicU64>> = spin::Once::new();
static DOUBLE: AtomicU64 = AtomicU64::new(0);
static BAD_TAGS: AtomicU64 = AtomicU64::new(0);
static TAKEN: AtomicU64 = AtomicU64::new(0);

fn claim(phys: u64) {
    let f = phys / 4096;
    let bit = 1 << (f % 64);
    if OWNED.get().expect("bitmap set up")[(f / 64) as usize].fetch_or(bit, Ordering::AcqRel) & bit != 0 {
        DOUBLE.fetch_add(1, Ordering::Relaxed);
        log::error!("frames: frame {phys:#x} handed out while another owner holds it");
    }
}

fn release(phys: u64) {
    let f = phys / 4096;
    OWNED.get().expect("bitmap set up")[(f / 64) as usize].fetch_and(!(1 << (f % 64)), Ordering::AcqRel);
}

fn tag(cpu: u64, round: u64, i: u64) -> u64 {
    0xF7A0_0000_0000_0000 | cpu << 40 | round << 16 | i
}

fn small_worker(cpu: u64) {
    let mut rng = Rng::new(0x5eed ^ cpu);
    let mut held: Vec<TestFrame> = Vec::with_capacity(64);
    for round in 0..ROUNDS {
        let n = rng.below(64) + 1;
        for i in 0..n {
            let Ok(f) = TestFrame::alloc() else { break };
            claim(f.phys());
            f.write(0, tag(cpu, round, i));
            f.write(511, !tag(cpu, round, i));
            held.push(f);
        }
        for (i, f) in held.iter().enumerate() {
            let t = tag(cpu, round, i as u64);
            if f.read(0) != t || f.read(511) != !t {
                BAD_TAGS.fetch_add(1, Ordering::Relaxed);
                log::error!("frames: frame {:#x} lost its owner's tag", f.phys());
            }
        }
        TAKEN.fetch_add(held.len() as u64, Ordering::Relaxed);
        for f in held.drain(..) {
            release(f.phys());
        }
    }
}

fn large_worker(cpu: u64) {
    for round in 0..LARGE_ROUNDS {
        let Ok(f) = TestLargeFrame::alloc() else { continue };
        for page in 0..512 {
            claim(f.phys() + page * 4096);
        }
        f.write(0, tag(cpu, round, 0));
        f.write(512 * 512 - 1, tag(cpu, round, 1));
        if f.read(0) != tag(cpu, round, 0) || f.read(512 * 512 - 1) != tag(cpu, round, 1) {
            BAD_TAGS.fetch_add(1, Ordering::Relaxed);
        }
        TAKEN.fetch_add(1, Ordering::Relaxed);
        for page in 0..512 {
            release(f.phys() + page * 4096);
        }
    }
}

/// Stress from all CPUs, then exhaustion on this one, then the books.
pub fn stress() -> Result<(), String> {
    let before = frame::stats();
    let bitmap_words = frame::covered_frames().div_ceil(64) as usize;
    OWNED.call_once(|| (0..bitmap_words).map(|_| AtomicU64::new(0)).collect());

    let cpus = all_cpus::run(small_worker, 300)?;
    log::info!(
        "frames: {cpus} CPUs x {ROUNDS} rounds: {} frames allocated, tagged and freed; {} double allocations, {} lost tags",
        TAKEN.load(Ordering::Relaxed),
        DOUBLE.load(Ordering::Relaxed),
        BAD_TAGS.load(Ordering::Relaxed)
    );
    TAKEN.store(0, Ordering::Relaxed);
    all_cpus::run(large_worker, 300)?;
    log::info!(
        "frames: 2 MiB frames: {cpus} CPUs x {LARGE_ROUNDS} rounds: {} taken; {} double allocations, {} lost tags",
        TAKEN.load(Ordering::Relaxed),
        DOUBLE.load(Ordering::Relaxed),
        BAD_TAGS.load(Ordering::Relaxed)
    );

    // Exhaustion: reserve room for every frame first, so the heap does not
    // need to grow while no frame is left.
    let mut all: Vec<TestFrame> = Vec::new();
    all.try_reserve(frame::stats().free() as usize + 1024).map_err(|_| "no heap for the exhaustion test")?;
    let exhausted = loop {
        match TestFrame::alloc() {
            Ok(f) => {
                if all.len() == all.capacity() {
                    break false;
                }
                all.push(f)
            }
            Err(frame::OutOfFrames) => break true,
        }
    };
    let taken = all.len();
    let left = frame::stats().free();
    drop(all);
    if !exhausted || left != 0 {
        return Err(format!("exhaustion: allocation stopped after {taken} frames with {left} still free"));
    }
    log::info!("frames: exhaustion: OutOfFrames after {taken} frames, then all returned");

    let after = frame::check().map_err(|e| format!("books: {e}"))?;
    // The test's own bookkeeping (the heap, and page tables for it) may
    // have grown; every other frame must be back.
    let grown: i64 = FrameUse::ALL
        .iter()
        .filter(|&&k| k != FrameUse::Test)
        .map(|&k| after.used[k as usize] - before.used[k as usize])
        .sum();
    log::info!(
        "frames: free frames {} before, {} after (kernel structures grew by {grown}); test frames in use: {}",
        before.free(),
        after.free(),
        after.used[FrameUse::Test as usize]
    );
    if after.free() as i64 != before.free() as i64 - grown || after.used[FrameUse::Test as usize] != 0 {
        return Err("frames went missing".into());
    }
    if DOUBLE.load(Ordering::Relaxed) != 0 || BAD_TAGS.load(Ordering::Relaxed) != 0 {
        return Err("a frame had two owners".into());
    }
    Ok(())
}
