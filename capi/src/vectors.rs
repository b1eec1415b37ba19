//! Pairwise kernels: dot, cosine, cosine distance, L2, squared L2, norm and
//! normalize, for f32, f16 (`uint16_t` bit patterns) and int8.
//!
//! Every function takes each vector as pointer + element count, so a length
//! mismatch is reported (`POCKETVEC_STATUS_LENGTH_MISMATCH`) instead of read
//! past. Results are computed by `kernels` at the process-wide ISA level.
use kernels::{f16, Kernels};

use crate::ffi::{disjoint, guard, input, output, put, span, PocketvecStatus};

/// Checks two input vectors and an out-parameter, then stores `f`'s result.
///
/// # Safety
/// `a`/`b` must hold `a_len`/`b_len` readable elements (when non-NULL) and
/// `out` must be writable (when non-NULL).
unsafe fn pair<T, R>(
    a: *const T,
    a_len: usize,
    b: *const T,
    b_len: usize,
    out: *mut R,
    f: impl FnOnce(Kernels, &[T], &[T]) -> Result<R, kernels::Error>,
) -> PocketvecStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let (a, b) = unsafe { (input(a, a_len)?, input(b, b_len)?) };
        let r = f(Kernels::detect(), a, b)?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, r) }
    })
}

/// Checks one input vector and an out-parameter, then stores `f`'s result.
///
/// # Safety
/// As `pair`, for one vector.
unsafe fn single<T, R>(
    a: *const T,
    a_len: usize,
    out: *mut R,
    f: impl FnOnce(Kernels, &[T]) -> R,
) -> PocketvecStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let a = unsafe { input(a, a_len)? };
        let r = f(Kernels::detect(), a);
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, r) }
    })
}

/// Normalizes `v` in place and stores its former norm in `out_norm` when that is non-NULL.
///
/// # Safety
/// `v` must hold `len` writable elements; `out_norm` NULL or writable.
unsafe fn normalize_in_place<T>(
    v: *mut T,
    len: usize,
    out_norm: *mut f32,
    f: impl FnOnce(Kernels, &mut [T]) -> f32,
) -> PocketvecStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let v = unsafe { output(v, len)? };
        if !out_norm.is_null() {
            disjoint(span(out_norm, 1), &[span(v.as_ptr(), v.len())])?;
        }
        let norm = f(Kernels::detect(), v);
        if !out_norm.is_null() {
            // SAFETY: forwarded from this function's contract.
            unsafe { put(out_norm, norm)? };
        }
        Ok(())
    })
}

/// Dot product of two f32 vectors of equal length.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_dot_f32(
    a: *const f32,
    a_len: usize,
    b: *const f32,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe { pair(a, a_len, b, b_len, out, |k, a: &[f32], b| k.dot_f32(a, b)) }
}

/// Cosine similarity of two f32 vectors (0 when either has zero norm).
#[no_mangle]
pub unsafe extern "C" fn pocketvec_cosine_f32(
    a: *const f32,
    a_len: usize,
    b: *const f32,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe {
        pair(a, a_len, b, b_len, out, |k, a: &[f32], b| {
            k.cosine_f32(a, b)
        })
    }
}

/// Cosine distance (1 - similarity) of two f32 vectors.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_cosine_distance_f32(
    a: *const f32,
    a_len: usize,
    b: *const f32,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe {
        pair(a, a_len, b, b_len, out, |k, a: &[f32], b| {
            k.cosine_distance_f32(a, b)
        })
    }
}

/// Euclidean (L2) distance of two f32 vectors.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_l2_f32(
    a: *const f32,
    a_len: usize,
    b: *const f32,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe { pair(a, a_len, b, b_len, out, |k, a: &[f32], b| k.l2_f32(a, b)) }
}

/// Squared Euclidean distance of two f32 vectors.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_l2sq_f32(
    a: *const f32,
    a_len: usize,
    b: *const f32,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe { pair(a, a_len, b, b_len, out, |k, a: &[f32], b| k.l2sq_f32(a, b)) }
}

/// Dot product of two IEEE half-precision vectors (`uint16_t` bit patterns) of equal length.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_dot_f16(
    a: *const u16,
    a_len: usize,
    b: *const u16,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe {
        pair(
            a.cast(),
            a_len,
            b.cast(),
            b_len,
            out,
            |k, a: &[kernels::f16], b| k.dot_f16(a, b),
        )
    }
}

/// Cosine similarity of two IEEE half-precision vectors (`uint16_t` bit patterns) (0 when either has zero norm).
#[no_mangle]
pub unsafe extern "C" fn pocketvec_cosine_f16(
    a: *const u16,
    a_len: usize,
    b: *const u16,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe {
        pair(
            a.cast(),
            a_len,
            b.cast(),
            b_len,
            out,
            |k, a: &[kernels::f16], b| k.cosine_f16(a, b),
        )
    }
}

/// Cosine distance (1 - similarity) of two IEEE half-precision vectors (`uint16_t` bit patterns).
#[no_mangle]
pub unsafe extern "C" fn pocketvec_cosine_distance_f16(
    a: *const u16,
    a_len: usize,
    b: *const u16,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe {
        pair(
            a.cast(),
            a_len,
            b.cast(),
            b_len,
            out,
            |k, a: &[kernels::f16], b| k.cosine_distance_f16(a, b),
        )
    }
}

/// Euclidean (L2) distance of two IEEE half-precision vectors (`uint16_t` bit patterns).
#[no_mangle]
pub unsafe extern "C" fn pocketvec_l2_f16(
    a: *const u16,
    a_len: usize,
    b: *const u16,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe {
        pair(
            a.cast(),
            a_len,
            b.cast(),
            b_len,
            out,
            |k, a: &[kernels::f16], b| k.l2_f16(a, b),
        )
    }
}

/// Squared Euclidean distance of two IEEE half-precision vectors (`uint16_t` bit patterns).
#[no_mangle]
pub unsafe extern "C" fn pocketvec_l2sq_f16(
    a: *const u16,
    a_len: usize,
    b: *const u16,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe {
        pair(
            a.cast(),
            a_len,
            b.cast(),
            b_len,
            out,
            |k, a: &[kernels::f16], b| k.l2sq_f16(a, b),
        )
    }
}

/// Dot product of two int8 vectors of equal length, exact in 32-bit integer arithmetic.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_dot_i8(
    a: *const i8,
    a_len: usize,
    b: *const i8,
    b_len: usize,
    out: *mut i32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe { pair(a, a_len, b, b_len, out, |k, a: &[i8], b| k.dot_i8(a, b)) }
}

/// Cosine similarity of two int8 vectors (0 when either has zero norm).
#[no_mangle]
pub unsafe extern "C" fn pocketvec_cosine_i8(
    a: *const i8,
    a_len: usize,
    b: *const i8,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe { pair(a, a_len, b, b_len, out, |k, a: &[i8], b| k.cosine_i8(a, b)) }
}

/// Cosine distance (1 - similarity) of two int8 vectors.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_cosine_distance_i8(
    a: *const i8,
    a_len: usize,
    b: *const i8,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe {
        pair(a, a_len, b, b_len, out, |k, a: &[i8], b| {
            k.cosine_distance_i8(a, b)
        })
    }
}

/// Euclidean (L2) distance of two int8 vectors.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_l2_i8(
    a: *const i8,
    a_len: usize,
    b: *const i8,
    b_len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe { pair(a, a_len, b, b_len, out, |k, a: &[i8], b| k.l2_i8(a, b)) }
}

/// Squared Euclidean distance of two int8 vectors, exact in 32-bit integer arithmetic.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_l2sq_i8(
    a: *const i8,
    a_len: usize,
    b: *const i8,
    b_len: usize,
    out: *mut i32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a`/`b` hold `a_len`/`b_len` elements, `out` one value.
    unsafe { pair(a, a_len, b, b_len, out, |k, a: &[i8], b| k.l2sq_i8(a, b)) }
}

/// L2 norm of an f32 vector.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_norm_f32(
    a: *const f32,
    len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a` holds `len` elements, `out` one value.
    unsafe { single(a, len, out, |k, a| k.norm_f32(a)) }
}

/// L2 norm of an f16 vector (`uint16_t` bit patterns), computed in f32.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_norm_f16(
    a: *const u16,
    len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a` holds `len` elements, `out` one value.
    unsafe { single(a.cast::<f16>(), len, out, |k, a| k.norm_f16(a)) }
}

/// L2 norm of an int8 vector.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_norm_i8(
    a: *const i8,
    len: usize,
    out: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `a` holds `len` elements, `out` one value.
    unsafe { single(a, len, out, |k, a| k.norm_i8(a)) }
}

/// Scales an f32 vector to unit length in place (a zero vector is left unchanged); `out_norm` (may be NULL) receives the norm before.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_normalize_f32(
    v: *mut f32,
    len: usize,
    out_norm: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `v` holds `len` writable elements.
    unsafe { normalize_in_place(v, len, out_norm, |k, v| k.normalize_f32(v)) }
}

/// Scales an f16 vector to unit length in place (a zero vector is left unchanged); `out_norm` (may be NULL) receives the norm before.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_normalize_f16(
    v: *mut u16,
    len: usize,
    out_norm: *mut f32,
) -> PocketvecStatus {
    // SAFETY: the header's contract: `v` holds `len` writable elements.
    unsafe { normalize_in_place(v.cast::<f16>(), len, out_norm, |k, v| k.normalize_f16(v)) }
}

/// Writes the unit-length f32 vector of an int8 vector to `dst` (zeros for a zero vector); `out_norm` (may be NULL) receives its norm.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_normalize_i8(
    src: *const i8,
    src_len: usize,
    dst: *mut f32,
    dst_len: usize,
    out_norm: *mut f32,
) -> PocketvecStatus {
    guard(|| {
        // SAFETY: the header's contract: `src`/`dst` hold `src_len`/`dst_len` elements.
        let (src, dst) = unsafe { (input(src, src_len)?, output(dst, dst_len)?) };
        if src.len() != dst.len() {
            return Err(PocketvecStatus::LengthMismatch);
        }
        let src_span = span(src.as_ptr(), src.len());
        disjoint(span(dst.as_ptr(), dst.len()), &[src_span])?;
        if !out_norm.is_null() {
            disjoint(
                span(out_norm, 1),
                &[src_span, span(dst.as_ptr(), dst.len())],
            )?;
        }
        let norm = Kernels::detect().norm_i8(src);
        let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = f32::from(s) * inv;
        }
        if !out_norm.is_null() {
            // SAFETY: the header's contract: `out_norm` is NULL or writable.
            unsafe { put(out_norm, norm)? };
        }
        Ok(())
    })
}
