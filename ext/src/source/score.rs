//! Scoring stored rows against one query or a batch, on one thread or
//! several. No SQLite here: callers hand over blocks of contiguous rows
//! (a chunk from the RAM cache, or one just read with incremental BLOB I/O).
//!
//! Every exact distance the index returns comes from [`score_block`], for
//! chunk rows and for rows read one by one from the base table alike, so a
//! row scores the same wherever it was read from. For cosine the stored
//! per-row norm ([`row_norm`]) replaces the second sum of squares: the scan
//! then does one multiply-add per element.

use std::collections::HashSet;

use kernels::{f16, Kernels, Metric};

use super::{Collector, RowidFilter};
use crate::vector::{ElemType, Vector};

/// The L2 norm stored beside a row (used by cosine).
pub fn row_norm(k: &Kernels, elem: ElemType, row: &[u8]) -> f32 {
    match elem {
        ElemType::F32 => {
            let v: Vec<f32> = row
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            k.norm_f32(&v)
        }
        ElemType::F16 => {
            let v: Vec<f16> = row
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]))
                .collect();
            k.norm_f16(&v)
        }
        ElemType::Int8 => k.norm_i8(kernels::bytes::i8_from_bytes(row)),
    }
}

/// Whether the metric reads stored norms.
pub fn uses_norms(metric: Metric) -> bool {
    metric == Metric::Cosine
}

/// Distances from `q` to the `out.len()` rows in `rows` (little-endian,
/// any alignment). `norms` (one per row) is used by cosine.
pub fn score_block(
    k: &Kernels,
    metric: Metric,
    q: &Vector,
    rows: &[u8],
    norms: Option<&[f32]>,
    out: &mut [f32],
) -> Result<(), String> {
    let norms = if uses_norms(metric) { norms } else { None };
    let r = match q {
        Vector::F32(q) => k.distances_f32_bytes(metric, q, rows, norms, out),
        Vector::F16(q) => k.distances_f16_bytes(metric, q, rows, norms, out),
        Vector::I8(q) => k.distances_i8(metric, q, kernels::bytes::i8_from_bytes(rows), norms, out),
    };
    r.map_err(|e| format!("pocketvec internal error: {e}"))
}

/// The distances from each of `queries` to one row read on its own (from
/// the base table) into `out`: the row's norm is computed once, as the
/// stored one is, so the row scores as it would in a chunk.
pub fn row_distances(
    k: &Kernels,
    metric: Metric,
    elem: ElemType,
    queries: &[Vector],
    row: &[u8],
    out: &mut [f32],
) -> Result<(), String> {
    let n = [if uses_norms(metric) {
        row_norm(k, elem, row)
    } else {
        0.0
    }];
    for (q, d) in queries.iter().zip(out.iter_mut()) {
        score_block(k, metric, q, row, Some(&n), std::slice::from_mut(d))?;
    }
    Ok(())
}

/// Which rows a scan may admit: the query's rowid filter minus rows that
/// are scored elsewhere (pending changes read from the base table) or known
/// to be gone.
pub struct Admit<'a> {
    pub rowids: &'a RowidFilter,
    pub exclude: Option<&'a HashSet<i64>>,
}

impl Admit<'_> {
    /// Nothing to check per row.
    pub fn all(&self) -> bool {
        self.rowids.set.is_none()
            && self.rowids.lo == i64::MIN
            && self.rowids.hi == i64::MAX
            && self.exclude.is_none_or(|e| e.is_empty())
    }
    #[inline]
    pub fn admits(&self, id: i64) -> bool {
        if id < self.rowids.lo || id > self.rowids.hi {
            return false;
        }
        if let Some(s) = &self.rowids.set {
            if s.binary_search(&id).is_err() {
                return false;
            }
        }
        !self.exclude.is_some_and(|e| e.contains(&id))
    }
}

/// One block of `ids.len()` contiguous rows.
#[derive(Copy, Clone)]
pub struct Block<'a> {
    pub ids: &'a [i64],
    pub rows: &'a [u8],
    pub norms: &'a [f32],
}

/// Scores a block against every query, feeding `outs[i]` for query `i`.
pub fn scan_block(
    k: &Kernels,
    metric: Metric,
    queries: &[Vector],
    b: Block<'_>,
    admit: &Admit<'_>,
    outs: &mut [Collector],
    buf: &mut Vec<f32>,
) -> Result<(), String> {
    let n = b.ids.len();
    if n == 0 {
        return Ok(());
    }
    buf.resize(n, 0.0);
    let norms = (b.norms.len() == n).then_some(b.norms);
    let all = admit.all();
    for (q, out) in queries.iter().zip(outs.iter_mut()) {
        score_block(k, metric, q, b.rows, norms, &mut buf[..n])?;
        if all {
            for (&id, &d) in b.ids.iter().zip(buf.iter()) {
                out.push(id, d);
            }
        } else {
            for (&id, &d) in b.ids.iter().zip(buf.iter()) {
                if admit.admits(id) {
                    out.push(id, d);
                }
            }
        }
    }
    Ok(())
}

/// Scores `blocks` on `threads` threads (pure compute: the blocks are
/// already in memory) and merges the per-thread results into `outs`.
pub fn scan_parallel(
    k: &Kernels,
    metric: Metric,
    queries: &[Vector],
    blocks: &[Block<'_>],
    admit: &Admit<'_>,
    outs: &mut [Collector],
    threads: usize,
) -> Result<(), String> {
    run_parallel(
        blocks,
        |b| b.ids.len(),
        outs,
        threads,
        Collector::empty_like,
        |part, outs| {
            let mut buf = Vec::new();
            for b in part {
                scan_block(k, metric, queries, *b, admit, outs, &mut buf)?;
            }
            Ok(())
        },
        Collector::merge,
    )
}

/// Runs `run` over contiguous ranges of `blocks` of about equal row counts
/// (`rows` per block) on up to `threads` threads: the calling thread takes
/// the first range into `states`, every other thread a range into fresh
/// states (`fresh`), merged into `states` at the end (`merge`). Only pure
/// compute leaves the calling thread.
pub fn run_parallel<B: Sync, S: Send>(
    blocks: &[B],
    rows: impl Fn(&B) -> usize,
    states: &mut [S],
    threads: usize,
    fresh: impl Fn(&S) -> S,
    run: impl Fn(&[B], &mut [S]) -> Result<(), String> + Sync,
    merge: impl Fn(&mut S, S),
) -> Result<(), String> {
    let threads = threads.clamp(1, blocks.len().max(1));
    if threads == 1 {
        return run(blocks, states);
    }
    // Contiguous ranges of blocks of about equal row counts.
    let total: usize = blocks.iter().map(&rows).sum();
    let per = total.div_ceil(threads).max(1);
    let mut ranges = Vec::with_capacity(threads);
    let (mut start, mut acc) = (0, 0);
    for (i, b) in blocks.iter().enumerate() {
        acc += rows(b);
        if acc >= per && ranges.len() + 1 < threads {
            ranges.push(start..i + 1);
            start = i + 1;
            acc = 0;
        }
    }
    if start < blocks.len() {
        ranges.push(start..blocks.len());
    }
    let run = &run;
    let results: Vec<Result<Vec<S>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = ranges
            .iter()
            .skip(1)
            .map(|r| {
                let part = &blocks[r.clone()];
                let mut mine: Vec<S> = states.iter().map(&fresh).collect();
                s.spawn(move || run(part, &mut mine).map(|()| mine))
            })
            .collect();
        // The calling thread takes the first range.
        let first = match ranges.first() {
            Some(r) => run(&blocks[r.clone()], states).map(|()| Vec::new()),
            None => Ok(Vec::new()),
        };
        let mut all = vec![first];
        all.extend(handles.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|_| Err("pocketvec internal error: scan thread panicked".into()))
        }));
        all
    });
    for r in results {
        for (st, part) in states.iter_mut().zip(r?) {
            merge(st, part);
        }
    }
    Ok(())
}

/// Number of threads `threads = 0` means: the machine's parallelism.
pub fn resolve_threads(threads: usize) -> usize {
    if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::DistanceFilter;

    fn rows_f32(n: usize, d: usize, seed: u32) -> Vec<f32> {
        (0..n * d)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Parallel and batched scans return what one query on one thread does.
    #[test]
    fn parallel_and_batch_match_serial() {
        let k = Kernels::detect();
        let d = 24;
        let data = rows_f32(1000, d, 7);
        let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        let ids: Vec<i64> = (0..1000).map(|i| i * 3 + 1).collect();
        let norms: Vec<f32> = data.chunks(d).map(|r| k.norm_f32(r)).collect();
        let blocks: Vec<Block<'_>> = (0..10)
            .map(|c| Block {
                ids: &ids[c * 100..(c + 1) * 100],
                rows: &bytes[c * 100 * d * 4..(c + 1) * 100 * d * 4],
                norms: &norms[c * 100..(c + 1) * 100],
            })
            .collect();
        let queries: Vec<Vector> = (0..3)
            .map(|s| Vector::F32(rows_f32(1, d, 100 + s)))
            .collect();
        let rf = RowidFilter::default();
        let admit = Admit {
            rowids: &rf,
            exclude: None,
        };
        for metric in [Metric::Cosine, Metric::L2, Metric::Dot] {
            let serial: Vec<Vec<(i64, f32)>> = queries
                .iter()
                .map(|q| {
                    let mut out = [Collector::new(Some(7), DistanceFilter::default())];
                    scan_parallel(
                        &k,
                        metric,
                        std::slice::from_ref(q),
                        &blocks,
                        &admit,
                        &mut out,
                        1,
                    )
                    .unwrap();
                    let [o] = out;
                    o.into_sorted_vec()
                })
                .collect();
            for threads in [2, 3, 16] {
                let mut outs: Vec<Collector> = (0..3)
                    .map(|_| Collector::new(Some(7), DistanceFilter::default()))
                    .collect();
                scan_parallel(&k, metric, &queries, &blocks, &admit, &mut outs, threads).unwrap();
                let got: Vec<Vec<(i64, f32)>> =
                    outs.into_iter().map(|o| o.into_sorted_vec()).collect();
                assert_eq!(got, serial, "{metric:?} threads={threads}");
            }
        }
    }
}
