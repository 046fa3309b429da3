//! The server's own heap. It cannot ask itself for pages over IPC, so it
//! installs its own grower in the runtime's heap: frames mapped into its
//! own address space at `SERVER_HEAP` and up. Before the pool exists (the
//! pool's bitmaps are the first big allocation) they are carved from the
//! start of the largest range; the pool then leaves those out. Afterwards
//! they come from the pool. Either way they are the server's for good and
//! show in its books as held by the server.
//!
//! The grower runs under the heap's lock, so it must not allocate: it only
//! takes locks under which nothing allocates (the pool's, the carver's).

use crate::SERVER;
use crate::pool::Pool;
use abi::cap::Handle;
use abi::handles::{PHYS_FIRST, SELF_SPACE};
use abi::mem::{MapFlags, PAGE_SIZE};
use core::sync::atomic::{AtomicU64, Ordering};
use mm_core::layout::SERVER_HEAP;
use user::lock::Mutex;
use user::sys;

/// Where frames come from before the pool exists.
struct Carver {
    /// The range carved from (`None`: not chosen yet).
    range: Option<(u16, Handle, u64)>,
    /// Pages carved so far (from the range's first page up).
    carved: u64,
    /// The pool took over: no more carving.
    done: bool,
}

static CARVER: Mutex<Carver> = Mutex::new(Carver { range: None, carved: 0, done: false });
/// Physical-memory capabilities the kernel gave (at `PHYS_FIRST..`).
static RANGES: AtomicU64 = AtomicU64::new(0);
/// The heap's next address.
static NEXT: AtomicU64 = AtomicU64::new(SERVER_HEAP);
/// Pages the heap holds.
static PAGES: AtomicU64 = AtomicU64::new(0);

/// Installs the grower; `ranges` is how many range capabilities there are.
pub fn init(ranges: u64) {
    RANGES.store(ranges, Ordering::Relaxed);
    #[allow(unsafe_code)]
    // SAFETY: `grow` maps fresh frames, owned by nothing else from then on,
    // writable and zeroed, at addresses nothing else uses (the heap window
    // of the server's own space), and does not allocate.
    unsafe {
        user::heap::set_grower(grow)
    };
}

/// Pages the server holds for its heap.
pub fn pages() -> u64 {
    PAGES.load(Ordering::Relaxed)
}

/// Ends carving: → the index of the range carved from and how many pages
/// of it (from its first) the heap took. Nothing may allocate between this
/// and the pool being published in `SERVER`.
pub fn stop_carving() -> Option<(u16, u64)> {
    let mut c = CARVER.lock();
    c.done = true;
    c.range.map(|(index, _, _)| (index, c.carved))
}

fn grow(bytes: u64) -> Option<(u64, u64)> {
    let pages = bytes / PAGE_SIZE;
    // The heap's lock is held, so no other grower runs concurrently.
    let at = NEXT.load(Ordering::Relaxed);
    let mapped = match SERVER.get() {
        Some(server) => from_pool(&server.pool, at, pages),
        None if carve(at, pages) => pages,
        None => 0,
    };
    if mapped == 0 {
        return None;
    }
    NEXT.store(at + mapped * PAGE_SIZE, Ordering::Relaxed);
    PAGES.fetch_add(mapped, Ordering::Relaxed);
    Some((at, mapped * PAGE_SIZE))
}

fn map(cap: Handle, first: u64, at: u64, pages: u64) -> bool {
    sys::mem_map(SELF_SPACE, cap, first, at, pages, MapFlags::WRITE | MapFlags::ZERO).is_ok()
}

/// The largest range: (index, capability, pages).
fn largest() -> Option<(u16, Handle, u64)> {
    (0..RANGES.load(Ordering::Relaxed) as u16)
        .filter_map(|i| {
            let cap = Handle::new(PHYS_FIRST + i, 0);
            sys::phys_info(cap).ok().map(|(_, pages)| (i, cap, pages))
        })
        .max_by_key(|&(_, _, pages)| pages)
}

fn carve(at: u64, pages: u64) -> bool {
    let mut c = CARVER.lock();
    if c.done {
        return false;
    }
    if c.range.is_none() {
        c.range = largest();
    }
    let Some((_, cap, size)) = c.range else { return false };
    if c.carved + pages > size || !map(cap, c.carved, at, pages) {
        return false;
    }
    c.carved += pages;
    true
}

/// Maps `pages` frames of the pool at `at`: → how many it mapped (fewer
/// only when the pool runs dry).
fn from_pool(pool: &Pool, at: u64, pages: u64) -> u64 {
    if let Some(f) = pool.take_contiguous(pages, 1) {
        if map(pool.ranges[f.range as usize].cap, f.page as u64, at, pages) {
            return pages;
        }
        pool.give_contiguous(f, pages);
        return 0;
    }
    // Scattered frames, a page at a time (growth is rare).
    for i in 0..pages {
        let Some(f) = pool.take_contiguous(1, 1) else { return i };
        if !map(pool.ranges[f.range as usize].cap, f.page as u64, at + i * PAGE_SIZE, 1) {
            pool.give_contiguous(f, 1);
            return i;
        }
    }
    pages
}
