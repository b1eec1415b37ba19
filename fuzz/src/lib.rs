//! Shared harness for the pocketvec fuzz targets: an in-memory connection
//! with the extension registered (linked in, so libFuzzer sees its
//! coverage), value helpers and the f64 brute-force reference.
#![deny(unstable_features)]

use std::sync::Once;

use rusqlite::types::{Value, ValueRef};
use rusqlite::Connection;

static REGISTER: Once = Once::new();

/// Opens an in-memory database with pocketvec registered on it.
pub fn open() -> Connection {
    REGISTER.call_once(|| {
        // SAFETY: `pocketvec0::init` has SQLite's extension entry point
        // signature; rusqlite's bundled SQLite calls it with a valid
        // connection, error pointer and routines table.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_auto_extension(Some(std::mem::transmute::<
                unsafe extern "C" fn(
                    *mut pocketvec0::sys::sqlite3,
                    *mut *mut std::ffi::c_char,
                    *const pocketvec0::sys::sqlite3_api_routines,
                ) -> std::ffi::c_int,
                unsafe extern "C" fn(
                    *mut rusqlite::ffi::sqlite3,
                    *mut *mut std::ffi::c_char,
                    *const rusqlite::ffi::sqlite3_api_routines,
                ) -> std::ffi::c_int,
            >(pocketvec0::init)))
        };
        assert_eq!(rc, 0, "sqlite3_auto_extension failed");
    });
    let c = Connection::open_in_memory().expect("open :memory:");
    let v: String = c
        .query_row("SELECT pocketvec_version()", [], |r| r.get(0))
        .expect("pocketvec is registered");
    assert!(!v.is_empty());
    c
}

/// Runs one statement and returns its rows, or SQLite's message.
pub fn query(c: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, String> {
    let mut st = c.prepare(sql).map_err(message)?;
    let n = st.column_count();
    let mut rows = st
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(message)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(message)? {
        out.push(
            (0..n)
                .map(|i| match r.get_ref(i).expect("column in range") {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Integer(i),
                    ValueRef::Real(x) => Value::Real(x),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                })
                .collect(),
        );
    }
    Ok(out)
}

pub fn message(e: rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m,
        e => e.to_string(),
    }
}

/// The connection still works and the schema is readable (after an error).
pub fn assert_usable(c: &Connection) {
    let n: i64 = c
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .expect("connection usable after an error");
    assert!(n >= 0);
    let one: f64 = c
        .query_row(
            "SELECT pocketvec_distance_l2(pocketvec_f32('[0,0]'), pocketvec_f32('[3,4]'))",
            [],
            |r| r.get(0),
        )
        .expect("pocketvec functions usable after an error");
    assert_eq!(one, 5.0);
}

/// f32 little-endian bytes.
pub fn f32_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Metric as the extension names it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Metric {
    Cosine,
    L2,
    Dot,
}

impl Metric {
    pub fn from_byte(b: u8) -> Metric {
        match b % 3 {
            0 => Metric::Cosine,
            1 => Metric::L2,
            _ => Metric::Dot,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::Dot => "dot",
        }
    }
}

/// Reference distance in f64 (smaller = nearer). Cosine of a zero vector
/// is documented as similarity 0, so distance 1.
pub fn distance(m: Metric, a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    match m {
        Metric::Dot => -dot,
        Metric::L2 => a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum::<f64>()
            .sqrt(),
        Metric::Cosine => {
            let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            if na == 0.0 || nb == 0.0 {
                1.0
            } else {
                1.0 - (dot / (na * nb)).clamp(-1.0, 1.0)
            }
        }
    }
}

/// Absolute tolerance for comparing an f32 kernel result with the f64
/// reference: relative to the magnitudes involved.
pub fn tolerance(m: Metric, a: &[f32], b: &[f32]) -> f64 {
    let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let scale = match m {
        Metric::Cosine => 1.0,
        Metric::L2 => na + nb,
        Metric::Dot => na * nb,
    };
    1e-4 * scale.max(1.0) * (a.len() as f64).sqrt().max(1.0)
}

/// Checks a returned k-NN list against the f64 reference.
/// `expected` is the reference answer (rowid, distance) in order;
/// `got` the rows returned. Positions may swap only between rows whose
/// reference distances are within `eps` of each other.
pub fn check_knn(
    expected: &[(i64, f64)],
    got: &[(i64, f64)],
    reference: &dyn Fn(i64) -> Option<f64>,
    eps: f64,
    what: &str,
) {
    assert_eq!(
        got.len(),
        expected.len(),
        "{what}: row count differs\n got {got:?}\n expected {expected:?}"
    );
    let mut seen = std::collections::HashSet::new();
    for (i, (&(rowid, d), &(_, ed))) in got.iter().zip(expected).enumerate() {
        assert!(seen.insert(rowid), "{what}: rowid {rowid} returned twice");
        let rd = reference(rowid)
            .unwrap_or_else(|| panic!("{what}: rowid {rowid} is not an eligible row"));
        assert!(
            (d - rd).abs() <= eps,
            "{what}: rowid {rowid} distance {d} but reference {rd}"
        );
        assert!(
            (rd - ed).abs() <= eps,
            "{what}: position {i} holds rowid {rowid} (reference distance {rd}), expected distance {ed}\n got {got:?}\n expected {expected:?}"
        );
    }
}
