//! A batch of virtual ranges whose translations must leave every TLB, and
//! its encoding as one cache line for the shootdown IPI.
//!
//! A mapping change collects the ranges it touched here; the shootdown then
//! flushes them locally and on every CPU that may hold them. Each range is
//! packed into one word — the page-aligned start address with the page count
//! in the low 12 bits — so a whole request (header plus up to
//! [`MAX_RANGES`] ranges) fits the single 64-byte line the target CPUs read.
//! A batch that does not fit, or whose page count crosses the caller's
//! threshold, is flushed whole instead.

use crate::{LARGE_PAGE_SIZE, PAGE_SIZE};

/// Ranges a request carries before it turns into a full flush.
pub const MAX_RANGES: usize = 7;
/// Units (pages) one encoded range can cover.
const MAX_UNITS: u64 = 2048;
const LARGE_FLAG: u64 = 1 << 11;
const FULL_FLAG: u64 = 1;

/// One range of pages of one size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushRange {
    /// First page's address.
    pub start: u64,
    /// Number of pages.
    pub pages: u64,
    /// Whether the pages are 2 MiB pages (one INVLPG per 2 MiB).
    pub large: bool,
}

impl FlushRange {
    /// Size of each page in bytes.
    pub const fn page_size(&self) -> u64 {
        if self.large { LARGE_PAGE_SIZE } else { PAGE_SIZE }
    }

    /// Address of each page, for INVLPG.
    pub fn page_addresses(&self) -> impl Iterator<Item = u64> + use<> {
        let (start, size) = (self.start, self.page_size());
        (0..self.pages).map(move |i| start + i * size)
    }

    fn encode(&self) -> u64 {
        debug_assert!(self.pages >= 1 && self.pages <= MAX_UNITS);
        self.start | (self.pages - 1) | if self.large { LARGE_FLAG } else { 0 }
    }

    fn decode(word: u64) -> Self {
        Self {
            start: word & !(PAGE_SIZE - 1),
            pages: (word & (MAX_UNITS - 1)) + 1,
            large: word & LARGE_FLAG != 0,
        }
    }
}

/// What a CPU should do for a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPlan {
    /// Nothing was changed.
    Nothing,
    /// INVLPG each page of the batch.
    Pages,
    /// Flush the whole TLB.
    Full,
}

/// A set of ranges to flush.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushBatch {
    ranges: [Option<FlushRange>; MAX_RANGES],
    len: usize,
    pages: u64,
    full: bool,
}

impl FlushBatch {
    /// An empty batch.
    pub const fn new() -> Self {
        Self { ranges: [None; MAX_RANGES], len: 0, pages: 0, full: false }
    }

    /// A batch that flushes everything.
    pub const fn full() -> Self {
        Self { ranges: [None; MAX_RANGES], len: 0, pages: 0, full: true }
    }

    /// Whether nothing is to be flushed.
    pub fn is_empty(&self) -> bool {
        !self.full && self.len == 0
    }

    /// Whether the batch overflowed into a full flush.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// INVLPG operations the batch stands for.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// The ranges (empty for a full flush).
    pub fn ranges(&self) -> impl Iterator<Item = FlushRange> + '_ {
        self.ranges[..self.len].iter().map(|r| r.expect("filled"))
    }

    /// Adds `pages` pages of 4 KiB (or 2 MiB when `large`) from `start`,
    /// which must be aligned to the page size. Extends the previous range
    /// when contiguous.
    pub fn add(&mut self, start: u64, pages: u64, large: bool) {
        if self.full || pages == 0 {
            return;
        }
        let size = if large { LARGE_PAGE_SIZE } else { PAGE_SIZE };
        debug_assert_eq!(start % size, 0, "flush range start not page aligned");
        self.pages += pages;
        let (mut start, mut pages) = (start, pages);
        if let Some(last) = self.len.checked_sub(1).and_then(|i| self.ranges[i].as_mut())
            && last.large == large
            && last.start + last.pages * size == start
        {
            let room = MAX_UNITS - last.pages;
            let take = room.min(pages);
            last.pages += take;
            start += take * size;
            pages -= take;
        }
        while pages > 0 {
            if self.len == MAX_RANGES {
                self.full = true;
                self.len = 0;
                return;
            }
            let take = pages.min(MAX_UNITS);
            self.ranges[self.len] = Some(FlushRange { start, pages: take, large });
            self.len += 1;
            start += take * size;
            pages -= take;
        }
    }

    /// Page-by-page when at most `threshold` INVLPGs, else a full flush.
    pub fn plan(&self, threshold: u64) -> FlushPlan {
        if self.full || self.pages > threshold {
            FlushPlan::Full
        } else if self.len == 0 {
            FlushPlan::Nothing
        } else {
            FlushPlan::Pages
        }
    }

    /// The request line: word 0 is `scope` (a page-aligned page-table root,
    /// 0 for the kernel half) with the range count and full-flush flag in its
    /// low bits; the ranges follow.
    pub fn encode(&self, scope: u64) -> [u64; MAX_RANGES + 1] {
        debug_assert_eq!(scope % PAGE_SIZE, 0);
        let mut words = [0; MAX_RANGES + 1];
        words[0] = scope | (self.len as u64) << 1 | if self.full { FULL_FLAG } else { 0 };
        for (i, r) in self.ranges().enumerate() {
            words[i + 1] = r.encode();
        }
        words
    }

    /// Reads a request line back: `(scope, batch)`.
    pub fn decode(words: &[u64; MAX_RANGES + 1]) -> (u64, Self) {
        let scope = words[0] & !(PAGE_SIZE - 1);
        if words[0] & FULL_FLAG != 0 {
            return (scope, Self::full());
        }
        let len = ((words[0] >> 1) & 7) as usize;
        let mut batch = Self::new();
        for &w in &words[1..=len.min(MAX_RANGES)] {
            let r = FlushRange::decode(w);
            batch.ranges[batch.len] = Some(r);
            batch.len += 1;
            batch.pages += r.pages;
        }
        (scope, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 0xffff_c100_0000_0000;

    #[test]
    fn contiguous_pages_merge() {
        let mut b = FlushBatch::new();
        b.add(K, 1, false);
        b.add(K + PAGE_SIZE, 3, false);
        b.add(K + 10 * PAGE_SIZE, 1, false);
        assert_eq!(b.ranges().count(), 2);
        assert_eq!(b.pages(), 5);
        let first = b.ranges().next().unwrap();
        assert_eq!(first.page_addresses().collect::<Vec<_>>(), vec![K, K + 4096, K + 8192, K + 12288]);
    }

    #[test]
    fn overflow_becomes_full_flush() {
        let mut b = FlushBatch::new();
        for i in 0..MAX_RANGES as u64 {
            b.add(K + i * 2 * PAGE_SIZE, 1, false);
        }
        assert!(!b.is_full());
        b.add(K + 100 * PAGE_SIZE, 1, false);
        assert!(b.is_full());
        assert_eq!(b.plan(1000), FlushPlan::Full);
        let mut big = FlushBatch::new();
        big.add(0x1000, 5000, false);
        assert_eq!(big.ranges().count(), 3, "split into 2048-page pieces");
        assert_eq!(big.pages(), 5000);
    }

    #[test]
    fn plan_uses_the_threshold() {
        let mut b = FlushBatch::new();
        assert_eq!(b.plan(32), FlushPlan::Nothing);
        b.add(K, 32, false);
        assert_eq!(b.plan(32), FlushPlan::Pages);
        b.add(K + 32 * PAGE_SIZE, 1, false);
        assert_eq!(b.plan(32), FlushPlan::Full);
        let mut l = FlushBatch::new();
        l.add(K, 2, true);
        assert_eq!(l.pages(), 2, "one INVLPG per large page");
        assert_eq!(l.ranges().next().unwrap().page_addresses().nth(1), Some(K + LARGE_PAGE_SIZE));
    }

    #[test]
    fn request_line_round_trips() {
        let mut b = FlushBatch::new();
        b.add(K, 3, false);
        b.add(0x7fff_ffe0_0000, 1, true);
        b.add(0x40_0000, 2048, false);
        let words = b.encode(0x1234_5000);
        assert_eq!(core::mem::size_of_val(&words), 64);
        let (scope, back) = FlushBatch::decode(&words);
        assert_eq!(scope, 0x1234_5000);
        assert_eq!(back, b);
        let (scope, full) = FlushBatch::decode(&FlushBatch::full().encode(0));
        assert_eq!(scope, 0);
        assert!(full.is_full());
    }
}
