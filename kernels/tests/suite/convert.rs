//! Conversions: f16 ↔ f32 at every level (the free functions use the
//! process-wide level, so the dispatched conversions are also compared
//! with `half`'s software ones), and int8 quantisation.
use kernels::{convert, f16, Error};

use crate::common::*;

#[test]
fn f16_to_f32_is_exact_for_every_bit_pattern() {
    let all: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
    for k in levels() {
        for n in [all.len(), all.len() - 1, 5] {
            let src = &all[all.len() - n..];
            let mut out = vec![0f32; n];
            k.f16_to_f32(src, &mut out).unwrap();
            for (h, f) in src.iter().zip(&out) {
                let want = h.to_f32();
                let ok = want.to_bits() == f.to_bits() || (want.is_nan() && f.is_nan());
                assert!(ok, "{:#06x} at {}", h.to_bits(), k.isa().name());
            }
        }
    }
    let mut out = vec![0f32; all.len()];
    convert::f16_to_f32(&all, &mut out).unwrap();
    assert_eq!(out[0x3c00], 1.0);
}

#[test]
fn f32_to_f16_rounds_to_nearest_even() {
    let mut rng = Rng::new(40);
    let mut src: Vec<f32> = (0..10_000)
        .map(|_| f32::from_bits(rng.next_u64() as u32))
        .collect();
    // Exact ties between two halves, overflow, underflow, subnormals, specials.
    src.extend([
        1.0 + 2f32.powi(-11),
        1.0 + 3.0 * 2f32.powi(-11),
        65504.0,
        65520.0,
        1e6,
        -1e6,
        2f32.powi(-25),
        2f32.powi(-24),
        3.0 * 2f32.powi(-26),
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ]);
    for k in levels() {
        for n in [src.len(), 1, 7, 17, 33] {
            let src = &src[src.len() - n..];
            let mut out = vec![f16::ZERO; n];
            k.f32_to_f16(src, &mut out).unwrap();
            for (x, h) in src.iter().zip(&out) {
                let want = f16::from_f32_const(*x);
                let ok = want.to_bits() == h.to_bits() || (want.is_nan() && h.is_nan());
                assert!(ok, "{x:e}: got {h}, want {want} at {}", k.isa().name());
            }
        }
    }
    let mut out = [f16::ZERO; 2];
    convert::f32_to_f16(&[1.0, -2.0], &mut out).unwrap();
    assert_eq!(out, [f16::ONE, f16::from_f32(-2.0)]);
    assert_eq!(
        convert::f32_to_f16(&[1.0], &mut []),
        Err(Error::LengthMismatch {
            expected: 1,
            found: 0
        })
    );
    assert!(convert::f16_to_f32(&[f16::ONE], &mut [0.0; 2]).is_err());
}

#[test]
fn quantize_i8_is_symmetric_per_vector() {
    let mut q = [0i8; 5];
    let scale = convert::quantize_i8(&[1.0, -0.5, 0.25, 0.0, -1.0], &mut q).unwrap();
    assert_eq!(scale, 1.0 / 127.0);
    assert_eq!(q, [127, -64, 32, 0, -127]); // -63.5 rounds away from zero
    let scale = convert::quantize_i8(&[0.0; 5], &mut q).unwrap();
    assert_eq!((scale, q), (0.0, [0; 5]));
    assert_eq!(
        convert::quantize_i8(&[1.0, f32::NAN], &mut q[..2]),
        Err(Error::NonFinite { index: 1 })
    );
    assert_eq!(
        convert::quantize_i8(&[f32::INFINITY], &mut q[..1]),
        Err(Error::NonFinite { index: 0 })
    );
    assert!(convert::quantize_i8(&[1.0], &mut q).is_err());

    let mut rng = Rng::new(41);
    for n in [1usize, 10, 768] {
        for s in [1e-30f32, 1e-3, 1.0, 1e30] {
            let x: Vec<f32> = rng.vec_f32(n).into_iter().map(|v| v * s).collect();
            let mut q = vec![0i8; n];
            let scale = convert::quantize_i8(&x, &mut q).unwrap();
            let max = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert_eq!(scale, (max as f64 / 127.0) as f32);
            assert!(q.iter().any(|v| v.abs() == 127));
            let mut back = vec![0f32; n];
            convert::dequantize_i8(&q, scale, &mut back).unwrap();
            for (a, b) in x.iter().zip(&back) {
                // Rounding error at most half a step.
                assert!(
                    ((a - b).abs() as f64) <= 0.5 * scale as f64 * (1.0 + 1e-5),
                    "{a:e} vs {b:e}"
                );
            }
        }
    }
    assert!(convert::dequantize_i8(&[1], 1.0, &mut []).is_err());
}
