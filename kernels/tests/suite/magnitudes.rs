//! Extreme magnitudes. Tolerances per type:
//! - f32 norm, L2: relative 1e-5; cosine: absolute 2e-6 — for every finite
//!   input, even where the squares overflow or underflow f32 (the kernels
//!   fall back to f64 there).
//! - f32 dot and squared L2 are plain f32 sums: within `f32_sum_tol` while
//!   the terms fit in f32; not finite once a single term overflows.
//! - f16: the same tolerances as f32 across the f16 range (subnormal to
//!   ~4·10⁴); f16 values cannot overflow or underflow the f32 sums.
use kernels::{f16, Kernels, Metric};

use crate::common::*;

const SCALES_F32: [f32; 9] = [1e30, 1e20, 1e15, 1e10, 1.0, 1e-10, 1e-15, 1e-20, 1e-30];
const LENS: [usize; 7] = [1, 7, 16, 33, 100, 768, 4096];

fn scaled(rng: &mut Rng, n: usize, s: f32) -> Vec<f32> {
    rng.vec_f32(n).into_iter().map(|x| x * s).collect()
}

fn check_sum(
    what: &str,
    k: &Kernels,
    n: usize,
    got: f32,
    want: f64,
    terms: impl Iterator<Item = f64>,
) {
    let terms: Vec<f64> = terms.collect();
    let max_term = terms.iter().fold(0f64, |m, t| m.max(t.abs()));
    let abs: f64 = terms.iter().map(|t| t.abs()).sum();
    if max_term > f32::MAX as f64 {
        assert!(
            !got.is_finite(),
            "{what} at {} n={n}: a term overflows f32, got {got:e}",
            k.isa().name()
        );
    } else if abs < f32::MAX as f64 / 2.0 {
        assert_close(what, k, n, got, want, f32_sum_tol(abs, n));
    }
}

#[test]
fn f32_extreme_magnitudes() {
    for k in levels() {
        let mut rng = Rng::new(10);
        for &s in &SCALES_F32 {
            for &n in &LENS {
                let a = scaled(&mut rng, n, s);
                let b = scaled(&mut rng, n, s);
                let (a64, b64) = (f64s(&a), f64s(&b));
                let what = format!("scale {s:e}");
                let na = norm64(&a64);
                assert_close(
                    &format!("norm_f32 {what}"),
                    &k,
                    n,
                    k.norm_f32(&a),
                    na,
                    1e-5 * na,
                );
                let l2 = l2sq64(&a64, &b64).sqrt();
                assert_close(
                    &format!("l2_f32 {what}"),
                    &k,
                    n,
                    k.l2_f32(&a, &b).unwrap(),
                    l2,
                    1e-5 * l2,
                );
                let cos = cos64(&a64, &b64);
                assert_close(
                    &format!("cosine_f32 {what}"),
                    &k,
                    n,
                    k.cosine_f32(&a, &b).unwrap(),
                    cos,
                    2e-6,
                );
                check_sum(
                    &format!("dot_f32 {what}"),
                    &k,
                    n,
                    k.dot_f32(&a, &b).unwrap(),
                    dot64(&a64, &b64),
                    a64.iter().zip(&b64).map(|(x, y)| x * y),
                );
                check_sum(
                    &format!("l2sq_f32 {what}"),
                    &k,
                    n,
                    k.l2sq_f32(&a, &b).unwrap(),
                    l2sq64(&a64, &b64),
                    a64.iter().zip(&b64).map(|(x, y)| (x - y) * (x - y)),
                );
                // One-to-many, with and without precomputed norms.
                let block: Vec<f32> = a.iter().chain(&b).copied().collect();
                let norms = [k.norm_f32(&a), k.norm_f32(&b)];
                for norms in [None, Some(&norms[..])] {
                    let mut out = [0f32; 2];
                    k.distances_f32(Metric::Cosine, &a, &block, norms, &mut out)
                        .unwrap();
                    assert_close(
                        &format!("distances cosine {what}"),
                        &k,
                        n,
                        out[0],
                        0.0,
                        2e-6,
                    );
                    assert_close(
                        &format!("distances cosine {what}"),
                        &k,
                        n,
                        out[1],
                        1.0 - cos,
                        2e-6,
                    );
                }
                let mut out = [0f32; 2];
                k.distances_f32(Metric::L2, &a, &block, None, &mut out)
                    .unwrap();
                assert_close(
                    &format!("distances l2 {what}"),
                    &k,
                    n,
                    out[1],
                    l2,
                    1e-5 * l2,
                );
                // Mixed magnitudes: cosine is scale-invariant.
                let big: Vec<f32> = a.iter().map(|x| x / s * 1e30).collect();
                let tiny: Vec<f32> = b.iter().map(|x| x / s * 1e-30).collect();
                let want = cos64(&f64s(&big), &f64s(&tiny));
                assert_close(
                    &format!("cosine_f32 1e30 vs 1e-30 ({what})"),
                    &k,
                    n,
                    k.cosine_f32(&big, &tiny).unwrap(),
                    want,
                    2e-6,
                );
            }
        }
    }
}

#[test]
fn f16_extreme_magnitudes() {
    for k in levels() {
        let mut rng = Rng::new(11);
        for &s in &[1e-6f32, 1e-3, 1.0, 1e2, 1e4] {
            for &n in &LENS {
                let mk = |rng: &mut Rng| -> Vec<f16> {
                    (0..n).map(|_| f16::from_f32(rng.f32() * 4.0 * s)).collect()
                };
                let (a, b) = (mk(&mut rng), mk(&mut rng));
                let (a64, b64) = (f64s_h(&a), f64s_h(&b));
                let what = format!("f16 scale {s:e}");
                let abs = absdot64(&a64, &b64);
                assert_close(
                    &format!("dot {what}"),
                    &k,
                    n,
                    k.dot_f16(&a, &b).unwrap(),
                    dot64(&a64, &b64),
                    f32_sum_tol(abs, n),
                );
                let l2 = l2sq64(&a64, &b64);
                assert_close(
                    &format!("l2sq {what}"),
                    &k,
                    n,
                    k.l2sq_f16(&a, &b).unwrap(),
                    l2,
                    f32_sum_tol(l2, n),
                );
                let na = norm64(&a64);
                assert_close(
                    &format!("norm {what}"),
                    &k,
                    n,
                    k.norm_f16(&a),
                    na,
                    1e-5 * na,
                );
                let cos = cos64(&a64, &b64);
                assert_close(
                    &format!("cosine {what}"),
                    &k,
                    n,
                    k.cosine_f16(&a, &b).unwrap(),
                    cos,
                    2e-6,
                );
            }
        }
    }
}
