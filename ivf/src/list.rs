//! List contents as byte chunks the SQLite layer stores as BLOBs.
//!
//! A list is stored as one or more chunks. Chunk bytes (little-endian):
//!
//! ```text
//! offset  size            field
//! 0       4               magic "PVIL"
//! 4       2               format version (1)
//! 6       1               quantizer kind (0 none, 1 int8, 2 pq)
//! 7       1               reserved, 0
//! 8       4               count n
//! 12      4               code_bytes per vector (none: 4·dim, int8: dim, pq: m)
//! 16      4               aux f32 side values per vector (0, 1 or 2)
//! 20      4               reserved, 0
//! 24      8·n             ids, i64
//! ..      codes           none/int8: n·code_bytes, row-major
//!                         pq: n·m bytes in blocks of 64 vectors, each block
//!                         sub-space-major (byte j·64+lane); the last block,
//!                         of r = n mod 64 vectors, uses stride r (no padding)
//! ..      4·aux·n         side values, f32 row-major (int8: scale[, L2 term];
//!                         pq with L2: ||r̂||²+2c·r̂)
//! ```
//!
//! The chunk is parsed in place ([`ListChunkRef`], zero-copy, any
//! alignment) for scanning, or into an owned [`ListChunk`] to append and
//! remove entries. Order inside a chunk is not meaningful (removal moves
//! the last entry into the hole).

use crate::codec::{read_f32, read_i64, Reader, Writer};
use crate::error::{corrupt, Error};
use crate::model::QuantizerKind;
use crate::pq::BLOCK;
use std::fmt;

/// Magic of a list chunk.
pub const CHUNK_MAGIC: [u8; 4] = *b"PVIL";
/// Chunk format version this build writes and reads.
pub const CHUNK_VERSION: u16 = 1;
/// Bytes before the ids.
pub const CHUNK_HEADER: usize = 24;
/// Suggested maximum entries per chunk for the SQLite layer (a PQ chunk
/// of this size is ~100 KiB at dim 384).
pub const DEFAULT_CHUNK_ROWS: usize = 1024;
/// Hard upper bound on entries in one chunk.
pub const MAX_CHUNK_ROWS: usize = 1 << 24;

/// The byte layout of one list entry; fixed by the model
/// ([`IvfModel::code_layout`](crate::IvfModel::code_layout)).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CodeLayout {
    pub kind: QuantizerKind,
    pub code_bytes: usize,
    pub aux: usize,
}

impl fmt::Display for CodeLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} codes of {} bytes with {} side values",
            self.kind.name(),
            self.code_bytes,
            self.aux
        )
    }
}

impl CodeLayout {
    /// Bytes of the code region for `n` entries.
    pub fn codes_len(&self, n: usize) -> usize {
        n * self.code_bytes
    }
    /// Total chunk bytes for `n` entries.
    pub fn chunk_len(&self, n: usize) -> usize {
        CHUNK_HEADER + 8 * n + self.codes_len(n) + 4 * self.aux * n
    }
}

/// A parsed chunk borrowing its bytes.
#[derive(Copy, Clone, Debug)]
pub struct ListChunkRef<'a> {
    layout: CodeLayout,
    n: usize,
    ids: &'a [u8],
    codes: &'a [u8],
    aux: &'a [u8],
}

const W: &str = "list chunk";

impl<'a> ListChunkRef<'a> {
    /// Validate and split `bytes`; the layout must equal the model's.
    pub fn parse(bytes: &'a [u8], layout: CodeLayout) -> Result<ListChunkRef<'a>, Error> {
        // The scan parses every probed chunk: a well-formed one is split
        // with a few fixed-offset reads; anything else takes the checked
        // path below, which names the problem.
        if let Some(c) = Self::parse_fast(bytes, layout) {
            return Ok(c);
        }
        let mut r = Reader::new(W, bytes);
        if r.take(4)? != CHUNK_MAGIC {
            return Err(corrupt(W, "bad magic (not a pocketvec list chunk)"));
        }
        let version = r.u16()?;
        if version != CHUNK_VERSION {
            return Err(Error::UnsupportedVersion {
                what: W,
                expected: CHUNK_VERSION,
                found: version,
            });
        }
        let kind = QuantizerKind::from_u8(r.u8()?).ok_or_else(|| corrupt(W, "unknown kind"))?;
        let _reserved = r.u8()?;
        let n = r.u32()? as usize;
        let code_bytes = r.u32()? as usize;
        let aux = r.u32()? as usize;
        let _reserved = r.u32()?;
        let found = CodeLayout {
            kind,
            code_bytes,
            aux,
        };
        if found != layout {
            return Err(Error::LayoutMismatch {
                expected: layout.to_string(),
                found: found.to_string(),
            });
        }
        if n > MAX_CHUNK_ROWS {
            return Err(corrupt(W, format!("count {n} exceeds {MAX_CHUNK_ROWS}")));
        }
        // Checked in u64 so that even 32-bit targets cannot overflow.
        let want = (CHUNK_HEADER as u64)
            + n as u64 * (8 + layout.code_bytes as u64 + 4 * layout.aux as u64);
        if bytes.len() as u64 != want {
            return Err(corrupt(
                W,
                format!("length {} bytes, header implies {want}", bytes.len()),
            ));
        }
        let ids = r.take(8 * n)?;
        let codes = r.take(layout.codes_len(n))?;
        let aux = r.take(4 * layout.aux * n)?;
        Ok(ListChunkRef {
            layout,
            n,
            ids,
            codes,
            aux,
        })
    }
    /// [`ListChunkRef::parse`] of a well-formed chunk (`None` otherwise):
    /// the same checks, without building an error.
    #[inline]
    fn parse_fast(bytes: &'a [u8], layout: CodeLayout) -> Option<ListChunkRef<'a>> {
        let h = bytes.get(..CHUNK_HEADER)?;
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]) as usize;
        if h[..4] != CHUNK_MAGIC
            || u16::from_le_bytes([h[4], h[5]]) != CHUNK_VERSION
            || h[6] != layout.kind.to_u8()
            || u32_at(12) != layout.code_bytes
            || u32_at(16) != layout.aux
        {
            return None;
        }
        let n = u32_at(8);
        if n > MAX_CHUNK_ROWS {
            return None;
        }
        let want = (CHUNK_HEADER as u64)
            + n as u64 * (8 + layout.code_bytes as u64 + 4 * layout.aux as u64);
        if bytes.len() as u64 != want {
            return None;
        }
        let (ids, rest) = bytes[CHUNK_HEADER..].split_at(8 * n);
        let (codes, aux) = rest.split_at(layout.codes_len(n));
        Some(ListChunkRef {
            layout,
            n,
            ids,
            codes,
            aux,
        })
    }
    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    pub fn layout(&self) -> CodeLayout {
        self.layout
    }
    /// Id of entry `i` (`i < len`).
    #[inline]
    pub fn id(&self, i: usize) -> i64 {
        read_i64(self.ids, i)
    }
    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.n).map(|i| self.id(i))
    }
    /// Side value `k` of entry `i`.
    #[inline]
    pub fn aux(&self, i: usize, k: usize) -> f32 {
        read_f32(self.aux, i * self.layout.aux + k)
    }
    /// The raw code region (see the module docs for its layout).
    pub fn code_region(&self) -> &'a [u8] {
        self.codes
    }
    /// Row-major code of entry `i` (un-transposed for PQ).
    pub fn code(&self, i: usize) -> Vec<u8> {
        let cb = self.layout.code_bytes;
        match self.layout.kind {
            QuantizerKind::Pq => {
                let (base, stride) = pq_pos(self.n, cb, i);
                (0..cb).map(|j| self.codes[base + j * stride]).collect()
            }
            _ => self.codes[i * cb..(i + 1) * cb].to_vec(),
        }
    }
    /// Number of full 64-vector PQ blocks (the rest is the tail block).
    pub(crate) fn full_blocks(&self) -> usize {
        self.n / BLOCK
    }
    pub fn to_owned(&self) -> ListChunk {
        let mut c = ListChunk::new(self.layout);
        c.ids = (0..self.n).map(|i| self.id(i)).collect();
        c.codes = match self.layout.kind {
            QuantizerKind::Pq => {
                let mut rows = Vec::with_capacity(self.codes.len());
                for i in 0..self.n {
                    rows.extend_from_slice(&self.code(i));
                }
                rows
            }
            _ => self.codes.to_vec(),
        };
        c.aux = (0..self.n * self.layout.aux)
            .map(|i| read_f32(self.aux, i))
            .collect();
        c
    }
}

/// An owned, mutable chunk. Codes are kept row-major in memory; PQ codes
/// are blocked only when serialised.
#[derive(Clone, Debug, PartialEq)]
pub struct ListChunk {
    layout: CodeLayout,
    ids: Vec<i64>,
    codes: Vec<u8>,
    aux: Vec<f32>,
}

impl ListChunk {
    pub fn new(layout: CodeLayout) -> ListChunk {
        ListChunk {
            layout,
            ids: Vec::new(),
            codes: Vec::new(),
            aux: Vec::new(),
        }
    }
    pub fn from_bytes(bytes: &[u8], layout: CodeLayout) -> Result<ListChunk, Error> {
        Ok(ListChunkRef::parse(bytes, layout)?.to_owned())
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.ids.len();
        let mut w = Writer::with_capacity(self.layout.chunk_len(n));
        w.bytes(&CHUNK_MAGIC);
        w.u16(CHUNK_VERSION);
        w.u8(self.layout.kind.to_u8());
        w.u8(0);
        w.u32(n as u32);
        w.u32(self.layout.code_bytes as u32);
        w.u32(self.layout.aux as u32);
        w.u32(0);
        for id in &self.ids {
            w.u64(*id as u64);
        }
        match self.layout.kind {
            QuantizerKind::Pq => {
                let cb = self.layout.code_bytes;
                let start = w.buf.len();
                w.buf.resize(start + n * cb, 0);
                let out = &mut w.buf[start..];
                for (i, row) in self.codes.chunks_exact(cb).enumerate() {
                    let (base, stride) = pq_pos(n, cb, i);
                    for (j, &c) in row.iter().enumerate() {
                        out[base + j * stride] = c;
                    }
                }
            }
            _ => w.bytes(&self.codes),
        }
        w.f32s(&self.aux);
        debug_assert_eq!(w.buf.len(), self.layout.chunk_len(n));
        w.buf
    }
    pub fn layout(&self) -> CodeLayout {
        self.layout
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }
    pub fn contains(&self, id: i64) -> bool {
        self.ids.contains(&id)
    }
    /// Bytes [`to_bytes`](Self::to_bytes) will produce.
    pub fn byte_len(&self) -> usize {
        self.layout.chunk_len(self.len())
    }

    /// Append one entry (`code`: row-major `code_bytes`, `aux`: side values).
    pub fn push(&mut self, id: i64, code: &[u8], aux: &[f32]) -> Result<(), Error> {
        let l = self.layout;
        if code.len() != l.code_bytes {
            return Err(Error::LengthMismatch {
                what: "code",
                expected: l.code_bytes,
                found: code.len(),
            });
        }
        if aux.len() != l.aux {
            return Err(Error::LengthMismatch {
                what: "code side values",
                expected: l.aux,
                found: aux.len(),
            });
        }
        if self.ids.len() >= MAX_CHUNK_ROWS {
            return Err(crate::error::invalid(
                "chunk",
                format!("full ({MAX_CHUNK_ROWS} entries)"),
            ));
        }
        self.ids.push(id);
        self.codes.extend_from_slice(code);
        self.aux.extend_from_slice(aux);
        Ok(())
    }

    /// Remove the entry with `id` (the first, if duplicated). Returns
    /// whether one was removed. The last entry moves into the hole.
    pub fn remove(&mut self, id: i64) -> bool {
        match self.ids.iter().position(|&x| x == id) {
            Some(i) => {
                self.remove_at(i);
                true
            }
            None => false,
        }
    }

    /// Keep only entries whose id satisfies `keep`; returns how many were
    /// removed.
    pub fn retain(&mut self, mut keep: impl FnMut(i64) -> bool) -> usize {
        let mut removed = 0;
        let mut i = 0;
        while i < self.ids.len() {
            if keep(self.ids[i]) {
                i += 1;
            } else {
                self.remove_at(i);
                removed += 1;
            }
        }
        removed
    }

    fn remove_at(&mut self, i: usize) {
        let l = self.layout;
        let last = self.ids.len() - 1;
        self.ids.swap_remove(i);
        for k in 0..l.aux {
            self.aux[i * l.aux + k] = self.aux[last * l.aux + k];
        }
        self.aux.truncate(last * l.aux);
        let cb = l.code_bytes;
        self.codes.copy_within(last * cb..(last + 1) * cb, i * cb);
        self.codes.truncate(last * cb);
    }
}

/// Where vector `i` of `n` PQ codes of `m` bytes starts in the blocked
/// code region, and the stride between its sub-spaces.
#[inline]
pub(crate) fn pq_pos(n: usize, m: usize, i: usize) -> (usize, usize) {
    let full = n / BLOCK;
    if i < full * BLOCK {
        ((i / BLOCK) * BLOCK * m + i % BLOCK, BLOCK)
    } else {
        (full * BLOCK * m + (i - full * BLOCK), n - full * BLOCK)
    }
}
