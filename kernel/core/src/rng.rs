//! A small deterministic pseudo-random generator (xorshift64*) for tests,
//! benchmarks and demos, in the kernel and in user programs: reproducible
//! from a seed, no hardware needed. Not for anything secret.

/// xorshift64* state.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (0 is replaced by a fixed constant).
    pub const fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Puts `items` in a random order.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_spread() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[a.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        assert_ne!(Rng::new(0).next_u64(), 0);
    }

    #[test]
    fn ranges_and_shuffles() {
        let mut r = Rng::new(3);
        assert!((0..1000).map(|_| r.range(5, 7)).all(|v| (5..=7).contains(&v)));
        let mut v: [u32; 32] = core::array::from_fn(|i| i as u32);
        r.shuffle(&mut v);
        assert_ne!(v, core::array::from_fn(|i| i as u32), "32 items shuffled stay in order only by a fluke of 1 in 32!");
        v.sort_unstable();
        assert_eq!(v, core::array::from_fn(|i| i as u32), "a shuffle keeps every item");
    }
}
