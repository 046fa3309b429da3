//! The frames the server owns: the physical ranges the kernel gave it, a
//! bitmap per range behind one lock (the shared pool), and a cache per
//! worker in front of it.
//!
//! Each worker is pinned to its CPU and alone uses its cache, so the common
//! path (take or return a page) takes no lock; the shared pool is touched
//! once per [`BATCH`] pages. 2 MiB and contiguous requests go to the pool.

use abi::cap::Handle;
use abi::handles::PHYS_FIRST;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel_core::frame_bitmap::FrameBitmap;
use mm_core::runs::Frame;
use spin::Mutex;
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
    /// `PHYS_FIRST..`.
    pub fn new(count: u64) -> Self {
        let mut ranges = Vec::new();
        let mut bitmaps = Vec::new();
        let mut total = 0;
        for i in 0..count {
            let cap = Handle::new(PHYS_FIRST + i as u16, 0);
            let Ok((base, pages)) = sys::phys_info(cap) else { continue };
            let bits = alloc::vec![0u64; FrameBitmap::words_needed(pages)].leak();
            let chunks = alloc::vec![0u16; FrameBitmap::chunks_needed(pages)].leak();
            let mut map = FrameBitmap::new(bits, chunks, pages);
            map.add_free(0, pages).expect("a fresh bitmap takes its whole range");
            total += pages;
            ranges.push(Range { cap, base, pages });
            bitmaps.push(map);
        }
        Self { ranges, bitmaps: Mutex::new(bitmaps), total, free_in_pool: AtomicU64::new(total) }
    }

    /// Pages free in the shared pool (not counting worker caches).
    pub fn free(&self) -> u64 {
        self.free_in_pool.load(Ordering::Relaxed)
    }

    /// Takes up to `out.len()` single pages.
    fn take(&self, out: &mut Vec<Frame>, want: usize) {
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
