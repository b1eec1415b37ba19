//! The `Kernels` dispatch handle: argument checks, then one call into the
//! level's kernel body.
use std::sync::OnceLock;

use crate::finish::{self, cos_dist};
use crate::level::Level;
use crate::many::{ManyF16, ManyF32, ManyI8};
use crate::{f16, Error, Isa, Metric};

/// A dispatch handle pinned to one instruction-set level. `Copy` and cheap:
/// it holds only the proof that the level's CPU features are present.
#[derive(Copy, Clone, Debug)]
pub struct Kernels {
    level: Level,
}

#[inline(always)]
fn same_len(expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::LengthMismatch { expected, found })
    }
}

/// Checks a one-to-many call's shapes: `block` holds `out.len()` rows of
/// `d` elements (`block_len` counted in elements or bytes, `elem` per
/// element), and `norms`, if given, one norm per row.
fn check_many(
    d: usize,
    block_len: usize,
    elem: usize,
    norms: Option<&[f32]>,
    out: &[f32],
) -> Result<(), Error> {
    let expected = d
        .checked_mul(out.len())
        .and_then(|x| x.checked_mul(elem))
        .ok_or(Error::LengthMismatch {
            expected: usize::MAX,
            found: block_len,
        })?;
    same_len(expected, block_len)?;
    if let Some(norms) = norms {
        same_len(out.len(), norms.len())?;
    }
    Ok(())
}

/// The distances between zero-length vectors: dot 0, L2 0, cosine distance 1.
fn fill_empty(metric: Metric, out: &mut [f32]) {
    let v = match metric {
        Metric::Cosine => 1.0,
        Metric::L2 | Metric::Dot => 0.0,
    };
    out.fill(v);
}

/// Rows per batch when a misaligned byte block is copied before scanning.
const BATCH_ELEMS: usize = 1 << 14;

impl Kernels {
    /// A handle for `isa`; `Err(IsaUnavailable)` if this CPU lacks it.
    pub fn new(isa: Isa) -> Result<Kernels, Error> {
        Level::new(isa)
            .map(|level| Kernels { level })
            .ok_or(Error::IsaUnavailable(isa))
    }

    /// A handle for the process-wide level [`crate::isa()`].
    pub fn detect() -> Kernels {
        static K: OnceLock<Kernels> = OnceLock::new();
        *K.get_or_init(|| {
            let isa = crate::isa();
            Kernels::new(isa).expect("isa() only returns available levels")
        })
    }

    /// The level this handle runs at.
    pub fn isa(&self) -> Isa {
        self.level.isa()
    }

    // ---- f32 ---------------------------------------------------------------

    /// Σ aᵢbᵢ, accumulated in f32.
    pub fn dot_f32(&self, a: &[f32], b: &[f32]) -> Result<f32, Error> {
        same_len(a.len(), b.len())?;
        Ok(self.level.run(crate::f32s::Dot(a, b)))
    }

    /// Cosine similarity in [-1, 1]; 0 if either vector has zero norm.
    pub fn cosine_f32(&self, a: &[f32], b: &[f32]) -> Result<f32, Error> {
        same_len(a.len(), b.len())?;
        Ok(self.level.run(crate::f32s::Cosine(a, b)))
    }

    /// `1 - cosine_f32(a, b)`, in [0, 2]; 1 if either vector has zero norm.
    pub fn cosine_distance_f32(&self, a: &[f32], b: &[f32]) -> Result<f32, Error> {
        Ok(cos_dist(self.cosine_f32(a, b)?))
    }

    /// Σ (aᵢ-bᵢ)², accumulated in f32.
    pub fn l2sq_f32(&self, a: &[f32], b: &[f32]) -> Result<f32, Error> {
        same_len(a.len(), b.len())?;
        Ok(self.level.run(crate::f32s::L2sq(a, b)))
    }

    /// Euclidean distance √Σ(aᵢ-bᵢ)².
    pub fn l2_f32(&self, a: &[f32], b: &[f32]) -> Result<f32, Error> {
        let ss = self.l2sq_f32(a, b)?;
        Ok(finish::l2_from(ss, a, b))
    }

    /// Euclidean norm √Σaᵢ².
    pub fn norm_f32(&self, a: &[f32]) -> f32 {
        finish::norm_from(self.level.run(crate::f32s::SumSq(a)), a)
    }

    /// Scales `a` to unit norm in place and returns the norm it had. A
    /// vector whose norm is 0, infinite or NaN is left unchanged.
    pub fn normalize_f32(&self, a: &mut [f32]) -> f32 {
        let n = self.norm_f32(a);
        if !(n > 0.0 && n.is_finite()) {
            return n;
        }
        let k = 1.0 / n;
        if k.is_normal() {
            self.level.run(crate::f32s::Scale(a, k));
        } else {
            a.iter_mut().for_each(|x| *x /= n);
        }
        n
    }

    // ---- f16 ---------------------------------------------------------------

    /// Σ aᵢbᵢ, computed in f32.
    pub fn dot_f16(&self, a: &[f16], b: &[f16]) -> Result<f32, Error> {
        same_len(a.len(), b.len())?;
        Ok(self.level.run_token(crate::f16s::Dot(a, b)))
    }

    /// Cosine similarity, computed in f32; 0 if either vector has zero norm.
    pub fn cosine_f16(&self, a: &[f16], b: &[f16]) -> Result<f32, Error> {
        same_len(a.len(), b.len())?;
        Ok(self.level.run_token(crate::f16s::Cosine(a, b)))
    }

    /// `1 - cosine_f16(a, b)`.
    pub fn cosine_distance_f16(&self, a: &[f16], b: &[f16]) -> Result<f32, Error> {
        Ok(cos_dist(self.cosine_f16(a, b)?))
    }

    /// Σ (aᵢ-bᵢ)², computed in f32.
    pub fn l2sq_f16(&self, a: &[f16], b: &[f16]) -> Result<f32, Error> {
        same_len(a.len(), b.len())?;
        Ok(self.level.run_token(crate::f16s::L2sq(a, b)))
    }

    /// Euclidean distance, computed in f32.
    pub fn l2_f16(&self, a: &[f16], b: &[f16]) -> Result<f32, Error> {
        Ok(self.l2sq_f16(a, b)?.sqrt())
    }

    /// Euclidean norm, computed in f32.
    pub fn norm_f16(&self, a: &[f16]) -> f32 {
        self.level.run_token(crate::f16s::SumSq(a)).sqrt()
    }

    /// Scales `a` to unit norm in place (computed in f32, rounded to nearest
    /// even f16) and returns the norm it had. A vector whose norm is 0,
    /// infinite or NaN is left unchanged.
    pub fn normalize_f16(&self, a: &mut [f16]) -> f32 {
        let n = self.norm_f16(a);
        if !(n > 0.0 && n.is_finite()) {
            return n;
        }
        self.level.run_token(crate::f16s::Scale(a, 1.0 / n));
        n
    }

    // ---- int8 --------------------------------------------------------------

    /// Σ aᵢbᵢ, exact. `Err(Overflow)` if the exact value does not fit in i32
    /// (possible only beyond 131 072 elements).
    pub fn dot_i8(&self, a: &[i8], b: &[i8]) -> Result<i32, Error> {
        same_len(a.len(), b.len())?;
        let v = self.level.run_token(crate::i8s::Dot(a, b));
        i32::try_from(v).map_err(|_| Error::Overflow { value: v })
    }

    /// Σ (aᵢ-bᵢ)², exact. `Err(Overflow)` if the exact value does not fit in
    /// i32 (possible only beyond 33 025 elements).
    pub fn l2sq_i8(&self, a: &[i8], b: &[i8]) -> Result<i32, Error> {
        same_len(a.len(), b.len())?;
        let v = self.level.run_token(crate::i8s::L2sq(a, b));
        i32::try_from(v).map_err(|_| Error::Overflow { value: v })
    }

    /// Cosine similarity from exact integer sums; 0 if either vector is zero.
    pub fn cosine_i8(&self, a: &[i8], b: &[i8]) -> Result<f32, Error> {
        same_len(a.len(), b.len())?;
        Ok(self.level.run_token(crate::i8s::Cosine(a, b)))
    }

    /// `1 - cosine_i8(a, b)`.
    pub fn cosine_distance_i8(&self, a: &[i8], b: &[i8]) -> Result<f32, Error> {
        Ok(cos_dist(self.cosine_i8(a, b)?))
    }

    /// √Σ(aᵢ-bᵢ)² of the exact integer sum (any length).
    pub fn l2_i8(&self, a: &[i8], b: &[i8]) -> Result<f32, Error> {
        same_len(a.len(), b.len())?;
        let v = self.level.run_token(crate::i8s::L2sq(a, b));
        Ok((v as f64).sqrt() as f32)
    }

    /// √Σaᵢ² of the exact integer sum.
    pub fn norm_i8(&self, a: &[i8]) -> f32 {
        (self.level.run_token(crate::i8s::SumSq(a)) as f64).sqrt() as f32
    }

    // ---- one-to-many -------------------------------------------------------

    /// Distances (smaller is nearer, see [`Metric`]) from `query` to each of
    /// the `out.len()` rows of `block` (row-major, `block.len() ==
    /// out.len() * query.len()`). `norms`, if given, holds each row's L2
    /// norm, and Cosine uses it instead of recomputing it.
    pub fn distances_f32(
        &self,
        metric: Metric,
        query: &[f32],
        block: &[f32],
        norms: Option<&[f32]>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        check_many(query.len(), block.len(), 1, norms, out)?;
        if query.is_empty() {
            fill_empty(metric, out);
            return Ok(());
        }
        if out.is_empty() {
            return Ok(());
        }
        let qn = match metric {
            Metric::Cosine => self.norm_f32(query),
            _ => 0.0,
        };
        self.level.run(ManyF32 {
            metric,
            q: query,
            block,
            norms,
            out,
            qn,
        });
        Ok(())
    }

    /// [`Kernels::distances_f32`] for f16 data (computed in f32).
    pub fn distances_f16(
        &self,
        metric: Metric,
        query: &[f16],
        block: &[f16],
        norms: Option<&[f32]>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        check_many(query.len(), block.len(), 1, norms, out)?;
        if query.is_empty() {
            fill_empty(metric, out);
            return Ok(());
        }
        self.level.run_token(ManyF16 {
            metric,
            q: query,
            block,
            norms,
            out,
        });
        Ok(())
    }

    /// [`Kernels::distances_f32`] for int8 data (exact integer sums; the
    /// per-vector quantisation scales are not applied: cosine does not need
    /// them, dot and L2 are in quantised units).
    pub fn distances_i8(
        &self,
        metric: Metric,
        query: &[i8],
        block: &[i8],
        norms: Option<&[f32]>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        check_many(query.len(), block.len(), 1, norms, out)?;
        if query.is_empty() {
            fill_empty(metric, out);
            return Ok(());
        }
        self.level.run_token(ManyI8 {
            metric,
            q: query,
            block,
            norms,
            out,
        });
        Ok(())
    }

    /// [`Kernels::distances_f32`] over raw little-endian bytes at any
    /// alignment (a SQLite BLOB): `block.len()` must be `out.len() *
    /// query.len() * 4` (a mismatch is reported in bytes). A 4-aligned block
    /// is read in place; any other is copied in small batches first.
    pub fn distances_f32_bytes(
        &self,
        metric: Metric,
        query: &[f32],
        block: &[u8],
        norms: Option<&[f32]>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        check_many(query.len(), block.len(), 4, norms, out)?;
        if cfg!(target_endian = "little") {
            if let Ok(rows) = bytemuck::try_cast_slice::<u8, f32>(block) {
                return self.distances_f32(metric, query, rows, norms, out);
            }
        }
        // Batches of a multiple of four rows group rows exactly as the
        // in-place path does, so both give bit-identical results.
        let d = query.len().max(1);
        let batch = (BATCH_ELEMS / d).max(1).next_multiple_of(4);
        let mut scratch = vec![0f32; batch.min(out.len()) * query.len()];
        for (i, o) in out.chunks_mut(batch).enumerate() {
            let rows = &mut scratch[..o.len() * query.len()];
            let bytes = &block[i * batch * query.len() * 4..][..rows.len() * 4];
            for (x, c) in rows.iter_mut().zip(bytes.chunks_exact(4)) {
                *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            let ns = norms.map(|n| &n[i * batch..][..o.len()]);
            self.distances_f32(metric, query, rows, ns, o)?;
        }
        Ok(())
    }

    /// [`Kernels::distances_f16`] over raw little-endian bytes at any
    /// alignment: `block.len()` must be `out.len() * query.len() * 2`.
    pub fn distances_f16_bytes(
        &self,
        metric: Metric,
        query: &[f16],
        block: &[u8],
        norms: Option<&[f32]>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        check_many(query.len(), block.len(), 2, norms, out)?;
        if cfg!(target_endian = "little") {
            if let Ok(rows) = bytemuck::try_cast_slice::<u8, f16>(block) {
                return self.distances_f16(metric, query, rows, norms, out);
            }
        }
        let d = query.len().max(1);
        let batch = (BATCH_ELEMS / d).max(1);
        let mut scratch = vec![f16::ZERO; batch.min(out.len()) * query.len()];
        for (i, o) in out.chunks_mut(batch).enumerate() {
            let rows = &mut scratch[..o.len() * query.len()];
            let bytes = &block[i * batch * query.len() * 2..][..rows.len() * 2];
            for (x, c) in rows.iter_mut().zip(bytes.chunks_exact(2)) {
                *x = f16::from_bits(u16::from_le_bytes([c[0], c[1]]));
            }
            let ns = norms.map(|n| &n[i * batch..][..o.len()]);
            self.distances_f16(metric, query, rows, ns, o)?;
        }
        Ok(())
    }

    // ---- conversions -------------------------------------------------------

    /// [`crate::convert::f32_to_f16`] at this handle's level.
    pub fn f32_to_f16(&self, src: &[f32], dst: &mut [f16]) -> Result<(), Error> {
        same_len(src.len(), dst.len())?;
        self.level.run_token(crate::f16s::FromF32(src, dst));
        Ok(())
    }

    /// [`crate::convert::f16_to_f32`] at this handle's level.
    pub fn f16_to_f32(&self, src: &[f16], dst: &mut [f32]) -> Result<(), Error> {
        same_len(src.len(), dst.len())?;
        self.level.run_token(crate::f16s::ToF32(src, dst));
        Ok(())
    }
}
