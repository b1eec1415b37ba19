//! The `pocketvec` virtual table module: create/connect, best-index, cursor.
//!
//! ```sql
//! CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs_vecs, dim=128);
//! SELECT rowid, distance FROM ann WHERE query = ? AND k = 10;
//! ```
//!
//! Every `extern "C"` callback here is a thin trampoline: it catches
//! panics, converts pointers, and calls safe code in [`plan`], [`cursor`]
//! or [`crate::source`].

pub mod cursor;
pub mod options;
pub mod plan;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::Arc;

use sqlite3ext_sys as sys;

use crate::api::{self, call, guard, quote_ident, set_out_error, set_vtab_error, Ctx, Value};
use crate::source::base_table::{self, BaseTable};
use crate::source::index::Index;
use crate::source::shadow::SHADOW_SUFFIXES;
use crate::source::VectorSource;
use crate::state::ConnState;
use cursor::Cursor;
use options::{IndexKind, Options};
use plan::{best_index, declare_sql, Caps, Constraint, OrderTerm, Plan};

/// Where a table's queries are answered from.
pub enum Backend {
    /// `index=none`: the base table, scanned through SQL.
    Base(BaseTable),
    /// Shadow-table storage (flat or IVF).
    Index(Box<Index>),
}

/// State of one virtual table on one connection.
pub struct Table {
    pub name: String,
    pub opts: Options,
    pub conn: Arc<ConnState>,
    pub backend: Backend,
}

impl Table {
    pub fn source(&self) -> &dyn VectorSource {
        match &self.backend {
            Backend::Base(b) => b,
            Backend::Index(i) => i.as_ref(),
        }
    }
    pub fn source_mut(&mut self) -> &mut dyn VectorSource {
        match &mut self.backend {
            Backend::Base(b) => b,
            Backend::Index(i) => i.as_mut(),
        }
    }

    /// An FTS5-style command: `INSERT INTO ann(ann) VALUES('optimize')`.
    /// `Err((code, message))`.
    fn command(&mut self, cmd: &str) -> Result<(), (c_int, String)> {
        let err = |e: String| (api::SQLITE_ERROR, e);
        let c = cmd.trim().to_ascii_lowercase();
        match (&mut self.backend, c.as_str()) {
            (Backend::Index(i), "optimize") => i.cmd_optimize().map_err(err),
            (Backend::Index(i), "rebuild") => i.cmd_rebuild().map_err(err),
            (Backend::Index(i), "integrity-check") => i
                .cmd_integrity_check()
                .map_err(|e| (sys::SQLITE_CORRUPT_VTAB as c_int, e)),
            (Backend::Base(b), "optimize" | "rebuild" | "integrity-check") => b.check().map_err(err),
            _ => Err(err(format!(
                "pocketvec: unknown command '{}' for table {}; expected 'optimize', 'rebuild' or 'integrity-check'",
                api::shorten(cmd, 40),
                quote_ident(&self.name)
            ))),
        }
    }

    /// JSON describing the table (`SELECT ann FROM ann WHERE ann = 'info'`).
    pub fn info(&mut self) -> Result<String, String> {
        let j = match &mut self.backend {
            Backend::Index(i) => i.info_json()?,
            Backend::Base(b) => {
                b.check()?;
                serde_json::json!({
                    "table": self.name,
                    "base_table": b.table(),
                    "index": "none",
                    "type": self.opts.elem_type.name(),
                    "dim": self.opts.dim,
                    "metric": options::metric_name(self.opts.metric),
                    "pending_log": 0,
                    "trained": false,
                    "index_bytes": 0,
                    "cache": false,
                    "cache_bytes": 0,
                })
            }
        };
        Ok(j.to_string())
    }
}

#[repr(C)]
struct PvTab {
    base: sys::sqlite3_vtab,
    table: Table,
}

#[repr(C)]
struct PvCursor {
    base: sys::sqlite3_vtab_cursor,
    cursor: Cursor,
}

static MODULE: sys::sqlite3_module = sys::sqlite3_module {
    iVersion: 3,
    xCreate: Some(x_create),
    xConnect: Some(x_connect),
    xBestIndex: Some(x_best_index),
    xDisconnect: Some(x_disconnect),
    xDestroy: Some(x_destroy),
    xOpen: Some(x_open),
    xClose: Some(x_close),
    xFilter: Some(x_filter),
    xNext: Some(x_next),
    xEof: Some(x_eof),
    xColumn: Some(x_column),
    xRowid: Some(x_rowid),
    xUpdate: Some(x_update),
    xBegin: None,
    xSync: None,
    xCommit: None,
    xRollback: None,
    xFindFunction: None,
    xRename: Some(x_rename),
    xSavepoint: None,
    xRelease: None,
    xRollbackTo: None,
    xShadowName: Some(x_shadow_name),
};

/// Registers the `pocketvec` module on `db`.
///
/// # Safety
/// `db` is an open connection and the API is installed.
pub unsafe fn register(db: *mut sys::sqlite3, conn: &Arc<ConnState>) -> Result<(), String> {
    let aux = Arc::into_raw(Arc::clone(conn)) as *mut c_void;
    // SAFETY: MODULE is 'static; SQLite calls the destructor (releasing the
    // Arc reference) when the module is replaced or the connection closes,
    // also when registration fails.
    let rc = unsafe {
        call!(create_module_v2(
            db,
            c"pocketvec".as_ptr(),
            &MODULE,
            aux,
            Some(crate::functions::drop_arc::<ConnState>),
        ))
    };
    if rc != api::SQLITE_OK {
        // SAFETY: db valid.
        return Err(format!(
            "pocketvec: cannot register the module: {}",
            unsafe { api::errmsg(db) }
        ));
    }
    Ok(())
}

unsafe extern "C" fn x_create(
    db: *mut sys::sqlite3,
    aux: *mut c_void,
    argc: c_int,
    argv: *const *const c_char,
    pp_vtab: *mut *mut sys::sqlite3_vtab,
    pz_err: *mut *mut c_char,
) -> c_int {
    // SAFETY: arguments straight from SQLite.
    unsafe { connect(db, aux, argc, argv, pp_vtab, pz_err, true) }
}

unsafe extern "C" fn x_connect(
    db: *mut sys::sqlite3,
    aux: *mut c_void,
    argc: c_int,
    argv: *const *const c_char,
    pp_vtab: *mut *mut sys::sqlite3_vtab,
    pz_err: *mut *mut c_char,
) -> c_int {
    // SAFETY: arguments straight from SQLite.
    unsafe { connect(db, aux, argc, argv, pp_vtab, pz_err, false) }
}

/// xCreate checks the base table and column now; xConnect (opening a
/// database that already has the table) defers that to the first query, so
/// a table whose base table was dropped can still be dropped itself.
unsafe fn connect(
    db: *mut sys::sqlite3,
    aux: *mut c_void,
    argc: c_int,
    argv: *const *const c_char,
    pp_vtab: *mut *mut sys::sqlite3_vtab,
    pz_err: *mut *mut c_char,
    create: bool,
) -> c_int {
    guard(
        |msg| {
            // SAFETY: pz_err from SQLite.
            unsafe { set_out_error(pz_err, &msg) };
            api::SQLITE_ERROR
        },
        || {
            let args: Vec<String> = (0..usize::try_from(argc).unwrap_or(0))
                // SAFETY: SQLite passes argc NUL-terminated strings.
                .map(|i| {
                    unsafe { CStr::from_ptr(*argv.add(i)) }
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            let r = (|| -> Result<Box<PvTab>, String> {
                if args.len() < 3 {
                    return Err("pocketvec: malformed CREATE VIRTUAL TABLE arguments".into());
                }
                let (schema, name) = (&args[1], &args[2]);
                let opts = options::parse(&args[3..])?;
                let declare = declare_sql(name)?;
                if create {
                    // SAFETY: db is the connection creating the table.
                    unsafe { base_table::inspect(db, schema, &opts.base_table, &opts.column) }?;
                }
                let decl = std::ffi::CString::new(declare)
                    .map_err(|_| "pocketvec: NUL in the table name".to_string())?;
                // SAFETY: db valid, decl NUL-terminated.
                if unsafe { call!(declare_vtab(db, decl.as_ptr())) } != api::SQLITE_OK {
                    // SAFETY: db valid.
                    return Err(format!("pocketvec: declare_vtab failed: {}", unsafe {
                        api::errmsg(db)
                    }));
                }
                if api::api().has(api::V3_31) {
                    // SAFETY: db valid; called from xCreate/xConnect as required.
                    unsafe { call!(vtab_config(db, api::SQLITE_VTAB_INNOCUOUS)) };
                }
                // SAFETY: aux is the Arc<ConnState> registered with the module;
                // take one more reference for this table.
                let conn = unsafe {
                    Arc::increment_strong_count(aux as *const ConnState);
                    Arc::from_raw(aux as *const ConnState)
                };
                let backend = match opts.index {
                    IndexKind::None => Backend::Base(BaseTable::new(
                        db,
                        name,
                        schema,
                        &opts.base_table,
                        &opts.column,
                        opts.elem_type,
                        opts.dim,
                    )),
                    IndexKind::Flat | IndexKind::Ivf => {
                        let mut idx = Box::new(Index::new(db, schema, name, &opts, &conn));
                        if create {
                            idx.create()?;
                        }
                        Backend::Index(idx)
                    }
                };
                Ok(Box::new(PvTab {
                    // SAFETY: sqlite3_vtab is plain C data; SQLite fills it.
                    base: unsafe { std::mem::zeroed() },
                    table: Table {
                        name: name.clone(),
                        opts,
                        conn,
                        backend,
                    },
                }))
            })();
            match r {
                Ok(t) => {
                    // SAFETY: pp_vtab is writable.
                    unsafe { *pp_vtab = Box::into_raw(t).cast() };
                    api::SQLITE_OK
                }
                Err(e) => {
                    // SAFETY: pz_err from SQLite.
                    unsafe { set_out_error(pz_err, &e) };
                    api::SQLITE_ERROR
                }
            }
        },
    )
}

unsafe extern "C" fn x_disconnect(vtab: *mut sys::sqlite3_vtab) -> c_int {
    guard(
        |_| api::SQLITE_ERROR,
        || {
            // SAFETY: vtab came from Box::into_raw::<PvTab> in connect; the
            // table's statements are finalized by the drop.
            drop(unsafe { Box::from_raw(vtab.cast::<PvTab>()) });
            api::SQLITE_OK
        },
    )
}

unsafe extern "C" fn x_destroy(vtab: *mut sys::sqlite3_vtab) -> c_int {
    guard(
        |msg| {
            // SAFETY: vtab is live.
            unsafe { set_vtab_error(vtab, &msg) };
            api::SQLITE_ERROR
        },
        || {
            // SAFETY: vtab is a live PvTab.
            let t = unsafe { &mut (*vtab.cast::<PvTab>()).table };
            if let Backend::Index(i) = &mut t.backend {
                if let Err(e) = i.destroy() {
                    // SAFETY: vtab is live.
                    unsafe { set_vtab_error(vtab, &e) };
                    return api::SQLITE_ERROR;
                }
            }
            // SAFETY: vtab came from Box::into_raw::<PvTab> in connect.
            drop(unsafe { Box::from_raw(vtab.cast::<PvTab>()) });
            api::SQLITE_OK
        },
    )
}

unsafe extern "C" fn x_rename(vtab: *mut sys::sqlite3_vtab, new: *const c_char) -> c_int {
    guard(
        |msg| {
            // SAFETY: vtab is live.
            unsafe { set_vtab_error(vtab, &msg) };
            api::SQLITE_ERROR
        },
        || {
            // SAFETY: vtab is a live PvTab; new is NUL-terminated.
            let (t, new) = unsafe { (&mut (*vtab.cast::<PvTab>()).table, api::cstr_lossy(new)) };
            if let Err(e) = declare_sql(&new) {
                // SAFETY: vtab is live.
                unsafe { set_vtab_error(vtab, &e) };
                return api::SQLITE_ERROR;
            }
            if let Backend::Index(i) = &mut t.backend {
                if let Err(e) = i.rename(&new) {
                    // SAFETY: vtab is live.
                    unsafe { set_vtab_error(vtab, &e) };
                    return api::SQLITE_ERROR;
                }
            }
            t.name = new;
            api::SQLITE_OK
        },
    )
}

unsafe extern "C" fn x_shadow_name(suffix: *const c_char) -> c_int {
    guard(
        |_| 0,
        || {
            // SAFETY: SQLite passes a NUL-terminated name.
            let s = unsafe { api::cstr_lossy(suffix) };
            c_int::from(SHADOW_SUFFIXES.iter().any(|x| x.eq_ignore_ascii_case(&s)))
        },
    )
}

/// Only FTS5-style commands are accepted: `INSERT INTO ann(ann)
/// VALUES('optimize' | 'rebuild' | 'integrity-check')`. Everything else is
/// refused: the table mirrors its base table.
unsafe extern "C" fn x_update(
    vtab: *mut sys::sqlite3_vtab,
    argc: c_int,
    argv: *mut *mut sys::sqlite3_value,
    _rowid: *mut sys::sqlite3_int64,
) -> c_int {
    guard(
        |msg| {
            // SAFETY: vtab is live.
            unsafe { set_vtab_error(vtab, &msg) };
            api::SQLITE_ERROR
        },
        || {
            // SAFETY: vtab is a live PvTab; argv holds argc values.
            let (t, args) =
                unsafe { (&mut (*vtab.cast::<PvTab>()).table, Value::args(argc, argv)) };
            let cmd_at = 2 + plan::COL_COMMAND as usize;
            let is_command = args.len() > cmd_at
                && args[0].value_type() == api::ValueType::Null
                && args[cmd_at].value_type() == api::ValueType::Text
                && args
                    .iter()
                    .enumerate()
                    .all(|(i, v)| i == 0 || i == cmd_at || v.value_type() == api::ValueType::Null);
            if !is_command {
                let base = match &t.backend {
                    Backend::Base(_) => t.opts.base_table.clone(),
                    Backend::Index(i) => i.base_name().to_string(),
                };
                let msg = format!(
                    "pocketvec: table {v} is read-only: write to its base table {}; commands: \
                     INSERT INTO {v}({v}) VALUES('optimize' | 'rebuild' | 'integrity-check')",
                    quote_ident(&base),
                    v = quote_ident(&t.name)
                );
                // SAFETY: vtab is live.
                unsafe { set_vtab_error(vtab, &msg) };
                return api::SQLITE_ERROR;
            }
            let cmd = String::from_utf8_lossy(args[cmd_at].text()).into_owned();
            match t.command(&cmd) {
                Ok(()) => api::SQLITE_OK,
                Err((code, e)) => {
                    // SAFETY: vtab is live.
                    unsafe { set_vtab_error(vtab, &e) };
                    code
                }
            }
        },
    )
}

unsafe extern "C" fn x_best_index(
    vtab: *mut sys::sqlite3_vtab,
    info: *mut sys::sqlite3_index_info,
) -> c_int {
    guard(
        |msg| {
            // SAFETY: vtab is live.
            unsafe { set_vtab_error(vtab, &msg) };
            api::SQLITE_ERROR
        },
        || {
            // SAFETY: info is valid for the call; arrays have the stated sizes.
            let info = unsafe { &mut *info };
            let a = api::api();
            let caps = Caps {
                vtab_in: a.has(api::V3_38),
            };
            let n = usize::try_from(info.nConstraint).unwrap_or(0);
            let cons: Vec<Constraint> = (0..n)
                .map(|i| {
                    // SAFETY: i < nConstraint.
                    let c = unsafe { &*info.aConstraint.add(i) };
                    let usable = c.usable != 0;
                    let is_in = caps.vtab_in
                        && usable
                        && c.iColumn == plan::COL_ROWID
                        && c.op == plan::OP_EQ
                        // SAFETY: 3.38+ checked; i is a valid constraint index.
                        && unsafe { call!(vtab_in(info, i as c_int, -1)) } != 0;
                    Constraint {
                        column: c.iColumn,
                        op: c.op,
                        usable,
                        is_in,
                    }
                })
                .collect();
            let order: Vec<OrderTerm> = (0..usize::try_from(info.nOrderBy).unwrap_or(0))
                .map(|i| {
                    // SAFETY: i < nOrderBy.
                    let o = unsafe { &*info.aOrderBy.add(i) };
                    OrderTerm {
                        column: o.iColumn,
                        desc: o.desc != 0,
                    }
                })
                .collect();
            let Ok(best) = best_index(&cons, &order, caps) else {
                return api::SQLITE_CONSTRAINT;
            };
            for (i, &(argv, omit)) in best.usage.iter().enumerate() {
                // SAFETY: i < nConstraint.
                let u = unsafe { &mut *info.aConstraintUsage.add(i) };
                u.argvIndex = argv;
                u.omit = u8::from(omit);
            }
            for &i in &best.handle_in {
                // SAFETY: 3.38+ (handle_in is only filled then); valid index.
                unsafe { call!(vtab_in(info, i as c_int, 1)) };
            }
            let (idx_num, idx_str) = best.plan.encode();
            info.idxNum = idx_num;
            info.idxStr = api::sqlite_string(&idx_str);
            if info.idxStr.is_null() {
                return api::SQLITE_NOMEM;
            }
            info.needToFreeIdxStr = 1;
            info.orderByConsumed = c_int::from(best.order_by_consumed);
            info.estimatedCost = best.cost;
            info.estimatedRows = best.rows;
            api::SQLITE_OK
        },
    )
}

unsafe extern "C" fn x_open(
    _vtab: *mut sys::sqlite3_vtab,
    pp: *mut *mut sys::sqlite3_vtab_cursor,
) -> c_int {
    guard(
        |_| api::SQLITE_ERROR,
        || {
            let c = Box::new(PvCursor {
                // SAFETY: plain C data; SQLite sets pVtab.
                base: unsafe { std::mem::zeroed() },
                cursor: Cursor::default(),
            });
            // SAFETY: pp is writable.
            unsafe { *pp = Box::into_raw(c).cast() };
            api::SQLITE_OK
        },
    )
}

unsafe extern "C" fn x_close(cur: *mut sys::sqlite3_vtab_cursor) -> c_int {
    guard(
        |_| api::SQLITE_ERROR,
        || {
            // SAFETY: cur came from Box::into_raw::<PvCursor> in x_open.
            drop(unsafe { Box::from_raw(cur.cast::<PvCursor>()) });
            api::SQLITE_OK
        },
    )
}

unsafe extern "C" fn x_filter(
    cur: *mut sys::sqlite3_vtab_cursor,
    idx_num: c_int,
    idx_str: *const c_char,
    argc: c_int,
    argv: *mut *mut sys::sqlite3_value,
) -> c_int {
    // SAFETY: cur is a live PvCursor whose pVtab is a live PvTab.
    let vtab = unsafe { (*cur).pVtab };
    guard(
        |msg| {
            // SAFETY: vtab is live.
            unsafe { set_vtab_error(vtab, &msg) };
            api::SQLITE_ERROR
        },
        || {
            // SAFETY: as above; SQLite does not run two callbacks of one
            // cursor at once.
            let (c, t) = unsafe { (&mut *cur.cast::<PvCursor>(), &mut *vtab.cast::<PvTab>()) };
            // SAFETY: idx_str is NULL or our NUL-terminated plan string.
            let s = unsafe { api::cstr_lossy(idx_str) };
            // SAFETY: argc values from SQLite, valid during the call.
            let args = unsafe { Value::args(argc, argv) };
            let r =
                Plan::decode(idx_num, &s).and_then(|p| c.cursor.filter(&mut t.table, &p, &args));
            match r {
                Ok(()) => api::SQLITE_OK,
                Err(e) => {
                    // SAFETY: vtab is live.
                    unsafe { set_vtab_error(vtab, &e) };
                    api::SQLITE_ERROR
                }
            }
        },
    )
}

unsafe extern "C" fn x_next(cur: *mut sys::sqlite3_vtab_cursor) -> c_int {
    guard(
        |_| api::SQLITE_ERROR,
        || {
            // SAFETY: live cursor.
            unsafe { &mut *cur.cast::<PvCursor>() }.cursor.next();
            api::SQLITE_OK
        },
    )
}

unsafe extern "C" fn x_eof(cur: *mut sys::sqlite3_vtab_cursor) -> c_int {
    guard(
        |_| 1,
        || {
            // SAFETY: live cursor.
            c_int::from(unsafe { &*cur.cast::<PvCursor>() }.cursor.eof())
        },
    )
}

unsafe extern "C" fn x_column(
    cur: *mut sys::sqlite3_vtab_cursor,
    ctx: *mut sys::sqlite3_context,
    i: c_int,
) -> c_int {
    let c = Ctx(ctx);
    guard(
        |msg| {
            c.result_error(&msg);
            api::SQLITE_ERROR
        },
        || {
            // SAFETY: live cursor.
            unsafe { &*cur.cast::<PvCursor>() }.cursor.column(c, i);
            api::SQLITE_OK
        },
    )
}

unsafe extern "C" fn x_rowid(
    cur: *mut sys::sqlite3_vtab_cursor,
    out: *mut sys::sqlite3_int64,
) -> c_int {
    guard(
        |_| api::SQLITE_ERROR,
        || {
            // SAFETY: live cursor; out writable.
            unsafe { *out = (*cur.cast::<PvCursor>()).cursor.rowid() };
            api::SQLITE_OK
        },
    )
}

/// `"name"` for messages.
pub fn table_label(name: &str) -> String {
    format!("table {}", quote_ident(name))
}
