//! The exact scan over the base table: `SELECT rowid, "col" FROM
//! "schema"."base"` through the connection, every identifier quoted.
//!
//! Each row is scored where `sqlite3_column_blob` left it: SQLite copies an
//! in-page BLOB into the value's own heap buffer (8-byte aligned), so the
//! kernels read it in place. A misaligned buffer (possible in principle) is
//! copied into an aligned scratch row first; both paths run the same
//! one-pair kernel, so a row's distance never depends on where it sat.
//! (Batching rows for the one-to-many kernels would need that copy for
//! every row; measured, the copy costs more than it saves.) NULL vectors
//! are skipped; any other non-BLOB value or a BLOB of the wrong size stops the query with an
//! error naming the rowid.
//!
//! `rowid IN (...)` sets are read with point lookups when they are small
//! compared with the rowid span they cover, and by a range scan with a
//! membership test otherwise.

use kernels::{f16, Kernels, Metric};
use sqlite3ext_sys as sys;

use super::{Collector, Request, RowidFilter, Search, VectorSource};
use crate::api::{quote_ident, Step, Stmt, ValueType};
use crate::vector::{ElemType, Vector};

/// Receives `(rowid, vector bytes or None)` from [`BaseTable::fetch`].
pub type RowFn<'a> = dyn FnMut(i64, Option<&[u8]>) -> Result<(), String> + 'a;
/// Receives `(rowid, vector bytes, None, or the error naming a bad row)`.
pub type LenientFn<'a> = dyn FnMut(i64, Result<Option<&[u8]>, String>) -> Result<(), String> + 'a;
/// Receives `(rowid, vector bytes)` from [`BaseTable::for_each`].
pub type EachFn<'a> = dyn FnMut(i64, &[u8]) -> Result<(), String> + 'a;

/// Statements and names resolved on first use.
struct Prepared {
    scan: Option<Stmt>,
    point: Option<Stmt>,
    scan_sql: String,
    point_sql: String,
}

pub struct BaseTable {
    db: *mut sys::sqlite3,
    /// The virtual table's name, for messages.
    vtab: String,
    schema: String,
    table: String,
    column: String,
    elem: ElemType,
    dim: usize,
    prepared: Option<Prepared>,
}

/// Checks that `schema.table` exists with `column` and rowids; returns the
/// name that reaches the rowid (`rowid`, or `_rowid_`/`oid` when a real
/// column is called `rowid`).
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn inspect(
    db: *mut sys::sqlite3,
    schema: &str,
    table: &str,
    column: &str,
) -> Result<String, String> {
    // SAFETY: caller guarantees db.
    let mut st = unsafe {
        Stmt::prepare(
            db,
            "SELECT name, type, pk FROM pragma_table_info(?1, ?2)",
            false,
        )?
    };
    st.bind_text(1, table)?;
    st.bind_text(2, schema)?;
    let mut cols: Vec<(String, String, i64)> = Vec::new();
    while st.step()? == Step::Row {
        cols.push((st.column_text(0), st.column_text(1), st.column_i64(2)));
    }
    if cols.is_empty() {
        return Err(format!(
            "pocketvec: base table {} does not exist in schema {}",
            quote_ident(table),
            quote_ident(schema)
        ));
    }
    if !cols.iter().any(|c| c.0.eq_ignore_ascii_case(column)) {
        let names: Vec<String> = cols.iter().map(|c| quote_ident(&c.0)).collect();
        return Err(format!(
            "pocketvec: base table {} has no column {} (its columns: {})",
            quote_ident(table),
            quote_ident(column),
            names.join(", ")
        ));
    }
    let n_pk = cols.iter().filter(|c| c.2 > 0).count();
    let rowid = ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|name| match cols.iter().find(|c| c.0.eq_ignore_ascii_case(name)) {
            None => true,
            Some(c) => n_pk == 1 && c.2 == 1 && c.1.eq_ignore_ascii_case("INTEGER"),
        })
        .ok_or_else(|| {
            format!(
                "pocketvec: base table {} has real columns named rowid, _rowid_ and oid, so its rowid cannot be read",
                quote_ident(table)
            )
        })?;
    let sql = scan_sql(rowid, schema, table, column);
    // SAFETY: caller guarantees db.
    unsafe { Stmt::prepare(db, &sql, false) }.map_err(|e| {
        format!(
            "pocketvec: cannot read rowids and {} from base table {} ({e}); \
             WITHOUT ROWID tables and views are not supported",
            quote_ident(column),
            quote_ident(table)
        )
    })?;
    Ok(rowid.to_string())
}

/// The base table's INTEGER PRIMARY KEY column (a rowid alias), which an
/// index needs: VACUUM may renumber implicit rowids, and the index would
/// silently point at the wrong rows.
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn integer_key(
    db: *mut sys::sqlite3,
    schema: &str,
    table: &str,
) -> Result<String, String> {
    // SAFETY: caller guarantees db.
    let mut st = unsafe {
        Stmt::prepare(
            db,
            "SELECT name, type, pk FROM pragma_table_info(?1, ?2) WHERE pk > 0",
            false,
        )?
    };
    st.bind_text(1, table)?;
    st.bind_text(2, schema)?;
    let mut pk = Vec::new();
    while st.step()? == Step::Row {
        pk.push((st.column_text(0), st.column_text(1)));
    }
    // `INTEGER PRIMARY KEY DESC` and WITHOUT ROWID keys are real indexes,
    // not rowid aliases: SQLite then lists an index of origin 'pk'.
    // SAFETY: caller guarantees db.
    let mut st = unsafe {
        Stmt::prepare(
            db,
            "SELECT count(*) FROM pragma_index_list(?1, ?2) WHERE origin = 'pk'",
            false,
        )?
    };
    st.bind_text(1, table)?;
    st.bind_text(2, schema)?;
    st.step()?;
    let pk_index = st.column_i64(0) > 0;
    match pk.as_slice() {
        [(name, ty)] if ty.eq_ignore_ascii_case("INTEGER") && !pk_index => Ok(name.clone()),
        _ => Err(format!(
            "pocketvec: base table {} needs an INTEGER PRIMARY KEY column for an index \
             (implicit rowids may change on VACUUM); declare one, e.g. id INTEGER PRIMARY KEY, \
             or create the table with index=none to scan the base table without an index",
            quote_ident(table)
        )),
    }
}

fn scan_sql(rowid: &str, schema: &str, table: &str, column: &str) -> String {
    format!(
        "SELECT {rowid}, {} FROM {}.{} WHERE {rowid} BETWEEN ?1 AND ?2",
        quote_ident(column),
        quote_ident(schema),
        quote_ident(table)
    )
}

impl BaseTable {
    pub fn new(
        db: *mut sys::sqlite3,
        vtab: &str,
        schema: &str,
        table: &str,
        column: &str,
        elem: ElemType,
        dim: usize,
    ) -> BaseTable {
        BaseTable {
            db,
            vtab: vtab.to_string(),
            schema: schema.to_string(),
            table: table.to_string(),
            column: column.to_string(),
            elem,
            dim,
            prepared: None,
        }
    }

    fn prepared(&mut self) -> Result<&mut Prepared, String> {
        if self.prepared.is_none() {
            // SAFETY: db is the connection owning this virtual table.
            let rowid = unsafe { inspect(self.db, &self.schema, &self.table, &self.column) }
                .map_err(|e| format!("{e} (virtual table {})", quote_ident(&self.vtab)))?;
            self.prepared = Some(Prepared {
                scan: None,
                point: None,
                scan_sql: scan_sql(&rowid, &self.schema, &self.table, &self.column),
                point_sql: format!(
                    "SELECT {rowid}, {} FROM {}.{} WHERE {rowid} = ?1",
                    quote_ident(&self.column),
                    quote_ident(&self.schema),
                    quote_ident(&self.table)
                ),
            });
        }
        Ok(self.prepared.as_mut().expect("just set"))
    }

    /// Takes a cached statement (or prepares one). Taking it out means a
    /// re-entrant scan of the same table prepares its own.
    fn take_stmt(&mut self, point: bool) -> Result<Stmt, String> {
        let db = self.db;
        let p = self.prepared()?;
        let (slot, sql) = if point {
            (&mut p.point, &p.point_sql)
        } else {
            (&mut p.scan, &p.scan_sql)
        };
        match slot.take() {
            Some(s) => Ok(s),
            // SAFETY: db outlives the table (statements are dropped in xDisconnect).
            None => unsafe { Stmt::prepare(db, sql, true) },
        }
    }

    fn put_stmt(&mut self, point: bool, mut st: Stmt) {
        st.reset();
        if let Some(p) = self.prepared.as_mut() {
            let slot = if point { &mut p.point } else { &mut p.scan };
            if slot.is_none() {
                *slot = Some(st);
            }
        }
    }

    /// Follows a rename of the virtual table (for messages).
    pub fn set_vtab(&mut self, vtab: &str) {
        self.vtab = vtab.to_string();
    }
    /// The base table's current name.
    pub fn table(&self) -> &str {
        &self.table
    }
    /// Follows a rename of the base table (statements are prepared anew).
    pub fn set_table(&mut self, table: &str) {
        if self.table != table {
            self.table = table.to_string();
            self.prepared = None;
        }
    }
    /// Checks the base table now (and prepares its statements).
    pub fn check(&mut self) -> Result<(), String> {
        self.prepared().map(|_| ())
    }
    /// Forgets prepared statements (after a schema change).
    pub fn reset(&mut self) {
        self.prepared = None;
    }
    /// Row bytes of a valid row, `None` for NULL; other values fail.
    fn row_of<'s>(&self, st: &'s Stmt, id: i64) -> Result<Option<&'s [u8]>, String> {
        match st.column_type(1) {
            ValueType::Null => return Ok(None),
            ValueType::Blob => {}
            t => return Err(self.bad_row(id, t.describe())),
        }
        let b = st.column_blob(1);
        if b.len() != self.dim * self.elem.size() {
            return Err(self.bad_row(id, &format!("a BLOB of {} bytes", b.len())));
        }
        Ok(Some(b))
    }
    /// Calls `f(id, vector)` for each of `ids` (any order): `None` when the
    /// row does not exist or its vector is NULL.
    pub fn fetch(&mut self, ids: &[i64], f: &mut RowFn<'_>) -> Result<(), String> {
        self.fetch_lenient(ids, &mut |id, row| f(id, row?))
    }
    /// [`fetch`](Self::fetch), handing a row whose value is not a vector of
    /// the right size to `f` as an `Err` instead of failing.
    pub fn fetch_lenient(&mut self, ids: &[i64], f: &mut LenientFn<'_>) -> Result<(), String> {
        let mut st = self.take_stmt(true)?;
        let r = (|| {
            for &id in ids {
                st.bind_i64(1, id)?;
                match st.step()? {
                    Step::Row => {
                        let row = self.row_of(&st, id);
                        f(id, row)?;
                    }
                    Step::Done => f(id, Ok(None))?,
                }
                st.reset();
            }
            Ok(())
        })();
        self.put_stmt(true, st);
        r
    }
    /// Calls `f(id, vector)` for every row with a non-NULL vector, in
    /// rowid order.
    pub fn for_each(&mut self, f: &mut EachFn<'_>) -> Result<(), String> {
        let mut st = self.take_stmt(false)?;
        let r = (|| {
            st.bind_i64(1, i64::MIN)?;
            st.bind_i64(2, i64::MAX)?;
            while st.step()? == Step::Row {
                let id = st.column_i64(0);
                if let Some(row) = self.row_of(&st, id)? {
                    f(id, row)?;
                }
            }
            Ok(())
        })();
        self.put_stmt(false, st);
        r
    }
    /// Whether row `id` exists (a point lookup).
    pub fn exists(&mut self, id: i64) -> Result<bool, String> {
        // A row whose vector is now NULL is not a result either.
        let mut found = false;
        self.fetch(&[id], &mut |_, v| {
            found = v.is_some();
            Ok(())
        })?;
        Ok(found)
    }

    fn bad_row(&self, id: i64, found: &str) -> String {
        format!(
            "pocketvec: row {id} of {}.{} holds {found}; virtual table {} expects a BLOB of {} bytes ({} {} values) \
             or NULL",
            quote_ident(&self.table),
            quote_ident(&self.column),
            quote_ident(&self.vtab),
            self.dim * self.elem.size(),
            self.dim,
            self.elem.name()
        )
    }

    /// Steps `st` to the end, feeding rows that pass `keep` into `scorer`.
    fn drain(
        &self,
        st: &mut Stmt,
        scorer: &mut Scorer,
        out: &mut Collector,
        keep: impl Fn(i64) -> bool,
    ) -> Result<(), String> {
        let row_bytes = self.dim * self.elem.size();
        while st.step()? == Step::Row {
            let id = st.column_i64(0);
            if !keep(id) {
                continue;
            }
            match st.column_type(1) {
                ValueType::Null => continue,
                ValueType::Blob => {}
                t => return Err(self.bad_row(id, t.describe())),
            }
            let b = st.column_blob(1);
            if b.len() != row_bytes {
                return Err(self.bad_row(id, &format!("a BLOB of {} bytes", b.len())));
            }
            scorer.add(id, b, out)?;
        }
        Ok(())
    }

    fn scan_range(
        &mut self,
        lo: i64,
        hi: i64,
        set: Option<&[i64]>,
        scorer: &mut Scorer,
        out: &mut Collector,
    ) -> Result<(), String> {
        let mut st = self.take_stmt(false)?;
        let r = (|| {
            st.bind_i64(1, lo)?;
            st.bind_i64(2, hi)?;
            match set {
                None => self.drain(&mut st, scorer, out, |_| true),
                Some(s) => self.drain(&mut st, scorer, out, |id| s.binary_search(&id).is_ok()),
            }
        })();
        self.put_stmt(false, st);
        r
    }

    fn lookup(
        &mut self,
        ids: &[i64],
        scorer: &mut Scorer,
        out: &mut Collector,
    ) -> Result<(), String> {
        let mut st = self.take_stmt(true)?;
        let r = (|| {
            for &id in ids {
                st.bind_i64(1, id)?;
                self.drain(&mut st, scorer, out, |_| true)?;
                st.reset();
            }
            Ok(())
        })();
        self.put_stmt(true, st);
        r
    }
}

impl VectorSource for BaseTable {
    fn layout(&self) -> (ElemType, usize) {
        (self.elem, self.dim)
    }

    fn search(&mut self, req: &Request<'_>) -> Result<Vec<Vec<(i64, f32)>>, String> {
        self.prepared()?;
        let mut all = Vec::with_capacity(req.queries.len());
        for q in req.queries {
            if req.n == Some(0) || req.dist.never() || req.rowids.is_empty() {
                all.push(Vec::new());
                continue;
            }
            let mut out = Collector::new(req.n, req.dist.clone());
            let search = Search {
                query: q,
                metric: req.metric,
                rowids: req.rowids,
            };
            self.scan(&search, &mut out)?;
            all.push(out.into_sorted_vec());
        }
        Ok(all)
    }
}

impl BaseTable {
    /// Scores every row that passes `search.rowids` into `out`.
    pub fn scan(&mut self, search: &Search<'_>, out: &mut Collector) -> Result<(), String> {
        let f: &RowidFilter = search.rowids;
        // Resolve names first so a missing base table is reported even
        // when the filters leave nothing to read.
        self.prepared()?;
        if f.is_empty() {
            return Ok(());
        }
        let mut scorer = Scorer::new(search.query, search.metric, self.dim)?;
        match f.set.as_deref() {
            None => self.scan_range(f.lo, f.hi, None, &mut scorer, out)?,
            Some(ids) => {
                let (lo, hi) = (ids[0], ids[ids.len() - 1]);
                let span = (i128::from(hi) - i128::from(lo) + 1) as f64;
                if (ids.len() as f64) * 4.0 <= span {
                    self.lookup(ids, &mut scorer, out)?;
                } else {
                    self.scan_range(lo, hi, Some(ids), &mut scorer, out)?;
                }
            }
        }
        Ok(())
    }
}

/// The query in the table's type, plus an aligned scratch row.
enum Query {
    F32 { q: Vec<f32>, scratch: Vec<f32> },
    F16 { q: Vec<f16>, scratch: Vec<f16> },
    I8 { q: Vec<i8> },
}

struct Scorer {
    k: Kernels,
    metric: Metric,
    query: Query,
}

impl Scorer {
    fn new(query: &Vector, metric: Metric, dim: usize) -> Result<Scorer, String> {
        if query.dim() != dim {
            return Err(format!(
                "pocketvec internal error: query has {} dimensions, table {dim}",
                query.dim()
            ));
        }
        let query = match query {
            Vector::F32(q) => Query::F32 {
                q: q.clone(),
                scratch: vec![0.0; dim],
            },
            Vector::F16(q) => Query::F16 {
                q: q.clone(),
                scratch: vec![f16::ZERO; dim],
            },
            Vector::I8(q) => Query::I8 { q: q.clone() },
        };
        Ok(Scorer {
            k: Kernels::detect(),
            metric,
            query,
        })
    }

    /// Scores one row (`bytes.len() == dim * elem size`, checked by caller).
    #[inline]
    fn add(&mut self, id: i64, bytes: &[u8], out: &mut Collector) -> Result<(), String> {
        let (k, m) = (self.k, self.metric);
        let d = match &mut self.query {
            Query::F32 { q, scratch } => {
                let row: &[f32] = match bytemuck::try_cast_slice(bytes) {
                    Ok(r) if cfg!(target_endian = "little") => r,
                    _ => {
                        le_copy_f32(scratch, bytes);
                        scratch
                    }
                };
                match m {
                    Metric::Cosine => k.cosine_distance_f32(q, row),
                    Metric::L2 => k.l2_f32(q, row),
                    Metric::Dot => k.dot_f32(q, row).map(|x| -x),
                }
            }
            Query::F16 { q, scratch } => {
                let row: &[f16] = match bytemuck::try_cast_slice(bytes) {
                    Ok(r) if cfg!(target_endian = "little") => r,
                    _ => {
                        le_copy_f16(scratch, bytes);
                        scratch
                    }
                };
                match m {
                    Metric::Cosine => k.cosine_distance_f16(q, row),
                    Metric::L2 => k.l2_f16(q, row),
                    Metric::Dot => k.dot_f16(q, row).map(|x| -x),
                }
            }
            Query::I8 { q } => {
                let row = kernels::bytes::i8_from_bytes(bytes);
                match m {
                    Metric::Cosine => k.cosine_distance_i8(q, row),
                    Metric::L2 => k.l2_i8(q, row),
                    Metric::Dot => k.dot_i8(q, row).map(|x| -(x as f32)),
                }
            }
        };
        out.push(id, d.map_err(|e| format!("pocketvec internal error: {e}"))?);
        Ok(())
    }
}

#[inline]
fn le_copy_f32(dst: &mut [f32], src: &[u8]) {
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice_mut::<f32, u8>(dst).copy_from_slice(src);
    } else {
        for (x, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
            *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
    }
}

#[inline]
fn le_copy_f16(dst: &mut [f16], src: &[u8]) {
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice_mut::<f16, u8>(dst).copy_from_slice(src);
    } else {
        for (x, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
            *x = f16::from_le_bytes([c[0], c[1]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::DistanceFilter;

    /// The same row scored from an aligned and a misaligned buffer gives
    /// bit-identical distances, for every type and metric.
    #[test]
    fn alignment_does_not_change_distances() {
        let dim = 19;
        let vals: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.11).cos()).collect();
        for metric in [Metric::Cosine, Metric::L2, Metric::Dot] {
            for elem in [ElemType::F32, ElemType::F16, ElemType::Int8] {
                let row = Vector::F32(vals.clone()).convert(elem).unwrap().to_bytes();
                let query = Vector::F32(q.clone()).convert(elem).unwrap();
                let mut buf = vec![0u8; row.len() + 8];
                let mut dists = Vec::new();
                for offset in 0..4 {
                    buf[offset..offset + row.len()].copy_from_slice(&row);
                    let mut s = Scorer::new(&query, metric, dim).unwrap();
                    let mut out = Collector::new(None, DistanceFilter::default());
                    s.add(1, &buf[offset..offset + row.len()], &mut out)
                        .unwrap();
                    dists.push(out.into_sorted_vec()[0].1.to_bits());
                }
                assert!(
                    dists.windows(2).all(|w| w[0] == w[1]),
                    "{metric:?} {elem:?}: {dists:?}"
                );
            }
        }
    }
}
