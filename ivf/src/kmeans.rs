//! k-means (Lloyd) with a fixed seed, used for the coarse quantizer
//! (lists) and for each PQ sub-quantizer.
//!
//! * Init: k-means++ (D² sampling with the seed) on a pool of at most
//!   `max(4k, 16384)` training points. k-means++ costs one pass over the
//!   pool per centroid, so a pool keeps it well below one Lloyd iteration
//!   on the full sample, while still avoiding the "two seeds in one
//!   cluster, none in another" failures of uniform random init.
//! * Assignment, the only expensive step, is a blocked one-to-many dot
//!   product: a tile of centroids that stays in L2 is scored against a tile
//!   of points with `kernels::Kernels::distances_f32(Metric::Dot, ..)`
//!   (`||x-c||² = ||x||² + ||c||² - 2x·c`, and `||x||²` does not change the
//!   argmin). For tiny dimensions (PQ sub-spaces, `dim < 32`) a transposed
//!   centroid table is scored with a loop that the compiler vectorises
//!   over centroids (pulp dispatch), because per-row kernel calls would be
//!   dominated by call overhead there.
//! * Points are split across `threads` scoped threads (pure compute).
//! * Update in f64; spherical mode (cosine) re-normalises centroids.
//! * Empty clusters are repaired by splitting the largest cluster in two
//!   with a tiny symmetric perturbation (the faiss rule).

use crate::error::{invalid, Error};
use crate::rng::{sample_indices, SeededRng};
use kernels::{Kernels, Metric};

/// How points are compared with centroids.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Assign {
    /// Nearest by Euclidean distance.
    L2,
    /// Largest inner product (spherical k-means on unit vectors).
    InnerProduct,
}

/// k-means settings.
#[derive(Copy, Clone, Debug)]
pub struct KMeansConfig {
    pub k: usize,
    pub iters: usize,
    pub seed: u64,
    pub assign: Assign,
    /// Normalise centroids after every update (spherical k-means).
    pub spherical: bool,
    pub threads: usize,
}

/// Result of a k-means run.
#[derive(Clone, Debug)]
pub struct KMeans {
    /// `k × dim`, row-major.
    pub centroids: Vec<f32>,
    /// Iterations actually run (stops early once no point changes cluster).
    pub iterations: usize,
    /// Mean over points of the assignment score at the last assignment
    /// (`||x-c||²` for L2, `-x·c` for inner product).
    pub objective: f64,
}

/// Train `cfg.k` centroids on `data` (`n × dim`, row-major).
pub fn kmeans(kern: Kernels, data: &[f32], dim: usize, cfg: &KMeansConfig) -> Result<KMeans, Error> {
    if dim == 0 {
        return Err(invalid("dim", "must be at least 1"));
    }
    if data.len() % dim != 0 {
        return Err(Error::LengthMismatch {
            what: "k-means training data",
            expected: data.len() / dim * dim + dim,
            found: data.len(),
        });
    }
    if cfg.k == 0 {
        return Err(invalid("k", "must be at least 1"));
    }
    let n = data.len() / dim;
    if n < cfg.k {
        return Err(Error::TooFewTrainingVectors {
            needed: cfg.k,
            found: n,
        });
    }
    if data.iter().any(|x| !x.is_finite()) {
        return Err(Error::NonFinite {
            what: "k-means training data",
        });
    }
    let k = cfg.k;
    let mut centroids = kmeans_pp(kern, data, dim, k, cfg.seed)?;
    if cfg.spherical {
        for c in centroids.chunks_exact_mut(dim) {
            kern.normalize_f32(c);
        }
    }
    let mut labels = vec![u32::MAX; n];
    let mut scores = vec![0f32; n];
    let mut prev = vec![u32::MAX; n];
    let mut iterations = 0;
    let mut objective = 0f64;
    for _ in 0..cfg.iters.max(1) {
        iterations += 1;
        assign_points(kern, data, dim, &centroids, cfg.assign, cfg.threads, &mut labels, &mut scores)?;
        objective = objective_of(data, dim, cfg.assign, &scores);
        let changed = labels.iter().zip(&prev).filter(|(a, b)| a != b).count();
        if changed == 0 {
            break;
        }
        prev.copy_from_slice(&labels);
        update(kern, data, dim, k, &labels, cfg.spherical, &mut centroids);
    }
    Ok(KMeans {
        centroids,
        iterations,
        objective,
    })
}

/// k-means++ seeding on a seeded pool of the data.
fn kmeans_pp(kern: Kernels, data: &[f32], dim: usize, k: usize, seed: u64) -> Result<Vec<f32>, Error> {
    let n = data.len() / dim;
    let pool_n = n.min((4 * k).max(16_384));
    let pool_idx = sample_indices(n, pool_n, seed);
    let mut pool = Vec::with_capacity(pool_n * dim);
    for &i in &pool_idx {
        pool.extend_from_slice(&data[i * dim..(i + 1) * dim]);
    }
    let mut rng = SeededRng::new(seed ^ 0x6b6d_6561_6e73_2b2b);
    let mut centroids = Vec::with_capacity(k * dim);
    let first = rng.below(pool_n);
    centroids.extend_from_slice(&pool[first * dim..(first + 1) * dim]);
    let mut d2 = vec![f32::INFINITY; pool_n];
    let mut tmp = vec![0f32; pool_n];
    let mut taken = vec![false; pool_n];
    taken[first] = true;
    for c in 1..k {
        let last = &centroids[(c - 1) * dim..c * dim];
        sq_dists_to(kern, &pool, dim, last, &mut tmp)?;
        for (a, &b) in d2.iter_mut().zip(&tmp) {
            *a = a.min(b);
        }
        let total: f64 = d2.iter().map(|&v| v as f64).sum();
        let pick = if total > 0.0 && total.is_finite() {
            let mut t = rng.unit_f64() * total;
            let mut pick = None;
            for (i, &v) in d2.iter().enumerate() {
                t -= v as f64;
                if t < 0.0 && !taken[i] {
                    pick = Some(i);
                    break;
                }
            }
            pick.or_else(|| (0..pool_n).rev().find(|&i| !taken[i]))
        } else {
            None
        };
        // All remaining points coincide with chosen seeds: take any unused
        // point (duplicates are then split apart by the empty-cluster repair).
        let pick = pick
            .or_else(|| (0..pool_n).find(|&i| !taken[i]))
            .unwrap_or(c % pool_n);
        taken[pick] = true;
        centroids.extend_from_slice(&pool[pick * dim..(pick + 1) * dim]);
    }
    Ok(centroids)
}

/// `out[i] = ||pool_i - c||²`.
fn sq_dists_to(kern: Kernels, pool: &[f32], dim: usize, c: &[f32], out: &mut [f32]) -> Result<(), Error> {
    if dim >= 32 {
        kern.distances_f32(Metric::L2, c, pool, None, out)?;
        out.iter_mut().for_each(|v| *v *= *v);
    } else {
        for (o, x) in out.iter_mut().zip(pool.chunks_exact(dim)) {
            *o = x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
        }
    }
    Ok(())
}

fn objective_of(data: &[f32], dim: usize, assign: Assign, scores: &[f32]) -> f64 {
    let n = scores.len().max(1);
    match assign {
        Assign::L2 => {
            // score = ||c||² - 2x·c, add ||x||² back.
            let mut s = 0f64;
            for (x, &sc) in data.chunks_exact(dim).zip(scores) {
                let xx: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
                s += (xx + sc as f64).max(0.0);
            }
            s / n as f64
        }
        Assign::InnerProduct => scores.iter().map(|&s| s as f64).sum::<f64>() / n as f64,
    }
}

fn update(
    kern: Kernels,
    data: &[f32],
    dim: usize,
    k: usize,
    labels: &[u32],
    spherical: bool,
    centroids: &mut [f32],
) {
    let mut sums = vec![0f64; k * dim];
    let mut counts = vec![0usize; k];
    for (x, &l) in data.chunks_exact(dim).zip(labels) {
        let l = l as usize;
        counts[l] += 1;
        for (s, &v) in sums[l * dim..(l + 1) * dim].iter_mut().zip(x) {
            *s += v as f64;
        }
    }
    for c in 0..k {
        if counts[c] > 0 {
            let inv = 1.0 / counts[c] as f64;
            for (dst, &s) in centroids[c * dim..(c + 1) * dim]
                .iter_mut()
                .zip(&sums[c * dim..(c + 1) * dim])
            {
                *dst = (s * inv) as f32;
            }
        }
    }
    // Empty-cluster repair: split the currently largest cluster.
    const EPS: f32 = 1.0 / 1024.0;
    for ci in 0..k {
        if counts[ci] != 0 {
            continue;
        }
        let cj = (0..k).max_by_key(|&j| (counts[j], std::cmp::Reverse(j))).unwrap_or(0);
        if counts[cj] < 2 {
            break; // nothing left to split (n == k with duplicates)
        }
        let (src, dst) = if ci < cj {
            let (a, b) = centroids.split_at_mut(cj * dim);
            (&mut b[..dim], &mut a[ci * dim..(ci + 1) * dim])
        } else {
            let (a, b) = centroids.split_at_mut(ci * dim);
            (&mut a[cj * dim..(cj + 1) * dim], &mut b[..dim])
        };
        for d in 0..dim {
            let v = src[d];
            let (up, down) = (v * (1.0 + EPS), v * (1.0 - EPS));
            if d % 2 == 0 {
                dst[d] = up;
                src[d] = down;
            } else {
                dst[d] = down;
                src[d] = up;
            }
        }
        counts[ci] = counts[cj] / 2;
        counts[cj] -= counts[ci];
    }
    if spherical {
        for c in centroids.chunks_exact_mut(dim) {
            kern.normalize_f32(c);
        }
    }
}

/// Nearest centroid of every point: `labels[i]`, and `scores[i]` =
/// `||c||² - 2x·c` (L2) or `-x·c` (inner product); smaller is nearer.
#[allow(clippy::too_many_arguments)]
pub fn assign_points(
    kern: Kernels,
    data: &[f32],
    dim: usize,
    centroids: &[f32],
    assign: Assign,
    threads: usize,
    labels: &mut [u32],
    scores: &mut [f32],
) -> Result<(), Error> {
    let n = data.len() / dim;
    let k = centroids.len() / dim;
    if labels.len() != n || scores.len() != n || k == 0 {
        return Err(Error::LengthMismatch {
            what: "assignment output",
            expected: n,
            found: labels.len().min(scores.len()),
        });
    }
    let csq: Vec<f32> = match assign {
        Assign::L2 => centroids
            .chunks_exact(dim)
            .map(|c| c.iter().map(|v| v * v).sum())
            .collect(),
        Assign::InnerProduct => vec![0.0; k],
    };
    let small = dim < 32;
    let transposed = if small { transpose(centroids, k, dim) } else { Vec::new() };
    let l2 = assign == Assign::L2;
    let threads = threads.clamp(1, 64);
    // Below ~2M multiply-adds a thread is not worth its start-up.
    let work = n.saturating_mul(k).saturating_mul(dim);
    let threads = if work < (1 << 21) { 1 } else { threads.min(n) };
    let run = |pts: &[f32], lab: &mut [u32], sco: &mut [f32]| -> Result<(), Error> {
        if small {
            assign_small(pts, dim, &transposed, k, &csq, l2, lab, sco);
            Ok(())
        } else {
            assign_tiled(kern, pts, dim, centroids, &csq, l2, lab, sco)
        }
    };
    if threads <= 1 {
        return run(data, labels, scores);
    }
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for ((pts, lab), sco) in data
            .chunks(per * dim)
            .zip(labels.chunks_mut(per))
            .zip(scores.chunks_mut(per))
        {
            let run = &run;
            handles.push(s.spawn(move || run(pts, lab, sco)));
        }
        let mut res = Ok(());
        for h in handles {
            match h.join() {
                Ok(r) => res = res.and(r),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        res
    })
}

pub(crate) fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

#[allow(clippy::too_many_arguments)]
fn assign_tiled(
    kern: Kernels,
    pts: &[f32],
    dim: usize,
    centroids: &[f32],
    csq: &[f32],
    l2: bool,
    labels: &mut [u32],
    scores: &mut [f32],
) -> Result<(), Error> {
    const POINT_TILE: usize = 64;
    // A centroid tile of ~96 KiB stays in L2 while a point tile streams by.
    let ctile = (24 * 1024 / dim).max(8);
    let k = centroids.len() / dim;
    let mut out = vec![0f32; ctile];
    for (pt, (lab, sco)) in pts
        .chunks(POINT_TILE * dim)
        .zip(labels.chunks_mut(POINT_TILE).zip(scores.chunks_mut(POINT_TILE)))
    {
        sco.fill(f32::INFINITY);
        lab.fill(0);
        let mut c0 = 0;
        while c0 < k {
            let c1 = (c0 + ctile).min(k);
            let block = &centroids[c0 * dim..c1 * dim];
            let out = &mut out[..c1 - c0];
            for (i, x) in pt.chunks_exact(dim).enumerate() {
                // out[j] = -x·c_j
                kern.distances_f32(Metric::Dot, x, block, None, out)?;
                let (mut best, mut bi) = (sco[i], lab[i]);
                for (j, &nd) in out.iter().enumerate() {
                    let s = if l2 { csq[c0 + j] + 2.0 * nd } else { nd };
                    if s < best {
                        best = s;
                        bi = (c0 + j) as u32;
                    }
                }
                sco[i] = best;
                lab[i] = bi;
            }
            c0 = c1;
        }
    }
    Ok(())
}

/// Scores `s[c] = csq[c] - 2 Σ_d x_d t[d][c]` (or `-Σ x_d t[d][c]`) for a
/// transposed centroid table `t` (`dim × k`), vectorised over centroids.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assign_small(
    pts: &[f32],
    dim: usize,
    t: &[f32],
    k: usize,
    csq: &[f32],
    l2: bool,
    labels: &mut [u32],
    scores: &mut [f32],
) {
    pulp::Arch::new().dispatch(
        #[inline(always)]
        || {
            let mut acc = vec![0f32; k];
            let (base, factor) = if l2 { (csq, -2.0f32) } else { (csq, -1.0f32) };
            for (i, x) in pts.chunks_exact(dim).enumerate() {
                if l2 {
                    acc.copy_from_slice(base);
                } else {
                    acc.fill(0.0);
                }
                for (d, &xd) in x.iter().enumerate() {
                    let w = factor * xd;
                    let row = &t[d * k..(d + 1) * k];
                    for (a, &tv) in acc.iter_mut().zip(row) {
                        *a += w * tv;
                    }
                }
                let (bi, best) = argmin(&acc);
                labels[i] = bi as u32;
                scores[i] = best;
            }
        },
    )
}

/// Index and value of the smallest element (first on ties).
#[inline(always)]
pub(crate) fn argmin(v: &[f32]) -> (usize, f32) {
    let mut best = f32::INFINITY;
    let mut bi = 0;
    for (j, &s) in v.iter().enumerate() {
        if s < best {
            best = s;
            bi = j;
        }
    }
    (bi, best)
}
