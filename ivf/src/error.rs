//! The crate's single error type. Every fallible public function returns
//! `Result<_, Error>`; hostile bytes, bad parameters and length mismatches
//! are reported here, never by a panic.

use std::fmt;

/// Everything that can go wrong in `ivf`.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A vector or buffer has the wrong number of elements.
    LengthMismatch {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    /// A parameter is out of its documented range.
    InvalidParameter { name: &'static str, reason: String },
    /// Fewer training vectors than the model needs.
    TooFewTrainingVectors { needed: usize, found: usize },
    /// A vector holds NaN or an infinity.
    NonFinite { what: &'static str },
    /// Serialised bytes are malformed (truncated, wrong magic, bad lengths,
    /// checksum mismatch, ...).
    Corrupt { what: &'static str, reason: String },
    /// Serialised bytes carry a format version this build cannot read.
    UnsupportedVersion {
        what: &'static str,
        expected: u16,
        found: u16,
    },
    /// A list chunk was written for a different code layout than the model's.
    LayoutMismatch { expected: String, found: String },
    /// An error from the distance kernels.
    Kernel(kernels::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LengthMismatch {
                what,
                expected,
                found,
            } => write!(f, "{what}: expected {expected} elements, found {found}"),
            Error::InvalidParameter { name, reason } => {
                write!(f, "invalid parameter {name}: {reason}")
            }
            Error::TooFewTrainingVectors { needed, found } => write!(
                f,
                "too few training vectors: need at least {needed}, found {found}"
            ),
            Error::NonFinite { what } => write!(f, "{what} contains NaN or infinity"),
            Error::Corrupt { what, reason } => write!(f, "corrupt {what}: {reason}"),
            Error::UnsupportedVersion {
                what,
                expected,
                found,
            } => write!(
                f,
                "unsupported {what} format version {found} (this build reads version {expected})"
            ),
            Error::LayoutMismatch { expected, found } => write!(
                f,
                "list chunk layout mismatch: index expects {expected}, chunk has {found}"
            ),
            Error::Kernel(e) => write!(f, "kernel error: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<kernels::Error> for Error {
    fn from(e: kernels::Error) -> Self {
        Error::Kernel(e)
    }
}

pub(crate) fn corrupt(what: &'static str, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        what,
        reason: reason.into(),
    }
}

pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name,
        reason: reason.into(),
    }
}
