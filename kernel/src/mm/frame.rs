//! The frame allocator: a per-CPU cache of free 4 KiB frames in front of
//! one shared pool ([`FrameBitmap`]).
//!
//! The common path (allocate or free one frame) touches only the current
//! CPU's cache, under that cache's own lock, which no other CPU takes
//! unless the pool runs dry and it must collect cached frames. The cache
//! refills from and spills to the pool in batches, so the shared pool lock
//! is taken once per [`BATCH`] frames. 2 MiB frames and contiguous runs come
//! straight from the pool; they are rare.
//!
//! Every frame taken is counted against a [`FrameUse`], per CPU, so that
//! `free + sum(used) == managed` can be checked at any quiescent point.

use crate::arch::cpu::InterruptGuard;
use crate::arch::paging::phys_to_virt;
use crate::kcore::frame_bitmap::{FrameBitmap, FreeError};
use crate::kcore::mem_kind::FrameUse;
use crate::kcore::{LARGE_PAGE_SIZE, PAGE_SIZE};
use crate::sync::SpinLock;
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::structures::paging::{PhysFrame, Size2MiB, Size4KiB};
use x86_64::PhysAddr;

/// Frames a CPU cache holds at most.
const CACHE_CAP: usize = 64;
/// Frames moved between a cache and the pool at once.
const BATCH: usize = 32;

/// No free frame (of the requested kind) is left anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfFrames;

/// A CPU's cache of free frames and its share of the usage counters.
pub struct FrameCache {
    inner: spin::Mutex<CacheInner>,
}

struct CacheInner {
    frames: [u64; CACHE_CAP],
    len: usize,
    used: [i64; FrameUse::COUNT],
}

impl FrameCache {
    /// An empty cache.
    pub const fn new() -> Self {
        Self { inner: spin::Mutex::new(CacheInner { frames: [0; CACHE_CAP], len: 0, used: [0; FrameUse::COUNT] }) }
    }
}

impl Default for FrameCache {
    fn default() -> Self {
        Self::new()
    }
}

static POOL: SpinLock<Option<FrameBitmap<'static>>> = SpinLock::new(None);
/// Frames ever handed to the pool (boot RAM, then reclaimed loader memory).
static MANAGED: AtomicU64 = AtomicU64::new(0);

/// Sets up the pool over `frames` frames, keeping its bitmap (`words`
/// 64-bit words) in the `pages` pages at physical `storage`, which the
/// caller took out of the usable RAM; they are counted as frame metadata.
pub fn init_at(storage: u64, words: usize, frames: u64, pages: u64) {
    assert!(words as u64 * 8 <= pages * PAGE_SIZE);
    // SAFETY: the caller reserved these pages of RAM for the bitmap; they
    // are in the direct map and nothing else uses them.
    let storage = unsafe { core::slice::from_raw_parts_mut(phys_to_virt(storage) as *mut u64, words) };
    let (bits, rest) = storage.split_at_mut(FrameBitmap::words_needed(frames));
    let chunks = FrameBitmap::chunks_needed(frames);
    // SAFETY: `rest` holds at least chunks/4 u64 words (see words computed
    // by the caller), so it is large and aligned enough for `chunks` u16s.
    let chunk_free = unsafe { core::slice::from_raw_parts_mut(rest.as_mut_ptr().cast::<u16>(), chunks) };
    *POOL.lock() = Some(FrameBitmap::new(bits, chunk_free, frames));
    add_used(FrameUse::FrameMetadata, pages as i64);
    MANAGED.fetch_add(pages, Ordering::Relaxed);
}

/// Adds `[start, end)` (physical, page-aligned) to the pool.
pub fn add_range(start: u64, end: u64) -> Result<(), FreeError> {
    let mut pool = POOL.lock();
    let pool = pool.as_mut().expect("frame pool not initialised");
    let (first, count) = (start / PAGE_SIZE, (end - start) / PAGE_SIZE);
    pool.add_free(first, count)?;
    MANAGED.fetch_add(count, Ordering::Relaxed);
    Ok(())
}

fn add_used(kind: FrameUse, delta: i64) {
    let cpu = crate::cpu::current();
    let _masked = InterruptGuard::new();
    cpu.frames.inner.lock().used[kind as usize] += delta;
}

fn frame(addr: u64) -> PhysFrame<Size4KiB> {
    PhysFrame::containing_address(PhysAddr::new(addr))
}

/// Takes one 4 KiB frame for `kind`. Its contents are arbitrary.
pub fn alloc(kind: FrameUse) -> Result<PhysFrame<Size4KiB>, OutOfFrames> {
    let _masked = InterruptGuard::new();
    let cpu = crate::cpu::current();
    let mut drained = false;
    loop {
        {
            let mut cache = cpu.frames.inner.lock();
            if cache.len > 0 {
                cache.len -= 1;
                let f = cache.frames[cache.len];
                cache.used[kind as usize] += 1;
                return Ok(frame(f));
            }
        }
        // Refill outside the cache lock: the lock order is pool, then never
        // a cache (see `stats`), so no CPU ever holds both.
        let mut batch = [0u64; BATCH];
        let n = POOL.lock().as_mut().expect("frame pool not initialised").alloc_batch(&mut batch);
        if n == 0 {
            if drained {
                return Err(OutOfFrames);
            }
            // The pool is dry: gather what other CPUs cache and retry once.
            drain_other_caches();
            drained = true;
            continue;
        }
        let mut cache = cpu.frames.inner.lock();
        for f in &batch[..n] {
            if cache.len < CACHE_CAP {
                let at = cache.len;
                cache.frames[at] = f * PAGE_SIZE;
                cache.len += 1;
            } else {
                drop(cache);
                give_to_pool(&[f * PAGE_SIZE]);
                cache = cpu.frames.inner.lock();
            }
        }
    }
}

fn drain_other_caches() {
    let me = crate::cpu::current_index();
    for cpu in crate::cpu::all().filter(|c| c.index() != me) {
        let mut taken = [0u64; CACHE_CAP];
        let n = {
            let mut cache = cpu.frames.inner.lock();
            let n = cache.len;
            taken[..n].copy_from_slice(&cache.frames[..n]);
            cache.len = 0;
            n
        };
        give_to_pool(&taken[..n]);
    }
}

fn give_to_pool(frames: &[u64]) {
    if frames.is_empty() {
        return;
    }
    let mut pool = POOL.lock();
    let pool = pool.as_mut().expect("frame pool not initialised");
    for &f in frames {
        if let Err(e) = pool.free(f / PAGE_SIZE) {
            panic!("frame {f:#x} returned to the pool twice or out of range: {e:?}");
        }
    }
}

/// Takes one 4 KiB frame for `kind`, filled with zeros.
pub fn alloc_zeroed(kind: FrameUse) -> Result<PhysFrame<Size4KiB>, OutOfFrames> {
    let f = alloc(kind)?;
    // SAFETY: the frame was just allocated, so it is ours and RAM.
    unsafe { zero(f.start_address().as_u64(), PAGE_SIZE) };
    Ok(f)
}

/// Fills `len` bytes of physical memory at `phys` with zeros.
///
/// # Safety
/// The caller must own that memory (e.g. just allocated it), and it must be
/// RAM (so mapped in the direct map).
pub unsafe fn zero(phys: u64, len: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { core::ptr::write_bytes(phys_to_virt(phys) as *mut u8, 0, len as usize) };
}

/// Gives back a 4 KiB frame taken for `kind`. Freeing a frame twice is
/// caught (at the latest when it reaches the pool) and is fatal: it means
/// two owners.
pub fn free(f: PhysFrame<Size4KiB>, kind: FrameUse) {
    let addr = f.start_address().as_u64();
    let _masked = InterruptGuard::new();
    let cpu = crate::cpu::current();
    let spill = {
        let mut cache = cpu.frames.inner.lock();
        debug_assert!(!cache.frames[..cache.len].contains(&addr), "frame {addr:#x} freed twice");
        cache.used[kind as usize] -= 1;
        if cache.len < CACHE_CAP {
            let at = cache.len;
            cache.frames[at] = addr;
            cache.len += 1;
            return;
        }
        // Full: keep this frame, spill the older half.
        let mut spill = [0u64; BATCH];
        spill.copy_from_slice(&cache.frames[..BATCH]);
        cache.frames.copy_within(BATCH.., 0);
        cache.len -= BATCH;
        let at = cache.len;
        cache.frames[at] = addr;
        cache.len += 1;
        spill
    };
    give_to_pool(&spill);
}

/// Takes a 2 MiB frame (512 contiguous, aligned frames) for `kind`.
pub fn alloc_large(kind: FrameUse) -> Result<PhysFrame<Size2MiB>, OutOfFrames> {
    let take = || POOL.lock().as_mut().expect("frame pool not initialised").alloc_large();
    let first = match take() {
        Some(f) => f,
        None => {
            drain_other_caches();
            take().ok_or(OutOfFrames)?
        }
    };
    add_used(kind, (LARGE_PAGE_SIZE / PAGE_SIZE) as i64);
    Ok(PhysFrame::containing_address(PhysAddr::new(first * PAGE_SIZE)))
}

/// Gives back a 2 MiB frame.
pub fn free_large(f: PhysFrame<Size2MiB>, kind: FrameUse) {
    let first = f.start_address().as_u64() / PAGE_SIZE;
    let result = POOL.lock().as_mut().expect("frame pool not initialised").free_large(first);
    if let Err(e) = result {
        panic!("2 MiB frame {:#x} freed wrongly: {e:?}", f.start_address().as_u64());
    }
    add_used(kind, -((LARGE_PAGE_SIZE / PAGE_SIZE) as i64));
}

/// Gives back `count` contiguous frames from `start`.
pub fn free_contiguous(start: u64, count: u64, kind: FrameUse) {
    {
        let mut pool = POOL.lock();
        let pool = pool.as_mut().expect("frame pool not initialised");
        for f in start / PAGE_SIZE..start / PAGE_SIZE + count {
            if let Err(e) = pool.free(f) {
                panic!("frame {:#x} freed wrongly: {e:?}", f * PAGE_SIZE);
            }
        }
    }
    add_used(kind, -(count as i64));
}

/// A snapshot of the allocator's books.
#[derive(Debug, Clone, Copy)]
pub struct FrameStats {
    /// Frames ever given to the allocator.
    pub managed: u64,
    /// Free frames in the shared pool.
    pub free_in_pool: u64,
    /// Free frames in CPU caches.
    pub free_in_caches: u64,
    /// Frames in use, by kind.
    pub used: [i64; FrameUse::COUNT],
}

impl FrameStats {
    /// All free frames.
    pub fn free(&self) -> u64 {
        self.free_in_pool + self.free_in_caches
    }

    /// All frames in use.
    pub fn used_total(&self) -> i64 {
        self.used.iter().sum()
    }

    /// Whether `free + used == managed`.
    pub fn balanced(&self) -> bool {
        self.free() as i64 + self.used_total() == self.managed as i64
    }
}

/// Reads the books. Exact when no allocation is in flight.
pub fn stats() -> FrameStats {
    let _masked = InterruptGuard::new();
    let mut s = FrameStats { managed: 0, free_in_pool: 0, free_in_caches: 0, used: [0; FrameUse::COUNT] };
    // No CPU holds the pool lock and a cache lock together, so frames in
    // transit between them make a snapshot taken under load inexact; it is
    // exact when nothing is allocating.
    s.free_in_pool = POOL.lock().as_ref().map_or(0, |p| p.free_frames());
    for cpu in crate::cpu::all() {
        let cache = cpu.frames.inner.lock();
        s.free_in_caches += cache.len as u64;
        for (total, &n) in s.used.iter_mut().zip(cache.used.iter()) {
            *total += n;
        }
    }
    s.managed = MANAGED.load(Ordering::Relaxed);
    s
}

/// Checks the pool's internal consistency and the books' balance.
pub fn check() -> Result<FrameStats, &'static str> {
    let s = stats();
    POOL.lock().as_ref().map_or(Ok(()), |p| p.check_consistency())?;
    if !s.balanced() {
        return Err("free + used != managed");
    }
    Ok(s)
}

/// Frames the pool covers (free or not): an upper bound on frame numbers.
pub fn covered_frames() -> u64 {
    POOL.lock().as_ref().map_or(0, |p| p.frames())
}

/// Runs `body` on the contents of frame `f`.
///
/// # Safety
/// The caller must own `f` (e.g. just allocated it) and no other reference
/// to its contents may exist during the call.
pub unsafe fn with_frame_bytes<R>(f: PhysFrame<Size4KiB>, body: impl FnOnce(&mut [u8; 4096]) -> R) -> R {
    // SAFETY: the frame is RAM (so in the direct map) and 4096 bytes long;
    // the caller guarantees exclusive ownership.
    body(unsafe { &mut *(phys_to_virt(f.start_address().as_u64()) as *mut [u8; 4096]) })
}
