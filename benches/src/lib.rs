//! Helpers for pocketvec's kernel benchmarks: the comparators that are not a
//! pocketvec level (plain loops, the memory-read baseline) and buffers with
//! controlled alignment.
#![deny(unstable_features)]

use pulp::{Simd, WithSimd};

/// A buffer of `n` elements starting exactly at a 64-byte boundary, or one
/// element past it (`misaligned`). Keeps its backing allocation alive.
pub struct Placed<T> {
    buf: Vec<T>,
    off: usize,
    n: usize,
}

impl<T: Copy + Default> Placed<T> {
    pub fn new(data: &[T], misaligned: bool) -> Placed<T> {
        let size = std::mem::size_of::<T>();
        let extra = 64 / size + 1;
        let mut buf = vec![T::default(); data.len() + extra];
        let addr = buf.as_ptr() as usize;
        let mut off = ((64 - addr % 64) % 64) / size;
        if misaligned {
            off += 1;
        }
        buf[off..off + data.len()].copy_from_slice(data);
        Placed {
            buf,
            off,
            n: data.len(),
        }
    }
    pub fn get(&self) -> &[T] {
        &self.buf[self.off..self.off + self.n]
    }
}

/// SplitMix64 for deterministic benchmark data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn vec_f32(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
    /// Quantised like real embeddings: symmetric, clamped to [-127, 127].
    pub fn vec_i8(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| (self.f32() * 127.0).round() as i8).collect()
    }
}

/// The plain loops a user would write: no target features, no unrolling.
pub mod plain {
    use half::f16;

    pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }
    pub fn l2sq_f32(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }
    pub fn cosine_distance_f32(a: &[f32], b: &[f32]) -> f32 {
        let (mut ab, mut aa, mut bb) = (0f32, 0f32, 0f32);
        for (x, y) in a.iter().zip(b) {
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        if aa == 0.0 || bb == 0.0 {
            1.0
        } else {
            1.0 - ab / (aa.sqrt() * bb.sqrt())
        }
    }
    pub fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x.to_f32() * y.to_f32()).sum()
    }
    pub fn l2sq_f16(a: &[f16], b: &[f16]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x.to_f32() - y.to_f32()).powi(2))
            .sum()
    }
    pub fn cosine_distance_f16(a: &[f16], b: &[f16]) -> f32 {
        let (mut ab, mut aa, mut bb) = (0f32, 0f32, 0f32);
        for (x, y) in a.iter().zip(b) {
            let (x, y) = (x.to_f32(), y.to_f32());
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        if aa == 0.0 || bb == 0.0 {
            1.0
        } else {
            1.0 - ab / (aa.sqrt() * bb.sqrt())
        }
    }
    pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
        a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
    }
    pub fn l2sq_i8(a: &[i8], b: &[i8]) -> i32 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (x as i32 - y as i32).pow(2))
            .sum()
    }
    pub fn cosine_distance_i8(a: &[i8], b: &[i8]) -> f32 {
        let (mut ab, mut aa, mut bb) = (0i32, 0i32, 0i32);
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (x as i32, y as i32);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        if aa == 0 || bb == 0 {
            1.0
        } else {
            1.0 - (ab as f64 / ((aa as f64).sqrt() * (bb as f64).sqrt())) as f32
        }
    }
}

struct Sum<'a>(&'a [f32]);

impl WithSimd for Sum<'_> {
    type Output = f32;
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> f32 {
        let (v, t) = S::as_simd_f32s(self.0);
        let z = s.splat_f32s(0.0);
        let mut acc = [z; 8];
        let (v8, v1) = pulp::as_arrays::<8, _>(v);
        for x in v8 {
            for k in 0..8 {
                acc[k] = s.add_f32s(acc[k], x[k]);
            }
        }
        for x in v1 {
            acc[0] = s.add_f32s(acc[0], *x);
        }
        acc[1] = s.add_f32s(acc[1], s.partial_load_f32s(t));
        let mut total = z;
        for a in acc {
            total = s.add_f32s(total, a);
        }
        s.reduce_sum_f32s(total)
    }
}

/// The memory-read baseline: the sum of every element, reading each byte of
/// `data` exactly once with the widest registers the CPU has (pulp's best
/// dispatch level) and eight independent accumulators.
pub fn memory_read_sum(data: &[f32]) -> f32 {
    pulp::Arch::new().dispatch(Sum(data))
}

/// Runs `4 * n` dependent integer additions: one cycle each, so the time per
/// addition is the core's clock period. Used to turn nanoseconds into
/// cycles (a VM's /proc/cpuinfo shows the nominal, not the boost, clock).
#[cfg(target_arch = "x86_64")]
pub fn dependent_adds(n: u64) -> u64 {
    let mut x: u64 = 0;
    let mut i = n.max(1);
    // SAFETY: register-only arithmetic and a backward branch; no memory access.
    unsafe {
        core::arch::asm!(
            "2:",
            "add {x}, 1",
            "add {x}, 1",
            "add {x}, 1",
            "add {x}, 1",
            "sub {i}, 1",
            "jnz 2b",
            x = inout(reg) x,
            i = inout(reg) i,
            options(nomem, nostack),
        );
    }
    let _ = i;
    x
}
