//! Instruction-set levels: run-time detection, the `POCKETVEC_ISA` cap and the
//! pulp tokens each level runs its kernels under.
//!
//! pulp's own `V3`/`V4` tokens cover the f32 bodies. f16 widening needs F16C
//! and the int8 dot product needs AVX-512 VNNI, which neither token enables,
//! so the x86 levels are custom `pulp::simd_type!` tokens that add those
//! features; a level is only ever constructed after its token's run-time check
//! succeeded, so a CPU lacking a feature never executes an instruction from it.
use std::sync::OnceLock;

use crate::arch::{Token, WithToken};
use crate::Isa;

#[cfg(target_arch = "x86_64")]
pub(crate) mod tokens {
    pulp::simd_type!({
        /// pulp's `V3` (AVX2 + FMA) plus F16C: pocketvec's `Avx2` level.
        pub struct V3Plus {
            pub sse: f!("sse"),
            pub sse2: f!("sse2"),
            pub fxsr: f!("fxsr"),
            pub sse3: f!("sse3"),
            pub ssse3: f!("ssse3"),
            pub sse4_1: f!("sse4.1"),
            pub sse4_2: f!("sse4.2"),
            pub popcnt: f!("popcnt"),
            pub avx: f!("avx"),
            pub avx2: f!("avx2"),
            pub bmi1: f!("bmi1"),
            pub bmi2: f!("bmi2"),
            pub fma: f!("fma"),
            pub lzcnt: f!("lzcnt"),
            pub f16c: f!("f16c"),
        }

        /// pulp's `V4` (AVX-512 F/BW/CD/DQ/VL) plus VNNI and F16C:
        /// pocketvec's `Avx512` level.
        pub struct V4Plus {
            pub sse: f!("sse"),
            pub sse2: f!("sse2"),
            pub fxsr: f!("fxsr"),
            pub sse3: f!("sse3"),
            pub ssse3: f!("ssse3"),
            pub sse4_1: f!("sse4.1"),
            pub sse4_2: f!("sse4.2"),
            pub popcnt: f!("popcnt"),
            pub avx: f!("avx"),
            pub avx2: f!("avx2"),
            pub bmi1: f!("bmi1"),
            pub bmi2: f!("bmi2"),
            pub fma: f!("fma"),
            pub lzcnt: f!("lzcnt"),
            pub avx512f: f!("avx512f"),
            pub avx512bw: f!("avx512bw"),
            pub avx512cd: f!("avx512cd"),
            pub avx512dq: f!("avx512dq"),
            pub avx512vl: f!("avx512vl"),
            pub avx512vnni: f!("avx512vnni"),
            pub f16c: f!("f16c"),
        }
    });

    impl V3Plus {
        /// pulp's `V3` token, for the f32 bodies.
        #[inline(always)]
        pub fn base(self) -> pulp::x86::V3 {
            // SAFETY: `self` exists only if its features, a superset of V3's, were detected.
            unsafe { pulp::x86::V3::new_unchecked() }
        }
    }

    impl V4Plus {
        /// pulp's `V3` token (256-bit registers).
        #[inline(always)]
        pub fn v3(self) -> pulp::x86::V3 {
            // SAFETY: `self` exists only if its features, a superset of V3's, were detected.
            unsafe { pulp::x86::V3::new_unchecked() }
        }

        /// pulp's `V4` token, for the f32 bodies.
        #[inline(always)]
        pub fn base(self) -> pulp::x86::V4 {
            // SAFETY: `self` exists only if its features, a superset of V4's, were detected.
            unsafe { pulp::x86::V4::new_unchecked() }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use tokens::{V3Plus, V4Plus};

/// A detected level together with the token proving its features exist.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Level {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    V3(V3Plus),
    #[cfg(target_arch = "x86_64")]
    V4(V4Plus),
    #[cfg(target_arch = "aarch64")]
    Neon(pulp::aarch64::Neon),
}

impl Level {
    /// The level for `isa`, if this CPU has every feature it needs.
    pub(crate) fn new(isa: Isa) -> Option<Level> {
        match isa {
            Isa::Scalar => Some(Level::Scalar),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => V3Plus::try_new().map(Level::V3),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => V4Plus::try_new().map(Level::V4),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => pulp::aarch64::Neon::try_new().map(Level::Neon),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    pub(crate) fn isa(self) -> Isa {
        match self {
            Level::Scalar => Isa::Scalar,
            #[cfg(target_arch = "x86_64")]
            Level::V3(_) => Isa::Avx2,
            #[cfg(target_arch = "x86_64")]
            Level::V4(_) => Isa::Avx512,
            #[cfg(target_arch = "aarch64")]
            Level::Neon(_) => Isa::Neon,
        }
    }

    /// Runs a pulp-generic body under this level's target features.
    #[inline(always)]
    pub(crate) fn run<Op: pulp::WithSimd>(self, op: Op) -> Op::Output {
        use pulp::Simd;
        match self {
            Level::Scalar => run_scalar(op),
            #[cfg(target_arch = "x86_64")]
            Level::V3(t) => Simd::vectorize(t.base(), op),
            #[cfg(target_arch = "x86_64")]
            Level::V4(t) => Simd::vectorize(t.base(), op),
            #[cfg(target_arch = "aarch64")]
            Level::Neon(t) => Simd::vectorize(t, op),
        }
    }

    /// Runs a body that also needs the hand-written widening operations of
    /// [`Token`] (f16 conversion, int8 products) under this level's features.
    #[inline(always)]
    pub(crate) fn run_token<Op: WithToken>(self, op: Op) -> Op::Output {
        struct Call<T, Op>(T, Op);
        impl<T: Token, Op: WithToken> pulp::NullaryFnOnce for Call<T, Op> {
            type Output = Op::Output;
            #[inline(always)]
            fn call(self) -> Op::Output {
                self.1.with_token(self.0)
            }
        }
        match self {
            Level::Scalar => run_token_scalar(op),
            #[cfg(target_arch = "x86_64")]
            Level::V3(t) => t.vectorize(Call(t, op)),
            #[cfg(target_arch = "x86_64")]
            Level::V4(t) => t.vectorize(Call(t, op)),
            #[cfg(target_arch = "aarch64")]
            Level::Neon(t) => t.vectorize(Call(t, op)),
        }
    }
}

/// The scalar level's body, kept out of line: inlined, its loops would make
/// every dispatching caller save and restore registers on the SIMD levels'
/// path too (a measurable share of a d=128 call).
#[inline(never)]
fn run_scalar<Op: pulp::WithSimd>(op: Op) -> Op::Output {
    pulp::Simd::vectorize(pulp::Scalar::new(), op)
}

/// [`run_scalar`] for [`WithToken`] bodies.
#[inline(never)]
fn run_token_scalar<Op: WithToken>(op: Op) -> Op::Output {
    op.with_token(crate::arch::ScalarToken)
}

const ALL: [Isa; 4] = [Isa::Scalar, Isa::Neon, Isa::Avx2, Isa::Avx512];

/// Every level this CPU can run, ascending.
pub fn available_isas() -> Vec<Isa> {
    ALL.into_iter().filter(|isa| isa.is_available()).collect()
}

/// The best level this CPU can run that does not exceed `cap`.
pub(crate) fn best_at_most(cap: Option<Isa>) -> Isa {
    ALL.into_iter()
        .rev()
        .filter(|isa| cap.is_none_or(|cap| *isa <= cap))
        .find(|isa| isa.is_available())
        .unwrap_or(Isa::Scalar)
}

/// The process-wide level: the best available, capped by `POCKETVEC_ISA`
/// (read once). An unrecognised value of the variable is ignored.
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let cap = std::env::var("POCKETVEC_ISA")
            .ok()
            .and_then(|v| Isa::parse(v.trim()));
        best_at_most(cap)
    })
}

impl Isa {
    /// Lower-case name: `"scalar"`, `"neon"`, `"avx2"` or `"avx512"`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Neon => "neon",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Inverse of [`Isa::name`], case-insensitive.
    pub fn parse(s: &str) -> Option<Isa> {
        ALL.into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(s))
    }

    /// Whether this CPU has every feature the level needs.
    pub fn is_available(self) -> bool {
        Level::new(self).is_some()
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
