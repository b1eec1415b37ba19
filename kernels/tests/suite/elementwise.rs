//! One-pair kernels for every level, length 0..=300 and the embedding sizes,
//! aligned and offset by one element, against the f64 references.
use kernels::{f16, Error, Kernels};

use crate::common::*;

fn check_f32(k: &Kernels, a: &[f32], b: &[f32]) {
    let n = a.len();
    let (a64, b64) = (f64s(a), f64s(b));
    let abs = absdot64(&a64, &b64);
    assert_close(
        "dot_f32",
        k,
        n,
        k.dot_f32(a, b).unwrap(),
        dot64(&a64, &b64),
        f32_sum_tol(abs, n),
    );
    let l2 = l2sq64(&a64, &b64);
    assert_close(
        "l2sq_f32",
        k,
        n,
        k.l2sq_f32(a, b).unwrap(),
        l2,
        f32_sum_tol(l2, n),
    );
    assert_close(
        "l2_f32",
        k,
        n,
        k.l2_f32(a, b).unwrap(),
        l2.sqrt(),
        1e-5 * l2.sqrt() + 1e-30,
    );
    let cos = cos64(&a64, &b64);
    assert_close("cosine_f32", k, n, k.cosine_f32(a, b).unwrap(), cos, 2e-6);
    assert_close(
        "cosine_distance_f32",
        k,
        n,
        k.cosine_distance_f32(a, b).unwrap(),
        1.0 - cos,
        2e-6,
    );
    let na = norm64(&a64);
    assert_close("norm_f32", k, n, k.norm_f32(a), na, 1e-5 * na);
    let mut c = a.to_vec();
    assert_close(
        "normalize_f32 result",
        k,
        n,
        k.normalize_f32(&mut c),
        na,
        1e-5 * na,
    );
    for (x, y) in c.iter().zip(a) {
        let want = if na == 0.0 { *y as f64 } else { *y as f64 / na };
        assert_close(
            "normalize_f32 element",
            k,
            n,
            *x,
            want,
            1e-5 * want.abs() + 1e-30,
        );
    }
}

#[test]
fn f32_every_length_level_and_offset() {
    for k in levels() {
        let mut rng = Rng::new(1);
        for n in lengths() {
            let a = rng.vec_f32(n);
            let b = rng.vec_f32(n);
            check_f32(&k, &a, &b);
            let (ab, o) = offset_by_one(&a);
            let (bb, _) = offset_by_one(&b);
            check_f32(&k, &ab[o..], &bb[o..]);
            // One operand aligned, the other not.
            check_f32(&k, &a, &bb[o..]);
        }
    }
}

fn check_f16(k: &Kernels, a: &[f16], b: &[f16]) {
    let n = a.len();
    let (a64, b64) = (f64s_h(a), f64s_h(b));
    let abs = absdot64(&a64, &b64);
    assert_close(
        "dot_f16",
        k,
        n,
        k.dot_f16(a, b).unwrap(),
        dot64(&a64, &b64),
        f32_sum_tol(abs, n),
    );
    let l2 = l2sq64(&a64, &b64);
    assert_close(
        "l2sq_f16",
        k,
        n,
        k.l2sq_f16(a, b).unwrap(),
        l2,
        f32_sum_tol(l2, n),
    );
    assert_close(
        "l2_f16",
        k,
        n,
        k.l2_f16(a, b).unwrap(),
        l2.sqrt(),
        1e-5 * l2.sqrt(),
    );
    let cos = cos64(&a64, &b64);
    assert_close("cosine_f16", k, n, k.cosine_f16(a, b).unwrap(), cos, 2e-6);
    assert_close(
        "cosine_distance_f16",
        k,
        n,
        k.cosine_distance_f16(a, b).unwrap(),
        1.0 - cos,
        2e-6,
    );
    let na = norm64(&a64);
    assert_close("norm_f16", k, n, k.norm_f16(a), na, 1e-5 * na);
    let mut c = a.to_vec();
    assert_close(
        "normalize_f16 result",
        k,
        n,
        k.normalize_f16(&mut c),
        na,
        1e-5 * na,
    );
    for (x, y) in c.iter().zip(a) {
        // Computed in f32, then rounded once to f16 (relative error ≤ 2⁻¹¹, plus the f32 norm's).
        let want = if na == 0.0 {
            y.to_f64()
        } else {
            y.to_f64() / na
        };
        let tol = 2f64.powi(-10) * want.abs() + 1e-7;
        assert_close("normalize_f16 element", k, n, x.to_f32(), want, tol);
    }
}

#[test]
fn f16_every_length_level_and_offset() {
    for k in levels() {
        let mut rng = Rng::new(2);
        for n in lengths() {
            let a = rng.vec_f16(n);
            let b = rng.vec_f16(n);
            check_f16(&k, &a, &b);
            let (ab, o) = offset_by_one(&a);
            let (bb, _) = offset_by_one(&b);
            check_f16(&k, &ab[o..], &bb[o..]);
            check_f16(&k, &ab[o..], &b);
        }
    }
}

fn check_i8(k: &Kernels, a: &[i8], b: &[i8]) {
    let n = a.len();
    let dot: i64 = a.iter().zip(b).map(|(&x, &y)| x as i64 * y as i64).sum();
    let l2: i64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as i64 - y as i64).pow(2))
        .sum();
    let name = k.isa().name();
    assert_eq!(
        k.dot_i8(a, b).unwrap() as i64,
        dot,
        "dot_i8 at {name} n={n}"
    );
    assert_eq!(
        k.l2sq_i8(a, b).unwrap() as i64,
        l2,
        "l2sq_i8 at {name} n={n}"
    );
    // Computed from exact integer sums in f64, so only the final f32 rounding differs.
    assert_close(
        "l2_i8",
        k,
        n,
        k.l2_i8(a, b).unwrap(),
        (l2 as f64).sqrt(),
        1e-6 * (l2 as f64).sqrt(),
    );
    let (a64, b64) = (f64s_i(a), f64s_i(b));
    let cos = cos64(&a64, &b64);
    assert_close("cosine_i8", k, n, k.cosine_i8(a, b).unwrap(), cos, 1e-7);
    assert_close(
        "cosine_distance_i8",
        k,
        n,
        k.cosine_distance_i8(a, b).unwrap(),
        1.0 - cos,
        1e-7,
    );
    let na = norm64(&a64);
    assert_close("norm_i8", k, n, k.norm_i8(a), na, 1e-7 * na);
}

#[test]
fn i8_exact_every_length_level_and_offset() {
    for k in levels() {
        let mut rng = Rng::new(3);
        for n in lengths() {
            let a = rng.vec_i8(n);
            let b = rng.vec_i8(n);
            check_i8(&k, &a, &b);
            let (ab, o) = offset_by_one(&a);
            let (bb, _) = offset_by_one(&b);
            check_i8(&k, &ab[o..], &bb[o..]);
            // The extremes, where sign tricks and 16-bit sums break.
            let lo = vec![-128i8; n];
            let hi = vec![127i8; n];
            check_i8(&k, &lo, &lo);
            check_i8(&k, &lo, &hi);
            check_i8(&k, &hi, &hi);
            check_i8(&k, &lo, &b);
            // Quantised-range data ([-127, 127], as `quantize_i8` makes it)
            // with one planted -128, and alternating extremes: every 64-byte
            // block and the masked tail see both -128 and 127.
            let q: Vec<i8> = rng.vec_i8(n).iter().map(|&x| x.max(-127)).collect();
            check_i8(&k, &q, &b);
            let mut p = q.clone();
            if n > 0 {
                p[rng.below(n as u64) as usize] = -128;
            }
            check_i8(&k, &p, &q);
            check_i8(&k, &q, &p);
            let alt: Vec<i8> = (0..n)
                .map(|i| if i % 3 == 0 { -128 } else { 127 })
                .collect();
            let neg: Vec<i8> = alt
                .iter()
                .map(|&x| if x == 127 { -127 } else { 127 })
                .collect();
            check_i8(&k, &alt, &neg);
            check_i8(&k, &alt, &hi);
            check_i8(&k, &neg, &q);
        }
    }
}

/// Around 32 768 elements, where the int8 kernels switch from one exact i32
/// pass to chunks summed in i64 (AVX-512 cosine: from the in-register finish
/// to the chunked path).
#[test]
fn i8_at_the_chunk_boundary() {
    for k in levels() {
        let mut rng = Rng::new(5);
        for n in [32_767, 32_768, 32_769, 32_768 + 64] {
            let b = rng.vec_i8(n);
            let q: Vec<i8> = rng.vec_i8(n).iter().map(|&x| x.max(-127)).collect();
            check_i8(&k, &q, &b);
            let lo = vec![-128i8; n];
            let hi = vec![127i8; n];
            check_i8(&k, &lo, &hi);
            check_i8(&k, &hi, &hi);
            check_i8(&k, &lo, &b);
        }
    }
}

#[test]
fn i8_long_vectors_stay_exact_or_report_overflow() {
    for k in levels() {
        let name = k.isa().name();
        // 100 000 × (-128)² = 1 638 400 000 fits in i32; the chunked sums must be exact.
        let a = vec![-128i8; 100_000];
        assert_eq!(k.dot_i8(&a, &a).unwrap(), 1_638_400_000, "{name}");
        // 140 000 × 16384 does not fit: an error, not a wrapped value.
        let a = vec![-128i8; 140_000];
        assert_eq!(
            k.dot_i8(&a, &a),
            Err(Error::Overflow {
                value: 140_000 * 16_384
            }),
            "{name}"
        );
        let b = vec![127i8; 140_000];
        assert_eq!(
            k.l2sq_i8(&a, &b),
            Err(Error::Overflow {
                value: 140_000 * 65_025
            }),
            "{name}"
        );
        // The float results use 64-bit sums and never overflow.
        assert_eq!(k.cosine_i8(&a, &b).unwrap(), -1.0, "{name}");
        let l2 = k.l2_i8(&a, &b).unwrap() as f64;
        assert!(
            (l2 - (140_000f64 * 65_025.0).sqrt()).abs() < 1e-6 * l2,
            "{name}"
        );
        let mut rng = Rng::new(4);
        let a = rng.vec_i8(70_001);
        let b = rng.vec_i8(70_001);
        let dot: i64 = a.iter().zip(&b).map(|(&x, &y)| x as i64 * y as i64).sum();
        assert_eq!(k.dot_i8(&a, &b).unwrap() as i64, dot, "{name}");
        let l2: i64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (x as i64 - y as i64).pow(2))
            .sum();
        assert_eq!(
            k.l2sq_i8(&a, &b),
            i32::try_from(l2).map_err(|_| Error::Overflow { value: l2 })
        );
    }
}

/// Parallel and antiparallel int8 vectors: the exact sums make the cosine
/// exactly ±1, and the AVX-512 finish (no clamp: its error bound keeps the
/// f64 quotient within 2⁻²⁴ of ±1) must round to exactly ±1.0, never beyond;
/// every other pair stays within [-1, 1]. −128 planted at the first, a
/// middle, the last position of the full 64-byte blocks and in the masked
/// tail; lengths 0..=300 and the embedding sizes; offset by one byte.
#[test]
fn i8_cosine_of_parallel_vectors_is_exactly_one() {
    for k in levels() {
        let name = k.isa().name();
        let mut rng = Rng::new(21);
        for n in lengths() {
            let q: Vec<i8> = rng.vec_i8(n).iter().map(|&x| x.max(-127)).collect();
            let want_one = |a: &[i8], b: &[i8], want: f32, what: &str| {
                let nz = a.iter().any(|&x| x != 0);
                let want = if nz { want } else { 0.0 };
                assert_eq!(k.cosine_i8(a, b).unwrap(), want, "{what} at {name} n={n}");
            };
            want_one(&q, &q, 1.0, "a·a");
            let neg: Vec<i8> = q.iter().map(|&x| -x).collect();
            want_one(&q, &neg, -1.0, "a·(−a)");
            let half: Vec<i8> = q.iter().map(|&x| x / 2).collect();
            let twice: Vec<i8> = half.iter().map(|&x| 2 * x).collect();
            want_one(&half, &twice, 1.0, "a·2a");
            // −128 at every position class: first, middle and last byte of a
            // full block, and first/last byte of the tail.
            let mut p = q.clone();
            for i in [0, 31, 63, 64 * (n / 64), n.saturating_sub(1)] {
                if i < n {
                    p[i] = -128;
                }
            }
            want_one(&p, &p, 1.0, "planted −128, a·a");
            let lo = vec![-128i8; n];
            want_one(&lo, &lo, 1.0, "all −128");
            let hi = vec![127i8; n];
            want_one(&hi, &hi, 1.0, "all 127");
            want_one(
                &hi,
                &hi.iter().map(|&x| -x).collect::<Vec<_>>(),
                -1.0,
                "127·(−127)",
            );
            // Offset by one byte (unaligned loads).
            let (pb, o) = offset_by_one(&p);
            want_one(&pb[o..], &p, 1.0, "offset −128 a·a");
            // Random pairs, extremes included, stay within [-1, 1].
            for b in [rng.vec_i8(n), lo.clone(), hi.clone(), p.clone()] {
                for a in [&q, &p, &lo] {
                    let c = k.cosine_i8(a, &b).unwrap();
                    assert!((-1.0..=1.0).contains(&c), "{c} at {name} n={n}");
                }
            }
        }
    }
}

/// A zero-norm int8 vector gives cosine similarity exactly +0.0 (and
/// distance 1) at every level and length up to the chunk size: the AVX-512 finish has
/// no branch for it (it adds 2⁻⁶⁰ to Σa²·Σb², which must leave a zero Σab
/// at +0.0, not NaN or −0.0). Beyond Σa²·Σb² = 2⁵³ (n > 5792 at ±128/127),
/// where the addend can touch the rounding of the product, parallel and
/// antiparallel vectors still give exactly ±1.0 and random pairs stay
/// within the int8 cosine tolerance of the f64 reference.
#[test]
fn i8_cosine_zero_norm_and_large_products() {
    for k in levels() {
        let name = k.isa().name();
        let mut rng = Rng::new(23);
        for n in lengths().chain([5_792, 5_793, 8_191, 32_767, 32_768]) {
            let zero = vec![0i8; n];
            let b = rng.vec_i8(n);
            let lo = vec![-128i8; n];
            for (what, x, y) in [
                ("zero·b", &zero, &b),
                ("b·zero", &b, &zero),
                ("zero·zero", &zero, &zero),
                ("zero·(−128)", &zero, &lo),
            ] {
                let c = k.cosine_i8(x, y).unwrap();
                assert_eq!(c.to_bits(), 0f32.to_bits(), "{what} at {name} n={n}: {c:e}");
                let d = k.cosine_distance_i8(x, y).unwrap();
                assert_eq!(d, 1.0, "{what} distance at {name} n={n}");
            }
            if n < 5_000 {
                continue;
            }
            let hi = vec![127i8; n];
            assert_eq!(
                k.cosine_i8(&lo, &lo).unwrap(),
                1.0,
                "all −128 at {name} n={n}"
            );
            assert_eq!(
                k.cosine_i8(&lo, &hi).unwrap(),
                -1.0,
                "−128·127 at {name} n={n}"
            );
            let q: Vec<i8> = b.iter().map(|&x| x.max(-127)).collect();
            let neg: Vec<i8> = q.iter().map(|&x| -x).collect();
            assert_eq!(
                k.cosine_i8(&q, &neg).unwrap(),
                -1.0,
                "a·(−a) at {name} n={n}"
            );
            for a in [rng.vec_i8(n), lo.clone(), hi.clone()] {
                let want = cos64(&f64s_i(&a), &f64s_i(&b));
                assert_close("cosine_i8", &k, n, k.cosine_i8(&a, &b).unwrap(), want, 1e-7);
            }
        }
    }
}

/// The f16 cosine's special inputs — zero vectors, infinities, NaN, the
/// largest and the subnormal halves — take the same documented answers at
/// every level (the AVX-512 finish tests its range with one `vfpclassss` and
/// hands these to the f64 path).
#[test]
fn f16_cosine_special_inputs_agree_across_levels() {
    let scalar = Kernels::new(kernels::Isa::Scalar).unwrap();
    let h = f16::from_f32;
    for n in [1usize, 7, 8, 9, 31, 32, 33, 128, 300, 384] {
        let mut rng = Rng::new(22);
        let base: Vec<f16> = rng.vec_f16(n);
        let mut cases: Vec<(String, Vec<f16>, Vec<f16>)> = Vec::new();
        let zero = vec![f16::ZERO; n];
        cases.push(("zero·b".into(), zero.clone(), base.clone()));
        cases.push(("zero·zero".into(), zero.clone(), zero.clone()));
        for (what, v) in [
            ("inf", f16::INFINITY),
            ("-inf", f16::NEG_INFINITY),
            ("NaN", f16::NAN),
        ] {
            let mut a = base.clone();
            a[n / 2] = v;
            cases.push((format!("{what} in a"), a.clone(), base.clone()));
            cases.push((format!("{what} in b"), base.clone(), a.clone()));
            cases.push((format!("{what} and zero"), a, zero.clone()));
        }
        let max = vec![f16::MAX; n];
        cases.push(("max·max".into(), max.clone(), max.clone()));
        let sub: Vec<f16> = (0..n).map(|i| h(6e-8 * (1 + i % 5) as f32)).collect();
        cases.push(("subnormal·subnormal".into(), sub.clone(), sub.clone()));
        cases.push(("subnormal·b".into(), sub, base.clone()));
        for k in levels() {
            for (what, a, b) in &cases {
                let want = scalar.cosine_f16(a, b).unwrap();
                let got = k.cosine_f16(a, b).unwrap();
                let (a64, b64) = (f64s_h(a), f64s_h(b));
                let ok = if want.is_nan() {
                    got.is_nan()
                } else {
                    (-1.0..=1.0).contains(&got)
                        && ((got - want).abs() <= 2e-6
                            || (got as f64 - cos64(&a64, &b64)).abs() <= 2e-6)
                };
                assert!(
                    ok,
                    "{what} at {} n={n}: got {got}, scalar {want}",
                    k.isa().name()
                );
            }
        }
    }
}
