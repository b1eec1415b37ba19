//! Exact search from a compact copy of f32 rows.
//!
//! The RAM cache of an f32 table holds each row as its unit vector rounded
//! to f16 (half the bytes of the row) plus two numbers: the row's norm and
//! `rho`, the L2 length of the rounding error (computed in f64 from the
//! row itself). Scoring the compact copy gives every row an interval that
//! must contain the distance an f32 scan of the row would report; a row is
//! a candidate only while its interval's lower end is not above the k-th
//! smallest upper end seen so far. The caller then scores the candidates
//! from their f32 base rows, in order of their lower ends, so the answer
//! is the f32 scan's: no row of the true top k can be pruned (k rows whose
//! upper ends are below its lower end are all strictly nearer).
//!
//! The interval, for the query's unit vector `q̂ = q̃ + e_q` and a row's
//! `x̂ = x̃ + e_x` (`q̃`, `x̃` the f16 vectors, `‖e_x‖ = rho`,
//! `‖e_q‖ = sigma`): `q̂·x̂ = q̃·x̃ + q̃·e_x + e_q·x̂`, so the cosine lies
//! within `‖q̃‖·rho + sigma` of `q̃·x̃`, and the f32 sum the kernel returns
//! for `q̃·x̃` (the f16 products are exact in f32) within `γ_d·‖q̃‖·‖x̃‖` of
//! it. The f32 scan's own rounding (`κ`, a few `γ_d`, see [`Query`]) widens
//! every interval once more. No SQLite here.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use kernels::{f16, Kernels, Metric};

use super::score::{run_parallel, Admit};
use super::DistanceFilter;

/// f32's unit roundoff, 2⁻²⁴.
const U: f64 = 1.0 / 16_777_216.0;

/// Rows whose norm is outside this range are never pruned (always
/// re-scored): their f32 distances may take the kernels' f64 fallback.
const NORM_RANGE: std::ops::Range<f64> = 1e-18..1e18;

/// A row in compact form: written by [`encode_row`].
pub struct Encoded {
    /// ‖x‖ (f64, from the f32 row).
    pub norm: f64,
    /// Upper bound of ‖x/‖x‖ − f16(x/‖x‖)‖; infinite for a row that is
    /// never pruned.
    pub rho: f32,
}

/// Reused buffers of [`encode_row`].
#[derive(Default)]
pub struct Scratch {
    row: Vec<f32>,
    unit: Vec<f32>,
    back: Vec<f32>,
}

/// Encodes the f32 row `row` (little-endian bytes, any alignment) into
/// `out` (its unit vector in f16).
pub fn encode_row(k: &Kernels, row: &[u8], tmp: &mut Scratch, out: &mut [f16]) -> Encoded {
    debug_assert_eq!(row.len(), out.len() * 4);
    let Scratch { row: x, unit, back } = tmp;
    x.clear();
    x.extend(
        row.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
    let norm = sumsq(x).sqrt();
    if norm == 0.0 {
        out.fill(f16::ZERO);
        return Encoded { norm, rho: 0.0 };
    }
    if !NORM_RANGE.contains(&norm) {
        // Not finite (or extreme): always re-scored.
        out.fill(f16::ZERO);
        return Encoded {
            norm,
            rho: f32::INFINITY,
        };
    }
    // The f16 values may come from any rounding of x/‖x‖: `rho` measures
    // their distance from the exact unit vector (in f64) afterwards.
    let inv = 1.0 / norm;
    let inv32 = inv as f32;
    unit.clear();
    unit.extend(x.iter().map(|&v| v * inv32));
    k.f32_to_f16(unit, out).expect("same length");
    back.resize(out.len(), 0.0);
    k.f16_to_f32(out, back).expect("same length");
    let mut acc = [0f64; 4];
    let mut it = x.chunks_exact(4).zip(back.chunks_exact(4));
    for (xv, hv) in &mut it {
        for j in 0..4 {
            let e = f64::from(xv[j]) * inv - f64::from(hv[j]);
            acc[j] += e * e;
        }
    }
    let n4 = x.len() / 4 * 4;
    for (xv, hv) in x[n4..].iter().zip(&back[n4..]) {
        let e = f64::from(*xv) * inv - f64::from(*hv);
        acc[0] += e * e;
    }
    let rho = (acc.iter().sum::<f64>().sqrt() * (1.0 + 1e-9)) as f32;
    Encoded {
        // Rounded up so the f32 never understates the f64.
        rho: above(rho),
        norm,
    }
}

/// A value above finite `x` (by at least one f32 step).
fn above(x: f32) -> f32 {
    x + x.abs() * (1.0 / 1_048_576.0) + f32::MIN_POSITIVE
}

/// Σx² in f64, four independent sums.
fn sumsq(x: &[f32]) -> f64 {
    let mut acc = [0f64; 4];
    let mut it = x.chunks_exact(4);
    for c in &mut it {
        for j in 0..4 {
            acc[j] += f64::from(c[j]) * f64::from(c[j]);
        }
    }
    for &v in it.remainder() {
        acc[0] += f64::from(v) * f64::from(v);
    }
    acc.iter().sum()
}

/// A query prepared for screening.
pub struct Query {
    pub metric: Metric,
    /// The query's unit vector in f16.
    pub q16: Vec<f16>,
    /// ‖q‖.
    qn: f64,
    /// ‖q̃‖.
    a: f64,
    /// ‖q̂ − q̃‖.
    sigma: f64,
    /// Bound of the f32 summation error of the f16 dot product, relative to
    /// ‖q̃‖·‖x̃‖.
    gamma: f64,
    /// Bound of the f32 scan's own rounding, relative to the metric's scale
    /// (1 for cosine, ‖q‖·‖x‖ for dot, the squared distance for L2).
    kappa: f64,
}

impl Query {
    /// `None` when the query cannot be screened (zero, extreme or
    /// non-finite norm): the caller scans the f32 rows instead.
    pub fn new(k: &Kernels, metric: Metric, q: &[f32]) -> Option<Query> {
        let d = q.len();
        let qn = sumsq(q).sqrt();
        if !NORM_RANGE.contains(&qn) || d == 0 {
            return None;
        }
        let unit: Vec<f64> = q.iter().map(|&x| f64::from(x) / qn).collect();
        let unit32: Vec<f32> = unit.iter().map(|&x| x as f32).collect();
        let mut q16 = vec![f16::ZERO; d];
        k.f32_to_f16(&unit32, &mut q16).ok()?;
        let mut back = vec![0f32; d];
        k.f16_to_f32(&q16, &mut back).ok()?;
        let (mut a2, mut s2) = (0f64, 0f64);
        for (&u, &h) in unit.iter().zip(&back) {
            let h = f64::from(h);
            a2 += h * h;
            s2 += (u - h) * (u - h);
        }
        let g = |n: f64| n * U / (1.0 - n * U);
        let df = d as f64;
        Some(Query {
            metric,
            q16,
            qn,
            a: a2.sqrt() * (1.0 + 1e-12),
            sigma: s2.sqrt() * (1.0 + 1e-9) + 1e-12,
            gamma: g(df),
            // The scan's dot (or squared difference) sum, its norms and the
            // final division and square root, with room to spare.
            kappa: 4.0 * g(df + 4.0) + 64.0 * U,
        })
    }

    /// Half-width, in cosine units, of row interval for a row with `rho`.
    #[inline]
    fn radius(&self, rho: f64) -> f64 {
        self.a * rho + self.sigma + self.gamma * self.a * (1.0 + rho) + 1e-12
    }

    /// The interval of the f32 scan's distance for a row with norm `n` and
    /// error bound `rho` whose f16 dot product came out as `s`.
    #[inline]
    fn bounds(&self, s: f64, n: f64, rho: f64) -> (f64, f64) {
        let r = self.radius(rho);
        if !r.is_finite() {
            return (f64::NEG_INFINITY, f64::INFINITY);
        }
        let (c_lo, c_hi) = ((s - r).max(-1.0), (s + r).min(1.0));
        let kap = self.kappa;
        match self.metric {
            Metric::Cosine => {
                if n == 0.0 {
                    // The kernels' documented zero-norm cosine distance.
                    return (1.0, 1.0);
                }
                (1.0 - c_hi - kap, 1.0 - c_lo + kap)
            }
            Metric::Dot => {
                let p = self.qn * n;
                (-p * c_hi - kap * p, -p * c_lo + kap * p)
            }
            Metric::L2 => {
                let p = self.qn * n;
                let base = self.qn * self.qn + n * n;
                let lo = (base - 2.0 * p * c_hi).max(0.0);
                let hi = (base - 2.0 * p * c_lo).max(0.0);
                (
                    (lo * (1.0 - kap)).sqrt() * (1.0 - kap),
                    (hi * (1.0 + kap)).sqrt() * (1.0 + kap),
                )
            }
        }
    }
}

/// One block of compact rows.
#[derive(Copy, Clone)]
pub struct Block<'a> {
    pub ids: &'a [i64],
    /// `ids.len()` unit vectors in f16, row-major.
    pub rows: &'a [f16],
    pub norms: &'a [f64],
    pub rho: &'a [f32],
    /// At least every `rho` of the block.
    pub rho_max: f32,
}

/// An f64 ordered by `total_cmp` (bounds are never NaN).
#[derive(Copy, Clone, PartialEq)]
struct Key(f64);

impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Screening state of one query: the k smallest upper ends, and the rows
/// whose lower end was within the k-th of them when they were seen.
pub struct Screen {
    k: usize,
    uppers: BinaryHeap<Key>,
    tau: f64,
    cands: Vec<(f64, i64)>,
    prune_at: usize,
    seen: u64,
}

impl Screen {
    /// `k = usize::MAX`: no k (the distance filter alone bounds the
    /// candidates).
    pub fn new(k: usize) -> Screen {
        Screen {
            k: k.max(1),
            uppers: BinaryHeap::new(),
            tau: f64::INFINITY,
            cands: Vec::new(),
            prune_at: 4096,
            seen: 0,
        }
    }

    /// An empty state with the same k (one per scan thread).
    pub fn empty_like(&self) -> Screen {
        Screen::new(self.k)
    }

    /// Rows offered (after rowid filters).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The k-th smallest upper end so far (infinite until k rows surely
    /// pass the distance filter).
    pub fn tau(&self) -> f64 {
        self.tau
    }

    #[inline]
    fn offer_upper(&mut self, hi: f64) {
        if self.k == usize::MAX {
            // No k: every row that may pass the distance filter is a
            // candidate.
            return;
        }
        if self.uppers.len() < self.k {
            self.uppers.push(Key(hi));
            if self.uppers.len() == self.k {
                self.tau = self.uppers.peek().map_or(f64::INFINITY, |x| x.0);
            }
        } else if hi < self.tau {
            if let Some(mut top) = self.uppers.peek_mut() {
                *top = Key(hi);
            }
            self.tau = self.uppers.peek().map_or(f64::INFINITY, |x| x.0);
        }
    }

    /// Offers a row with distance interval `lo..=hi`.
    #[inline]
    fn offer(&mut self, id: i64, lo: f64, hi: f64, filter: &DistanceFilter) {
        if lo > self.tau || !filter.range_may_pass(lo, hi) {
            return;
        }
        self.cands.push((lo, id));
        if filter.range_sure_pass(lo, hi) {
            self.offer_upper(hi);
        }
        if self.cands.len() >= self.prune_at {
            let tau = self.tau;
            self.cands.retain(|&(lo, _)| lo <= tau);
            self.prune_at = (self.cands.len() * 2).max(4096);
        }
    }

    /// Adds what another state (same k) saw.
    pub fn merge(&mut self, other: Screen) {
        self.seen += other.seen;
        for Key(hi) in other.uppers {
            self.offer_upper(hi);
        }
        self.cands.extend(other.cands);
    }

    /// The candidates, by ascending lower end: every row whose lower end is
    /// not above the final k-th upper end.
    pub fn finish(mut self) -> Vec<(f64, i64)> {
        let tau = self.tau;
        self.cands.retain(|&(lo, _)| lo <= tau);
        self.cands
            .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        self.cands
    }
}

/// Screens one block against one query.
pub fn scan_block(
    k: &Kernels,
    q: &Query,
    b: Block<'_>,
    admit: &Admit<'_>,
    filter: &DistanceFilter,
    st: &mut Screen,
    buf: &mut Vec<f32>,
) -> Result<(), String> {
    let n = b.ids.len();
    if n == 0 {
        return Ok(());
    }
    buf.resize(n, 0.0);
    // Metric::Dot gives −(q̃·x̃).
    k.distances_f16(Metric::Dot, &q.q16, b.rows, None, &mut buf[..n])
        .map_err(|e| format!("pocketvec internal error: {e}"))?;
    let all = admit.all();
    let cosine = q.metric == Metric::Cosine;
    let r_max = q.radius(f64::from(b.rho_max));
    let mut i = 0;
    while i < n {
        // Cosine: a row with −s above `theta` has a lower end above tau
        // even at the block's largest radius; skip those without more work.
        if cosine && r_max.is_finite() {
            let theta = st.tau + q.kappa + r_max - 1.0;
            if theta.is_finite() {
                // Rounded up: only rows certainly above theta are skipped.
                let t32 = above(theta as f32);
                while i < n && buf[i] > t32 {
                    i += 1;
                }
                if i == n {
                    break;
                }
            }
        }
        let id = b.ids[i];
        if all || admit.admits(id) {
            st.seen += 1;
            let (lo, hi) = q.bounds(-f64::from(buf[i]), b.norms[i], f64::from(b.rho[i]));
            st.offer(id, lo, hi, filter);
        }
        i += 1;
    }
    Ok(())
}

/// Screens `blocks` against every query on `threads` threads (pure
/// compute), merging per-thread states into `states`.
pub fn scan_parallel(
    k: &Kernels,
    queries: &[Query],
    blocks: &[Block<'_>],
    admit: &Admit<'_>,
    filter: &DistanceFilter,
    states: &mut [Screen],
    threads: usize,
) -> Result<(), String> {
    run_parallel(
        blocks,
        |b| b.ids.len(),
        states,
        threads,
        Screen::empty_like,
        |part, sts| {
            let mut buf = Vec::new();
            for b in part {
                for (q, st) in queries.iter().zip(sts.iter_mut()) {
                    scan_block(k, q, *b, admit, filter, st, &mut buf)?;
                }
            }
            Ok(())
        },
        Screen::merge,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::RowidFilter;
    use crate::vtab::plan::CmpOp;

    /// Clustered rows with near-duplicates and a few extreme rows.
    fn data(n: usize, d: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let centres: Vec<Vec<f64>> = (0..8).map(|_| (0..d).map(|_| rnd()).collect()).collect();
        (0..n)
            .map(|i| {
                let c = &centres[i % 8];
                let scale = [1.0, 1e-3, 40.0, 1.0][i % 4];
                match i % 97 {
                    0 => vec![0.0; d],
                    1 => vec![3e30; d],
                    _ => c
                        .iter()
                        .map(|&x| ((x + 0.05 * rnd()) * scale) as f32)
                        .collect(),
                }
            })
            .collect()
    }

    fn f32_distance(k: &Kernels, m: Metric, q: &[f32], x: &[f32]) -> f32 {
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut out = [0f32];
        let norm = [k.norm_f32(x)];
        k.distances_f32_bytes(m, q, &bytes, Some(&norm), &mut out)
            .unwrap();
        out[0]
    }

    /// The f32 distance of every row lies in its interval, and the
    /// candidates always contain the f32 scan's top k, on every level.
    #[test]
    fn intervals_hold_and_candidates_cover_top_k() {
        for isa in [
            kernels::Isa::Scalar,
            kernels::Isa::Avx2,
            kernels::Isa::Avx512,
        ] {
            let Ok(k) = Kernels::new(isa) else { continue };
            for d in [1, 7, 64, 384] {
                let rows = data(600, d, 11 + d as u64);
                let mut tmp = Scratch::default();
                let mut s16 = vec![f16::ZERO; rows.len() * d];
                let mut norms = Vec::new();
                let mut rho = Vec::new();
                for (r, out) in rows.iter().zip(s16.chunks_exact_mut(d)) {
                    let bytes: Vec<u8> = r.iter().flat_map(|v| v.to_le_bytes()).collect();
                    let e = encode_row(&k, &bytes, &mut tmp, out);
                    norms.push(e.norm);
                    rho.push(e.rho);
                }
                let ids: Vec<i64> = (0..rows.len() as i64).map(|i| i * 2 + 1).collect();
                let rho_max = rho
                    .iter()
                    .copied()
                    .filter(|r| r.is_finite())
                    .fold(0f32, f32::max);
                let rho_max = if rho.iter().any(|r| r.is_infinite()) {
                    f32::INFINITY
                } else {
                    rho_max
                };
                let block = Block {
                    ids: &ids,
                    rows: &s16,
                    norms: &norms,
                    rho: &rho,
                    rho_max,
                };
                for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
                    for qi in [3usize, 50, 333] {
                        // Queries not in the data: a row nudged.
                        let q: Vec<f32> = rows[qi]
                            .iter()
                            .enumerate()
                            .map(|(j, &x)| x + 0.01 * ((j % 3) as f32 - 1.0))
                            .collect();
                        let Some(pq) = Query::new(&k, metric, &q) else {
                            continue;
                        };
                        let mut buf = vec![0f32; rows.len()];
                        k.distances_f16(Metric::Dot, &pq.q16, &s16, None, &mut buf)
                            .unwrap();
                        let exact: Vec<f32> = rows
                            .iter()
                            .map(|r| f32_distance(&k, metric, &q, r))
                            .collect();
                        for i in 0..rows.len() {
                            let (lo, hi) =
                                pq.bounds(-f64::from(buf[i]), norms[i], f64::from(rho[i]));
                            let e = f64::from(exact[i]);
                            assert!(
                                lo <= e && e <= hi,
                                "{isa:?} d={d} {metric:?} row {i}: {lo} <= {e} <= {hi}"
                            );
                        }
                        for kk in [1usize, 10, 100] {
                            let rf = RowidFilter::default();
                            let admit = Admit {
                                rowids: &rf,
                                exclude: None,
                            };
                            let filter = DistanceFilter::default();
                            let mut st = [Screen::new(kk)];
                            scan_parallel(
                                &k,
                                std::slice::from_ref(&pq),
                                &[block],
                                &admit,
                                &filter,
                                &mut st,
                                1 + kk % 3,
                            )
                            .unwrap();
                            let [st] = st;
                            assert_eq!(st.seen(), rows.len() as u64);
                            let cands: std::collections::HashSet<i64> =
                                st.finish().into_iter().map(|c| c.1).collect();
                            let mut order: Vec<usize> = (0..rows.len()).collect();
                            order.sort_by(|&a, &b| exact[a].total_cmp(&exact[b]).then(a.cmp(&b)));
                            for &i in &order[..kk] {
                                assert!(
                                    cands.contains(&ids[i]),
                                    "{isa:?} d={d} {metric:?} k={kk}: row {i} pruned"
                                );
                            }
                            if d >= 64 && metric == Metric::Cosine {
                                // Screening must prune: far fewer candidates than rows.
                                assert!(cands.len() < rows.len() / 3, "{} candidates", cands.len());
                            }
                        }
                    }
                }
            }
        }
    }

    /// Distance filters: rows surely outside are dropped, rows possibly
    /// inside kept, and only rows surely inside count toward k.
    #[test]
    fn filter_ranges() {
        let mut f = DistanceFilter::default();
        f.add(
            CmpOp::Lt,
            crate::source::Rhs::Num(crate::source::Num::Real(0.5)),
        );
        assert!(f.range_may_pass(0.4, 0.6) && !f.range_sure_pass(0.4, 0.6));
        assert!(f.range_sure_pass(0.1, 0.4));
        assert!(!f.range_may_pass(0.5, 0.7));
        let mut st = Screen::new(1);
        st.offer(1, 0.4, 0.6, &f);
        assert_eq!(
            st.tau(),
            f64::INFINITY,
            "a row that may fail does not set tau"
        );
        st.offer(2, 0.1, 0.2, &f);
        assert_eq!(st.tau(), 0.2);
        st.offer(3, 0.3, 0.35, &f);
        st.offer(4, 0.6, 0.7, &f);
        let c: Vec<i64> = st.finish().into_iter().map(|c| c.1).collect();
        assert_eq!(c, vec![2]);
    }
}
