//! Turning raw sums into the documented results, including the edge cases:
//! zero-norm cosine, NaN propagation, and the f64 fallback that keeps f32
//! norms, L2 and cosine accurate when squares overflow or underflow f32.

/// 2⁻¹⁰⁰. A sum of squares at least this large (and finite) was computed
/// without losing precision to f32 underflow: any square small enough to be
/// subnormal contributes less than 2⁻²⁶ of it.
pub(crate) const TINY: f32 = 7.888_609e-31;

/// Whether an f32 sum of squares can be trusted as is.
#[inline(always)]
pub(crate) fn safe(x: f32) -> bool {
    (TINY..f32::INFINITY).contains(&x)
}

/// Cosine similarity from Σab, Σa², Σb²: NaN if any is NaN, 0 if either
/// vector has zero norm, otherwise clamped to [-1, 1]. One square root of the
/// product (exact range in f64 for any f32-derived sums) and one division.
#[inline(always)]
pub(crate) fn cos_sim(ab: f64, aa: f64, bb: f64) -> f32 {
    if ab.is_nan() || aa.is_nan() || bb.is_nan() {
        return f32::NAN;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    (ab / (aa * bb).sqrt()).clamp(-1.0, 1.0) as f32
}

/// [`cos_sim`] for f32 sums, in f32 when Σa²·Σb² is a normal f32 (the
/// common case: one `sqrtss` and one `divss`, a short tail after the loop),
/// otherwise in f64.
#[inline(always)]
pub(crate) fn cos_sim_f32(ab: f32, aa: f32, bb: f32) -> f32 {
    let p = aa * bb;
    if (f32::MIN_POSITIVE..f32::INFINITY).contains(&p) {
        // `clamp` keeps a NaN quotient NaN.
        (ab / p.sqrt()).clamp(-1.0, 1.0)
    } else {
        cos_sim(ab as f64, aa as f64, bb as f64)
    }
}

/// Cosine similarity from Σab and the two norms.
#[inline(always)]
pub(crate) fn cos_sim_norms(ab: f64, na: f64, nb: f64) -> f32 {
    if ab.is_nan() || na.is_nan() || nb.is_nan() {
        return f32::NAN;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (ab / (na * nb)).clamp(-1.0, 1.0) as f32
}

/// Cosine distance `1 - similarity`.
#[inline(always)]
pub(crate) fn cos_dist(sim: f32) -> f32 {
    1.0 - sim
}

/// (Σab, Σa², Σb²) in f64, the robust fallback.
pub(crate) fn cos_parts_f64(a: &[f32], b: &[f32]) -> (f64, f64, f64) {
    a.iter()
        .zip(b)
        .fold((0.0, 0.0, 0.0), |(ab, aa, bb), (&x, &y)| {
            let (x, y) = (x as f64, y as f64);
            (ab + x * y, aa + x * x, bb + y * y)
        })
}

/// Σa² in f64.
pub(crate) fn sumsq_f64(a: &[f32]) -> f64 {
    a.iter().map(|&x| x as f64 * x as f64).sum()
}

/// Σ(a-b)² in f64.
pub(crate) fn l2sq_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum()
}

/// Σab in f64.
pub(crate) fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Euclidean norm of f32 data from its f32 sum of squares.
#[inline(always)]
pub(crate) fn norm_from(ss: f32, a: &[f32]) -> f32 {
    if safe(ss) {
        ss.sqrt()
    } else {
        sumsq_f64(a).sqrt() as f32
    }
}

/// L2 distance of f32 data from its f32 squared distance.
#[inline(always)]
pub(crate) fn l2_from(ss: f32, a: &[f32], b: &[f32]) -> f32 {
    if safe(ss) {
        ss.sqrt()
    } else {
        l2sq_f64(a, b).sqrt() as f32
    }
}

/// Cosine similarity of f32 data from its f32 parts.
#[inline(always)]
pub(crate) fn cos_from(parts: (f32, f32, f32), a: &[f32], b: &[f32]) -> f32 {
    let (ab, aa, bb) = parts;
    if safe(aa) && safe(bb) {
        cos_sim_f32(ab, aa, bb)
    } else {
        let (ab, aa, bb) = cos_parts_f64(a, b);
        cos_sim(ab, aa, bb)
    }
}

/// Cosine similarity of f32 data from an f32 dot product and known norms.
#[inline(always)]
pub(crate) fn cos_from_norms(ab: f32, qn: f32, rn: f32, q: &[f32], r: &[f32]) -> f32 {
    let den = qn as f64 * rn as f64;
    if (ab.is_finite() && den >= TINY as f64) || den == 0.0 {
        cos_sim_norms(ab as f64, qn as f64, rn as f64)
    } else {
        cos_sim_norms(dot_f64(q, r), qn as f64, rn as f64)
    }
}
