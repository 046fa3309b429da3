//! In-kernel benchmarks, selected with `bench=all` or `bench=NAME,...` on
//! the command line. Each prints one line per measurement:
//!
//! ```text
//! bench: {"name":"frame_alloc_free","unit":"cycles","samples":10000,"min":..,"p10":..,"median":..,"p90":..,"max":..}
//! ```
//!
//! Times are TSC cycles (under QEMU's software emulation the TSC follows
//! host time). `cargo xtask bench` boots the kernel several times, collects
//! these lines and reports medians and spread across runs.

mod memory;
mod tlb;

use crate::kcore::stats::Summary;
use alloc::string::String;
use alloc::vec::Vec;

/// A benchmark: name and body.
struct Bench {
    name: &'static str,
    run: fn(),
}

const BENCHES: &[Bench] = &[
    Bench { name: "frame_alloc_free", run: memory::frame_alloc_free_one_cpu },
    Bench { name: "frame_alloc_free_all_cpus", run: memory::frame_alloc_free_all_cpus },
    Bench { name: "map_unmap_local", run: tlb::map_unmap_local },
    Bench { name: "shootdown", run: tlb::shootdown_targets },
    Bench { name: "tlb_flush_threshold", run: tlb::flush_threshold },
];

/// Runs the benchmarks `filter` selects (`all`, or comma-separated names
/// or name prefixes).
pub fn run(filter: &str) -> Result<(), String> {
    let wanted = |name: &str| filter == "all" || filter.split(',').any(|f| !f.is_empty() && name.starts_with(f));
    let chosen: Vec<&Bench> = BENCHES.iter().filter(|b| wanted(b.name)).collect();
    if chosen.is_empty() {
        let names: Vec<&str> = BENCHES.iter().map(|b| b.name).collect();
        log::info!("bench: no kernel benchmark matches `{filter}` (kernel ones: {}); user space may run it", names.join(", "));
    }
    for b in chosen {
        log::info!("bench: running {}", b.name);
        (b.run)();
    }
    Ok(())
}

/// Prints the summary line for `samples` (TSC cycles per operation).
pub fn report(name: &str, samples: &mut [u64]) {
    report_with(name, samples, "");
}

/// Like [`report`], with extra JSON fields (`,"key":value...`).
pub fn report_with(name: &str, samples: &mut [u64], extra: &str) {
    match Summary::of(samples) {
        Some(s) => log::info!(
            "bench: {{\"name\":\"{name}\",\"unit\":\"cycles\",\"samples\":{},\"min\":{},\"p10\":{},\"median\":{},\"p90\":{},\"max\":{}{extra}}}",
            s.count,
            s.min,
            s.p10,
            s.median,
            s.p90,
            s.max
        ),
        None => log::warn!("bench: {name}: no samples"),
    }
}

/// Times `f` once, in TSC cycles.
#[inline(always)]
pub fn time(f: impl FnOnce()) -> u64 {
    let t0 = crate::arch::cpu::rdtsc_ordered();
    f();
    crate::arch::cpu::rdtsc_ordered() - t0
}
