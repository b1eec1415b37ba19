//! Library information: version, ISA level in use, status messages.
use std::ffi::{c_char, CStr};

use kernels::Isa;

use crate::ffi::{guard, put, PocketvecStatus, PocketvecStatus as Status};

/// The library version, NUL-terminated.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("version contains a NUL byte"),
    };

/// The NUL-terminated name of an ISA level (the same as `Isa::name`).
pub(crate) fn isa_cname(isa: Isa) -> &'static CStr {
    match isa {
        Isa::Scalar => c"scalar",
        Isa::Neon => c"neon",
        Isa::Avx2 => c"avx2",
        Isa::Avx512 => c"avx512",
    }
}

/// Stores the library version ("0.1.0") as a static NUL-terminated string in `*out_version`.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_version(out_version: *mut *const c_char) -> PocketvecStatus {
    // SAFETY: the header's contract: `out_version` is writable.
    guard(|| unsafe { put(out_version, VERSION.as_ptr()) })
}

/// Stores the kernel level in use ("scalar", "neon", "avx2" or "avx512"; capped by env POCKETVEC_ISA) as a static string in `*out_name`.
#[no_mangle]
pub unsafe extern "C" fn pocketvec_isa(out_name: *mut *const c_char) -> PocketvecStatus {
    // SAFETY: the header's contract: `out_name` is writable.
    guard(|| unsafe { put(out_name, isa_cname(kernels::isa()).as_ptr()) })
}

/// Stores a static English message for a `pocketvec_status` value in `*out_message` (unknown values: INVALID_ARGUMENT and a generic message).
#[no_mangle]
pub unsafe extern "C" fn pocketvec_status_message(
    status: i32,
    out_message: *mut *const c_char,
) -> PocketvecStatus {
    guard(|| match Status::from_i32(status) {
        // SAFETY: the header's contract: `out_message` is writable.
        Some(s) => unsafe { put(out_message, s.message().as_ptr()) },
        None => {
            // SAFETY: as above.
            unsafe { put(out_message, c"unknown pocketvec_status value".as_ptr())? };
            Err(Status::InvalidArgument)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isa_names_match_kernels() {
        for isa in [Isa::Scalar, Isa::Neon, Isa::Avx2, Isa::Avx512] {
            assert_eq!(isa_cname(isa).to_str().unwrap(), isa.name());
        }
    }

    #[test]
    fn version_is_the_package_version() {
        assert_eq!(VERSION.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
