//! Product quantizer: `m` sub-quantizers of 256 centroids each over
//! consecutive sub-spaces of `dsub = ceil(dim/m)` dimensions (the last
//! sub-space is zero-padded when `m` does not divide `dim`). Codes are one
//! byte per sub-space.
//!
//! The index encodes list *residuals* (`x - c_list`), with one codebook
//! shared by all lists (IVFADC). Search needs only one inner-product lookup
//! table per query (`lut[j][c] = coef · q_j·cb_j[c]`), because
//! `q·x = q·c + q·r` and, for L2,
//! `||q - c - r||² = ||q-c||² + (||r||² + 2c·r) - 2 q·r`, where the middle
//! term is stored per vector at encode time.
//!
//! The ADC scan works on blocks of [`BLOCK`] = 64 codes stored
//! sub-space-major (`block[j*BLOCK + lane]`). With AVX-512 VBMI the table
//! is quantised to bytes (`0..=QLEVELS`, 7 bits) and 64 entries are looked
//! up by two `vpermi2b`, the blocks of several lists at a time
//! (`BlockGroup`); otherwise AVX-512 / AVX2 gathers fetch 16 / 8 f32
//! entries at once.

use crate::error::Error;
use crate::kmeans::{assign_small, kmeans, transpose, use_avx512, Assign, KMeansConfig};
use crate::simd::multiversion;
use kernels::Kernels;

/// Codes per transposed block in list chunks.
pub const BLOCK: usize = 64;
/// Centroids per sub-quantizer.
pub const KSUB: usize = 256;

#[derive(Clone, Debug)]
pub(crate) struct Pq {
    pub(crate) dim: usize,
    pub(crate) m: usize,
    pub(crate) dsub: usize,
    /// `m × KSUB × dsub`, row-major per centroid (the serialised form).
    pub(crate) codebooks: Vec<f32>,
    /// `m × dsub × KSUB`, transposed for vectorised scoring.
    cbt: Vec<f32>,
    /// `m × KSUB` squared norms.
    cnorm: Vec<f32>,
    /// `cbt` in f16 for the query's lookup table (x86-64): see
    /// [`HalfTable`].
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    cbt_h: Option<HalfTable>,
    /// The codebooks in bytes for the table the VBMI scan quantises (x86-64,
    /// 4-dimensional sub-spaces): see [`ByteTable`].
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    cb8: Option<ByteTable>,
}

/// The codebooks as bytes, for the lookup table of the u8 (VBMI) scan when
/// sub-spaces have 4 dimensions (the default `m = dim/4`): codeword `c` of
/// sub-space `j` is 4 consecutive bytes `round(cw/s_j) + 128` (s_j = the
/// sub-space's largest magnitude / 127), so one `vpdpbusd` gives 16
/// codewords' products with the query's sub-vector quantised to int8 the
/// same way (the `+128` is one correction per sub-space). A quarter of the
/// f32 bytes and one instruction per 16 entries. Each entry's error is at
/// most `(Σ|q_d|·s_j + Σ|cw_d|·t_j + 4·s_j·t_j/2)/2` (`t_j` the query's step),
/// of the order of the u8 step the table is then quantised to; the
/// re-rank is exact.
#[derive(Clone, Debug)]
struct ByteTable {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    codes: Vec<u8>,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    scales: Vec<f32>,
}

impl ByteTable {
    fn new(codebooks: &[f32], m: usize, dsub: usize) -> Option<ByteTable> {
        if !cfg!(target_arch = "x86_64") || dsub != 4 {
            return None;
        }
        let mut codes = Vec::with_capacity(codebooks.len());
        let mut scales = Vec::with_capacity(m);
        for cb in codebooks.chunks_exact(KSUB * dsub).take(m) {
            let max = cb.iter().fold(0f32, |a, v| a.max(v.abs()));
            if !max.is_finite() {
                return None;
            }
            let s = if max == 0.0 { 1.0 } else { max / 127.0 };
            if !s.is_normal() {
                return None;
            }
            codes.extend(
                cb.iter()
                    .map(|&v| ((v / s).round().clamp(-127.0, 127.0) as i32 + 128) as u8),
            );
            scales.push(s);
        }
        Some(ByteTable { codes, scales })
    }
}

/// The transposed codebooks in f16, scaled by a power of two so the largest
/// magnitude lands in `(2^13, 2^14]` (clear of f16 overflow and of its
/// subnormals at any data scale). Building a query's lookup table streams
/// every codeword once (393 KB in f32 at dim 384, m = 96), so half the bytes
/// is most of its cost. Each table entry's error is at most about
/// `2^-11 · Σ_d |q_d|·|cw_d|`, far below the u8 step the VBMI scan
/// quantises the table to, and the re-rank is exact.
#[derive(Clone, Debug)]
struct HalfTable {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    bits: Vec<u16>,
    /// 1 / scale.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    inv: f32,
}

impl HalfTable {
    fn new(t: &[f32]) -> Option<HalfTable> {
        if !cfg!(target_arch = "x86_64") {
            return None;
        }
        let max = t.iter().fold(0f32, |m, v| m.max(v.abs()));
        if !max.is_finite() {
            return None;
        }
        let (scale, inv) = if max == 0.0 {
            (1.0, 1.0)
        } else {
            let e = 14 - max.log2().ceil() as i32;
            let (s, i) = (2f32.powi(e), 2f32.powi(-e));
            if !(s.is_normal() && i.is_normal()) {
                return None;
            }
            (s, i)
        };
        Some(HalfTable {
            bits: t
                .iter()
                .map(|&v| kernels::f16::from_f32(v * scale).to_bits())
                .collect(),
            inv,
        })
    }
}

impl Pq {
    pub(crate) fn dsub_for(dim: usize, m: usize) -> usize {
        dim.div_ceil(m)
    }

    pub(crate) fn from_codebooks(dim: usize, m: usize, codebooks: Vec<f32>) -> Pq {
        let dsub = Self::dsub_for(dim, m);
        let mut cbt = Vec::with_capacity(codebooks.len());
        let mut cnorm = Vec::with_capacity(m * KSUB);
        for j in 0..m {
            let cb = &codebooks[j * KSUB * dsub..(j + 1) * KSUB * dsub];
            cbt.extend_from_slice(&transpose(cb, KSUB, dsub));
            cnorm.extend(
                cb.chunks_exact(dsub)
                    .map(|c| c.iter().map(|v| v * v).sum::<f32>()),
            );
        }
        Pq {
            dim,
            m,
            dsub,
            cb8: ByteTable::new(&codebooks, m, dsub),
            codebooks,
            cbt_h: HalfTable::new(&cbt),
            cbt,
            cnorm,
        }
    }

    /// Copy sub-vector `j` of `x` into `out` (`dsub`), zero-padding.
    #[inline(always)]
    fn sub(&self, x: &[f32], j: usize, out: &mut [f32]) {
        let lo = (j * self.dsub).min(self.dim);
        let hi = ((j + 1) * self.dsub).min(self.dim);
        out[..hi - lo].copy_from_slice(&x[lo..hi]);
        out[hi - lo..].fill(0.0);
    }

    /// Train on `data` (`n × dim` residuals); sub-spaces are trained in
    /// parallel on `threads` threads.
    pub(crate) fn train(
        kern: Kernels,
        data: &[f32],
        dim: usize,
        m: usize,
        iters: usize,
        seed: u64,
        threads: usize,
    ) -> Result<Pq, Error> {
        let n = data.len() / dim;
        if n < KSUB {
            return Err(Error::TooFewTrainingVectors {
                needed: KSUB,
                found: n,
            });
        }
        let dsub = Self::dsub_for(dim, m);
        let proto = Pq {
            dim,
            m,
            dsub,
            codebooks: Vec::new(),
            cbt: Vec::new(),
            cnorm: Vec::new(),
            cbt_h: None,
            cb8: None,
        };
        let train_one = |j: usize| -> Result<Vec<f32>, Error> {
            let mut sub = vec![0f32; n * dsub];
            for (x, out) in data.chunks_exact(dim).zip(sub.chunks_exact_mut(dsub)) {
                proto.sub(x, j, out);
            }
            let cfg = KMeansConfig {
                k: KSUB,
                iters,
                seed: seed.wrapping_add(0x9e37_79b9_7f4a_7c15u64.wrapping_mul(j as u64 + 1)),
                assign: Assign::L2,
                spherical: false,
                threads: 1,
                // Plain k-means++: 96 sub-spaces × greedy trials would cost
                // more than the Lloyd iterations themselves.
                init_trials: 1,
            };
            Ok(kmeans(kern, &sub, dsub, &cfg)?.centroids)
        };
        let threads = threads.clamp(1, m);
        let mut books: Vec<Option<Result<Vec<f32>, Error>>> = (0..m).map(|_| None).collect();
        std::thread::scope(|s| {
            let per = m.div_ceil(threads);
            let mut handles = Vec::new();
            for (t, slot) in books.chunks_mut(per).enumerate() {
                let train_one = &train_one;
                handles.push(s.spawn(move || {
                    for (i, b) in slot.iter_mut().enumerate() {
                        *b = Some(train_one(t * per + i));
                    }
                }));
            }
            for h in handles {
                if let Err(p) = h.join() {
                    std::panic::resume_unwind(p);
                }
            }
        });
        let mut codebooks = Vec::with_capacity(m * KSUB * dsub);
        for b in books {
            codebooks.extend_from_slice(&b.expect("every sub-space trained")?);
        }
        Ok(Pq::from_codebooks(dim, m, codebooks))
    }

    /// Encode the rows of `xs` (`n × dim`) into `codes` (`n × m`, row-major):
    /// one assignment pass per sub-space over all rows.
    pub(crate) fn encode_many(&self, kern: Kernels, xs: &[f32], codes: &mut [u8]) {
        let n = xs.len() / self.dim;
        let avx512 = use_avx512(kern);
        let (m, dsub) = (self.m, self.dsub);
        let mut sub = vec![0f32; n * dsub];
        let mut labels = vec![0u32; n];
        let mut scores = vec![0f32; n];
        for j in 0..m {
            for (x, out) in xs.chunks_exact(self.dim).zip(sub.chunks_exact_mut(dsub)) {
                self.sub(x, j, out);
            }
            assign_small(
                avx512,
                &sub,
                dsub,
                &self.cbt[j * dsub * KSUB..(j + 1) * dsub * KSUB],
                KSUB,
                &self.cnorm[j * KSUB..(j + 1) * KSUB],
                true,
                &mut labels,
                &mut scores,
            );
            for (i, &l) in labels.iter().enumerate() {
                codes[i * m + j] = l as u8;
            }
        }
    }

    /// Reconstruct the residual of `code` into `out` (`dim`).
    pub(crate) fn decode(&self, code: &[u8], out: &mut [f32]) {
        for (j, &c) in code.iter().enumerate().take(self.m) {
            let c = c as usize;
            let cw = &self.codebooks[(j * KSUB + c) * self.dsub..(j * KSUB + c + 1) * self.dsub];
            let lo = (j * self.dsub).min(self.dim);
            let hi = ((j + 1) * self.dsub).min(self.dim);
            out[lo..hi].copy_from_slice(&cw[..hi - lo]);
        }
    }

    /// `lut[j*KSUB + c] = coef · (q_j · cb_j[c])` (from the f16 codebooks
    /// when the kernels run at the AVX-512 level).
    #[cfg(test)]
    pub(crate) fn ip_lut(&self, kern: Kernels, q: &[f32], coef: f32, lut: &mut [f32]) {
        self.ip_lut_ranges(kern, q, coef, lut, None);
    }

    /// [`Pq::ip_lut`], and with `ranges` the table then quantised to u8
    /// into it. On the AVX-512 path each row's minimum and maximum are
    /// taken while the row is still in registers, so the quantisation
    /// reads the table once instead of twice; with VNNI and 4-dimensional
    /// sub-spaces the quantised table is built from the byte codebooks
    /// ([`ByteTable`]).
    pub(crate) fn ip_lut_ranges(
        &self,
        kern: Kernels,
        q: &[f32],
        coef: f32,
        lut: &mut [f32],
        ranges: Option<&mut QuantLut>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if let (Some(b), true) = (&self.cb8, ranges.is_some()) {
            use std::arch::is_x86_feature_detected as has;
            if kern.isa() == kernels::Isa::Avx512 && has!("avx512f") && has!("avx512vnni") {
                assert!(lut.len() >= self.m * KSUB && b.codes.len() == self.m * KSUB * 4);
                let out = ranges.expect("checked above");
                let mut mins = std::mem::take(&mut out.mins);
                mins.clear();
                let mut range = 0f32;
                for j in 0..self.m {
                    // The sub-vector (zero-padded), read without a
                    // variable-length copy (a memcpy call per sub-space).
                    let qs: [f32; 4] =
                        std::array::from_fn(|d| q.get(j * 4 + d).copied().unwrap_or(0.0));
                    let amax = qs.iter().fold(0f32, |a, v| a.max(v.abs()));
                    let t = amax / 127.0;
                    let mut q8 = [0i8; 4];
                    if t.is_normal() {
                        let inv = 127.0 / amax;
                        for (o, &v) in q8.iter_mut().zip(&qs) {
                            // Round half away from zero with a truncating
                            // cast (no libm call): |v·inv| ≤ 127.
                            let r = ((v * inv).abs() + 0.5).min(127.0) as i8;
                            *o = if v < 0.0 { -r } else { r };
                        }
                    }
                    let corr = 128 * q8.iter().map(|&v| i32::from(v)).sum::<i32>();
                    let f = if t.is_normal() {
                        coef * b.scales[j] * t
                    } else {
                        0.0
                    };
                    // SAFETY: AVX-512F and VNNI detected; the codebook row
                    // is KSUB·4 bytes, the output row KSUB values.
                    let (lo, hi) = unsafe {
                        ip_lut_row_i8_avx512(
                            &b.codes[j * KSUB * 4..(j + 1) * KSUB * 4],
                            q8,
                            corr,
                            f,
                            &mut lut[j * KSUB..(j + 1) * KSUB],
                        )
                    };
                    mins.push(lo);
                    range = range.max(hi - lo);
                }
                out.mins = mins;
                // SAFETY: AVX-512F detected above.
                unsafe { quantize_lut_rows_avx512(lut, self.m, range, out) };
                return;
            }
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(h) = &self.cbt_h {
            if kern.isa() == kernels::Isa::Avx512 && std::arch::is_x86_feature_detected!("avx512f")
            {
                assert!(lut.len() >= self.m * KSUB && h.bits.len() == self.m * self.dsub * KSUB);
                let mut s = [0f32; 64];
                let mut sv = Vec::new();
                let s: &mut [f32] = if self.dsub <= s.len() {
                    &mut s[..self.dsub]
                } else {
                    sv.resize(self.dsub, 0.0);
                    &mut sv
                };
                let mut range = 0f32;
                let mut ranges = ranges;
                // The row minimums go into the table's own (reused) buffer.
                let mut mins = ranges.as_mut().map(|r| {
                    let mut v = std::mem::take(&mut r.mins);
                    v.clear();
                    v
                });
                for j in 0..self.m {
                    self.sub(q, j, s);
                    for w in s.iter_mut() {
                        *w *= coef * h.inv;
                    }
                    let t = &h.bits[j * self.dsub * KSUB..(j + 1) * self.dsub * KSUB];
                    // SAFETY: AVX-512F detected; t holds dsub rows of KSUB,
                    // the output row KSUB values.
                    let (lo, hi) =
                        unsafe { ip_lut_row_half_avx512(t, s, &mut lut[j * KSUB..(j + 1) * KSUB]) };
                    if let Some(v) = mins.as_mut() {
                        v.push(lo);
                        range = range.max(hi - lo);
                    }
                }
                if let (Some(out), Some(v)) = (ranges, mins) {
                    out.mins = v;
                    // SAFETY: AVX-512F detected above.
                    unsafe { quantize_lut_rows_avx512(lut, self.m, range, out) };
                }
                return;
            }
        }
        let _ = kern;
        pq_ip_lut(self, q, coef, lut);
        if let Some(out) = ranges {
            out.fill(lut, self.m);
        }
    }
}

/// One sub-space's row of the lookup table from the byte codebooks
/// ([`ByteTable`]): `out[c] = f · (Σ_d cw8[c][d]·q8[d] − corr)`, 16
/// codewords per `vpdpbusd` (exact integer sums); returns the row's
/// minimum and maximum.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn ip_lut_row_i8_avx512(
    cw: &[u8],
    q8: [i8; 4],
    corr: i32,
    f: f32,
    out: &mut [f32],
) -> (f32, f32) {
    use std::arch::x86_64::*;
    assert!(cw.len() == KSUB * 4 && out.len() == KSUB);
    let qb = _mm512_set1_epi32(i32::from_le_bytes(q8.map(|v| v as u8)));
    let corr = _mm512_set1_epi32(corr);
    let fv = _mm512_set1_ps(f);
    let mut lo = _mm512_set1_ps(f32::INFINITY);
    let mut hi = _mm512_set1_ps(f32::NEG_INFINITY);
    for c in 0..KSUB / 16 {
        // SAFETY: c·64 + 64 <= cw.len() and c·16 + 16 <= out.len().
        unsafe {
            let a = _mm512_loadu_si512(cw.as_ptr().add(c * 64) as *const __m512i);
            let dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), a, qb);
            let v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(dot, corr)), fv);
            lo = _mm512_min_ps(lo, v);
            hi = _mm512_max_ps(hi, v);
            _mm512_storeu_ps(out.as_mut_ptr().add(c * 16), v);
        }
    }
    (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi))
}

/// One sub-space's row of the lookup table: `out[c] = Σ_d w[d] · t[d][c]`
/// with `t` in f16 (`w.len()` rows of [`KSUB`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn ip_lut_row_half_avx512(t: &[u16], w: &[f32], out: &mut [f32]) -> (f32, f32) {
    use std::arch::x86_64::*;
    assert!(t.len() == w.len() * KSUB && out.len() == KSUB);
    let mut lo = _mm512_set1_ps(f32::INFINITY);
    let mut hi = _mm512_set1_ps(f32::NEG_INFINITY);
    for c in (0..KSUB).step_by(16) {
        let mut acc = _mm512_setzero_ps();
        for (d, &wd) in w.iter().enumerate() {
            // SAFETY: d·KSUB + c + 16 <= t.len() (asserted).
            let v = unsafe {
                _mm512_cvtph_ps(_mm256_loadu_si256(
                    t.as_ptr().add(d * KSUB + c) as *const __m256i
                ))
            };
            acc = _mm512_fmadd_ps(_mm512_set1_ps(wd), v, acc);
        }
        lo = _mm512_min_ps(lo, acc);
        hi = _mm512_max_ps(hi, acc);
        // SAFETY: c + 16 <= KSUB = out.len().
        unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(c), acc) };
    }
    (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi))
}

multiversion! {
    fn pq_ip_lut(pq: &Pq, q: &[f32], coef: f32, lut: &mut [f32]) {
        const CH: usize = 64;
        let (m, dsub) = (pq.m, pq.dsub);
        let mut s = vec![0f32; dsub];
        for j in 0..m {
            pq.sub(q, j, &mut s);
            for w in s.iter_mut() {
                *w *= coef;
            }
            let t = &pq.cbt[j * dsub * KSUB..(j + 1) * dsub * KSUB];
            // 64 table entries at a time stay in registers across the
            // sub-space's dimensions.
            for c0 in (0..KSUB).step_by(CH) {
                let mut acc = [0f32; CH];
                for (d, &w) in s.iter().enumerate() {
                    let row: &[f32; CH] = t[d * KSUB + c0..d * KSUB + c0 + CH].try_into().expect("row");
                    for c in 0..CH {
                        acc[c] += w * row[c];
                    }
                }
                lut[j * KSUB + c0..j * KSUB + c0 + CH].copy_from_slice(&acc);
            }
        }
    }
}

/// Quantise a table to u8 into `out` (only used by the VBMI scan, so
/// AVX-512); `out`'s buffers are reused.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn quantize_lut_avx512(lut: &[f32], m: usize, out: &mut QuantLut) {
    use std::arch::x86_64::*;
    assert!(lut.len() >= m * KSUB);
    out.mins.clear();
    let mut range = 0f32;
    for t in lut.chunks_exact(KSUB).take(m) {
        let p = t.as_ptr();
        // SAFETY: t has KSUB = 256 f32, read as 16 vectors of 16.
        let (lo, hi) = unsafe {
            let mut lo = _mm512_loadu_ps(p);
            let mut hi = lo;
            for i in 1..KSUB / 16 {
                let v = _mm512_loadu_ps(p.add(i * 16));
                lo = _mm512_min_ps(lo, v);
                hi = _mm512_max_ps(hi, v);
            }
            (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi))
        };
        out.mins.push(lo);
        range = range.max(hi - lo);
    }
    quantize_lut_rows_avx512(lut, m, range, out)
}

/// The second half of [`quantize_lut_avx512`]: `out.mins` holds each row's
/// minimum and `range` the largest row range.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn quantize_lut_rows_avx512(lut: &[f32], m: usize, range: f32, out: &mut QuantLut) {
    use std::arch::x86_64::*;
    assert!(lut.len() >= m * KSUB && out.mins.len() == m);
    let delta = if range > 0.0 && range.is_finite() {
        range / QLEVELS as f32
    } else {
        1.0
    };
    // Every byte is overwritten below.
    out.q.resize(m * KSUB, 0);
    let inv = _mm512_set1_ps(1.0 / delta);
    let half = _mm512_set1_ps(0.5);
    let top = _mm512_set1_ps(QLEVELS as f32);
    for ((t, o), &lo) in lut
        .chunks_exact(KSUB)
        .zip(out.q.chunks_exact_mut(KSUB))
        .zip(&out.mins)
    {
        let lo = _mm512_set1_ps(lo);
        for i in 0..KSUB / 16 {
            // SAFETY: i*16+16 <= KSUB for both the table row and the output.
            unsafe {
                let v = _mm512_loadu_ps(t.as_ptr().add(i * 16));
                // (v - lo) * inv + 0.5, in [0.5, QLEVELS + 0.5]; clamp,
                // truncate = round.
                let x = _mm512_min_ps(_mm512_fmadd_ps(_mm512_sub_ps(v, lo), inv, half), top);
                let b = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(x));
                _mm_storeu_si128(o.as_mut_ptr().add(i * 16) as *mut __m128i, b);
            }
        }
    }
    out.bias = out.mins.iter().sum();
    out.delta = delta;
}

/// Which ADC scan implementation to run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum AdcPath {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// u8-quantised table, 64 lookups per `vpermi2b` pair (AVX-512 VBMI).
    #[cfg(target_arch = "x86_64")]
    Vbmi,
    /// u8-quantised table, 16 lookups per four `tbl` (64-entry) lookups.
    #[cfg(target_arch = "aarch64")]
    Neon,
}

impl AdcPath {
    /// Best path allowed by the kernels' dispatch level (which honours
    /// `POCKETVEC_ISA`).
    pub(crate) fn for_kernels(kern: Kernels) -> AdcPath {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match kern.isa() {
                kernels::Isa::Avx512
                    if has!("avx512f") && has!("avx512bw") && has!("avx512vbmi") =>
                {
                    return AdcPath::Vbmi
                }
                kernels::Isa::Avx512 if has!("avx512f") => return AdcPath::Avx512,
                kernels::Isa::Avx512 | kernels::Isa::Avx2 if has!("avx2") => return AdcPath::Avx2,
                _ => {}
            }
        }
        #[cfg(target_arch = "aarch64")]
        if kern.isa() == kernels::Isa::Neon {
            return AdcPath::Neon;
        }
        let _ = kern;
        AdcPath::Scalar
    }

    /// Whether this path scans with the u8-quantised table.
    pub(crate) fn quantised(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            AdcPath::Vbmi => true,
            #[cfg(target_arch = "aarch64")]
            AdcPath::Neon => true,
            _ => false,
        }
    }

    /// Every path this CPU can run (tests).
    #[cfg(test)]
    pub(crate) fn all_available() -> Vec<AdcPath> {
        #[allow(unused_mut)]
        let mut v = vec![AdcPath::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") {
                v.push(AdcPath::Avx2);
            } else {
                eprintln!("skipping AVX2 ADC path: CPU lacks it");
            }
            if has!("avx512f") {
                v.push(AdcPath::Avx512);
            } else {
                eprintln!("skipping AVX-512 ADC path: CPU lacks it");
            }
            if has!("avx512f") && has!("avx512bw") && has!("avx512vbmi") {
                v.push(AdcPath::Vbmi);
            } else {
                eprintln!("skipping AVX-512 VBMI ADC path: CPU lacks it");
            }
        }
        #[cfg(target_arch = "aarch64")]
        v.push(AdcPath::Neon);
        v
    }
}

/// Levels of the quantised lookup table: entries are `0..=QLEVELS`, so the
/// grouped VBMI scan adds two sub-spaces' bytes before widening them.
/// (7 bits instead of 8 measured the same recall@10 on the real data at
/// every nprobe: 0.9507 vs 0.9508 at nprobe 56 over 1,000 queries.)
pub(crate) const QLEVELS: u32 = 127;

/// A lookup table quantised to bytes for the VBMI (and NEON) scan:
/// `lut[j][c] ≈ bias_j + delta · q[j][c]` with `q` in `0..=QLEVELS`, so a
/// code's sum is `bias + delta · Σ_j q[j][c_j]` with `bias = Σ_j bias_j`.
/// The u16 sums are exact (saturating beyond 516 sub-spaces); the error
/// per entry is at most `delta/2`, and candidates are re-ranked exactly.
#[derive(Clone, Debug, Default)]
pub(crate) struct QuantLut {
    pub(crate) q: Vec<u8>,
    pub(crate) bias: f32,
    pub(crate) delta: f32,
    /// Per-sub-space offsets (scratch for [`QuantLut::fill`]).
    mins: Vec<f32>,
}

impl QuantLut {
    /// Requires AVX-512F on x86-64 (the VBMI scan path implies it).
    #[cfg(test)]
    pub(crate) fn new(lut: &[f32], m: usize) -> QuantLut {
        let mut q = QuantLut::default();
        q.fill(lut, m);
        q
    }
    /// Quantises `lut` (`m × KSUB`) into this table, reusing its buffers.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn fill(&mut self, lut: &[f32], m: usize) {
        assert!(std::arch::is_x86_feature_detected!("avx512f"));
        // SAFETY: AVX-512F asserted just above.
        unsafe { quantize_lut_avx512(lut, m, self) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    pub(crate) fn fill(&mut self, lut: &[f32], m: usize) {
        self.mins.clear();
        let mut range = 0f32;
        for t in lut.chunks_exact(KSUB).take(m) {
            let lo = t.iter().fold(f32::INFINITY, |a, &b| a.min(b));
            let hi = t.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            self.mins.push(lo);
            range = range.max(hi - lo);
        }
        let delta = if range > 0.0 && range.is_finite() {
            range / QLEVELS as f32
        } else {
            1.0
        };
        let inv = 1.0 / delta;
        self.q.resize(m * KSUB, 0);
        for ((t, o), &lo) in lut
            .chunks_exact(KSUB)
            .zip(self.q.chunks_exact_mut(KSUB))
            .zip(&self.mins)
        {
            for (dst, &v) in o.iter_mut().zip(t) {
                *dst = ((v - lo) * inv + 0.5).min(QLEVELS as f32) as u8;
            }
        }
        self.bias = self.mins.iter().sum();
        self.delta = delta;
    }
}

/// ADC scan of `codes` (`nblocks × m × BLOCK` bytes, sub-space-major
/// blocks) against `lut` (`m × KSUB`): `out[i] ≈ Σ_j lut[j][code_i[j]]`
/// (exact in f32 for the gather paths; via `qlut` for `Vbmi`).
/// `out.len()` must be `nblocks * BLOCK`.
pub(crate) fn adc_scan(
    path: AdcPath,
    lut: &[f32],
    qlut: Option<&QuantLut>,
    m: usize,
    codes: &[u8],
    out: &mut [f32],
) {
    assert_eq!(lut.len(), m * KSUB);
    assert_eq!(codes.len(), out.len() * m);
    assert_eq!(out.len() % BLOCK, 0);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = qlut;
    match path {
        AdcPath::Scalar => adc_scan_scalar(lut, m, codes, out),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the path was chosen only after runtime detection of the
        // feature; lengths were checked above.
        AdcPath::Avx2 => unsafe { adc_scan_avx2(lut, m, codes, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        AdcPath::Avx512 => unsafe { adc_scan_avx512(lut, m, codes, out) },
        #[cfg(target_arch = "x86_64")]
        AdcPath::Vbmi => {
            let q = qlut.expect("VBMI scan needs the quantised table");
            assert_eq!(q.q.len(), m * KSUB);
            // SAFETY: as above (VBMI and BW detected with F).
            unsafe { adc_scan_vbmi(q, m, codes, out) }
        }
        #[cfg(target_arch = "aarch64")]
        AdcPath::Neon => {
            let q = qlut.expect("NEON scan needs the quantised table");
            assert_eq!(q.q.len(), m * KSUB);
            for (block, o) in codes
                .chunks_exact(m * BLOCK)
                .zip(out.chunks_exact_mut(BLOCK))
            {
                // SAFETY: NEON is part of the aarch64 baseline; lengths as asserted.
                unsafe { neon_block(q, m, block, BLOCK, o) };
            }
        }
    }
}

/// NEON: one 64-code block (`lanes ≤ 64` codes stored with stride
/// `lanes`). The 256-entry u8 row of a sub-space is 16 q-registers; each
/// `tbl` covers 64 entries and yields 0 for indices past them, so four
/// lookups at index − 0/64/128/192 OR-ed together give the entry. Sums are
/// widened into saturating u16 accumulators.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
unsafe fn neon_block(q: &QuantLut, m: usize, block: &[u8], lanes: usize, o: &mut [f32]) {
    use std::arch::aarch64::*;
    assert!(lanes <= BLOCK && block.len() >= m * lanes && o.len() >= BLOCK);
    let mut acc = [vdupq_n_u16(0); BLOCK / 8];
    let mut pad = [0u8; BLOCK];
    let (k64, k128, k192) = (vdupq_n_u8(64), vdupq_n_u8(128), vdupq_n_u8(192));
    for j in 0..m {
        let src: &[u8] = if lanes == BLOCK {
            &block[j * BLOCK..(j + 1) * BLOCK]
        } else {
            pad[..lanes].copy_from_slice(&block[j * lanes..(j + 1) * lanes]);
            &pad
        };
        let t = &q.q[j * KSUB..(j + 1) * KSUB];
        // SAFETY: every load reads 16 bytes inside `t` (256 bytes) or
        // `src` (64 bytes).
        unsafe {
            let ld = |i: usize| vld1q_u8(t.as_ptr().add(i * 16));
            let t0 = uint8x16x4_t(ld(0), ld(1), ld(2), ld(3));
            let t1 = uint8x16x4_t(ld(4), ld(5), ld(6), ld(7));
            let t2 = uint8x16x4_t(ld(8), ld(9), ld(10), ld(11));
            let t3 = uint8x16x4_t(ld(12), ld(13), ld(14), ld(15));
            for g in 0..BLOCK / 16 {
                let idx = vld1q_u8(src.as_ptr().add(g * 16));
                let v0 = vqtbl4q_u8(t0, idx);
                let v1 = vqtbl4q_u8(t1, vsubq_u8(idx, k64));
                let v2 = vqtbl4q_u8(t2, vsubq_u8(idx, k128));
                let v3 = vqtbl4q_u8(t3, vsubq_u8(idx, k192));
                let v = vorrq_u8(vorrq_u8(v0, v1), vorrq_u8(v2, v3));
                acc[2 * g] = vqaddq_u16(acc[2 * g], vmovl_u8(vget_low_u8(v)));
                acc[2 * g + 1] = vqaddq_u16(acc[2 * g + 1], vmovl_high_u8(v));
            }
        }
    }
    let mut sums = [0u16; BLOCK];
    for (i, a) in acc.iter().enumerate() {
        // SAFETY: sums has 64 u16; i*8+8 <= 64.
        unsafe { vst1q_u16(sums.as_mut_ptr().add(i * 8), *a) };
    }
    for (dst, &s) in o[..BLOCK].iter_mut().zip(&sums) {
        *dst = q.bias + q.delta * s as f32;
    }
}

fn adc_scan_scalar(lut: &[f32], m: usize, codes: &[u8], out: &mut [f32]) {
    for (block, o) in codes
        .chunks_exact(m * BLOCK)
        .zip(out.chunks_exact_mut(BLOCK))
    {
        let mut acc = [0f32; BLOCK];
        for j in 0..m {
            let t: &[f32; KSUB] = lut[j * KSUB..(j + 1) * KSUB].try_into().expect("table");
            let c: &[u8; BLOCK] = block[j * BLOCK..(j + 1) * BLOCK].try_into().expect("codes");
            for l in 0..BLOCK {
                acc[l] += t[c[l] as usize];
            }
        }
        o.copy_from_slice(&acc);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn adc_scan_avx512(lut: &[f32], m: usize, codes: &[u8], out: &mut [f32]) {
    use std::arch::x86_64::*;
    for (block, o) in codes
        .chunks_exact(m * BLOCK)
        .zip(out.chunks_exact_mut(BLOCK))
    {
        let mut acc = [_mm512_setzero_ps(); BLOCK / 16];
        let bp = block.as_ptr();
        let lp = lut.as_ptr();
        for j in 0..m {
            for (g, a) in acc.iter_mut().enumerate() {
                // SAFETY: j < m and g*16+16 <= BLOCK: the 16-byte load is
                // inside `block`; indices are u8 < KSUB inside table j.
                unsafe {
                    let c = _mm512_cvtepu8_epi32(_mm_loadu_si128(
                        bp.add(j * BLOCK + g * 16) as *const __m128i
                    ));
                    *a = _mm512_add_ps(*a, _mm512_i32gather_ps::<4>(c, lp.add(j * KSUB)));
                }
            }
        }
        for (g, a) in acc.iter().enumerate() {
            // SAFETY: `o` has BLOCK f32; g*16+16 <= BLOCK.
            unsafe { _mm512_storeu_ps(o.as_mut_ptr().add(g * 16), *a) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn adc_scan_avx2(lut: &[f32], m: usize, codes: &[u8], out: &mut [f32]) {
    use std::arch::x86_64::*;
    for (block, o) in codes
        .chunks_exact(m * BLOCK)
        .zip(out.chunks_exact_mut(BLOCK))
    {
        let mut acc = [_mm256_setzero_ps(); BLOCK / 8];
        let bp = block.as_ptr();
        let lp = lut.as_ptr();
        for j in 0..m {
            for g in 0..BLOCK / 16 {
                // SAFETY: j < m, g*16+16 <= BLOCK: the load is inside
                // `block`; indices are u8 < KSUB inside table j.
                unsafe {
                    let c = _mm_loadu_si128(bp.add(j * BLOCK + g * 16) as *const __m128i);
                    let i0 = _mm256_cvtepu8_epi32(c);
                    let i1 = _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(c));
                    let t = lp.add(j * KSUB);
                    acc[2 * g] = _mm256_add_ps(acc[2 * g], _mm256_i32gather_ps::<4>(t, i0));
                    acc[2 * g + 1] = _mm256_add_ps(acc[2 * g + 1], _mm256_i32gather_ps::<4>(t, i1));
                }
            }
        }
        for (g, a) in acc.iter().enumerate() {
            // SAFETY: `o` has BLOCK f32; g*8+8 <= BLOCK.
            unsafe { _mm256_storeu_ps(o.as_mut_ptr().add(g * 8), *a) };
        }
    }
}

/// 64 codes per sub-space step: the 256-entry u8 table sits in four zmm
/// registers; two `vpermi2b` look up the low and high halves, the code's top
/// bit picks one, and the bytes are widened into two u16 accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn adc_scan_vbmi(q: &QuantLut, m: usize, codes: &[u8], out: &mut [f32]) {
    for (block, o) in codes
        .chunks_exact(m * BLOCK)
        .zip(out.chunks_exact_mut(BLOCK))
    {
        // SAFETY: features enabled on this function; block has m·64 bytes.
        unsafe { vbmi_block(q, m, block, BLOCK, o) };
    }
}

/// One block of `lanes ≤ 64` codes stored with stride `lanes` (the
/// unpadded tail block of a chunk): masked loads, no copy. `out` gets 64
/// values, of which the first `lanes` are meaningful.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn vbmi_block(q: &QuantLut, m: usize, block: &[u8], lanes: usize, o: &mut [f32]) {
    use std::arch::x86_64::*;
    const _: () = assert!(BLOCK == 64);
    assert!(lanes <= BLOCK && block.len() >= m * lanes && o.len() >= BLOCK);
    let zero = _mm512_setzero_si512();
    let tp = q.q.as_ptr();
    let bp = block.as_ptr();
    let mask: u64 = if lanes == 64 {
        u64::MAX
    } else {
        (1u64 << lanes) - 1
    };
    let mut lo = _mm512_setzero_si512();
    let mut hi = _mm512_setzero_si512();
    for j in 0..m {
        // SAFETY: j < m: the masked load reads bytes j·lanes .. j·lanes+lanes
        // of `block` (asserted length); the four 64-byte table loads are
        // inside table j (256 bytes).
        unsafe {
            let idx = _mm512_maskz_loadu_epi8(mask, bp.add(j * lanes) as *const i8);
            let t = tp.add(j * KSUB);
            let t0 = _mm512_loadu_si512(t as *const __m512i);
            let t1 = _mm512_loadu_si512(t.add(64) as *const __m512i);
            let t2 = _mm512_loadu_si512(t.add(128) as *const __m512i);
            let t3 = _mm512_loadu_si512(t.add(192) as *const __m512i);
            let a = _mm512_permutex2var_epi8(t0, idx, t1);
            let b = _mm512_permutex2var_epi8(t2, idx, t3);
            let v = _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), a, b);
            lo = _mm512_adds_epu16(lo, _mm512_unpacklo_epi8(v, zero));
            hi = _mm512_adds_epu16(hi, _mm512_unpackhi_epi8(v, zero));
        }
    }
    let mut l16 = [0u16; 32];
    let mut h16 = [0u16; 32];
    // SAFETY: each array is 64 bytes.
    unsafe {
        _mm512_storeu_si512(l16.as_mut_ptr() as *mut __m512i, lo);
        _mm512_storeu_si512(h16.as_mut_ptr() as *mut __m512i, hi);
    }
    // unpacklo/hi interleave per 128-bit lane: u16 element e of the "lo"
    // accumulator is code (e/8)*16 + e%8, of the "hi" one that plus 8.
    for e in 0..32 {
        let pos = (e / 8) * 16 + e % 8;
        o[pos] = q.bias + q.delta * l16[e] as f32;
        o[pos + 8] = q.bias + q.delta * h16[e] as f32;
    }
}

/// Blocks scanned together by [`BlockGroup`]: each sub-space's 256-byte
/// table is loaded once for all of them, and their accumulators form
/// independent dependency chains.
#[cfg(target_arch = "x86_64")]
pub(crate) const GROUP: usize = 4;

/// Feeds code blocks (of any chunks and lists) to the VBMI scan
/// [`GROUP`] at a time. Each block is `lanes ≤ 64` codes stored with stride
/// `lanes` (sub-space-major, as in a chunk), and its 64 approximate
/// distances go to `buf[off..off + 64]` (the first `lanes` meaningful).
#[cfg(target_arch = "x86_64")]
pub(crate) struct BlockGroup<'a, 'q> {
    q: &'q QuantLut,
    m: usize,
    pend: [(&'a [u8], usize, usize); GROUP],
    n: usize,
}

#[cfg(target_arch = "x86_64")]
impl<'a, 'q> BlockGroup<'a, 'q> {
    /// Panics unless the CPU has AVX-512 F/BW/VBMI (the VBMI path is only
    /// chosen after detecting them) or `q` is not an `m`-sub-space table.
    pub(crate) fn new(q: &'q QuantLut, m: usize) -> BlockGroup<'a, 'q> {
        use std::arch::is_x86_feature_detected as has;
        assert!(has!("avx512f") && has!("avx512bw") && has!("avx512vbmi"));
        assert_eq!(q.q.len(), m * KSUB);
        BlockGroup {
            q,
            m,
            pend: [(&[], 0, 0); GROUP],
            n: 0,
        }
    }
    /// Queue one block (scanned now if the group is full).
    pub(crate) fn push(&mut self, codes: &'a [u8], lanes: usize, off: usize, buf: &mut [f32]) {
        assert!(lanes <= BLOCK && codes.len() == self.m * lanes && off + BLOCK <= buf.len());
        self.pend[self.n] = (codes, lanes, off);
        self.n += 1;
        if self.n == GROUP {
            // SAFETY: features checked in `new`; every block checked above.
            unsafe { vbmi_group::<GROUP>(self.q, self.m, &self.pend, buf) };
            self.n = 0;
        }
    }
    /// Scan the blocks still queued.
    pub(crate) fn flush(&mut self, buf: &mut [f32]) {
        for i in 0..self.n {
            // SAFETY: as in `push`.
            unsafe { vbmi_group::<1>(self.q, self.m, &[self.pend[i]], buf) };
        }
        self.n = 0;
    }
}

/// `G` blocks per sub-space step (see [`vbmi_block`] for one): the table
/// row is loaded once, each block is looked up with two `vpermi2b` and a
/// blend, and its bytes are widened by mask and shift (even and odd codes
/// in two u16 accumulators), cheaper than unpacking on Zen 4.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn vbmi_group<const G: usize>(
    q: &QuantLut,
    m: usize,
    blocks: &[(&[u8], usize, usize); G],
    buf: &mut [f32],
) {
    use std::arch::x86_64::*;
    const _: () = assert!(BLOCK == 64);
    assert!(q.q.len() >= m * KSUB);
    let mut ptr = [std::ptr::null::<u8>(); G];
    let mut stride = [0usize; G];
    let mut mask = [0u64; G];
    for g in 0..G {
        let (codes, lanes, off) = blocks[g];
        assert!(lanes <= BLOCK && codes.len() >= m * lanes && off + BLOCK <= buf.len());
        ptr[g] = codes.as_ptr();
        stride[g] = lanes;
        mask[g] = if lanes == 64 {
            u64::MAX
        } else {
            (1u64 << lanes) - 1
        };
    }
    let low = _mm512_set1_epi16(0x00ff);
    let mut ev = [_mm512_setzero_si512(); G];
    let mut od = [_mm512_setzero_si512(); G];
    let tp = q.q.as_ptr();
    // Table entries are at most [`QLEVELS`] = 127, so two sub-spaces' bytes
    // add without overflow and are widened once per pair.
    const _: () = assert!(2 * QLEVELS <= 255);
    let look = |j: usize, v: &mut [__m512i; G]| {
        // SAFETY: j < m: the four 64-byte loads are inside table j (256
        // bytes of q.q, asserted); block g's masked load reads bytes
        // j·lanes .. j·lanes + lanes of its codes (asserted length).
        unsafe {
            let t = tp.add(j * KSUB);
            let t0 = _mm512_loadu_si512(t as *const __m512i);
            let t1 = _mm512_loadu_si512(t.add(64) as *const __m512i);
            let t2 = _mm512_loadu_si512(t.add(128) as *const __m512i);
            let t3 = _mm512_loadu_si512(t.add(192) as *const __m512i);
            for g in 0..G {
                let idx = _mm512_maskz_loadu_epi8(mask[g], ptr[g].add(j * stride[g]) as *const i8);
                let a = _mm512_permutex2var_epi8(t0, idx, t1);
                let b = _mm512_permutex2var_epi8(t2, idx, t3);
                let x = _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), a, b);
                v[g] = _mm512_add_epi8(v[g], x);
            }
        }
    };
    let mut j = 0;
    while j < m {
        let mut v = [_mm512_setzero_si512(); G];
        look(j, &mut v);
        if j + 1 < m {
            look(j + 1, &mut v);
        }
        for g in 0..G {
            ev[g] = _mm512_adds_epu16(ev[g], _mm512_and_si512(v[g], low));
            od[g] = _mm512_adds_epu16(od[g], _mm512_srli_epi16::<8>(v[g]));
        }
        j += 2;
    }
    // u16 lane e of the even accumulator is code 2e, of the odd one
    // 2e + 1: widen each half to f32, scale, and interleave the two.
    let bias = _mm512_set1_ps(q.bias);
    let delta = _mm512_set1_ps(q.delta);
    let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for g in 0..G {
        let f = |v: __m512i, half: bool| {
            let h = if half {
                _mm512_extracti64x4_epi64::<1>(v)
            } else {
                _mm512_castsi512_si256(v)
            };
            // Multiply, then add (not fused): the same rounding as
            // `vbmi_block`'s `bias + delta · sum`.
            _mm512_add_ps(
                _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(h)), delta),
                bias,
            )
        };
        let (e0, e1, o0, o1) = (
            f(ev[g], false),
            f(ev[g], true),
            f(od[g], false),
            f(od[g], true),
        );
        let o = buf[blocks[g].2..blocks[g].2 + BLOCK].as_mut_ptr();
        // SAFETY: off + 64 <= buf.len() (asserted): four stores of 16 f32.
        unsafe {
            _mm512_storeu_ps(o, _mm512_permutex2var_ps(e0, lo, o0));
            _mm512_storeu_ps(o.add(16), _mm512_permutex2var_ps(e0, hi, o0));
            _mm512_storeu_ps(o.add(32), _mm512_permutex2var_ps(e1, lo, o1));
            _mm512_storeu_ps(o.add(48), _mm512_permutex2var_ps(e1, hi, o1));
        }
    }
}

/// Start loading the cache line at `p` (a hint: never faults, any address).
#[inline(always)]
pub(crate) fn prefetch_ptr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetches do not fault on any address; SSE is baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Start loading the first two cache lines of `b` (a hint: never faults).
#[inline(always)]
pub(crate) fn prefetch(b: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetches do not fault on any address; SSE is baseline.
    unsafe {
        use std::arch::x86_64::*;
        _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().cast());
        _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(64).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = b;
}

/// Scan the tail block of `lanes < 64` codes stored with stride `lanes`
/// into `out` (64 values). Returns false when the path needs the caller to
/// re-stride the block into a padded one first.
pub(crate) fn adc_scan_tail(
    path: AdcPath,
    qlut: Option<&QuantLut>,
    m: usize,
    tail: &[u8],
    lanes: usize,
    out: &mut [f32],
) -> bool {
    assert!(lanes < BLOCK && tail.len() == m * lanes && out.len() == BLOCK);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = qlut;
    match path {
        #[cfg(target_arch = "x86_64")]
        AdcPath::Vbmi => {
            let q = qlut.expect("VBMI scan needs the quantised table");
            assert_eq!(q.q.len(), m * KSUB);
            // SAFETY: the VBMI path is chosen only after runtime detection.
            unsafe { vbmi_block(q, m, tail, lanes, out) };
            true
        }
        #[cfg(target_arch = "aarch64")]
        AdcPath::Neon => {
            let q = qlut.expect("NEON scan needs the quantised table");
            assert_eq!(q.q.len(), m * KSUB);
            // SAFETY: NEON is part of the aarch64 baseline.
            unsafe { neon_block(q, m, tail, lanes, out) };
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query's lookup table, from the f16 codebooks (AVX-512) and from
    /// the f32 ones (lower levels), against an f64 reference, at data
    /// scales far apart and with a zero-padded last sub-space.
    #[test]
    fn lookup_table_matches_f64_on_every_level() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for (dim, m) in [(384usize, 96usize), (30, 7), (8, 1)] {
            for scale in [1e-12f32, 1e-3, 1.0, 1e9] {
                let dsub = Pq::dsub_for(dim, m);
                let books: Vec<f32> = (0..m * KSUB * dsub).map(|_| rnd() * scale).collect();
                let pq = Pq::from_codebooks(dim, m, books.clone());
                let q: Vec<f32> = (0..dim).map(|_| rnd()).collect();
                let coef = -2.0f32;
                for isa in [
                    kernels::Isa::Avx512,
                    kernels::Isa::Avx2,
                    kernels::Isa::Scalar,
                ] {
                    let Ok(kern) = Kernels::new(isa) else {
                        eprintln!("skipping {isa:?}: CPU lacks it");
                        continue;
                    };
                    let mut lut = vec![0f32; m * KSUB];
                    pq.ip_lut(kern, &q, coef, &mut lut);
                    for j in 0..m {
                        for c in 0..KSUB {
                            let cw = &books[(j * KSUB + c) * dsub..(j * KSUB + c + 1) * dsub];
                            let (mut want, mut mag) = (0f64, 0f64);
                            for (d, &w) in cw.iter().enumerate() {
                                let qd = q.get(j * dsub + d).copied().unwrap_or(0.0) as f64;
                                want += coef as f64 * qd * w as f64;
                                mag += (coef as f64 * qd * w as f64).abs();
                            }
                            let got = lut[j * KSUB + c] as f64;
                            assert!(
                                (got - want).abs() <= mag / 1024.0 + 1e-30,
                                "{isa:?} dim {dim} m {m} x{scale}: lut[{j}][{c}] {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn adc_paths_agree_with_reference() {
        for m in [1usize, 7, 48, 300] {
            let nb = 3;
            let lut: Vec<f32> = (0..m * KSUB)
                .map(|i| ((i * 37) % 101) as f32 * 0.25 - 3.0)
                .collect();
            let codes: Vec<u8> = (0..nb * BLOCK * m)
                .map(|i| ((i * 131 + 7) % 256) as u8)
                .collect();
            // The u8 table exists on the VBMI (AVX-512) and NEON paths.
            #[cfg(target_arch = "x86_64")]
            let qlut =
                std::arch::is_x86_feature_detected!("avx512f").then(|| QuantLut::new(&lut, m));
            #[cfg(not(target_arch = "x86_64"))]
            let qlut = Some(QuantLut::new(&lut, m));
            // f64 references from the definition: exact table and the
            // dequantised u8 table (its integer sum saturates at u16::MAX).
            let mut want = vec![0f64; nb * BLOCK];
            let mut want_q = vec![0f64; nb * BLOCK];
            for b in 0..nb {
                for l in 0..BLOCK {
                    let (mut s, mut qs) = (0f64, 0u32);
                    for j in 0..m {
                        let c = codes[b * m * BLOCK + j * BLOCK + l] as usize;
                        s += lut[j * KSUB + c] as f64;
                        qs += qlut.as_ref().map_or(0, |q| q.q[j * KSUB + c] as u32);
                    }
                    want[b * BLOCK + l] = s;
                    if let Some(q) = &qlut {
                        want_q[b * BLOCK + l] =
                            q.bias as f64 + q.delta as f64 * qs.min(u16::MAX as u32) as f64;
                    }
                }
            }
            for p in AdcPath::all_available() {
                let mut got = vec![0f32; nb * BLOCK];
                adc_scan(p, &lut, qlut.as_ref(), m, &codes, &mut got);
                let quantised = p.quantised();
                for (i, g) in got.iter().enumerate() {
                    let w = if quantised { want_q[i] } else { want[i] };
                    assert!(
                        (*g as f64 - w).abs() <= 1e-4 * w.abs().max(1.0),
                        "m {m} {p:?} lane {i}: {g} vs {w}"
                    );
                    if let (true, true, Some(q)) = (quantised, m < 258, &qlut) {
                        // Quantisation error bound: m · delta / 2.
                        let e = (*g as f64 - want[i]).abs();
                        assert!(
                            e <= m as f64 * q.delta as f64 * 0.5 + 1e-3,
                            "m {m}: error {e}"
                        );
                    }
                }
            }
        }
    }

    /// The grouped VBMI scan gives every block the same values, bit for
    /// bit, as the one-block scan, for full and partial blocks.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn grouped_vbmi_scan_matches_one_block_scan() {
        use std::arch::is_x86_feature_detected as has;
        if !(has!("avx512f") && has!("avx512bw") && has!("avx512vbmi")) {
            eprintln!("skipping the grouped VBMI scan: CPU lacks AVX-512 VBMI");
            return;
        }
        for m in [1usize, 7, 96] {
            let lut: Vec<f32> = (0..m * KSUB)
                .map(|i| ((i * 61) % 113) as f32 * 0.37 - 9.0)
                .collect();
            let q = QuantLut::new(&lut, m);
            let lanes = [64usize, 1, 43, 64, 17, 63, 64, 5, 32];
            let blocks: Vec<Vec<u8>> = lanes
                .iter()
                .enumerate()
                .map(|(b, &l)| {
                    (0..m * l)
                        .map(|i| ((i * 97 + b * 31 + 11) % 256) as u8)
                        .collect()
                })
                .collect();
            let mut buf = vec![f32::NAN; lanes.len() * BLOCK];
            let mut g = BlockGroup::new(&q, m);
            for (b, (codes, &l)) in blocks.iter().zip(&lanes).enumerate() {
                g.push(codes, l, b * BLOCK, &mut buf);
            }
            g.flush(&mut buf);
            for (b, (codes, &l)) in blocks.iter().zip(&lanes).enumerate() {
                let mut want = vec![0f32; BLOCK];
                // SAFETY: features checked above.
                unsafe { vbmi_block(&q, m, codes, l, &mut want) };
                let got = &buf[b * BLOCK..b * BLOCK + l];
                assert_eq!(
                    got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want[..l].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "m {m} block {b} lanes {l}"
                );
            }
        }
    }

    /// The table and its u8 form built in one pass equal the table built
    /// alone and then quantised.
    #[test]
    fn fused_table_ranges_match_separate_quantisation() {
        let mut state = 0x1234_5678u64;
        let mut rnd = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        #[cfg(target_arch = "x86_64")]
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("skipping: the u8 table needs AVX-512F on x86-64");
            return;
        }
        for (dim, m) in [(384usize, 96usize), (30, 7)] {
            let dsub = Pq::dsub_for(dim, m);
            let pq = Pq::from_codebooks(dim, m, (0..m * KSUB * dsub).map(|_| rnd()).collect());
            let q: Vec<f32> = (0..dim).map(|_| rnd()).collect();
            for isa in [
                kernels::Isa::Avx512,
                kernels::Isa::Avx2,
                kernels::Isa::Scalar,
            ] {
                let Ok(kern) = Kernels::new(isa) else {
                    eprintln!("skipping {isa:?}: CPU lacks it");
                    continue;
                };
                let mut lut = vec![0f32; m * KSUB];
                pq.ip_lut(kern, &q, -1.0, &mut lut);
                let mut lut2 = vec![0f32; m * KSUB];
                let mut got = QuantLut::default();
                pq.ip_lut_ranges(kern, &q, -1.0, &mut lut2, Some(&mut got));
                // The byte codebooks (AVX-512 VNNI, 4-dimensional
                // sub-spaces) give another f32 table: checked against f64
                // in `byte_codebook_table_is_within_its_bound`.
                let bytes = lut != lut2;
                #[cfg(target_arch = "x86_64")]
                assert_eq!(
                    bytes,
                    isa == kernels::Isa::Avx512
                        && dsub == 4
                        && std::arch::is_x86_feature_detected!("avx512vnni"),
                    "{isa:?} dim {dim}"
                );
                #[cfg(not(target_arch = "x86_64"))]
                assert!(!bytes);
                let want = QuantLut::new(&lut2, m);
                assert_eq!(got.q, want.q, "{isa:?}");
                assert_eq!((got.bias, got.delta), (want.bias, want.delta), "{isa:?}");
            }
        }
    }

    /// The table from the byte codebooks, against an f64 reference from
    /// the f32 codebooks, within the bound of the two roundings (codeword
    /// step `s_j`, query step `t_j`), at data scales far apart.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn byte_codebook_table_is_within_its_bound() {
        use std::arch::is_x86_feature_detected as has;
        let Ok(kern) = Kernels::new(kernels::Isa::Avx512) else {
            eprintln!("skipping the byte-codebook table: CPU lacks AVX-512");
            return;
        };
        if !has!("avx512vnni") {
            eprintln!("skipping the byte-codebook table: CPU lacks AVX-512 VNNI");
            return;
        }
        let mut state = 0xfeed_beefu64;
        let mut rnd = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for (dim, m) in [(384usize, 96usize), (30, 8), (8, 2)] {
            for scale in [1e-9f32, 1.0, 1e6] {
                let books: Vec<f32> = (0..m * KSUB * 4).map(|_| rnd() * scale).collect();
                let pq = Pq::from_codebooks(dim, m, books.clone());
                let b = pq.cb8.as_ref().expect("dsub 4 has byte codebooks");
                // A query with a zero sub-vector (dim 30: the padded tail).
                let mut q: Vec<f32> = (0..dim).map(|_| rnd() * 3.0).collect();
                q[..4].fill(0.0);
                let coef = -2.0f32;
                let mut lut = vec![0f32; m * KSUB];
                let mut ql = QuantLut::default();
                pq.ip_lut_ranges(kern, &q, coef, &mut lut, Some(&mut ql));
                for j in 0..m {
                    let qj: Vec<f64> = (0..4)
                        .map(|d| q.get(j * 4 + d).copied().unwrap_or(0.0) as f64)
                        .collect();
                    let t = qj.iter().fold(0f64, |a, v| a.max(v.abs())) / 127.0;
                    let s = b.scales[j] as f64;
                    for c in 0..KSUB {
                        let cw = &books[(j * KSUB + c) * 4..(j * KSUB + c + 1) * 4];
                        let want: f64 = (0..4).map(|d| coef as f64 * qj[d] * cw[d] as f64).sum();
                        let bound = coef.abs() as f64
                            * (0..4)
                                .map(|d| {
                                    qj[d].abs() * s / 2.0
                                        + (cw[d] as f64).abs() * t / 2.0
                                        + s * t / 4.0
                                })
                                .sum::<f64>()
                            * 1.001
                            + 1e-6 * want.abs();
                        let got = lut[j * KSUB + c] as f64;
                        assert!(
                            (got - want).abs() <= bound,
                            "dim {dim} x{scale}: lut[{j}][{c}] {got} vs {want} (bound {bound})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn tail_block_scan_matches_padded_scan() {
        let m = 5;
        let lut: Vec<f32> = (0..m * KSUB)
            .map(|i| ((i * 53) % 97) as f32 * 0.5 - 7.0)
            .collect();
        for lanes in [1usize, 13, 63] {
            let tail: Vec<u8> = (0..m * lanes).map(|i| ((i * 89 + 3) % 256) as u8).collect();
            let mut padded = vec![0u8; m * BLOCK];
            for j in 0..m {
                padded[j * BLOCK..j * BLOCK + lanes]
                    .copy_from_slice(&tail[j * lanes..(j + 1) * lanes]);
            }
            #[cfg(target_arch = "x86_64")]
            let qlut =
                std::arch::is_x86_feature_detected!("avx512f").then(|| QuantLut::new(&lut, m));
            #[cfg(not(target_arch = "x86_64"))]
            let qlut = Some(QuantLut::new(&lut, m));
            for p in AdcPath::all_available() {
                let mut want = vec![0f32; BLOCK];
                adc_scan(p, &lut, qlut.as_ref(), m, &padded, &mut want);
                let mut got = vec![0f32; BLOCK];
                if adc_scan_tail(p, qlut.as_ref(), m, &tail, lanes, &mut got) {
                    assert_eq!(&got[..lanes], &want[..lanes], "{p:?} lanes {lanes}");
                }
            }
        }
    }
}
