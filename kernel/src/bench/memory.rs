//! Frame allocator benchmarks.

use super::{report, report_with, time};
use crate::kcore::mem_kind::FrameUse;
use crate::mm::frame;
use crate::sync::SpinLock;
use alloc::vec::Vec;

const ITERATIONS: usize = 20_000;

/// Allocate and free one frame on one CPU (the others idle).
pub fn frame_alloc_free_one_cpu() {
    let mut samples = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        samples.push(time(|| {
            let f = frame::alloc(FrameUse::Test).expect("bench: out of frames");
            frame::free(f, FrameUse::Test);
        }));
    }
    report("frame_alloc_free", &mut samples);
}

static ALL_CPU_SAMPLES: SpinLock<Vec<u64>> = SpinLock::new(Vec::new());

fn alloc_free_worker(_cpu: u64) {
    let mut samples = Vec::with_capacity(ITERATIONS);
    let mut held = Vec::with_capacity(16);
    for i in 0..ITERATIONS {
        // Alternate runs of allocations and frees so caches refill and spill.
        samples.push(time(|| {
            if i % 32 < 16 {
                held.push(frame::alloc(FrameUse::Test).expect("bench: out of frames"));
            } else if let Some(f) = held.pop() {
                frame::free(f, FrameUse::Test);
            }
        }));
    }
    for f in held {
        frame::free(f, FrameUse::Test);
    }
    ALL_CPU_SAMPLES.lock().extend_from_slice(&samples);
}

/// Every CPU allocating and freeing at once.
pub fn frame_alloc_free_all_cpus() {
    ALL_CPU_SAMPLES.lock().clear();
    let cpus = match crate::ktest::all_cpus::run(alloc_free_worker, 120) {
        Ok(n) => n,
        Err(e) => {
            log::error!("bench: {e}");
            return;
        }
    };
    let mut samples = core::mem::take(&mut *ALL_CPU_SAMPLES.lock());
    report_with("frame_alloc_or_free_all_cpus", &mut samples, &alloc::format!(",\"cpus\":{cpus}"));
}
