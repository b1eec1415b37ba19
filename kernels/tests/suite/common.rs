//! Shared test helpers: the levels to force, deterministic random data and
//! the f64 references.
use kernels::{f16, Isa, Kernels};

/// Every level that makes sense on this target, forced explicitly. A level
/// the CPU lacks is skipped visibly.
pub fn levels() -> Vec<Kernels> {
    let wanted: &[Isa] = if cfg!(target_arch = "x86_64") {
        &[Isa::Scalar, Isa::Avx2, Isa::Avx512]
    } else if cfg!(target_arch = "aarch64") {
        &[Isa::Scalar, Isa::Neon]
    } else {
        &[Isa::Scalar]
    };
    let mut out = Vec::new();
    for &isa in wanted {
        match Kernels::new(isa) {
            Ok(k) => out.push(k),
            Err(e) => eprintln!("SKIPPED level {}: {e}", isa.name()),
        }
    }
    assert!(!out.is_empty());
    out
}

/// Lengths every elementwise test covers.
pub fn lengths() -> impl Iterator<Item = usize> {
    (0..=300).chain([384, 768, 1024, 1536, 4096])
}

/// SplitMix64: small, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
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
    pub fn i8(&mut self) -> i8 {
        self.next_u64() as i8
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn vec_f32(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
    pub fn vec_f16(&mut self, n: usize) -> Vec<f16> {
        (0..n).map(|_| f16::from_f32(self.f32() * 4.0)).collect()
    }
    pub fn vec_i8(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.i8()).collect()
    }
}

/// A copy of `v` that starts one element past an allocation's start, so it is
/// misaligned relative to any SIMD width.
pub fn offset_by_one<T: Copy + Default>(v: &[T]) -> (Vec<T>, usize) {
    let mut buf = vec![T::default(); v.len() + 1];
    buf[1..].copy_from_slice(v);
    (buf, 1)
}

// ---- f64 references ---------------------------------------------------------

pub fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
pub fn absdot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum()
}
pub fn l2sq64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}
pub fn norm64(a: &[f64]) -> f64 {
    dot64(a, a).sqrt()
}
pub fn cos64(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (norm64(a), norm64(b));
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot64(a, b) / (na * nb)).clamp(-1.0, 1.0)
    }
}
pub fn f64s(a: &[f32]) -> Vec<f64> {
    a.iter().map(|&x| x as f64).collect()
}
pub fn f64s_h(a: &[f16]) -> Vec<f64> {
    a.iter().map(|x| x.to_f64()).collect()
}
pub fn f64s_i(a: &[i8]) -> Vec<f64> {
    a.iter().map(|&x| x as f64).collect()
}

/// The f32 rounding error bound we accept for a sum of n terms whose
/// absolute values add up to `abs_sum`: relative 1e-5 (n ≤ 4096 with at least
/// four accumulators gives about n/4 · 2⁻²⁴ ≈ 6e-5 in the worst case, far
/// less in practice; 1e-5 leaves room for random data), plus 2 ulp of the
/// smallest subnormal per term for sums that run through f32's subnormal range.
pub fn f32_sum_tol(abs_sum: f64, n: usize) -> f64 {
    1e-5 * abs_sum + 2.0 * n as f64 * f32::from_bits(1) as f64
}

#[track_caller]
pub fn assert_close(what: &str, k: &Kernels, n: usize, got: f32, want: f64, tol: f64) {
    let ok = if want.is_nan() {
        got.is_nan()
    } else {
        (got as f64 - want).abs() <= tol
    };
    assert!(
        ok,
        "{what} at {} n={n}: got {got:e}, want {want:e} (tol {tol:e}, diff {:e})",
        k.isa().name(),
        (got as f64 - want).abs()
    );
}
