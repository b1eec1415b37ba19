//! pocketvec's distance kernels for f32, f16 and int8 vectors, dispatched at
//! run time to the best instruction set the CPU has: AVX-512 (with VNNI and
//! F16C), AVX2 (with FMA and F16C), NEON, or plain scalar Rust.
//!
//! ```
//! let k = kernels::Kernels::detect();
//! let a = [1.0f32, 2.0, 3.0];
//! let b = [4.0f32, 5.0, 6.0];
//! assert_eq!(k.dot_f32(&a, &b).unwrap(), 32.0);
//! assert!(k.dot_f32(&a, &b[..2]).is_err()); // length mismatch is an error value
//! ```
//!
//! # Levels
//! [`isa()`] is the process-wide level: the best one available, capped by
//! the environment variable `POCKETVEC_ISA=scalar|neon|avx2|avx512` (read
//! once; an unrecognised value is ignored). [`Kernels::new`] pins a handle to
//! any level the CPU has, which is how the tests force every path. A level
//! the CPU lacks cannot be constructed, so its instructions never run.
//!
//! # How the kernels are built
//! Each kernel body is written once, generic over `pulp::Simd`, with four
//! independent accumulators and a zero-padded partial load for the tail.
//! Only what pulp cannot express is hand-written per instruction set: the
//! f16→f32 widening (`vcvtph2ps`, `fcvtl`) and the int8 products (`vpdpbusd`,
//! `vpmaddwd`, `smull` + `sadalp`). Elements are widened before they are
//! accumulated — f16 to f32 lanes, int8 products to i32 lanes — because an
//! f16 or 16-bit accumulator would lose precision or overflow within a few
//! dozen elements, while the widened sums are as accurate as f32 for f16 and
//! exact for int8.
//!
//! # Edge cases
//! - **Length mismatch** between two vectors (or a one-to-many block that is
//!   not `out.len() × query.len()` elements, or norms that are not one per
//!   row) is `Err(Error::LengthMismatch)`, never a panic.
//! - **Empty vectors**: dot = 0, squared L2 = L2 = 0, norm = 0, cosine
//!   similarity 0 (distance 1).
//! - **Zero-norm cosine**: if either vector has norm 0 the similarity is
//!   0.0 and the distance 1.0 (not NaN).
//! - **NaN** in an input gives NaN out (no error) for every distance and
//!   similarity; infinities give ±∞ or NaN as IEEE arithmetic does.
//!   `normalize_*` leaves a vector whose norm is 0, ∞ or NaN unchanged and
//!   returns that norm. Top-k orders NaN distances after every number.
//! - **Magnitudes**: f32 dot and squared L2 are plain f32 sums (they
//!   overflow to ±∞ exactly when the true result is beyond f32 range).
//!   f32 norms, L2 and cosine stay accurate for any finite input: when a sum
//!   of squares overflows or falls below 2⁻¹⁰⁰, it is recomputed in f64.
//!   f16 inputs cannot overflow or underflow an f32 sum of squares.
//! - **int8** sums are exact. `dot_i8` and `l2sq_i8` return
//!   `Err(Error::Overflow)` if the exact value needs more than 32 bits
//!   (possible only past 131 072 and 33 025 elements); the similarity and
//!   distance functions use 64-bit sums and never overflow.
//! - Byte buffers (`bytes`, `distances_*_bytes`) may have any alignment;
//!   a length that is not a multiple of the element size is an error.
#![deny(unstable_features)]
#![warn(missing_docs)]

pub use half::f16;

mod api;
mod arch;
pub mod bytes;
pub mod convert;
mod error;
mod f16s;
mod f32s;
mod finish;
mod i8s;
mod level;
mod many;
mod topk;

pub use api::Kernels;
pub use error::Error;
pub use level::{available_isas, isa};
pub use topk::{top_k, TopK};

/// Distance metric; every distance is "smaller is nearer".
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `1 - cosine_similarity`, in [0, 2].
    Cosine,
    /// Euclidean distance (not squared).
    L2,
    /// Negative inner product.
    Dot,
}

/// Instruction-set level a [`Kernels`] handle runs at, ordered from least to
/// most capable.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust without target features.
    Scalar,
    /// aarch64 Advanced SIMD.
    Neon,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 F/BW/CD/DQ/VL + VNNI + F16C.
    Avx512,
}

/// Generates the free functions that run at the process-wide level.
macro_rules! free_fns {
    ($( $(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {$(
        $(#[$m])*
        #[doc = concat!("[`Kernels::", stringify!($name), "`] at the process-wide level [`isa()`].")]
        pub fn $name($($arg: $ty),*) -> $ret {
            Kernels::detect().$name($($arg),*)
        }
    )*};
}

free_fns! {
    fn dot_f32(a: &[f32], b: &[f32]) -> Result<f32, Error>;
    fn cosine_f32(a: &[f32], b: &[f32]) -> Result<f32, Error>;
    fn cosine_distance_f32(a: &[f32], b: &[f32]) -> Result<f32, Error>;
    fn l2sq_f32(a: &[f32], b: &[f32]) -> Result<f32, Error>;
    fn l2_f32(a: &[f32], b: &[f32]) -> Result<f32, Error>;
    fn norm_f32(a: &[f32]) -> f32;
    fn normalize_f32(a: &mut [f32]) -> f32;
    fn dot_f16(a: &[f16], b: &[f16]) -> Result<f32, Error>;
    fn cosine_f16(a: &[f16], b: &[f16]) -> Result<f32, Error>;
    fn cosine_distance_f16(a: &[f16], b: &[f16]) -> Result<f32, Error>;
    fn l2sq_f16(a: &[f16], b: &[f16]) -> Result<f32, Error>;
    fn l2_f16(a: &[f16], b: &[f16]) -> Result<f32, Error>;
    fn norm_f16(a: &[f16]) -> f32;
    fn normalize_f16(a: &mut [f16]) -> f32;
    fn dot_i8(a: &[i8], b: &[i8]) -> Result<i32, Error>;
    fn l2sq_i8(a: &[i8], b: &[i8]) -> Result<i32, Error>;
    fn cosine_i8(a: &[i8], b: &[i8]) -> Result<f32, Error>;
    fn cosine_distance_i8(a: &[i8], b: &[i8]) -> Result<f32, Error>;
    fn l2_i8(a: &[i8], b: &[i8]) -> Result<f32, Error>;
    fn norm_i8(a: &[i8]) -> f32;
    fn distances_f32(metric: Metric, query: &[f32], block: &[f32], norms: Option<&[f32]>, out: &mut [f32]) -> Result<(), Error>;
    fn distances_f16(metric: Metric, query: &[f16], block: &[f16], norms: Option<&[f32]>, out: &mut [f32]) -> Result<(), Error>;
    fn distances_i8(metric: Metric, query: &[i8], block: &[i8], norms: Option<&[f32]>, out: &mut [f32]) -> Result<(), Error>;
    fn distances_f32_bytes(metric: Metric, query: &[f32], block: &[u8], norms: Option<&[f32]>, out: &mut [f32]) -> Result<(), Error>;
    fn distances_f16_bytes(metric: Metric, query: &[f16], block: &[u8], norms: Option<&[f32]>, out: &mut [f32]) -> Result<(), Error>;
}
