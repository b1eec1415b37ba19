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
//! The ADC scan works on blocks of [`BLOCK`] codes stored sub-space-major
//! (`block[j*BLOCK + lane]`), so one AVX-512 gather (or two AVX2 gathers)
//! fetches a table entry for 16 vectors at once.

use crate::error::Error;
use crate::kmeans::{argmin, kmeans, transpose, Assign, KMeansConfig};
use kernels::Kernels;

/// Codes per transposed block in list chunks.
pub const BLOCK: usize = 16;
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
            codebooks,
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

    /// Encode `x` (`dim`) into `code` (`m` bytes).
    pub(crate) fn encode(&self, x: &[f32], code: &mut [u8]) {
        let (m, dsub) = (self.m, self.dsub);
        pulp::Arch::new().dispatch(
            #[inline(always)]
            || {
                let mut acc = [0f32; KSUB];
                let mut s = vec![0f32; dsub];
                for (j, cj) in code.iter_mut().enumerate().take(m) {
                    self.sub(x, j, &mut s);
                    acc.copy_from_slice(&self.cnorm[j * KSUB..(j + 1) * KSUB]);
                    let t = &self.cbt[j * dsub * KSUB..(j + 1) * dsub * KSUB];
                    for (d, &xd) in s.iter().enumerate() {
                        let w = -2.0 * xd;
                        for (a, &tv) in acc.iter_mut().zip(&t[d * KSUB..(d + 1) * KSUB]) {
                            *a += w * tv;
                        }
                    }
                    *cj = argmin(&acc).0 as u8;
                }
            },
        )
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

    /// `lut[j*KSUB + c] = coef · (q_j · cb_j[c])`.
    pub(crate) fn ip_lut(&self, q: &[f32], coef: f32, lut: &mut [f32]) {
        let (m, dsub) = (self.m, self.dsub);
        pulp::Arch::new().dispatch(
            #[inline(always)]
            || {
                let mut s = vec![0f32; dsub];
                for j in 0..m {
                    self.sub(q, j, &mut s);
                    let acc = &mut lut[j * KSUB..(j + 1) * KSUB];
                    acc.fill(0.0);
                    let t = &self.cbt[j * dsub * KSUB..(j + 1) * dsub * KSUB];
                    for (d, &qd) in s.iter().enumerate() {
                        let w = coef * qd;
                        for (a, &tv) in acc.iter_mut().zip(&t[d * KSUB..(d + 1) * KSUB]) {
                            *a += w * tv;
                        }
                    }
                }
            },
        )
    }
}

/// Which ADC scan implementation to run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum AdcPath {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl AdcPath {
    /// Best path allowed by the kernels' dispatch level (which honours
    /// `POCKETVEC_ISA`).
    pub(crate) fn for_kernels(kern: Kernels) -> AdcPath {
        #[cfg(target_arch = "x86_64")]
        {
            match kern.isa() {
                kernels::Isa::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => {
                    return AdcPath::Avx512
                }
                kernels::Isa::Avx512 | kernels::Isa::Avx2
                    if std::arch::is_x86_feature_detected!("avx2") =>
                {
                    return AdcPath::Avx2
                }
                _ => {}
            }
        }
        let _ = kern;
        AdcPath::Scalar
    }
}

/// ADC scan of `codes` (`nblocks × m × BLOCK` bytes, sub-space-major
/// blocks) against `lut` (`m × KSUB`): `out[i] = Σ_j lut[j][code_i[j]]`.
/// `out.len()` must be `nblocks * BLOCK`.
pub(crate) fn adc_scan(path: AdcPath, lut: &[f32], m: usize, codes: &[u8], out: &mut [f32]) {
    assert_eq!(lut.len(), m * KSUB);
    assert_eq!(codes.len(), out.len() * m);
    assert_eq!(out.len() % BLOCK, 0);
    match path {
        AdcPath::Scalar => adc_scan_scalar(lut, m, codes, out),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the path was chosen only after runtime detection of the
        // feature; lengths were checked above.
        AdcPath::Avx2 => unsafe { adc_scan_avx2(lut, m, codes, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        AdcPath::Avx512 => unsafe { adc_scan_avx512(lut, m, codes, out) },
    }
}

fn adc_scan_scalar(lut: &[f32], m: usize, codes: &[u8], out: &mut [f32]) {
    for (block, o) in codes
        .chunks_exact(m * BLOCK)
        .zip(out.chunks_exact_mut(BLOCK))
    {
        let mut acc = [0f32; BLOCK];
        for j in 0..m {
            let t = &lut[j * KSUB..(j + 1) * KSUB];
            let c = &block[j * BLOCK..(j + 1) * BLOCK];
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
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let bp = block.as_ptr();
        let lp = lut.as_ptr();
        let mut j = 0;
        while j + 2 <= m {
            // SAFETY: j+1 < m, so both 16-byte loads are inside `block`, and
            // every gathered index is a u8 < KSUB inside table j / j+1.
            unsafe {
                let c0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(bp.add(j * BLOCK) as *const __m128i));
                let c1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(
                    bp.add((j + 1) * BLOCK) as *const __m128i
                ));
                let g0 = _mm512_i32gather_ps::<4>(c0, lp.add(j * KSUB));
                let g1 = _mm512_i32gather_ps::<4>(c1, lp.add((j + 1) * KSUB));
                acc0 = _mm512_add_ps(acc0, g0);
                acc1 = _mm512_add_ps(acc1, g1);
            }
            j += 2;
        }
        if j < m {
            // SAFETY: j < m, as above.
            unsafe {
                let c0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(bp.add(j * BLOCK) as *const __m128i));
                acc0 = _mm512_add_ps(acc0, _mm512_i32gather_ps::<4>(c0, lp.add(j * KSUB)));
            }
        }
        // SAFETY: `o` has exactly BLOCK = 16 f32.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), _mm512_add_ps(acc0, acc1)) };
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
        let mut lo = _mm256_setzero_ps();
        let mut hi = _mm256_setzero_ps();
        let bp = block.as_ptr();
        let lp = lut.as_ptr();
        for j in 0..m {
            // SAFETY: j < m: the 16-byte load is inside `block`; indices are
            // u8 < KSUB inside table j.
            unsafe {
                let c = _mm_loadu_si128(bp.add(j * BLOCK) as *const __m128i);
                let i0 = _mm256_cvtepu8_epi32(c);
                let i1 = _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(c));
                let t = lp.add(j * KSUB);
                lo = _mm256_add_ps(lo, _mm256_i32gather_ps::<4>(t, i0));
                hi = _mm256_add_ps(hi, _mm256_i32gather_ps::<4>(t, i1));
            }
        }
        // SAFETY: `o` has exactly 16 f32.
        unsafe {
            _mm256_storeu_ps(o.as_mut_ptr(), lo);
            _mm256_storeu_ps(o.as_mut_ptr().add(8), hi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adc_paths_agree_with_scalar() {
        let m = 7;
        let nb = 5;
        let lut: Vec<f32> = (0..m * KSUB)
            .map(|i| ((i * 37) % 101) as f32 * 0.25 - 3.0)
            .collect();
        let codes: Vec<u8> = (0..nb * BLOCK * m)
            .map(|i| ((i * 131 + 7) % 256) as u8)
            .collect();
        let mut want = vec![0f32; nb * BLOCK];
        // f64 reference from the definition.
        for b in 0..nb {
            for l in 0..BLOCK {
                let mut s = 0f64;
                for j in 0..m {
                    s += lut[j * KSUB + codes[b * m * BLOCK + j * BLOCK + l] as usize] as f64;
                }
                want[b * BLOCK + l] = s as f32;
            }
        }
        let mut paths = vec![AdcPath::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                paths.push(AdcPath::Avx2);
            } else {
                eprintln!("skipping AVX2 ADC path: CPU lacks it");
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                paths.push(AdcPath::Avx512);
            } else {
                eprintln!("skipping AVX-512 ADC path: CPU lacks it");
            }
        }
        for p in paths {
            let mut got = vec![0f32; nb * BLOCK];
            adc_scan(p, &lut, m, &codes, &mut got);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                    "{p:?}: {g} vs {w}"
                );
            }
        }
    }
}
