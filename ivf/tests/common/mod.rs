//! Shared test data: deterministic clustered Gaussian data and an f64
//! brute-force reference.
#![allow(dead_code)]

use ivf::Metric;

/// SplitMix64: a tiny deterministic generator for test data only.
pub struct TestRng(u64);
impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn gauss(&mut self) -> f32 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// `n` points around `clusters` Gaussian centres (unit variance per
/// coordinate) with per-coordinate noise `spread`; returns (data, labels).
pub fn clustered(
    n: usize,
    dim: usize,
    clusters: usize,
    spread: f32,
    seed: u64,
) -> (Vec<f32>, Vec<usize>) {
    let mut r = TestRng::new(seed);
    let centres: Vec<f32> = (0..clusters * dim).map(|_| r.gauss()).collect();
    let mut data = Vec::with_capacity(n * dim);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let c = r.below(clusters);
        labels.push(c);
        for d in 0..dim {
            data.push(centres[c * dim + d] + spread * r.gauss());
        }
    }
    (data, labels)
}

/// Same distribution as `clustered` with the same `seed` (same centres),
/// but fresh points: held-out queries.
pub fn clustered_queries(
    nq: usize,
    dim: usize,
    clusters: usize,
    spread: f32,
    seed: u64,
) -> Vec<f32> {
    let mut r = TestRng::new(seed);
    let centres: Vec<f32> = (0..clusters * dim).map(|_| r.gauss()).collect();
    let mut r = TestRng::new(seed ^ 0xdead_beef);
    let mut q = Vec::with_capacity(nq * dim);
    for _ in 0..nq {
        let c = r.below(clusters);
        for d in 0..dim {
            q.push(centres[c * dim + d] + spread * r.gauss());
        }
    }
    q
}

/// f64 reference distance.
pub fn dist64(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    match metric {
        Metric::Dot => -dot,
        Metric::L2 => a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum::<f64>()
            .sqrt(),
        Metric::Cosine => {
            let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            if na == 0.0 || nb == 0.0 {
                1.0
            } else {
                1.0 - dot / (na * nb)
            }
        }
    }
}

/// Exact top-k by the f64 reference (ties by id).
pub fn brute_force(
    metric: Metric,
    data: &[f32],
    dim: usize,
    q: &[f32],
    k: usize,
) -> Vec<(i64, f64)> {
    let mut all: Vec<(i64, f64)> = data
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, x)| (i as i64, dist64(metric, q, x)))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Exact distances through the f64 reference: the re-rank callback tests use.
pub fn exact_cb<'a>(
    metric: Metric,
    data: &'a [f32],
    dim: usize,
    q: &'a [f32],
) -> impl FnMut(&[i64], &mut [Option<f32>]) -> Result<(), ivf::Error> + 'a {
    move |ids, out| {
        for (id, o) in ids.iter().zip(out.iter_mut()) {
            let i = *id as usize;
            *o = if i * dim < data.len() {
                Some(dist64(metric, q, &data[i * dim..(i + 1) * dim]) as f32)
            } else {
                None
            };
        }
        Ok(())
    }
}

pub fn recall(got: &[(i64, f32)], truth: &[(i64, f64)]) -> f64 {
    let t: std::collections::HashSet<i64> = truth.iter().map(|x| x.0).collect();
    got.iter().filter(|x| t.contains(&x.0)).count() as f64 / truth.len().max(1) as f64
}
