//! The crate's error type.
use std::fmt;

use crate::Isa;

/// Everything that can go wrong in a kernel call. Every fallible entry point
/// returns one of these instead of panicking.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Two inputs that must have matching lengths do not.
    LengthMismatch {
        /// The length implied by the other arguments.
        expected: usize,
        /// The length that was passed.
        found: usize,
    },
    /// A top-k selection was asked for zero results.
    ZeroK,
    /// `Kernels::new` was asked for a level this CPU cannot run.
    IsaUnavailable(Isa),
    /// A byte buffer's length is not a multiple of the element size.
    ByteLength {
        /// Size in bytes of one element.
        elem_size: usize,
        /// Length of the byte buffer.
        len: usize,
    },
    /// `convert::quantize_i8` was given a NaN or an infinity.
    NonFinite {
        /// Index of the first non-finite element.
        index: usize,
    },
    /// An exact int8 result does not fit in an `i32`.
    Overflow {
        /// The exact value, which needs more than 32 bits.
        value: i64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LengthMismatch { expected, found } => {
                write!(f, "length mismatch: expected {expected}, found {found}")
            }
            Error::ZeroK => f.write_str("k must be at least 1, got 0"),
            Error::IsaUnavailable(isa) => {
                write!(
                    f,
                    "instruction set {} is not available on this CPU",
                    isa.name()
                )
            }
            Error::ByteLength { elem_size, len } => write!(
                f,
                "byte length {len} is not a multiple of the element size {elem_size}"
            ),
            Error::NonFinite { index } => {
                write!(
                    f,
                    "cannot quantize a non-finite value (NaN or infinity) at index {index}"
                )
            }
            Error::Overflow { value } => {
                write!(
                    f,
                    "exact int8 result {value} does not fit in a 32-bit integer"
                )
            }
        }
    }
}

impl std::error::Error for Error {}
