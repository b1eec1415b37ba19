//! The built library exports the entry point only and carries no SQLite.
//!
//! `sqlite3ext-sys` compiles a whole SQLite into a static library; the
//! extension must reach SQLite only through the API routines table, so no
//! SQLite function may be defined in, or imported by, `libpocketvec0`.

mod common;

use std::process::Command;

fn nm(args: &[&str]) -> Vec<String> {
    let path = common::ext_path();
    let out = Command::new("nm")
        .args(args)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("running nm (binutils) on {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "nm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

#[test]
fn exports_only_the_entry_point() {
    let defined = nm(&["-D", "--defined-only"]);
    assert_eq!(defined, vec!["sqlite3_pocketvec_init".to_string()]);
}

#[test]
fn contains_no_sqlite_code() {
    let all = nm(&["--defined-only"]);
    assert!(!all.is_empty(), "the library has no symbol table to check");
    let sqlite: Vec<&String> = all
        .iter()
        .filter(|s| s.starts_with("sqlite3") && s.as_str() != "sqlite3_pocketvec_init")
        .collect();
    assert!(
        sqlite.is_empty(),
        "SQLite symbols linked into the extension: {sqlite:?}"
    );
    for probe in [
        "sqlite3_open",
        "sqlite3_prepare_v2",
        "sqlite3VdbeExec",
        "sqlite3BtreeNext",
    ] {
        assert!(
            !all.iter().any(|s| s == probe),
            "{probe} is defined in the extension"
        );
    }
    let imported = nm(&["-D", "--undefined-only"]);
    let sqlite: Vec<&String> = imported
        .iter()
        .filter(|s| s.starts_with("sqlite3"))
        .collect();
    assert!(
        sqlite.is_empty(),
        "the extension imports SQLite symbols: {sqlite:?}"
    );
}
