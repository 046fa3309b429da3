//! A record of physical address ranges and what each is used for.
//!
//! Fixed capacity and no allocation, because the kernel builds it from the
//! boot memory map before it has a heap. Ranges are kept sorted, disjoint,
//! and merged with equal-kind neighbours; inserting a range overwrites
//! whatever it overlaps, which is how a use (e.g. the kernel image) is carved
//! out of a broader one.

/// The capacity ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// One `[start, end)` range of kind `K`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range<K> {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// What it is used for.
    pub kind: K,
}

impl<K> Range<K> {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Up to `N` disjoint, sorted ranges.
pub struct RangeMap<K: Copy + Eq, const N: usize> {
    ranges: [Option<Range<K>>; N],
    len: usize,
}

impl<K: Copy + Eq, const N: usize> Default for RangeMap<K, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq, const N: usize> RangeMap<K, N> {
    /// An empty map.
    pub const fn new() -> Self {
        Self { ranges: [None; N], len: 0 }
    }

    /// The ranges in address order.
    pub fn iter(&self) -> impl Iterator<Item = Range<K>> + '_ {
        self.ranges[..self.len].iter().map(|r| r.expect("slots below len are filled"))
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kind of the byte at `addr`, if recorded.
    pub fn kind_at(&self, addr: u64) -> Option<K> {
        self.iter().find(|r| r.start <= addr && addr < r.end).map(|r| r.kind)
    }

    /// Whether every byte of `[start, end)` is recorded with a kind that
    /// satisfies `pred`.
    pub fn all_of(&self, start: u64, end: u64, pred: impl Fn(K) -> bool) -> bool {
        let mut at = start;
        for r in self.iter() {
            if r.end <= at {
                continue;
            }
            if r.start > at || !pred(r.kind) {
                return false;
            }
            at = r.end;
            if at >= end {
                return true;
            }
        }
        at >= end
    }

    /// Bytes recorded with kind `kind`.
    pub fn total_of(&self, kind: K) -> u64 {
        self.iter().filter(|r| r.kind == kind).map(|r| r.len()).sum()
    }

    /// Bytes recorded in all.
    pub fn total(&self) -> u64 {
        self.iter().map(|r| r.len()).sum()
    }

    /// Records `[start, end)` as `kind`, replacing what it overlaps.
    /// On `Err(Full)` the map is unchanged.
    pub fn insert(&mut self, start: u64, end: u64, kind: K) -> Result<(), Full> {
        if start >= end {
            return Ok(());
        }
        // Build the result in a scratch copy so that failure changes nothing.
        let mut out: [Option<Range<K>>; N] = [None; N];
        let mut n = 0;
        let mut push = |r: Range<K>, out: &mut [Option<Range<K>>; N]| -> Result<(), Full> {
            if r.start >= r.end {
                return Ok(());
            }
            if n > 0 {
                let last = out[n - 1].as_mut().expect("filled");
                if last.end == r.start && last.kind == r.kind {
                    last.end = r.end;
                    return Ok(());
                }
            }
            if n == N {
                return Err(Full);
            }
            out[n] = Some(r);
            n += 1;
            Ok(())
        };
        let mut placed = false;
        for r in self.iter() {
            if r.end <= start {
                push(r, &mut out)?;
                continue;
            }
            if r.start >= end {
                if !placed {
                    push(Range { start, end, kind }, &mut out)?;
                    placed = true;
                }
                push(r, &mut out)?;
                continue;
            }
            // Overlap: keep the parts of r outside [start, end).
            push(Range { start: r.start, end: start.max(r.start).min(r.end), kind: r.kind }, &mut out)?;
            if !placed {
                push(Range { start, end, kind }, &mut out)?;
                placed = true;
            }
            push(Range { start: end.max(r.start), end: r.end, kind: r.kind }, &mut out)?;
        }
        if !placed {
            push(Range { start, end, kind }, &mut out)?;
        }
        self.ranges = out;
        self.len = n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum K {
        A,
        B,
        C,
    }

    fn dump<const N: usize>(m: &RangeMap<K, N>) -> Vec<(u64, u64, K)> {
        m.iter().map(|r| (r.start, r.end, r.kind)).collect()
    }

    #[test]
    fn inserts_sorted_and_merges() {
        let mut m = RangeMap::<K, 8>::new();
        m.insert(100, 200, K::A).unwrap();
        m.insert(0, 50, K::A).unwrap();
        m.insert(50, 100, K::A).unwrap();
        assert_eq!(dump(&m), vec![(0, 200, K::A)]);
        m.insert(300, 400, K::B).unwrap();
        assert_eq!(dump(&m), vec![(0, 200, K::A), (300, 400, K::B)]);
        assert_eq!(m.total(), 300);
        assert_eq!(m.total_of(K::B), 100);
    }

    #[test]
    fn carving_splits_and_overwrites() {
        let mut m = RangeMap::<K, 8>::new();
        m.insert(0, 1000, K::A).unwrap();
        m.insert(100, 200, K::B).unwrap();
        assert_eq!(dump(&m), vec![(0, 100, K::A), (100, 200, K::B), (200, 1000, K::A)]);
        m.insert(150, 900, K::C).unwrap();
        assert_eq!(dump(&m), vec![(0, 100, K::A), (100, 150, K::B), (150, 900, K::C), (900, 1000, K::A)]);
        m.insert(0, 1000, K::A).unwrap();
        assert_eq!(dump(&m), vec![(0, 1000, K::A)]);
        assert_eq!(m.total(), 1000);
    }

    #[test]
    fn queries() {
        let mut m = RangeMap::<K, 8>::new();
        m.insert(0, 100, K::A).unwrap();
        m.insert(100, 200, K::B).unwrap();
        m.insert(300, 400, K::A).unwrap();
        assert_eq!(m.kind_at(150), Some(K::B));
        assert_eq!(m.kind_at(250), None);
        assert!(m.all_of(10, 190, |_| true));
        assert!(!m.all_of(10, 190, |k| k == K::A));
        assert!(!m.all_of(150, 350, |_| true), "hole at 200..300");
        assert!(m.all_of(300, 400, |k| k == K::A));
    }

    #[test]
    fn full_leaves_the_map_unchanged() {
        let mut m = RangeMap::<K, 2>::new();
        m.insert(0, 10, K::A).unwrap();
        m.insert(20, 30, K::B).unwrap();
        assert_eq!(m.insert(40, 50, K::C), Err(Full));
        assert_eq!(m.insert(2, 4, K::C), Err(Full));
        assert_eq!(dump(&m), vec![(0, 10, K::A), (20, 30, K::B)]);
        m.insert(10, 20, K::A).unwrap();
        assert_eq!(dump(&m), vec![(0, 20, K::A), (20, 30, K::B)]);
    }
}
