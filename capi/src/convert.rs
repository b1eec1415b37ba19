//! Element-type conversions and int8 quantisation.
//!
//! Source and destination carry their own lengths, which must be equal, and
//! must not overlap.
use kernels::{convert, f16};

use crate::ffi::{
    disjoint, guard, input, output, put, span, PocketvecStatus, PocketvecStatus as Status,
};

/// Checks a (src, dst) pair of equal length that do not overlap.
///
/// # Safety
/// `src`/`dst` must hold `src_len`/`dst_len` elements (when non-NULL).
unsafe fn src_dst<'a, S, D>(
    src: *const S,
    src_len: usize,
    dst: *mut D,
    dst_len: usize,
) -> Result<(&'a [S], &'a mut [D]), Status> {
    // SAFETY: forwarded from this function's contract.
    let (s, d) = unsafe { (input(src, src_len)?, output(dst, dst_len)?) };
    if s.len() != d.len() {
        return Err(Status::LengthMismatch);
    }
    disjoint(span(d.as_ptr(), d.len()), &[span(s.as_ptr(), s.len())])?;
    Ok((s, d))
}

/// Converts f32 values to f16 bit patterns (`uint16_t`), rounding to nearest even.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_f32_to_f16(
    src: *const f32,
    src_len: usize,
    dst: *mut u16,
    dst_len: usize,
) -> PocketvecStatus {
    guard(|| {
        // SAFETY: the header's contract: `src`/`dst` hold `src_len`/`dst_len` elements.
        let (s, d) = unsafe { src_dst(src, src_len, dst.cast::<f16>(), dst_len)? };
        Ok(convert::f32_to_f16(s, d)?)
    })
}

/// Converts f16 bit patterns (`uint16_t`) to f32 values (exact).
#[no_mangle]
pub unsafe extern "C" fn pocketvec_f16_to_f32(
    src: *const u16,
    src_len: usize,
    dst: *mut f32,
    dst_len: usize,
) -> PocketvecStatus {
    guard(|| {
        // SAFETY: the header's contract: `src`/`dst` hold `src_len`/`dst_len` elements.
        let (s, d) = unsafe { src_dst(src.cast::<f16>(), src_len, dst, dst_len)? };
        Ok(convert::f16_to_f32(s, d)?)
    })
}

/// Quantizes f32 to int8 with one scale per vector: scale = max|x| / 127, q = round(x / scale) in [-127, 127] (scale 0 for a zero vector).
#[no_mangle]
pub unsafe extern "C" fn pocketvec_quantize_i8(
    src: *const f32,
    src_len: usize,
    dst: *mut i8,
    dst_len: usize,
    out_scale: *mut f32,
) -> PocketvecStatus {
    guard(|| {
        // SAFETY: the header's contract: `src`/`dst` hold `src_len`/`dst_len` elements.
        let (s, d) = unsafe { src_dst(src, src_len, dst, dst_len)? };
        if out_scale.is_null() {
            return Err(Status::NullPointer);
        }
        let so = span(out_scale, 1);
        disjoint(so, &[span(s.as_ptr(), s.len()), span(d.as_ptr(), d.len())])?;
        let scale = convert::quantize_i8(s, d)?;
        // SAFETY: the header's contract: `out_scale` is writable.
        unsafe { put(out_scale, scale) }
    })
}

/// Dequantizes int8 to f32: x = q * scale (`scale` finite and >= 0, as `pocketvec_quantize_i8` returns).
#[no_mangle]
pub unsafe extern "C" fn pocketvec_dequantize_i8(
    src: *const i8,
    src_len: usize,
    scale: f32,
    dst: *mut f32,
    dst_len: usize,
) -> PocketvecStatus {
    guard(|| {
        // SAFETY: the header's contract: `src`/`dst` hold `src_len`/`dst_len` elements.
        let (s, d) = unsafe { src_dst(src, src_len, dst, dst_len)? };
        if !scale.is_finite() {
            return Err(Status::NonFinite);
        }
        if scale < 0.0 {
            return Err(Status::InvalidArgument);
        }
        Ok(convert::dequantize_i8(s, scale, d)?)
    })
}
