//! The kernels test suite: every level this CPU has, forced explicitly,
//! against f64 scalar references (kept here, used only by tests).
#![deny(unstable_features)]
mod api;
mod bytes;
mod common;
mod convert;
mod elementwise;
mod magnitudes;
mod many;
mod topk;
