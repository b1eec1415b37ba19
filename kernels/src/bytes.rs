//! Reading vectors out of raw little-endian bytes at any alignment (SQLite
//! BLOBs are only guaranteed 8-byte alignment, and may be empty).
use std::borrow::Cow;

use crate::{f16, Error};

/// The f32 values of `b`: borrowed in place when `b` is 4-byte aligned (on a
/// little-endian target), otherwise copied. `Err(ByteLength)` if `b.len()`
/// is not a multiple of 4.
pub fn f32_from_le_bytes(b: &[u8]) -> Result<Cow<'_, [f32]>, Error> {
    if !b.len().is_multiple_of(4) {
        return Err(Error::ByteLength {
            elem_size: 4,
            len: b.len(),
        });
    }
    if cfg!(target_endian = "little") {
        if let Ok(v) = bytemuck::try_cast_slice::<u8, f32>(b) {
            return Ok(Cow::Borrowed(v));
        }
    }
    Ok(Cow::Owned(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    ))
}

/// The f16 values of `b`: borrowed in place when `b` is 2-byte aligned (on a
/// little-endian target), otherwise copied. `Err(ByteLength)` if `b.len()`
/// is odd.
pub fn f16_from_le_bytes(b: &[u8]) -> Result<Cow<'_, [f16]>, Error> {
    if !b.len().is_multiple_of(2) {
        return Err(Error::ByteLength {
            elem_size: 2,
            len: b.len(),
        });
    }
    if cfg!(target_endian = "little") {
        if let Ok(v) = bytemuck::try_cast_slice::<u8, f16>(b) {
            return Ok(Cow::Borrowed(v));
        }
    }
    Ok(Cow::Owned(
        b.chunks_exact(2)
            .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
    ))
}

/// The int8 values of `b` (always in place).
pub fn i8_from_bytes(b: &[u8]) -> &[i8] {
    bytemuck::cast_slice(b)
}
