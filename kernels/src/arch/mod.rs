//! The operations pulp's generic `Simd` trait cannot express, hand-written per
//! instruction set: f16 ↔ f32 conversion of a full register and the int8
//! products. Everything else is written once in the element-type modules.
//!
//! Why widening: f16 has an 11-bit significand and int8 products overflow an
//! 8- or 16-bit lane, so every element is widened before it is accumulated —
//! f16 to f32 (`vcvtph2ps`, `fcvtl`) and int8 products to i32 lanes
//! (`vpdpbusd`, `vpmaddwd` on sign-extended i16, `smull` + `sadalp`) — which
//! keeps f16 sums as accurate as f32 ones and int8 sums exact.
use pulp::Simd;

use crate::f16;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Longest int8 slice whose products every `Token` sums exactly in wrapping
/// i32 lanes: 65025 (the largest squared difference) × 32768 < 2³¹.
pub(crate) const I8_CHUNK: usize = 1 << 15;

/// A proof that a level's features are present, plus the level's widening
/// operations. Implemented by the scalar token and by each SIMD token.
pub(crate) trait Token: Copy {
    /// The pulp token used for the f32 arithmetic at this level.
    type S: Simd;
    fn simd(self) -> Self::S;
    /// Converts the first `S::F32_LANES` halves of `src` to f32.
    /// Panics if `src` is shorter (the generic bodies never pass a shorter one).
    fn widen(self, src: &[f16]) -> <Self::S as Simd>::f32s;
    /// [`Token::widen`] of a tail shorter than one register, zero-padded.
    #[inline(always)]
    fn widen_tail(self, src: &[f16]) -> <Self::S as Simd>::f32s {
        let buf: [f16; 16] = padded(src);
        self.widen(&buf)
    }
    /// The lane sums of three registers. A level may reduce them together.
    #[inline(always)]
    fn reduce3(
        self,
        x: <Self::S as Simd>::f32s,
        y: <Self::S as Simd>::f32s,
        z: <Self::S as Simd>::f32s,
    ) -> (f32, f32, f32) {
        let s = self.simd();
        (
            s.reduce_sum_f32s(x),
            s.reduce_sum_f32s(y),
            s.reduce_sum_f32s(z),
        )
    }
    /// Cosine similarity from f32 sums, as [`crate::finish::cos_sim_f32`]
    /// (to within a few f32 ulps).
    #[inline(always)]
    fn cos_finish_f32(self, ab: f32, aa: f32, bb: f32) -> f32 {
        crate::finish::cos_sim_f32(ab, aa, bb)
    }
    /// [`Token::cos_finish_f32`] of the lane sums of three registers (Σab,
    /// Σa², Σb²). A level may finish without taking the sums out of their
    /// vector register.
    #[inline(always)]
    fn reduce3_cos(
        self,
        x: <Self::S as Simd>::f32s,
        y: <Self::S as Simd>::f32s,
        z: <Self::S as Simd>::f32s,
    ) -> f32 {
        let (ab, aa, bb) = self.reduce3(x, y, z);
        self.cos_finish_f32(ab, aa, bb)
    }
    /// Converts a register to halves (round to nearest, ties to even) into
    /// the first `S::F32_LANES` elements of `dst`.
    fn narrow(self, v: <Self::S as Simd>::f32s, dst: &mut [f16]);
    /// Σ a·b, exact in wrapping i32 for `a.len() <= I8_CHUNK`.
    fn dot_i8(self, a: &[i8], b: &[i8]) -> i32;
    /// Σ (a-b)², exact in wrapping i32 for `a.len() <= I8_CHUNK`.
    fn l2sq_i8(self, a: &[i8], b: &[i8]) -> i32;
    /// (Σ a·b, Σ a², Σ b²), exact in wrapping i32 for `a.len() <= I8_CHUNK`.
    fn cos_i8(self, a: &[i8], b: &[i8]) -> (i32, i32, i32);
    /// Cosine similarity of two equal-length int8 vectors of any length,
    /// from the exact sums (see `finish::cos_sim`). A level may finish short
    /// vectors without leaving its vector registers.
    #[inline(always)]
    fn cos_sim_i8(self, a: &[i8], b: &[i8]) -> f32 {
        let (ab, aa, bb) = crate::i8s::cos_parts(self, a, b);
        crate::finish::cos_sim(ab as f64, aa as f64, bb as f64)
    }
}

/// A body generic over [`Token`], run by `Level::run_token`.
pub(crate) trait WithToken {
    type Output;
    fn with_token<T: Token>(self, t: T) -> Self::Output;
}

/// The scalar level: plain Rust, no target features.
#[derive(Copy, Clone, Debug)]
pub(crate) struct ScalarToken;

impl Token for ScalarToken {
    type S = pulp::Scalar;
    #[inline(always)]
    fn simd(self) -> pulp::Scalar {
        pulp::Scalar::new()
    }
    #[inline(always)]
    fn widen(self, src: &[f16]) -> f32 {
        src[0].to_f32_const()
    }
    #[inline(always)]
    fn narrow(self, v: f32, dst: &mut [f16]) {
        dst[0] = f16::from_f32_const(v);
    }
    #[inline(always)]
    fn dot_i8(self, a: &[i8], b: &[i8]) -> i32 {
        a.iter()
            .zip(b)
            .fold(0i32, |s, (&x, &y)| s.wrapping_add(x as i32 * y as i32))
    }
    #[inline(always)]
    fn l2sq_i8(self, a: &[i8], b: &[i8]) -> i32 {
        a.iter().zip(b).fold(0i32, |s, (&x, &y)| {
            let d = x as i32 - y as i32;
            s.wrapping_add(d * d)
        })
    }
    #[inline(always)]
    fn cos_i8(self, a: &[i8], b: &[i8]) -> (i32, i32, i32) {
        a.iter()
            .zip(b)
            .fold((0i32, 0i32, 0i32), |(ab, aa, bb), (&x, &y)| {
                let (x, y) = (x as i32, y as i32);
                (
                    ab.wrapping_add(x * y),
                    aa.wrapping_add(x * x),
                    bb.wrapping_add(y * y),
                )
            })
    }
}

/// Copies a short tail into a zero-padded buffer of `N` elements, so a tail
/// can be processed with one full-width load.
#[inline(always)]
pub(crate) fn padded<T: Copy + Default, const N: usize>(src: &[T]) -> [T; N] {
    let mut buf = [T::default(); N];
    let n = src.len().min(N);
    buf[..n].copy_from_slice(&src[..n]);
    buf
}
