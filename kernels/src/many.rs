//! One-to-many: distances from one query to every row of a row-major block,
//! the hot loop of every scan. The f32 path runs four rows at once so each
//! query register is loaded once per four rows.
use pulp::{Simd, WithSimd};

use crate::arch::{Token, WithToken};
use crate::finish::{self, cos_dist, cos_sim, cos_sim_norms};
use crate::{f16, Metric};

pub(crate) struct ManyF32<'a> {
    pub metric: Metric,
    pub q: &'a [f32],
    pub block: &'a [f32],
    pub norms: Option<&'a [f32]>,
    pub out: &'a mut [f32],
    /// ‖q‖ (robust), used by Cosine.
    pub qn: f32,
}

/// Splits four consecutive rows of `d` elements.
#[inline(always)]
fn split(rs: &[f32], d: usize) -> [&[f32]; 4] {
    let (r01, r23) = rs.split_at(2 * d);
    let (r0, r1) = r01.split_at(d);
    let (r2, r3) = r23.split_at(d);
    [r0, r1, r2, r3]
}

impl WithSimd for ManyF32<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let ManyF32 {
            metric,
            q,
            block,
            norms,
            out,
            qn,
        } = self;
        let d = q.len();
        debug_assert!(d > 0 && block.len() == d * out.len());
        let n4 = out.len() / 4 * 4;
        let (out4, out1) = out.split_at_mut(n4);
        let (block4, block1) = block.split_at(n4 * d);
        let rows4 = block4.chunks_exact(4 * d).zip(out4.chunks_exact_mut(4));
        match (metric, norms) {
            (Metric::Dot, _) => {
                for (rs, o) in rows4 {
                    let v = crate::f32s::dot4(s, q, split(rs, d));
                    for k in 0..4 {
                        o[k] = -v[k];
                    }
                }
                for (r, o) in block1.chunks_exact(d).zip(out1) {
                    *o = -crate::f32s::dot(s, q, r);
                }
            }
            (Metric::L2, _) => {
                for (rs, o) in rows4 {
                    let r = split(rs, d);
                    let v = crate::f32s::l2sq4(s, q, r);
                    for k in 0..4 {
                        o[k] = finish::l2_from(v[k], q, r[k]);
                    }
                }
                for (r, o) in block1.chunks_exact(d).zip(out1) {
                    *o = finish::l2_from(crate::f32s::l2sq(s, q, r), q, r);
                }
            }
            (Metric::Cosine, Some(norms)) => {
                let (norms4, norms1) = norms.split_at(n4);
                for ((rs, o), ns) in rows4.zip(norms4.chunks_exact(4)) {
                    let r = split(rs, d);
                    let v = crate::f32s::dot4(s, q, r);
                    for k in 0..4 {
                        o[k] = cos_dist(finish::cos_from_norms(v[k], qn, ns[k], q, r[k]));
                    }
                }
                for ((r, o), rn) in block1.chunks_exact(d).zip(out1).zip(norms1) {
                    let ab = crate::f32s::dot(s, q, r);
                    *o = cos_dist(finish::cos_from_norms(ab, qn, *rn, q, r));
                }
            }
            (Metric::Cosine, None) => {
                let qq = qn * qn;
                for (rs, o) in rows4 {
                    let r = split(rs, d);
                    let (ab, rr) = crate::f32s::dot_sq4(s, q, r);
                    for k in 0..4 {
                        let sim = if finish::safe(qq) && finish::safe(rr[k]) {
                            cos_sim_norms(ab[k] as f64, qn as f64, (rr[k] as f64).sqrt())
                        } else {
                            finish::cos_from((ab[k], qq, rr[k]), q, r[k])
                        };
                        o[k] = cos_dist(sim);
                    }
                }
                for (r, o) in block1.chunks_exact(d).zip(out1) {
                    let parts = crate::f32s::cos_parts(s, q, r);
                    *o = cos_dist(finish::cos_from(parts, q, r));
                }
            }
        }
    }
}

pub(crate) struct ManyF16<'a> {
    pub metric: Metric,
    pub q: &'a [f16],
    pub block: &'a [f16],
    pub norms: Option<&'a [f32]>,
    pub out: &'a mut [f32],
}

impl WithToken for ManyF16<'_> {
    type Output = ();
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) {
        let ManyF16 {
            metric,
            q,
            block,
            norms,
            out,
        } = self;
        let d = q.len();
        let rows = block.chunks_exact(d).zip(out.iter_mut());
        match (metric, norms) {
            (Metric::Dot, _) => {
                for (r, o) in rows {
                    *o = -crate::f16s::dot(t, q, r);
                }
            }
            (Metric::L2, _) => {
                for (r, o) in rows {
                    *o = crate::f16s::l2sq(t, q, r).sqrt();
                }
            }
            (Metric::Cosine, Some(norms)) => {
                let qn = (crate::f16s::sumsq(t, q) as f64).sqrt();
                for ((r, o), rn) in rows.zip(norms) {
                    let ab = crate::f16s::dot(t, q, r) as f64;
                    *o = cos_dist(cos_sim_norms(ab, qn, *rn as f64));
                }
            }
            (Metric::Cosine, None) => {
                for (r, o) in rows {
                    let (ab, aa, bb) = crate::f16s::cos_parts(t, q, r);
                    *o = cos_dist(finish::cos_sim_f32(ab, aa, bb));
                }
            }
        }
    }
}

pub(crate) struct ManyI8<'a> {
    pub metric: Metric,
    pub q: &'a [i8],
    pub block: &'a [i8],
    pub norms: Option<&'a [f32]>,
    pub out: &'a mut [f32],
}

impl WithToken for ManyI8<'_> {
    type Output = ();
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) {
        let ManyI8 {
            metric,
            q,
            block,
            norms,
            out,
        } = self;
        let d = q.len();
        let rows = block.chunks_exact(d).zip(out.iter_mut());
        match (metric, norms) {
            (Metric::Dot, _) => {
                for (r, o) in rows {
                    *o = -(crate::i8s::dot(t, q, r) as f32);
                }
            }
            (Metric::L2, _) => {
                for (r, o) in rows {
                    *o = (crate::i8s::l2sq(t, q, r) as f64).sqrt() as f32;
                }
            }
            (Metric::Cosine, Some(norms)) => {
                let qn = (crate::i8s::sumsq(t, q) as f64).sqrt();
                for ((r, o), rn) in rows.zip(norms) {
                    let ab = crate::i8s::dot(t, q, r) as f64;
                    *o = cos_dist(cos_sim_norms(ab, qn, *rn as f64));
                }
            }
            (Metric::Cosine, None) => {
                for (r, o) in rows {
                    let (ab, aa, bb) = crate::i8s::cos_parts(t, q, r);
                    *o = cos_dist(cos_sim(ab as f64, aa as f64, bb as f64));
                }
            }
        }
    }
}
