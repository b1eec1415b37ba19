//! Deterministic pseudo-random numbers for training (fixed seed =>
//! identical models on every machine). Xoshiro256++ from `rand_xoshiro`.

use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

pub(crate) struct SeededRng(Xoshiro256PlusPlus);

impl SeededRng {
    pub(crate) fn new(seed: u64) -> Self {
        SeededRng(Xoshiro256PlusPlus::seed_from_u64(seed))
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in `0..n` (`n > 0`), by the multiply-shift method.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
    /// Uniform in `[0, 1)`.
    pub(crate) fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// `count` distinct indices out of `0..n`, chosen uniformly with a fixed
/// `seed`, returned ascending. `count >= n` returns `0..n`.
///
/// The SQLite layer can use this to pick which rows (by position) form the
/// training sample, so training reads only the sample.
pub fn sample_indices(n: usize, count: usize, seed: u64) -> Vec<usize> {
    if count >= n {
        return (0..n).collect();
    }
    let mut rng = SeededRng::new(seed ^ 0x5a3c_1f0e_77d2_9b41);
    // Floyd's algorithm: O(count) memory, exact uniform sample.
    let mut chosen = std::collections::HashSet::with_capacity(count * 2);
    for j in (n - count)..n {
        let t = rng.below(j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    let mut v: Vec<usize> = chosen.into_iter().collect();
    v.sort_unstable();
    v
}
