//! Grouping frames into runs: consecutive pages of one physical range map
//! with one call.

/// A frame: which physical range it is in, and its page within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame {
    /// Index of the physical-memory range.
    pub range: u16,
    /// Page within the range.
    pub page: u32,
}

/// A run of frames: `count` consecutive pages of `range` from `page`,
/// mapped at page `at` of the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Range index.
    pub range: u16,
    /// First page in the range.
    pub page: u32,
    /// Pages.
    pub count: u32,
    /// Index of its first page within the region.
    pub at: usize,
}

/// Splits `frames` (in region order, `None` = not backed) into maximal runs.
pub fn runs(frames: &[Option<Frame>]) -> alloc::vec::Vec<Run> {
    let mut out: alloc::vec::Vec<Run> = alloc::vec::Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let Some(f) = f else { continue };
        match out.last_mut() {
            Some(r) if r.range == f.range && r.page + r.count == f.page && r.at + r.count as usize == i => r.count += 1,
            _ => out.push(Run { range: f.range, page: f.page, count: 1, at: i }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(range: u16, page: u32) -> Option<Frame> {
        Some(Frame { range, page })
    }

    #[test]
    fn groups_consecutive_pages_of_one_range() {
        let frames = [f(0, 5), f(0, 6), f(0, 7), f(1, 8), f(1, 9), None, f(1, 10), f(0, 1)];
        let r = runs(&frames);
        assert_eq!(r, vec![
            Run { range: 0, page: 5, count: 3, at: 0 },
            Run { range: 1, page: 8, count: 2, at: 3 },
            Run { range: 1, page: 10, count: 1, at: 6 },
            Run { range: 0, page: 1, count: 1, at: 7 },
        ]);
        assert!(runs(&[None, None]).is_empty());
    }
}
