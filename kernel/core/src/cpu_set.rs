//! Sets of CPUs as a bit mask: the unit of IPI targeting and of the
//! "which CPUs may hold this address space's translations" bookkeeping.

/// The most CPUs the kernel drives. One `u64` mask covers them all, so a set
/// is read and updated with single atomic operations.
pub const MAX_CPUS: usize = 64;

/// A set of CPU indices (`0..MAX_CPUS`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CpuSet(pub u64);

impl CpuSet {
    /// No CPU.
    pub const EMPTY: Self = Self(0);

    /// The first `n` CPUs.
    pub const fn first(n: usize) -> Self {
        if n >= MAX_CPUS { Self(u64::MAX) } else { Self((1u64 << n) - 1) }
    }

    /// The set holding only `cpu`.
    pub const fn single(cpu: usize) -> Self {
        Self(1 << cpu)
    }

    /// Whether `cpu` is in the set.
    pub const fn contains(self, cpu: usize) -> bool {
        cpu < MAX_CPUS && self.0 & (1 << cpu) != 0
    }

    /// The set with `cpu` added.
    #[must_use]
    pub const fn with(self, cpu: usize) -> Self {
        Self(self.0 | 1 << cpu)
    }

    /// The set with `cpu` removed.
    #[must_use]
    pub const fn without(self, cpu: usize) -> Self {
        Self(self.0 & !(1 << cpu))
    }

    /// Number of CPUs in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The CPUs in increasing order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let cpu = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(cpu)
        })
    }
}

impl core::fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let s = CpuSet::EMPTY.with(0).with(3).with(63);
        assert_eq!(s.len(), 3);
        assert!(s.contains(3) && !s.contains(2) && !s.contains(64));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 3, 63]);
        assert_eq!(s.without(3).iter().collect::<Vec<_>>(), vec![0, 63]);
        assert_eq!(CpuSet::first(4).0, 0b1111);
        assert_eq!(CpuSet::first(64).0, u64::MAX);
        assert!(CpuSet::EMPTY.is_empty());
        assert_eq!(format!("{:?}", CpuSet::single(5)), "{5}");
    }
}
