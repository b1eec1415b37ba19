//! The thin unsafe layer: the status enum, the panic guard and the checks that
//! turn C pointer + length pairs into slices (or a status saying why not).
//!
//! Every exported function is `guard(|| { ... })`: the closure returns
//! `Result<(), Status>`, a panic becomes `Status::Panic`, and nothing unwinds
//! into C.
use std::mem::size_of;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Result of every pocketvec C function; `POCKETVEC_STATUS_OK` (0) is success.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PocketvecStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullPointer = 1,
    /// A length, dimension, row count or k was zero.
    ZeroLength = 2,
    /// A length times the element size does not fit in the address space.
    LengthOverflow = 3,
    /// Two sizes that must agree do not (vector lengths, block vs. dim, output length).
    LengthMismatch = 4,
    /// A pointer is not aligned for its element type.
    Misaligned = 5,
    /// An output buffer overlaps an input buffer.
    Overlap = 6,
    /// The metric argument is not a `pocketvec_metric` value.
    InvalidMetric = 7,
    /// An output buffer is too small for the result.
    BufferTooSmall = 8,
    /// An input value is NaN or infinite where only finite values are allowed.
    NonFinite = 9,
    /// An exact integer result does not fit in its 32-bit output.
    ResultOverflow = 10,
    /// An argument is out of its documented range.
    InvalidArgument = 11,
    /// SQLite reported an error while registering pocketvec.
    SqliteError = 12,
    /// The SQLite the application links lacks a function pocketvec needs.
    SqliteMissingSymbol = 13,
    /// An internal error (a bug in pocketvec); please report it.
    Internal = 14,
    /// A panic was caught at the C boundary (a bug in pocketvec); please report it.
    Panic = 15,
}

pub(crate) use PocketvecStatus as Status;

impl PocketvecStatus {
    /// Every status, in numeric order.
    pub(crate) const ALL: [Status; 16] = [
        Status::Ok,
        Status::NullPointer,
        Status::ZeroLength,
        Status::LengthOverflow,
        Status::LengthMismatch,
        Status::Misaligned,
        Status::Overlap,
        Status::InvalidMetric,
        Status::BufferTooSmall,
        Status::NonFinite,
        Status::ResultOverflow,
        Status::InvalidArgument,
        Status::SqliteError,
        Status::SqliteMissingSymbol,
        Status::Internal,
        Status::Panic,
    ];

    /// The status with this numeric value, if any.
    pub(crate) fn from_i32(v: i32) -> Option<Status> {
        usize::try_from(v)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// A static, NUL-terminated English description.
    pub(crate) fn message(self) -> &'static std::ffi::CStr {
        match self {
            Status::Ok => c"ok",
            Status::NullPointer => c"a required pointer argument is NULL",
            Status::ZeroLength => c"a length, dimension, row count or k is zero",
            Status::LengthOverflow => {
                c"a length times the element size overflows the address space"
            }
            Status::LengthMismatch => {
                c"sizes do not match (vector lengths, block length vs. dim, or output length)"
            }
            Status::Misaligned => c"a pointer is not aligned for its element type",
            Status::Overlap => c"an output buffer overlaps an input buffer",
            Status::InvalidMetric => {
                c"unknown metric: expected POCKETVEC_METRIC_COSINE, _L2 or _DOT"
            }
            Status::BufferTooSmall => c"an output buffer is too small for the result",
            Status::NonFinite => c"an input value is NaN or infinite",
            Status::ResultOverflow => c"an exact integer result does not fit in 32 bits",
            Status::InvalidArgument => c"an argument is outside its documented range",
            Status::SqliteError => c"SQLite reported an error while registering pocketvec",
            Status::SqliteMissingSymbol => {
                c"the linked SQLite lacks a function pocketvec needs (too old or built without it)"
            }
            Status::Internal => c"internal error in pocketvec (please report it)",
            Status::Panic => c"a panic was caught at the C boundary (please report it)",
        }
    }
}

impl From<kernels::Error> for Status {
    fn from(e: kernels::Error) -> Status {
        match e {
            kernels::Error::LengthMismatch { .. } | kernels::Error::ByteLength { .. } => {
                Status::LengthMismatch
            }
            kernels::Error::ZeroK => Status::ZeroLength,
            kernels::Error::NonFinite { .. } => Status::NonFinite,
            kernels::Error::Overflow { .. } => Status::ResultOverflow,
            _ => Status::Internal,
        }
    }
}

/// Runs `f`, turning an error into its status and a panic into `Status::Panic`.
#[inline]
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Status>) -> Status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Status::Ok,
        Ok(Err(s)) => s,
        Err(_) => Status::Panic,
    }
}

/// Checks a (pointer, element count) pair: non-NULL, non-zero, no overflow, aligned.
fn check<T>(p: *const T, len: usize) -> Result<(), Status> {
    if p.is_null() {
        return Err(Status::NullPointer);
    }
    if len == 0 {
        return Err(Status::ZeroLength);
    }
    let bytes = len
        .checked_mul(size_of::<T>())
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or(Status::LengthOverflow)?;
    if (p as usize).checked_add(bytes).is_none() {
        return Err(Status::LengthOverflow);
    }
    if !p.is_aligned() {
        return Err(Status::Misaligned);
    }
    Ok(())
}

/// A checked input slice.
///
/// # Safety
/// If `p` is non-NULL it must point to `len` readable `T`s that nothing
/// writes to for `'a`.
pub(crate) unsafe fn input<'a, T>(p: *const T, len: usize) -> Result<&'a [T], Status> {
    check(p, len)?;
    // SAFETY: `check` rejected NULL, zero, overflowing and misaligned; the
    // caller guarantees `len` readable elements.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A checked output slice.
///
/// # Safety
/// If `p` is non-NULL it must point to `len` writable `T`s that nothing else
/// accesses for `'a`.
pub(crate) unsafe fn output<'a, T>(p: *mut T, len: usize) -> Result<&'a mut [T], Status> {
    check(p.cast_const(), len)?;
    // SAFETY: as in `input`, and the caller guarantees exclusive access.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// A checked single-value out-parameter.
///
/// # Safety
/// If `p` is non-NULL it must be valid for writing one `T`.
pub(crate) unsafe fn out_ref<'a, T>(p: *mut T) -> Result<&'a mut T, Status> {
    check(p.cast_const(), 1)?;
    // SAFETY: non-NULL and aligned (checked); the caller guarantees validity.
    Ok(unsafe { &mut *p })
}

/// Byte range of a raw buffer, for overlap checks.
pub(crate) fn span<T>(p: *const T, len: usize) -> (usize, usize) {
    let start = p as usize;
    (
        start,
        start.saturating_add(len.saturating_mul(size_of::<T>())),
    )
}

/// `Err(Overlap)` if the output range intersects any input range.
pub(crate) fn disjoint(out: (usize, usize), inputs: &[(usize, usize)]) -> Result<(), Status> {
    for &(s, e) in inputs {
        if out.0 < e && s < out.1 {
            return Err(Status::Overlap);
        }
    }
    Ok(())
}

/// Stores `v` into a checked out-parameter.
///
/// # Safety
/// As `out_ref`.
pub(crate) unsafe fn put<T>(p: *mut T, v: T) -> Result<(), Status> {
    // SAFETY: forwarded to the caller.
    *unsafe { out_ref(p) }? = v;
    Ok(())
}

/// The metric for a `pocketvec_metric` value.
pub(crate) fn metric(m: i32) -> Result<kernels::Metric, Status> {
    match m {
        0 => Ok(kernels::Metric::Cosine),
        1 => Ok(kernels::Metric::L2),
        2 => Ok(kernels::Metric::Dot),
        _ => Err(Status::InvalidMetric),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_i32_round_trips_every_status() {
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(*s as i32, i as i32);
            assert_eq!(Status::from_i32(i as i32), Some(*s));
            assert!(!s.message().to_bytes().is_empty());
        }
        assert_eq!(Status::from_i32(-1), None);
        assert_eq!(Status::from_i32(Status::ALL.len() as i32), None);
    }

    #[test]
    fn check_rejects_each_bad_pair() {
        let v = [1.0f32, 2.0];
        assert_eq!(check(std::ptr::null::<f32>(), 2), Err(Status::NullPointer));
        assert_eq!(check(v.as_ptr(), 0), Err(Status::ZeroLength));
        assert_eq!(
            check(v.as_ptr(), usize::MAX / 2),
            Err(Status::LengthOverflow)
        );
        let odd = (v.as_ptr() as *const u8).wrapping_add(1) as *const f32;
        assert_eq!(check(odd, 1), Err(Status::Misaligned));
        assert_eq!(check(v.as_ptr(), 2), Ok(()));
    }

    #[test]
    fn guard_catches_panics() {
        assert_eq!(guard(|| panic!("boom")), Status::Panic);
        assert_eq!(guard(|| Err(Status::ZeroLength)), Status::ZeroLength);
        assert_eq!(guard(|| Ok(())), Status::Ok);
    }

    #[test]
    fn disjoint_detects_overlap() {
        assert_eq!(disjoint((0, 8), &[(8, 16)]), Ok(()));
        assert_eq!(disjoint((0, 9), &[(8, 16)]), Err(Status::Overlap));
        assert_eq!(disjoint((20, 24), &[(8, 16), (16, 20)]), Ok(()));
    }
}
