//! Shared harness for the integration tests: a minimal connection trait
//! (implemented over rusqlite's bundled SQLite in `bundled.rs` and over
//! Debian's `libsqlite3.so.0` in `system.rs`), data generators, f64
//! reference search, and the test cases themselves (`cases.rs`), expanded
//! into `#[test]` functions by `pocketvec_suite!`.
#![allow(dead_code)]

pub mod cases;
pub mod index_cases;

use std::path::PathBuf;

/// A SQL value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Val {
    pub fn int(&self) -> i64 {
        match self {
            Val::Int(i) => *i,
            v => panic!("expected an integer, found {v:?}"),
        }
    }
    pub fn real(&self) -> f64 {
        match self {
            Val::Real(x) => *x,
            Val::Int(i) => *i as f64,
            v => panic!("expected a number, found {v:?}"),
        }
    }
    pub fn text(&self) -> &str {
        match self {
            Val::Text(s) => s,
            v => panic!("expected text, found {v:?}"),
        }
    }
    pub fn blob(&self) -> &[u8] {
        match self {
            Val::Blob(b) => b,
            v => panic!("expected a BLOB, found {v:?}"),
        }
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::Real(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_string())
    }
}
impl From<Vec<u8>> for Val {
    fn from(v: Vec<u8>) -> Val {
        Val::Blob(v)
    }
}

/// One open connection with pocketvec loaded.
pub trait Conn {
    /// Runs one or more statements without results.
    fn exec(&self, sql: &str) -> Result<(), String>;
    /// Runs one statement, returning every row.
    fn query(&self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, String>;
    /// `sqlite3_libversion_number()` of the library behind the connection.
    fn version(&self) -> i32;
    /// `sqlite3_db_config(SQLITE_DBCONFIG_DEFENSIVE, on)`.
    fn set_defensive(&self, on: bool);

    fn ok(&self, sql: &str) {
        if let Err(e) = self.exec(sql) {
            panic!("{sql}: {e}");
        }
    }
    fn rows(&self, sql: &str, params: &[Val]) -> Vec<Vec<Val>> {
        self.query(sql, params)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
    fn one(&self, sql: &str, params: &[Val]) -> Val {
        let r = self.rows(sql, params);
        assert_eq!(r.len(), 1, "{sql}: expected one row, got {r:?}");
        r[0][0].clone()
    }
    /// Runs a statement that must fail; returns the message.
    fn err(&self, sql: &str, params: &[Val]) -> String {
        match self.query(sql, params) {
            Ok(r) => panic!("{sql}: expected an error, got rows {r:?}"),
            Err(e) => e,
        }
    }
}

/// Opens a database (path, `file:` URI or ":memory:") with the extension
/// loaded.
pub type Opener = fn(&str) -> Box<dyn Conn>;

/// How a test suite opens connections: with the extension, and plain ones
/// that never loaded it (what any other app on the same file is).
#[derive(Copy, Clone)]
pub struct Driver {
    pub open: Opener,
    pub plain: Opener,
}

/// The extension under test: `$POCKETVEC_EXT`, else the `libpocketvec0`
/// that cargo built next to this test binary.
pub fn ext_path() -> PathBuf {
    if let Ok(p) = std::env::var("POCKETVEC_EXT") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    let name = format!(
        "{}pocketvec0{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let candidates = [
        deps.join(&name),
        deps.parent().expect("profile dir").join(&name),
    ];
    candidates
        .iter()
        .filter(|p| p.exists())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{name} not found next to {}; build it or set POCKETVEC_EXT",
                exe.display()
            )
        })
}

/// Deterministic generator (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn i8(&mut self) -> i8 {
        (self.next_u64() >> 56) as u8 as i8
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn vec_f32(&mut self, d: usize) -> Vec<f32> {
        (0..d).map(|_| self.f32()).collect()
    }
}

pub fn f32_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub fn f16_blob(v: &[half::f16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub fn i8_blob(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}
pub fn blob_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Metric {
    Cosine,
    L2,
    Dot,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::Dot => "dot",
        }
    }
}

/// Reference distance in f64.
pub fn dist64(m: Metric, a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    match m {
        Metric::Dot => -dot,
        Metric::L2 => a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt(),
        Metric::Cosine => {
            let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
            if na == 0.0 || nb == 0.0 {
                1.0
            } else {
                1.0 - dot / (na * nb)
            }
        }
    }
}

/// Brute-force reference: every (id, distance) ascending, ties by id.
pub fn brute(m: Metric, q: &[f64], rows: &[(i64, Vec<f64>)]) -> Vec<(i64, f64)> {
    let mut v: Vec<(i64, f64)> = rows.iter().map(|(id, x)| (*id, dist64(m, q, x))).collect();
    v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then(a.0.cmp(&b.0)));
    v
}

/// Checks that `got` (id, distance) is an exact top-`got.len()` of `all`
/// up to float rounding: rank by rank the distances match the reference,
/// every returned id's true distance matches what was reported, ids are
/// distinct, and nothing nearer was left out.
pub fn assert_topk(got: &[(i64, f64)], all: &[(i64, f64)], n: usize, tol: f64, ctx: &str) {
    assert_eq!(got.len(), n.min(all.len()), "{ctx}: row count");
    let truth: std::collections::HashMap<i64, f64> = all.iter().cloned().collect();
    let mut seen = std::collections::HashSet::new();
    for (i, &(id, d)) in got.iter().enumerate() {
        assert!(seen.insert(id), "{ctx}: id {id} returned twice");
        let t = *truth
            .get(&id)
            .unwrap_or_else(|| panic!("{ctx}: unknown id {id}"));
        let scale = 1.0 + t.abs();
        assert!(
            (t - d).abs() <= tol * scale,
            "{ctx}: id {id} reported {d}, true {t}"
        );
        assert!(
            (all[i].1 - d).abs() <= tol * scale,
            "{ctx}: rank {i}: got id {id} at {d}, reference has id {} at {}",
            all[i].0,
            all[i].1
        );
        if i > 0 {
            assert!(got[i - 1].1 <= d, "{ctx}: not ascending at rank {i}");
        }
    }
}

/// `SELECT rowid, distance ...` rows as (id, distance).
pub fn pairs(rows: &[Vec<Val>]) -> Vec<(i64, f64)> {
    rows.iter().map(|r| (r[0].int(), r[1].real())).collect()
}

/// Expands every case into a `#[test]` for one driver.
#[macro_export]
macro_rules! pocketvec_suite {
    ($open:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                common::cases::$case($open);
            }
        )*
    };
}

/// Index cases take a [`Driver`].
#[macro_export]
macro_rules! pocketvec_index_suite {
    ($driver:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                common::index_cases::$case($driver);
            }
        )*
    };
}

/// The index cases, for both drivers.
#[macro_export]
macro_rules! pocketvec_index_cases {
    ($driver:expr) => {
        $crate::pocketvec_index_suite!($driver;
            index_random_writes_match_brute_force,
            index_read_only_opens_overlay_pending_log,
            index_defensive_mode,
            index_lifecycle_drop_rename_format,
            index_commands_and_info,
            index_cache_validation_across_connections,
            index_batch_and_threads,
            index_filters_return_k_rows,
            index_ivf_search_and_maintenance,
            index_replace_check_follows_schema,
            index_compact_cache_is_exact,
        );
    };
}

/// The full list of cases, for both drivers.
#[macro_export]
macro_rules! pocketvec_all_cases {
    ($open:path) => {
        $crate::pocketvec_suite!($open;
            loads_and_reports_versions,
            seed_demo_exact_top5,
            exact_topk_every_metric_and_type,
            f32_query_into_int8_and_f16_tables,
            k_and_limit_semantics,
            limit_not_applied_when_sqlite_filters_or_sorts,
            filtered_knn_rowid_in_ranges_distance,
            joins_back_to_base_and_other_tables,
            set_q_is_per_connection_and_overridable,
            two_connections_on_two_threads,
            null_rows_skipped_bad_rows_named,
            scalar_functions_match_reference,
            typed_functions_and_subtypes,
            normalize_table_in_place,
            bad_function_inputs,
            bad_query_inputs,
            bad_create_options,
            identifiers_are_quoted_not_spliced,
            failed_statements_change_nothing,
            dropped_base_table_reported_and_vtab_droppable,
        );
    };
}
