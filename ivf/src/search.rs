//! Query-time state machine. The caller (the SQLite layer, or
//! [`MemIndex`](crate::MemIndex)) drives it:
//!
//! ```text
//! let mut s = model.searcher(&query, &SearchParams::new(k).nprobe(16))?;
//! for list in s.probe_lists().to_vec() {
//!     for blob in chunks_of(list) { s.scan_chunk(list, blob)?; }
//! }
//! let hits = s.finish_rerank(|ids, out| exact_distances(ids, out))?;
//! ```
//!
//! Scanning computes an approximate distance per entry (`base(list) +
//! side value + Σ LUT` for PQ, the int8 dot product for int8, the exact
//! kernel distance for `none`) and keeps the best `max(k, rerank)` in a
//! bounded heap; finishing re-ranks them with exact distances from the
//! caller, or returns the approximate ones.

use crate::error::{invalid, Error};
use crate::list::ListChunkRef;
use crate::model::{check_vec, i8_slice, IvfModel, ProbeScratch, QuantizerKind};
use crate::pq::{adc_scan, adc_scan_tail, AdcPath, QuantLut, BLOCK, KSUB};

use kernels::Metric;

/// Per-query knobs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SearchParams {
    /// Results wanted (≥ 1).
    pub k: usize,
    /// Lists to probe; 0 means the model's default. Clamped to `lists`.
    pub nprobe: usize,
    /// Candidates to re-rank exactly (0: no re-rank, approximate
    /// distances). Values below `k` are raised to `k`.
    pub rerank: usize,
}

impl SearchParams {
    /// `k` results, default nprobe, re-rank depth [`default_rerank`].
    pub fn new(k: usize) -> SearchParams {
        SearchParams {
            k,
            nprobe: 0,
            rerank: default_rerank(k),
        }
    }
    pub fn nprobe(mut self, nprobe: usize) -> SearchParams {
        self.nprobe = nprobe;
        self
    }
    pub fn rerank(mut self, rerank: usize) -> SearchParams {
        self.rerank = rerank;
        self
    }
}

/// Default exact re-rank depth: `max(3k, 32)` (see ARCHITECTURE.md (ivf section)).
pub fn default_rerank(k: usize) -> usize {
    (k * 3).max(32)
}

/// The `nprobe` smallest entries of `scores`, ascending (ties: lower index).
pub(crate) fn nearest_lists(scores: &[f32], nprobe: usize) -> Vec<u32> {
    let mut idx = Vec::new();
    nearest_lists_into(scores, nprobe, &mut idx, &mut Vec::new());
    idx
}

/// [`nearest_lists`] into reused buffers. Each score becomes one `u64` key,
/// its `f32::total_cmp` order in the high half and the index in the low
/// half, so selecting and sorting compare plain integers (no indirection,
/// no branches on ties).
pub(crate) fn nearest_lists_into(
    scores: &[f32],
    nprobe: usize,
    idx: &mut Vec<u32>,
    keys: &mut Vec<u64>,
) {
    let n = nprobe.min(scores.len());
    idx.clear();
    if n == 0 {
        return;
    }
    keys.clear();
    keys.extend(scores.iter().enumerate().map(|(i, &v)| {
        let b = v.to_bits();
        // total_cmp's order as an unsigned integer: negative values flipped.
        let ord = if b >> 31 == 1 { !b } else { b | 0x8000_0000 };
        (u64::from(ord) << 32) | i as u64
    }));
    if n < keys.len() {
        keys.select_nth_unstable(n - 1);
        keys.truncate(n);
    }
    keys.sort_unstable();
    idx.extend(keys.iter().map(|&k| k as u32));
}

/// Buffers a [`Searcher`] reuses from one query to the next: keep one per
/// table and connection (or thread), hand it to
/// [`IvfModel::searcher_with`] and take it back with
/// [`Searcher::into_scratch`]. After the first query nothing is allocated
/// (lookup tables, list scores, probe order, scan distances, candidates).
#[derive(Debug, Default)]
pub struct SearchScratch {
    /// The query as given (for `none` and exact distances).
    query: Vec<f32>,
    /// The query normalised for cosine (probe and lookup table).
    qn: Vec<f32>,
    /// Base term of the approximate distance per list.
    base: Vec<f32>,
    probe: Vec<u32>,
    probe_keys: Vec<u64>,
    probe_buf: ProbeScratch,
    lut: Vec<f32>,
    qlut: QuantLut,
    q8: Vec<i8>,
    buf: Vec<f32>,
    tail: Vec<u8>,
    /// Candidates by approximate distance (ties by id), then the re-ranked hits.
    top: Cands,
    cands: Vec<(i64, f32)>,
    ids: Vec<i64>,
    exact: Vec<Option<f32>>,
    hits: kernels::TopK,
}

/// An in-progress search. Cheap to create (one centroid pass and, for PQ,
/// one lookup-table build), and allocation-free with a reused
/// [`SearchScratch`].
pub struct Searcher<'m> {
    model: &'m IvfModel,
    metric: Metric,
    kind: QuantizerKind,
    nprobe: usize,
    /// Whether `s.qlut` holds this query's quantised table.
    quantised: bool,
    adc: AdcPath,
    /// `coef · scale(q8)`: multiplies `-dot_i8 · scale(r)`.
    q8_factor: f32,
    k: usize,
    scanned: usize,
    s: SearchScratch,
}

impl IvfModel {
    /// Start a search for `query`.
    pub fn searcher(&self, query: &[f32], params: &SearchParams) -> Result<Searcher<'_>, Error> {
        self.searcher_with(query, params, SearchScratch::default())
    }

    /// [`IvfModel::searcher`] reusing the buffers of `scratch` (take them
    /// back with [`Searcher::into_scratch`]).
    pub fn searcher_with(
        &self,
        query: &[f32],
        params: &SearchParams,
        mut s: SearchScratch,
    ) -> Result<Searcher<'_>, Error> {
        check_vec("query", query, self.dim())?;
        if params.k == 0 {
            return Err(invalid("k", "must be at least 1"));
        }
        let nprobe = if params.nprobe == 0 {
            self.default_nprobe()
        } else {
            params.nprobe
        }
        .min(self.lists());
        let keep = params.k.max(params.rerank);
        let metric = self.metric();
        s.query.clear();
        s.query.extend_from_slice(query);
        s.qn.clear();
        s.qn.extend_from_slice(query);
        if metric == Metric::Cosine {
            self.kern.normalize_f32(&mut s.qn);
        }
        s.base.resize(self.lists(), 0.0);
        self.list_bases(&s.qn, &mut s.base, &mut s.probe_buf)?;
        nearest_lists_into(&s.base, nprobe, &mut s.probe, &mut s.probe_keys);
        // Coefficient of q·r̂ in the approximate distance.
        let coef = if metric == Metric::L2 { -2.0 } else { -1.0 };
        let adc = AdcPath::for_kernels(self.kern);
        let mut quantised = false;
        let mut q8_factor = 0.0;
        match self.quantizer() {
            QuantizerKind::Pq => {
                // Every entry is overwritten by the table build.
                s.lut.resize(self.params.pq_m * KSUB, 0.0);
                self.pq
                    .as_ref()
                    .expect("PQ model has codebooks")
                    .ip_lut_ranges(
                        self.kern,
                        &s.qn,
                        coef,
                        &mut s.lut,
                        adc.quantised().then_some(&mut s.qlut),
                    );
                quantised = adc.quantised();
            }
            QuantizerKind::Int8 => {
                s.q8.resize(self.dim(), 0);
                let sc = kernels::convert::quantize_i8(&s.qn, &mut s.q8)?;
                // dist += coef · (s_q·s_r·dot) = coef·s_q·s_r·(-out)
                q8_factor = -coef * sc;
            }
            QuantizerKind::None => {}
        }
        s.top.reset(keep);
        Ok(Searcher {
            model: self,
            metric,
            kind: self.quantizer(),
            nprobe,
            quantised,
            adc,
            q8_factor,
            k: params.k,
            scanned: 0,
            s,
        })
    }
}

impl<'m> Searcher<'m> {
    /// The lists to scan, nearest first (`nprobe` of them).
    pub fn probe_lists(&self) -> &[u32] {
        &self.s.probe
    }
    /// Widen the probe (filtered queries that found too few matches): the
    /// nearest `nprobe` lists, of which the first `probe_lists().len()` are
    /// the ones already returned.
    pub fn widen(&mut self, nprobe: usize) -> &[u32] {
        let n = nprobe.min(self.s.base.len());
        if n > self.s.probe.len() {
            nearest_lists_into(&self.s.base, n, &mut self.s.probe, &mut self.s.probe_keys);
            self.nprobe = n;
        }
        &self.s.probe
    }
    /// Entries scanned so far.
    pub fn scanned(&self) -> usize {
        self.scanned
    }
    /// Candidates currently kept.
    pub fn candidates(&self) -> usize {
        self.s.top.len()
    }
    /// Gives the buffers back for the next query's
    /// [`IvfModel::searcher_with`].
    pub fn into_scratch(self) -> SearchScratch {
        self.s
    }

    /// Scan one stored chunk of `list`.
    pub fn scan_chunk(&mut self, list: u32, chunk: &[u8]) -> Result<(), Error> {
        let c = ListChunkRef::parse(chunk, self.model.code_layout())?;
        self.scan_impl(list, &c, &mut |_| true)
    }
    /// Scan one stored chunk, admitting only ids for which `keep` is true
    /// (pre-filters such as `rowid IN (...)`).
    pub fn scan_chunk_filtered(
        &mut self,
        list: u32,
        chunk: &[u8],
        keep: &mut dyn FnMut(i64) -> bool,
    ) -> Result<(), Error> {
        let c = ListChunkRef::parse(chunk, self.model.code_layout())?;
        self.scan_impl(list, &c, keep)
    }
    /// Scan a parsed chunk.
    pub fn scan_ref(&mut self, list: u32, chunk: &ListChunkRef<'_>) -> Result<(), Error> {
        self.scan_impl(list, chunk, &mut |_| true)
    }
    fn scan_impl(
        &mut self,
        list: u32,
        c: &ListChunkRef<'_>,
        keep: &mut dyn FnMut(i64) -> bool,
    ) -> Result<(), Error> {
        let n = c.len();
        let s = &mut self.s;
        if list as usize >= s.base.len() {
            return Err(invalid(
                "list",
                format!("{list} out of range (model has {} lists)", s.base.len()),
            ));
        }
        if n == 0 {
            return Ok(());
        }
        self.scanned += n;
        let base = s.base[list as usize];
        let kern = self.model.kern;
        let qlut = self.quantised.then_some(&s.qlut);
        match self.kind {
            QuantizerKind::Pq => {
                let m = self.model.params.pq_m;
                let full = c.full_blocks();
                let padded = n.div_ceil(BLOCK) * BLOCK;
                if s.buf.len() < padded {
                    s.buf.resize(padded, 0.0);
                }
                let codes = c.code_region();
                let (head, tail) = codes.split_at(full * BLOCK * m);
                let (out_head, out_tail) = s.buf[..padded].split_at_mut(full * BLOCK);
                adc_scan(self.adc, &s.lut, qlut, m, head, out_head);
                let r = n - full * BLOCK;
                if r > 0 && !adc_scan_tail(self.adc, qlut, m, tail, r, out_tail) {
                    // The tail block is stored with stride r: re-stride it
                    // into one padded 64-lane block.
                    s.tail.clear();
                    s.tail.resize(BLOCK * m, 0);
                    for j in 0..m {
                        s.tail[j * BLOCK..j * BLOCK + r].copy_from_slice(&tail[j * r..(j + 1) * r]);
                    }
                    adc_scan(self.adc, &s.lut, qlut, m, &s.tail, out_tail);
                }
                if c.layout().aux == 1 {
                    for (i, d) in s.buf[..n].iter_mut().enumerate() {
                        *d += base + c.aux(i, 0);
                    }
                } else {
                    for d in s.buf[..n].iter_mut() {
                        *d += base;
                    }
                }
            }
            QuantizerKind::Int8 => {
                if s.buf.len() < n {
                    s.buf.resize(n, 0.0);
                }
                let out = &mut s.buf[..n];
                kern.distances_i8(Metric::Dot, &s.q8, i8_slice(c.code_region()), None, out)?;
                let f = self.q8_factor;
                if c.layout().aux == 2 {
                    for (i, d) in out.iter_mut().enumerate() {
                        *d = base + c.aux(i, 1) + f * c.aux(i, 0) * *d;
                    }
                } else {
                    for (i, d) in out.iter_mut().enumerate() {
                        *d = base + f * c.aux(i, 0) * *d;
                    }
                }
            }
            QuantizerKind::None => {
                if s.buf.len() < n {
                    s.buf.resize(n, 0.0);
                }
                kern.distances_f32_bytes(
                    self.metric,
                    &s.query,
                    c.code_region(),
                    None,
                    &mut s.buf[..n],
                )?;
            }
        }
        admit(&mut s.top, c, &s.buf[..n], keep);
        Ok(())
    }

    /// Scan every probed list: `chunks_of(list)` gives the list's stored
    /// chunks (empty ones are skipped), `keep` filters ids as in
    /// [`Searcher::scan_chunk_filtered`]. Same candidates as scanning the
    /// chunks one by one in probe order; with the quantised lookup table
    /// (AVX-512 VBMI) the code blocks of several lists share each
    /// sub-space's table loads (see `pq::BlockGroup`).
    pub fn scan_probed<'c, C: AsRef<[u8]> + 'c>(
        &mut self,
        chunks_of: impl Fn(u32) -> &'c [C],
        keep: &mut dyn FnMut(i64) -> bool,
    ) -> Result<(), Error> {
        let probe = std::mem::take(&mut self.s.probe);
        let r = self.scan_probed_impl(&probe, chunks_of, keep);
        self.s.probe = probe;
        r
    }

    fn scan_probed_impl<'c, C: AsRef<[u8]> + 'c>(
        &mut self,
        probe: &[u32],
        chunks_of: impl Fn(u32) -> &'c [C],
        keep: &mut dyn FnMut(i64) -> bool,
    ) -> Result<(), Error> {
        let layout = self.model.code_layout();
        let lists = self.s.base.len();
        if let Some(&l) = probe.iter().find(|&&l| l as usize >= lists) {
            return Err(invalid(
                "list",
                format!("{l} out of range (model has {lists} lists)"),
            ));
        }
        #[cfg(target_arch = "x86_64")]
        if self.kind == QuantizerKind::Pq && self.quantised && self.adc == AdcPath::Vbmi {
            let m = self.model.params.pq_m;
            // Pass 1: every block of every probed chunk, GROUP at a time,
            // into s.buf (64 values per block, chunk after chunk).
            let s = &mut self.s;
            let mut group = crate::pq::BlockGroup::new(&s.qlut, m);
            let mut at = 0usize;
            for (i, &l) in probe.iter().enumerate() {
                prefetch_ahead(probe, i, &chunks_of);
                for b in chunks_of(l) {
                    let b = b.as_ref();
                    if b.is_empty() {
                        continue;
                    }
                    let c = ListChunkRef::parse(b, layout)?;
                    let n = c.len();
                    let codes = c.code_region();
                    if s.buf.len() < at + n.div_ceil(BLOCK) * BLOCK {
                        s.buf.resize(at + n.div_ceil(BLOCK) * BLOCK, 0.0);
                    }
                    for blk in 0..n.div_ceil(BLOCK) {
                        let lanes = (n - blk * BLOCK).min(BLOCK);
                        let bytes = &codes[blk * BLOCK * m..blk * BLOCK * m + lanes * m];
                        group.push(bytes, lanes, at, &mut s.buf);
                        at += BLOCK;
                    }
                }
            }
            group.flush(&mut s.buf);
            // Pass 2: side values, base terms and the candidates, in probe
            // order.
            let mut at = 0usize;
            for &l in probe {
                let base = s.base[l as usize];
                for b in chunks_of(l) {
                    let b = b.as_ref();
                    if b.is_empty() {
                        continue;
                    }
                    let c = ListChunkRef::parse(b, layout)?;
                    let n = c.len();
                    self.scanned += n;
                    let out = &mut s.buf[at..at + n];
                    if c.layout().aux == 1 {
                        for (i, d) in out.iter_mut().enumerate() {
                            *d += base + c.aux(i, 0);
                        }
                    } else {
                        for d in out.iter_mut() {
                            *d += base;
                        }
                    }
                    admit(&mut s.top, &c, out, keep);
                    at += n.div_ceil(BLOCK) * BLOCK;
                }
            }
            return Ok(());
        }
        for (i, &l) in probe.iter().enumerate() {
            prefetch_ahead(probe, i, &chunks_of);
            for b in chunks_of(l) {
                let b = b.as_ref();
                if !b.is_empty() {
                    let c = ListChunkRef::parse(b, layout)?;
                    self.scan_impl(l, &c, keep)?;
                }
            }
        }
        Ok(())
    }

    /// Finish without re-ranking: the best `k` by approximate distance
    /// (exact for quantizer `none`), nearest first.
    pub fn finish(mut self) -> Vec<(i64, f32)> {
        let (k, metric, kind) = (self.k, self.metric, self.kind);
        let s = &mut self.s;
        s.top.drain_sorted_into(&mut s.cands);
        let mut v = s.cands.clone();
        dedup_ids(&mut v);
        v.truncate(k);
        for (_, d) in v.iter_mut() {
            *d = finalize(metric, kind, *d);
        }
        v
    }

    /// Finish with an exact re-rank: `exact(ids, out)` receives the
    /// candidate ids (ascending) and must set `out[i]` to the exact
    /// distance of `ids[i]` (as the exact scan computes it), or `None` when
    /// the row no longer exists (it is dropped). Returns the best `k`,
    /// nearest first (ties by id).
    pub fn finish_rerank<E>(
        mut self,
        exact: impl FnMut(&[i64], &mut [Option<f32>]) -> Result<(), E>,
    ) -> Result<Vec<(i64, f32)>, E> {
        let mut hits = Vec::new();
        self.finish_rerank_into(exact, &mut hits)?;
        Ok(hits)
    }

    /// [`Searcher::finish_rerank`] into `hits` (cleared first), leaving the
    /// searcher's buffers for [`Searcher::into_scratch`].
    pub fn finish_rerank_into<E>(
        &mut self,
        mut exact: impl FnMut(&[i64], &mut [Option<f32>]) -> Result<(), E>,
        hits: &mut Vec<(i64, f32)>,
    ) -> Result<(), E> {
        let s = &mut self.s;
        s.top.drain_sorted_into(&mut s.cands);
        s.ids.clear();
        s.ids.extend(s.cands.iter().map(|&(id, _)| id));
        s.ids.sort_unstable();
        s.ids.dedup();
        s.exact.clear();
        s.exact.resize(s.ids.len(), None);
        exact(&s.ids, &mut s.exact)?;
        s.hits
            .reset(self.k)
            .expect("k >= 1: checked when the searcher was made");
        for (&id, d) in s.ids.iter().zip(&s.exact) {
            if let Some(d) = *d {
                s.hits.push(id, d);
            }
        }
        s.hits.drain_sorted_into(hits);
        Ok(())
    }
}

/// Before scanning list `probe[i]`: a list's codes are two dependent loads
/// away (its chunk table, then the chunk), so request the chunk table four
/// lists ahead and the first chunk's lines two ahead; the misses overlap
/// the scan.
fn prefetch_ahead<'c, C: AsRef<[u8]> + 'c>(
    probe: &[u32],
    i: usize,
    chunks_of: &impl Fn(u32) -> &'c [C],
) {
    if let Some(&n4) = probe.get(i + 4) {
        crate::pq::prefetch_ptr(chunks_of(n4).as_ptr().cast());
    }
    if let Some(b) = probe.get(i + 2).and_then(|&n2| chunks_of(n2).first()) {
        crate::pq::prefetch(b.as_ref());
    }
}

/// Offer a scanned chunk's approximate distances to the candidates: until
/// the candidates are full everything is admitted, then only entries nearer
/// than the k-th so far (NaN never is). Once full, 16 distances at a time
/// are compared with the threshold into a bit mask (a vector compare), and
/// only the set bits are visited.
#[inline]
fn admit(top: &mut Cands, c: &ListChunkRef<'_>, dists: &[f32], keep: &mut dyn FnMut(i64) -> bool) {
    let mut i = 0;
    while i < dists.len() && !top.full {
        let d = dists[i];
        let id = c.id(i);
        if keep(id) {
            top.push(id, d);
        }
        i += 1;
    }
    while i < dists.len() {
        let part = &dists[i..dists.len().min(i + 16)];
        let thr = top.thr;
        let mut mask = 0u32;
        for (j, &d) in part.iter().enumerate() {
            mask |= u32::from(d < thr) << j;
        }
        while mask != 0 {
            let j = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            // The threshold may have dropped since the mask was taken.
            let d = part[j];
            if top.admits(d) {
                let id = c.id(i + j);
                if keep(id) {
                    top.push(id, d);
                }
            }
        }
        i += part.len();
    }
}

/// The best `keep` candidates by approximate distance, ties by id: entries
/// nearer than the k-th of the last compaction are appended, and the
/// buffer is cut back to the best `keep` (a selection, linear time) when
/// it reaches twice that. Cheaper per admitted entry than a binary heap,
/// and it ends with the same set (up to equal distances at the cut).
#[derive(Debug, Default)]
struct Cands {
    keep: usize,
    /// `(distance order key, id, distance)`.
    v: Vec<(u32, i64, f32)>,
    /// Admit only `d < thr` once `full`.
    thr: f32,
    full: bool,
}

/// `f32::total_cmp`'s order as an unsigned integer, `-0.0` as `+0.0`.
#[inline]
fn order_key(d: f32) -> u32 {
    let b = (if d == 0.0 { 0.0 } else { d }).to_bits();
    if b >> 31 == 1 {
        !b
    } else {
        b | 0x8000_0000
    }
}

impl Cands {
    fn reset(&mut self, keep: usize) {
        self.keep = keep.max(1);
        self.v.clear();
        self.thr = f32::INFINITY;
        self.full = false;
    }
    #[inline]
    fn admits(&self, d: f32) -> bool {
        !self.full || d < self.thr
    }
    #[inline]
    fn push(&mut self, id: i64, d: f32) {
        self.v.push((order_key(d), id, d));
        // The first `keep` set the threshold; then every `keep` more.
        if self.v.len() >= 2 * self.keep || !self.full && self.v.len() == self.keep {
            self.compact();
        }
    }
    fn compact(&mut self) {
        let k = self.keep;
        if self.v.len() >= k {
            self.v
                .select_nth_unstable_by(k - 1, |a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            self.v.truncate(k);
            self.full = true;
            self.thr = self.v[k - 1].2;
        }
    }
    fn len(&self) -> usize {
        self.v.len().min(self.keep)
    }
    /// The kept candidates, nearest first (ties by id), into `out`.
    fn drain_sorted_into(&mut self, out: &mut Vec<(i64, f32)>) {
        self.compact();
        self.v.sort_unstable_by_key(|a| (a.0, a.1));
        out.clear();
        out.extend(self.v.iter().map(|&(_, id, d)| (id, d)));
        self.v.clear();
    }
}

/// Convert an approximate score to the metric's distance (PQ/int8 L2
/// scores are squared).
fn finalize(metric: Metric, kind: QuantizerKind, d: f32) -> f32 {
    if metric == Metric::L2 && kind != QuantizerKind::None {
        d.max(0.0).sqrt()
    } else {
        d
    }
}

fn dedup_ids(v: &mut Vec<(i64, f32)>) {
    let mut seen = std::collections::HashSet::with_capacity(v.len());
    v.retain(|(id, _)| seen.insert(*id));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compacting candidate buffer keeps the best `keep` entries by
    /// (distance, id) like a full sort, for distinct and for tied
    /// distances, pushed in any order through its admission test.
    #[test]
    fn candidates_match_a_full_sort() {
        let mut state = 3u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        let mut c = Cands::default();
        for keep in [1usize, 2, 10, 40, 100] {
            for (n, levels) in [(0usize, 0u64), (5, 1_000_000), (500, 1_000_000), (3000, 7)] {
                let entries: Vec<(i64, f32)> = (0..n)
                    .map(|i| {
                        let d = (next() % levels.max(1)) as f32 * 0.25 - 3.0;
                        (i as i64 * 7 % 10_007, if i % 97 == 3 { -0.0 } else { d })
                    })
                    .collect();
                c.reset(keep);
                for &(id, d) in &entries {
                    if c.admits(d) {
                        c.push(id, d);
                    }
                }
                let mut want = entries.clone();
                want.sort_by(|a, b| (a.1 + 0.0).total_cmp(&(b.1 + 0.0)).then(a.0.cmp(&b.0)));
                // Without a tie at the cut the kept entries are unique.
                let unique = want.len() <= keep || want[keep - 1].1 != want[keep].1;
                want.truncate(keep);
                assert_eq!(c.len(), want.len());
                let mut got = Vec::new();
                c.drain_sorted_into(&mut got);
                let ds = |v: &[(i64, f32)]| v.iter().map(|x| x.1 + 0.0).collect::<Vec<_>>();
                assert_eq!(ds(&got), ds(&want), "keep {keep} n {n}");
                if unique {
                    assert_eq!(got, want, "keep {keep} n {n}");
                }
            }
        }
    }

    /// The integer-key selection orders like `total_cmp` with ties by
    /// index: negatives, ±0, infinities, NaN and many equal scores.
    #[test]
    fn nearest_lists_match_total_cmp_order() {
        let special = [
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            1e-45,
            -1e-45,
            3.5,
            3.5,
            3.5,
        ];
        let mut state = 7u64;
        let mut scores: Vec<f32> = Vec::new();
        for i in 0..700 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            scores.push(if i % 7 == 0 {
                special[(state >> 33) as usize % special.len()]
            } else {
                ((state >> 40) as f32 / 1000.0) - 8000.0
            });
        }
        let mut want: Vec<u32> = (0..scores.len() as u32).collect();
        want.sort_by(|&a, &b| {
            scores[a as usize]
                .total_cmp(&scores[b as usize])
                .then(a.cmp(&b))
        });
        for n in [0, 1, 2, 64, 699, 700, 800] {
            let got = nearest_lists(&scores, n);
            assert_eq!(got, want[..n.min(700)], "nprobe {n}");
        }
    }
}
