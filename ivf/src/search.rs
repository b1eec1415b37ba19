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
use crate::model::{check_vec, i8_slice, IvfModel, QuantizerKind};
use crate::pq::{adc_scan, adc_scan_tail, AdcPath, QuantLut, BLOCK, KSUB};
use kernels::{Metric, TopK};

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

/// Default exact re-rank depth: `max(4k, 40)` (see ARCHITECTURE.md (ivf section)).
pub fn default_rerank(k: usize) -> usize {
    (k * 4).max(40)
}

/// The `nprobe` smallest entries of `scores`, ascending (ties: lower index).
pub(crate) fn nearest_lists(scores: &[f32], nprobe: usize) -> Vec<u32> {
    let n = nprobe.min(scores.len());
    let mut idx: Vec<u32> = (0..scores.len() as u32).collect();
    let cmp = |a: &u32, b: &u32| {
        scores[*a as usize]
            .total_cmp(&scores[*b as usize])
            .then(a.cmp(b))
    };
    if n == 0 {
        return Vec::new();
    }
    if n < idx.len() {
        idx.select_nth_unstable_by(n - 1, cmp);
        idx.truncate(n);
    }
    idx.sort_unstable_by(cmp);
    idx
}

/// An in-progress search. Cheap to create (one centroid pass and, for PQ,
/// one lookup-table build).
pub struct Searcher<'m> {
    model: &'m IvfModel,
    metric: Metric,
    kind: QuantizerKind,
    /// The query as given (for `none` and exact distances).
    query: Vec<f32>,
    /// Base term of the approximate distance per list (= probe order).
    base: Vec<f32>,
    probe: Vec<u32>,
    nprobe: usize,
    lut: Vec<f32>,
    qlut: Option<QuantLut>,
    adc: AdcPath,
    q8: Vec<i8>,
    /// `coef · scale(q8)`: multiplies `-dot_i8 · scale(r)`.
    q8_factor: f32,
    k: usize,
    top: TopK,
    buf: Vec<f32>,
    tail: Vec<u8>,
    scanned: usize,
}

impl IvfModel {
    /// Start a search for `query`.
    pub fn searcher(&self, query: &[f32], params: &SearchParams) -> Result<Searcher<'_>, Error> {
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
        let mut qn = query.to_vec();
        if metric == Metric::Cosine {
            self.kern.normalize_f32(&mut qn);
        }
        let mut base = vec![0f32; self.lists()];
        self.list_bases(&qn, &mut base)?;
        let probe = nearest_lists(&base, nprobe);
        // Coefficient of q·r̂ in the approximate distance.
        let coef = if metric == Metric::L2 { -2.0 } else { -1.0 };
        let mut lut = Vec::new();
        let mut qlut = None;
        let adc = AdcPath::for_kernels(self.kern);
        let mut q8 = Vec::new();
        let mut q8_factor = 0.0;
        match self.quantizer() {
            QuantizerKind::Pq => {
                lut = vec![0f32; self.params.pq_m * KSUB];
                self.pq
                    .as_ref()
                    .expect("PQ model has codebooks")
                    .ip_lut(&qn, coef, &mut lut);
                if adc.quantised() {
                    qlut = Some(QuantLut::new(&lut, self.params.pq_m));
                }
            }
            QuantizerKind::Int8 => {
                q8 = vec![0i8; self.dim()];
                let s = kernels::convert::quantize_i8(&qn, &mut q8)?;
                // dist += coef · (s_q·s_r·dot) = coef·s_q·s_r·(-out)
                q8_factor = -coef * s;
            }
            QuantizerKind::None => {}
        }
        Ok(Searcher {
            model: self,
            metric,
            kind: self.quantizer(),
            query: query.to_vec(),
            base,
            probe,
            nprobe,
            lut,
            qlut,
            adc,
            q8,
            q8_factor,
            k: params.k,
            top: TopK::new(keep)?,
            buf: Vec::new(),
            tail: Vec::new(),
            scanned: 0,
        })
    }
}

impl<'m> Searcher<'m> {
    /// The lists to scan, nearest first (`nprobe` of them).
    pub fn probe_lists(&self) -> &[u32] {
        &self.probe
    }
    /// Widen the probe (filtered queries that found too few matches): the
    /// nearest `nprobe` lists, of which the first `probe_lists().len()` are
    /// the ones already returned.
    pub fn widen(&mut self, nprobe: usize) -> &[u32] {
        let n = nprobe.min(self.base.len());
        if n > self.probe.len() {
            self.probe = nearest_lists(&self.base, n);
            self.nprobe = n;
        }
        &self.probe
    }
    /// Entries scanned so far.
    pub fn scanned(&self) -> usize {
        self.scanned
    }
    /// Candidates currently kept.
    pub fn candidates(&self) -> usize {
        self.top.len()
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
        if list as usize >= self.base.len() {
            return Err(invalid(
                "list",
                format!("{list} out of range (model has {} lists)", self.base.len()),
            ));
        }
        if n == 0 {
            return Ok(());
        }
        self.scanned += n;
        let base = self.base[list as usize];
        let kern = self.model.kern;
        match self.kind {
            QuantizerKind::Pq => {
                let m = self.model.params.pq_m;
                let full = c.full_blocks();
                let padded = n.div_ceil(BLOCK) * BLOCK;
                self.buf.resize(padded, 0.0);
                let codes = c.code_region();
                let (head, tail) = codes.split_at(full * BLOCK * m);
                let (out_head, out_tail) = self.buf.split_at_mut(full * BLOCK);
                adc_scan(self.adc, &self.lut, self.qlut.as_ref(), m, head, out_head);
                let r = n - full * BLOCK;
                if r > 0 && !adc_scan_tail(self.adc, self.qlut.as_ref(), m, tail, r, out_tail) {
                    // The tail block is stored with stride r: re-stride it
                    // into one padded 64-lane block.
                    self.tail.clear();
                    self.tail.resize(BLOCK * m, 0);
                    for j in 0..m {
                        self.tail[j * BLOCK..j * BLOCK + r]
                            .copy_from_slice(&tail[j * r..(j + 1) * r]);
                    }
                    adc_scan(
                        self.adc,
                        &self.lut,
                        self.qlut.as_ref(),
                        m,
                        &self.tail,
                        out_tail,
                    );
                }
                if c.layout().aux == 1 {
                    for (i, d) in self.buf[..n].iter_mut().enumerate() {
                        *d += base + c.aux(i, 0);
                    }
                } else {
                    for d in self.buf[..n].iter_mut() {
                        *d += base;
                    }
                }
            }
            QuantizerKind::Int8 => {
                self.buf.resize(n, 0.0);
                kern.distances_i8(
                    Metric::Dot,
                    &self.q8,
                    i8_slice(c.code_region()),
                    None,
                    &mut self.buf,
                )?;
                let f = self.q8_factor;
                if c.layout().aux == 2 {
                    for (i, d) in self.buf.iter_mut().enumerate() {
                        *d = base + c.aux(i, 1) + f * c.aux(i, 0) * *d;
                    }
                } else {
                    for (i, d) in self.buf.iter_mut().enumerate() {
                        *d = base + f * c.aux(i, 0) * *d;
                    }
                }
            }
            QuantizerKind::None => {
                self.buf.resize(n, 0.0);
                kern.distances_f32_bytes(
                    self.metric,
                    &self.query,
                    c.code_region(),
                    None,
                    &mut self.buf,
                )?;
            }
        }
        // Until the heap is full everything is admitted; then only entries
        // nearer than the current k-th (NaN never is).
        let mut thr = self.top.threshold();
        for (i, &d) in self.buf[..n].iter().enumerate() {
            if thr.is_none_or(|t| d < t) {
                let id = c.id(i);
                if keep(id) {
                    self.top.push(id, d);
                    thr = self.top.threshold();
                }
            }
        }
        Ok(())
    }

    /// Finish without re-ranking: the best `k` by approximate distance
    /// (exact for quantizer `none`), nearest first.
    pub fn finish(self) -> Vec<(i64, f32)> {
        let (k, metric, kind) = (self.k, self.metric, self.kind);
        let mut v = self.top.into_sorted_vec();
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
        self,
        mut exact: impl FnMut(&[i64], &mut [Option<f32>]) -> Result<(), E>,
    ) -> Result<Vec<(i64, f32)>, E> {
        let k = self.k;
        let mut ids: Vec<i64> = self
            .top
            .into_sorted_vec()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut out = vec![None; ids.len()];
        exact(&ids, &mut out)?;
        let mut top = TopK::new(k).expect("k >= 1 checked in searcher()");
        for (&id, d) in ids.iter().zip(out) {
            if let Some(d) = d {
                top.push(id, d);
            }
        }
        Ok(top.into_sorted_vec())
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
