//! The integration suite against the system SQLite (Debian 12: 3.40),
//! `libsqlite3.so.0` loaded at run time, loading the built `libpocketvec0`.

#[macro_use]
mod common;

#[path = "drivers/system.rs"]
mod system_driver;

use system_driver::{open, DRIVER};

#[test]
fn system_sqlite_is_debian_3_40() {
    let c = open(":memory:");
    let v = c.version();
    assert!(
        (3_038_000..3_041_000).contains(&v),
        "expected Debian 12's SQLite 3.40, found {v}"
    );
}

pocketvec_all_cases!(open);
pocketvec_index_cases!(DRIVER);
