//! A client's virtual-address allocator: first fit over freed holes, then
//! a bump pointer, within one window. Freed ranges are merged with their
//! neighbours so the window does not fragment into slivers.

use alloc::collections::BTreeMap;

/// The allocator for one window.
#[derive(Debug, Clone)]
pub struct VaAllocator {
    next: u64,
    end: u64,
    /// Free holes below `next`: start → length.
    holes: BTreeMap<u64, u64>,
}

impl VaAllocator {
    /// An allocator over `[start, end)`.
    pub fn new(start: u64, end: u64) -> Self {
        Self { next: start, end, holes: BTreeMap::new() }
    }

    /// Takes `len` bytes aligned to `align` (a power of two).
    pub fn alloc(&mut self, len: u64, align: u64) -> Option<u64> {
        debug_assert!(align.is_power_of_two() && len > 0);
        let fit = self.holes.iter().find_map(|(&start, &hole)| {
            let at = start.next_multiple_of(align);
            (at.checked_add(len)? <= start + hole).then_some((start, hole, at))
        });
        if let Some((start, hole, at)) = fit {
            self.holes.remove(&start);
            if at > start {
                self.holes.insert(start, at - start);
            }
            if at + len < start + hole {
                self.holes.insert(at + len, start + hole - at - len);
            }
            return Some(at);
        }
        let at = self.next.next_multiple_of(align);
        let end = at.checked_add(len)?;
        if end > self.end {
            return None;
        }
        if at > self.next {
            self.holes.insert(self.next, at - self.next);
        }
        self.next = end;
        Some(at)
    }

    /// Gives `[start, start + len)` back.
    pub fn free(&mut self, start: u64, len: u64) {
        let mut start = start;
        let mut len = len;
        if let Some((&prev, &plen)) = self.holes.range(..start).next_back()
            && prev + plen == start
        {
            self.holes.remove(&prev);
            start = prev;
            len += plen;
        }
        if let Some(&nlen) = self.holes.get(&(start + len)) {
            self.holes.remove(&(start + len));
            len += nlen;
        }
        if start + len == self.next {
            self.next = start;
        } else {
            self.holes.insert(start, len);
        }
    }

    /// Bytes handed out and not given back.
    pub fn in_use(&self, window_start: u64) -> u64 {
        self.next - window_start - self.holes.values().sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_and_merges_holes() {
        let mut v = VaAllocator::new(0x1000, 0x100_0000);
        let a = v.alloc(0x3000, 0x1000).unwrap();
        let b = v.alloc(0x1000, 0x1000).unwrap();
        let c = v.alloc(0x2000, 0x1000).unwrap();
        assert_eq!((a, b, c), (0x1000, 0x4000, 0x5000));
        v.free(b, 0x1000);
        assert_eq!(v.alloc(0x1000, 0x1000), Some(0x4000), "first fit reuses the hole");
        v.free(a, 0x3000);
        v.free(0x4000, 0x1000);
        assert_eq!(v.alloc(0x4000, 0x1000), Some(0x1000), "neighbouring holes merged");
        v.free(0x1000, 0x4000);
        v.free(c, 0x2000);
        assert_eq!(v.in_use(0x1000), 0);
        assert_eq!(v.alloc(0x1000, 0x1000), Some(0x1000), "everything merged back into the bump area");
    }

    #[test]
    fn alignment_and_exhaustion() {
        let mut v = VaAllocator::new(0x1000, 0x40_0000);
        assert_eq!(v.alloc(0x1000, 0x1000), Some(0x1000));
        let big = v.alloc(0x20_0000, 0x20_0000).unwrap();
        assert_eq!(big % 0x20_0000, 0);
        assert_eq!(v.alloc(0x1000, 0x1000), Some(0x2000), "the alignment gap became a hole");
        assert_eq!(v.alloc(0x100_0000, 0x1000), None);
        assert_eq!(v.alloc(u64::MAX, 0x1000), None);
    }
}
