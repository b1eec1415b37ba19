//! int8 drivers: the per-level products (`Token::dot_i8`, ...) are exact in
//! wrapping i32 lanes for up to `I8_CHUNK` elements; longer vectors are cut
//! into chunks whose exact results are added in i64.
use crate::arch::{Token, WithToken, I8_CHUNK};

#[inline(always)]
pub(crate) fn dot<T: Token>(t: T, a: &[i8], b: &[i8]) -> i64 {
    if a.len() <= I8_CHUNK {
        return t.dot_i8(a, b) as i64;
    }
    a.chunks(I8_CHUNK)
        .zip(b.chunks(I8_CHUNK))
        .map(|(x, y)| t.dot_i8(x, y) as i64)
        .sum()
}

#[inline(always)]
pub(crate) fn l2sq<T: Token>(t: T, a: &[i8], b: &[i8]) -> i64 {
    if a.len() <= I8_CHUNK {
        // Non-negative and below 2³¹ by the chunk bound: reinterpret as u32
        // so a (theoretical) full-range value is not read as negative.
        return t.l2sq_i8(a, b) as u32 as i64;
    }
    a.chunks(I8_CHUNK)
        .zip(b.chunks(I8_CHUNK))
        .map(|(x, y)| t.l2sq_i8(x, y) as u32 as i64)
        .sum()
}

#[inline(always)]
pub(crate) fn cos_parts<T: Token>(t: T, a: &[i8], b: &[i8]) -> (i64, i64, i64) {
    let widen = |(ab, aa, bb): (i32, i32, i32)| (ab as i64, aa as u32 as i64, bb as u32 as i64);
    if a.len() <= I8_CHUNK {
        return widen(t.cos_i8(a, b));
    }
    a.chunks(I8_CHUNK)
        .zip(b.chunks(I8_CHUNK))
        .map(|(x, y)| widen(t.cos_i8(x, y)))
        .fold((0, 0, 0), |s, v| (s.0 + v.0, s.1 + v.1, s.2 + v.2))
}

/// Σ a² (exact).
#[inline(always)]
pub(crate) fn sumsq<T: Token>(t: T, a: &[i8]) -> i64 {
    cos_parts(t, a, a).1
}

pub(crate) struct Dot<'a>(pub &'a [i8], pub &'a [i8]);
impl WithToken for Dot<'_> {
    type Output = i64;
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) -> i64 {
        dot(t, self.0, self.1)
    }
}

pub(crate) struct L2sq<'a>(pub &'a [i8], pub &'a [i8]);
impl WithToken for L2sq<'_> {
    type Output = i64;
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) -> i64 {
        l2sq(t, self.0, self.1)
    }
}

/// Cosine similarity from the exact sums, finished inside the vectorized
/// function.
pub(crate) struct Cosine<'a>(pub &'a [i8], pub &'a [i8]);
impl WithToken for Cosine<'_> {
    type Output = f32;
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) -> f32 {
        t.cos_sim_i8(self.0, self.1)
    }
}

/// Σ a² (exact).
pub(crate) struct SumSq<'a>(pub &'a [i8]);
impl WithToken for SumSq<'_> {
    type Output = i64;
    #[inline(always)]
    fn with_token<T: Token>(self, t: T) -> i64 {
        sumsq(t, self.0)
    }
}
