//! f32 kernel bodies, written once over `pulp::Simd` and run at every level.
//!
//! Each body keeps four independent accumulators so that consecutive fused
//! multiply-adds do not wait on each other's latency, and finishes with one
//! zero-padded partial load instead of a scalar tail loop.
use core::iter::zip;

use pulp::{Simd, WithSimd};

/// `a * b + c`: fused where the level has FMA, plain multiply and add at the
/// scalar level on x86 (where `f32::mul_add` would be a libm call).
#[inline(always)]
pub(crate) fn fma<S: Simd>(s: S, a: S::f32s, b: S::f32s, c: S::f32s) -> S::f32s {
    if S::F32_LANES == 1 && cfg!(target_arch = "x86_64") && !cfg!(target_feature = "fma") {
        s.add_f32s(s.mul_f32s(a, b), c)
    } else {
        s.mul_add_f32s(a, b, c)
    }
}

#[inline(always)]
pub(crate) fn sum4<S: Simd>(s: S, a: S::f32s, b: S::f32s, c: S::f32s, d: S::f32s) -> f32 {
    s.reduce_sum_f32s(s.add_f32s(s.add_f32s(a, b), s.add_f32s(c, d)))
}

/// Σ a·b over two equal-length slices.
#[inline(always)]
pub(crate) fn dot<S: Simd>(s: S, a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (av, at) = S::as_simd_f32s(a);
    let (bv, bt) = S::as_simd_f32s(b);
    let z = s.splat_f32s(0.0);
    let (mut s0, mut s1, mut s2, mut s3) = (z, z, z, z);
    let (a4, a1) = pulp::as_arrays::<4, _>(av);
    let (b4, b1) = pulp::as_arrays::<4, _>(bv);
    for ([x0, x1, x2, x3], [y0, y1, y2, y3]) in zip(a4, b4) {
        s0 = fma(s, *x0, *y0, s0);
        s1 = fma(s, *x1, *y1, s1);
        s2 = fma(s, *x2, *y2, s2);
        s3 = fma(s, *x3, *y3, s3);
    }
    let mut rest = zip(a1, b1);
    if let Some((x, y)) = rest.next() {
        s0 = fma(s, *x, *y, s0);
    }
    if let Some((x, y)) = rest.next() {
        s1 = fma(s, *x, *y, s1);
    }
    if let Some((x, y)) = rest.next() {
        s2 = fma(s, *x, *y, s2);
    }
    if !at.is_empty() {
        s3 = fma(s, s.partial_load_f32s(at), s.partial_load_f32s(bt), s3);
    }
    sum4(s, s0, s1, s2, s3)
}

/// Σ (a-b)² over two equal-length slices.
#[inline(always)]
pub(crate) fn l2sq<S: Simd>(s: S, a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (av, at) = S::as_simd_f32s(a);
    let (bv, bt) = S::as_simd_f32s(b);
    let z = s.splat_f32s(0.0);
    let (mut s0, mut s1, mut s2, mut s3) = (z, z, z, z);
    let (a4, a1) = pulp::as_arrays::<4, _>(av);
    let (b4, b1) = pulp::as_arrays::<4, _>(bv);
    for ([x0, x1, x2, x3], [y0, y1, y2, y3]) in zip(a4, b4) {
        let d0 = s.sub_f32s(*x0, *y0);
        let d1 = s.sub_f32s(*x1, *y1);
        let d2 = s.sub_f32s(*x2, *y2);
        let d3 = s.sub_f32s(*x3, *y3);
        s0 = fma(s, d0, d0, s0);
        s1 = fma(s, d1, d1, s1);
        s2 = fma(s, d2, d2, s2);
        s3 = fma(s, d3, d3, s3);
    }
    let mut rest = zip(a1, b1);
    if let Some((x, y)) = rest.next() {
        let d = s.sub_f32s(*x, *y);
        s0 = fma(s, d, d, s0);
    }
    if let Some((x, y)) = rest.next() {
        let d = s.sub_f32s(*x, *y);
        s1 = fma(s, d, d, s1);
    }
    if let Some((x, y)) = rest.next() {
        let d = s.sub_f32s(*x, *y);
        s2 = fma(s, d, d, s2);
    }
    if !at.is_empty() {
        let d = s.sub_f32s(s.partial_load_f32s(at), s.partial_load_f32s(bt));
        s3 = fma(s, d, d, s3);
    }
    sum4(s, s0, s1, s2, s3)
}

/// Σ a² over one slice.
#[inline(always)]
pub(crate) fn sumsq<S: Simd>(s: S, a: &[f32]) -> f32 {
    let (av, at) = S::as_simd_f32s(a);
    let z = s.splat_f32s(0.0);
    let (mut s0, mut s1, mut s2, mut s3) = (z, z, z, z);
    let (a4, a1) = pulp::as_arrays::<4, _>(av);
    for [x0, x1, x2, x3] in a4 {
        s0 = fma(s, *x0, *x0, s0);
        s1 = fma(s, *x1, *x1, s1);
        s2 = fma(s, *x2, *x2, s2);
        s3 = fma(s, *x3, *x3, s3);
    }
    let mut rest = a1.iter();
    if let Some(x) = rest.next() {
        s0 = fma(s, *x, *x, s0);
    }
    if let Some(x) = rest.next() {
        s1 = fma(s, *x, *x, s1);
    }
    if let Some(x) = rest.next() {
        s2 = fma(s, *x, *x, s2);
    }
    if !at.is_empty() {
        let x = s.partial_load_f32s(at);
        s3 = fma(s, x, x, s3);
    }
    sum4(s, s0, s1, s2, s3)
}

/// (Σ a·b, Σ a², Σ b²) in one pass: three accumulators per sum, so nine
/// independent chains keep the FMA pipes busy at both 256- and 512-bit width
/// (and still fit in AVX2's 16 registers with the six loaded values).
#[inline(always)]
pub(crate) fn cos_parts<S: Simd>(s: S, a: &[f32], b: &[f32]) -> (f32, f32, f32) {
    debug_assert_eq!(a.len(), b.len());
    let (av, at) = S::as_simd_f32s(a);
    let (bv, bt) = S::as_simd_f32s(b);
    let z = s.splat_f32s(0.0);
    let (mut ab, mut aa, mut bb) = ([z; 3], [z; 3], [z; 3]);
    let (a3, a1) = pulp::as_arrays::<3, _>(av);
    let (b3, b1) = pulp::as_arrays::<3, _>(bv);
    for (x, y) in zip(a3, b3) {
        for k in 0..3 {
            ab[k] = fma(s, x[k], y[k], ab[k]);
            aa[k] = fma(s, x[k], x[k], aa[k]);
            bb[k] = fma(s, y[k], y[k], bb[k]);
        }
    }
    for (k, (x, y)) in zip(a1, b1).enumerate() {
        ab[k] = fma(s, *x, *y, ab[k]);
        aa[k] = fma(s, *x, *x, aa[k]);
        bb[k] = fma(s, *y, *y, bb[k]);
    }
    if !at.is_empty() {
        let x = s.partial_load_f32s(at);
        let y = s.partial_load_f32s(bt);
        ab[2] = fma(s, x, y, ab[2]);
        aa[2] = fma(s, x, x, aa[2]);
        bb[2] = fma(s, y, y, bb[2]);
    }
    let sum3 = |v: [S::f32s; 3]| s.reduce_sum_f32s(s.add_f32s(s.add_f32s(v[0], v[1]), v[2]));
    (sum3(ab), sum3(aa), sum3(bb))
}

/// Multiplies every element by `k` in place.
#[inline(always)]
pub(crate) fn scale<S: Simd>(s: S, a: &mut [f32], k: f32) {
    let kv = s.splat_f32s(k);
    let (av, at) = S::as_mut_simd_f32s(a);
    for x in av {
        *x = s.mul_f32s(*x, kv);
    }
    if !at.is_empty() {
        let x = s.mul_f32s(s.partial_load_f32s(at), kv);
        s.partial_store_f32s(at, x);
    }
}

/// (Σ q·r, Σ r²) in one pass (one-to-many cosine without stored norms: the
/// query's norm is computed once). Two accumulators per sum.
#[inline(always)]
pub(crate) fn dot_sumsq<S: Simd>(s: S, q: &[f32], r: &[f32]) -> (f32, f32) {
    debug_assert_eq!(q.len(), r.len());
    let (qv, qt) = S::as_simd_f32s(q);
    let (rv, rt) = S::as_simd_f32s(r);
    let z = s.splat_f32s(0.0);
    let (mut d, mut n) = ([z; 2], [z; 2]);
    let (q2, q1) = pulp::as_arrays::<2, _>(qv);
    let (r2, r1) = pulp::as_arrays::<2, _>(rv);
    for (x, y) in zip(q2, r2) {
        for k in 0..2 {
            d[k] = fma(s, x[k], y[k], d[k]);
            n[k] = fma(s, y[k], y[k], n[k]);
        }
    }
    if let (Some(x), Some(y)) = (q1.first(), r1.first()) {
        d[0] = fma(s, *x, *y, d[0]);
        n[0] = fma(s, *y, *y, n[0]);
    }
    if !qt.is_empty() {
        let x = s.partial_load_f32s(qt);
        let y = s.partial_load_f32s(rt);
        d[1] = fma(s, x, y, d[1]);
        n[1] = fma(s, y, y, n[1]);
    }
    (
        s.reduce_sum_f32s(s.add_f32s(d[0], d[1])),
        s.reduce_sum_f32s(s.add_f32s(n[0], n[1])),
    )
}

// ---- WithSimd adapters: one struct per entry point -------------------------

pub(crate) struct Dot<'a>(pub &'a [f32], pub &'a [f32]);
impl WithSimd for Dot<'_> {
    type Output = f32;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> f32 {
        dot(s, self.0, self.1)
    }
}

pub(crate) struct L2sq<'a>(pub &'a [f32], pub &'a [f32]);
impl WithSimd for L2sq<'_> {
    type Output = f32;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> f32 {
        l2sq(s, self.0, self.1)
    }
}

pub(crate) struct SumSq<'a>(pub &'a [f32]);
impl WithSimd for SumSq<'_> {
    type Output = f32;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> f32 {
        sumsq(s, self.0)
    }
}

/// Cosine similarity, finished inside the vectorized function: returning
/// the three sums through memory and reloading them as one wider value
/// defeats store forwarding and costs more than the whole d=16 kernel.
pub(crate) struct Cosine<'a>(pub &'a [f32], pub &'a [f32]);
impl WithSimd for Cosine<'_> {
    type Output = f32;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> f32 {
        crate::finish::cos_from(cos_parts(s, self.0, self.1), self.0, self.1)
    }
}

pub(crate) struct Scale<'a>(pub &'a mut [f32], pub f32);
impl WithSimd for Scale<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        scale(s, self.0, self.1)
    }
}
