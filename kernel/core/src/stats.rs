//! Summaries of benchmark samples: medians and spread, never single numbers.

/// Order statistics of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Smallest sample.
    pub min: u64,
    /// 10th percentile.
    pub p10: u64,
    /// Median.
    pub median: u64,
    /// 90th percentile.
    pub p90: u64,
    /// Largest sample.
    pub max: u64,
}

impl Summary {
    /// Summarises `samples` (sorted in place); `None` when empty.
    pub fn of(samples: &mut [u64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: usize| samples[(samples.len() - 1) * q / 100];
        Some(Self {
            count: samples.len(),
            min: samples[0],
            p10: at(10),
            median: at(50),
            p90: at(90),
            max: samples[samples.len() - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statistics() {
        let mut s: Vec<u64> = (1..=101).rev().collect();
        let sum = Summary::of(&mut s).unwrap();
        assert_eq!((sum.min, sum.p10, sum.median, sum.p90, sum.max), (1, 11, 51, 91, 101));
        assert_eq!(Summary::of(&mut []), None);
        assert_eq!(Summary::of(&mut [7]).unwrap().median, 7);
    }
}
