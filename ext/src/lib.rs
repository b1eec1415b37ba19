//! pocketvec: vector search inside SQLite.
//!
//! This crate builds `libpocketvec0.so`, a SQLite loadable extension
//! (entry point `sqlite3_pocketvec_init`), and an rlib whose [`register`] /
//! [`init`] let a program that links SQLite statically register the same
//! functions and the `pocketvec` virtual table on its connections.
//!
//! Layout, from the raw API pointer up:
//! - [`api`]: the `sqlite3_api_routines` table and small safe wrappers;
//! - [`vector`]: vector formats and conversions (no SQLite);
//! - [`functions`]: scalar SQL functions;
//! - [`state`]: per-connection state (`pocketvec_set_q`);
//! - [`vtab`]: the virtual table (options, best-index plans, cursor);
//! - [`source`]: where a scan reads vectors from (today: the base table).
#![deny(unstable_features)]

pub mod api;
pub mod functions;
pub mod source;
pub mod state;
pub mod vector;
pub mod vtab;

use std::ffi::{c_char, c_int};

pub use sqlite3ext_sys as sys;

/// Registers every pocketvec function and the `pocketvec` module on `db`.
///
/// # Safety
/// `db` is an open connection and `api` the routines table of the SQLite
/// library that opened it (the third argument of an extension entry point,
/// or of an auto-extension callback).
pub unsafe fn register(
    db: *mut sys::sqlite3,
    api: *const sys::sqlite3_api_routines,
) -> Result<(), String> {
    // SAFETY: caller guarantees `api`.
    unsafe { api::install(api) }?;
    let conn = state::ConnState::new();
    // SAFETY: db is open and the API installed.
    unsafe {
        functions::register(db, &conn)?;
        vtab::register(db, &conn)?;
    }
    Ok(())
}

/// The extension entry point with SQLite's signature; pass it to
/// `sqlite3_auto_extension` in hosts that link SQLite statically.
///
/// # Safety
/// Called by SQLite with a valid connection, error out-pointer and API table.
pub unsafe extern "C" fn init(
    db: *mut sys::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *const sys::sqlite3_api_routines,
) -> c_int {
    api::guard(
        |_| api::SQLITE_ERROR,
        || {
            // SAFETY: arguments straight from SQLite.
            match unsafe { register(db, p_api) } {
                Ok(()) => api::SQLITE_OK,
                Err(e) => {
                    // Only touch SQLite's allocator if the API was installed.
                    if api::installed() {
                        // SAFETY: pz_err_msg from SQLite.
                        unsafe { api::set_out_error(pz_err_msg, &e) };
                    }
                    api::SQLITE_ERROR
                }
            }
        },
    )
}

/// Entry point SQLite finds from the file name `libpocketvec0`.
///
/// # Safety
/// Called by SQLite's extension loader.
#[cfg(feature = "loadable")]
#[no_mangle]
pub unsafe extern "C" fn sqlite3_pocketvec_init(
    db: *mut sys::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *const sys::sqlite3_api_routines,
) -> c_int {
    // SAFETY: forwarded from SQLite.
    unsafe { init(db, pz_err_msg, p_api) }
}
