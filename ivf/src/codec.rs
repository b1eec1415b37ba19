//! Little-endian byte writer and a bounds-checked reader. Every read
//! checks the remaining length first, so truncated or hostile input gives
//! `Error::Corrupt`, never a panic or an out-of-bounds access.

use crate::error::{corrupt, Error};

pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f32s(&mut self, v: &[f32]) {
        self.buf.reserve(v.len() * 4);
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
}

pub(crate) struct Reader<'a> {
    what: &'static str,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(what: &'static str, bytes: &'a [u8]) -> Self {
        Reader { what, rest: bytes }
    }
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.rest.len() {
            return Err(corrupt(
                self.what,
                format!("truncated: need {n} more bytes, {} left", self.rest.len()),
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.arr::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    /// `n` f32 values; rejects NaN and infinities.
    pub(crate) fn finite_f32s(&mut self, n: usize) -> Result<Vec<f32>, Error> {
        let nbytes = n
            .checked_mul(4)
            .ok_or_else(|| corrupt(self.what, "length overflow"))?;
        let raw = self.take(nbytes)?;
        let v = f32s_from_le(raw);
        if v.iter().any(|x| !x.is_finite()) {
            return Err(corrupt(self.what, "non-finite float"));
        }
        Ok(v)
    }
}

/// Decode little-endian f32s from bytes of any alignment (len multiple of 4).
pub(crate) fn f32s_from_le(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[inline]
pub(crate) fn read_i64(raw: &[u8], i: usize) -> i64 {
    let s = &raw[i * 8..i * 8 + 8];
    i64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
}

#[inline]
pub(crate) fn read_f32(raw: &[u8], i: usize) -> f32 {
    let s = &raw[i * 4..i * 4 + 4];
    f32::from_le_bytes([s[0], s[1], s[2], s[3]])
}
