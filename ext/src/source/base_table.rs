//! The exact scan over the base table: `SELECT rowid, "col" FROM
//! "schema"."base"` through the connection, every identifier quoted.
//!
//! Rows are copied out of SQLite's page buffers (which have any alignment)
//! into an aligned batch, and each full batch is scored with one call of the
//! kernels' one-to-many `distances_*` (so per-call work such as the query
//! norm is paid once per batch, not per row). NULL vectors are skipped; any
//! other non-BLOB value or a BLOB of the wrong size stops the query with an
//! error naming the rowid.
//!
//! `rowid IN (...)` sets are read with point lookups when they are small
//! compared with the rowid span they cover, and by a range scan with a
//! membership test otherwise.

use kernels::{f16, Kernels, Metric};
use sqlite3ext_sys as sys;

use super::{Collector, RowidFilter, Search, VectorSource};
use crate::api::{quote_ident, Step, Stmt, ValueType};
use crate::vector::{ElemType, Vector};

/// Bytes of vector data scored per kernel call.
const BATCH_BYTES: usize = 64 * 1024;

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

    fn scan(&mut self, search: &Search<'_>, out: &mut Collector) -> Result<(), String> {
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
        scorer.flush(out)
    }
}

/// Aligned batch of rows waiting to be scored.
enum Batch {
    F32 { q: Vec<f32>, rows: Vec<f32> },
    F16 { q: Vec<f16>, rows: Vec<f16> },
    I8 { q: Vec<i8>, rows: Vec<i8> },
}

struct Scorer {
    k: Kernels,
    metric: Metric,
    dim: usize,
    cap: usize,
    batch: Batch,
    ids: Vec<i64>,
    dists: Vec<f32>,
}

impl Scorer {
    fn new(query: &Vector, metric: Metric, dim: usize) -> Result<Scorer, String> {
        if query.dim() != dim {
            return Err(format!(
                "pocketvec internal error: query has {} dimensions, table {dim}",
                query.dim()
            ));
        }
        let cap = (BATCH_BYTES / (dim * query.elem_type().size())).max(1);
        let batch = match query {
            Vector::F32(q) => Batch::F32 {
                q: q.clone(),
                rows: Vec::with_capacity(cap * dim),
            },
            Vector::F16(q) => Batch::F16 {
                q: q.clone(),
                rows: Vec::with_capacity(cap * dim),
            },
            Vector::I8(q) => Batch::I8 {
                q: q.clone(),
                rows: Vec::with_capacity(cap * dim),
            },
        };
        Ok(Scorer {
            k: Kernels::detect(),
            metric,
            dim,
            cap,
            batch,
            ids: Vec::with_capacity(cap),
            dists: vec![0.0; cap],
        })
    }

    /// Queues one row (`bytes.len() == dim * elem size`, checked by caller).
    #[inline]
    fn add(&mut self, id: i64, bytes: &[u8], out: &mut Collector) -> Result<(), String> {
        match &mut self.batch {
            Batch::F32 { rows, .. } => {
                let n = rows.len();
                rows.resize(n + self.dim, 0.0);
                le_copy_f32(&mut rows[n..], bytes);
            }
            Batch::F16 { rows, .. } => {
                let n = rows.len();
                rows.resize(n + self.dim, f16::ZERO);
                le_copy_f16(&mut rows[n..], bytes);
            }
            Batch::I8 { rows, .. } => rows.extend(bytes.iter().map(|&b| b as i8)),
        }
        self.ids.push(id);
        if self.ids.len() == self.cap {
            self.flush(out)?;
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut Collector) -> Result<(), String> {
        let n = self.ids.len();
        if n == 0 {
            return Ok(());
        }
        let d = &mut self.dists[..n];
        let r = match &mut self.batch {
            Batch::F32 { q, rows } => {
                let r = self.k.distances_f32(self.metric, q, rows, None, d);
                rows.clear();
                r
            }
            Batch::F16 { q, rows } => {
                let r = self.k.distances_f16(self.metric, q, rows, None, d);
                rows.clear();
                r
            }
            Batch::I8 { q, rows } => {
                let r = self.k.distances_i8(self.metric, q, rows, None, d);
                rows.clear();
                r
            }
        };
        r.map_err(|e| format!("pocketvec internal error: {e}"))?;
        for (&id, &dist) in self.ids.iter().zip(d.iter()) {
            out.push(id, dist);
        }
        self.ids.clear();
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
