//! The frames the server owns: the physical ranges the kernel gave it, a
//! bitmap per range behind one lock (the shared pool), and a cache per
//! worker in front of it.
//!
//! Each worker is pinned to its CPU and alone uses its cache, so the common
//! path (take or return a page) takes no lock; the shared pool is touched
//! once per [`BATCH`] pages. 2 MiB and contiguous requests go to the pool.
//!
//! Nothing allocates heap memory while holding the pool's lock: the
//! server's heap grows by taking frames from this pool (see `heap`).

use abi::cap::Handle;
use abi::handles::PHYS_FIRST;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel_core::frame_bitmap::FrameBitmap;
use mm_core::runs::Frame;
use user::lock::Mutex;
use user::sys;

/// Pages moved between a worker cache and the pool at once.
pub const BATCH: usize = 64;
/// Pages a worker cache holds at most.
pub const CACHE_MAX: usize = 2 * BATCH;

/// One physical range.
pub struct Range {
    /// Its capability.
    pub cap: Handle,
    /// Physical base.
    pub base: u64,
    /// Pages.
    pub pages: u64,
}

/// The shared pool.
pub struct Pool {
    /// The ranges, in capability order.
    pub ranges: Vec<Range>,
    bitmaps: Mutex<Vec<FrameBitmap<'static>>>,
    /// Pages in all ranges.
    pub total: u64,
    free_in_pool: AtomicU64,
}

impl Pool {
    /// Builds the pool from the `count` capabilities the kernel put at
    /// `PHYS_FIRST..`, leaving out the pages the heap carved before it.
    pub fn new(count: u64) -> Self {
        let infos: Vec<(Handle, u64, u64)> = (0..count as u16)
            .map(|i| Handle::new(PHYS_FIRST + i, 0))
            .filter_map(|cap| sys::phys_info(cap).ok().map(|(base, pages)| (cap, base, pages)))
            .collect();
        // Everything is allocated before carving stops (see `heap`).
        let storage: Vec<(&'static mut [u64], &'static mut [u16])> = infos
            .iter()
            .map(|&(_, _, pages)| {
                let bits = alloc::vec![0u64; FrameBitmap::words_needed(pages)].leak();
                let chunks = alloc::vec![0u16; FrameBitmap::chunks_needed(pages)].leak();
                (bits, chunks)
            })
            .collect();
        let mut ranges = Vec::with_capacity(infos.len());
        let mut bitmaps = Vec::with_capacity(infos.len());
        let carved = crate::heap::stop_carving();
        let mut total = 0;
        let mut free = 0;
        for (&(cap, base, pages), (bits, chunks)) in infos.iter().zip(storage) {
            let mut map = FrameBitmap::new(bits, chunks, pages);
            let skip = match carved {
                Some((r, n)) if cap.index() == PHYS_FIRST + r => n.min(pages),
                _ => 0,
            };
            if skip < pages {
                map.add_free(skip, pages - skip).expect("a fresh bitmap takes its whole range");
            }
            total += pages;
            free += pages - skip;
            ranges.push(Range { cap, base, pages });
            bitmaps.push(map);
        }
        Self { ranges, bitmaps: Mutex::new(bitmaps), total, free_in_pool: AtomicU64::new(free) }
    }

    /// Pages free in the shared pool (not counting worker caches).
    pub fn free(&self) -> u64 {
        self.free_in_pool.load(Ordering::Relaxed)
    }

    /// Takes up to `want` single pages into `out`.
    fn take(&self, out: &mut Vec<Frame>, want: usize) {
        out.reserve(want);
        let mut maps = self.bitmaps.lock();
        let mut got = 0;
        for (r, map) in maps.iter_mut().enumerate() {
            while got < want {
                match map.alloc() {
                    Some(p) => {
                        out.push(Frame { range: r as u16, page: p as u32 });
                        got += 1;
                    }
                    None => break,
                }
            }
        }
        self.free_in_pool.fetch_sub(got as u64, Ordering::Relaxed);
    }

    /// Returns pages to the pool.
    pub fn give(&self, frames: &[Frame]) {
        let mut maps = self.bitmaps.lock();
        for f in frames {
            maps[f.range as usize].free(f.page as u64).expect("a frame was returned twice");
        }
        self.free_in_pool.fetch_add(frames.len() as u64, Ordering::Relaxed);
    }

    /// Takes `count` physically contiguous pages (aligned to `align`
    /// pages) from one range.
    pub fn take_contiguous(&self, count: u64, align: u64) -> Option<Frame> {
        let mut maps = self.bitmaps.lock();
        for (r, map) in maps.iter_mut().enumerate() {
            if let Some(p) = map.alloc_contiguous(count, align) {
                self.free_in_pool.fetch_sub(count, Ordering::Relaxed);
                return Some(Frame { range: r as u16, page: p as u32 });
            }
        }
        None
    }

    /// Returns `count` contiguous pages from `first`.
    pub fn give_contiguous(&self, first: Frame, count: u64) {
        let mut maps = self.bitmaps.lock();
        for p in first.page as u64..first.page as u64 + count {
            maps[first.range as usize].free(p).expect("a frame was returned twice");
        }
        self.free_in_pool.fetch_add(count, Ordering::Relaxed);
    }
}

/// A worker's private cache.
pub struct Cache {
    frames: Vec<Frame>,
    /// Published size, for statistics.
    size: &'static AtomicU64,
}

impl Cache {
    /// An empty cache publishing its size in `size`.
    pub fn new(size: &'static AtomicU64) -> Self {
        Self { frames: Vec::with_capacity(CACHE_MAX), size }
    }

    /// Takes `n` pages (refilling from `pool`); `None` if not enough exist
    /// (nothing taken then).
    pub fn take(&mut self, pool: &Pool, n: usize) -> Option<Vec<Frame>> {
        if self.frames.len() < n {
            let want = (n - self.frames.len()).max(BATCH);
            pool.take(&mut self.frames, want);
        }
        if self.frames.len() < n {
            self.spill(pool, 0);
            return None;
        }
        let at = self.frames.len() - n;
        let out = self.frames.split_off(at);
        self.size.store(self.frames.len() as u64, Ordering::Relaxed);
        Some(out)
    }

    /// Takes pages back; spills to the pool above [`CACHE_MAX`].
    pub fn give(&mut self, pool: &Pool, frames: impl IntoIterator<Item = Frame>) {
        self.frames.extend(frames);
        if self.frames.len() > CACHE_MAX {
            self.spill(pool, BATCH);
        }
        self.size.store(self.frames.len() as u64, Ordering::Relaxed);
    }

    fn spill(&mut self, pool: &Pool, keep: usize) {
        if self.frames.len() > keep {
            let extra = self.frames.split_off(keep);
            pool.give(&extra);
        }
        self.size.store(self.frames.len() as u64, Ordering::Relaxed);
    }
}
