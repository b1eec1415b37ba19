//! Hostile shadow-table contents (issue 7): databases written by someone
//! else. A plain connection (one that never loaded pocketvec, like any other
//! app on the file) truncates, extends, fills with garbage, sets to NULL or
//! to the wrong type every BLOB and integer column of every shadow table,
//! deletes and duplicates rows, and drops tables, on exact (f32 cosine,
//! int8 L2) and trained IVF (PQ, int8) indexes. For every case, on both
//! SQLite versions the other suites use (rusqlite's bundled library and
//! Debian's `libsqlite3.so.0`):
//!
//! 1. a fresh pocketvec connection, and a read-only one (`mode=ro`, which
//!    must leave the file byte-identical), query it: each answer is either
//!    exact (equal to brute force over the base table; IVF at nprobe = all
//!    lists, and any nprobe gives only existing rows with exact distances)
//!    or a clear error naming the table and how to repair it — never a
//!    crash, a panic or a wrong answer;
//! 2. the same after writes to the base table (the log is applied into
//!    the damaged tables);
//! 3. `'integrity-check'` reports the damage (an error), unless the case
//!    is one the index does not depend on (then the answers were exact);
//! 4. `'rebuild'` repairs it: integrity-check passes and queries equal
//!    brute force again. A format version from the future is refused by
//!    `'rebuild'` (a newer pocketvec's data is not overwritten); DROP TABLE
//!    and CREATE repair it.

mod common;

use std::collections::HashMap;

use common::{assert_topk, brute, f32_blob, i8_blob, pairs, Conn, Driver, Metric, Rng, Val};

const DIM: usize = 8;
const ROWS: usize = 400;
const TOL: f64 = 2e-5;
const LISTS: usize = 4;

#[derive(Copy, Clone, Debug, PartialEq)]
enum Kind {
    /// Exact, f32, cosine (stored norms), 64-row chunks.
    FlatF32,
    /// Exact, int8, L2, 64-row chunks.
    FlatI8,
    /// IVF-PQ, trained, cosine.
    IvfPq,
    /// IVF-int8, trained, L2.
    IvfI8,
}

const KINDS: [Kind; 4] = [Kind::FlatF32, Kind::FlatI8, Kind::IvfPq, Kind::IvfI8];

impl Kind {
    fn options(self) -> String {
        match self {
            Kind::FlatF32 => format!("base_table=docs, dim={DIM}, metric=cosine, chunk_rows=64"),
            Kind::FlatI8 => {
                format!("base_table=docs, dim={DIM}, metric=l2, type=int8, chunk_rows=64")
            }
            Kind::IvfPq => format!(
                "base_table=docs, dim={DIM}, metric=cosine, index=ivf, lists={LISTS}, quantizer=pq, pq_m=4, train_min=300"
            ),
            Kind::IvfI8 => format!(
                "base_table=docs, dim={DIM}, metric=l2, type=int8, index=ivf, lists={LISTS}, quantizer=int8, train_min=300"
            ),
        }
    }
    fn metric(self) -> Metric {
        match self {
            Kind::FlatF32 | Kind::IvfPq => Metric::Cosine,
            Kind::FlatI8 | Kind::IvfI8 => Metric::L2,
        }
    }
    fn int8(self) -> bool {
        matches!(self, Kind::FlatI8 | Kind::IvfI8)
    }
    fn ivf(self) -> bool {
        matches!(self, Kind::IvfPq | Kind::IvfI8)
    }
    /// A base-table vector (the stored type) and its values.
    fn vector(self, rng: &mut Rng) -> (Vec<u8>, Vec<f64>) {
        if self.int8() {
            let v: Vec<i8> = (0..DIM).map(|_| (rng.below(41) as i8) - 20).collect();
            (i8_blob(&v), v.iter().map(|&x| f64::from(x)).collect())
        } else {
            let v = rng.vec_f32(DIM);
            (f32_blob(&v), v.iter().map(|&x| f64::from(x)).collect())
        }
    }
    /// A query as JSON (converted exactly into the table's type) and its
    /// values.
    fn query(self, rng: &mut Rng) -> (String, Vec<f64>) {
        let v: Vec<f64> = if self.int8() {
            (0..DIM)
                .map(|_| (rng.below(41) as i64 - 20) as f64)
                .collect()
        } else {
            rng.vec_f32(DIM).iter().map(|&x| f64::from(x)).collect()
        };
        let json = format!(
            "[{}]",
            v.iter()
                .map(|x| format!("{x:?}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        (json, v)
    }
}

/// What a case may do to the index.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Expect {
    /// The index depends on it: `'integrity-check'` must report it.
    Detect,
    /// Data the index does not rely on for its answers (the cache token,
    /// the `list` column, …): answers stay exact; integrity-check may pass.
    Harmless,
    /// A format version from the future: a clear error everywhere;
    /// `'rebuild'` refuses, DROP TABLE + CREATE repairs.
    Future,
    /// The index repairs it itself before anyone sees a wrong answer (a
    /// row count one too high exposes an empty slot whose rowid is not in
    /// the base table: the query drops it and logs it, and the next apply
    /// removes it). Answers are exact; integrity-check may pass.
    Heals,
    /// Damaged contents of stored vectors, norms or rowids (or missing map
    /// rows) that a scan cannot tell from real data: format 1 has no
    /// checksum, so answers may be wrong until integrity-check, which must
    /// report it; rebuild repairs it. No crash, no out-of-bounds access,
    /// and every error is still a clear one.
    Silent,
}

/// How a case damages the index, through a plain connection.
enum Damage {
    /// SQL statements (`ann` is the virtual table).
    Sql(String),
    /// Rewrites one BLOB: `SELECT rowid, <column> FROM <table> WHERE <which>`
    /// is edited by `f` and written back as a BLOB.
    Edit {
        table: &'static str,
        column: &'static str,
        which: &'static str,
        f: fn(&mut Vec<u8>),
    },
}

struct Case {
    name: &'static str,
    kinds: &'static [Kind],
    damage: Damage,
    expect: Expect,
}

const FLAT: &[Kind] = &[Kind::FlatF32, Kind::FlatI8];
const IVF: &[Kind] = &[Kind::IvfPq, Kind::IvfI8];
const ALL: &[Kind] = &KINDS;
const COSINE_FLAT: &[Kind] = &[Kind::FlatF32];

/// Re-creates a shadow table without its NOT NULL constraints and types
/// (what another program could have written), keeping the rows.
fn loosen(table: &str, cols: &str) -> String {
    format!(
        "CREATE TEMP TABLE loose AS SELECT * FROM {table}; DROP TABLE {table}; \
         CREATE TABLE {table}({cols}); INSERT INTO {table} SELECT * FROM loose; DROP TABLE loose;"
    )
}

/// Deterministic garbage.
fn scramble(b: &mut [u8], seed: u64) {
    let mut r = Rng::new(seed);
    for x in b.iter_mut() {
        *x = r.next_u64() as u8;
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Byte range of the ids of an IVF list chunk (header: count at 8).
fn list_ids(b: &[u8]) -> std::ops::Range<usize> {
    24..24 + 8 * u32_at(b, 8) as usize
}

fn set_count(b: &mut [u8], n: u32) {
    b[8..12].copy_from_slice(&n.to_le_bytes());
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut add = |name: &'static str, kinds: &'static [Kind], sql: &str, expect: Expect| {
        v.push(Case {
            name,
            kinds,
            damage: Damage::Sql(sql.to_string()),
            expect,
        })
    };
    use Expect::*;
    // ---- X_info ---------------------------------------------------------
    let info =
        |key: &str, value: &str| format!("UPDATE ann_info SET value = {value} WHERE key = '{key}'");
    add(
        "format from the future (2)",
        ALL,
        &info("format", "2"),
        Future,
    );
    add(
        "format from the future (2^40)",
        ALL,
        &info("format", "1099511627776"),
        Future,
    );
    add("format 0", ALL, &info("format", "0"), Detect);
    add("format negative", ALL, &info("format", "-1"), Detect);
    add(
        "format garbage text",
        ALL,
        &info("format", "'garbage'"),
        Detect,
    );
    add(
        "format garbage BLOB",
        ALL,
        &info("format", "x'00ff00ff'"),
        Detect,
    );
    add("format real", ALL, &info("format", "1.5"), Detect);
    add("format NULL", ALL, &info("format", "NULL"), Detect);
    add(
        "format row deleted",
        ALL,
        "DELETE FROM ann_info WHERE key = 'format'",
        Detect,
    );
    add("token NULL", ALL, &info("token", "NULL"), Harmless);
    add(
        "token garbage BLOB",
        ALL,
        &info("token", "randomblob(12)"),
        Harmless,
    );
    add(
        "token row deleted",
        ALL,
        "DELETE FROM ann_info WHERE key = 'token'",
        Harmless,
    );
    add(
        "model_token garbage",
        IVF,
        &info("model_token", "'x'"),
        Harmless,
    );
    for (name, value) in [
        ("rows NULL", "NULL"),
        ("rows 0", "0"),
        ("rows negative", "-5"),
        ("rows one less", "value - 1"),
        ("rows one chunk more", "value + 64"),
        ("rows huge", "9223372036854775807"),
        ("rows garbage text", "'many'"),
        ("rows garbage BLOB", "randomblob(8)"),
    ] {
        add(name, ALL, &info("rows", value), Detect);
    }
    add("rows one more", ALL, &info("rows", "value + 1"), Heals);
    add(
        "rows row deleted",
        ALL,
        "DELETE FROM ann_info WHERE key = 'rows'",
        Detect,
    );
    add(
        "trained set on an exact index",
        FLAT,
        &info("trained", "1"),
        Detect,
    );
    add(
        "trained set and a garbage model on an exact index",
        FLAT,
        "UPDATE ann_info SET value = 1 WHERE key = 'trained'; UPDATE ann_info SET value = randomblob(200) WHERE key = 'model'",
        Detect,
    );
    add(
        "trained cleared on an IVF index",
        IVF,
        &info("trained", "0"),
        Detect,
    );
    add(
        "trained garbage BLOB",
        IVF,
        &info("trained", "x'01'"),
        Detect,
    );
    add(
        "key column garbage",
        ALL,
        &info("key", "'no_such_column'"),
        Detect,
    );
    add("key NULL", ALL, &info("key", "NULL"), Detect);
    add(
        "base name garbage",
        ALL,
        &info("base", "'no_such_table'"),
        Harmless,
    );
    add("model NULL", IVF, &info("model", "NULL"), Detect);
    add(
        "model truncated",
        IVF,
        &info("model", "substr(value, 1, length(value) / 2)"),
        Detect,
    );
    add(
        "model extended",
        IVF,
        &info("model", "CAST(value || zeroblob(16) AS BLOB)"),
        Detect,
    );
    add(
        "model garbage",
        IVF,
        &info("model", "randomblob(length(value))"),
        Detect,
    );
    add(
        "model one byte flipped (CRC)",
        IVF,
        &info(
            "model",
            "CAST(substr(value, 1, 99) || x'5a' || substr(value, 101) AS BLOB)",
        ),
        Detect,
    );
    add(
        "model header dim changed",
        IVF,
        &info(
            "model",
            "CAST(substr(value, 1, 8) || x'09000000' || substr(value, 13) AS BLOB)",
        ),
        Detect,
    );
    add("model text", IVF, &info("model", "'model'"), Detect);
    add("model integer", IVF, &info("model", "42"), Detect);
    add("info rows all deleted", ALL, "DELETE FROM ann_info", Detect);
    // ---- X_chunks (flat storage) -----------------------------------------
    let chunk0 = |value: &str| format!("UPDATE ann_chunks SET data = {value} WHERE id = 0");
    add(
        "chunk truncated",
        FLAT,
        &chunk0("substr(data, 1, length(data) / 2)"),
        Detect,
    );
    add(
        "chunk truncated by one byte",
        FLAT,
        &chunk0("substr(data, 1, length(data) - 1)"),
        Detect,
    );
    add(
        "chunk extended",
        FLAT,
        &chunk0("CAST(data || zeroblob(8) AS BLOB)"),
        Detect,
    );
    add("chunk empty BLOB", FLAT, &chunk0("x''"), Detect);
    add(
        "chunk zeroed",
        FLAT,
        &chunk0("zeroblob(length(data))"),
        Silent,
    );
    add(
        "chunk garbage",
        FLAT,
        &chunk0("randomblob(length(data))"),
        Silent,
    );
    add(
        "chunk rowids garbage (vectors kept)",
        FLAT,
        &chunk0("CAST(randomblob(512) || substr(data, 513) AS BLOB)"),
        Silent,
    );
    add(
        "rowids of the last chunk garbage",
        FLAT,
        "UPDATE ann_chunks SET data = CAST(randomblob(512) || substr(data, 513) AS BLOB) WHERE id = (SELECT max(id) FROM ann_chunks)",
        Silent,
    );
    add(
        "chunk norms garbage",
        COSINE_FLAT,
        &chunk0("CAST(substr(data, 1, 512) || randomblob(256) || substr(data, 769) AS BLOB)"),
        Silent,
    );
    add(
        "chunk norms zeroed",
        COSINE_FLAT,
        &chunk0("CAST(substr(data, 1, 512) || zeroblob(256) || substr(data, 769) AS BLOB)"),
        Silent,
    );
    add(
        "chunk vectors garbage",
        FLAT,
        "UPDATE ann_chunks SET data = CAST(substr(data, 1, length(data) - 256) || randomblob(256) AS BLOB) WHERE id = 1",
        Silent,
    );
    add(
        "duplicate rowid across chunks",
        FLAT,
        "UPDATE ann_chunks SET data = CAST((SELECT substr(data, 1, 8) FROM ann_chunks WHERE id = 0) || substr(data, 9) AS BLOB) WHERE id = 1",
        Silent,
    );
    add("chunk text", FLAT, &chunk0("'chunk'"), Detect);
    add("chunk integer", FLAT, &chunk0("7"), Detect);
    add("chunk real", FLAT, &chunk0("7.5"), Detect);
    add(
        "chunk NULL",
        FLAT,
        &(loosen("ann_chunks", "id INTEGER PRIMARY KEY, data") + &chunk0("NULL")),
        Detect,
    );
    add(
        "chunk row deleted",
        FLAT,
        "DELETE FROM ann_chunks WHERE id = 2",
        Detect,
    );
    add(
        "last chunk row deleted",
        FLAT,
        "DELETE FROM ann_chunks WHERE id = (SELECT max(id) FROM ann_chunks)",
        Detect,
    );
    add("all chunks deleted", FLAT, "DELETE FROM ann_chunks", Detect);
    add(
        "chunk moved to another id",
        FLAT,
        "UPDATE ann_chunks SET id = 1000 WHERE id = 3",
        Detect,
    );
    add(
        "extra chunk",
        FLAT,
        "INSERT INTO ann_chunks SELECT 1000, data FROM ann_chunks WHERE id = 0",
        Detect,
    );
    add(
        "chunks swapped",
        FLAT,
        "UPDATE ann_chunks SET id = -1 WHERE id = 0; UPDATE ann_chunks SET id = 0 WHERE id = 1; UPDATE ann_chunks SET id = 1 WHERE id = -1",
        Detect,
    );
    // ---- X_map -------------------------------------------------------------
    add(
        "map pos garbage",
        ALL,
        "UPDATE ann_map SET pos = pos * 1000003 + 77 WHERE id % 6 = 4",
        Detect,
    );
    add(
        "map pos negative",
        ALL,
        "UPDATE ann_map SET pos = -pos - 1 WHERE id % 2 = 0",
        Detect,
    );
    add(
        "map pos huge",
        ALL,
        "UPDATE ann_map SET pos = 9223372036854775807 WHERE id % 5 = 0",
        Detect,
    );
    add(
        "map pos all the same",
        ALL,
        "UPDATE ann_map SET pos = (SELECT min(pos) FROM ann_map)",
        Detect,
    );
    add(
        "map pos text",
        ALL,
        "UPDATE ann_map SET pos = 'here' WHERE id % 4 = 0",
        Detect,
    );
    add(
        "map pos BLOB",
        ALL,
        "UPDATE ann_map SET pos = randomblob(8) WHERE id % 4 = 0",
        Detect,
    );
    add(
        "map pos NULL",
        ALL,
        &(loosen("ann_map", "id INTEGER PRIMARY KEY, pos")
            + "UPDATE ann_map SET pos = NULL WHERE id % 4 = 0"),
        Detect,
    );
    add(
        "map ids shifted",
        ALL,
        "UPDATE ann_map SET id = id + 100000",
        Detect,
    );
    add(
        "map rows deleted",
        ALL,
        "DELETE FROM ann_map WHERE id % 7 = 0",
        Silent,
    );
    add("map emptied", ALL, "DELETE FROM ann_map", Silent);
    add(
        "map extra rows",
        ALL,
        "INSERT INTO ann_map SELECT id + 100000, pos FROM ann_map",
        Detect,
    );
    // ---- X_lists (IVF) -----------------------------------------------------
    let list0 = |value: &str| {
        format!("UPDATE ann_lists SET data = {value} WHERE id = (SELECT min(id) FROM ann_lists)")
    };
    add(
        "list chunk truncated",
        IVF,
        &list0("substr(data, 1, length(data) / 2)"),
        Detect,
    );
    add(
        "list chunk truncated by one byte",
        IVF,
        &list0("substr(data, 1, length(data) - 1)"),
        Detect,
    );
    add(
        "list chunk extended",
        IVF,
        &list0("CAST(data || zeroblob(8) AS BLOB)"),
        Detect,
    );
    add("list chunk empty BLOB", IVF, &list0("x''"), Detect);
    add(
        "list chunk garbage",
        IVF,
        &list0("randomblob(length(data))"),
        Detect,
    );
    add(
        "list chunk count field garbage",
        IVF,
        &list0("CAST(substr(data, 1, 8) || x'ffffff7f' || substr(data, 13) AS BLOB)"),
        Detect,
    );
    add(
        "list chunk count field zero",
        IVF,
        &list0("CAST(substr(data, 1, 8) || x'00000000' || substr(data, 13) AS BLOB)"),
        Detect,
    );
    add(
        "list chunk code size field garbage",
        IVF,
        &list0("CAST(substr(data, 1, 12) || x'00010000' || substr(data, 17) AS BLOB)"),
        Detect,
    );
    add(
        "list chunk magic garbage",
        IVF,
        &list0("CAST(x'00000000' || substr(data, 5) AS BLOB)"),
        Detect,
    );
    add(
        "list chunk ids zeroed",
        IVF,
        "UPDATE ann_lists SET data = CAST(substr(data, 1, 24) || zeroblob(8) || substr(data, 33) AS BLOB)",
        Detect,
    );
    add("list chunk text", IVF, &list0("'list'"), Detect);
    add("list chunk integer", IVF, &list0("3"), Detect);
    add(
        "list chunk NULL",
        IVF,
        &(loosen("ann_lists", "id INTEGER PRIMARY KEY, list, data") + &list0("NULL")),
        Detect,
    );
    add(
        "list column garbage",
        IVF,
        &(loosen("ann_lists", "id INTEGER PRIMARY KEY, list, data")
            + "UPDATE ann_lists SET list = 'x'"),
        Harmless,
    );
    add(
        "list chunk deleted",
        IVF,
        "DELETE FROM ann_lists WHERE id = (SELECT min(id) FROM ann_lists)",
        Detect,
    );
    add("lists emptied", IVF, "DELETE FROM ann_lists", Detect);
    add(
        "list chunk moved to a list out of range",
        IVF,
        "UPDATE ann_lists SET id = (1000 << 24) WHERE id = (SELECT min(id) FROM ann_lists)",
        Detect,
    );
    add(
        "list chunk moved to a negative id",
        IVF,
        "UPDATE ann_lists SET id = -5 WHERE id = (SELECT min(id) FROM ann_lists)",
        Detect,
    );
    add(
        "list chunk duplicated into another list",
        IVF,
        "INSERT INTO ann_lists SELECT ((((id >> 24) + 1) % 4) << 24) + 500, list, data FROM ann_lists WHERE id = (SELECT min(id) FROM ann_lists)",
        Detect,
    );
    // ---- dropped tables ----------------------------------------------------
    for (name, t) in [
        ("ann_info dropped", "info"),
        ("ann_chunks dropped", "chunks"),
        ("ann_map dropped", "map"),
        ("ann_lists dropped", "lists"),
        ("ann_log dropped", "log"),
    ] {
        add(name, ALL, &format!("DROP TABLE ann_{t}"), Detect);
    }
    // ---- byte-level edits ------------------------------------------------
    let mut edit = |name: &'static str,
                    kinds: &'static [Kind],
                    table: &'static str,
                    column: &'static str,
                    which: &'static str,
                    expect: Expect,
                    f: fn(&mut Vec<u8>)| {
        v.push(Case {
            name,
            kinds,
            damage: Damage::Edit {
                table,
                column,
                which,
                f,
            },
            expect,
        })
    };
    edit(
        "chunk vectors NaN",
        COSINE_FLAT,
        "ann_chunks",
        "data",
        "id = 0",
        Expect::Silent,
        |b| {
            for x in b[768..].chunks_exact_mut(4) {
                x.copy_from_slice(&f32::NAN.to_le_bytes());
            }
        },
    );
    edit(
        "chunk vectors infinite",
        COSINE_FLAT,
        "ann_chunks",
        "data",
        "id = 1",
        Expect::Silent,
        |b| {
            for x in b[768..].chunks_exact_mut(4).step_by(3) {
                x.copy_from_slice(&f32::INFINITY.to_le_bytes());
            }
        },
    );
    edit(
        "chunk norms NaN",
        COSINE_FLAT,
        "ann_chunks",
        "data",
        "id = 0",
        Expect::Silent,
        |b| {
            for x in b[512..768].chunks_exact_mut(4) {
                x.copy_from_slice(&f32::NAN.to_le_bytes());
            }
        },
    );
    edit(
        "chunk rowids of another chunk",
        FLAT,
        "ann_chunks",
        "data",
        "id = 1",
        Expect::Silent,
        |b| {
            for (i, x) in b[..512].chunks_exact_mut(8).enumerate() {
                x.copy_from_slice(&(3 * i as i64 + 1).to_le_bytes());
            }
        },
    );
    edit(
        "list chunk ids garbage (codes kept)",
        IVF,
        "ann_lists",
        "data",
        "id = (SELECT min(id) FROM ann_lists)",
        Expect::Detect,
        |b| {
            let r = list_ids(b);
            scramble(&mut b[r], 11);
        },
    );
    edit(
        "list chunk ids of existing rows (codes kept)",
        IVF,
        "ann_lists",
        "data",
        "id = (SELECT min(id) FROM ann_lists)",
        Expect::Detect,
        |b| {
            let r = list_ids(b);
            for (i, x) in b[r].chunks_exact_mut(8).enumerate() {
                x.copy_from_slice(&(3 * ((i as i64 * 7) % ROWS as i64) + 1).to_le_bytes());
            }
        },
    );
    edit(
        "list chunk codes garbage (ids kept)",
        IVF,
        "ann_lists",
        "data",
        "id = (SELECT min(id) FROM ann_lists)",
        Expect::Detect,
        |b| {
            let end = list_ids(b).end;
            scramble(&mut b[end..], 12);
        },
    );
    edit(
        "list chunk side values NaN",
        &[Kind::IvfI8],
        "ann_lists",
        "data",
        "id = (SELECT min(id) FROM ann_lists)",
        Expect::Detect,
        |b| {
            // int8 codes: n·dim code bytes, then the side values
            let n = u32_at(b, 8) as usize;
            let at = list_ids(b).end + n * DIM;
            for x in b[at..].chunks_exact_mut(4) {
                x.copy_from_slice(&f32::NAN.to_le_bytes());
            }
        },
    );
    edit(
        "list chunk count one more",
        IVF,
        "ann_lists",
        "data",
        "id = (SELECT min(id) FROM ann_lists)",
        Expect::Detect,
        |b| {
            let n = u32_at(b, 8);
            set_count(b, n + 1)
        },
    );
    edit(
        "list chunk count one less",
        IVF,
        "ann_lists",
        "data",
        "id = (SELECT min(id) FROM ann_lists)",
        Expect::Detect,
        |b| {
            let n = u32_at(b, 8);
            set_count(b, n - 1)
        },
    );
    edit(
        "model centroids NaN (CRC fixed)",
        IVF,
        "ann_info",
        "value",
        "key = 'model'",
        Expect::Detect,
        |b| {
            b[64..68].copy_from_slice(&f32::NAN.to_le_bytes());
            let n = b.len();
            let crc = crc32(&b[..n - 4]);
            b[n - 4..].copy_from_slice(&crc.to_le_bytes());
        },
    );
    edit(
        "model lists field changed (CRC fixed)",
        IVF,
        "ann_info",
        "value",
        "key = 'model'",
        Expect::Detect,
        |b| {
            b[12..16].copy_from_slice(&2u32.to_le_bytes());
            let n = b.len();
            let crc = crc32(&b[..n - 4]);
            b[n - 4..].copy_from_slice(&crc.to_le_bytes());
        },
    );
    v
}

/// CRC-32 (IEEE), as the model format uses.
fn crc32(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn damage(c: &dyn Conn, d: &Damage) -> Result<(), String> {
    match d {
        Damage::Sql(sql) => c.exec(sql),
        Damage::Edit {
            table,
            column,
            which,
            f,
        } => {
            let rows = c.query(
                &format!("SELECT rowid, {column} FROM {table} WHERE {which}"),
                &[],
            )?;
            assert!(!rows.is_empty(), "nothing to edit in {table} where {which}");
            for r in rows {
                let mut b = r[1].blob().to_vec();
                f(&mut b);
                c.query(
                    &format!("UPDATE {table} SET {column} = ?1 WHERE rowid = ?2"),
                    &[Val::Blob(b), r[0].clone()],
                )?;
            }
            Ok(())
        }
    }
}

/// The base table's rows with a vector of the right size.
fn base_rows(c: &dyn Conn, int8: bool) -> Vec<(i64, Vec<f64>)> {
    c.rows("SELECT id, vec FROM docs ORDER BY id", &[])
        .into_iter()
        .filter_map(|r| {
            let Val::Blob(b) = &r[1] else { return None };
            let v: Vec<f64> = if int8 {
                b.iter().map(|&x| f64::from(x as i8)).collect()
            } else {
                common::blob_f32(b).into_iter().map(f64::from).collect()
            };
            (v.len() == DIM).then_some((r[0].int(), v))
        })
        .collect()
}

fn tmp_db(tag: &str) -> String {
    let dir = std::env::temp_dir().join(format!("pocketvec-hostile-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("h.db").to_string_lossy().into_owned()
}

fn setup(d: Driver, path: &str, kind: Kind, rng: &mut Rng) {
    let c = (d.open)(path);
    c.ok("CREATE TABLE docs(id INTEGER PRIMARY KEY, name TEXT, vec BLOB)");
    c.ok("BEGIN");
    for i in 0..ROWS {
        let (b, _) = kind.vector(rng);
        c.rows(
            "INSERT INTO docs VALUES (?, ?, ?)",
            &[
                Val::Int(3 * i as i64 + 1),
                Val::Text(format!("n{i}")),
                Val::Blob(b),
            ],
        );
    }
    c.ok("COMMIT");
    c.ok(&format!(
        "CREATE VIRTUAL TABLE ann USING pocketvec({})",
        kind.options()
    ));
    let j: serde_json::Value =
        serde_json::from_str(c.one("SELECT pocketvec_info('ann')", &[]).text()).unwrap();
    assert_eq!(j["trained"], kind.ivf(), "{kind:?}: {j}");
    c.ok("INSERT INTO ann(ann) VALUES('integrity-check')");
}

/// A clear error: names the table (or one of its shadow tables), says the
/// index is damaged / missing / from another format and how to repair; no
/// panic text.
fn assert_clear(e: &str, ctx: &str) {
    assert!(
        e.contains("\"ann\"") || e.contains("ann_"),
        "{ctx}: the error does not name the table: {e}"
    );
    assert!(
        e.contains("rebuild") || e.contains("DROP TABLE"),
        "{ctx}: the error does not say how to repair: {e}"
    );
    assert!(!e.to_lowercase().contains("panic"), "{ctx}: {e}");
}

/// What the queries of one round saw.
#[derive(Default)]
struct Seen {
    errors: Vec<String>,
    exact: usize,
    /// Wrong answers (allowed only for `Expect::Silent`).
    wrong: usize,
    /// Allow wrong answers (count them instead of failing).
    lenient: bool,
}

/// Whether `got` is an exact top-n of `all` (what `assert_topk` checks).
fn is_topk(got: &[(i64, f64)], all: &[(i64, f64)], n: usize) -> bool {
    let truth: HashMap<i64, f64> = all.iter().cloned().collect();
    let mut ids = std::collections::HashSet::new();
    got.len() == n.min(all.len())
        && got.iter().enumerate().all(|(i, &(id, d))| {
            let scale = 1.0 + d.abs();
            ids.insert(id)
                && truth.get(&id).is_some_and(|t| (t - d).abs() <= TOL * scale)
                && (all[i].1 - d).abs() <= TOL * scale
        })
}

/// Runs exact and IVF queries on `c` and checks each against brute force
/// over `truth`: exact, or a clear error.
fn probe(
    c: &dyn Conn,
    kind: Kind,
    truth: &[(i64, Vec<f64>)],
    rng: &mut Rng,
    ctx: &str,
    seen: &mut Seen,
) {
    let m = kind.metric();
    let by_id: HashMap<i64, &Vec<f64>> = truth.iter().map(|(id, v)| (*id, v)).collect();
    for round in 0..3 {
        let (json, q) = kind.query(rng);
        let all = brute(m, &q, truth);
        let ctx = format!("{ctx}, query {round}");
        let exact_sql = if kind.ivf() {
            format!(
                "SELECT rowid, distance FROM ann WHERE query = ?1 AND k = 10 AND nprobe = {LISTS}"
            )
        } else {
            "SELECT rowid, distance FROM ann WHERE query = ?1 AND k = 10".to_string()
        };
        match c.query(&exact_sql, &[Val::Text(json.clone())]) {
            Ok(rows) => {
                let got = pairs(&rows);
                if is_topk(&got, &all, 10) {
                    seen.exact += 1;
                } else if seen.lenient {
                    seen.wrong += 1;
                } else {
                    assert_topk(&got, &all, 10, TOL, &ctx);
                    unreachable!("{ctx}: is_topk and assert_topk disagree");
                }
            }
            Err(e) => {
                assert_clear(&e, &ctx);
                seen.errors.push(e);
            }
        }
        if kind.ivf() {
            // Approximate: at most k rows, each an existing base row with
            // its exact distance, ascending, distinct.
            for nprobe in [1, 2] {
                let sql = format!(
                    "SELECT rowid, distance FROM ann WHERE query = ?1 AND k = 10 AND nprobe = {nprobe}"
                );
                match c.query(&sql, &[Val::Text(json.clone())]) {
                    Ok(rows) if seen.lenient => {
                        // Silent damage: anything but a crash is allowed
                        // here; count answers that are not valid.
                        let got = pairs(&rows);
                        if got.len() > 10 || got.iter().any(|(id, _)| !by_id.contains_key(id)) {
                            seen.wrong += 1;
                        }
                    }
                    Ok(rows) => {
                        let got = pairs(&rows);
                        assert!(got.len() <= 10, "{ctx}: {got:?}");
                        let mut ids = std::collections::HashSet::new();
                        for (i, (id, dist)) in got.iter().enumerate() {
                            assert!(ids.insert(*id), "{ctx}: {id} twice");
                            let v = by_id.get(id).unwrap_or_else(|| {
                                panic!("{ctx} nprobe={nprobe}: rowid {id} is not in the base table")
                            });
                            let t = common::dist64(m, &q, v);
                            assert!(
                                (t - dist).abs() <= TOL * (1.0 + t.abs()),
                                "{ctx} nprobe={nprobe}: {id} reported {dist}, true {t}"
                            );
                            assert!(i == 0 || got[i - 1].1 <= *dist, "{ctx}: not ascending");
                        }
                        if got.len() < 10 {
                            // fewer than k from the probed lists is allowed
                            // only when the index is damaged (widening falls
                            // back to the exact path otherwise)
                            seen.errors
                                .push(format!("nprobe={nprobe} returned {} rows", got.len()));
                        }
                    }
                    Err(e) => {
                        assert_clear(&e, &ctx);
                        seen.errors.push(e);
                    }
                }
            }
        }
    }
}

/// Writes through a pocketvec connection: updates, deletes, inserts.
fn write_some(c: &dyn Conn, kind: Kind, rng: &mut Rng, first_new: i64) -> Result<(), String> {
    for i in 0..6 {
        let (b, _) = kind.vector(rng);
        c.query(
            "UPDATE docs SET vec = ?1 WHERE id = ?2",
            &[Val::Blob(b), Val::Int(3 * (i * 37 % ROWS as i64) + 1)],
        )?;
    }
    c.query("DELETE FROM docs WHERE id IN (4, 64, 301, 1000)", &[])?;
    for i in 0..6 {
        let (b, _) = kind.vector(rng);
        c.query(
            "INSERT INTO docs VALUES (?1, 'new', ?2)",
            &[Val::Int(first_new + i), Val::Blob(b)],
        )?;
    }
    Ok(())
}

fn file_bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn run_case(d: Driver, case: &Case, kind: Kind, tag: &str, log: &mut Vec<String>) {
    let ctx = format!("{tag} {kind:?}: {}", case.name);
    let path = tmp_db(tag);
    let mut rng = Rng::new(0x5eed ^ case.name.len() as u64);
    setup(d, &path, kind, &mut rng);
    {
        let p = (d.plain)(&path);
        if let Err(e) = damage(&*p, &case.damage) {
            panic!("{ctx}: damaging failed: {e}");
        }
    }
    let plain = (d.plain)(&path);
    let truth = base_rows(&*plain, kind.int8());
    let mut seen = Seen {
        lenient: case.expect == Expect::Silent,
        ..Seen::default()
    };

    // 1. Read-only connection first: clear error or exact, and no write.
    let before = file_bytes(&path);
    {
        let ro = (d.open)(&format!("file:{path}?mode=ro"));
        probe(
            &*ro,
            kind,
            &truth,
            &mut rng,
            &format!("{ctx} [read-only]"),
            &mut seen,
        );
        match ro.query("INSERT INTO ann(ann) VALUES('integrity-check')", &[]) {
            Ok(_)
                if matches!(
                    case.expect,
                    Expect::Detect | Expect::Silent | Expect::Future
                ) =>
            {
                panic!("{ctx} [read-only]: integrity-check passed on a damaged index")
            }
            Ok(_) => {}
            Err(e) => assert!(!e.to_lowercase().contains("panic"), "{ctx}: {e}"),
        }
    }
    assert!(
        before == file_bytes(&path),
        "{ctx}: the read-only connection wrote to the file"
    );

    // 2. A fresh read-write connection.
    let a = (d.open)(&path);
    probe(
        &*a,
        kind,
        &truth,
        &mut rng,
        &format!("{ctx} [fresh]"),
        &mut seen,
    );

    // 3. Writes to the base table (the log is applied into the damaged
    //    tables by the next query), then queries again.
    let w = write_some(&*a, kind, &mut rng, 5000);
    if let Err(e) = &w {
        // Only a dropped log table can make base-table writes fail (the
        // triggers insert into it); the message names it.
        assert!(e.contains("ann_log"), "{ctx}: base-table write failed: {e}");
        seen.errors.push(e.clone());
    }
    let truth = base_rows(&*plain, kind.int8());
    probe(
        &*a,
        kind,
        &truth,
        &mut rng,
        &format!("{ctx} [after writes]"),
        &mut seen,
    );

    // 4. integrity-check reports the damage.
    let ic = a.query("INSERT INTO ann(ann) VALUES('integrity-check')", &[]);
    match (&ic, case.expect) {
        (Ok(_), Expect::Detect | Expect::Silent | Expect::Future) => panic!(
            "{ctx}: integrity-check passed on a damaged index (queries saw: {:?})",
            seen.errors
        ),
        (Ok(_), _) => {
            assert!(
                seen.errors.is_empty() && seen.wrong == 0,
                "{ctx}: integrity-check passed, but queries failed: {:?}",
                seen.errors
            );
        }
        (Err(e), _) => assert_clear(e, &format!("{ctx} [integrity-check]")),
    }

    // 5. 'rebuild' repairs (a future format: DROP TABLE + CREATE).
    match case.expect {
        Expect::Future => {
            let e = a.err("INSERT INTO ann(ann) VALUES('rebuild')", &[]);
            assert!(e.contains("format"), "{ctx}: {e}");
            a.ok("DROP TABLE ann");
            a.ok(&format!(
                "CREATE VIRTUAL TABLE ann USING pocketvec({})",
                kind.options()
            ));
        }
        _ => {
            if let Err(e) = a.exec("INSERT INTO ann(ann) VALUES('rebuild')") {
                panic!("{ctx}: 'rebuild' failed: {e}");
            }
        }
    }
    if let Err(e) = a.exec("INSERT INTO ann(ann) VALUES('integrity-check')") {
        panic!("{ctx}: integrity-check after the repair: {e}");
    }
    // The log works again: one more write, then exact answers.
    write_some(&*a, kind, &mut rng, 6000)
        .unwrap_or_else(|e| panic!("{ctx}: write after repair: {e}"));
    let truth = base_rows(&*plain, kind.int8());
    let mut after = Seen::default();
    probe(
        &*a,
        kind,
        &truth,
        &mut rng,
        &format!("{ctx} [repaired]"),
        &mut after,
    );
    assert!(
        after.errors.is_empty(),
        "{ctx}: after the repair: {:?}",
        after.errors
    );
    a.ok("INSERT INTO ann(ann) VALUES('integrity-check')");
    log.push(format!(
        "{kind:?}: {} ({:?}): {} exact answers, {} wrong, {} errors{}",
        case.name,
        case.expect,
        seen.exact,
        seen.wrong,
        seen.errors.len(),
        seen.errors
            .first()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    ));
    drop(a);
    drop(plain);
    let _ = std::fs::remove_dir_all(std::path::Path::new(&path).parent().unwrap());
}

/// Every case on every kind it applies to; all of them run, and every
/// failure is reported at the end. `POCKETVEC_HOSTILE_ONLY=<text>` runs the
/// cases whose name contains it; `POCKETVEC_HOSTILE_LOG=1` prints what each
/// case saw.
fn hostile_cases(d: Driver, tag: &str, only: &[Kind]) {
    let filter = std::env::var("POCKETVEC_HOSTILE_ONLY").unwrap_or_default();
    let mut log = Vec::new();
    let mut failures = Vec::new();
    let mut n = 0;
    for case in cases() {
        if !case.name.contains(filter.as_str()) {
            continue;
        }
        for &kind in case.kinds.iter().filter(|k| only.contains(k)) {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_case(d, &case, kind, &format!("{tag}-{n}"), &mut log)
            }));
            if let Err(p) = r {
                let m = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(m);
            }
            n += 1;
        }
    }
    if std::env::var_os("POCKETVEC_HOSTILE_LOG").is_some() {
        for l in &log {
            eprintln!("{l}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} hostile cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("hostile {tag}: {n} cases passed");
    assert!(n > 0);
}

#[path = "drivers/bundled.rs"]
mod bundled;
#[path = "drivers/system.rs"]
mod system;

/// The child runs on Debian 12's SQLite 3.40.
fn check_system_version() {
    let v = (system::DRIVER.open)(":memory:").version();
    assert!((3_038_000..3_041_000).contains(&v), "{v}");
}

// One process can use pocketvec with one SQLite library only, so the
// cases on Debian's SQLite run in a child process: this test binary again,
// running only the `child_*` test named, with POCKETVEC_HOSTILE_CHILD set.
const CHILD_ENV: &str = "POCKETVEC_HOSTILE_CHILD";

fn in_child(test: &str) {
    // The AddressSanitizer run (scripts/check-deep.sh) links with
    // --export-dynamic so the instrumented extension finds the ASan runtime;
    // the bundled SQLite this binary carries is then exported too and
    // interposes on Debian's libsqlite3 inside the child (two SQLites mixed:
    // a call through a null pointer at the first open). That run sets this
    // variable and covers the Debian side through system.rs instead.
    if std::env::var_os("POCKETVEC_HOSTILE_NO_SYSTEM").is_some() {
        eprintln!("hostile: {test} skipped (POCKETVEC_HOSTILE_NO_SYSTEM)");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child {test} failed:\n{text}"
    );
    for l in text.lines().filter(|l| l.starts_with("hostile ")) {
        eprintln!("{l}");
    }
}

#[test]
fn hostile_bundled_exact() {
    hostile_cases(bundled::DRIVER, "bundled-exact", FLAT);
}

#[test]
fn hostile_bundled_ivf() {
    hostile_cases(bundled::DRIVER, "bundled-ivf", IVF);
}

#[test]
fn hostile_system_exact() {
    in_child("child_system_exact");
}

#[test]
fn hostile_system_ivf() {
    in_child("child_system_ivf");
}

#[test]
fn child_system_exact() {
    if std::env::var_os(CHILD_ENV).is_some() {
        check_system_version();
        hostile_cases(system::DRIVER, "system-exact", FLAT);
    }
}

#[test]
fn child_system_ivf() {
    if std::env::var_os(CHILD_ENV).is_some() {
        check_system_version();
        hostile_cases(system::DRIVER, "system-ivf", IVF);
    }
}
