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

/// Dot products of `q` with four rows at once: the query chunk is loaded once
/// per four rows, and four row streams run in parallel.
#[inline(always)]
pub(crate) fn dot4<S: Simd>(s: S, q: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    let (qv, qt) = S::as_simd_f32s(q);
    let (r0, r0t) = S::as_simd_f32s(r[0]);
    let (r1, r1t) = S::as_simd_f32s(r[1]);
    let (r2, r2t) = S::as_simd_f32s(r[2]);
    let (r3, r3t) = S::as_simd_f32s(r[3]);
    let z = s.splat_f32s(0.0);
    let mut acc = [z; 8];
    let (q2, q1) = pulp::as_arrays::<2, _>(qv);
    let n2 = q2.len() * 2;
    let (r0, r1, r2, r3) = (
        &r0[..qv.len()],
        &r1[..qv.len()],
        &r2[..qv.len()],
        &r3[..qv.len()],
    );
    for (i, [x0, x1]) in q2.iter().enumerate() {
        let j = 2 * i;
        acc[0] = fma(s, *x0, r0[j], acc[0]);
        acc[1] = fma(s, *x0, r1[j], acc[1]);
        acc[2] = fma(s, *x0, r2[j], acc[2]);
        acc[3] = fma(s, *x0, r3[j], acc[3]);
        acc[4] = fma(s, *x1, r0[j + 1], acc[4]);
        acc[5] = fma(s, *x1, r1[j + 1], acc[5]);
        acc[6] = fma(s, *x1, r2[j + 1], acc[6]);
        acc[7] = fma(s, *x1, r3[j + 1], acc[7]);
    }
    if let Some(x) = q1.first() {
        acc[0] = fma(s, *x, r0[n2], acc[0]);
        acc[1] = fma(s, *x, r1[n2], acc[1]);
        acc[2] = fma(s, *x, r2[n2], acc[2]);
        acc[3] = fma(s, *x, r3[n2], acc[3]);
    }
    if !qt.is_empty() {
        let x = s.partial_load_f32s(qt);
        acc[4] = fma(s, x, s.partial_load_f32s(r0t), acc[4]);
        acc[5] = fma(s, x, s.partial_load_f32s(r1t), acc[5]);
        acc[6] = fma(s, x, s.partial_load_f32s(r2t), acc[6]);
        acc[7] = fma(s, x, s.partial_load_f32s(r3t), acc[7]);
    }
    [
        s.reduce_sum_f32s(s.add_f32s(acc[0], acc[4])),
        s.reduce_sum_f32s(s.add_f32s(acc[1], acc[5])),
        s.reduce_sum_f32s(s.add_f32s(acc[2], acc[6])),
        s.reduce_sum_f32s(s.add_f32s(acc[3], acc[7])),
    ]
}

/// (Σ q·r, Σ r²) for four rows at once.
#[inline(always)]
pub(crate) fn dot_sq4<S: Simd>(s: S, q: &[f32], r: [&[f32]; 4]) -> ([f32; 4], [f32; 4]) {
    let (qv, qt) = S::as_simd_f32s(q);
    let (r0, r0t) = S::as_simd_f32s(r[0]);
    let (r1, r1t) = S::as_simd_f32s(r[1]);
    let (r2, r2t) = S::as_simd_f32s(r[2]);
    let (r3, r3t) = S::as_simd_f32s(r[3]);
    let z = s.splat_f32s(0.0);
    let mut d = [z; 4];
    let mut n = [z; 4];
    let (r0, r1, r2, r3) = (
        &r0[..qv.len()],
        &r1[..qv.len()],
        &r2[..qv.len()],
        &r3[..qv.len()],
    );
    for (j, x) in qv.iter().enumerate() {
        let (y0, y1, y2, y3) = (r0[j], r1[j], r2[j], r3[j]);
        d[0] = fma(s, *x, y0, d[0]);
        d[1] = fma(s, *x, y1, d[1]);
        d[2] = fma(s, *x, y2, d[2]);
        d[3] = fma(s, *x, y3, d[3]);
        n[0] = fma(s, y0, y0, n[0]);
        n[1] = fma(s, y1, y1, n[1]);
        n[2] = fma(s, y2, y2, n[2]);
        n[3] = fma(s, y3, y3, n[3]);
    }
    if !qt.is_empty() {
        let x = s.partial_load_f32s(qt);
        for (k, t) in [r0t, r1t, r2t, r3t].into_iter().enumerate() {
            let y = s.partial_load_f32s(t);
            d[k] = fma(s, x, y, d[k]);
            n[k] = fma(s, y, y, n[k]);
        }
    }
    (
        [0, 1, 2, 3].map(|k| s.reduce_sum_f32s(d[k])),
        [0, 1, 2, 3].map(|k| s.reduce_sum_f32s(n[k])),
    )
}

/// Σ (q-r)² for four rows at once.
#[inline(always)]
pub(crate) fn l2sq4<S: Simd>(s: S, q: &[f32], r: [&[f32]; 4]) -> [f32; 4] {
    let (qv, qt) = S::as_simd_f32s(q);
    let (r0, r0t) = S::as_simd_f32s(r[0]);
    let (r1, r1t) = S::as_simd_f32s(r[1]);
    let (r2, r2t) = S::as_simd_f32s(r[2]);
    let (r3, r3t) = S::as_simd_f32s(r[3]);
    let z = s.splat_f32s(0.0);
    let mut acc = [z; 4];
    let (r0, r1, r2, r3) = (
        &r0[..qv.len()],
        &r1[..qv.len()],
        &r2[..qv.len()],
        &r3[..qv.len()],
    );
    for (j, x) in qv.iter().enumerate() {
        let e0 = s.sub_f32s(*x, r0[j]);
        let e1 = s.sub_f32s(*x, r1[j]);
        let e2 = s.sub_f32s(*x, r2[j]);
        let e3 = s.sub_f32s(*x, r3[j]);
        acc[0] = fma(s, e0, e0, acc[0]);
        acc[1] = fma(s, e1, e1, acc[1]);
        acc[2] = fma(s, e2, e2, acc[2]);
        acc[3] = fma(s, e3, e3, acc[3]);
    }
    if !qt.is_empty() {
        let x = s.partial_load_f32s(qt);
        for (k, t) in [r0t, r1t, r2t, r3t].into_iter().enumerate() {
            let e = s.sub_f32s(x, s.partial_load_f32s(t));
            acc[k] = fma(s, e, e, acc[k]);
        }
    }
    [0, 1, 2, 3].map(|k| s.reduce_sum_f32s(acc[k]))
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
