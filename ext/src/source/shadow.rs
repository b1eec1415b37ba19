//! The tables an index keeps next to its virtual table, in the same schema
//! (names derived from the virtual table's name `X`, always quoted):
//!
//! | table | role | shadow? |
//! | --- | --- | --- |
//! | `X_info(key TEXT PRIMARY KEY, value)` | format version, options, row count, the generation token, the IVF model (a rowid table: a lookup of a small key never reads the model's overflow pages) | yes |
//! | `X_chunks(id INTEGER PRIMARY KEY, data)` | flat storage: fixed-capacity chunks of contiguous rows (rowids, norms, vectors regions in one BLOB) | yes |
//! | `X_map(id INTEGER PRIMARY KEY, pos)` | base rowid → position (flat) or list chunk (IVF) | yes |
//! | `X_lists(id INTEGER PRIMARY KEY, list, data)` | IVF list chunks (`ivf::ListChunk` bytes) | yes |
//! | `X_log(seq INTEGER PRIMARY KEY, id)` | change log written by the triggers | **no** |
//!
//! and three plain-SQL triggers on the base table, `X_ai`, `X_ad`, `X_au`,
//! that append the rowids an INSERT, DELETE or UPDATE (of the key or the
//! vector column) touched to `X_log`. The log is deliberately not claimed
//! by xShadowName: SQLite makes shadow tables read-only to ordinary SQL in
//! DEFENSIVE mode, and the triggers run as ordinary SQL — also on
//! connections that never loaded pocketvec.

use sqlite3ext_sys as sys;

use crate::api::{self, quote_ident, SqlError, Step, Stmt};

/// On-disk format written by this version.
pub const FORMAT_VERSION: i64 = 1;

/// Suffixes xShadowName claims.
pub const SHADOW_SUFFIXES: &[&str] = &["info", "chunks", "map", "lists"];
/// Suffix of the change log (not a shadow table).
pub const LOG: &str = "log";
/// Trigger suffixes: after insert, delete, update.
pub const TRIGGERS: [&str; 3] = ["ai", "ad", "au"];

/// Names of one virtual table's objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub schema: String,
    pub vtab: String,
}

impl Names {
    pub fn new(schema: &str, vtab: &str) -> Names {
        Names {
            schema: schema.to_string(),
            vtab: vtab.to_string(),
        }
    }
    /// Unquoted name of an object: `X_suffix`.
    pub fn raw(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.vtab)
    }
    /// `"schema"."X_suffix"`.
    pub fn q(&self, suffix: &str) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(&self.raw(suffix))
        )
    }
    /// `"X_suffix"` (inside trigger bodies, which may not qualify names).
    pub fn local(&self, suffix: &str) -> String {
        quote_ident(&self.raw(suffix))
    }
    /// `"schema".sqlite_master`.
    pub fn master(&self) -> String {
        format!("{}.sqlite_master", quote_ident(&self.schema))
    }
}

/// DDL of the tables every index has (the log included).
pub fn create_tables_sql(n: &Names) -> String {
    format!(
        "CREATE TABLE {info}(key TEXT PRIMARY KEY, value);\n\
         CREATE TABLE {chunks}(id INTEGER PRIMARY KEY, data BLOB NOT NULL);\n\
         CREATE TABLE {map}(id INTEGER PRIMARY KEY, pos INTEGER NOT NULL);\n\
         CREATE TABLE {lists}(id INTEGER PRIMARY KEY, list INTEGER NOT NULL, data BLOB NOT NULL);\n\
         CREATE TABLE {log}(seq INTEGER PRIMARY KEY, id INTEGER);",
        info = n.q("info"),
        chunks = n.q("chunks"),
        map = n.q("map"),
        lists = n.q("lists"),
        log = n.q(LOG),
    )
}

/// DDL that creates whichever of those tables is missing (`'rebuild'`
/// after a shadow table was dropped by hand).
pub fn create_missing_tables_sql(n: &Names) -> String {
    create_tables_sql(n).replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ")
}

/// The triggers on `base` (unqualified: a trigger lives in its table's
/// schema). `key` is the INTEGER PRIMARY KEY column, `column` the vector.
pub fn create_triggers_sql(n: &Names, base: &str, key: &str, column: &str) -> String {
    let (b, k, c, log) = (
        quote_ident(base),
        quote_ident(key),
        quote_ident(column),
        n.local(LOG),
    );
    let same_column = key.eq_ignore_ascii_case(column);
    let cols = if same_column {
        k.clone()
    } else {
        format!("{k}, {c}")
    };
    format!(
        "CREATE TRIGGER {ai} AFTER INSERT ON {b} BEGIN INSERT INTO {log}(id) VALUES (new.{k}); END;\n\
         CREATE TRIGGER {ad} AFTER DELETE ON {b} BEGIN INSERT INTO {log}(id) VALUES (old.{k}); END;\n\
         CREATE TRIGGER {au} AFTER UPDATE OF {cols} ON {b} BEGIN \
           INSERT INTO {log}(id) VALUES (old.{k}); \
           INSERT INTO {log}(id) SELECT new.{k} WHERE new.{k} IS NOT old.{k}; END;",
        ai = n.q("ai"),
        ad = n.q("ad"),
        au = n.q("au"),
    )
}

/// DROP statements for the triggers (also what a user runs to detach an
/// index without the extension; see README.md (index section)).
pub fn drop_triggers_sql(n: &Names) -> String {
    TRIGGERS
        .iter()
        .map(|t| format!("DROP TRIGGER IF EXISTS {};", n.q(t)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// DROP statements for every table and trigger of an index.
pub fn drop_all_sql(n: &Names) -> String {
    let mut s = drop_triggers_sql(n);
    for t in SHADOW_SUFFIXES.iter().chain([&LOG]) {
        s.push_str(&format!("\nDROP TABLE IF EXISTS {};", n.q(t)));
    }
    s
}

/// Reads one `X_info` value as an integer.
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn info_i64(db: *mut sys::sqlite3, n: &Names, key: &str) -> Result<Option<i64>, String> {
    // SAFETY: caller guarantees db.
    let mut st = unsafe {
        Stmt::prepare(
            db,
            &format!("SELECT value FROM {} WHERE key = ?1", n.q("info")),
            false,
        )
    }?;
    st.bind_text(1, key)?;
    Ok(match st.step()? {
        Step::Row if st.column_type(0) != api::ValueType::Null => Some(st.column_i64(0)),
        _ => None,
    })
}

/// The statement that sets `X_info[key]`, with the key bound as ?1 and the
/// value left for ?2.
///
/// # Safety
/// `db` is an open connection.
unsafe fn info_setter(db: *mut sys::sqlite3, n: &Names, key: &str) -> Result<Stmt, SqlError> {
    let sql = format!(
        "INSERT OR REPLACE INTO {}(key, value) VALUES (?1, ?2)",
        n.q("info")
    );
    // SAFETY: caller guarantees db.
    let mut st = unsafe { Stmt::prepare(db, &sql, false) }?;
    st.bind_text(1, key)?;
    Ok(st)
}

/// Sets `X_info[key] = value` (an integer).
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn set_info_i64(
    db: *mut sys::sqlite3,
    n: &Names,
    key: &str,
    value: i64,
) -> Result<(), SqlError> {
    // SAFETY: caller guarantees db.
    let mut st = unsafe { info_setter(db, n, key) }?;
    st.bind_i64(2, value)?;
    st.run()
}

/// Sets `X_info[key] = value` (text).
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn set_info_text(
    db: *mut sys::sqlite3,
    n: &Names,
    key: &str,
    value: &str,
) -> Result<(), SqlError> {
    // SAFETY: caller guarantees db.
    let mut st = unsafe { info_setter(db, n, key) }?;
    st.bind_text(2, value)?;
    st.run()
}

/// Sets `X_info[key] = value` (a BLOB; empty = NULL).
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn set_info_blob(
    db: *mut sys::sqlite3,
    n: &Names,
    key: &str,
    value: &[u8],
) -> Result<(), SqlError> {
    // SAFETY: caller guarantees db.
    let mut st = unsafe { info_setter(db, n, key) }?;
    if value.is_empty() {
        st.bind_null(2)?;
    } else {
        st.bind_blob(2, value)?;
    }
    st.run()
}

/// Reads `X_info[key]` as text.
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn info_text(
    db: *mut sys::sqlite3,
    n: &Names,
    key: &str,
) -> Result<Option<String>, String> {
    // SAFETY: caller guarantees db.
    let mut st = unsafe {
        Stmt::prepare(
            db,
            &format!("SELECT value FROM {} WHERE key = ?1", n.q("info")),
            false,
        )
    }?;
    st.bind_text(1, key)?;
    Ok(match st.step()? {
        Step::Row if st.column_type(0) == api::ValueType::Text => Some(st.column_text(0)),
        _ => None,
    })
}

/// Reads `X_info[key]` as a BLOB.
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn info_blob(
    db: *mut sys::sqlite3,
    n: &Names,
    key: &str,
) -> Result<Option<Vec<u8>>, String> {
    // SAFETY: caller guarantees db.
    let mut st = unsafe {
        Stmt::prepare(
            db,
            &format!("SELECT value FROM {} WHERE key = ?1", n.q("info")),
            false,
        )
    }?;
    st.bind_text(1, key)?;
    Ok(match st.step()? {
        Step::Row if st.column_type(0) == api::ValueType::Blob => Some(st.column_blob(0).to_vec()),
        _ => None,
    })
}

/// A fresh generation token, different from `old`.
pub fn new_token(old: i64) -> i64 {
    loop {
        let t = api::random_i64();
        if t != old && t != 0 {
            return t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted() {
        let n = Names::new("main", "a\"b");
        assert_eq!(n.q("info"), "\"main\".\"a\"\"b_info\"");
        assert_eq!(n.local("log"), "\"a\"\"b_log\"");
        let t = create_triggers_sql(&n, "do\"cs", "id", "vec");
        assert!(t.contains("AFTER INSERT ON \"do\"\"cs\""), "{t}");
        assert!(t.contains("UPDATE OF \"id\", \"vec\""), "{t}");
        let d = drop_all_sql(&n);
        assert!(
            d.contains("DROP TABLE IF EXISTS \"main\".\"a\"\"b_log\";"),
            "{d}"
        );
        assert!(
            d.contains("DROP TRIGGER IF EXISTS \"main\".\"a\"\"b_au\";"),
            "{d}"
        );
    }
}
