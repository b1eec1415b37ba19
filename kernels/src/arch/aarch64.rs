//! aarch64 hand-written pieces, all on stable Rust: f16 conversion with the
//! base-ARMv8 `fcvtl`/`fcvtn` instructions (inline asm, because the
//! `float16x4_t` intrinsics are still unstable) and int8 products with
//! `smull`/`smull2` + `sadalp` (the `sdot` intrinsic is nightly-only).
use core::arch::aarch64::*;
use core::arch::asm;

use pulp::aarch64::Neon;
use pulp::f32x4;

use super::{padded, Token};
use crate::f16;

/// Adds the eight i8×i8 products of the low (`hi == false`) or high half of
/// `x`, `y` pairwise into `acc`.
#[inline(always)]
fn mul_acc(acc: int32x4_t, x: int8x16_t, y: int8x16_t, hi: bool) -> int32x4_t {
    // SAFETY: NEON is part of the aarch64 baseline and proven by the token.
    unsafe {
        let p = if hi {
            vmull_high_s8(x, y)
        } else {
            vmull_s8(vget_low_s8(x), vget_low_s8(y))
        };
        vpadalq_s16(acc, p)
    }
}

impl Token for Neon {
    type S = Neon;
    #[inline(always)]
    fn simd(self) -> Neon {
        self
    }

    #[inline(always)]
    fn widen(self, src: &[f16]) -> f32x4 {
        let src = &src[..4];
        // SAFETY: `src` holds 4 halves (8 bytes). `fcvtl` (half to single) is
        // base ARMv8-A Advanced SIMD, not the FP16 arithmetic extension.
        unsafe {
            let h: uint16x4_t = vld1_u16(src.as_ptr().cast());
            let out: float32x4_t;
            asm!(
                "fcvtl {0:v}.4s, {1:v}.4h",
                out(vreg) out,
                in(vreg) h,
                options(pure, nomem, nostack, preserves_flags)
            );
            core::mem::transmute::<float32x4_t, f32x4>(out)
        }
    }

    #[inline(always)]
    fn narrow(self, v: f32x4, dst: &mut [f16]) {
        let dst = &mut dst[..4];
        // SAFETY: `dst` holds 4 halves (8 bytes). `fcvtn` rounds with the
        // FPCR mode, which is round-to-nearest-even unless a caller changed it.
        unsafe {
            let f = core::mem::transmute::<f32x4, float32x4_t>(v);
            let h: uint16x4_t;
            asm!(
                "fcvtn {0:v}.4h, {1:v}.4s",
                out(vreg) h,
                in(vreg) f,
                options(pure, nomem, nostack, preserves_flags)
            );
            vst1_u16(dst.as_mut_ptr().cast(), h);
        }
    }

    #[inline(always)]
    fn dot_i8(self, a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: loads read 16 bytes at `i` or `i + 16` below `n`; the tail
        // goes through padded stack copies.
        unsafe {
            let mut acc = [vdupq_n_s32(0); 4];
            let mut i = 0;
            while i + 32 <= n {
                let (x0, y0) = (vld1q_s8(pa.add(i)), vld1q_s8(pb.add(i)));
                let (x1, y1) = (vld1q_s8(pa.add(i + 16)), vld1q_s8(pb.add(i + 16)));
                acc[0] = mul_acc(acc[0], x0, y0, false);
                acc[1] = mul_acc(acc[1], x0, y0, true);
                acc[2] = mul_acc(acc[2], x1, y1, false);
                acc[3] = mul_acc(acc[3], x1, y1, true);
                i += 32;
            }
            let mut tail = |x: int8x16_t, y: int8x16_t| {
                acc[0] = mul_acc(acc[0], x, y, false);
                acc[1] = mul_acc(acc[1], x, y, true);
            };
            if i + 16 <= n {
                tail(vld1q_s8(pa.add(i)), vld1q_s8(pb.add(i)));
                i += 16;
            }
            if i < n {
                let ta: [i8; 16] = padded(&a[i..n]);
                let tb: [i8; 16] = padded(&b[i..n]);
                tail(vld1q_s8(ta.as_ptr()), vld1q_s8(tb.as_ptr()));
            }
            vaddvq_s32(vaddq_s32(
                vaddq_s32(acc[0], acc[1]),
                vaddq_s32(acc[2], acc[3]),
            ))
        }
    }

    #[inline(always)]
    fn l2sq_i8(self, a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: as in `dot_i8`.
        unsafe {
            let mut acc = [vdupq_n_s32(0); 4];
            let mut step = |x: int8x16_t, y: int8x16_t| {
                let lo = vsubl_s8(vget_low_s8(x), vget_low_s8(y));
                let hi = vsubl_high_s8(x, y);
                acc[0] = vmlal_s16(acc[0], vget_low_s16(lo), vget_low_s16(lo));
                acc[1] = vmlal_high_s16(acc[1], lo, lo);
                acc[2] = vmlal_s16(acc[2], vget_low_s16(hi), vget_low_s16(hi));
                acc[3] = vmlal_high_s16(acc[3], hi, hi);
            };
            let mut i = 0;
            while i + 16 <= n {
                step(vld1q_s8(pa.add(i)), vld1q_s8(pb.add(i)));
                i += 16;
            }
            if i < n {
                let ta: [i8; 16] = padded(&a[i..n]);
                let tb: [i8; 16] = padded(&b[i..n]);
                step(vld1q_s8(ta.as_ptr()), vld1q_s8(tb.as_ptr()));
            }
            vaddvq_s32(vaddq_s32(
                vaddq_s32(acc[0], acc[1]),
                vaddq_s32(acc[2], acc[3]),
            ))
        }
    }

    #[inline(always)]
    fn cos_i8(self, a: &[i8], b: &[i8]) -> (i32, i32, i32) {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: as in `dot_i8`.
        unsafe {
            let z = vdupq_n_s32(0);
            let (mut ab, mut aa, mut bb) = ([z; 2], [z; 2], [z; 2]);
            let mut step = |x: int8x16_t, y: int8x16_t| {
                for (k, hi) in [(0, false), (1, true)] {
                    ab[k] = mul_acc(ab[k], x, y, hi);
                    aa[k] = mul_acc(aa[k], x, x, hi);
                    bb[k] = mul_acc(bb[k], y, y, hi);
                }
            };
            let mut i = 0;
            while i + 16 <= n {
                step(vld1q_s8(pa.add(i)), vld1q_s8(pb.add(i)));
                i += 16;
            }
            if i < n {
                let ta: [i8; 16] = padded(&a[i..n]);
                let tb: [i8; 16] = padded(&b[i..n]);
                step(vld1q_s8(ta.as_ptr()), vld1q_s8(tb.as_ptr()));
            }
            (
                vaddvq_s32(vaddq_s32(ab[0], ab[1])),
                vaddvq_s32(vaddq_s32(aa[0], aa[1])),
                vaddvq_s32(vaddq_s32(bb[0], bb[1])),
            )
        }
    }
}
