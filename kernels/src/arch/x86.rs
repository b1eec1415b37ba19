//! x86-64 hand-written pieces: F16C conversion, int8 products with AVX2
//! (`vpmaddwd` on sign-extended i16) and with AVX-512 VNNI (`vpdpbusd`).
//!
//! `vpdpbusd` multiplies *unsigned* bytes by signed bytes. To use it on two
//! signed vectors we flip the sign bit of `a`, which maps it to the unsigned
//! `a + 128`, and subtract the bias afterwards:
//! Σ (a+128)·b − Σ 128·b = Σ a·b, where Σ 128·b is itself one `vpdpbusd` of
//! the constant 0x80 with `b`. This is exact for every input, −128 included
//! (the classic `vpsignb` trick is not: it negates −128 to itself).
use core::arch::x86_64::*;

use pulp::f32x8;
use pulp::x86::V3;

use super::{padded, Token, I8_CHUNK};
use crate::f16;
use crate::level::{V3Plus, V4Plus};

#[inline(always)]
fn hsum256(v: __m256i) -> i32 {
    // SAFETY: the callers run with AVX2 enabled (see `Token` impls below).
    unsafe {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s)
    }
}

/// The lane sums of three f32x8 registers, reduced together: a transpose-
/// and-add within each 128-bit half leaves `[Σx, Σy, Σz, Σz]` per half, then
/// the halves are added (10 instructions instead of 3 × 6).
///
/// # Safety
/// AVX must be enabled.
#[inline(always)]
unsafe fn reduce3_256(x: f32x8, y: f32x8, z: f32x8) -> (f32, f32, f32) {
    // SAFETY: AVX only.
    unsafe {
        let r = reduce3_256_vec(x, y, z);
        (
            _mm_cvtss_f32(r),
            _mm_cvtss_f32(_mm_movehdup_ps(r)),
            _mm_cvtss_f32(_mm_movehl_ps(r, r)),
        )
    }
}

/// [`reduce3_256`] left in a register: `[Σx, Σy, Σz, Σz]`.
///
/// # Safety
/// AVX must be enabled.
#[inline(always)]
unsafe fn reduce3_256_vec(x: f32x8, y: f32x8, z: f32x8) -> __m128 {
    // SAFETY: AVX only.
    unsafe {
        let (x, y, z): (__m256, __m256, __m256) = (pulp::cast(x), pulp::cast(y), pulp::cast(z));
        let s = _mm256_add_ps(_mm256_unpacklo_ps(x, y), _mm256_unpackhi_ps(x, y));
        let u = _mm256_add_ps(_mm256_unpacklo_ps(z, z), _mm256_unpackhi_ps(z, z));
        let r = _mm256_add_ps(
            _mm256_shuffle_ps::<0b01_00_01_00>(s, u),
            _mm256_shuffle_ps::<0b11_10_11_10>(s, u),
        );
        _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps::<1>(r))
    }
}

/// Loads 16 bytes at `p` and sign-extends them to 16 i16 lanes.
///
/// # Safety
/// AVX2 must be enabled and `p..p+16` readable.
#[inline(always)]
unsafe fn load_i16x16(p: *const i8) -> __m256i {
    unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast())) }
}

impl Token for V3Plus {
    type S = V3;
    #[inline(always)]
    fn simd(self) -> V3 {
        self.base()
    }

    #[inline(always)]
    fn reduce3(self, x: f32x8, y: f32x8, z: f32x8) -> (f32, f32, f32) {
        // SAFETY: this token proves AVX.
        unsafe { reduce3_256(x, y, z) }
    }

    #[inline(always)]
    fn widen(self, src: &[f16]) -> f32x8 {
        let src = &src[..8];
        // SAFETY: `src` holds 8 halves (16 bytes); this token proves F16C.
        unsafe { pulp::cast(_mm256_cvtph_ps(_mm_loadu_si128(src.as_ptr().cast()))) }
    }

    #[inline(always)]
    fn narrow(self, v: f32x8, dst: &mut [f16]) {
        let dst = &mut dst[..8];
        // SAFETY: `dst` holds 8 halves (16 bytes); this token proves F16C.
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(pulp::cast(v));
            _mm_storeu_si128(dst.as_mut_ptr().cast(), h);
        }
    }

    #[inline(always)]
    fn dot_i8(self, a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: every load reads 16 bytes at offsets `i + 16k` with
        // `i + 16k + 16 <= n`; the tail goes through padded stack copies.
        // This token proves AVX2.
        unsafe {
            let mut acc = [_mm256_setzero_si256(); 4];
            let mut i = 0;
            while i + 64 <= n {
                for (k, acc) in acc.iter_mut().enumerate() {
                    let p = _mm256_madd_epi16(
                        load_i16x16(pa.add(i + 16 * k)),
                        load_i16x16(pb.add(i + 16 * k)),
                    );
                    *acc = _mm256_add_epi32(*acc, p);
                }
                i += 64;
            }
            while i + 16 <= n {
                let p = _mm256_madd_epi16(load_i16x16(pa.add(i)), load_i16x16(pb.add(i)));
                acc[0] = _mm256_add_epi32(acc[0], p);
                i += 16;
            }
            if i < n {
                let ta: [i8; 16] = padded(&a[i..n]);
                let tb: [i8; 16] = padded(&b[i..n]);
                let p = _mm256_madd_epi16(load_i16x16(ta.as_ptr()), load_i16x16(tb.as_ptr()));
                acc[1] = _mm256_add_epi32(acc[1], p);
            }
            hsum256(_mm256_add_epi32(
                _mm256_add_epi32(acc[0], acc[1]),
                _mm256_add_epi32(acc[2], acc[3]),
            ))
        }
    }

    #[inline(always)]
    fn l2sq_i8(self, a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: as in `dot_i8`.
        unsafe {
            macro_rules! sq {
                ($x:expr, $y:expr) => {{
                    let d = _mm256_sub_epi16(load_i16x16($x), load_i16x16($y));
                    _mm256_madd_epi16(d, d)
                }};
            }
            let mut acc = [_mm256_setzero_si256(); 4];
            let mut i = 0;
            while i + 64 <= n {
                for (k, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_add_epi32(*acc, sq!(pa.add(i + 16 * k), pb.add(i + 16 * k)));
                }
                i += 64;
            }
            while i + 16 <= n {
                acc[0] = _mm256_add_epi32(acc[0], sq!(pa.add(i), pb.add(i)));
                i += 16;
            }
            if i < n {
                let ta: [i8; 16] = padded(&a[i..n]);
                let tb: [i8; 16] = padded(&b[i..n]);
                acc[1] = _mm256_add_epi32(acc[1], sq!(ta.as_ptr(), tb.as_ptr()));
            }
            hsum256(_mm256_add_epi32(
                _mm256_add_epi32(acc[0], acc[1]),
                _mm256_add_epi32(acc[2], acc[3]),
            ))
        }
    }

    #[inline(always)]
    fn cos_i8(self, a: &[i8], b: &[i8]) -> (i32, i32, i32) {
        // SAFETY: this token proves AVX2.
        unsafe { lanes3(cos_sums_v3(a, b)) }
    }

    /// Up to `I8_CHUNK` elements: the three sums reduced together and the
    /// similarity finished in vector registers (f64 square root and
    /// division); longer vectors take the chunked path.
    #[inline(always)]
    fn cos_sim_i8(self, a: &[i8], b: &[i8]) -> f32 {
        if a.len().min(b.len()) > I8_CHUNK {
            return cos_sim_i8_long_v3(self, a, b);
        }
        // SAFETY: this token proves AVX2.
        unsafe { cos_sim_sqrt(cos_sums_v3(a, b)) }
    }
}

/// [`cos_sim_i8_long`] for the AVX2 level.
#[cold]
#[inline(never)]
fn cos_sim_i8_long_v3(t: V3Plus, a: &[i8], b: &[i8]) -> f32 {
    t.vectorize(|| {
        let (ab, aa, bb) = crate::i8s::cos_parts(t, a, b);
        crate::finish::cos_sim(ab as f64, aa as f64, bb as f64)
    })
}

/// `[Σab, Σa², Σb², _]` of `n <= I8_CHUNK` int8 pairs with `vpmaddwd` on
/// sign-extended i16, exact in wrapping i32 lanes.
///
/// # Safety
/// AVX2 must be enabled.
#[inline(always)]
unsafe fn cos_sums_v3(a: &[i8], b: &[i8]) -> __m128i {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    // SAFETY: every load reads 16 bytes at offsets `i + 16k` with
    // `i + 16k + 16 <= n`; the tail goes through padded stack copies.
    unsafe {
        let z = _mm256_setzero_si256();
        let (mut ab, mut aa, mut bb) = ([z; 2], [z; 2], [z; 2]);
        macro_rules! step {
            ($k:expr, $x:expr, $y:expr) => {{
                let (x, y) = ($x, $y);
                ab[$k] = _mm256_add_epi32(ab[$k], _mm256_madd_epi16(x, y));
                aa[$k] = _mm256_add_epi32(aa[$k], _mm256_madd_epi16(x, x));
                bb[$k] = _mm256_add_epi32(bb[$k], _mm256_madd_epi16(y, y));
            }};
        }
        let mut i = 0;
        while i + 32 <= n {
            step!(0, load_i16x16(pa.add(i)), load_i16x16(pb.add(i)));
            step!(1, load_i16x16(pa.add(i + 16)), load_i16x16(pb.add(i + 16)));
            i += 32;
        }
        if i + 16 <= n {
            step!(0, load_i16x16(pa.add(i)), load_i16x16(pb.add(i)));
            i += 16;
        }
        if i < n {
            let ta: [i8; 16] = padded(&a[i..n]);
            let tb: [i8; 16] = padded(&b[i..n]);
            step!(1, load_i16x16(ta.as_ptr()), load_i16x16(tb.as_ptr()));
        }
        let ab = _mm256_add_epi32(ab[0], ab[1]);
        let aa = _mm256_add_epi32(aa[0], aa[1]);
        let bb = _mm256_add_epi32(bb[0], bb[1]);
        // Transpose-and-add within each 128-bit half, as in `reduce3_256`.
        let s = _mm256_add_epi32(_mm256_unpacklo_epi32(ab, aa), _mm256_unpackhi_epi32(ab, aa));
        let u = _mm256_add_epi32(_mm256_unpacklo_epi32(bb, bb), _mm256_unpackhi_epi32(bb, bb));
        let r = _mm256_add_epi32(_mm256_unpacklo_epi64(s, u), _mm256_unpackhi_epi64(s, u));
        _mm_add_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256::<1>(r))
    }
}

/// The first three i32 lanes.
///
/// # Safety
/// SSE4.1 must be enabled.
#[inline(always)]
unsafe fn lanes3(r: __m128i) -> (i32, i32, i32) {
    // SAFETY: SSE4.1 only.
    unsafe {
        (
            _mm_cvtsi128_si32(r),
            _mm_extract_epi32::<1>(r),
            _mm_extract_epi32::<2>(r),
        )
    }
}

/// [`crate::finish::cos_sim`] of exact sums `[Σab, Σa², Σb², _]`: 0 if either
/// norm is zero, else Σab / √(Σa²·Σb²) in f64 (one `sqrtsd`, one `divsd`),
/// clamped to [-1, 1].
///
/// # Safety
/// SSE2 must be enabled.
#[inline(always)]
unsafe fn cos_sim_sqrt(r: __m128i) -> f32 {
    // SAFETY: SSE2 only.
    unsafe {
        let lo = _mm_cvtepi32_pd(r); // [Σab, Σa²]
        let hi = _mm_cvtepi32_pd(_mm_unpackhi_epi64(r, r)); // [Σb², _]
        let p = _mm_mul_sd(_mm_unpackhi_pd(lo, lo), hi);
        if _mm_cvtsd_f64(p) == 0.0 {
            return 0.0;
        }
        let q = _mm_div_sd(lo, _mm_sqrt_sd(p, p));
        let q = _mm_min_sd(_mm_max_sd(q, _mm_set_sd(-1.0)), _mm_set_sd(1.0));
        _mm_cvtss_f32(_mm_cvtsd_ss(_mm_setzero_ps(), q))
    }
}

/// Mask selecting the first `r < 64` bytes.
#[inline(always)]
fn mask64(r: usize) -> __mmask64 {
    debug_assert!(r < 64);
    (1u64 << r) - 1
}

/// The f16 bodies at the AVX-512 level run on 256-bit registers: on Zen 4 a
/// 512-bit `vcvtph2ps` has half the throughput of two 256-bit ones, and the
/// f16 kernels are bound by conversions, not by FMAs. They still get
/// AVX-512's 32 registers, so more accumulators fit.
impl Token for V4Plus {
    type S = V3;
    #[inline(always)]
    fn simd(self) -> V3 {
        self.v3()
    }

    #[inline(always)]
    fn reduce3(self, x: f32x8, y: f32x8, z: f32x8) -> (f32, f32, f32) {
        // SAFETY: this token proves AVX.
        unsafe { reduce3_256(x, y, z) }
    }

    /// Σab / √(Σa²·Σb²) as Σab·y with y from `vrsqrt14ps` (relative error
    /// below 2⁻¹⁴) and one Newton step (below 1.5·2⁻²⁸, plus a few f32
    /// roundings): shorter latency than `vsqrtss` + `vdivss`, which matters
    /// at d = 128. Outside the normal range the f64 path decides.
    ///
    /// The arithmetic runs on the whole register (`vmulps`, `vrsqrt14ps`,
    /// ...; the other lanes are ignored) and the range is
    /// tested with one `vfpclassss`: the scalar forms merge lanes, for which
    /// the compiler puts blends on the chain, and a scalar range test took
    /// eight integer instructions.
    #[inline(always)]
    fn reduce3_cos(self, x: f32x8, y: f32x8, z: f32x8) -> f32 {
        // SAFETY: this token proves AVX-512 F/DQ and FMA.
        unsafe {
            let r = reduce3_256_vec(x, y, z); // [Σab, Σa², Σb², Σb²]
            let pv = _mm_mul_ps(_mm_movehdup_ps(r), _mm_movehl_ps(r, r)); // [Σa²·Σb², ...]
                                                                          // Any of: NaN, ±0, ±∞, subnormal, negative.
            if _mm_fpclass_ss_mask::<0xFF>(pv) != 0 {
                let aa = _mm_cvtss_f32(_mm_movehdup_ps(r));
                let bb = _mm_cvtss_f32(_mm_movehl_ps(r, r));
                return crate::finish::cos_sim_f32(_mm_cvtss_f32(r), aa, bb);
            }
            let y = _mm_rsqrt14_ps(pv);
            // h = 1.5 − (0.5·p)·y·y, with 0.5·p computed beside the estimate.
            let hp = _mm_mul_ps(pv, _mm_set1_ps(0.5));
            let h = _mm_fnmadd_ps(_mm_mul_ps(hp, y), y, _mm_set1_ps(1.5));
            let q = _mm_mul_ps(_mm_mul_ps(r, y), h);
            // Clamp to [-1, 1] in one `vrangeps` (sign of q, min(|q|, 1));
            // q is finite here: p is a normal positive number, so no term of
            // Σab is infinite or NaN.
            _mm_cvtss_f32(_mm_range_ps::<0b0010>(q, _mm_set1_ps(1.0)))
        }
    }

    /// A masked load instead of a zero-padded copy: no `memcpy` call, so the
    /// kernel keeps its accumulators in registers.
    #[inline(always)]
    fn widen_tail(self, src: &[f16]) -> f32x8 {
        let n = src.len().min(8);
        // SAFETY: the mask selects the first `n` halves, all inside `src`
        // (masked-out elements are neither read nor faulted on); this token
        // proves AVX-512 BW/VL and F16C.
        unsafe {
            let h = _mm_maskz_loadu_epi16(((1u32 << n) - 1) as __mmask8, src.as_ptr().cast());
            pulp::cast(_mm256_cvtph_ps(h))
        }
    }

    #[inline(always)]
    fn widen(self, src: &[f16]) -> f32x8 {
        let src = &src[..8];
        // SAFETY: `src` holds 8 halves (16 bytes); this token proves F16C.
        unsafe { pulp::cast(_mm256_cvtph_ps(_mm_loadu_si128(src.as_ptr().cast()))) }
    }

    #[inline(always)]
    fn narrow(self, v: f32x8, dst: &mut [f16]) {
        let dst = &mut dst[..8];
        // SAFETY: `dst` holds 8 halves (16 bytes); this token proves F16C.
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(pulp::cast(v));
            _mm_storeu_si128(dst.as_mut_ptr().cast(), h);
        }
    }

    #[inline(always)]
    fn dot_i8(self, a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: full loads read 64 bytes at `i + 64k` with `i + 64k + 64 <= n`;
        // the tail is a masked load of the `n - i` remaining bytes (masked-out
        // bytes are neither read nor faulted on). This token proves AVX-512
        // F/BW and VNNI.
        unsafe {
            let bias = _mm512_set1_epi8(-128);
            let z = _mm512_setzero_si512();
            let (mut acc, mut cor) = ([z; 4], [z; 2]);
            let mut i = 0;
            while i + 256 <= n {
                for k in 0..4 {
                    let x = _mm512_loadu_si512(pa.add(i + 64 * k).cast());
                    let y = _mm512_loadu_si512(pb.add(i + 64 * k).cast());
                    acc[k] = _mm512_dpbusd_epi32(acc[k], _mm512_xor_si512(x, bias), y);
                    cor[k & 1] = _mm512_dpbusd_epi32(cor[k & 1], bias, y);
                }
                i += 256;
            }
            while i + 64 <= n {
                let x = _mm512_loadu_si512(pa.add(i).cast());
                let y = _mm512_loadu_si512(pb.add(i).cast());
                acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_xor_si512(x, bias), y);
                cor[0] = _mm512_dpbusd_epi32(cor[0], bias, y);
                i += 64;
            }
            if i < n {
                let m = mask64(n - i);
                let x = _mm512_maskz_loadu_epi8(m, pa.add(i));
                let y = _mm512_maskz_loadu_epi8(m, pb.add(i));
                acc[1] = _mm512_dpbusd_epi32(acc[1], _mm512_xor_si512(x, bias), y);
                cor[1] = _mm512_dpbusd_epi32(cor[1], bias, y);
            }
            let s = _mm512_add_epi32(
                _mm512_add_epi32(acc[0], acc[1]),
                _mm512_add_epi32(acc[2], acc[3]),
            );
            _mm512_reduce_add_epi32(_mm512_sub_epi32(s, _mm512_add_epi32(cor[0], cor[1])))
        }
    }

    #[inline(always)]
    fn l2sq_i8(self, a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: full loads read 32 bytes at `i + 32k` with `i + 32k + 32 <= n`;
        // the tail is a masked load. This token proves AVX-512 F/BW and VNNI.
        unsafe {
            macro_rules! ld {
                ($p:expr) => {
                    _mm512_cvtepi8_epi16(_mm256_loadu_si256($p.cast()))
                };
            }
            let z = _mm512_setzero_si512();
            let mut acc = [z; 4];
            let mut i = 0;
            while i + 128 <= n {
                for (k, acc) in acc.iter_mut().enumerate() {
                    let d = _mm512_sub_epi16(ld!(pa.add(i + 32 * k)), ld!(pb.add(i + 32 * k)));
                    *acc = _mm512_dpwssd_epi32(*acc, d, d);
                }
                i += 128;
            }
            while i + 32 <= n {
                let d = _mm512_sub_epi16(ld!(pa.add(i)), ld!(pb.add(i)));
                acc[0] = _mm512_dpwssd_epi32(acc[0], d, d);
                i += 32;
            }
            if i < n {
                let m = (1u32 << (n - i)) - 1;
                let x = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, pa.add(i)));
                let y = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, pb.add(i)));
                let d = _mm512_sub_epi16(x, y);
                acc[1] = _mm512_dpwssd_epi32(acc[1], d, d);
            }
            _mm512_reduce_add_epi32(_mm512_add_epi32(
                _mm512_add_epi32(acc[0], acc[1]),
                _mm512_add_epi32(acc[2], acc[3]),
            ))
        }
    }

    #[inline(always)]
    fn cos_i8(self, a: &[i8], b: &[i8]) -> (i32, i32, i32) {
        let n = a.len().min(b.len());
        // SAFETY: `cos_sums` reads `n` bytes of each slice; this token
        // proves AVX-512 F/BW and VNNI.
        let (aa, ab, bb) = unsafe { lanes3(cos_sums(a.as_ptr(), b.as_ptr(), n)) };
        (ab, aa, bb)
    }

    /// Up to `I8_CHUNK` elements: the three sums are reduced together and
    /// the similarity finished in vector registers (a d=128 call is mostly
    /// this fixed part). Longer vectors take the chunked path.
    #[inline(always)]
    fn cos_sim_i8(self, a: &[i8], b: &[i8]) -> f32 {
        let n = a.len().min(b.len());
        if n > I8_CHUNK {
            return cos_sim_i8_long(self, a, b);
        }
        // SAFETY: as in `cos_i8`.
        unsafe { cos_sim_from_sums(cos_sums(a.as_ptr(), b.as_ptr(), n)) }
    }
}

/// The chunked int8 cosine for vectors longer than `I8_CHUNK`, out of line so
/// that its loop does not weigh on the short path's registers.
#[cold]
#[inline(never)]
fn cos_sim_i8_long(t: V4Plus, a: &[i8], b: &[i8]) -> f32 {
    t.vectorize(|| {
        let (ab, aa, bb) = crate::i8s::cos_parts(t, a, b);
        crate::finish::cos_sim(ab as f64, aa as f64, bb as f64)
    })
}

/// `[Σa², Σab, Σb², Σb²]` of `n <= I8_CHUNK` int8 pairs, exact in wrapping i32
/// lanes.
///
/// `vpdpbusd` multiplies unsigned by signed bytes. With `ua = a ^ 0x80 = a + 128`
/// (unsigned) it gives Σ ua·b = Σab + 128·Σb, Σ ua·a = Σa² + 128·Σa and
/// Σ ub·b = Σb² + 128·Σb, exact for every input including −128; two more
/// `vpdpbusd` of the constant 128 with `a` and `b` give the bias terms. Five
/// per 64 elements is the fastest exact form we measured on Zen 4, where
/// `vpdpbusd`, `vpabsb`, `vpmovb2m`, the byte compares into a mask and
/// `vpsadbw` all issue to the same two pipes (one 512-bit op per cycle
/// together): `vpabsb` operands with a −128 fallback need more of those slots
/// (two `vpabsb` and a `vpmovb2m` for the sign beside three `vpdpbusd`), and
/// a `vpminub`-based |a| on the other pipes ran 5–10% slower at d ≥ 768.
///
/// One accumulator per sum: five independent chains of 4-cycle `vpdpbusd`
/// already cover the pipe's one-per-cycle rate, and fewer accumulators make
/// a shorter reduction. The tail after the loop is most of a short call,
/// and on Zen 4 its cost per call follows the number of vector instructions
/// waiting on the chain more than the chain's latency (measured with
/// back-to-back independent calls), so the reduction transposes the three
/// sums at 512 bits first and then folds the one result 512 → 256 → 128
/// bits: 15 instructions instead of 19 for one-fold-per-sum-then-transpose
/// (and instead of 17 for three parallel 128-bit extracts, which is 3 cycles
/// shorter but measured slower per call). It leaves Σa² in lane 0, where the
/// finish needs it without another shuffle.
/// Masked-out tail bytes are zero, which adds nothing to any sum.
///
/// # Safety
/// AVX-512 F/BW and VNNI must be enabled; `a` and `b` must be readable for
/// `n` bytes.
#[inline(always)]
unsafe fn cos_sums(pa: *const i8, pb: *const i8, n: usize) -> __m128i {
    debug_assert!(n <= super::I8_CHUNK);
    // SAFETY: full loads read 64 bytes at `i` with `i + 64 <= n`; the tail is
    // a masked load of the `n - i` remaining bytes (masked-out bytes are
    // neither read nor faulted on).
    unsafe {
        let bias = _mm512_set1_epi8(-128);
        let z = _mm512_setzero_si512();
        let (mut ab, mut aa, mut bb, mut ca, mut cb) = (z, z, z, z, z);
        macro_rules! step {
            ($x:expr, $y:expr) => {{
                let (x, y) = ($x, $y);
                let ux = _mm512_xor_si512(x, bias);
                let uy = _mm512_xor_si512(y, bias);
                ab = _mm512_dpbusd_epi32(ab, ux, y);
                aa = _mm512_dpbusd_epi32(aa, ux, x);
                bb = _mm512_dpbusd_epi32(bb, uy, y);
                ca = _mm512_dpbusd_epi32(ca, bias, x);
                cb = _mm512_dpbusd_epi32(cb, bias, y);
            }};
        }
        let mut i = 0;
        while i + 64 <= n {
            step!(
                _mm512_loadu_si512(pa.add(i).cast()),
                _mm512_loadu_si512(pb.add(i).cast())
            );
            i += 64;
        }
        if i < n {
            let m = mask64(n - i);
            step!(
                _mm512_maskz_loadu_epi8(m, pa.add(i)),
                _mm512_maskz_loadu_epi8(m, pb.add(i))
            );
        }
        let aa = _mm512_sub_epi32(aa, ca);
        let ab = _mm512_sub_epi32(ab, cb);
        let bb = _mm512_sub_epi32(bb, cb);
        // Transpose-and-add within each 128-bit lane, on the whole 512 bits:
        // lane L becomes [Σa², Σab, Σb², Σb²] of its elements. Only then
        // are the four lanes added (512 → 256 → 128 bits), so the three sums
        // share two cross-lane folds instead of taking one each.
        let s = _mm512_add_epi32(_mm512_unpacklo_epi32(aa, ab), _mm512_unpackhi_epi32(aa, ab));
        let u = _mm512_add_epi32(bb, _mm512_shuffle_epi32::<0b10_11_00_01>(bb));
        let r = _mm512_add_epi32(_mm512_unpacklo_epi64(s, u), _mm512_unpackhi_epi64(s, u));
        let r = _mm256_add_epi32(_mm512_castsi512_si256(r), _mm512_extracti64x4_epi64::<1>(r));
        _mm_add_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256::<1>(r))
    }
}

/// [`crate::finish::cos_sim`] of exact sums `[Σa², Σab, Σb², _]` (Σa², Σb²
/// non-negative, so no NaN can arise): 0 if either norm is zero, else
/// Σab / √(Σa²·Σb²) in f64 to within 2⁻²⁷ relative.
///
/// No clamp to [-1, 1] is needed: by Cauchy–Schwarz |Σab| ≤ √(Σa²·Σb²) for
/// the exact integers, the Newton step below never overestimates 1/√p (its
/// factor 1 − 1.5ε² − 0.5ε³ is at most 1 for any estimate error ε > −1),
/// and the handful of f64 roundings add under 2⁻⁵⁰, so the f64 quotient is
/// within 1 + 2⁻⁵⁰ of ±1 at worst and rounds to at most 1.0 in f32 (values
/// below 1 + 2⁻²⁴ round to 1). Dropping `vmaxsd`/`vminsd` shortens the chain
/// a d=128 call waits on.
///
/// No branch for the zero norm either: p is computed as Σa²·Σb² + 2⁻⁶⁰ in
/// one FMA. For p ≥ 1 the addend is far below half an ulp, so p is unchanged
/// where Σa²·Σb² is exact in f64 (below 2⁵³, i.e. n ≤ 5792 at the extremes)
/// and within one ulp beyond; for a zero norm Σab is 0 as well (a zero
/// vector), 1/√p is about 2³⁰ instead of +∞, and the quotient is exactly
/// +0.0 — the documented answer — without the test-and-branch, whose mask
/// move and compare were a measurable share of a d = 128 call.
///
/// # Safety
/// AVX-512 F and FMA must be enabled.
#[inline(always)]
unsafe fn cos_sim_from_sums(r: __m128i) -> f32 {
    // SAFETY: SSE2, FMA and AVX-512 F.
    unsafe {
        let a = _mm_cvtepi32_pd(r); // [Σa², Σab]
        let b = _mm_cvtepi32_pd(_mm_unpackhi_epi64(r, r)); // [Σb², Σb²]

        // p = [Σa²·Σb² + 2⁻⁶⁰, _]: never zero, see above.
        let pv = _mm_fmadd_pd(a, b, _mm_set1_pd(ZERO_NORM_GUARD));
        // Σab / √p as Σab·y with y ≈ 1/√p: `vrsqrt14pd` (relative error
        // below 2⁻¹⁴) and one Newton step y·(1.5 − 0.5·p·y²), which leaves a
        // relative error below 1.5·2⁻²⁸ (plus f64 rounding), far under the
        // final f32 rounding. Shorter latency than `vsqrtsd` + `vdivsd`.
        // Written as packed arithmetic on the whole register (the upper
        // lane is ignored), so no lane merge can put a blend on the chain;
        // the compiler is free to encode it with the scalar forms.
        let y = _mm_rsqrt14_pd(pv);
        // h = 1.5 − (0.5·p)·y·y, with 0.5·p computed beside the estimate.
        let hp = _mm_mul_pd(pv, _mm_set1_pd(0.5));
        let h = _mm_fnmadd_pd(_mm_mul_pd(hp, y), y, _mm_set1_pd(1.5));
        let q = _mm_mul_pd(_mm_mul_pd(_mm_unpackhi_pd(a, a), y), h);
        _mm_cvtss_f32(_mm_cvtpd_ps(q))
    }
}

/// 2⁻⁶⁰, added to Σa²·Σb² by the AVX-512 int8 cosine finish so that a zero
/// norm needs no branch (see [`cos_sim_from_sums`]).
const ZERO_NORM_GUARD: f64 = 8.673_617_379_884_035e-19;
