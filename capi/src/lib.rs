//! pocketvec's C ABI: the `kernels` for C, Swift and Kotlin/Native hosts, and
//! (feature `sqlite`, default) the SQLite extension linked statically.
//!
//! The header `include/pocketvec.h` is generated from this crate by cbindgen
//! (`cbindgen.toml`); every exported item's first doc line is its comment
//! there.
//!
//! Conventions of every exported function:
//! - it returns a `pocketvec_status`; results go through out-parameters;
//! - each buffer is a pointer plus its element count; NULL, zero, overflowing
//!   or misaligned buffers and mismatched sizes return a status;
//! - outputs must not overlap inputs (checked: `POCKETVEC_STATUS_OVERLAP`);
//! - no panic crosses the boundary (`POCKETVEC_STATUS_PANIC` instead).
//!
//! The safety contract of every `unsafe extern "C"` function is the one above,
//! stated once in the header's preamble rather than per function.
#![deny(unstable_features)]
#![allow(clippy::missing_safety_doc)]

mod block;
mod convert;
mod ffi;
mod info;
#[cfg(feature = "sqlite")]
mod sqlite;
mod vectors;

pub use block::PocketvecMetric;
pub use ffi::PocketvecStatus;
