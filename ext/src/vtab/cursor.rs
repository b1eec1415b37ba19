//! xFilter: turn a [`Plan`] and its arguments into a search, run it, and
//! hold the rows (nearest first) for xNext/xColumn.

use std::ffi::c_int;

use sqlite3ext_sys as sys;

use super::plan::{
    Arg, CmpOp, Plan, COL_COMMAND, COL_DISTANCE, COL_K, COL_NPROBE, COL_QUERIES, COL_QUERY,
    COL_QUERY_INDEX, COL_THREADS,
};
use super::{table_label, Table};
use crate::api::{self, call, Ctx, OwnedValue, Value, ValueType};
use crate::functions::read_input;
use crate::source::{DistanceFilter, Num, Request, Rhs, RowidFilter};
use crate::vector::{ElemType, Input, OwnedInput, Vector};

/// Value of the hidden `query` column of result rows.
enum QueryColumn {
    /// A copy of the `query = ?` argument (so SQLite's own re-check of the
    /// constraint, if it makes one, sees the same value).
    Arg(OwnedValue),
    /// The connection's `pocketvec_set_q` vector.
    SetQ(OwnedInput),
}

#[derive(Default)]
pub struct Cursor {
    /// (rowid, distance, query index), in output order.
    rows: Vec<(i64, f32, u32)>,
    pos: usize,
    query: Option<QueryColumn>,
    queries: Option<OwnedValue>,
    k: Option<i64>,
    nprobe: Option<i64>,
    threads: Option<i64>,
    /// The JSON of an `ann = 'info'` query.
    info: Option<String>,
}

impl Cursor {
    pub fn next(&mut self) {
        self.pos += 1;
    }
    pub fn eof(&self) -> bool {
        self.pos >= self.rows.len()
    }
    pub fn rowid(&self) -> i64 {
        self.rows.get(self.pos).map_or(0, |r| r.0)
    }
    pub fn column(&self, c: Ctx, i: c_int) {
        let int = |v: Option<i64>| match v {
            Some(x) => c.result_i64(x),
            None => c.result_null(),
        };
        match i {
            COL_DISTANCE => match self.rows.get(self.pos) {
                // NaN (e.g. from NaN stored data) becomes NULL in SQLite.
                Some(&(_, d, _)) => c.result_f64(f64::from(d)),
                None => c.result_null(),
            },
            COL_QUERY => match &self.query {
                // SAFETY: an owned copy from sqlite3_value_dup.
                Some(QueryColumn::Arg(v)) => unsafe { c.result_value(v.raw()) },
                Some(QueryColumn::SetQ(OwnedInput::Blob { bytes, .. })) => c.result_blob(bytes),
                Some(QueryColumn::SetQ(OwnedInput::Json(s))) => c.result_text(s),
                None => c.result_null(),
            },
            COL_K => int(self.k),
            COL_NPROBE => int(self.nprobe),
            COL_THREADS => int(self.threads),
            COL_QUERIES => match &self.queries {
                // SAFETY: an owned copy from sqlite3_value_dup.
                Some(v) => unsafe { c.result_value(v.raw()) },
                None => c.result_null(),
            },
            COL_QUERY_INDEX => match self.rows.get(self.pos) {
                Some(&(_, _, q)) => c.result_i64(i64::from(q)),
                None => c.result_null(),
            },
            COL_COMMAND => match &self.info {
                Some(j) => c.result_text(j),
                None => c.result_null(),
            },
            _ => c.result_null(),
        }
    }

    /// Runs the plan. On error the cursor is left empty.
    pub fn filter(&mut self, t: &mut Table, plan: &Plan, args: &[Value<'_>]) -> Result<(), String> {
        *self = Cursor::default();
        let Plan::ExactKnn { args: roles } = plan;
        if roles.len() != args.len() {
            return Err(format!(
                "pocketvec internal error: plan has {} arguments, xFilter got {}",
                roles.len(),
                args.len()
            ));
        }
        if roles.first() == Some(&Arg::Command) {
            let what = String::from_utf8_lossy(args[0].text()).to_ascii_lowercase();
            if what != "info" {
                return Err(format!(
                    "pocketvec: {}: WHERE {} = 'info' is the only query on the command column",
                    table_label(&t.name),
                    crate::api::quote_ident(&t.name)
                ));
            }
            self.info = Some(t.info()?);
            self.rows.push((0, 0.0, 0));
            return Ok(());
        }
        let label = table_label(&t.name);
        let mut query_arg: Option<Value<'_>> = None;
        let mut batch_arg: Option<Value<'_>> = None;
        let mut k: Option<i64> = None;
        let mut limit: Option<i64> = None;
        let mut offset: i64 = 0;
        let mut rowids = RowidFilter::default();
        let mut dist = DistanceFilter::default();
        for (&role, &v) in roles.iter().zip(args) {
            match role {
                Arg::Query => query_arg = Some(v),
                Arg::Queries => batch_arg = Some(v),
                Arg::K => {
                    k = Some(parse_k(v).map_err(|e| format!("pocketvec: k for {label} {e}"))?)
                }
                Arg::Nprobe => {
                    self.nprobe = Some(
                        parse_k(v).map_err(|e| format!("pocketvec: nprobe for {label} {e}"))?,
                    )
                }
                Arg::Threads => {
                    self.threads = Some(match v.value_type() {
                        ValueType::Integer if (0..=256).contains(&v.int64()) => v.int64(),
                        _ => {
                            return Err(format!(
                                "pocketvec: threads for {label} must be an integer from 0 (all cores) to 256, found {}",
                                v.describe()
                            ))
                        }
                    })
                }
                Arg::Limit => limit = integer_of(v).filter(|&l| l >= 0),
                Arg::Offset => offset = integer_of(v).unwrap_or(0).max(0),
                Arg::RowidIn => rowids.restrict_to(in_rowids(v)?),
                Arg::RowidEq => rowids.restrict_to(rowid_of(v)),
                Arg::Rowid(op) => apply_rowid_bound(&mut rowids, op, v),
                Arg::Distance(op) => dist.add(op, rhs_of(v)),
                Arg::Command => {
                    return Err(format!(
                        "pocketvec internal error: a command argument in a search plan of {label}"
                    ))
                }
            }
        }
        rowids.finish();

        let (elem, dim) = t.source().layout();
        let queries: Vec<Vector> = match (query_arg, batch_arg) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "pocketvec: {label}: give either query = ? or queries = ?, not both"
                ))
            }
            (None, Some(v)) => {
                let qs = decode_batch(v, elem, dim)
                    .map_err(|e| format!("pocketvec: queries for {label}: {e}"))?;
                self.queries = OwnedValue::dup(v);
                qs
            }
            (Some(v), None) => {
                let input = match v.value_type() {
                    ValueType::Null => Err("expected a vector, found NULL".to_string()),
                    _ => read_input(v, 1).map_err(|e| e.replacen("argument 1: ", "", 1)),
                };
                let q = input
                    .and_then(|i| i.decode_for_table(elem, dim))
                    .map_err(|e| format!("pocketvec: query vector for {label}: {e}"))?;
                self.query = OwnedValue::dup(v).map(QueryColumn::Arg);
                vec![q]
            }
            (None, None) => {
                let Some(stored) = t.conn.query() else {
                    return Err(format!(
                        "pocketvec: {label} has no query vector: add WHERE query = ? \
                         or call SELECT pocketvec_set_q(?) on this connection first"
                    ));
                };
                let q = stored.as_input().decode_for_table(elem, dim).map_err(|e| {
                    format!("pocketvec: the pocketvec_set_q vector cannot query {label}: {e}")
                })?;
                self.query = Some(QueryColumn::SetQ(stored));
                vec![q]
            }
        };
        self.k = k;

        let cap = limit.map(|l| l.saturating_add(offset));
        let n = match (k, cap) {
            (Some(k), Some(c)) => Some(k.min(c)),
            (k, c) => k.or(c),
        };
        let n = n.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let req = Request {
            queries: &queries,
            metric: t.opts.metric,
            rowids: &rowids,
            dist: &dist,
            n,
            nprobe: self.nprobe.map(|x| x as usize),
            threads: self.threads.map_or(t.opts.threads, |x| x as usize),
        };
        let results = t.source_mut().search(&req)?;
        for (qi, rows) in results.into_iter().enumerate() {
            self.rows
                .extend(rows.into_iter().map(|(id, d)| (id, d, qi as u32)));
        }
        Ok(())
    }
}

/// Several query vectors: a BLOB of concatenated vectors in the table's
/// type (or the type its subtype names), or a JSON array of vectors.
fn decode_batch(v: Value<'_>, elem: ElemType, dim: usize) -> Result<Vec<Vector>, String> {
    let input = match v.value_type() {
        ValueType::Null => return Err("expected vectors, found NULL".into()),
        _ => read_input(v, 1).map_err(|e| e.replacen("argument 1: ", "", 1))?,
    };
    match input {
        Input::Blob { bytes, tag } => {
            let t = tag.unwrap_or(elem);
            let one = dim * t.size();
            if bytes.is_empty() || bytes.len() % one != 0 {
                return Err(format!(
                    "expected a BLOB of whole {dim}-dimension {} vectors ({one} bytes each), found {} bytes",
                    t.name(),
                    bytes.len()
                ));
            }
            bytes
                .chunks_exact(one)
                .map(|b| Vector::from_blob(t, b).and_then(|v| v.convert(elem)))
                .collect()
        }
        Input::Json(text) => {
            let all: Vec<serde_json::Value> = serde_json::from_str(text)
                .map_err(|e| format!("expected a JSON array of vectors: {e}"))?;
            if all.is_empty() {
                return Err("expected a JSON array of vectors, found an empty array".into());
            }
            all.iter()
                .enumerate()
                .map(|(i, one)| {
                    Input::Json(&one.to_string())
                        .decode_for_table(elem, dim)
                        .map_err(|e| format!("vector {i}: {e}"))
                })
                .collect()
        }
    }
}

fn parse_k(v: Value<'_>) -> Result<i64, String> {
    match v.value_type() {
        ValueType::Integer if v.int64() >= 1 => Ok(v.int64()),
        _ => Err(format!(
            "must be a positive integer, found {}",
            v.describe()
        )),
    }
}

/// LIMIT/OFFSET values: integers, or text/real SQLite would accept.
fn integer_of(v: Value<'_>) -> Option<i64> {
    match v.value_type() {
        ValueType::Integer => Some(v.int64()),
        ValueType::Float | ValueType::Text => match v.numeric_type() {
            ValueType::Integer => Some(v.int64()),
            ValueType::Float => Some(v.double() as i64),
            _ => None,
        },
        _ => None,
    }
}

/// The rowid a value equals under the rowid's INTEGER affinity, if any.
fn rowid_of(v: Value<'_>) -> Option<i64> {
    let t = match v.value_type() {
        ValueType::Text => v.numeric_type(),
        t => t,
    };
    match t {
        ValueType::Integer => Some(v.int64()),
        ValueType::Float => {
            let x = v.double();
            (x.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&x))
                .then_some(x as i64)
        }
        _ => None,
    }
}

/// The rowids of an `IN (...)` handled all at once. Each value is only
/// valid until the next `sqlite3_vtab_in_next`, so it is converted at once.
fn in_rowids(list: Value<'_>) -> Result<Vec<i64>, String> {
    if !api::api().has(api::V3_38) {
        return Err("pocketvec internal error: IN handling needs SQLite 3.38".into());
    }
    let mut out = Vec::new();
    let mut p: *mut sys::sqlite3_value = std::ptr::null_mut();
    // SAFETY: `list` is the argv value of an all-at-once IN constraint.
    let mut rc = unsafe { call!(vtab_in_first(list.raw(), &mut p)) };
    while rc == api::SQLITE_OK && !p.is_null() {
        // SAFETY: valid until the next vtab_in_next call.
        out.extend(rowid_of(unsafe { Value::from_ptr(p) }));
        // SAFETY: as above.
        rc = unsafe { call!(vtab_in_next(list.raw(), &mut p)) };
    }
    if rc != api::SQLITE_OK && rc != api::SQLITE_DONE {
        return Err(format!(
            "pocketvec: reading the rowid IN list failed (SQLite error {rc})"
        ));
    }
    Ok(out)
}

/// Narrows `f` by `rowid <op> v`, with SQLite's comparison rules: NULL
/// matches nothing, TEXT/BLOB that are not numbers sort above every number.
fn apply_rowid_bound(f: &mut RowidFilter, op: CmpOp, v: Value<'_>) {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    let t = match v.value_type() {
        ValueType::Text => v.numeric_type(),
        t => t,
    };
    let empty = |f: &mut RowidFilter| {
        f.lo = 1;
        f.hi = 0;
    };
    match t {
        ValueType::Null => empty(f),
        ValueType::Text | ValueType::Blob => {
            if matches!(op, CmpOp::Gt | CmpOp::Ge) {
                empty(f)
            }
        }
        ValueType::Integer => {
            let i = v.int64();
            match op {
                CmpOp::Gt => match i.checked_add(1) {
                    Some(j) => f.lo = f.lo.max(j),
                    None => empty(f),
                },
                CmpOp::Ge => f.lo = f.lo.max(i),
                CmpOp::Lt => match i.checked_sub(1) {
                    Some(j) => f.hi = f.hi.min(j),
                    None => empty(f),
                },
                CmpOp::Le => f.hi = f.hi.min(i),
            }
        }
        ValueType::Float => {
            let x = v.double();
            // Lower bound: smallest integer r with r > x (Gt) or r >= x (Ge).
            // Upper bound: largest integer r with r < x (Lt) or r <= x (Le).
            let bound = match op {
                CmpOp::Gt => x.floor() + 1.0,
                CmpOp::Ge => x.ceil(),
                CmpOp::Lt => x.ceil() - 1.0,
                CmpOp::Le => x.floor(),
            };
            match op {
                CmpOp::Gt | CmpOp::Ge => {
                    if bound >= TWO63 {
                        empty(f)
                    } else if bound > -TWO63 {
                        f.lo = f.lo.max(bound as i64)
                    }
                }
                CmpOp::Lt | CmpOp::Le => {
                    if bound < -TWO63 {
                        empty(f)
                    } else if bound < TWO63 {
                        f.hi = f.hi.min(bound as i64)
                    }
                }
            }
        }
    }
}

/// Right-hand side of a distance comparison after REAL affinity.
fn rhs_of(v: Value<'_>) -> Rhs {
    let t = match v.value_type() {
        ValueType::Text => v.numeric_type(),
        t => t,
    };
    match t {
        ValueType::Null => Rhs::Null,
        ValueType::Integer => Rhs::Num(Num::Int(v.int64())),
        ValueType::Float => Rhs::Num(Num::Real(v.double())),
        ValueType::Text | ValueType::Blob => Rhs::AboveNumbers,
    }
}
