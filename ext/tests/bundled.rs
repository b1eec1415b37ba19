//! The integration suite against a current SQLite: rusqlite's bundled
//! library, loading the built `libpocketvec0` with `load_extension`.

#[macro_use]
mod common;

#[path = "drivers/bundled.rs"]
mod bundled_driver;

use bundled_driver::{open, DRIVER};

#[test]
fn bundled_sqlite_is_current() {
    assert!(
        rusqlite::version_number() >= 3_045_000,
        "{}",
        rusqlite::version()
    );
}

pocketvec_all_cases!(open);
pocketvec_index_cases!(DRIVER);
