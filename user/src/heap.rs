//! The program heap: `talc`, started on a small static arena and grown by
//! pages from the memory server, so that `Vec`, `Box` and `String` work
//! (and thread stacks come from it: see `thread`).
//!
//! Growth asks the installed grower for at least the bytes the allocation
//! needs (rounded up to [`GROW_STEP`]): by default [`crate::mm::alloc_pages`]
//! over the task's `MEMORY` capability, so a task the memory server does
//! not serve lives on the arena alone. The memory server cannot call
//! itself and installs its own (it maps frames of its pool). A new range
//! right after the previous one extends the heap; any other is claimed as
//! a heap of its own. The heap never shrinks: pages stay with the task
//! until it ends.

use crate::lock::YieldLock;
use abi::mem::{MapFlags, PAGE_SIZE};
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use talc::base::binning::Binning;
use talc::base::{Talc, CHUNK_UNIT};
use talc::source::Source;
use talc::TalcLock;

/// Bytes of static arena every program starts with.
const ARENA: usize = 128 * 1024;
/// Least bytes the heap grows by at once.
pub const GROW_STEP: u64 = 256 * 1024;

static mut ARENA_BYTES: [u8; ARENA] = [0; ARENA];

/// Gets `bytes` (a multiple of the page size; fewer only when memory runs
/// out) of fresh, writable memory mapped for this task and owned by
/// nothing else; returns `(address, bytes got)` or `None`.
pub type Grower = fn(bytes: u64) -> Option<(u64, u64)>;

/// The installed grower (0: [`from_memory_server`]).
static GROWER: AtomicUsize = AtomicUsize::new(0);
/// Bytes the heap has grown by beyond the arena.
static GROWN: AtomicU64 = AtomicU64::new(0);

/// Installs `grower` in place of the memory server.
///
/// # Safety
/// What `grower` returns must be as [`Grower`] says: mapped, writable, and
/// used by nothing else for the rest of the task's life; and `grower` must
/// not allocate (it runs under the heap's lock).
pub unsafe fn set_grower(grower: Grower) {
    GROWER.store(grower as usize, Ordering::Release);
}

/// Bytes the heap got beyond its static arena.
pub fn grown_bytes() -> u64 {
    GROWN.load(Ordering::Relaxed)
}

fn from_memory_server(bytes: u64) -> Option<(u64, u64)> {
    let pages = bytes / PAGE_SIZE;
    crate::mm::alloc_pages(pages, MapFlags::WRITE).ok().map(|at| (at, bytes))
}

fn grower() -> Grower {
    match GROWER.load(Ordering::Acquire) {
        0 => from_memory_server,
        // SAFETY: the only non-zero value ever stored is a `Grower` (in
        // `set_grower`), and function pointers round-trip through `usize`.
        f => unsafe { core::mem::transmute::<usize, Grower>(f) },
    }
}

/// The heap's memory source: the arena first, then the grower.
#[derive(Debug)]
pub struct Grow {
    arena_claimed: bool,
    /// The end of the last range got, and the heap end talc reported for it.
    last: Option<(u64, NonNull<u8>)>,
}

// SAFETY: the source only holds addresses of memory the heap owns; it is
// used under the heap's lock.
unsafe impl Send for Grow {}

// SAFETY: `acquire` uses only the `talc` it is given and the grower, which
// must not allocate (`set_grower`'s contract; the default one makes a
// syscall with a message in registers).
unsafe impl Source for Grow {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        if !talc.source.arena_claimed {
            talc.source.arena_claimed = true;
            let base = (&raw mut ARENA_BYTES).cast::<u8>();
            // SAFETY: the arena is a static used by nothing but this heap.
            let end = unsafe { talc.claim(base, ARENA) }.ok_or(())?;
            talc.source.last = Some((base as u64 + ARENA as u64, end));
            return Ok(());
        }
        // Room for the allocation at its alignment, the heap's tags and a
        // possible first-heap setup.
        let need = layout.size() as u64 + layout.align() as u64 + 4 * CHUNK_UNIT as u64;
        let bytes = need.next_multiple_of(GROW_STEP);
        let (at, got) = grower()(bytes).ok_or(())?;
        GROWN.fetch_add(got, Ordering::Relaxed);
        let new_end = (at + got) as *mut u8;
        let end = match talc.source.last {
            // SAFETY: `heap_end` is the end talc gave for the range ending
            // at `at`, and `at..at + got` is fresh memory for the heap.
            Some((last_end, heap_end)) if last_end == at => unsafe { talc.extend(heap_end, new_end) },
            // SAFETY: `at..at + got` is fresh memory for the heap alone.
            _ => unsafe { talc.claim(at as *mut u8, got as usize) }.ok_or(())?,
        };
        talc.source.last = Some((at + got, end));
        Ok(())
    }
}

#[global_allocator]
static HEAP: TalcLock<YieldLock, Grow> = TalcLock::new(Grow { arena_claimed: false, last: None });
