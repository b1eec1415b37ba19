//! Element-type conversions: f32 ↔ f16 (dispatched: F16C, AVX-512, NEON
//! `fcvtn`/`fcvtl`) and symmetric per-vector int8 quantisation.
use crate::{f16, Error, Kernels};

/// Converts f32 to f16, rounding to nearest, ties to even (overflow gives
/// ±∞, NaN stays NaN). `dst.len()` must equal `src.len()`.
pub fn f32_to_f16(src: &[f32], dst: &mut [f16]) -> Result<(), Error> {
    Kernels::detect().f32_to_f16(src, dst)
}

/// Converts f16 to f32 (exact). `dst.len()` must equal `src.len()`.
pub fn f16_to_f32(src: &[f16], dst: &mut [f32]) -> Result<(), Error> {
    Kernels::detect().f16_to_f32(src, dst)
}

/// Symmetric per-vector int8 quantisation: `scale = max|x| / 127`,
/// `q = round(x / scale)` (half away from zero) clamped to [-127, 127];
/// returns `scale`. An all-zero vector gives scale 0.0 and q = 0. A NaN or
/// infinite input is `Err(NonFinite)` and leaves `dst` unspecified.
/// The division is done in f64 so that tiny (subnormal) inputs quantise too.
pub fn quantize_i8(src: &[f32], dst: &mut [i8]) -> Result<f32, Error> {
    if src.len() != dst.len() {
        return Err(Error::LengthMismatch {
            expected: src.len(),
            found: dst.len(),
        });
    }
    if let Some(index) = src.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFinite { index });
    }
    let max = src.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        dst.fill(0);
        return Ok(0.0);
    }
    let scale = max as f64 / 127.0;
    for (q, &x) in dst.iter_mut().zip(src) {
        *q = (x as f64 / scale).round().clamp(-127.0, 127.0) as i8;
    }
    Ok(scale as f32)
}

/// `dst[i] = src[i] * scale`. `dst.len()` must equal `src.len()`.
pub fn dequantize_i8(src: &[i8], scale: f32, dst: &mut [f32]) -> Result<(), Error> {
    if src.len() != dst.len() {
        return Err(Error::LengthMismatch {
            expected: src.len(),
            found: dst.len(),
        });
    }
    for (d, &q) in dst.iter_mut().zip(src) {
        *d = q as f32 * scale;
    }
    Ok(())
}
