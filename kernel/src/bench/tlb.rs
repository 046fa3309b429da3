//! Mapping and TLB-shootdown benchmarks.

use super::{report, report_with, time};
use crate::arch::cpu;
use crate::mm::address_space::AddressSpace;
use crate::mm::kernel_space::kernel_space;
use crate::mm::paging::{Access, PageSize};
use crate::mm::scratch::{ScratchPage, TestFrame, Where};
use crate::sync::SpinLock;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Where the benchmarks map their pages in a user address space.
const BASE: u64 = 0x4000_0000;
const USER_DATA: Access = Access { write: true, execute: false, user: false, global: false, uncached: false };

fn new_space() -> Arc<AddressSpace> {
    Arc::new(AddressSpace::new_user().expect("bench: no memory for an address space"))
}

/// Map, touch and unmap one page of an address space only this CPU runs:
/// the shootdown has no remote target.
pub fn map_unmap_local() {
    let space = new_space();
    space.activate(Some(kernel_space()));
    let frame = TestFrame::alloc().expect("bench: no frame");
    let page = ScratchPage::new(Where::Space(&space, BASE));
    let mut samples: Vec<u64> = (0..5000)
        .map(|_| {
            time(|| {
                page.map(&frame, true).expect("bench: map");
                page.probe_read(0);
                page.unmap().expect("bench: unmap");
            })
        })
        .collect();
    drop(page);
    space.deactivate();
    report("map_touch_unmap_local", &mut samples);
}

static PARK_SPACE: SpinLock<Option<Arc<AddressSpace>>> = SpinLock::new(None);
static PARK_STOP: AtomicBool = AtomicBool::new(false);
static PARKED: AtomicU64 = AtomicU64::new(0);

/// Runs the parked address space until told to stop, like a thread of it
/// busy on this CPU.
fn park(_cpu: u64) {
    let Some(space) = PARK_SPACE.lock().clone() else { return };
    space.activate(Some(kernel_space()));
    PARKED.fetch_add(1, Ordering::AcqRel);
    while !PARK_STOP.load(Ordering::Acquire) {
        cpu::pause();
    }
    space.deactivate();
    PARKED.fetch_sub(1, Ordering::AcqRel);
}

/// Unmapping pages of an address space that 1, 2 and 3 other CPUs run.
pub fn shootdown_targets() {
    let others: Vec<usize> = crate::cpu::online().iter().filter(|&c| c != crate::cpu::current_index()).collect();
    let frames: Vec<TestFrame> = (0..64).map(|_| TestFrame::alloc().expect("bench: no frame")).collect();
    for k in 1..=others.len().min(3) {
        let space = new_space();
        *PARK_SPACE.lock() = Some(space.clone());
        PARK_STOP.store(false, Ordering::Release);
        let tickets: Vec<(usize, u64)> = others[..k]
            .iter()
            .map(|&c| (c, crate::smp::run_on(c, park, 0).expect("bench: cannot post to a CPU")))
            .collect();
        crate::time::wait_until(10_000_000, || PARKED.load(Ordering::Acquire) == k as u64);

        let mut one: Vec<u64> = (0..400)
            .map(|_| {
                space.map(BASE, frames[0].phys(), PageSize::Small, USER_DATA).expect("bench: map");
                time(|| {
                    space.unmap_range(BASE, 1, PageSize::Small, |_, _| {}).expect("bench: unmap");
                })
            })
            .collect();
        report_with(&format!("shootdown_1page_{k}targets"), &mut one, &format!(",\"targets\":{k}"));

        if k == 3 || k == others.len() {
            let mut many: Vec<u64> = (0..200)
                .map(|_| {
                    for (i, f) in frames.iter().enumerate() {
                        space.map(BASE + i as u64 * 4096, f.phys(), PageSize::Small, USER_DATA).expect("bench: map");
                    }
                    time(|| {
                        space.unmap_range(BASE, 64, PageSize::Small, |_, _| {}).expect("bench: unmap");
                    })
                })
                .collect();
            report_with(&format!("shootdown_64pages_{k}targets"), &mut many, &format!(",\"targets\":{k}"));
        }

        PARK_STOP.store(true, Ordering::Release);
        for (c, t) in tickets {
            crate::smp::wait_done(c, t, 10_000_000);
        }
        *PARK_SPACE.lock() = None;
    }
}

/// Where a full TLB flush becomes cheaper than flushing page by page: the
/// cost of INVLPG on n pages plus re-touching a 64-page working set,
/// against a full flush plus the same re-touching.
pub fn flush_threshold() {
    const WORKING_SET: u64 = 64;
    let space = new_space();
    space.activate(Some(kernel_space()));
    let frames: Vec<TestFrame> = (0..WORKING_SET).map(|_| TestFrame::alloc().expect("bench: no frame")).collect();
    for (i, f) in frames.iter().enumerate() {
        space.map(BASE + i as u64 * 4096, f.phys(), PageSize::Small, USER_DATA).expect("bench: map");
    }
    let touch_all = || {
        for i in 0..WORKING_SET {
            crate::arch::extable::read_u64_any(BASE + i * 4096);
        }
    };
    let measure = |flush: &dyn Fn()| -> u64 {
        let mut s: Vec<u64> = (0..300)
            .map(|_| {
                touch_all();
                time(|| {
                    flush();
                    touch_all();
                })
            })
            .collect();
        s.sort_unstable();
        s[s.len() / 2]
    };
    let full = measure(&|| cpu::flush_tlb_nonglobal());
    let mut threshold = WORKING_SET;
    for n in [1u64, 2, 4, 8, 16, 32, 64] {
        let cost = measure(&|| (0..n).for_each(|i| cpu::invlpg(BASE + i * 4096)));
        let mut s = [cost];
        report_with(&format!("tlb_invlpg_{n}_then_touch_64"), &mut s, "");
        if cost >= full && threshold == WORKING_SET {
            threshold = n;
        }
    }
    let mut s = [full];
    report("tlb_full_flush_then_touch_64", &mut s);
    log::info!(
        "bench: page-by-page flushing stops paying at {threshold} pages (kernel threshold: {} pages)",
        crate::mm::tlb::full_flush_threshold()
    );
    space.unmap_range(BASE, WORKING_SET, PageSize::Small, |_, _| {}).expect("bench: unmap");
    space.deactivate();
}
