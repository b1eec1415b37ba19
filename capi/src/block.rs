//! One-to-many: a query against a row-major block of `n` vectors (distances
//! into a caller buffer, or the k nearest with a bounded heap).
//!
//! A block is `block_len` elements holding `n = block_len / dim` rows; a
//! `block_len` that is not a multiple of `dim` is a length mismatch. Distances
//! follow `pocketvec_metric`: smaller is nearer (1 - cosine, Euclidean, -dot).
use kernels::{f16, Kernels, Metric, TopK};

use crate::ffi::{
    disjoint, guard, input, metric, output, put, span, PocketvecStatus, PocketvecStatus as Status,
};

/// Distance metric for the one-to-many and top-k functions (smaller = nearer).
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PocketvecMetric {
    /// 1 - cosine similarity.
    Cosine = 0,
    /// Euclidean distance (not squared).
    L2 = 1,
    /// Negative inner product.
    Dot = 2,
}

/// Rows per chunk when the top-k functions compute distances (bounds scratch memory).
const CHUNK_ROWS: usize = 1024;

/// Number of rows in a block of `block_len` elements of dimension `dim`.
fn rows(block_len: usize, dim: usize) -> Result<usize, Status> {
    if !block_len.is_multiple_of(dim) {
        return Err(Status::LengthMismatch);
    }
    Ok(block_len / dim)
}

/// The checked precomputed norms: NULL means none, else exactly `n` values.
///
/// # Safety
/// `norms`, when non-NULL, must hold `norms_len` readable floats.
unsafe fn norms_arg<'a>(
    norms: *const f32,
    norms_len: usize,
    n: usize,
) -> Result<Option<&'a [f32]>, Status> {
    if norms.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from this function's contract.
    let s = unsafe { input(norms, norms_len)? };
    if s.len() != n {
        return Err(Status::LengthMismatch);
    }
    Ok(Some(s))
}

/// Shared body of the typed `distances_*` functions.
///
/// # Safety
/// Every non-NULL pointer must hold its stated number of elements.
#[allow(clippy::too_many_arguments)]
unsafe fn distances<T>(
    metric_arg: i32,
    query: *const T,
    dim: usize,
    block: *const T,
    block_len: usize,
    norms: *const f32,
    norms_len: usize,
    out: *mut f32,
    out_len: usize,
    f: impl FnOnce(
        Kernels,
        Metric,
        &[T],
        &[T],
        Option<&[f32]>,
        &mut [f32],
    ) -> Result<(), kernels::Error>,
) -> PocketvecStatus {
    guard(|| {
        let m = metric(metric_arg)?;
        // SAFETY: forwarded from this function's contract.
        let (q, b) = unsafe { (input(query, dim)?, input(block, block_len)?) };
        let n = rows(b.len(), q.len())?;
        // SAFETY: forwarded from this function's contract.
        let nr = unsafe { norms_arg(norms, norms_len, n)? };
        // SAFETY: forwarded from this function's contract.
        let o = unsafe { output(out, out_len)? };
        if o.len() != n {
            return Err(Status::LengthMismatch);
        }
        let mut ins = vec![span(q.as_ptr(), q.len()), span(b.as_ptr(), b.len())];
        if let Some(nr) = nr {
            ins.push(span(nr.as_ptr(), nr.len()));
        }
        disjoint(span(o.as_ptr(), o.len()), &ins)?;
        Ok(f(Kernels::detect(), m, q, b, nr, o)?)
    })
}

/// Shared body of the `distances_*_bytes` functions (block as raw little-endian bytes, any alignment).
///
/// # Safety
/// Every non-NULL pointer must hold its stated number of elements (bytes for `block`).
#[allow(clippy::too_many_arguments)]
unsafe fn distances_bytes<T>(
    metric_arg: i32,
    query: *const T,
    dim: usize,
    block: *const u8,
    block_bytes: usize,
    norms: *const f32,
    norms_len: usize,
    out: *mut f32,
    out_len: usize,
    f: impl FnOnce(
        Kernels,
        Metric,
        &[T],
        &[u8],
        Option<&[f32]>,
        &mut [f32],
    ) -> Result<(), kernels::Error>,
) -> PocketvecStatus {
    guard(|| {
        let m = metric(metric_arg)?;
        // SAFETY: forwarded from this function's contract.
        let (q, b) = unsafe { (input(query, dim)?, input(block, block_bytes)?) };
        let row_bytes = q
            .len()
            .checked_mul(std::mem::size_of::<T>())
            .ok_or(Status::LengthOverflow)?;
        let n = rows(b.len(), row_bytes)?;
        // SAFETY: forwarded from this function's contract.
        let nr = unsafe { norms_arg(norms, norms_len, n)? };
        // SAFETY: forwarded from this function's contract.
        let o = unsafe { output(out, out_len)? };
        if o.len() != n {
            return Err(Status::LengthMismatch);
        }
        let mut ins = vec![span(q.as_ptr(), q.len()), span(b.as_ptr(), b.len())];
        if let Some(nr) = nr {
            ins.push(span(nr.as_ptr(), nr.len()));
        }
        disjoint(span(o.as_ptr(), o.len()), &ins)?;
        Ok(f(Kernels::detect(), m, q, b, nr, o)?)
    })
}

/// Distances from an f32 query (`dim` values) to each row of an f32 block; `norms` (may be NULL) are precomputed row norms for cosine.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_distances_f32(
    metric: i32,
    query: *const f32,
    dim: usize,
    block: *const f32,
    block_len: usize,
    norms: *const f32,
    norms_len: usize,
    out: *mut f32,
    out_len: usize,
) -> PocketvecStatus {
    // SAFETY: the header's contract: each pointer holds its stated number of elements.
    unsafe {
        distances(
            metric,
            query,
            dim,
            block,
            block_len,
            norms,
            norms_len,
            out,
            out_len,
            |k, m, q, b, nr, o| k.distances_f32(m, q, b, nr, o),
        )
    }
}

/// Distances from an f16 query to each row of an f16 block (`uint16_t` bit patterns); `norms` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_distances_f16(
    metric: i32,
    query: *const u16,
    dim: usize,
    block: *const u16,
    block_len: usize,
    norms: *const f32,
    norms_len: usize,
    out: *mut f32,
    out_len: usize,
) -> PocketvecStatus {
    // SAFETY: the header's contract: each pointer holds its stated number of elements.
    unsafe {
        distances(
            metric,
            query.cast::<f16>(),
            dim,
            block.cast::<f16>(),
            block_len,
            norms,
            norms_len,
            out,
            out_len,
            |k, m, q, b, nr, o| k.distances_f16(m, q, b, nr, o),
        )
    }
}

/// Distances from an int8 query to each row of an int8 block; `norms` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_distances_i8(
    metric: i32,
    query: *const i8,
    dim: usize,
    block: *const i8,
    block_len: usize,
    norms: *const f32,
    norms_len: usize,
    out: *mut f32,
    out_len: usize,
) -> PocketvecStatus {
    // SAFETY: the header's contract: each pointer holds its stated number of elements.
    unsafe {
        distances(
            metric,
            query,
            dim,
            block,
            block_len,
            norms,
            norms_len,
            out,
            out_len,
            |k, m, q, b, nr, o| k.distances_i8(m, q, b, nr, o),
        )
    }
}

/// Distances from an f32 query to each row of a block given as little-endian f32 bytes at any alignment (e.g. a SQLite BLOB).
#[no_mangle]
pub unsafe extern "C" fn pocketvec_distances_f32_bytes(
    metric: i32,
    query: *const f32,
    dim: usize,
    block: *const u8,
    block_bytes: usize,
    norms: *const f32,
    norms_len: usize,
    out: *mut f32,
    out_len: usize,
) -> PocketvecStatus {
    // SAFETY: the header's contract: each pointer holds its stated number of elements.
    unsafe {
        distances_bytes(
            metric,
            query,
            dim,
            block,
            block_bytes,
            norms,
            norms_len,
            out,
            out_len,
            |k, m, q, b, nr, o| k.distances_f32_bytes(m, q, b, nr, o),
        )
    }
}

/// Distances from an f16 query to each row of a block given as little-endian f16 bytes at any alignment.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_distances_f16_bytes(
    metric: i32,
    query: *const u16,
    dim: usize,
    block: *const u8,
    block_bytes: usize,
    norms: *const f32,
    norms_len: usize,
    out: *mut f32,
    out_len: usize,
) -> PocketvecStatus {
    // SAFETY: the header's contract: each pointer holds its stated number of elements.
    unsafe {
        distances_bytes(
            metric,
            query.cast::<f16>(),
            dim,
            block,
            block_bytes,
            norms,
            norms_len,
            out,
            out_len,
            |k, m, q, b, nr, o| k.distances_f16_bytes(m, q, b, nr, o),
        )
    }
}

/// Checked top-k outputs: `out_ids`/`out_dists` with room for `min(k, n)` entries and `out_count`.
struct TopKOut<'a> {
    ids: &'a mut [i64],
    dists: &'a mut [f32],
    count: *mut usize,
}

/// Checks the output side of a top-k call against `n` candidates.
///
/// # Safety
/// `out_ids`/`out_dists` must hold `out_cap` writable elements, `out_count` one.
unsafe fn topk_out<'a>(
    k: usize,
    n: usize,
    out_ids: *mut i64,
    out_dists: *mut f32,
    out_cap: usize,
    out_count: *mut usize,
    inputs: &[(usize, usize)],
) -> Result<TopKOut<'a>, Status> {
    if k == 0 {
        return Err(Status::ZeroLength);
    }
    if out_count.is_null() {
        return Err(Status::NullPointer);
    }
    // SAFETY: forwarded from this function's contract.
    let (ids, dists) = unsafe { (output(out_ids, out_cap)?, output(out_dists, out_cap)?) };
    if out_cap < k.min(n) {
        return Err(Status::BufferTooSmall);
    }
    let (si, sd, sc) = (
        span(ids.as_ptr(), ids.len()),
        span(dists.as_ptr(), dists.len()),
        span(out_count, 1),
    );
    disjoint(si, &[sd, sc])?;
    disjoint(sd, &[sc])?;
    for o in [si, sd, sc] {
        disjoint(o, inputs)?;
    }
    Ok(TopKOut {
        ids,
        dists,
        count: out_count,
    })
}

impl TopKOut<'_> {
    /// Writes the selection, nearest first, and its size.
    fn write(self, top: TopK) -> Result<(), Status> {
        let sorted = top.into_sorted_vec();
        for (i, (id, d)) in sorted.iter().enumerate() {
            self.ids[i] = *id;
            self.dists[i] = *d;
        }
        // SAFETY: `count` was checked non-NULL by `topk_out`; the caller guarantees it is writable.
        unsafe { put(self.count, sorted.len()) }
    }
}

/// Shared body of the typed `top_k_*` functions.
///
/// # Safety
/// Every non-NULL pointer must hold its stated number of elements.
#[allow(clippy::too_many_arguments)]
unsafe fn top_k_block<T>(
    metric_arg: i32,
    query: *const T,
    dim: usize,
    block: *const T,
    block_len: usize,
    ids: *const i64,
    ids_len: usize,
    k: usize,
    out_ids: *mut i64,
    out_dists: *mut f32,
    out_cap: usize,
    out_count: *mut usize,
    f: impl Fn(Kernels, Metric, &[T], &[T], &mut [f32]) -> Result<(), kernels::Error>,
) -> PocketvecStatus {
    guard(|| {
        let m = metric(metric_arg)?;
        // SAFETY: forwarded from this function's contract.
        let (q, b) = unsafe { (input(query, dim)?, input(block, block_len)?) };
        let n = rows(b.len(), q.len())?;
        let id_slice = if ids.is_null() {
            None
        } else {
            // SAFETY: forwarded from this function's contract.
            let s = unsafe { input(ids, ids_len)? };
            if s.len() != n {
                return Err(Status::LengthMismatch);
            }
            Some(s)
        };
        let mut ins = vec![span(q.as_ptr(), q.len()), span(b.as_ptr(), b.len())];
        if let Some(s) = id_slice {
            ins.push(span(s.as_ptr(), s.len()));
        }
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { topk_out(k, n, out_ids, out_dists, out_cap, out_count, &ins)? };
        let kern = Kernels::detect();
        let mut top = TopK::new(k)?;
        let mut scratch = vec![0.0f32; n.min(CHUNK_ROWS)];
        for (c, rows_chunk) in b.chunks(CHUNK_ROWS.saturating_mul(q.len())).enumerate() {
            let first = c * CHUNK_ROWS;
            let dists = &mut scratch[..rows_chunk.len() / q.len()];
            f(kern, m, q, rows_chunk, dists)?;
            for (j, &d) in dists.iter().enumerate() {
                let row = first + j;
                let id = match id_slice {
                    Some(s) => s[row],
                    // `row < n <= isize::MAX`, so it fits in an i64.
                    None => row as i64,
                };
                top.push(id, d);
            }
        }
        out.write(top)
    })
}

/// The k nearest rows of an f32 block to an f32 query, nearest first; ids are `ids[row]` (or the row index when `ids` is NULL).
#[no_mangle]
pub unsafe extern "C" fn pocketvec_top_k_f32(
    metric: i32,
    query: *const f32,
    dim: usize,
    block: *const f32,
    block_len: usize,
    ids: *const i64,
    ids_len: usize,
    k: usize,
    out_ids: *mut i64,
    out_dists: *mut f32,
    out_cap: usize,
    out_count: *mut usize,
) -> PocketvecStatus {
    // SAFETY: the header's contract: each pointer holds its stated number of elements.
    unsafe {
        top_k_block(
            metric,
            query,
            dim,
            block,
            block_len,
            ids,
            ids_len,
            k,
            out_ids,
            out_dists,
            out_cap,
            out_count,
            |kern, m, q, b, o| kern.distances_f32(m, q, b, None, o),
        )
    }
}

/// The k nearest rows of an f16 block to an f16 query (`uint16_t` bit patterns), nearest first.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_top_k_f16(
    metric: i32,
    query: *const u16,
    dim: usize,
    block: *const u16,
    block_len: usize,
    ids: *const i64,
    ids_len: usize,
    k: usize,
    out_ids: *mut i64,
    out_dists: *mut f32,
    out_cap: usize,
    out_count: *mut usize,
) -> PocketvecStatus {
    // SAFETY: the header's contract: each pointer holds its stated number of elements.
    unsafe {
        top_k_block(
            metric,
            query.cast::<f16>(),
            dim,
            block.cast::<f16>(),
            block_len,
            ids,
            ids_len,
            k,
            out_ids,
            out_dists,
            out_cap,
            out_count,
            |kern, m, q, b, o| kern.distances_f16(m, q, b, None, o),
        )
    }
}

/// The k nearest rows of an int8 block to an int8 query, nearest first.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_top_k_i8(
    metric: i32,
    query: *const i8,
    dim: usize,
    block: *const i8,
    block_len: usize,
    ids: *const i64,
    ids_len: usize,
    k: usize,
    out_ids: *mut i64,
    out_dists: *mut f32,
    out_cap: usize,
    out_count: *mut usize,
) -> PocketvecStatus {
    // SAFETY: the header's contract: each pointer holds its stated number of elements.
    unsafe {
        top_k_block(
            metric,
            query,
            dim,
            block,
            block_len,
            ids,
            ids_len,
            k,
            out_ids,
            out_dists,
            out_cap,
            out_count,
            |kern, m, q, b, o| kern.distances_i8(m, q, b, None, o),
        )
    }
}

/// The k smallest of `n` precomputed distances, nearest first (ties by id, NaN last); ids are `ids[i]` or `i` when `ids` is NULL.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_top_k(
    ids: *const i64,
    dists: *const f32,
    n: usize,
    k: usize,
    out_ids: *mut i64,
    out_dists: *mut f32,
    out_cap: usize,
    out_count: *mut usize,
) -> PocketvecStatus {
    guard(|| {
        // SAFETY: the header's contract: `dists` (and `ids` when non-NULL) hold `n` elements.
        let d = unsafe { input(dists, n)? };
        let id_slice = if ids.is_null() {
            None
        } else {
            // SAFETY: as above.
            Some(unsafe { input(ids, n)? })
        };
        let mut ins = vec![span(d.as_ptr(), d.len())];
        if let Some(s) = id_slice {
            ins.push(span(s.as_ptr(), s.len()));
        }
        // SAFETY: the header's contract for the outputs.
        let out = unsafe { topk_out(k, n, out_ids, out_dists, out_cap, out_count, &ins)? };
        let mut top = TopK::new(k)?;
        for (i, &dist) in d.iter().enumerate() {
            top.push(id_slice.map_or(i as i64, |s| s[i]), dist);
        }
        out.write(top)
    })
}
