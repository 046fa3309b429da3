//! The kernel heap under load from every CPU: many sizes and alignments,
//! contents intact until freed, and exhaustion reported as an error.

use super::all_cpus;
use crate::kcore::rng::Rng;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

const ROUNDS: u64 = 20_000;
const LIVE: usize = 64;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// One live allocation and the byte it was filled with.
enum Block {
    Bytes(Vec<u8>, u8),
    Words(Vec<u64>, u8),
    Lines(Vec<Line>, u8),
    Pages(Vec<Page>, u8),
}

impl Block {
    fn new(rng: &mut Rng, fill: u8) -> Self {
        match rng.below(10) {
            0..=4 => Self::Bytes(alloc::vec![fill; rng.below(2048) as usize + 1], fill),
            5..=7 => Self::Words(alloc::vec![u64::from_ne_bytes([fill; 8]); rng.below(512) as usize + 1], fill),
            8 => Self::Lines(alloc::vec![Line([fill; 64]); rng.below(64) as usize + 1], fill),
            _ => Self::Pages(alloc::vec![Page([fill; 4096]); rng.below(4) as usize + 1], fill),
        }
    }

    /// Whether the contents and alignment are as written.
    fn intact(&self) -> bool {
        match self {
            Self::Bytes(v, f) => v.iter().all(|b| b == f),
            Self::Words(v, f) => (v.as_ptr() as usize).is_multiple_of(8) && v.iter().all(|w| *w == u64::from_ne_bytes([*f; 8])),
            Self::Lines(v, f) => (v.as_ptr() as usize).is_multiple_of(64) && v.iter().all(|l| l.0.iter().all(|b| b == f)),
            Self::Pages(v, f) => (v.as_ptr() as usize).is_multiple_of(4096) && v.iter().all(|p| p.0.iter().all(|b| b == f)),
        }
    }
}

static CORRUPT: AtomicU64 = AtomicU64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

fn worker(cpu: u64) {
    let mut rng = Rng::new(0x4ea9 ^ cpu << 32);
    let mut live: Vec<Block> = Vec::with_capacity(LIVE);
    for round in 0..ROUNDS {
        let fill = (cpu as u8).wrapping_mul(31).wrapping_add(round as u8);
        if live.len() == LIVE {
            let victim = live.swap_remove(rng.below(LIVE as u64) as usize);
            if !victim.intact() {
                CORRUPT.fetch_add(1, Ordering::Relaxed);
            }
        }
        live.push(Block::new(&mut rng, fill));
    }
    for b in &live {
        if !b.intact() {
            CORRUPT.fetch_add(1, Ordering::Relaxed);
        }
    }
    ALLOCATIONS.fetch_add(ROUNDS, Ordering::Relaxed);
}

pub fn stress() -> Result<(), String> {
    let cpus = all_cpus::run(worker, 300)?;
    let corrupt = CORRUPT.load(Ordering::Relaxed);
    log::info!(
        "heap: {cpus} CPUs, {} allocations of 1 B..16 KiB at alignments 1..4096: {corrupt} corrupted, heap is {} KiB",
        ALLOCATIONS.load(Ordering::Relaxed),
        crate::mm::heap::mapped_bytes() / 1024
    );
    if corrupt != 0 {
        return Err(format!("{corrupt} allocations were corrupted"));
    }
    // Asking for more than the machine has must fail cleanly.
    let free_before = crate::mm::frame::stats().free();
    let mut huge: Vec<u8> = Vec::new();
    match huge.try_reserve(1 << 40) {
        Ok(()) => return Err("a 1 TiB heap allocation succeeded".into()),
        Err(e) => log::info!("heap: a 1 TiB request fails cleanly ({e})"),
    }
    let free_after = crate::mm::frame::stats().free();
    if free_before.abs_diff(free_after) > 64 {
        return Err(format!("the failed request consumed {} frames", free_before.abs_diff(free_after)));
    }
    Ok(())
}
