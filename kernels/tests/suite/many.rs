//! One-to-many distances against per-row references, for every metric, with
//! and without precomputed norms, row counts that are and are not multiples
//! of four, and every level.
use kernels::{f16, Error, Kernels, Metric};

use crate::common::*;

const DIMS: [usize; 9] = [1, 3, 15, 16, 17, 64, 100, 384, 768];
const ROWS: [usize; 7] = [0, 1, 3, 4, 5, 9, 33];
const METRICS: [Metric; 3] = [Metric::Cosine, Metric::L2, Metric::Dot];

/// The reference distance of the `Metric` from f64 data.
fn reference(metric: Metric, q: &[f64], r: &[f64]) -> f64 {
    match metric {
        Metric::Cosine => 1.0 - cos64(q, r),
        Metric::L2 => l2sq64(q, r).sqrt(),
        Metric::Dot => -dot64(q, r),
    }
}

fn tolerance(metric: Metric, q: &[f64], r: &[f64], rel: f64) -> f64 {
    match metric {
        Metric::Cosine => 2e-6,
        Metric::L2 => rel * l2sq64(q, r).sqrt() + 1e-30,
        Metric::Dot => f32_sum_tol(absdot64(q, r), q.len()) + rel * 0.0,
    }
}

#[test]
fn f32_block() {
    for k in levels() {
        let mut rng = Rng::new(20);
        for &d in &DIMS {
            for &n in &ROWS {
                let q = rng.vec_f32(d);
                let mut block = rng.vec_f32(n * d);
                if n > 2 {
                    // A row equal to the query and a zero row.
                    block[..d].copy_from_slice(&q);
                    block[d..2 * d].fill(0.0);
                }
                let norms: Vec<f32> = block.chunks(d).map(|r| norm64(&f64s(r)) as f32).collect();
                let q64 = f64s(&q);
                for metric in METRICS {
                    for norms in [None, Some(&norms[..])] {
                        let mut out = vec![f32::NAN; n];
                        k.distances_f32(metric, &q, &block, norms, &mut out)
                            .unwrap();
                        let (off, o) = offset_by_one(&block);
                        let mut out2 = vec![f32::NAN; n];
                        k.distances_f32(metric, &q, &off[o..], norms, &mut out2)
                            .unwrap();
                        for (i, r) in block.chunks(d).enumerate() {
                            let r64 = f64s(r);
                            let want = reference(metric, &q64, &r64);
                            let tol = tolerance(metric, &q64, &r64, 1e-5);
                            let what = format!(
                                "distances_f32 {metric:?} d={d} row {i}/{n} norms={}",
                                norms.is_some()
                            );
                            assert_close(&what, &k, d, out[i], want, tol);
                            assert_close(&(what + " misaligned"), &k, d, out2[i], want, tol);
                            if metric == Metric::Cosine && i == 1 && n > 2 {
                                assert_eq!(out[i], 1.0, "zero row has cosine distance 1");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn f16_block() {
    for k in levels() {
        let mut rng = Rng::new(21);
        for &d in &DIMS {
            for &n in &ROWS {
                let q = rng.vec_f16(d);
                let block = rng.vec_f16(n * d);
                let norms: Vec<f32> = block.chunks(d).map(|r| norm64(&f64s_h(r)) as f32).collect();
                let q64 = f64s_h(&q);
                for metric in METRICS {
                    for norms in [None, Some(&norms[..])] {
                        let mut out = vec![f32::NAN; n];
                        k.distances_f16(metric, &q, &block, norms, &mut out)
                            .unwrap();
                        for (i, r) in block.chunks(d).enumerate() {
                            let r64 = f64s_h(r);
                            let what = format!("distances_f16 {metric:?} d={d} row {i}/{n}");
                            assert_close(
                                &what,
                                &k,
                                d,
                                out[i],
                                reference(metric, &q64, &r64),
                                tolerance(metric, &q64, &r64, 1e-5),
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn i8_block() {
    for k in levels() {
        let mut rng = Rng::new(22);
        for &d in &DIMS {
            for &n in &ROWS {
                let q = rng.vec_i8(d);
                let block = rng.vec_i8(n * d);
                let norms: Vec<f32> = block.chunks(d).map(|r| k.norm_i8(r)).collect();
                let q64 = f64s_i(&q);
                for metric in METRICS {
                    for norms in [None, Some(&norms[..])] {
                        let mut out = vec![f32::NAN; n];
                        k.distances_i8(metric, &q, &block, norms, &mut out).unwrap();
                        for (i, r) in block.chunks(d).enumerate() {
                            let r64 = f64s_i(r);
                            let want = reference(metric, &q64, &r64);
                            // Exact integer sums: only the final rounding to f32 (and the
                            // f32 norms, when given) differ.
                            let tol = match metric {
                                Metric::Cosine => 1e-6,
                                _ => 1e-7 * want.abs(),
                            };
                            let what = format!("distances_i8 {metric:?} d={d} row {i}/{n}");
                            assert_close(&what, &k, d, out[i], want, tol);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn shapes_are_checked() {
    for k in levels() {
        let q = [1.0f32; 4];
        let block = [1.0f32; 12];
        let mut out = [0f32; 3];
        assert!(k
            .distances_f32(Metric::L2, &q, &block, None, &mut out)
            .is_ok());
        let mut out4 = [0f32; 4];
        assert_eq!(
            k.distances_f32(Metric::L2, &q, &block, None, &mut out4),
            Err(Error::LengthMismatch {
                expected: 16,
                found: 12
            })
        );
        assert_eq!(
            k.distances_f32(Metric::Cosine, &q, &block, Some(&[1.0, 1.0]), &mut out),
            Err(Error::LengthMismatch {
                expected: 3,
                found: 2
            })
        );
        let qh = [f16::ONE; 4];
        assert!(k
            .distances_f16(Metric::Dot, &qh, &[f16::ONE; 11], None, &mut out)
            .is_err());
        assert!(k
            .distances_i8(Metric::Dot, &[1i8; 4], &[1i8; 13], None, &mut out)
            .is_err());
        assert_eq!(
            k.distances_f32_bytes(Metric::Dot, &q, &[0u8; 47], None, &mut out),
            Err(Error::LengthMismatch {
                expected: 48,
                found: 47
            })
        );
        assert!(k
            .distances_f16_bytes(Metric::Dot, &qh, &[0u8; 23], None, &mut out)
            .is_err());
        // Zero-length query: every row is an empty vector.
        let mut out = [f32::NAN; 3];
        k.distances_f32(Metric::Cosine, &[], &[], None, &mut out)
            .unwrap();
        assert_eq!(out, [1.0; 3]);
        k.distances_i8(Metric::L2, &[], &[], None, &mut out)
            .unwrap();
        assert_eq!(out, [0.0; 3]);
        k.distances_f16(Metric::Dot, &[], &[], None, &mut out)
            .unwrap();
        assert_eq!(out.map(|x| x == 0.0), [true; 3]);
        // No rows.
        k.distances_f32(Metric::Dot, &q, &[], None, &mut [])
            .unwrap();
    }
}

/// Kernels::detect() and the free functions agree with a forced level.
#[test]
fn free_functions_match_handle() {
    let k = Kernels::detect();
    let mut rng = Rng::new(23);
    let q = rng.vec_f32(100);
    let block = rng.vec_f32(700);
    let mut a = [0f32; 7];
    let mut b = [0f32; 7];
    k.distances_f32(Metric::Cosine, &q, &block, None, &mut a)
        .unwrap();
    kernels::distances_f32(Metric::Cosine, &q, &block, None, &mut b).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        k.dot_f32(&q, &block[..100]),
        kernels::dot_f32(&q, &block[..100])
    );
}
