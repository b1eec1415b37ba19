//! f16 kernel bodies, written once over [`Token`]: every register of halves is
//! widened to f32 (`Token::widen`) before it is multiplied, so the sums carry
//! f32 precision. Four accumulators, and a zero-padded tail.
use core::iter::zip;

use pulp::Simd;

use crate::arch::{padded, Token, WithToken};
use crate::f16;
use crate::f32s::{fma, sum4};

/// Widens a tail shorter than one register, padded with zeros.
#[inline(always)]
fn widen_tail<T: Token>(t: T, src: &[f16]) -> <T::S as Simd>::f32s {
    t.widen_tail(src)
}

/// Applies `$body!(i, x, y)` to four registers per step, then the remaining
/// whole registers, then the padded tail (always into accumulator 3).
macro_rules! walk2 {
    ($t:expr, $a:expr, $b:expr, |$k:ident, $x:ident, $y:ident| $body:block) => {{
        let t = $t;
        let l = <T::S as Simd>::F32_LANES;
        let (a, b) = ($a, $b);
        // One index and one bound for both slices (a zip of two chunk
        // iterators tests two ends per step).
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut i = 0;
        while i + 4 * l <= n {
            let (xa, xb) = (&a[i..i + 4 * l], &b[i..i + 4 * l]);
            for j in 0..4 {
                let $k = j;
                let $x = t.widen(&xa[j * l..]);
                let $y = t.widen(&xb[j * l..]);
                $body
            }
            i += 4 * l;
        }
        let (ra, rb) = (&a[i..], &b[i..]);
        let mut ca = ra.chunks_exact(l);
        let mut cb = rb.chunks_exact(l);
        for (j, (xa, xb)) in zip(&mut ca, &mut cb).enumerate() {
            let $k = j;
            let $x = t.widen(xa);
            let $y = t.widen(xb);
            $body
        }
        let (ra, rb) = (ca.remainder(), cb.remainder());
        if !ra.is_empty() {
            let $k = 3;
            let $x = widen_tail(t, ra);
            let $y = widen_tail(t, rb);
            $body
        }
    }};
}

#[inline(always)]
pub(crate) fn dot<T: Token>(t: T, a: &[f16], b: &[f16]) -> f32 {
    let s = t.simd();
    let mut acc = [s.splat_f32s(0.0); 4];
    walk2!(t, a, b, |k, x, y| {
        acc[k] = fma(s, x, y, acc[k]);
    });
    sum4(s, acc[0], acc[1], acc[2], acc[3])
}

#[inline(always)]
pub(crate) fn l2sq<T: Token>(t: T, a: &[f16], b: &[f16]) -> f32 {
    let s = t.simd();
    let mut acc = [s.splat_f32s(0.0); 4];
    walk2!(t, a, b, |k, x, y| {
        let d = s.sub_f32s(x, y);
        acc[k] = fma(s, d, d, acc[k]);
    });
    sum4(s, acc[0], acc[1], acc[2], acc[3])
}

#[inline(always)]
pub(crate) fn cos_parts<T: Token>(t: T, a: &[f16], b: &[f16]) -> (f32, f32, f32) {
    let (ab, aa, bb) = cos_regs(t, a, b);
    t.reduce3(ab, aa, bb)
}

/// The registers whose lane sums are (Σab, Σa², Σb²).
#[inline(always)]
fn cos_regs<T: Token>(t: T, a: &[f16], b: &[f16]) -> F32s3<T> {
    let s = t.simd();
    let z = s.splat_f32s(0.0);
    // Four accumulators per sum: twelve chains cover the FMA latency at two
    // 256-bit FMAs per cycle.
    let (mut ab, mut aa, mut bb) = ([z; 4], [z; 4], [z; 4]);
    walk2!(t, a, b, |k, x, y| {
        ab[k] = fma(s, x, y, ab[k]);
        aa[k] = fma(s, x, x, aa[k]);
        bb[k] = fma(s, y, y, bb[k]);
    });
    let add4 =
        |v: [<T::S as Simd>::f32s; 4]| s.add_f32s(s.add_f32s(v[0], v[1]), s.add_f32s(v[2], v[3]));
    (add4(ab), add4(aa), add4(bb))
}

type F32s3<T> = (
    <<T as Token>::S as Simd>::f32s,
    <<T as Token>::S as Simd>::f32s,
    <<T as Token>::S as Simd>::f32s,
);

#[inline(always)]
pub(crate) fn sumsq<T: Token>(t: T, a: &[f16]) -> f32 {
    let s = t.simd();
    let l = <T::S as Simd>::F32_LANES;
    let mut acc = [s.splat_f32s(0.0); 4];
    let mut c = a.chunks_exact(4 * l);
    for x in &mut c {
        for (j, acc) in acc.iter_mut().enumerate() {
            let v = t.widen(&x[j * l..]);
            *acc = fma(s, v, v, *acc);
        }
    }
    let mut c2 = c.remainder().chunks_exact(l);
    for (j, x) in (&mut c2).enumerate() {
        let v = t.widen(x);
        acc[j] = fma(s, v, v, acc[j]);
    }
    if !c2.remainder().is_empty() {
        let v = widen_tail(t, c2.remainder());
        acc[3] = fma(s, v, v, acc[3]);
    }
    sum4(s, acc[0], acc[1], acc[2], acc[3])
}

/// Multiplies every element by `k` in f32 and rounds back to f16.
#[inline(always)]
pub(crate) fn scale<T: Token>(t: T, a: &mut [f16], k: f32) {
    let s = t.simd();
    let l = <T::S as Simd>::F32_LANES;
    let kv = s.splat_f32s(k);
    let mut c = a.chunks_exact_mut(l);
    for x in &mut c {
        let v = s.mul_f32s(t.widen(x), kv);
        t.narrow(v, x);
    }
    let rest = c.into_remainder();
    if !rest.is_empty() {
        let mut buf: [f16; 16] = padded(rest);
        let v = s.mul_f32s(t.widen(&buf), kv);
        t.narrow(v, &mut buf);
        let n = rest.len();
        rest.copy_from_slice(&buf[..n]);
    }
}

/// Converts `src` to f32 into `dst` (equal lengths).
#[inline(always)]
pub(crate) fn to_f32<T: Token>(t: T, src: &[f16], dst: &mut [f32]) {
    let s = t.simd();
    let l = <T::S as Simd>::F32_LANES;
    let (dv, dt) = <T::S as Simd>::as_mut_simd_f32s(dst);
    let mut c = src.chunks_exact(l);
    for (d, x) in zip(dv, &mut c) {
        *d = t.widen(x);
    }
    if !dt.is_empty() {
        s.partial_store_f32s(dt, widen_tail(t, c.remainder()));
    }
}

/// Converts `src` to f16 (round to nearest even) into `dst` (equal lengths).
#[inline(always)]
pub(crate) fn from_f32<T: Token>(t: T, src: &[f32], dst: &mut [f16]) {
    let s = t.simd();
    let l = <T::S as Simd>::F32_LANES;
    let (sv, st) = <T::S as Simd>::as_simd_f32s(src);
    let mut c = dst.chunks_exact_mut(l);
    for (x, d) in zip(sv, &mut c) {
        t.narrow(*x, d);
    }
    let rest = c.into_remainder();
    if !rest.is_empty() {
        let mut buf = [f16::ZERO; 16];
        t.narrow(s.partial_load_f32s(st), &mut buf);
        let n = rest.len();
        rest.copy_from_slice(&buf[..n]);
    }
}

// ---- WithToken adapters -----------------------------------------------------

pub(crate) struct Dot<'a>(pub &'a [f16], pub &'a [f16]);
impl WithToken for Dot<'_> {
    type Output = f32;
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) -> f32 {
        dot(t, self.0, self.1)
    }
}

pub(crate) struct L2sq<'a>(pub &'a [f16], pub &'a [f16]);
impl WithToken for L2sq<'_> {
    type Output = f32;
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) -> f32 {
        l2sq(t, self.0, self.1)
    }
}

/// Cosine similarity, finished inside the vectorized function.
pub(crate) struct Cosine<'a>(pub &'a [f16], pub &'a [f16]);
impl WithToken for Cosine<'_> {
    type Output = f32;
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) -> f32 {
        let (ab, aa, bb) = cos_regs(t, self.0, self.1);
        t.reduce3_cos(ab, aa, bb)
    }
}

pub(crate) struct SumSq<'a>(pub &'a [f16]);
impl WithToken for SumSq<'_> {
    type Output = f32;
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) -> f32 {
        sumsq(t, self.0)
    }
}

pub(crate) struct Scale<'a>(pub &'a mut [f16], pub f32);
impl WithToken for Scale<'_> {
    type Output = ();
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) {
        scale(t, self.0, self.1)
    }
}

pub(crate) struct ToF32<'a>(pub &'a [f16], pub &'a mut [f32]);
impl WithToken for ToF32<'_> {
    type Output = ();
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) {
        to_f32(t, self.0, self.1)
    }
}

pub(crate) struct FromF32<'a>(pub &'a [f32], pub &'a mut [f16]);
impl WithToken for FromF32<'_> {
    type Output = ();
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) {
        from_f32(t, self.0, self.1)
    }
}
