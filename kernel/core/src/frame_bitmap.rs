//! The shared pool of physical frames: one bit per 4 KiB frame plus a free
//! count per 2 MiB chunk.
//!
//! The bitmap is the single source of truth for whether a frame is free, so
//! a double free is caught rather than corrupting the pool. The per-chunk
//! counts make both common searches cheap: a 4 KiB allocation skips full
//! chunks and prefers partly used ones (keeping whole chunks intact for
//! 2 MiB requests), and a 2 MiB allocation looks for a chunk whose count is
//! 512. The kernel puts per-CPU caches in front of this pool, so it is only
//! reached in batches.

use crate::PAGES_PER_LARGE;

const CHUNK: u64 = PAGES_PER_LARGE;
const WORDS_PER_CHUNK: usize = (CHUNK / 64) as usize;

/// Why a frame could not be given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    /// The frame is outside the memory the pool covers.
    OutOfRange,
    /// The frame is already free: a double free.
    AlreadyFree,
    /// A 2 MiB frame was not 2 MiB-aligned.
    Misaligned,
}

/// The pool. It borrows its storage, which the kernel carves from RAM at
/// boot before it has a heap.
pub struct FrameBitmap<'a> {
    bits: &'a mut [u64],
    chunk_free: &'a mut [u16],
    frames: u64,
    free: u64,
    cursor: usize,
}

impl<'a> FrameBitmap<'a> {
    /// `u64` words of bitmap needed for `frames` frames.
    pub const fn words_needed(frames: u64) -> usize {
        frames.div_ceil(CHUNK) as usize * WORDS_PER_CHUNK
    }

    /// `u16` chunk counters needed for `frames` frames.
    pub const fn chunks_needed(frames: u64) -> usize {
        frames.div_ceil(CHUNK) as usize
    }

    /// A pool covering frames `0..frames`, all of them in use; free memory
    /// is added with [`Self::add_free`]. The storage is cleared here.
    pub fn new(bits: &'a mut [u64], chunk_free: &'a mut [u16], frames: u64) -> Self {
        assert!(bits.len() >= Self::words_needed(frames), "bitmap storage too small");
        assert!(chunk_free.len() >= Self::chunks_needed(frames), "chunk storage too small");
        bits.fill(0);
        chunk_free.fill(0);
        let chunks = Self::chunks_needed(frames);
        Self { bits, chunk_free: &mut chunk_free[..chunks], frames, free: 0, cursor: 0 }
    }

    /// Frames covered (free or not).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames currently free in the pool.
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    /// Whether `frame` is free.
    pub fn is_free(&self, frame: u64) -> bool {
        frame < self.frames && self.bits[(frame / 64) as usize] & (1 << (frame % 64)) != 0
    }

    fn chunk_len(&self, chunk: usize) -> u16 {
        (self.frames - chunk as u64 * CHUNK).min(CHUNK) as u16
    }

    fn mark_free(&mut self, frame: u64) -> Result<(), FreeError> {
        if frame >= self.frames {
            return Err(FreeError::OutOfRange);
        }
        let (word, bit) = ((frame / 64) as usize, frame % 64);
        if self.bits[word] & (1 << bit) != 0 {
            return Err(FreeError::AlreadyFree);
        }
        self.bits[word] |= 1 << bit;
        self.chunk_free[(frame / CHUNK) as usize] += 1;
        self.free += 1;
        Ok(())
    }

    /// Adds `count` frames from `first` to the pool (boot, and reclaiming the
    /// boot loader's memory). Stops at the first frame that is already free
    /// or out of range and reports it; frames before it stay added.
    pub fn add_free(&mut self, first: u64, count: u64) -> Result<(), FreeError> {
        (first..first + count).try_for_each(|f| self.mark_free(f))
    }

    /// Gives one frame back.
    pub fn free(&mut self, frame: u64) -> Result<(), FreeError> {
        self.mark_free(frame)
    }

    fn take_from_chunk(&mut self, chunk: usize) -> u64 {
        let first_word = chunk * WORDS_PER_CHUNK;
        for w in first_word..first_word + WORDS_PER_CHUNK {
            let word = self.bits[w];
            if word != 0 {
                let bit = word.trailing_zeros();
                self.bits[w] &= !(1 << bit);
                self.chunk_free[chunk] -= 1;
                self.free -= 1;
                return w as u64 * 64 + bit as u64;
            }
        }
        unreachable!("chunk {chunk} counted free frames that its bits do not have")
    }

    /// Takes one free frame, preferring chunks that are already partly used.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free == 0 {
            return None;
        }
        let n = self.chunk_free.len();
        let partial = (0..n)
            .map(|i| (self.cursor + i) % n)
            .find(|&c| self.chunk_free[c] != 0 && self.chunk_free[c] < self.chunk_len(c));
        let chunk = match partial {
            Some(c) => c,
            None => (0..n).map(|i| (self.cursor + i) % n).find(|&c| self.chunk_free[c] != 0)?,
        };
        self.cursor = chunk;
        Some(self.take_from_chunk(chunk))
    }

    /// Fills `out` with free frames as far as possible; returns how many.
    pub fn alloc_batch(&mut self, out: &mut [u64]) -> usize {
        for (i, slot) in out.iter_mut().enumerate() {
            match self.alloc() {
                Some(f) => *slot = f,
                None => return i,
            }
        }
        out.len()
    }

    /// Takes a whole free 2 MiB chunk; returns its first frame.
    pub fn alloc_large(&mut self) -> Option<u64> {
        let chunk = (0..self.chunk_free.len()).find(|&c| self.chunk_free[c] as u64 == CHUNK)?;
        let first_word = chunk * WORDS_PER_CHUNK;
        self.bits[first_word..first_word + WORDS_PER_CHUNK].fill(0);
        self.chunk_free[chunk] = 0;
        self.free -= CHUNK;
        Some(chunk as u64 * CHUNK)
    }

    /// Gives back a 2 MiB frame taken by [`Self::alloc_large`]. Checks every
    /// frame first, so an error changes nothing.
    pub fn free_large(&mut self, first: u64) -> Result<(), FreeError> {
        if !first.is_multiple_of(CHUNK) {
            return Err(FreeError::Misaligned);
        }
        if first + CHUNK > self.frames {
            return Err(FreeError::OutOfRange);
        }
        let first_word = (first / 64) as usize;
        if self.bits[first_word..first_word + WORDS_PER_CHUNK].iter().any(|&w| w != 0) {
            return Err(FreeError::AlreadyFree);
        }
        self.bits[first_word..first_word + WORDS_PER_CHUNK].fill(u64::MAX);
        self.chunk_free[(first / CHUNK) as usize] = CHUNK as u16;
        self.free += CHUNK;
        Ok(())
    }

    /// Takes `count` physically contiguous frames whose first frame is a
    /// multiple of `align` (in frames, a power of two).
    pub fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        assert!(align.is_power_of_two());
        if count == 0 || count > self.free {
            return None;
        }
        let mut start = 0;
        while start + count <= self.frames {
            match (start..start + count).find(|&f| !self.is_free(f)) {
                None => {
                    for f in start..start + count {
                        self.bits[(f / 64) as usize] &= !(1 << (f % 64));
                        self.chunk_free[(f / CHUNK) as usize] -= 1;
                    }
                    self.free -= count;
                    return Some(start);
                }
                Some(used) => start = (used + 1).next_multiple_of(align),
            }
        }
        None
    }

    /// Checks that the chunk counts and the free total agree with the bits.
    pub fn check_consistency(&self) -> Result<(), &'static str> {
        let mut total = 0;
        for (c, &count) in self.chunk_free.iter().enumerate() {
            let first_word = c * WORDS_PER_CHUNK;
            let ones: u32 =
                self.bits[first_word..first_word + WORDS_PER_CHUNK].iter().map(|w| w.count_ones()).sum();
            if ones != count as u32 {
                return Err("a chunk's free count disagrees with its bits");
            }
            total += ones as u64;
        }
        if total != self.free { Err("the free total disagrees with the bits") } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn pool(frames: u64) -> FrameBitmap<'static> {
        let bits = vec![0u64; FrameBitmap::words_needed(frames)].leak();
        let chunks = vec![0u16; FrameBitmap::chunks_needed(frames)].leak();
        FrameBitmap::new(bits, chunks, frames)
    }

    #[test]
    fn allocates_every_frame_once() {
        let mut p = pool(3000);
        p.add_free(10, 2000).unwrap();
        assert_eq!(p.free_frames(), 2000);
        let mut seen = HashSet::new();
        while let Some(f) = p.alloc() {
            assert!((10..2010).contains(&f));
            assert!(seen.insert(f), "frame {f} handed out twice");
        }
        assert_eq!(seen.len(), 2000);
        assert_eq!(p.free_frames(), 0);
        p.check_consistency().unwrap();
        for f in seen {
            p.free(f).unwrap();
        }
        assert_eq!(p.free_frames(), 2000);
        p.check_consistency().unwrap();
    }

    #[test]
    fn catches_double_and_stray_frees() {
        let mut p = pool(1024);
        p.add_free(0, 1024).unwrap();
        let f = p.alloc().unwrap();
        p.free(f).unwrap();
        assert_eq!(p.free(f), Err(FreeError::AlreadyFree));
        assert_eq!(p.free(5000), Err(FreeError::OutOfRange));
        assert_eq!(p.add_free(0, 1), Err(FreeError::AlreadyFree));
        p.check_consistency().unwrap();
    }

    #[test]
    fn small_allocations_keep_whole_chunks_for_large_ones() {
        let mut p = pool(2048);
        p.add_free(0, 2048).unwrap();
        let small: Vec<u64> = (0..100).map(|_| p.alloc().unwrap()).collect();
        // All 100 came from one chunk, so three whole chunks remain.
        let chunks: HashSet<u64> = small.iter().map(|f| f / 512).collect();
        assert_eq!(chunks.len(), 1);
        let larges: Vec<u64> = (0..3).map(|_| p.alloc_large().unwrap()).collect();
        assert!(larges.iter().all(|f| f % 512 == 0));
        assert_eq!(p.alloc_large(), None);
        for l in larges {
            p.free_large(l).unwrap();
        }
        assert_eq!(p.free_large(512 * 5), Err(FreeError::OutOfRange));
        assert_eq!(p.free_large(3), Err(FreeError::Misaligned));
        p.check_consistency().unwrap();
    }

    #[test]
    fn free_large_refuses_partly_free_chunks() {
        let mut p = pool(1024);
        p.add_free(0, 1024).unwrap();
        let l = p.alloc_large().unwrap();
        p.free(l + 7).unwrap();
        assert_eq!(p.free_large(l), Err(FreeError::AlreadyFree));
        assert_eq!(p.free_frames(), 512 + 1);
    }

    #[test]
    fn contiguous_runs_respect_alignment_and_holes() {
        let mut p = pool(4096);
        p.add_free(1, 100).unwrap();
        p.add_free(200, 1000).unwrap();
        let run = p.alloc_contiguous(150, 16).unwrap();
        assert_eq!(run, 208);
        assert!((run..run + 150).all(|f| !p.is_free(f)));
        assert_eq!(p.alloc_contiguous(5000, 1), None);
        assert_eq!(p.alloc_contiguous(0, 1), None);
        p.check_consistency().unwrap();
    }

    #[test]
    fn batches_stop_at_exhaustion() {
        let mut p = pool(600);
        p.add_free(0, 40).unwrap();
        let mut out = [0u64; 32];
        assert_eq!(p.alloc_batch(&mut out), 32);
        assert_eq!(p.alloc_batch(&mut out), 8);
        assert_eq!(p.alloc_batch(&mut out), 0);
    }
}
