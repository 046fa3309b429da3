//! The kernel heap: `talc` as the global allocator, over the heap window,
//! growing by mapping fresh frames whenever it runs out.
//!
//! Growth maps pages only (no unmapping, hence no shootdown under the heap
//! lock). If no frame is left, the allocation fails and Rust reports an
//! allocation error; nothing is overwritten. The heap never shrinks.

use super::frame;
use super::kernel_space::kernel_space;
use super::paging::{Access, PageSize};
use crate::kcore::layout::{HEAP_BASE, HEAP_MAX};
use crate::kcore::mem_kind::FrameUse;
use crate::kcore::PAGE_SIZE;
use crate::sync::IrqRawMutex;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use talc::base::binning::Binning;
use talc::base::Talc;
use talc::source::Source;
use talc::TalcLock;

/// The heap grows by at least this much at a time.
const GROW_MIN: u64 = 256 * 1024;

static MAPPED: AtomicU64 = AtomicU64::new(0);

/// Bytes of heap window mapped so far.
pub fn mapped_bytes() -> u64 {
    MAPPED.load(Ordering::Relaxed)
}

/// Grows the heap on demand.
#[derive(Debug)]
pub struct HeapGrower {
    /// The end talc knows (None before the first claim).
    end: Option<NonNull<u8>>,
}

// SAFETY: the pointer is only an address in the heap window, used under the
// allocator's lock.
unsafe impl Send for HeapGrower {}

/// Maps up to `bytes` more at the heap's end; returns how much it mapped.
fn map_more(bytes: u64) -> u64 {
    let start = HEAP_BASE + MAPPED.load(Ordering::Relaxed);
    let bytes = bytes.min(HEAP_BASE + HEAP_MAX - start);
    let mut mapped = 0;
    while mapped < bytes {
        let Ok(f) = frame::alloc(FrameUse::Heap) else { break };
        if kernel_space().map(start + mapped, f.start_address().as_u64(), PageSize::Small, Access::KERNEL_DATA).is_err() {
            frame::free(f, FrameUse::Heap);
            break;
        }
        mapped += PAGE_SIZE;
    }
    MAPPED.fetch_add(mapped, Ordering::Relaxed);
    mapped
}

// SAFETY: `acquire` only claims or extends with freshly mapped memory that
// nothing else uses, and never touches the global allocator.
unsafe impl Source for HeapGrower {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        let want = (layout.size() as u64 + layout.align() as u64 + PAGE_SIZE).next_multiple_of(PAGE_SIZE).max(GROW_MIN);
        // Refuse up front what RAM cannot hold, rather than mapping every
        // free frame into the heap and then failing anyway.
        if want / PAGE_SIZE > frame::stats().free() {
            return Err(());
        }
        let old_mapped = MAPPED.load(Ordering::Relaxed);
        let got = map_more(want);
        if got == 0 {
            return Err(());
        }
        let new_end = (HEAP_BASE + old_mapped + got) as *mut u8;
        talc.source.end = Some(match talc.source.end {
            // SAFETY: [HEAP_BASE, new_end) is mapped, writable and unused.
            None => unsafe { talc.claim(HEAP_BASE as *mut u8, got as usize) }.ok_or(())?,
            // SAFETY: [end, new_end) was just mapped right after the heap.
            Some(end) => unsafe { talc.extend(end, new_end) },
        });
        Ok(())
    }
}

#[global_allocator]
static HEAP: TalcLock<IrqRawMutex, HeapGrower> = TalcLock::new(HeapGrower { end: None });
