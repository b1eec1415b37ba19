//! k-means (Lloyd) with a fixed seed, used for the coarse quantizer
//! (lists) and for each PQ sub-quantizer.
//!
//! * Init: greedy k-means++ (D² sampling with the seed, `2 + ln k` trials
//!   per step when cheap) on a pool of at most `max(8k, 4096)` points. k-means++ costs one pass over the
//!   pool per centroid, so a pool keeps it well below one Lloyd iteration
//!   on the full sample, while still avoiding the "two seeds in one
//!   cluster, none in another" failures of uniform random init.
//! * Assignment, the only expensive step, is a blocked GEMM-like loop
//!   (`||x-c||² = ||x||² + ||c||² - 2x·c`, and `||x||²` does not change the
//!   argmin): 8 points × 32 centroids of register accumulators per panel. For tiny dimensions (PQ sub-spaces, `dim < 32`) a transposed
//!   centroid table is scored with a loop that the compiler vectorises
//!   over centroids (pulp dispatch), because per-row kernel calls would be
//!   dominated by call overhead there.
//! * Points are split across `threads` scoped threads (pure compute).
//! * Update in f64; spherical mode (cosine) re-normalises centroids.
//! * Empty clusters are repaired by splitting the largest cluster in two
//!   with a tiny symmetric perturbation (the faiss rule).

use crate::error::{invalid, Error};
use crate::rng::{sample_indices, SeededRng};
use crate::simd::multiversion;
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
    /// k-means++ candidates per seeding step: 0 = automatic (greedy,
    /// `2 + ln k` when affordable), 1 = plain k-means++.
    pub init_trials: usize,
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
pub fn kmeans(
    kern: Kernels,
    data: &[f32],
    dim: usize,
    cfg: &KMeansConfig,
) -> Result<KMeans, Error> {
    if dim == 0 {
        return Err(invalid("dim", "must be at least 1"));
    }
    if !data.len().is_multiple_of(dim) {
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
    let mut centroids = kmeans_pp(kern, data, dim, k, cfg.seed, cfg.init_trials)?;
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
        assign_points(
            kern,
            data,
            dim,
            &centroids,
            cfg.assign,
            cfg.threads,
            &mut labels,
            &mut scores,
        )?;
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
fn kmeans_pp(
    kern: Kernels,
    data: &[f32],
    dim: usize,
    k: usize,
    seed: u64,
    init_trials: usize,
) -> Result<Vec<f32>, Error> {
    let n = data.len() / dim;
    let pool_n = n.min((8 * k).max(4096));
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
    sq_dists_to(kern, &pool, dim, &centroids[..dim], &mut d2)?;
    // Greedy k-means++ (as scikit-learn): draw `trials` D² candidates per
    // step and keep the one that lowers the potential most, when the pool
    // is small enough for the extra passes to be cheap.
    let trials = if init_trials > 0 {
        init_trials
    } else {
        let t = 2 + (k as f64).ln() as usize;
        if (pool_n as f64) * (k as f64) * (dim as f64) * (t as f64) <= 4e9 {
            t
        } else {
            1
        }
    };
    let mut best_d = vec![0f32; pool_n];
    for _ in 1..k {
        let total: f64 = d2.iter().map(|&v| v as f64).sum();
        let mut best: Option<(f64, usize)> = None;
        for _ in 0..trials {
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
            // All remaining points coincide with chosen seeds: take any
            // unused point (duplicates are split by the empty-cluster repair).
            let Some(pick) = pick.or_else(|| (0..pool_n).find(|&i| !taken[i])) else {
                break;
            };
            if trials == 1 {
                best = Some((0.0, pick));
                break;
            }
            sq_dists_to(
                kern,
                &pool,
                dim,
                &pool[pick * dim..(pick + 1) * dim],
                &mut tmp,
            )?;
            let pot: f64 = d2.iter().zip(&tmp).map(|(&a, &b)| a.min(b) as f64).sum();
            if best.is_none_or(|(p, _)| pot < p) {
                best = Some((pot, pick));
                std::mem::swap(&mut best_d, &mut tmp);
            }
        }
        let pick = best.map_or(0, |b| b.1);
        if trials == 1 {
            sq_dists_to(
                kern,
                &pool,
                dim,
                &pool[pick * dim..(pick + 1) * dim],
                &mut best_d,
            )?;
        }
        for (a, &b) in d2.iter_mut().zip(&best_d) {
            *a = a.min(b);
        }
        taken[pick] = true;
        centroids.extend_from_slice(&pool[pick * dim..(pick + 1) * dim]);
    }
    Ok(centroids)
}

/// `out[i] = ||pool_i - c||²`.
fn sq_dists_to(
    kern: Kernels,
    pool: &[f32],
    dim: usize,
    c: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
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
        let cj = (0..k)
            .max_by_key(|&j| (counts[j], std::cmp::Reverse(j)))
            .unwrap_or(0);
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
    let transposed = if small {
        transpose(centroids, k, dim)
    } else {
        panels(centroids, k, dim)
    };
    let l2 = assign == Assign::L2;
    let avx512 = use_avx512(kern);
    let threads = threads.clamp(1, 64);
    // Below ~2M multiply-adds a thread is not worth its start-up.
    let work = n.saturating_mul(k).saturating_mul(dim);
    let threads = if work < (1 << 21) { 1 } else { threads.min(n) };
    let run = |pts: &[f32], lab: &mut [u32], sco: &mut [f32]| -> Result<(), Error> {
        if small {
            assign_small(avx512, pts, dim, &transposed, k, &csq, l2, lab, sco);
        } else {
            assign_gemm(avx512, pts, dim, &transposed, k, &csq, l2, lab, sco);
        }
        Ok(())
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

/// Centroids per register panel and points per register tile of the
/// GEMM-like assignment kernel: 8 × 32 f32 accumulators = 16 AVX-512 (or
/// 32 AVX2) registers, fed by one 32-wide panel row load and 8 broadcasts
/// per dimension.
const NC: usize = 32;
const NP: usize = 8;

/// Centroids re-laid out as panels of `NC` (zero-padded): panel `p`, row
/// `d` holds dimension `d` of centroids `p*NC .. p*NC+NC`.
pub(crate) fn panels(centroids: &[f32], k: usize, dim: usize) -> Vec<f32> {
    let np = k.div_ceil(NC);
    let mut out = vec![0f32; np * dim * NC];
    for c in 0..k {
        let (p, l) = (c / NC, c % NC);
        for d in 0..dim {
            out[(p * dim + d) * NC + l] = centroids[c * dim + d];
        }
    }
    out
}

multiversion! {
    /// Blocked "points × centroidsᵀ" assignment: a register tile of NP
    /// points against a panel of NC centroids, accumulated over all
    /// dimensions (explicit AVX-512 micro-kernel, else auto-vectorised
    /// loops), then folded into each point's running best.
    fn assign_gemm(
        avx512: bool,
        pts: &[f32],
        dim: usize,
        panel: &[f32],
        k: usize,
        csq: &[f32],
        l2: bool,
        labels: &mut [u32],
        scores: &mut [f32],
    ) {
        let n = pts.len() / dim;
        let npanels = k.div_ceil(NC);
        let mut xt = vec![0f32; dim * NP];
        let mut i0 = 0;
        while i0 < n {
            let np = NP.min(n - i0);
            // Transpose the point tile: xt[d][p].
            for p in 0..NP {
                for d in 0..dim {
                    xt[d * NP + p] = if p < np { pts[(i0 + p) * dim + d] } else { 0.0 };
                }
            }
            let mut best = [f32::INFINITY; NP];
            let mut bi = [0u32; NP];
            for pi in 0..npanels {
                let pan = &panel[pi * dim * NC..(pi + 1) * dim * NC];
                let mut acc = [[0f32; NC]; NP];
                microkernel(avx512, pan, &xt, &mut acc);
                let c0 = pi * NC;
                let nc = NC.min(k - c0);
                for p in 0..np {
                    for c in 0..nc {
                        let s = if l2 { csq[c0 + c] - 2.0 * acc[p][c] } else { -acc[p][c] };
                        if s < best[p] {
                            best[p] = s;
                            bi[p] = (c0 + c) as u32;
                        }
                    }
                }
            }
            labels[i0..i0 + np].copy_from_slice(&bi[..np]);
            scores[i0..i0 + np].copy_from_slice(&best[..np]);
            i0 += np;
        }
    }
}

/// Whether to run the explicit AVX-512 micro-kernels: the CPU has them and
/// the kernels' dispatch level (capped by `POCKETVEC_ISA`, or forced by
/// tests) is AVX-512.
pub(crate) fn use_avx512(kern: Kernels) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        kern.isa() == kernels::Isa::Avx512 && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = kern;
        false
    }
}

/// `acc[p][c] += Σ_d xt[d][p] · pan[d][c]` over one panel.
#[inline(always)]
fn microkernel(avx512: bool, pan: &[f32], xt: &[f32], acc: &mut [[f32; NC]; NP]) {
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        // SAFETY: AVX-512F was detected at run time.
        unsafe { microkernel_avx512(pan, xt, acc) };
        return;
    }
    let _ = avx512;
    // Portable version: 4 points × 16 centroids per pass (8 AVX2 or 16 NEON
    // accumulator registers), four passes per panel; fixed-size arrays so
    // the compiler keeps the tile in registers.
    let dim = pan.len() / NC;
    for h in 0..NC / 16 {
        for pg in 0..NP / 4 {
            let mut a = [[0f32; 16]; 4];
            for d in 0..dim {
                let t: &[f32; 16] = pan[d * NC + h * 16..d * NC + h * 16 + 16]
                    .try_into()
                    .expect("panel row");
                let x: &[f32; 4] = xt[d * NP + pg * 4..d * NP + pg * 4 + 4]
                    .try_into()
                    .expect("tile column");
                for p in 0..4 {
                    for c in 0..16 {
                        a[p][c] += x[p] * t[c];
                    }
                }
            }
            for p in 0..4 {
                acc[pg * 4 + p][h * 16..h * 16 + 16].copy_from_slice(&a[p]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn microkernel_avx512(pan: &[f32], xt: &[f32], acc: &mut [[f32; NC]; NP]) {
    use std::arch::x86_64::*;
    let dim = pan.len() / NC;
    assert!(xt.len() >= dim * NP);
    let mut a = [_mm512_setzero_ps(); 2 * NP];
    let (pp, xp) = (pan.as_ptr(), xt.as_ptr());
    for d in 0..dim {
        // SAFETY: d < dim: the two panel loads and NP broadcasts are in
        // bounds (pan has dim*NC, xt at least dim*NP elements).
        unsafe {
            let t0 = _mm512_loadu_ps(pp.add(d * NC));
            let t1 = _mm512_loadu_ps(pp.add(d * NC + 16));
            for p in 0..NP {
                let x = _mm512_set1_ps(*xp.add(d * NP + p));
                a[2 * p] = _mm512_fmadd_ps(x, t0, a[2 * p]);
                a[2 * p + 1] = _mm512_fmadd_ps(x, t1, a[2 * p + 1]);
            }
        }
    }
    for p in 0..NP {
        // SAFETY: acc[p] has NC = 32 f32.
        unsafe {
            _mm512_storeu_ps(acc[p].as_mut_ptr(), a[2 * p]);
            _mm512_storeu_ps(acc[p].as_mut_ptr().add(16), a[2 * p + 1]);
        }
    }
}

/// Centroids scored per register chunk in [`assign_small`] (4 zmm).
pub(crate) const SMALL_CHUNK: usize = 64;

/// Scores `s[c] = csq[c] - 2 Σ_d x_d t[d][c]` (or `-Σ x_d t[d][c]`) for a
/// transposed centroid table `t` (`dim × k`) and keeps, per point, the
/// lowest score and its centroid (the lowest index among equal scores).
/// PQ encoding (dim = 4, k = 256) and small-dimension k-means run here.
/// `avx512` is [`use_avx512`] (the kernels' level, capped by
/// `POCKETVEC_ISA`), as for [`assign_gemm`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn assign_small(
    avx512: bool,
    pts: &[f32],
    dim: usize,
    t: &[f32],
    k: usize,
    csq: &[f32],
    l2: bool,
    labels: &mut [u32],
    scores: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if avx512 && k > 0 && k.is_multiple_of(SMALL_CHUNK) {
        // SAFETY: `avx512` comes from `use_avx512`, which detected AVX-512F.
        unsafe { assign_small_avx512(pts, dim, t, k, csq, l2, labels, scores) };
        return;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = avx512;
    assign_small_portable(pts, dim, t, k, csq, l2, labels, scores);
}

/// [`assign_small`] with explicit AVX-512 for `k` a multiple of 64: the same
/// operations in the same order as the portable loop (a multiply and an add
/// per term, no fused multiply-add), so the scores are bit-identical, but the
/// per-point minimum is a two-instruction vector reduction instead of a
/// 16-step scalar chain (most of the portable loop's time at dim 4).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn assign_small_avx512(
    pts: &[f32],
    dim: usize,
    t: &[f32],
    k: usize,
    csq: &[f32],
    l2: bool,
    labels: &mut [u32],
    scores: &mut [f32],
) {
    use std::arch::x86_64::*;
    assert!(k.is_multiple_of(SMALL_CHUNK) && t.len() >= dim * k && csq.len() >= k);
    let factor = if l2 { -2.0f32 } else { -1.0f32 };
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let tp = t.as_ptr();
    for ((x, lab), sco) in pts
        .chunks_exact(dim)
        .zip(labels.iter_mut())
        .zip(scores.iter_mut())
    {
        let mut best = _mm512_set1_ps(f32::INFINITY);
        let mut bidx = _mm512_setzero_si512();
        for c0 in (0..k).step_by(SMALL_CHUNK) {
            let mut a = [_mm512_setzero_ps(); 4];
            if l2 {
                for (g, ag) in a.iter_mut().enumerate() {
                    // SAFETY: c0 + 16g + 16 <= k <= csq.len().
                    *ag = unsafe { _mm512_loadu_ps(csq.as_ptr().add(c0 + 16 * g)) };
                }
            }
            for (d, &xd) in x.iter().enumerate() {
                let w = _mm512_set1_ps(factor * xd);
                for (g, ag) in a.iter_mut().enumerate() {
                    // SAFETY: d < dim and c0 + 16g + 16 <= k: in t (dim × k).
                    let row = unsafe { _mm512_loadu_ps(tp.add(d * k + c0 + 16 * g)) };
                    *ag = _mm512_add_ps(*ag, _mm512_mul_ps(w, row));
                }
            }
            for (g, &ag) in a.iter().enumerate() {
                let take = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(ag, best);
                best = _mm512_mask_mov_ps(best, take, ag);
                let idx = _mm512_add_epi32(lane, _mm512_set1_epi32((c0 + 16 * g) as i32));
                bidx = _mm512_mask_mov_epi32(bidx, take, idx);
            }
        }
        let v = _mm512_reduce_min_ps(best);
        let at = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(best, _mm512_set1_ps(v));
        let l = _mm512_mask_reduce_min_epu32(at, bidx);
        *lab = l;
        // The chosen lane's own value (as the portable loop keeps it: the
        // sign of a zero may differ between tied lanes).
        let sel = _mm512_mask_cmpeq_epi32_mask(at, bidx, _mm512_set1_epi32(l as i32));
        *sco = _mm512_mask_reduce_min_ps(sel, best);
    }
}

multiversion! {
    /// Scores `s[c] = csq[c] - 2 Σ_d x_d t[d][c]` (or `-Σ x_d t[d][c]`) for a
    /// transposed centroid table `t` (`dim × k`), vectorised over centroids:
    /// 64 centroids at a time stay in registers across all dimensions.
    fn assign_small_portable(
        pts: &[f32],
        dim: usize,
        t: &[f32],
        k: usize,
        csq: &[f32],
        l2: bool,
        labels: &mut [u32],
        scores: &mut [f32],
    ) {
        let factor = if l2 { -2.0f32 } else { -1.0f32 };
        let full = k / SMALL_CHUNK * SMALL_CHUNK;
        let mut w = vec![0f32; dim];
        for (i, x) in pts.chunks_exact(dim).enumerate() {
            for (wd, &xd) in w.iter_mut().zip(x) {
                *wd = factor * xd;
            }
            // Running per-lane minimum over all chunks (compare + blend),
            // one 16-way reduction per point at the end.
            let mut lb = [f32::INFINITY; 16];
            let mut li = [0u32; 16];
            let mut c0 = 0;
            while c0 < full {
                let mut acc = [0f32; SMALL_CHUNK];
                if l2 {
                    acc.copy_from_slice(&csq[c0..c0 + SMALL_CHUNK]);
                }
                for (d, &wd) in w.iter().enumerate() {
                    let row: &[f32; SMALL_CHUNK] =
                        t[d * k + c0..d * k + c0 + SMALL_CHUNK].try_into().expect("row");
                    for c in 0..SMALL_CHUNK {
                        acc[c] += wd * row[c];
                    }
                }
                for g in 0..SMALL_CHUNK / 16 {
                    for l in 0..16 {
                        let v = acc[g * 16 + l];
                        let take = v < lb[l];
                        lb[l] = if take { v } else { lb[l] };
                        li[l] = if take { (c0 + g * 16 + l) as u32 } else { li[l] };
                    }
                }
                c0 += SMALL_CHUNK;
            }
            let (mut best, mut bi) = (f32::INFINITY, 0usize);
            for l in 0..16 {
                if lb[l] < best || (lb[l] == best && (li[l] as usize) < bi) {
                    best = lb[l];
                    bi = li[l] as usize;
                }
            }
            for c in full..k {
                let mut s = if l2 { csq[c] } else { 0.0 };
                for (d, &wd) in w.iter().enumerate() {
                    s += wd * t[d * k + c];
                }
                if s < best {
                    best = s;
                    bi = c;
                }
            }
            labels[i] = bi as u32;
            scores[i] = best;
        }
    }
}

// x86-64 only: the AVX-512 path exists there alone.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::rng::SeededRng;

    /// The AVX-512 assignment gives the portable loop's labels and scores
    /// bit for bit: random and heavily tied data (values on a coarse grid,
    /// duplicated centroids, ±0, all-infinite scores), L2 and inner product.
    #[test]
    fn assign_small_avx512_matches_portable() {
        {
            if !std::arch::is_x86_feature_detected!("avx512f") {
                eprintln!("assign_small_avx512_matches_portable: no AVX-512F on this CPU, skipped");
                return;
            }
            let mut rng = SeededRng::new(7);
            for case in 0..48 {
                let dim = 1 + case % 8;
                let k = 64 * (1 + case % 4);
                let n = 97;
                let coarse = case % 3 == 0;
                let draw = |r: &mut SeededRng| {
                    let v = (r.unit_f64() * 2.0 - 1.0) as f32;
                    if coarse {
                        (v * 2.0).round() * 0.5
                    } else {
                        v
                    }
                };
                let pts: Vec<f32> = (0..n * dim).map(|_| draw(&mut rng)).collect();
                let mut cents: Vec<f32> = (0..k * dim).map(|_| draw(&mut rng)).collect();
                // Duplicated centroids: equal scores at different indices.
                let (head, tail) = cents.split_at_mut(dim * k / 2);
                tail[..dim * 8].copy_from_slice(&head[..dim * 8]);
                if case == 5 {
                    cents.iter_mut().for_each(|c| *c = -0.0);
                }
                let t = transpose(&cents, k, dim);
                let mut csq: Vec<f32> = cents
                    .chunks_exact(dim)
                    .map(|c| c.iter().map(|v| v * v).sum())
                    .collect();
                if case == 7 {
                    csq.iter_mut().for_each(|c| *c = f32::INFINITY);
                }
                for l2 in [true, false] {
                    let (mut la, mut sa) = (vec![0u32; n], vec![0f32; n]);
                    let (mut lp, mut sp) = (vec![0u32; n], vec![0f32; n]);
                    // SAFETY: AVX-512F detected above.
                    unsafe { assign_small_avx512(&pts, dim, &t, k, &csq, l2, &mut la, &mut sa) };
                    assign_small_portable(&pts, dim, &t, k, &csq, l2, &mut lp, &mut sp);
                    assert_eq!(la, lp, "labels, case {case} dim {dim} k {k} l2 {l2}");
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&sa),
                        bits(&sp),
                        "scores, case {case} dim {dim} k {k} l2 {l2}"
                    );
                }
            }
        }
    }
}
