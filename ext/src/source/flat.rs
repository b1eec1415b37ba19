//! Flat storage: every indexed row in fixed-capacity chunks of contiguous
//! rows, in `X_chunks(id, data)`: one BLOB per chunk holding three regions,
//! `cap` rowids (i64), `cap` norms (f32, cosine only), `cap` vectors.
//!
//! Chunk `c` holds positions `c·cap .. c·cap + cap`; every chunk is full
//! except the last, so `rows` (kept in `X_info`) says how many slots of each
//! chunk are used. The BLOB is allocated at full capacity
//! (zero-filled), so single rows are written in place with incremental BLOB
//! I/O (`sqlite3_blob_write`), touching one or two pages instead of
//! rewriting the chunk. One BLOB (one handle) rather than three columns: a
//! write through one handle makes SQLite save every other cursor on the
//! table, and a saved incremental-BLOB cursor forgets its overflow-page
//! list and walks the chain from the start again on its next access. A deleted row is replaced by the last
//! row (swap-remove), which keeps the chunks dense; `X_map(id, pos)` finds
//! a row's position. New chunks are assembled in memory and inserted whole.
//!
//! [`Cache`] is a per-connection RAM copy of the chunks, validated by the
//! generation token (see `source/index.rs`), and patched by the same
//! operations when this connection writes.

use std::collections::HashMap;

use sqlite3ext_sys as sys;

use kernels::{f16, Kernels};

use super::score::Block;
use super::screen;
use super::shadow::Names;
use crate::api::{quote_ident, Blob, SqlError, Stmt};
use crate::vector::ElemType;

/// Shape of one chunk.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub elem: ElemType,
    pub dim: usize,
    /// Rows per chunk.
    pub cap: usize,
    /// Whether a norm is stored per row (cosine).
    pub norms: bool,
}

impl Layout {
    pub fn row_bytes(&self) -> usize {
        self.dim * self.elem.size()
    }
    pub fn norm_bytes(&self) -> usize {
        if self.norms {
            4
        } else {
            0
        }
    }
    /// Stored bytes per row: rowid + norm + vector.
    pub fn slot_bytes(&self) -> usize {
        8 + self.norm_bytes() + self.row_bytes()
    }
    /// Chunk id and slot of a position.
    pub fn locate(&self, pos: usize) -> (i64, usize) {
        ((pos / self.cap) as i64, pos % self.cap)
    }
    /// Chunks holding `rows` rows.
    pub fn chunks(&self, rows: usize) -> usize {
        rows.div_ceil(self.cap)
    }
    /// Rows used in chunk `c` of a store with `rows` rows.
    pub fn used(&self, c: usize, rows: usize) -> usize {
        rows.saturating_sub(c * self.cap).min(self.cap)
    }
}

impl Layout {
    /// Byte offset of the norms region in a chunk BLOB.
    pub fn norms_at(&self) -> usize {
        self.cap * 8
    }
    /// Byte offset of the vectors region.
    pub fn vectors_at(&self) -> usize {
        self.cap * (8 + self.norm_bytes())
    }
    /// Size of a chunk BLOB.
    pub fn chunk_bytes(&self) -> usize {
        self.cap * self.slot_bytes()
    }
}

// ---------------------------------------------------------------------------
// RAM cache

/// One cached chunk: its used rows only. A full cache fills `norms` and
/// `data`; a compact one (f32 tables, see [`screen`]) fills `s16`, `xn` and
/// `rho` instead.
#[derive(Default)]
struct CChunk {
    ids: Vec<i64>,
    norms: Vec<f32>,
    /// Row bytes, 8-byte aligned storage.
    data: Vec<u64>,
    /// Compact: unit vectors in f16.
    s16: Vec<f16>,
    /// Compact: row norms.
    xn: Vec<f64>,
    /// Compact: rounding-error bounds, and one at least as large as each.
    rho: Vec<f32>,
    rho_max: f32,
}

impl CChunk {
    fn bytes(&self) -> usize {
        self.ids.capacity() * 8
            + self.norms.capacity() * 4
            + self.data.capacity() * 8
            + self.s16.capacity() * 2
            + self.xn.capacity() * 8
            + self.rho.capacity() * 4
    }
    fn rows(&self) -> &[u8] {
        bytemuck::cast_slice(&self.data)
    }
    fn rows_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.data)
    }
}

/// A RAM copy of the chunks as of generation `token`: the stored rows
/// themselves (full), or for an f32 table their compact form (see
/// [`screen`]), about half the bytes.
pub struct Cache {
    pub token: i64,
    pub rows: usize,
    layout: Layout,
    chunks: Vec<CChunk>,
    /// Set for a compact cache: the kernels that encode rows.
    compact: Option<Kernels>,
    tmp: screen::Scratch,
}

impl Cache {
    pub fn new(layout: Layout, token: i64) -> Cache {
        Cache {
            token,
            rows: 0,
            layout,
            chunks: Vec::new(),
            compact: None,
            tmp: screen::Scratch::default(),
        }
    }
    /// A compact cache (f32 layouts only).
    pub fn new_compact(layout: Layout, token: i64, k: Kernels) -> Cache {
        debug_assert_eq!(layout.elem, ElemType::F32);
        Cache {
            compact: Some(k),
            ..Cache::new(layout, token)
        }
    }
    pub fn layout(&self) -> Layout {
        self.layout
    }
    /// Whether rows are held in compact form (no row bytes to read back).
    pub fn is_compact(&self) -> bool {
        self.compact.is_some()
    }
    /// The cached chunks as screening blocks (compact caches).
    pub fn screen_blocks(&self) -> Vec<screen::Block<'_>> {
        debug_assert!(self.is_compact());
        self.chunks
            .iter()
            .map(|c| screen::Block {
                ids: &c.ids,
                rows: &c.s16,
                norms: &c.xn,
                rho: &c.rho,
                rho_max: c.rho_max,
            })
            .collect()
    }
    /// Encodes `row` into slot `s` of compact chunk `c` (which holds at
    /// least `s + 1` slots).
    fn encode(&mut self, c: usize, s: usize, row: &[u8]) {
        let k = self.compact.expect("compact cache");
        let d = self.layout.dim;
        let ch = &mut self.chunks[c];
        let e = screen::encode_row(&k, row, &mut self.tmp, &mut ch.s16[s * d..(s + 1) * d]);
        ch.xn[s] = e.norm;
        ch.rho[s] = e.rho;
        ch.rho_max = ch.rho_max.max(e.rho);
    }
    /// Appends the rows of `b` (one chunk read from storage) in compact
    /// form, reusing `recycled`'s buffers when given.
    pub fn append_compact(&mut self, b: Block<'_>, recycled: Option<Recycled>) {
        let d = self.layout.dim;
        let n = b.ids.len();
        let mut ch = recycled.map_or_else(CChunk::default, |r| r.0);
        ch.ids.clear();
        ch.ids.extend_from_slice(b.ids);
        // A full cache's buffers (after a switch of mode) are dropped.
        ch.norms = Vec::new();
        ch.data = Vec::new();
        ch.s16.resize(n * d, f16::ZERO);
        ch.xn.resize(n, 0.0);
        ch.rho.resize(n, 0.0);
        ch.rho_max = 0.0;
        self.chunks.push(ch);
        let c = self.chunks.len() - 1;
        let rb = self.layout.row_bytes();
        for s in 0..n {
            self.encode(c, s, &b.rows[s * rb..(s + 1) * rb]);
        }
        self.rows += n;
    }
    /// Heap bytes held (capacities, not lengths).
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(CChunk::bytes).sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<CChunk>()
    }
    /// The cached chunks as scan blocks.
    pub fn blocks(&self) -> Vec<Block<'_>> {
        let rb = self.layout.row_bytes();
        self.chunks
            .iter()
            .map(|c| Block {
                ids: &c.ids,
                rows: &c.rows()[..c.ids.len() * rb],
                norms: &c.norms,
            })
            .collect()
    }
    fn slot(&self, pos: usize) -> (i64, &[u8], f32) {
        debug_assert!(!self.is_compact());
        let (c, s) = self.layout.locate(pos);
        let ch = &self.chunks[c as usize];
        let rb = self.layout.row_bytes();
        let norm = if self.layout.norms { ch.norms[s] } else { 0.0 };
        (ch.ids[s], &ch.rows()[s * rb..(s + 1) * rb], norm)
    }
    fn set(&mut self, pos: usize, id: i64, row: &[u8], norm: f32) {
        let (c, s) = self.layout.locate(pos);
        if self.is_compact() {
            self.chunks[c as usize].ids[s] = id;
            self.encode(c as usize, s, row);
            return;
        }
        let rb = self.layout.row_bytes();
        let norms = self.layout.norms;
        let ch = &mut self.chunks[c as usize];
        ch.ids[s] = id;
        if norms {
            ch.norms[s] = norm;
        }
        ch.rows_mut()[s * rb..(s + 1) * rb].copy_from_slice(row);
    }
    fn push(&mut self, id: i64, row: &[u8], norm: f32) {
        let (c, s) = self.layout.locate(self.rows);
        if s == 0 {
            self.chunks.push(CChunk::default());
        }
        let rb = self.layout.row_bytes();
        let cap = self.layout.cap;
        let norms = self.layout.norms;
        let d = self.layout.dim;
        let compact = self.is_compact();
        let ch = &mut self.chunks[c as usize];
        // Grow by about 1/16 (at least 16 rows, at most to capacity) so the
        // cache stays within a few percent of the stored bytes.
        if ch.ids.len() == ch.ids.capacity() {
            let add = (ch.ids.len() / 16).max(16).min(cap - ch.ids.len()).max(1);
            ch.ids.reserve_exact(add);
            if compact {
                ch.s16.reserve_exact(add * d);
                ch.xn.reserve_exact(add);
                ch.rho.reserve_exact(add);
            } else {
                if norms {
                    ch.norms.reserve_exact(add);
                }
                let words = ((ch.ids.len() + add) * rb).div_ceil(8);
                ch.data.reserve_exact(words.saturating_sub(ch.data.len()));
            }
        }
        if compact {
            ch.ids.push(id);
            ch.s16.resize((s + 1) * d, f16::ZERO);
            ch.xn.push(0.0);
            ch.rho.push(0.0);
            self.rows += 1;
            self.encode(c as usize, s, row);
            return;
        }
        ch.ids.push(id);
        if norms {
            ch.norms.push(norm);
        }
        let words = ((s + 1) * rb).div_ceil(8);
        if ch.data.len() < words {
            ch.data.resize(words, 0);
        }
        ch.rows_mut()[s * rb..(s + 1) * rb].copy_from_slice(row);
        self.rows += 1;
    }
    fn truncate(&mut self, rows: usize) {
        let rb = self.layout.row_bytes();
        while self.rows > rows {
            let (c, s) = self.layout.locate(self.rows - 1);
            let ch = &mut self.chunks[c as usize];
            ch.ids.truncate(s);
            ch.norms.truncate(s);
            ch.data.truncate((s * rb).div_ceil(8));
            ch.s16.truncate(s * self.layout.dim);
            ch.xn.truncate(s);
            ch.rho.truncate(s);
            if s == 0 {
                self.chunks.pop();
            }
            self.rows -= 1;
        }
    }
}

// ---------------------------------------------------------------------------
// Reading chunks

/// Reads the used part of every chunk, one at a time, into reused buffers
/// (memory: one chunk), and calls `f` with each.
pub struct ChunkReader {
    layout: Layout,
    handle: Blob,
    ids: Vec<i64>,
    norms: Vec<f32>,
    data: Vec<u64>,
}

impl ChunkReader {
    /// # Safety
    /// `db` is an open connection that outlives the reader.
    pub unsafe fn new(
        db: *mut sys::sqlite3,
        n: &Names,
        layout: Layout,
        first: i64,
    ) -> Result<ChunkReader, String> {
        // SAFETY: caller guarantees db.
        let handle = unsafe { Blob::open(db, &n.schema, &n.raw("chunks"), "data", first, false) }
            .map_err(|e| corrupt(n, &format!("cannot read chunk {first}: {e}")))?;
        Ok(ChunkReader {
            layout,
            handle,
            ids: Vec::new(),
            norms: Vec::new(),
            data: Vec::new(),
        })
    }

    /// Reads `used` rows of chunk `c` into the reader's buffers.
    pub fn read(&mut self, n: &Names, c: i64, used: usize) -> Result<Block<'_>, String> {
        let rb = self.layout.row_bytes();
        let (mut ids, mut norms, mut data) = (
            std::mem::take(&mut self.ids),
            std::mem::take(&mut self.norms),
            std::mem::take(&mut self.data),
        );
        ids.resize(used, 0);
        norms.resize(if self.layout.norms { used } else { 0 }, 0.0);
        data.resize((used * rb).div_ceil(8), 0);
        let r = self.read_into(
            n,
            c,
            &mut ids,
            &mut norms,
            &mut bytemuck::cast_slice_mut::<u64, u8>(&mut data)[..used * rb],
        );
        (self.ids, self.norms, self.data) = (ids, norms, data);
        r?;
        Ok(Block {
            ids: &self.ids,
            rows: &bytemuck::cast_slice::<u64, u8>(&self.data)[..used * rb],
            norms: &self.norms,
        })
    }

    /// Reads the first `ids.len()` rows of chunk `c` straight into the
    /// given buffers (`norms` empty unless the layout stores norms).
    pub fn read_into(
        &mut self,
        n: &Names,
        c: i64,
        ids: &mut [i64],
        norms: &mut [f32],
        rows: &mut [u8],
    ) -> Result<(), String> {
        let l = self.layout;
        let h = &mut self.handle;
        h.reopen(c)
            .map_err(|e| corrupt(n, &format!("chunk {c} is missing ({e})")))?;
        if h.len() != l.chunk_bytes() {
            return Err(corrupt(n, &format!("chunk {c} has the wrong size")));
        }
        h.read(0, bytemuck::cast_slice_mut(ids))
            .map_err(|e| e.msg)?;
        if cfg!(target_endian = "big") {
            for x in ids.iter_mut() {
                *x = i64::from_le(*x);
            }
        }
        if l.norms {
            h.read(l.norms_at(), bytemuck::cast_slice_mut(norms))
                .map_err(|e| e.msg)?;
            if cfg!(target_endian = "big") {
                for x in norms.iter_mut() {
                    *x = f32::from_bits(u32::from_le(x.to_bits()));
                }
            }
        }
        h.read(l.vectors_at(), rows).map_err(|e| e.msg)?;
        Ok(())
    }
}

/// Reads chunk `c` (`used` rows) into a cache chunk and appends it. The
/// buffers of `recycled` (a stale cache's chunk) are reused when given:
/// fresh memory costs a page fault per 4 KiB on first touch, which is most
/// of the time of a load into new buffers.
pub fn load_chunk(
    r: &mut ChunkReader,
    n: &Names,
    cache: &mut Cache,
    c: usize,
    used: usize,
    recycled: Option<Recycled>,
) -> Result<(), String> {
    let l = cache.layout;
    let rb = l.row_bytes();
    let mut ch = recycled.map_or_else(CChunk::default, |r| r.0);
    // A compact cache's buffers (after a switch of mode) are dropped.
    (ch.s16, ch.xn, ch.rho) = (Vec::new(), Vec::new(), Vec::new());
    ch.ids.resize(used, 0);
    ch.norms.resize(if l.norms { used } else { 0 }, 0.0);
    ch.data.resize((used * rb).div_ceil(8), 0);
    {
        let CChunk {
            ids, norms, data, ..
        } = &mut ch;
        r.read_into(
            n,
            c as i64,
            ids,
            norms,
            &mut bytemuck::cast_slice_mut::<u64, u8>(data)[..used * rb],
        )?;
    }
    cache.chunks.push(ch);
    cache.rows += used;
    Ok(())
}

/// A chunk's buffers taken from a stale cache, for reuse.
pub struct Recycled(CChunk);

impl Cache {
    /// Takes the cache apart into reusable chunk buffers.
    pub fn recycle(self) -> Vec<Recycled> {
        self.chunks.into_iter().map(Recycled).collect()
    }
    /// The block of cached chunk `c`.
    pub fn block(&self, c: usize) -> Block<'_> {
        let ch = &self.chunks[c];
        Block {
            ids: &ch.ids,
            rows: &ch.rows()[..ch.ids.len() * self.layout.row_bytes()],
            norms: &ch.norms,
        }
    }
}

/// An SQLITE_ERROR from opening a chunk (no such row, a value that is not
/// a BLOB) means the chunk is damaged; I/O errors, BUSY and the like pass
/// through with their codes.
fn damaged(n: &Names, e: SqlError, what: &str) -> SqlError {
    if e.code & 0xff == sys::SQLITE_ERROR as std::ffi::c_int {
        corrupt(n, &format!("{what} ({})", e.msg)).into()
    } else {
        e
    }
}

pub fn corrupt(n: &Names, what: &str) -> String {
    format!(
        "pocketvec: the index of {} is damaged: {what}; run INSERT INTO {v}({v}) VALUES('rebuild')",
        quote_ident(&n.vtab),
        v = quote_ident(&n.vtab)
    )
}

// ---------------------------------------------------------------------------
// Writing chunks

/// A chunk being assembled in memory (inserted whole when full or done).
struct Staged {
    chunk: i64,
    data: Vec<u8>,
}

/// Changes flat storage inside the caller's transaction, and mirrors every
/// change into the cache if one is given.
pub struct Writer<'a> {
    db: *mut sys::sqlite3,
    n: &'a Names,
    layout: Layout,
    pub rows: usize,
    handle: Option<Blob>,
    staged: Option<Staged>,
    cache: Option<&'a mut Cache>,
    map_put: Option<Stmt>,
    map_del: Option<Stmt>,
}

impl<'a> Writer<'a> {
    /// # Safety
    /// `db` is an open connection in a transaction that outlives the writer.
    pub unsafe fn new(
        db: *mut sys::sqlite3,
        n: &'a Names,
        layout: Layout,
        rows: usize,
        cache: Option<&'a mut Cache>,
    ) -> Writer<'a> {
        Writer {
            db,
            n,
            layout,
            rows,
            handle: None,
            staged: None,
            cache,
            map_put: None,
            map_del: None,
        }
    }

    fn handle(&mut self, chunk: i64) -> Result<&mut Blob, SqlError> {
        if self.handle.is_none() {
            // SAFETY: db outlives the writer.
            self.handle = Some(
                unsafe {
                    Blob::open(
                        self.db,
                        &self.n.schema,
                        &self.n.raw("chunks"),
                        "data",
                        chunk,
                        true,
                    )
                }
                .map_err(|e| damaged(self.n, e, &format!("chunk {chunk} is unreadable")))?,
            );
        }
        let h = self.handle.as_mut().expect("just set");
        let n = self.n;
        h.reopen(chunk)
            .map_err(|e| damaged(n, e, &format!("chunk {chunk} is missing")))?;
        if h.len() != self.layout.chunk_bytes() {
            return Err(corrupt(n, &format!("chunk {chunk} has the wrong size")).into());
        }
        Ok(h)
    }

    /// Checks that the map's position `pos` of row `id` is a used slot
    /// holding `id` (a damaged map must not move other rows' data).
    fn check_slot(&mut self, pos: usize, id: i64) -> Result<(), SqlError> {
        let wrong = || {
            SqlError::from(corrupt(
                self.n,
                &format!("the map entry of row {id} is wrong"),
            ))
        };
        if pos >= self.rows {
            return Err(wrong());
        }
        let stored = if let Some(st) = self
            .staged
            .as_ref()
            .filter(|st| st.chunk == self.layout.locate(pos).0)
        {
            let s = self.layout.locate(pos).1;
            i64::from_le_bytes(st.data[s * 8..(s + 1) * 8].try_into().expect("8 bytes"))
        } else {
            self.read_slot(pos)?.0
        };
        if stored != id {
            return Err(wrong());
        }
        Ok(())
    }

    fn map_put(&mut self, id: i64, pos: usize) -> Result<(), SqlError> {
        if self.map_put.is_none() {
            // SAFETY: db outlives the writer.
            self.map_put = Some(unsafe {
                Stmt::prepare(
                    self.db,
                    &format!(
                        "INSERT OR REPLACE INTO {}(id, pos) VALUES (?1, ?2)",
                        self.n.q("map")
                    ),
                    false,
                )
            }?);
        }
        let st = self.map_put.as_mut().expect("just set");
        st.bind_i64(1, id)?;
        st.bind_i64(2, pos as i64)?;
        st.run()
    }

    fn map_del(&mut self, id: i64) -> Result<(), SqlError> {
        if self.map_del.is_none() {
            // SAFETY: db outlives the writer.
            self.map_del = Some(unsafe {
                Stmt::prepare(
                    self.db,
                    &format!("DELETE FROM {} WHERE id = ?1", self.n.q("map")),
                    false,
                )
            }?);
        }
        let st = self.map_del.as_mut().expect("just set");
        st.bind_i64(1, id)?;
        st.run()
    }

    fn flush(&mut self) -> Result<(), SqlError> {
        let Some(s) = self.staged.take() else {
            return Ok(());
        };
        // SAFETY: db outlives the writer.
        let mut st = unsafe {
            Stmt::prepare(
                self.db,
                &format!(
                    "INSERT OR REPLACE INTO {}(id, data) VALUES (?1, ?2)",
                    self.n.q("chunks")
                ),
                false,
            )
        }?;
        st.bind_i64(1, s.chunk)?;
        st.bind_blob(2, &s.data)?;
        st.run()
    }

    /// Reads the row at `pos` (from the cache when there is one).
    fn read_slot(&mut self, pos: usize) -> Result<(i64, Vec<u8>, f32), SqlError> {
        if let Some(c) = self.cache.as_ref().filter(|c| !c.is_compact()) {
            let (id, row, norm) = c.slot(pos);
            return Ok((id, row.to_vec(), norm));
        }
        let l = self.layout;
        let (c, s) = l.locate(pos);
        let rb = l.row_bytes();
        let h = self.handle(c)?;
        let mut id = [0u8; 8];
        h.read(s * 8, &mut id)?;
        let mut norm = [0u8; 4];
        if l.norms {
            h.read(l.norms_at() + s * 4, &mut norm)?;
        }
        let mut row = vec![0u8; rb];
        h.read(l.vectors_at() + s * rb, &mut row)?;
        Ok((i64::from_le_bytes(id), row, f32::from_le_bytes(norm)))
    }

    /// Overwrites the row at `pos` (an existing chunk).
    fn write_slot(&mut self, pos: usize, id: i64, row: &[u8], norm: f32) -> Result<(), SqlError> {
        let l = self.layout;
        let (c, s) = l.locate(pos);
        let rb = l.row_bytes();
        if let Some(st) = self.staged.as_mut().filter(|st| st.chunk == c) {
            st.data[s * 8..(s + 1) * 8].copy_from_slice(&id.to_le_bytes());
            if l.norms {
                let at = l.norms_at() + s * 4;
                st.data[at..at + 4].copy_from_slice(&norm.to_le_bytes());
            }
            let at = l.vectors_at() + s * rb;
            st.data[at..at + rb].copy_from_slice(row);
        } else {
            let h = self.handle(c)?;
            h.write(s * 8, &id.to_le_bytes())?;
            if l.norms {
                h.write(l.norms_at() + s * 4, &norm.to_le_bytes())?;
            }
            h.write(l.vectors_at() + s * rb, row)?;
        }
        if let Some(cache) = self.cache.as_mut() {
            cache.set(pos, id, row, norm);
        }
        Ok(())
    }

    /// Replaces the vector of the row at `pos` (same rowid).
    pub fn update(&mut self, pos: usize, id: i64, row: &[u8], norm: f32) -> Result<(), SqlError> {
        self.check_slot(pos, id)?;
        self.write_slot(pos, id, row, norm)
    }

    /// Appends a row; returns its position.
    pub fn push(&mut self, id: i64, row: &[u8], norm: f32) -> Result<usize, SqlError> {
        let pos = self.rows;
        let (c, s) = self.layout.locate(pos);
        if s == 0 {
            self.flush()?;
            self.staged = Some(Staged {
                chunk: c,
                data: vec![0; self.layout.chunk_bytes()],
            });
        }
        self.rows += 1;
        if let Some(cache) = self.cache.as_mut() {
            cache.push(id, row, norm);
            // `write_slot` below must not patch the cache a second time.
            let cache = self.cache.take();
            let r = self.write_slot(pos, id, row, norm);
            self.cache = cache;
            r?;
        } else {
            self.write_slot(pos, id, row, norm)?;
        }
        self.map_put(id, pos)?;
        Ok(pos)
    }

    /// Removes the row `id` at `pos`: the last row moves into its place.
    pub fn remove(&mut self, pos: usize, id: i64) -> Result<(), SqlError> {
        self.flush()?;
        self.check_slot(pos, id)?;
        let last = self.rows - 1;
        if pos != last {
            let (mid, row, norm) = self.read_slot(last)?;
            self.write_slot(pos, mid, &row, norm)?;
            self.map_put(mid, pos)?;
        }
        self.map_del(id)?;
        self.rows -= 1;
        if let Some(cache) = self.cache.as_mut() {
            cache.truncate(self.rows);
        }
        if self.rows % self.layout.cap == 0 {
            let c = (self.rows / self.layout.cap) as i64;
            if self.handle.as_ref().is_some_and(|h| h.row() == c) {
                self.handle = None;
            }
            // SAFETY: db outlives the writer.
            let mut st = unsafe {
                Stmt::prepare(
                    self.db,
                    &format!("DELETE FROM {} WHERE id = ?1", self.n.q("chunks")),
                    false,
                )
            }?;
            st.bind_i64(1, c)?;
            st.run()?;
        }
        Ok(())
    }

    /// Writes what is staged; the caller then stores `rows`.
    pub fn finish(mut self) -> Result<usize, SqlError> {
        self.flush()?;
        Ok(self.rows)
    }
}

/// Positions of `ids` from `X_map` (missing ids are absent).
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn positions(
    db: *mut sys::sqlite3,
    n: &Names,
    ids: &[i64],
) -> Result<HashMap<i64, i64>, String> {
    // SAFETY: caller guarantees db.
    let mut st = unsafe {
        Stmt::prepare(
            db,
            &format!("SELECT pos FROM {} WHERE id = ?1", n.q("map")),
            false,
        )
    }?;
    let mut out = HashMap::with_capacity(ids.len());
    for &id in ids {
        st.bind_i64(1, id)?;
        if st.step()? == crate::api::Step::Row {
            if st.column_type(0) != crate::api::ValueType::Integer || st.column_i64(0) < 0 {
                st.reset();
                return Err(corrupt(n, &format!("the map entry of row {id} is wrong")));
            }
            out.insert(id, st.column_i64(0));
        }
        st.reset();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_push_set_truncate() {
        let l = Layout {
            elem: ElemType::F32,
            dim: 3,
            cap: 4,
            norms: true,
        };
        let mut c = Cache::new(l, 1);
        let row = |x: f32| -> Vec<u8> {
            [x, x + 1.0, x + 2.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        };
        for i in 0..10 {
            c.push(i, &row(i as f32), i as f32);
        }
        assert_eq!(c.chunks.len(), 3);
        assert_eq!(c.slot(9).0, 9);
        c.set(2, 99, &row(99.0), 1.5);
        assert_eq!(c.slot(2), (99, &row(99.0)[..], 1.5));
        c.truncate(8);
        assert_eq!(c.chunks.len(), 2);
        assert_eq!(c.rows, 8);
        let blocks = c.blocks();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].ids, &[4, 5, 6, 7]);
        assert_eq!(blocks[1].rows.len(), 4 * 12);
        c.truncate(5);
        c.push(50, &row(50.0), 0.0);
        assert_eq!(c.blocks()[1].ids, &[4, 50]);
        // Within a few percent of the used bytes once chunks are full.
        let mut big = Cache::new(
            Layout {
                cap: 1024,
                dim: 768,
                ..l
            },
            1,
        );
        let r = vec![0u8; 768 * 4];
        for i in 0..5000 {
            big.push(i, &r, 0.0);
        }
        let used = 5000 * (768 * 4 + 8 + 4);
        assert!(
            big.bytes() as f64 <= used as f64 * 1.05,
            "{} vs {used}",
            big.bytes()
        );
    }
}
