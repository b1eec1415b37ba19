//! The trained artefact: parameters, coarse centroids and (for PQ) the
//! codebooks; training, assignment, encoding, probing, and its versioned
//! little-endian byte format.

use crate::codec::{Reader, Writer};
use crate::error::{corrupt, invalid, Error};
use crate::kmeans::{assign_points, kmeans, Assign, KMeansConfig};
use crate::list::CodeLayout;
use crate::pq::{Pq, KSUB};
use crate::rng::sample_indices;
use kernels::{Kernels, Metric};

/// How list contents are stored.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum QuantizerKind {
    /// Raw f32 vectors (exact distances in the scan).
    None,
    /// Per-vector scaled int8 residuals (`dim` bytes + scale).
    Int8,
    /// Product quantisation of residuals (`pq_m` bytes).
    Pq,
}

impl QuantizerKind {
    pub fn name(self) -> &'static str {
        match self {
            QuantizerKind::None => "none",
            QuantizerKind::Int8 => "int8",
            QuantizerKind::Pq => "pq",
        }
    }
    /// Inverse of [`name`](Self::name), case-insensitive.
    pub fn parse(s: &str) -> Option<QuantizerKind> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Some(QuantizerKind::None),
            "int8" => Some(QuantizerKind::Int8),
            "pq" => Some(QuantizerKind::Pq),
            _ => None,
        }
    }
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            QuantizerKind::None => 0,
            QuantizerKind::Int8 => 1,
            QuantizerKind::Pq => 2,
        }
    }
    pub(crate) fn from_u8(v: u8) -> Option<QuantizerKind> {
        match v {
            0 => Some(QuantizerKind::None),
            1 => Some(QuantizerKind::Int8),
            2 => Some(QuantizerKind::Pq),
            _ => None,
        }
    }
}

pub(crate) fn metric_to_u8(m: Metric) -> u8 {
    match m {
        Metric::Cosine => 0,
        Metric::L2 => 1,
        Metric::Dot => 2,
    }
}

pub(crate) fn metric_from_u8(v: u8) -> Option<Metric> {
    match v {
        0 => Some(Metric::Cosine),
        1 => Some(Metric::L2),
        2 => Some(Metric::Dot),
        _ => None,
    }
}

/// Largest accepted dimension.
pub const MAX_DIM: usize = 65_536;
/// Largest accepted number of lists.
pub const MAX_LISTS: usize = 1 << 20;
/// Upper clamp of [`IvfParams::default_lists`].
pub const MAX_DEFAULT_LISTS: usize = 1024;

/// Everything that defines a model before training. Build with
/// [`IvfParams::new`] (sensible defaults) and adjust fields.
#[derive(Clone, Debug, PartialEq)]
pub struct IvfParams {
    pub dim: usize,
    pub metric: Metric,
    /// Number of inverted lists (coarse centroids).
    pub lists: usize,
    pub quantizer: QuantizerKind,
    /// PQ sub-quantizers (bytes per code); ignored unless `quantizer == Pq`.
    pub pq_m: usize,
    /// Seed of every random choice in training.
    pub seed: u64,
    /// Lloyd iterations for the coarse k-means.
    pub kmeans_iters: usize,
    /// Lloyd iterations for each PQ sub-quantizer.
    pub pq_iters: usize,
    /// Coarse k-means trains on at most `lists × train_points_per_list` points.
    pub train_points_per_list: usize,
    /// PQ codebooks train on at most this many residuals.
    pub pq_train_points: usize,
}

impl IvfParams {
    /// Defaults for a table expected to hold about `n` vectors.
    pub fn new(dim: usize, metric: Metric, n: usize) -> IvfParams {
        IvfParams {
            dim,
            metric,
            lists: Self::default_lists(n),
            quantizer: QuantizerKind::Pq,
            pq_m: Self::default_pq_m(dim),
            seed: 0x706f_636b_6574_7665, // "pocketve"
            kmeans_iters: 10,
            pq_iters: 10,
            train_points_per_list: 64,
            pq_train_points: 16_384,
        }
    }

    /// `round(4·sqrt(n))`, at most `n/39` (so k-means has ≥ 39 points per
    /// centroid, the faiss rule of thumb), clamped to `1..=MAX_DEFAULT_LISTS`.
    pub fn default_lists(n: usize) -> usize {
        let l = (4.0 * (n as f64).sqrt()).round() as usize;
        l.min(n / 39).clamp(1, MAX_DEFAULT_LISTS)
    }

    /// `ceil(dim / 4)` sub-quantizers of 4 dimensions: codes of `dim/4`
    /// bytes, i.e. 1/16 of the raw f32 bytes (1/8 with the 8-byte id and a
    /// 4-byte side value counted, for dim ≥ 96).
    pub fn default_pq_m(dim: usize) -> usize {
        dim.div_ceil(4).max(1)
    }

    /// Default `nprobe` for a model with `lists` lists: `lists/10`, at
    /// least 8 (and at most `lists`). On the real MiniLM embeddings
    /// (30k, 693 lists) `lists/16` gives recall@10 ≈ 0.94, `lists/10` ≈ 0.96.
    pub fn default_nprobe(lists: usize) -> usize {
        (lists / 10).max(8).min(lists.max(1))
    }

    /// How many training vectors [`IvfModel::train`] uses (it subsamples a
    /// larger input with the seed). Feed at least this many if available.
    pub fn train_sample_size(&self) -> usize {
        let coarse = self.lists.saturating_mul(self.train_points_per_list);
        match self.quantizer {
            QuantizerKind::Pq => coarse.max(self.pq_train_points),
            _ => coarse,
        }
    }

    /// The fewest training vectors training accepts.
    pub fn min_training_vectors(&self) -> usize {
        match self.quantizer {
            QuantizerKind::Pq => self.lists.max(KSUB),
            _ => self.lists,
        }
    }

    /// Checks every field; `Err(InvalidParameter)` names the bad one.
    pub fn validate(&self) -> Result<(), Error> {
        if self.dim == 0 || self.dim > MAX_DIM {
            return Err(invalid(
                "dim",
                format!("must be in 1..={MAX_DIM}, got {}", self.dim),
            ));
        }
        if self.lists == 0 || self.lists > MAX_LISTS {
            return Err(invalid(
                "lists",
                format!("must be in 1..={MAX_LISTS}, got {}", self.lists),
            ));
        }
        if self.quantizer == QuantizerKind::Pq && (self.pq_m == 0 || self.pq_m > self.dim) {
            return Err(invalid(
                "pq_m",
                format!("must be in 1..=dim ({}), got {}", self.dim, self.pq_m),
            ));
        }
        if self.quantizer == QuantizerKind::Pq {
            let dsub = Pq::dsub_for(self.dim, self.pq_m);
            if (self.pq_m - 1) * dsub >= self.dim {
                return Err(invalid(
                    "pq_m",
                    format!(
                        "{} sub-quantizers of {dsub} dimensions leave an empty sub-space for dim {}; use a divisor of dim",
                        self.pq_m, self.dim
                    ),
                ));
            }
        }
        if self.kmeans_iters == 0 || self.pq_iters == 0 {
            return Err(invalid("iters", "must be at least 1"));
        }
        if self.train_points_per_list == 0 {
            return Err(invalid("train_points_per_list", "must be at least 1"));
        }
        Ok(())
    }
}

/// The code of one vector, ready to be appended to its list.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    pub list: u32,
    /// `CodeLayout::code_bytes` bytes, row-major (chunks transpose PQ codes).
    pub code: Vec<u8>,
    /// `CodeLayout::aux` side values.
    pub aux: Vec<f32>,
}

/// Codes of many vectors, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedBatch {
    pub layout: CodeLayout,
    pub lists: Vec<u32>,
    pub codes: Vec<u8>,
    pub aux: Vec<f32>,
}

impl EncodedBatch {
    pub fn len(&self) -> usize {
        self.lists.len()
    }
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }
    /// `(list, code, aux)` of vector `i`.
    pub fn get(&self, i: usize) -> (u32, &[u8], &[f32]) {
        let (cb, ax) = (self.layout.code_bytes, self.layout.aux);
        (
            self.lists[i],
            &self.codes[i * cb..(i + 1) * cb],
            &self.aux[i * ax..(i + 1) * ax],
        )
    }
}

/// A trained IVF model. Immutable; `Sync`, so one model can serve many
/// threads.
#[derive(Clone, Debug)]
pub struct IvfModel {
    pub(crate) params: IvfParams,
    pub(crate) centroids: Vec<f32>,
    /// The probe's view of the centroids (derived): see [`Probe`].
    pub(crate) probe: Probe,
    pub(crate) pq: Option<Pq>,
    pub(crate) trained_on: u64,
    pub(crate) kern: Kernels,
}

/// Magic of the serialised model.
pub const MODEL_MAGIC: [u8; 4] = *b"PVIM";
/// Version of the serialised model this build writes and reads.
pub const MODEL_VERSION: u16 = 1;
const MODEL_HEADER: usize = 64;

/// One query against every centroid, the fixed cost of each IVF query:
/// the centroids minus their mean `μ`, quantised to int8 per centroid, so
/// the products go through the kernels' one-to-many int8 dot product (VNNI
/// where available) over a quarter of the f32 bytes. Centring keeps the
/// quantisation error relative to the centroids' spread rather than to
/// their distance from the origin (data far from the origin would otherwise
/// drown the differences between lists). The products only rank lists and
/// set the base term of approximate distances, which the exact re-rank
/// replaces; integer sums are exact, so every ISA level ranks alike.
#[derive(Clone, Debug)]
pub(crate) struct Probe {
    /// Mean of the centroids.
    mu: Vec<f32>,
    /// `c_l − μ` quantised, row-major (`lists × dim`).
    codes: Vec<i8>,
    /// Per-centroid scale of `codes`.
    scales: Vec<f32>,
    /// `‖c_l − μ‖²` (f32, exact up to rounding; L2).
    csq: Vec<f32>,
    /// `codes` in panels for the VNNI probe (x86-64): see [`ProbePanels`].
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    panels: ProbePanels,
}

/// The probe's int8 centroids laid out for `vpdpbusd`: panels of 16
/// centroids, each a run of 64-byte groups holding dimensions `4k..4k+4`
/// of the 16 (zero-padded past `dim` and past the last centroid), so one
/// instruction adds 4 dimensions to 16 centroids' sums and no row needs a
/// horizontal reduction. The query goes in as unsigned bytes (`q8 + 128`,
/// broadcast 4 at a time); `128·Σ_d c_d` per centroid (`bias`) takes the
/// offset back out. Integer sums, so the scores equal the row-by-row
/// `distances_i8` ones exactly (tested).
#[derive(Clone, Debug, Default)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct ProbePanels {
    bytes: Vec<i8>,
    /// `128 · Σ_d c_d` per centroid, padded to whole panels.
    bias: Vec<i32>,
    /// Groups of 4 dimensions: `ceil(dim / 4)`.
    k4: usize,
}

impl ProbePanels {
    fn new(codes: &[i8], dim: usize) -> ProbePanels {
        if !cfg!(target_arch = "x86_64") || dim == 0 {
            return ProbePanels::default();
        }
        let lists = codes.len() / dim;
        let k4 = dim.div_ceil(4);
        let np = lists.div_ceil(16);
        let mut bytes = vec![0i8; np * k4 * 64];
        let mut bias = vec![0i32; np * 16];
        for (l, c) in codes.chunks_exact(dim).enumerate() {
            let (p, r) = (l / 16, l % 16);
            for (d, &v) in c.iter().enumerate() {
                bytes[(p * k4 + d / 4) * 64 + r * 4 + d % 4] = v;
            }
            bias[l] = 128 * c.iter().map(|&v| i32::from(v)).sum::<i32>();
        }
        ProbePanels { bytes, bias, k4 }
    }
}

/// `out[l] = −Σ_d q8_d·c_l,d` for every centroid from the panels (see
/// [`ProbePanels`]), four panels per pass for independent sums.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn probe_panels_vnni(pp: &ProbePanels, q8: &[i8], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let k4 = pp.k4;
    let np = pp.bias.len() / 16;
    assert!(q8.len() <= 4 * k4 && out.len() <= np * 16 && out.len() + 16 > np * 16);
    assert_eq!(pp.bytes.len(), np * k4 * 64);
    // The query as unsigned bytes, 4 dimensions per broadcast word.
    let word = |k: usize| {
        let b: [u8; 4] =
            std::array::from_fn(|d| (q8.get(4 * k + d).copied().unwrap_or(0) as i32 + 128) as u8);
        i32::from_le_bytes(b)
    };
    let n = out.len();
    let base = pp.bytes.as_ptr();
    let finish = |p: usize, acc: __m512i, out: &mut [f32]| {
        // SAFETY: p < np: 16 biases; the store is masked to the lists.
        unsafe {
            let b = _mm512_loadu_si512(pp.bias.as_ptr().add(p * 16) as *const __m512i);
            let v = _mm512_cvtepi32_ps(_mm512_sub_epi32(b, acc));
            let left = n - p * 16;
            let m: u16 = if left >= 16 {
                u16::MAX
            } else {
                (1u16 << left) - 1
            };
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(p * 16), m, v);
        }
    };
    let mut p = 0;
    while p + 4 <= np {
        let mut acc = [_mm512_setzero_si512(); 4];
        for k in 0..k4 {
            let b = _mm512_set1_epi32(word(k));
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: (p + i)·k4 + k < np·k4: inside the panels.
                let c = unsafe {
                    _mm512_loadu_si512(base.add(((p + i) * k4 + k) * 64) as *const __m512i)
                };
                *a = _mm512_dpbusd_epi32(*a, b, c);
            }
        }
        for (i, &a) in acc.iter().enumerate() {
            finish(p + i, a, out);
        }
        p += 4;
    }
    while p < np {
        let mut acc = _mm512_setzero_si512();
        for k in 0..k4 {
            // SAFETY: as above.
            let c = unsafe { _mm512_loadu_si512(base.add((p * k4 + k) * 64) as *const __m512i) };
            acc = _mm512_dpbusd_epi32(acc, _mm512_set1_epi32(word(k)), c);
        }
        finish(p, acc, out);
        p += 1;
    }
}

impl Probe {
    fn new(centroids: &[f32], dim: usize) -> Probe {
        let lists = centroids.len() / dim.max(1);
        let mut mu = vec![0f64; dim];
        for c in centroids.chunks_exact(dim) {
            for (m, &v) in mu.iter_mut().zip(c) {
                *m += f64::from(v);
            }
        }
        let mu: Vec<f32> = mu
            .iter()
            .map(|m| (m / lists.max(1) as f64) as f32)
            .collect();
        let mut codes = vec![0i8; centroids.len()];
        let mut scales = Vec::with_capacity(lists);
        let mut csq = Vec::with_capacity(lists);
        let mut r = vec![0f32; dim];
        for (c, o) in centroids.chunks_exact(dim).zip(codes.chunks_exact_mut(dim)) {
            for ((x, &v), &m) in r.iter_mut().zip(c).zip(&mu) {
                *x = v - m;
            }
            csq.push(r.iter().map(|v| v * v).sum());
            // Finite centroids (checked on load and by training) cannot fail.
            scales.push(kernels::convert::quantize_i8(&r, o).unwrap_or(0.0));
        }
        Probe {
            panels: ProbePanels::new(&codes, dim),
            mu,
            codes,
            scales,
            csq,
        }
    }
}

/// Per-query buffers of the probe.
#[derive(Debug, Default)]
pub(crate) struct ProbeScratch {
    q8: Vec<i8>,
    qc: Vec<f32>,
}

/// The query for the probe as int8, `q ≈ scale · q8` with `scale = max|q|
/// / 127` (returned; 0 for a zero query): round half away from zero, like
/// `kernels::convert::quantize_i8`, but in f32 with a truncating cast
/// instead of an f64 division and a libm `round` per element (that took
/// ~2 µs of every query at dim 384). Inputs were checked finite.
pub(crate) fn quantize_query_i8(src: &[f32], dst: &mut [i8]) -> f32 {
    debug_assert_eq!(src.len(), dst.len());
    let max = src.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        dst.fill(0);
        return 0.0;
    }
    let inv = 127.0 / max;
    if !inv.is_finite() {
        // max below ~2⁻¹²² (subnormal range): the f64 path.
        return kernels::convert::quantize_i8(src, dst).unwrap_or(0.0);
    }
    for (q, &x) in dst.iter_mut().zip(src) {
        // |x·inv| ≤ 127 (up to rounding): the cast truncates the +0.5.
        let r = ((x * inv).abs() + 0.5).min(127.0) as i8;
        *q = if x < 0.0 { -r } else { r };
    }
    max / 127.0
}

pub(crate) fn check_vec(what: &'static str, v: &[f32], dim: usize) -> Result<(), Error> {
    if v.len() != dim {
        return Err(Error::LengthMismatch {
            what,
            expected: dim,
            found: v.len(),
        });
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(Error::NonFinite { what });
    }
    Ok(())
}

/// Worker threads to use for pure compute: the available parallelism,
/// capped at 8.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

impl IvfModel {
    /// Train on `data` (`n × dim`, row-major; n ≥ `min_training_vectors`).
    /// Inputs larger than [`IvfParams::train_sample_size`] are subsampled
    /// with the seed. Deterministic for a given input, params and thread
    /// count-independent (threads only split work).
    pub fn train(params: &IvfParams, data: &[f32], threads: usize) -> Result<IvfModel, Error> {
        params.validate()?;
        let dim = params.dim;
        if !data.len().is_multiple_of(dim) {
            return Err(Error::LengthMismatch {
                what: "training data",
                expected: (data.len() / dim + 1) * dim,
                found: data.len(),
            });
        }
        let n = data.len() / dim;
        let need = params.min_training_vectors();
        if n < need {
            return Err(Error::TooFewTrainingVectors {
                needed: need,
                found: n,
            });
        }
        if data.iter().any(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                what: "training data",
            });
        }
        let kern = Kernels::detect();
        let take = params.train_sample_size().min(n);
        let mut sample = Vec::with_capacity(take * dim);
        for i in sample_indices(n, take, params.seed) {
            sample.extend_from_slice(&data[i * dim..(i + 1) * dim]);
        }
        if params.metric == Metric::Cosine {
            for x in sample.chunks_exact_mut(dim) {
                kern.normalize_f32(x);
            }
        }
        let spherical = params.metric == Metric::Cosine;
        let coarse_n = params
            .lists
            .saturating_mul(params.train_points_per_list)
            .min(take);
        let coarse_sample: Vec<f32> = if coarse_n < take {
            let mut s = Vec::with_capacity(coarse_n * dim);
            for i in sample_indices(take, coarse_n, params.seed ^ 1) {
                s.extend_from_slice(&sample[i * dim..(i + 1) * dim]);
            }
            s
        } else {
            sample.clone()
        };
        let km = kmeans(
            kern,
            &coarse_sample,
            dim,
            &KMeansConfig {
                k: params.lists,
                iters: params.kmeans_iters,
                seed: params.seed,
                assign: if spherical {
                    Assign::InnerProduct
                } else {
                    Assign::L2
                },
                spherical,
                threads,
                init_trials: 0,
            },
        )?;
        drop(coarse_sample);
        let mut model = IvfModel {
            params: params.clone(),
            probe: Probe::new(&km.centroids, dim),
            centroids: km.centroids,
            pq: None,
            trained_on: n as u64,
            kern,
        };
        if params.quantizer == QuantizerKind::Pq {
            let pn = params.pq_train_points.max(KSUB).min(take);
            let mut res = Vec::with_capacity(pn * dim);
            for i in sample_indices(take, pn, params.seed ^ 2) {
                res.extend_from_slice(&sample[i * dim..(i + 1) * dim]);
            }
            let mut labels = vec![0u32; pn];
            let mut scores = vec![0f32; pn];
            model.assign_normalized(&res, threads, &mut labels, &mut scores)?;
            for (x, &l) in res.chunks_exact_mut(dim).zip(&labels) {
                for (v, c) in x.iter_mut().zip(model.centroid(l)) {
                    *v -= c;
                }
            }
            model.pq = Some(Pq::train(
                kern,
                &res,
                dim,
                params.pq_m,
                params.pq_iters,
                params.seed,
                threads,
            )?);
        }
        Ok(model)
    }

    pub fn params(&self) -> &IvfParams {
        &self.params
    }
    pub fn dim(&self) -> usize {
        self.params.dim
    }
    pub fn metric(&self) -> Metric {
        self.params.metric
    }
    pub fn lists(&self) -> usize {
        self.params.lists
    }
    pub fn quantizer(&self) -> QuantizerKind {
        self.params.quantizer
    }
    /// How many vectors the model was trained from (before subsampling).
    pub fn trained_on(&self) -> u64 {
        self.trained_on
    }
    pub fn default_nprobe(&self) -> usize {
        IvfParams::default_nprobe(self.lists())
    }
    /// Centroid of `list` (normalised for cosine). Panics if `list >= lists`.
    pub fn centroid(&self, list: u32) -> &[f32] {
        let d = self.dim();
        &self.centroids[list as usize * d..(list as usize + 1) * d]
    }
    /// Use a specific kernels dispatch level (tests force every path).
    pub fn with_kernels(mut self, kern: Kernels) -> IvfModel {
        self.kern = kern;
        self
    }
    pub fn kernels(&self) -> Kernels {
        self.kern
    }

    /// Byte layout of this model's list entries.
    pub fn code_layout(&self) -> CodeLayout {
        let dim = self.dim();
        let l2 = self.metric() == Metric::L2;
        match self.quantizer() {
            QuantizerKind::None => CodeLayout {
                kind: QuantizerKind::None,
                code_bytes: dim * 4,
                aux: 0,
            },
            QuantizerKind::Int8 => CodeLayout {
                kind: QuantizerKind::Int8,
                code_bytes: dim,
                aux: if l2 { 2 } else { 1 },
            },
            QuantizerKind::Pq => CodeLayout {
                kind: QuantizerKind::Pq,
                code_bytes: self.params.pq_m,
                aux: if l2 { 1 } else { 0 },
            },
        }
    }

    /// Stored bytes per vector in a list (id + code + side values), the
    /// transposed-block padding of PQ not counted.
    pub fn bytes_per_vector(&self) -> usize {
        let l = self.code_layout();
        8 + l.code_bytes + 4 * l.aux
    }

    fn assign_normalized(
        &self,
        data: &[f32],
        threads: usize,
        labels: &mut [u32],
        scores: &mut [f32],
    ) -> Result<(), Error> {
        let a = if self.metric() == Metric::Cosine {
            Assign::InnerProduct
        } else {
            Assign::L2
        };
        assign_points(
            self.kern,
            data,
            self.dim(),
            &self.centroids,
            a,
            threads,
            labels,
            scores,
        )
    }

    /// The list a vector belongs to (nearest centroid; by inner product on
    /// the normalised vector for cosine, by L2 otherwise — also for `Dot`,
    /// whose probing ranks lists by `q·c` instead).
    pub fn assign(&self, v: &[f32]) -> Result<u32, Error> {
        check_vec("vector", v, self.dim())?;
        let mut x = v.to_vec();
        if self.metric() == Metric::Cosine {
            self.kern.normalize_f32(&mut x);
        }
        let (mut l, mut s) = ([0u32], [0f32]);
        self.assign_normalized(&x, 1, &mut l, &mut s)?;
        Ok(l[0])
    }

    /// Assign and encode one vector.
    pub fn encode(&self, v: &[f32]) -> Result<Encoded, Error> {
        let b = self.encode_batch(v, 1)?;
        Ok(Encoded {
            list: b.lists[0],
            code: b.codes,
            aux: b.aux,
        })
    }

    /// Assign and encode `data` (`n × dim`) on `threads` threads.
    pub fn encode_batch(&self, data: &[f32], threads: usize) -> Result<EncodedBatch, Error> {
        let dim = self.dim();
        if !data.len().is_multiple_of(dim) {
            return Err(Error::LengthMismatch {
                what: "vectors",
                expected: (data.len() / dim + 1) * dim,
                found: data.len(),
            });
        }
        if data.iter().any(|x| !x.is_finite()) {
            return Err(Error::NonFinite { what: "vectors" });
        }
        let n = data.len() / dim;
        let layout = self.code_layout();
        let mut x = data.to_vec();
        if self.metric() == Metric::Cosine {
            for v in x.chunks_exact_mut(dim) {
                self.kern.normalize_f32(v);
            }
        }
        let mut lists = vec![0u32; n];
        let mut scores = vec![0f32; n];
        self.assign_normalized(&x, threads, &mut lists, &mut scores)?;
        let mut codes = vec![0u8; n * layout.code_bytes];
        let mut aux = vec![0f32; n * layout.aux];
        if n == 0 {
            return Ok(EncodedBatch {
                layout,
                lists,
                codes,
                aux,
            });
        }
        let threads = threads.clamp(1, n);
        let per = n.div_ceil(threads);
        let ab = layout.aux.max(1);
        let mut aux_dummy = vec![0f32; if layout.aux == 0 { n } else { 0 }];
        let aux_slice: &mut [f32] = if layout.aux == 0 {
            &mut aux_dummy
        } else {
            &mut aux
        };
        let work = |xs: &[f32], raw: &[f32], ls: &[u32], cs: &mut [u8], ax: &mut [f32]| {
            if let Some(pq) = &self.pq {
                // PQ: residuals of up to 4096 rows, then one assignment pass
                // per sub-space (codebook hot in L1, one dispatch per pass).
                const ROWS: usize = 4096;
                let mut r = Vec::with_capacity(ROWS.min(ls.len()) * dim);
                let mut rh = vec![0f32; dim];
                for (b, lb) in ls.chunks(ROWS).enumerate() {
                    let i0 = b * ROWS;
                    r.clear();
                    r.extend_from_slice(&xs[i0 * dim..(i0 + lb.len()) * dim]);
                    for (ri, &l) in r.chunks_exact_mut(dim).zip(lb) {
                        for (v, c) in ri.iter_mut().zip(self.centroid(l)) {
                            *v -= c;
                        }
                    }
                    let cb = &mut cs[i0 * pq.m..(i0 + lb.len()) * pq.m];
                    pq.encode_many(self.kern, &r, cb);
                    if self.metric() == Metric::L2 {
                        for (i, &l) in lb.iter().enumerate() {
                            pq.decode(&cb[i * pq.m..(i + 1) * pq.m], &mut rh);
                            ax[i0 + i] = rh
                                .iter()
                                .zip(self.centroid(l))
                                .map(|(&rv, &ci)| rv * rv + 2.0 * ci * rv)
                                .sum();
                        }
                    }
                }
                return;
            }
            for i in 0..ls.len() {
                self.encode_one(
                    &xs[i * dim..(i + 1) * dim],
                    &raw[i * dim..(i + 1) * dim],
                    ls[i],
                    &mut cs[i * layout.code_bytes..(i + 1) * layout.code_bytes],
                    &mut ax[i * ab..(i + 1) * ab],
                );
            }
        };
        std::thread::scope(|s| {
            let mut hs = Vec::new();
            for ((((xs, raw), ls), cs), ax) in x
                .chunks(per * dim)
                .zip(data.chunks(per * dim))
                .zip(lists.chunks(per))
                .zip(codes.chunks_mut(per * layout.code_bytes.max(1)))
                .zip(aux_slice.chunks_mut(per * ab))
            {
                let work = &work;
                hs.push(s.spawn(move || work(xs, raw, ls, cs, ax)));
            }
            for h in hs {
                if let Err(p) = h.join() {
                    std::panic::resume_unwind(p);
                }
            }
        });
        Ok(EncodedBatch {
            layout,
            lists,
            codes,
            aux,
        })
    }

    /// `x`: normalised (cosine) vector, `raw`: as given.
    fn encode_one(&self, x: &[f32], raw: &[f32], list: u32, code: &mut [u8], aux: &mut [f32]) {
        let c = self.centroid(list);
        let l2 = self.metric() == Metric::L2;
        match self.quantizer() {
            QuantizerKind::None => {
                for (dst, v) in code.chunks_exact_mut(4).zip(raw) {
                    dst.copy_from_slice(&v.to_le_bytes());
                }
            }
            QuantizerKind::Int8 => {
                let r: Vec<f32> = x.iter().zip(c).map(|(a, b)| a - b).collect();
                let q: &mut [i8] = i8_slice_mut(code);
                // Inputs were checked finite, so quantize_i8 cannot fail;
                // an all-zero residual gives scale 0.
                let s = kernels::convert::quantize_i8(&r, q).unwrap_or(0.0);
                aux[0] = s;
                if l2 {
                    // ||r̂||² + 2 c·r̂ with r̂ = s·q
                    let mut t = 0f32;
                    for (&qi, &ci) in q.iter().zip(c) {
                        let rv = s * qi as f32;
                        t += rv * rv + 2.0 * ci * rv;
                    }
                    aux[1] = t;
                }
            }
            QuantizerKind::Pq => unreachable!("PQ is encoded in batches"),
        }
    }

    /// Reconstruct the vector a code stands for (normalised space for
    /// cosine). `None` quantizer returns the stored vector.
    pub fn decode(&self, list: u32, code: &[u8], aux: &[f32]) -> Result<Vec<f32>, Error> {
        let layout = self.code_layout();
        if list as usize >= self.lists() {
            return Err(invalid("list", format!("{list} >= lists {}", self.lists())));
        }
        if code.len() != layout.code_bytes || aux.len() != layout.aux {
            return Err(Error::LengthMismatch {
                what: "code",
                expected: layout.code_bytes,
                found: code.len(),
            });
        }
        let c = self.centroid(list);
        Ok(match self.quantizer() {
            QuantizerKind::None => crate::codec::f32s_from_le(code),
            QuantizerKind::Int8 => c
                .iter()
                .zip(code)
                .map(|(&ci, &q)| ci + aux[0] * (q as i8) as f32)
                .collect(),
            QuantizerKind::Pq => {
                let mut r = vec![0f32; self.dim()];
                self.pq
                    .as_ref()
                    .expect("PQ model has codebooks")
                    .decode(code, &mut r);
                r.iter().zip(c).map(|(a, b)| a + b).collect()
            }
        })
    }

    /// Scores of every list for a (normalised for cosine) query: the
    /// approximate-distance base term, which is also the probe order (see
    /// [`Probe`]).
    pub(crate) fn list_bases(
        &self,
        qn: &[f32],
        out: &mut [f32],
        ps: &mut ProbeScratch,
    ) -> Result<(), Error> {
        if out.len() != self.lists() {
            return Err(Error::LengthMismatch {
                what: "list scores",
                expected: self.lists(),
                found: out.len(),
            });
        }
        let p = &self.probe;
        let d = self.dim();
        ps.q8.resize(d, 0);
        ps.qc.clear();
        // L2 ranks by ‖(q − μ) − (c − μ)‖²; the dot products by
        // q·μ + q·(c − μ).
        let (qs, shift) = if self.metric() == Metric::L2 {
            ps.qc.extend(qn.iter().zip(&p.mu).map(|(a, b)| a - b));
            (&ps.qc[..], 0.0)
        } else {
            (qn, self.kern.dot_f32(qn, &p.mu)?)
        };
        let sq = quantize_query_i8(qs, &mut ps.q8);
        // out = −Σ q8·c8 (exact integer sums): from the panels with VNNI at
        // the AVX-512 level, else row by row.
        #[cfg(target_arch = "x86_64")]
        let done = {
            use std::arch::is_x86_feature_detected as has;
            if self.kern.isa() == kernels::Isa::Avx512
                && has!("avx512f")
                && has!("avx512vnni")
                && !p.panels.bias.is_empty()
            {
                // SAFETY: features detected; the panels were built from
                // these codes (lists × dim), out has one score per list.
                unsafe { probe_panels_vnni(&p.panels, &ps.q8, out) };
                true
            } else {
                false
            }
        };
        #[cfg(not(target_arch = "x86_64"))]
        let done = false;
        if !done {
            self.kern
                .distances_i8(Metric::Dot, &ps.q8, &p.codes, None, out)?;
        }
        match self.metric() {
            Metric::Cosine => {
                for (v, &sc) in out.iter_mut().zip(&p.scales) {
                    *v = 1.0 - (shift - *v * sq * sc);
                }
            }
            Metric::Dot => {
                for (v, &sc) in out.iter_mut().zip(&p.scales) {
                    *v = -(shift - *v * sq * sc);
                }
            }
            Metric::L2 => {
                let qq: f32 = qs.iter().map(|v| v * v).sum();
                for ((v, &sc), &c) in out.iter_mut().zip(&p.scales).zip(&p.csq) {
                    *v = qq + c + 2.0 * *v * sq * sc;
                }
            }
        }
        Ok(())
    }

    /// The `nprobe` lists nearest to `query`, nearest first.
    pub fn probe(&self, query: &[f32], nprobe: usize) -> Result<Vec<u32>, Error> {
        check_vec("query", query, self.dim())?;
        let mut qn = query.to_vec();
        if self.metric() == Metric::Cosine {
            self.kern.normalize_f32(&mut qn);
        }
        let mut base = vec![0f32; self.lists()];
        self.list_bases(&qn, &mut base, &mut ProbeScratch::default())?;
        Ok(crate::search::nearest_lists(&base, nprobe))
    }

    /// Serialise (little-endian, versioned, CRC-32 protected).
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = &self.params;
        let pq_len = self.pq.as_ref().map_or(0, |q| q.codebooks.len());
        let mut w = Writer::with_capacity(MODEL_HEADER + 4 * (self.centroids.len() + pq_len) + 4);
        w.bytes(&MODEL_MAGIC);
        w.u16(MODEL_VERSION);
        w.u8(metric_to_u8(p.metric));
        w.u8(p.quantizer.to_u8());
        w.u32(p.dim as u32);
        w.u32(p.lists as u32);
        w.u32(if p.quantizer == QuantizerKind::Pq {
            p.pq_m as u32
        } else {
            0
        });
        w.u32(if p.quantizer == QuantizerKind::Pq {
            KSUB as u32
        } else {
            0
        });
        w.u32(p.kmeans_iters as u32);
        w.u32(p.pq_iters as u32);
        w.u32(p.train_points_per_list as u32);
        w.u32(p.pq_train_points as u32);
        w.u64(p.seed);
        w.u64(self.trained_on);
        w.u64(0); // reserved
        debug_assert_eq!(w.buf.len(), MODEL_HEADER);
        w.f32s(&self.centroids);
        if let Some(q) = &self.pq {
            w.f32s(&q.codebooks);
        }
        let crc = crc32fast::hash(&w.buf);
        w.u32(crc);
        w.buf
    }

    /// Parse bytes written by [`to_bytes`](Self::to_bytes). Any malformed
    /// input (truncated, extended, bad magic/version/checksum, absurd sizes,
    /// non-finite floats) returns `Err`, without large allocations.
    pub fn from_bytes(bytes: &[u8]) -> Result<IvfModel, Error> {
        const W: &str = "ivf model";
        let mut r = Reader::new(W, bytes);
        if r.take(4)? != MODEL_MAGIC {
            return Err(corrupt(W, "bad magic (not a pocketvec IVF model)"));
        }
        let version = r.u16()?;
        if version != MODEL_VERSION {
            return Err(Error::UnsupportedVersion {
                what: W,
                expected: MODEL_VERSION,
                found: version,
            });
        }
        let metric = metric_from_u8(r.u8()?).ok_or_else(|| corrupt(W, "unknown metric"))?;
        let quantizer =
            QuantizerKind::from_u8(r.u8()?).ok_or_else(|| corrupt(W, "unknown quantizer"))?;
        let dim = r.u32()? as usize;
        let lists = r.u32()? as usize;
        let pq_m = r.u32()? as usize;
        let ksub = r.u32()? as usize;
        let kmeans_iters = r.u32()? as usize;
        let pq_iters = r.u32()? as usize;
        let train_points_per_list = r.u32()? as usize;
        let pq_train_points = r.u32()? as usize;
        let seed = r.u64()?;
        let trained_on = r.u64()?;
        let _reserved = r.u64()?;
        let params = IvfParams {
            dim,
            metric,
            lists,
            quantizer,
            pq_m: if quantizer == QuantizerKind::Pq {
                pq_m
            } else {
                IvfParams::default_pq_m(dim)
            },
            seed,
            kmeans_iters,
            pq_iters,
            train_points_per_list,
            pq_train_points,
        };
        params
            .validate()
            .map_err(|e| corrupt(W, format!("bad parameters: {e}")))?;
        let is_pq = quantizer == QuantizerKind::Pq;
        if is_pq && ksub != KSUB {
            return Err(corrupt(W, format!("pq centroids {ksub}, expected {KSUB}")));
        }
        if !is_pq && (pq_m != 0 || ksub != 0) {
            return Err(corrupt(W, "pq fields set for a non-pq model"));
        }
        // Sizes are bounded by MAX_DIM/MAX_LISTS, so this cannot overflow
        // u64; compare against the input before allocating anything.
        let cent = lists as u64 * dim as u64;
        let books = if is_pq {
            pq_m as u64 * KSUB as u64 * Pq::dsub_for(dim, pq_m) as u64
        } else {
            0
        };
        let expect = MODEL_HEADER as u64 + 4 * (cent + books) + 4;
        if bytes.len() as u64 != expect {
            return Err(corrupt(
                W,
                format!("length {} bytes, header implies {expect}", bytes.len()),
            ));
        }
        let body = &bytes[..bytes.len() - 4];
        let tail = &bytes[bytes.len() - 4..];
        let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        if crc32fast::hash(body) != stored {
            return Err(corrupt(W, "checksum mismatch"));
        }
        let centroids = r.finite_f32s(cent as usize)?;
        let pq = if is_pq {
            let cb = r.finite_f32s(books as usize)?;
            Some(Pq::from_codebooks(dim, pq_m, cb))
        } else {
            None
        };
        let _crc = r.u32()?;
        debug_assert_eq!(r.remaining(), 0);
        Ok(IvfModel {
            probe: Probe::new(&centroids, dim),
            params,
            centroids,
            pq,
            trained_on,
            kern: Kernels::detect(),
        })
    }
}

pub(crate) fn i8_slice_mut(b: &mut [u8]) -> &mut [i8] {
    // SAFETY: u8 and i8 have identical size, alignment and validity.
    unsafe { std::slice::from_raw_parts_mut(b.as_mut_ptr() as *mut i8, b.len()) }
}

pub(crate) fn i8_slice(b: &[u8]) -> &[i8] {
    // SAFETY: u8 and i8 have identical size, alignment and validity.
    unsafe { std::slice::from_raw_parts(b.as_ptr() as *const i8, b.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VNNI panel probe gives exactly the row-by-row integer products
    /// (`distances_i8`, scalar level) for list counts and dimensions that
    /// are not multiples of 16 and 4, with extreme codes.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn panel_probe_equals_row_products() {
        use std::arch::is_x86_feature_detected as has;
        if !(has!("avx512f") && has!("avx512vnni")) {
            eprintln!("skipping the panel probe: CPU lacks AVX-512 VNNI");
            return;
        }
        let scalar = Kernels::new(kernels::Isa::Scalar).expect("scalar level");
        let mut state = 99u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for (lists, dim) in [
            (1usize, 1usize),
            (17, 5),
            (64, 8),
            (693, 384),
            (33, 7),
            (70, 130),
        ] {
            let pick = |v: u32| match v % 9 {
                0 => 127i8,
                1 => -127,
                _ => (v % 255) as i32 as i8,
            };
            let codes: Vec<i8> = (0..lists * dim).map(|_| pick(next())).collect();
            let q8: Vec<i8> = (0..dim).map(|_| pick(next()).max(-127)).collect();
            let pp = ProbePanels::new(&codes, dim);
            let mut got = vec![f32::NAN; lists];
            // SAFETY: features detected above.
            unsafe { probe_panels_vnni(&pp, &q8, &mut got) };
            let mut want = vec![0f32; lists];
            scalar
                .distances_i8(Metric::Dot, &q8, &codes, None, &mut want)
                .unwrap();
            assert_eq!(got, want, "lists {lists} dim {dim}");
        }
    }

    /// The probe's query quantisation is within half a step of `q/scale`
    /// and uses the full range.
    #[test]
    fn query_quantisation_is_within_half_a_step() {
        for v in [
            vec![0.0f32; 5],
            vec![1.0, -1.0, 0.5, -0.5, 0.25],
            vec![3e-30, -7e-31, 1e-31],
            vec![1e30, -2.5e29, 3.3e28, 0.0],
            vec![1e-39, -5e-40, 0.0, 2e-45],
        ] {
            let mut q = vec![0i8; v.len()];
            let s = quantize_query_i8(&v, &mut q);
            if v.iter().all(|&x| x == 0.0) {
                assert_eq!((s, q.iter().all(|&x| x == 0)), (0.0, true));
                continue;
            }
            assert!(q.iter().any(|&x| x.abs() == 127), "{v:?} -> {q:?}");
            for (&x, &qi) in v.iter().zip(&q) {
                let err = (x as f64 / s as f64 - qi as f64).abs();
                assert!(err <= 0.5 + 1e-4, "{x} -> {qi} (scale {s}): {err}");
            }
        }
    }
}
