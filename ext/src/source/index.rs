//! The index source: vectors copied into shadow tables (flat chunks, or IVF
//! lists) and kept consistent with the base table.
//!
//! # Consistency protocol
//! Triggers on the base table append every touched rowid to `X_log` (plain
//! SQL, so any connection keeps the log, with or without pocketvec). Each
//! query first reads, in its own transaction, the format version, the
//! generation token, the row count, the base table's name (from the
//! trigger, which follows `ALTER TABLE … RENAME`) and whether the log has
//! entries. A non-empty log is then either
//! * **applied** — inside `SAVEPOINT pocketvec_apply`, so it commits with
//!   the query's (or the user's) transaction: each logged rowid is looked up
//!   in the base table and its index entry inserted, replaced or removed;
//!   the token gets a fresh random value and the log is emptied; or
//! * **overlaid** when the database cannot be written (read-only file or
//!   connection, `query_only`, a lock held by another connection, a stale
//!   WAL snapshot, a write statement in progress): logged rowids are
//!   skipped in the stored data and scored from their current base rows.
//!
//! Either way a query sees exactly the base table as of its transaction.
//! A REPLACE that deletes a row through a UNIQUE conflict fires no trigger,
//! so every result taken from stored data is checked against the base
//! table (one point lookup each) and replaced by the next candidate if the
//! row is gone; such rows are then logged so the next write removes them.
//!
//! # Cache validation
//! The RAM cache records the token (and row count) it was loaded at. The
//! token changes in the same transaction as any write to the stored data,
//! from this or any other connection or process, and rolls back with it;
//! being random, a rolled-back value is never reused by a later write. A
//! query uses the cache only if the token it reads equals the cache's.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use kernels::Kernels;
use sqlite3ext_sys as sys;

use super::base_table::{integer_key, BaseTable};
use super::flat::{self, Cache, ChunkReader, Layout, Writer};
use super::score::{self, resolve_threads, row_norm, score_block, Admit};
use super::screen::{self, Screen};
use super::shadow::{self, Names, FORMAT_VERSION, LOG};
use super::{Collector, Request, VectorSource};
use crate::api::{self, exec, quote_ident, SqlError, Step, Stmt, ValueType};
use crate::state::{table_key, ConnState, TableStats};
use crate::vector::{ElemType, Vector};
use crate::vtab::options::{IndexKind, Options};

/// Logged rowids applied per batch (bounds the memory of a bulk apply).
const APPLY_BATCH: usize = 4096;
/// Extra candidates kept per query so rows found gone can be replaced
/// without a second scan.
const SLACK: usize = 8;

/// What a query reads first.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub format: Option<i64>,
    pub token: i64,
    pub rows: usize,
    /// Table the insert trigger is attached to (`None`: trigger missing).
    pub trigger_base: Option<String>,
    pub pending: bool,
    pub trained: bool,
    pub model_token: i64,
    /// Base table name recorded in `X_info` (kept up to date with renames).
    pub base: Option<String>,
    /// What is wrong with the recorded values, if anything (a damaged
    /// `X_info`, or flat chunks that do not match the row count).
    pub invalid: Option<String>,
}

/// The state after syncing: pending rowids to overlay (empty when the log
/// was applied or empty) and whether this query may write.
struct Synced {
    state: State,
    pending: Vec<i64>,
    writable: bool,
    /// Results from stored data need the REPLACE check.
    check: bool,
}

/// `(token, chunk bytes per list, heap bytes)`.
type CachedLists = (i64, Vec<Vec<Vec<u8>>>, usize);
/// Base rows by rowid: `None` = gone or NULL.
type Fetched = Vec<(i64, Option<Vec<u8>>)>;

/// The trained IVF model and (optionally) every list chunk in RAM.
struct IvfCache {
    model_token: i64,
    model: Arc<ivf::IvfModel>,
    /// `(token, chunks per list)` when the lists are cached.
    lists: Option<CachedLists>,
}

/// A per-connection RAM copy of the base table's vectors for an IVF table
/// (with the cache on): the exact re-rank reads candidates here instead of
/// one base-table lookup each. Filled by the second IVF query on the
/// connection from one pass over the base table, validated by the
/// generation token like the chunk cache, patched by this connection's own
/// applies. About the base table's vector bytes (plus a norm and a map
/// entry per row); reported in `cache_bytes`.
struct RowStore {
    token: i64,
    row_bytes: usize,
    rows: Vec<u8>,
    norms: Vec<f32>,
    at: HashMap<i64, u32, IdHash>,
    free: Vec<u32>,
}

/// A multiplicative (Fibonacci) hash for rowids: the RAM copy is looked up
/// once per re-ranked candidate, and SipHash cost more than the lookup's
/// cache miss. Keys come from the database, not from an adversary racing
/// the hash (a skewed table only costs time, never correctness).
#[derive(Clone, Copy, Default)]
struct IdHash;

/// [`IdHash`]'s hasher state.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_i64(&mut self, v: i64) {
        // The high bits pick the bucket group (hashbrown's h1 uses the low
        // bits, h2 the top 7): mix both ways.
        let x = (v as u64 ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

impl RowStore {
    fn new(token: i64, row_bytes: usize) -> RowStore {
        RowStore {
            token,
            row_bytes,
            rows: Vec::new(),
            norms: Vec::new(),
            at: HashMap::default(),
            free: Vec::new(),
        }
    }
    fn bytes(&self) -> usize {
        self.rows.capacity()
            + self.norms.capacity() * 4
            + self.at.capacity() * (8 + 4 + 8)
            + self.free.capacity() * 4
    }
    /// Slot of row `id`, if held.
    fn slot(&self, id: i64) -> Option<usize> {
        self.at.get(&id).map(|&i| i as usize)
    }
    /// Bytes of the row in slot `i`.
    fn row(&self, i: usize) -> &[u8] {
        let rb = self.row_bytes;
        &self.rows[i * rb..(i + 1) * rb]
    }
    fn put(&mut self, id: i64, row: &[u8], norm: f32) {
        let rb = self.row_bytes;
        let i = match self.at.get(&id) {
            Some(&i) => i as usize,
            None => {
                let i = match self.free.pop() {
                    Some(i) => i as usize,
                    None => {
                        // Grow by about 1/16 (not by doubling), so the copy
                        // stays within a few percent of the base vectors.
                        if self.rows.len() + rb > self.rows.capacity() {
                            self.rows.reserve_exact((self.rows.len() / 16).max(rb * 64));
                            self.norms.reserve_exact((self.norms.len() / 16).max(64));
                        }
                        self.rows.resize(self.rows.len() + rb, 0);
                        self.norms.push(0.0);
                        self.norms.len() - 1
                    }
                };
                self.at.insert(id, i as u32);
                i
            }
        };
        self.rows[i * rb..(i + 1) * rb].copy_from_slice(row);
        self.norms[i] = norm;
    }
    fn remove(&mut self, id: i64) {
        if let Some(i) = self.at.remove(&id) {
            self.free.push(i);
        }
    }
}

/// Ids of IVF list chunks: list `l`, sequence `s` → `l << 24 | s`.
const LIST_SHIFT: u32 = 24;

fn list_range(list: u32) -> (i64, i64) {
    let lo = i64::from(list) << LIST_SHIFT;
    (lo, lo + (1 << LIST_SHIFT) - 1)
}

pub struct Index {
    db: *mut sys::sqlite3,
    names: Names,
    opts: Options,
    base: BaseTable,
    kern: Kernels,
    layout: Layout,
    cache: Option<Cache>,
    ivf: Option<IvfCache>,
    state_stmt: Option<Stmt>,
    stats: Arc<TableStats>,
    conn: Arc<ConnState>,
    /// Flat scans run on this connection (the first one streams).
    scans: u64,
    /// Token seen by the previous IVF query (`rowstore` fills when the
    /// next one sees the same).
    ivf_last_token: Option<i64>,
    rowstore: Option<RowStore>,
    /// `PRAGMA schema_version` of the base table's schema (prepared once).
    schema_stmt: Option<Stmt>,
    /// IVF query buffers reused from query to query (nothing is allocated
    /// per query once they have grown): the searcher's lookup tables,
    /// scores and candidates, the re-rank lists, the hits, the f32 query.
    ivf_scratch: Option<ivf::SearchScratch>,
    ivf_rerank: RerankScratch,
    ivf_hits: Vec<(i64, f32)>,
    ivf_qbuf: Vec<f32>,
    /// Whether results need the REPLACE check, as decided at a schema
    /// version (see [`Index::replace_check`]).
    guard: Option<ReplaceGuard>,
    /// Whether the last apply got past its first write (its failure may
    /// have left undone changes in the caches).
    apply_wrote: bool,
    /// The schema version of a sweep that found no leftovers (or logged
    /// them), to be recorded in `X_info` by this connection's next apply,
    /// so other connections skip the sweep.
    sweep_clean: Option<i64>,
}

/// Re-rank bookkeeping: the candidates the RAM copy lacks (read from the
/// base table).
#[derive(Default)]
struct RerankScratch {
    missing: Vec<i64>,
    /// RAM-copy slot of each candidate.
    slots: Vec<Option<usize>>,
}

/// Asks the CPU to start loading the cache line at `p` (a hint: it never
/// faults and changes no result).
#[inline(always)]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch instructions do not fault on any address; SSE is
    // part of the x86-64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The REPLACE-check decision of one connection, valid while the schema
/// version and the base table's name are unchanged.
struct ReplaceGuard {
    cookie: i64,
    table: String,
    check: bool,
}

impl Index {
    pub fn new(
        db: *mut sys::sqlite3,
        schema: &str,
        vtab: &str,
        opts: &Options,
        conn: &Arc<ConnState>,
    ) -> Index {
        let stats = Arc::new(TableStats::default());
        conn.register_table(&table_key(schema, vtab), &stats);
        Index {
            db,
            names: Names::new(schema, vtab),
            opts: opts.clone(),
            base: BaseTable::new(
                db,
                vtab,
                schema,
                &opts.base_table,
                &opts.column,
                opts.elem_type,
                opts.dim,
            ),
            kern: Kernels::detect(),
            layout: Layout {
                elem: opts.elem_type,
                dim: opts.dim,
                cap: opts.chunk_rows,
                norms: score::uses_norms(opts.metric),
            },
            cache: None,
            ivf: None,
            state_stmt: None,
            stats,
            conn: Arc::clone(conn),
            scans: 0,
            ivf_last_token: None,
            rowstore: None,
            schema_stmt: None,
            guard: None,
            apply_wrote: false,
            sweep_clean: None,
            ivf_scratch: None,
            ivf_rerank: RerankScratch::default(),
            ivf_hits: Vec::new(),
            ivf_qbuf: Vec::new(),
        }
    }

    pub fn names(&self) -> &Names {
        &self.names
    }
    pub fn base_name(&self) -> &str {
        self.base.table()
    }

    fn label(&self) -> String {
        quote_ident(&self.names.vtab)
    }

    // ---- lifecycle --------------------------------------------------------

    /// xCreate: shadow tables, triggers, and the initial build from the
    /// rows already in the base table. On failure everything is removed.
    pub fn create(&mut self) -> Result<(), String> {
        self.base.check()?;
        // SAFETY: db is the connection creating the table.
        let key = unsafe { integer_key(self.db, &self.names.schema, self.base.table()) }?;
        let r = (|| -> Result<(), String> {
            // SAFETY: as above.
            unsafe {
                exec(self.db, &shadow::create_tables_sql(&self.names))?;
                let n = &self.names;
                shadow::set_info_i64(self.db, n, "format", FORMAT_VERSION)?;
                shadow::set_info_i64(self.db, n, "token", shadow::new_token(0))?;
                shadow::set_info_i64(self.db, n, "model_token", 0)?;
                shadow::set_info_i64(self.db, n, "rows", 0)?;
                shadow::set_info_i64(self.db, n, "trained", 0)?;
                shadow::set_info_i64(self.db, n, "chunk_rows", self.layout.cap as i64)?;
                shadow::set_info_text(self.db, n, "index", self.opts.index.name())?;
                shadow::set_info_text(self.db, n, "key", &key)?;
                shadow::set_info_text(self.db, n, "base", self.base.table())?;
                exec(
                    self.db,
                    &shadow::create_triggers_sql(n, self.base.table(), &key, &self.opts.column),
                )?;
            }
            self.rebuild_data()
        })();
        if r.is_err() {
            // SAFETY: as above; best effort, the error below is what counts.
            let _ = unsafe { exec(self.db, &shadow::drop_all_sql(&self.names)) };
        }
        r
    }

    /// xDestroy: drops the triggers, the shadow tables and the log.
    pub fn destroy(&mut self) -> Result<(), String> {
        self.state_stmt = None;
        self.schema_stmt = None;
        self.guard = None;
        self.cache = None;
        self.base.reset();
        // SAFETY: db is the connection dropping the table.
        unsafe { exec(self.db, &shadow::drop_all_sql(&self.names)) }.map_err(String::from)
    }

    /// xRename: renames the shadow tables and the log, and re-creates the
    /// triggers under the new names.
    pub fn rename(&mut self, new: &str) -> Result<(), String> {
        self.state_stmt = None;
        self.guard = None;
        let old = self.names.clone();
        let newn = Names::new(&old.schema, new);
        // SAFETY: db is the connection renaming the table.
        let key = unsafe { shadow::info_text(self.db, &old, "key") }?
            .ok_or_else(|| flat::corrupt(&old, "the key column is not recorded"))?;
        let triggers = unsafe { self.trigger_base(&old) }?;
        let mut sql = shadow::drop_triggers_sql(&old);
        for t in shadow::SHADOW_SUFFIXES.iter().chain([&LOG]) {
            sql.push_str(&format!(
                "\nALTER TABLE {} RENAME TO {};",
                old.q(t),
                quote_ident(&newn.raw(t))
            ));
        }
        if let Some(base) = &triggers {
            sql.push('\n');
            sql.push_str(&shadow::create_triggers_sql(
                &newn,
                base,
                &key,
                &self.opts.column,
            ));
        }
        // SAFETY: as above.
        unsafe { exec(self.db, &sql) }.map_err(String::from)?;
        self.names = newn;
        self.base.set_vtab(new);
        let key = table_key(&self.names.schema, new);
        self.conn.register_table(&key, &self.stats);
        Ok(())
    }

    /// Name of the table the insert trigger of `n` is attached to.
    unsafe fn trigger_base(&self, n: &Names) -> Result<Option<String>, String> {
        // SAFETY: caller guarantees db.
        let mut st = unsafe {
            Stmt::prepare(
                self.db,
                &format!(
                    "SELECT tbl_name FROM {} WHERE type = 'trigger' AND name = ?1",
                    n.master()
                ),
                false,
            )
        }?;
        st.bind_text(1, &n.raw("ai"))?;
        Ok(match st.step()? {
            Step::Row => Some(st.column_text(0)),
            Step::Done => None,
        })
    }

    // ---- state and sync -----------------------------------------------------

    fn read_state(&mut self) -> Result<State, String> {
        if self.state_stmt.is_none() {
            let n = &self.names;
            let info = n.q("info");
            let sql = format!(
                "SELECT (SELECT value FROM {info} WHERE key = 'format'), \
                        (SELECT value FROM {info} WHERE key = 'token'), \
                        (SELECT value FROM {info} WHERE key = 'rows'), \
                        (SELECT tbl_name FROM {master} WHERE type = 'trigger' AND name = ?1), \
                        EXISTS (SELECT 1 FROM {log}), \
                        (SELECT value FROM {info} WHERE key = 'trained'), \
                        (SELECT value FROM {info} WHERE key = 'model_token'), \
                        (SELECT value FROM {info} WHERE key = 'base'), \
                        (SELECT max(id) FROM {chunks}), \
                        (SELECT 1 FROM {map} LIMIT 0), \
                        (SELECT 1 FROM {lists} LIMIT 0)",
                master = n.master(),
                log = n.q(LOG),
                chunks = n.q("chunks"),
                map = n.q("map"),
                lists = n.q("lists"),
            );
            // SAFETY: db is the connection owning this table.
            let mut st = unsafe { Stmt::prepare(self.db, &sql, true) }.map_err(|e| {
                format!(
                    "pocketvec: the index tables of {} are missing or unreadable ({e}); \
                     run INSERT INTO {v}({v}) VALUES('rebuild')",
                    self.label(),
                    v = self.label()
                )
            })?;
            st.bind_text(1, &n.raw("ai"))?;
            self.state_stmt = Some(st);
        }
        let label = self.label();
        let layout = self.layout;
        let st = self.state_stmt.as_mut().expect("just set");
        let r = (|| {
            st.step().map_err(|e| {
                format!(
                    "pocketvec: the index tables of {label} are missing or unreadable ({e}); \
                     run INSERT INTO {label}({label}) VALUES('rebuild')"
                )
            })?;
            let rows = st.column_i64(2);
            let trained = st.column_i64(5) != 0;
            let max_chunk = (st.column_type(8) != ValueType::Null).then(|| st.column_i64(8));
            let invalid = if !matches!(st.column_type(0), ValueType::Integer | ValueType::Null) {
                Some("the format version is not an integer".to_string())
            } else if st.column_type(2) != ValueType::Integer || !(0..=1 << 40).contains(&rows) {
                Some("the row count is missing or not valid".to_string())
            } else if !matches!(st.column_type(5), ValueType::Integer | ValueType::Null) {
                Some("the trained flag is not an integer".to_string())
            } else if !trained
                && max_chunk
                    != (layout.chunks(rows as usize) as i64)
                        .checked_sub(1)
                        .filter(|&c| c >= 0)
            {
                Some(format!(
                    "{rows} rows are recorded, but the last chunk is {}",
                    max_chunk.map_or("missing".to_string(), |c| c.to_string())
                ))
            } else if trained && max_chunk.is_some() {
                Some("flat chunks are stored beside a trained IVF index".to_string())
            } else {
                None
            };
            let s = State {
                format: (st.column_type(0) != ValueType::Null).then(|| st.column_i64(0)),
                token: st.column_i64(1),
                rows: usize::try_from(rows).unwrap_or(0),
                trigger_base: (st.column_type(3) != ValueType::Null).then(|| st.column_text(3)),
                pending: st.column_i64(4) != 0,
                trained: st.column_i64(5) != 0,
                model_token: st.column_i64(6),
                base: (st.column_type(7) != ValueType::Null).then(|| st.column_text(7)),
                invalid,
            };
            Ok::<_, String>(s)
        })();
        st.reset();
        if r.is_err() {
            // Prepared again next time (the schema may have been repaired).
            self.state_stmt = None;
        }
        r
    }

    /// Reads the state, checks format and base table, and applies or
    /// overlays the change log.
    fn sync(&mut self, may_write: bool) -> Result<Synced, String> {
        let mut state = self.read_state()?;
        match state.format {
            Some(FORMAT_VERSION) => {}
            Some(v) if v > FORMAT_VERSION => {
                return Err(format!(
                    "pocketvec: table {} uses on-disk format {v}, this pocketvec reads format {FORMAT_VERSION}; \
                     use a matching pocketvec version, or DROP TABLE {} and create it again",
                    self.label(),
                    self.label()
                ))
            }
            Some(v) => {
                return Err(flat::corrupt(
                    &self.names,
                    &format!("the format version {v} is not valid"),
                ));
            }
            None => {
                return Err(flat::corrupt(&self.names, "no format version is recorded"));
            }
        }
        if let Some(what) = &state.invalid {
            return Err(flat::corrupt(&self.names, what));
        }
        let can_write = may_write
            // SAFETY: db is the connection owning this table.
            && unsafe { api::db_readonly(self.db, &self.names.schema) } == Some(false);
        match &state.trigger_base {
            Some(b) => {
                let b = b.clone();
                self.base.set_table(&b);
                if state.base.as_deref() != Some(b.as_str()) && can_write {
                    // The base table was renamed: remember its name for when
                    // the triggers are gone (best effort; read-only is fine).
                    // SAFETY: as above.
                    let _ = unsafe { shadow::set_info_text(self.db, &self.names, "base", &b) };
                }
            }
            None => {
                // The base table was dropped (its triggers went with it), or
                // the triggers were removed.
                if let Some(b) = &state.base {
                    let b = b.clone();
                    self.base.set_table(&b);
                }
                self.base.reset();
                self.base.check()?;
                return Err(format!(
                    "pocketvec: the change-log triggers of {} on base table {} are missing, so the index \
                     may be stale; run INSERT INTO {v}({v}) VALUES('rebuild')",
                    self.label(),
                    quote_ident(self.base.table()),
                    v = self.label()
                ));
            }
        }
        self.base.check()?;
        let (check, logged) = self.replace_check(can_write, state.trained)?;
        if logged {
            // The sweep logged stored rows whose base row is gone.
            state = self.read_state()?;
        }
        let mut writable = can_write;
        let mut pending = Vec::new();
        if state.pending {
            if writable && self.try_apply(&state)? {
                state = self.read_state()?;
            } else {
                writable = false;
            }
            // Whatever is still logged (everything, or rows with bad values)
            // is read from the base table.
            if state.pending {
                pending = self.logged_ids()?;
            }
        }
        self.stats
            .last_overlay
            .store(pending.len(), Ordering::Relaxed);
        Ok(Synced {
            state,
            pending,
            writable,
            check,
        })
    }

    /// Whether results taken from stored data must be checked against the
    /// base table (the REPLACE trap), and whether rows were just logged.
    ///
    /// A REPLACE deletes a row without a DELETE trigger only through a
    /// conflict on a UNIQUE index other than the INTEGER PRIMARY KEY (a
    /// REPLACE on the key itself fires the INSERT trigger for the same
    /// rowid, and applying it reads the new row). So with no such index the
    /// check is needed only for leftovers of a time when there was one
    /// (created, used by a REPLACE and dropped, possibly by a connection
    /// without pocketvec). The decision is cached per connection by schema
    /// version and base table name, so a later `CREATE UNIQUE INDEX` turns
    /// the check back on at the next query; when a new schema version shows
    /// no UNIQUE index, one read-only sweep looks for such leftovers (every
    /// stored rowid missing from the base table, as `'optimize'` does) and
    /// logs them when the database can be written (the sync then removes
    /// them, or overlays them when it cannot). Nothing is written when none
    /// are found, so read-only workloads stay read-only.
    ///
    /// Only trained IVF tables take that route: their queries are short, so
    /// the point lookups are a large share of them, and a connection
    /// usually runs many. An exact (flat) scan costs far more than its `k`
    /// point lookups, while the sweep reads the whole base table (≈ 1.3 s
    /// at 1M × 768), which a short-lived connection would pay on its first
    /// query; so exact tables always check their results and never sweep.
    fn replace_check(&mut self, can_write: bool, trained: bool) -> Result<(bool, bool), String> {
        if !trained {
            self.guard = None;
            return Ok((true, false));
        }
        let cookie = self.schema_cookie()?;
        if let Some(g) = &self.guard {
            if g.cookie == cookie && g.table == self.base.table() {
                return Ok((g.check, false));
            }
        }
        // SAFETY: db is the connection owning this table.
        let unique = unsafe { unique_index(self.db, &self.names.schema, self.base.table()) }?;
        // A sweep that found the stored rows clean at this schema version
        // (recorded by a write, below) still holds: leftovers need a UNIQUE
        // index, and creating one changes the schema version.
        // SAFETY: as above.
        let clean_at = unsafe { shadow::info_i64(self.db, &self.names, "swept") }.unwrap_or(None);
        let (check, logged, cache) = if unique {
            (true, false, true)
        } else if clean_at == Some(cookie) {
            (false, false, true)
        } else {
            self.stats.sweeps.fetch_add(1, Ordering::Relaxed);
            let gone = self.gone_ids()?;
            // Clean now, or once the log holding the leftovers is applied:
            // the next write of this connection records it.
            self.sweep_clean = Some(cookie);
            if gone.is_empty() {
                (false, false, true)
            } else if can_write {
                match self.log_ids(&gone) {
                    Ok(()) => (false, true, true),
                    // Locked or busy now: check, and sweep again next time.
                    Err(e) if e.is_cannot_write() => (true, false, false),
                    Err(e) => return Err(e.msg),
                }
            } else {
                // Read-only: the leftovers stay; results are checked.
                (true, false, true)
            }
        };
        self.guard = cache.then(|| ReplaceGuard {
            cookie,
            table: self.base.table().to_string(),
            check,
        });
        Ok((check, logged))
    }

    /// The schema version of the index's schema (in the current
    /// transaction).
    fn schema_cookie(&mut self) -> Result<i64, String> {
        if self.schema_stmt.is_none() {
            let sql = format!("PRAGMA {}.schema_version", quote_ident(&self.names.schema));
            // SAFETY: db is the connection owning this table.
            self.schema_stmt = Some(unsafe { Stmt::prepare(self.db, &sql, true) }?);
        }
        let st = self.schema_stmt.as_mut().expect("just set");
        let r = match st.step() {
            Ok(Step::Row) => Ok(st.column_i64(0)),
            Ok(Step::Done) => Err("pocketvec: PRAGMA schema_version returned no row".to_string()),
            Err(e) => Err(e),
        };
        st.reset();
        r
    }

    /// Stored rowids whose base row is gone (a REPLACE through a UNIQUE
    /// conflict deletes it without a trigger), read-only.
    fn gone_ids(&mut self) -> Result<Vec<i64>, String> {
        // SAFETY: db is the connection owning this table.
        let key = unsafe { shadow::info_text(self.db, &self.names, "key") }?
            .ok_or_else(|| flat::corrupt(&self.names, "the key column is not recorded"))?;
        let sql = format!(
            "SELECT m.id FROM {map} AS m WHERE NOT EXISTS \
             (SELECT 1 FROM {schema}.{base} AS b WHERE b.{key} = m.id)",
            map = self.names.q("map"),
            schema = quote_ident(&self.names.schema),
            base = quote_ident(self.base.table()),
            key = quote_ident(&key),
        );
        // SAFETY: as above.
        let mut st = unsafe { Stmt::prepare(self.db, &sql, false) }.map_err(|e| {
            if e.contains("no such column") {
                flat::corrupt(
                    &self.names,
                    &format!(
                        "the recorded key column {} is not in the base table",
                        quote_ident(&key)
                    ),
                )
            } else {
                e
            }
        })?;
        let mut out = Vec::new();
        while st.step()? == Step::Row {
            out.push(st.column_i64(0));
        }
        Ok(out)
    }

    /// Logs every stored rowid whose base row is gone (a REPLACE through a
    /// UNIQUE conflict deletes it without a trigger).
    fn log_gone(&mut self) -> Result<(), SqlError> {
        // SAFETY: db is the connection owning this table.
        let key = unsafe { shadow::info_text(self.db, &self.names, "key") }?
            .ok_or_else(|| flat::corrupt(&self.names, "the key column is not recorded"))?;
        let sql = format!(
            "INSERT INTO {log}(id) SELECT m.id FROM {map} AS m WHERE NOT EXISTS \
             (SELECT 1 FROM {schema}.{base} AS b WHERE b.{key} = m.id)",
            log = self.names.q(LOG),
            map = self.names.q("map"),
            schema = quote_ident(&self.names.schema),
            base = quote_ident(self.base.table()),
            key = quote_ident(&key),
        );
        // SAFETY: as above.
        unsafe { exec(self.db, &sql) }.map_err(|e| {
            if e.msg.contains("no such column") {
                flat::corrupt(
                    &self.names,
                    &format!(
                        "the recorded key column {} is not in the base table",
                        quote_ident(&key)
                    ),
                )
                .into()
            } else {
                e
            }
        })
    }

    /// Distinct logged rowids, ascending.
    fn logged_ids(&self) -> Result<Vec<i64>, String> {
        // SAFETY: db is the connection owning this table.
        let mut st = unsafe {
            Stmt::prepare(
                self.db,
                &format!(
                    "SELECT DISTINCT id FROM {} WHERE id IS NOT NULL ORDER BY id",
                    self.names.q(LOG)
                ),
                false,
            )
        }?;
        let mut out = Vec::new();
        while st.step()? == Step::Row {
            out.push(st.column_i64(0));
        }
        Ok(out)
    }

    /// Applies the log inside a savepoint. `Ok(false)`: the database cannot
    /// be written now (nothing changed; the caller overlays the log).
    fn try_apply(&mut self, state: &State) -> Result<bool, String> {
        // SAFETY: db is the connection owning this table.
        if let Err(e) = unsafe { exec(self.db, "SAVEPOINT pocketvec_apply") } {
            return if e.is_cannot_write() {
                Ok(false)
            } else {
                Err(e.msg)
            };
        }
        self.apply_wrote = false;
        let r = self.apply(state);
        let r = match r {
            // SAFETY: as above.
            Ok(()) => unsafe { exec(self.db, "RELEASE pocketvec_apply") },
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => Ok(true),
            Err(e) => {
                // The caches may hold changes that were just undone (a
                // connection that cannot write fails before any).
                if self.apply_wrote {
                    self.cache = None;
                    if let Some(ic) = self.ivf.as_mut() {
                        ic.lists = None;
                    }
                }
                // SAFETY: as above.
                let undo = unsafe {
                    exec(
                        self.db,
                        "ROLLBACK TO pocketvec_apply; RELEASE pocketvec_apply",
                    )
                };
                if let Err(u) = undo {
                    return Err(format!("{}; undoing it failed too: {}", e.msg, u.msg));
                }
                if e.is_cannot_write() {
                    Ok(false)
                } else {
                    Err(e.msg)
                }
            }
        }
    }

    /// Applies every logged change (caller provides the transaction).
    /// Rows holding bad values stay in the log; if nothing else was logged
    /// nothing is written.
    fn apply(&mut self, state: &State) -> Result<(), SqlError> {
        let ids = self.logged_ids()?;
        let mut rows = state.rows;
        let trained = state.trained;
        if !self.cache_valid(state) {
            self.cache = None;
        }
        if self
            .rowstore
            .as_ref()
            .is_some_and(|r| r.token != state.token)
        {
            self.rowstore = None;
        }
        // Cheap check first: a log of only bad rows changes nothing.
        if ids.len() <= 64 {
            let mut probe = Vec::new();
            self.fetch_rows(&ids, &mut probe)?;
            if probe.len() == ids.len() {
                return Ok(());
            }
        }
        // One write before any row is patched into the RAM caches: a
        // connection that cannot write (`query_only`, a lock held by another
        // connection) fails here, with its caches untouched and still valid.
        // SAFETY: db is the connection owning this table.
        unsafe { shadow::set_info_i64(self.db, &self.names, "token", state.token) }?;
        self.apply_wrote = true;
        if let Some(c) = self.sweep_clean {
            // This apply removes every leftover the sweep logged; recorded
            // only if the schema is still the one swept.
            if self.schema_cookie().map_err(SqlError::from)? == c {
                // SAFETY: as above.
                unsafe { shadow::set_info_i64(self.db, &self.names, "swept", c) }?;
            }
            self.sweep_clean = None;
        }
        let mut bad = Vec::new();
        let mut chunks = HashMap::new();
        let mut tail = HashMap::new();
        for batch in ids.chunks(APPLY_BATCH) {
            rows = if trained {
                self.apply_ivf_batch(
                    batch,
                    rows,
                    state.model_token,
                    &mut bad,
                    &mut chunks,
                    &mut tail,
                )?
            } else {
                self.apply_flat_batch(batch, rows, &mut bad)?
            };
        }
        if trained {
            self.flush_ivf(chunks)?;
        }
        let token = shadow::new_token(state.token);
        let n = self.names.clone();
        // SAFETY: db is the connection owning this table.
        unsafe {
            shadow::set_info_i64(self.db, &n, "rows", rows as i64)?;
            shadow::set_info_i64(self.db, &n, "token", token)?;
            exec(self.db, &format!("DELETE FROM {}", n.q(LOG)))?;
        }
        self.log_ids(&bad)?;
        if let Some(c) = self.cache.as_mut() {
            c.token = token;
        }
        if let Some((t, _, _)) = self.ivf.as_mut().and_then(|ic| ic.lists.as_mut()) {
            *t = token;
        }
        if let Some(r) = self.rowstore.as_mut() {
            r.token = token;
        }
        // An untrained IVF table trains once it holds enough rows.
        if self.opts.index == IndexKind::Ivf && !trained && rows >= self.train_min(rows) {
            self.train(rows, token)?;
        }
        Ok(())
    }

    /// Current base rows of `ids`; rows holding something other than a
    /// vector of the right size go to `bad` (they stay in the log, and a
    /// query fails naming them only if its filters admit them).
    fn fetch_rows(&mut self, ids: &[i64], bad: &mut Vec<i64>) -> Result<Fetched, String> {
        let mut out = Vec::with_capacity(ids.len());
        self.base.fetch_lenient(ids, &mut |id, v| {
            match v {
                Ok(v) => out.push((id, v.map(<[u8]>::to_vec))),
                Err(_) => bad.push(id),
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn apply_flat_batch(
        &mut self,
        ids: &[i64],
        rows: usize,
        bad: &mut Vec<i64>,
    ) -> Result<usize, SqlError> {
        let current = self.fetch_rows(ids, bad)?;
        // SAFETY: db is the connection owning this table.
        let pos = unsafe { flat::positions(self.db, &self.names, ids) }?;
        let layout = self.layout;
        let (kern, elem) = (self.kern, self.layout.elem);
        let norm = |row: &[u8]| {
            if layout.norms {
                row_norm(&kern, elem, row)
            } else {
                0.0
            }
        };
        // SAFETY: as above; the caller holds the transaction.
        let mut w = unsafe { Writer::new(self.db, &self.names, layout, rows, self.cache.as_mut()) };
        let mut removes = Vec::new();
        let mut adds = Vec::new();
        for (id, v) in &current {
            match (pos.get(id), v) {
                (Some(&p), Some(row)) => w.update(p as usize, *id, row, norm(row))?,
                (Some(&p), None) => removes.push((p as usize, *id)),
                (None, Some(row)) => adds.push((*id, row)),
                (None, None) => {}
            }
        }
        removes.sort_unstable_by(|a, b| b.cmp(a));
        for (p, id) in removes {
            w.remove(p, id)?;
        }
        for (id, row) in adds {
            w.push(id, row, norm(row))?;
        }
        w.finish()
    }

    // ---- cache ------------------------------------------------------------

    fn cache_enabled(&self) -> bool {
        self.conn
            .cache_override(&table_key(&self.names.schema, &self.names.vtab))
            .unwrap_or(self.opts.cache)
    }

    /// Whether the cache holds rows in compact form: f32 tables unless
    /// `cache=full` (see `source/screen.rs`).
    fn cache_compact(&self) -> bool {
        self.layout.elem == ElemType::F32 && !self.opts.cache_full
    }

    fn cache_valid(&self, s: &State) -> bool {
        self.cache.as_ref().is_some_and(|c| {
            c.token == s.token
                && c.rows == s.rows
                && c.layout() == self.layout
                && c.is_compact() == self.cache_compact()
        })
    }

    fn set_cache_stats(&self) {
        let b = self.cache.as_ref().map_or(0, Cache::bytes)
            + self
                .ivf
                .as_ref()
                .and_then(|ic| ic.lists.as_ref())
                .map_or(0, |l| l.2)
            + self.rowstore.as_ref().map_or(0, RowStore::bytes);
        self.stats.cache_bytes.store(b, Ordering::Relaxed);
    }

    // ---- flat scan --------------------------------------------------------------

    /// Scores every stored row admitted by `admit` into `outs`. Returns
    /// `Some(gone)` when the answer came from base rows (a compact cache's
    /// candidates, re-scored): `gone` lists candidates whose base row no
    /// longer exists (the caller excludes them and searches again).
    /// `None`: the rows came from stored data and are checked by the caller.
    fn scan_flat(
        &mut self,
        s: &State,
        req: &Request<'_>,
        admit: &Admit<'_>,
        outs: &mut [Collector],
    ) -> Result<Option<Vec<i64>>, String> {
        let metric = req.metric;
        let threads = resolve_threads(req.threads);
        if !self.cache_enabled() {
            self.cache = None;
            self.set_cache_stats();
            self.stats.cache_used.store(false, Ordering::Relaxed);
            return self.stream_flat(s, req, admit, outs).map(|()| None);
        }
        if !self.cache_valid(s) && self.cache.is_none() && self.scans == 0 {
            // The first query of a connection streams: a connection used
            // once never pays for the cache (filling it means first
            // touches of fresh memory, several times the cost of the
            // scan); the next query fills it.
            self.scans += 1;
            self.stats.cache_used.store(false, Ordering::Relaxed);
            return self.stream_flat(s, req, admit, outs).map(|()| None);
        }
        self.scans += 1;
        if !self.cache_valid(s) {
            // Load and score in one pass: each chunk is read once, scored
            // while hot (the stored rows themselves, exact) and copied into
            // the cache (reusing a stale cache's buffers).
            let mut pool = self.cache.take().map(Cache::recycle).unwrap_or_default();
            pool.reverse();
            let compact = self.cache_compact();
            let mut cache = if compact {
                Cache::new_compact(self.layout, s.token, self.kern)
            } else {
                Cache::new(self.layout, s.token)
            };
            if s.rows > 0 {
                // SAFETY: db is the connection owning this table.
                let mut r = unsafe { ChunkReader::new(self.db, &self.names, self.layout, 0) }?;
                let mut buf = Vec::new();
                for c in 0..self.layout.chunks(s.rows) {
                    let used = self.layout.used(c, s.rows);
                    let b = if compact {
                        let b = r.read(&self.names, c as i64, used)?;
                        cache.append_compact(b, pool.pop());
                        b
                    } else {
                        flat::load_chunk(&mut r, &self.names, &mut cache, c, used, pool.pop())?;
                        cache.block(c)
                    };
                    score::scan_block(&self.kern, metric, req.queries, b, admit, outs, &mut buf)?;
                }
            }
            self.cache = Some(cache);
            self.stats.cache_loads.fetch_add(1, Ordering::Relaxed);
            self.stats.cache_used.store(true, Ordering::Relaxed);
            self.set_cache_stats();
            return Ok(None);
        }
        self.stats.cache_used.store(true, Ordering::Relaxed);
        self.set_cache_stats();
        let cache = self.cache.as_ref().expect("just loaded");
        if cache.is_compact() {
            if let Some(gone) = self.screen_flat(s, req, admit, outs, threads)? {
                return Ok(Some(gone));
            }
            // Not screenable (no k, a zero query, too many candidates):
            // the stored f32 rows, streamed.
            return self.stream_flat(s, req, admit, outs).map(|()| None);
        }
        let blocks = cache.blocks();
        score::scan_parallel(
            &self.kern,
            metric,
            req.queries,
            &blocks,
            admit,
            outs,
            threads,
        )
        .map(|()| None)
    }

    /// Answers from a compact cache: screens every cached row, then scores
    /// the candidates from their base rows (see `source/screen.rs`).
    /// `None` when the request cannot be screened.
    fn screen_flat(
        &mut self,
        s: &State,
        req: &Request<'_>,
        admit: &Admit<'_>,
        outs: &mut [Collector],
        threads: usize,
    ) -> Result<Option<Vec<i64>>, String> {
        // Without k only a distance filter bounds the candidates; with
        // neither, every row is wanted: read them all.
        let k = match req.n {
            Some(k) => k,
            None if req.dist.is_active() => usize::MAX,
            None => return Ok(None),
        };
        let mut qs = Vec::with_capacity(req.queries.len());
        for q in req.queries {
            let Vector::F32(v) = q else { return Ok(None) };
            let Some(p) = screen::Query::new(&self.kern, req.metric, v) else {
                return Ok(None);
            };
            qs.push(p);
        }
        let mut states: Vec<Screen> = qs.iter().map(|_| Screen::new(k)).collect();
        {
            let cache = self.cache.as_ref().expect("compact cache");
            let blocks = cache.screen_blocks();
            screen::scan_parallel(
                &self.kern,
                &qs,
                &blocks,
                admit,
                req.dist,
                &mut states,
                threads,
            )?;
        }
        // Each candidate costs a point lookup in the base table; past about
        // an eighth of the rows, reading every stored row is cheaper.
        let limit = s.rows / 8 + 256;
        let seen: Vec<u64> = states.iter().map(Screen::seen).collect();
        let cands: Vec<Vec<(f64, i64)>> = states.into_iter().map(Screen::finish).collect();
        if cands.iter().any(|c| c.len() > limit) {
            return Ok(None);
        }
        let mut gone = Vec::new();
        for (qi, (c, out)) in cands.iter().zip(outs.iter_mut()).enumerate() {
            out.add_scanned(seen[qi]);
            self.rescore(req, qi, k, c, out, &mut gone)?;
        }
        Ok(Some(gone))
    }

    /// Scores screening candidates of query `qi` (ascending lower bounds)
    /// from their base rows into `out`, until no candidate left can be
    /// among the `k` nearest. Candidates whose base row is gone are added
    /// to `gone`.
    fn rescore(
        &mut self,
        req: &Request<'_>,
        qi: usize,
        k: usize,
        cands: &[(f64, i64)],
        out: &mut Collector,
        gone: &mut Vec<i64>,
    ) -> Result<(), String> {
        let (kern, metric, elem) = (self.kern, req.metric, self.layout.elem);
        let q = std::slice::from_ref(&req.queries[qi]);
        // The k nearest so far (no k: every candidate is scored).
        let mut best = kernels::TopK::new(k.clamp(1, cands.len().max(1))).expect("k >= 1");
        let bounded = k <= cands.len();
        let mut ids = Vec::with_capacity(32);
        let mut d = [0f32];
        let mut at = 0;
        while at < cands.len() {
            if bounded && best.threshold().is_some_and(|t| cands[at].0 > f64::from(t)) {
                break;
            }
            // The first batch is usually the answer.
            let step = if at == 0 { k.saturating_add(4) } else { 32 };
            let end = at.saturating_add(step).min(cands.len());
            ids.clear();
            ids.extend(cands[at..end].iter().map(|c| c.1));
            self.base.fetch(&ids, &mut |id, v| {
                let Some(row) = v else {
                    gone.push(id);
                    return Ok(());
                };
                score::row_distances(&kern, metric, elem, q, row, &mut d)?;
                if req.dist.pass(d[0]) {
                    best.push(id, d[0]);
                }
                out.push(id, d[0]);
                Ok(())
            })?;
            at = end;
        }
        Ok(())
    }

    /// Scans the chunks one at a time through one reused buffer.
    fn stream_flat(
        &mut self,
        s: &State,
        req: &Request<'_>,
        admit: &Admit<'_>,
        outs: &mut [Collector],
    ) -> Result<(), String> {
        if s.rows == 0 {
            return Ok(());
        }
        // SAFETY: db is the connection owning this table.
        let mut r = unsafe { ChunkReader::new(self.db, &self.names, self.layout, 0) }?;
        let mut buf = Vec::new();
        for c in 0..self.layout.chunks(s.rows) {
            let used = self.layout.used(c, s.rows);
            let b = r.read(&self.names, c as i64, used)?;
            score::scan_block(
                &self.kern,
                req.metric,
                req.queries,
                b,
                admit,
                outs,
                &mut buf,
            )?;
        }
        Ok(())
    }

    /// Scores rows read from the base table (pending changes, small rowid
    /// sets) into `outs`.
    fn score_base_rows(
        &mut self,
        ids: &[i64],
        req: &Request<'_>,
        outs: &mut [Collector],
    ) -> Result<(), String> {
        let (kern, metric, queries) = (self.kern, req.metric, req.queries);
        let elem = self.layout.elem;
        let mut d = vec![0f32; queries.len()];
        self.base.fetch(ids, &mut |id, v| {
            let Some(row) = v else { return Ok(()) };
            score::row_distances(&kern, metric, elem, queries, row, &mut d)?;
            for (&d, out) in d.iter().zip(outs.iter_mut()) {
                out.push(id, d);
            }
            Ok(())
        })
    }

    // ---- IVF --------------------------------------------------------------

    fn train_min(&self, rows: usize) -> usize {
        let p = self.ivf_params(rows);
        if let Some(t) = self.opts.ivf.train_min {
            // Never below what training accepts (PQ needs 256 rows).
            return t.max(p.min_training_vectors());
        }
        // Enough rows for the lists to be meaningful (k-means wants ~39
        // points per centroid), and never fewer than 1000.
        (p.lists * 39).max(p.min_training_vectors()).max(1000)
    }

    fn ivf_params(&self, rows: usize) -> ivf::IvfParams {
        let mut p = ivf::IvfParams::new(self.opts.dim, self.opts.metric, rows);
        if let Some(l) = self.opts.ivf.lists {
            p.lists = l;
        }
        if let Some(q) = self.opts.ivf.quantizer {
            p.quantizer = q;
        }
        if let Some(m) = self.opts.ivf.pq_m {
            p.pq_m = m;
        }
        p
    }

    /// Rows of the flat store as f32 (row-major), for training and encoding.
    fn to_f32(elem: ElemType, rows: &[u8], dim: usize) -> Vec<f32> {
        match elem {
            ElemType::F32 => rows
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            ElemType::F16 => rows
                .chunks_exact(2)
                .map(|c| kernels::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            ElemType::Int8 => {
                debug_assert_eq!(rows.len() % dim, 0);
                rows.iter().map(|&b| f32::from(b as i8)).collect()
            }
        }
    }

    /// Trains the IVF model on the flat store's rows and moves every row
    /// into the lists (the flat chunks are removed).
    fn train(&mut self, rows: usize, token: i64) -> Result<(), SqlError> {
        let p = self.ivf_params(rows);
        p.validate()
            .map_err(|e| SqlError::from(format!("pocketvec: {}: {e}", self.label())))?;
        let dim = self.opts.dim;
        let rb = self.layout.row_bytes();
        let elem = self.layout.elem;
        // Read every stored row once: the sample for training, then the
        // encoding pass (chunk by chunk).
        let sample_n = p.train_sample_size().min(rows);
        let picks = ivf::sample_indices(rows, sample_n, p.seed);
        let mut sample = Vec::with_capacity(picks.len() * dim);
        {
            // SAFETY: db is the connection owning this table.
            let mut r = unsafe { ChunkReader::new(self.db, &self.names, self.layout, 0) }?;
            let mut pi = 0;
            for c in 0..self.layout.chunks(rows) {
                let used = self.layout.used(c, rows);
                let base = c * self.layout.cap;
                if pi >= picks.len() || picks[pi] >= base + used {
                    continue;
                }
                let b = r.read(&self.names, c as i64, used)?;
                while pi < picks.len() && picks[pi] < base + used {
                    let s = picks[pi] - base;
                    let v = Self::to_f32(elem, &b.rows[s * rb..(s + 1) * rb], dim);
                    if v.iter().all(|x| x.is_finite()) {
                        sample.extend_from_slice(&v);
                    }
                    pi += 1;
                }
            }
        }
        let threads = ivf::default_threads();
        let model = ivf::IvfModel::train(&p, &sample, threads).map_err(|e| {
            SqlError::from(format!("pocketvec: training {} failed: {e}", self.label()))
        })?;
        drop(sample);
        let layout = model.code_layout();
        let mut lists: Vec<Vec<ivf::ListChunk>> = vec![Vec::new(); model.lists()];
        let mut placed: Vec<(i64, u32, usize)> = Vec::with_capacity(rows);
        {
            // SAFETY: as above.
            let mut r = unsafe { ChunkReader::new(self.db, &self.names, self.layout, 0) }?;
            for c in 0..self.layout.chunks(rows) {
                let used = self.layout.used(c, rows);
                let b = r.read(&self.names, c as i64, used)?;
                let mut ids = Vec::with_capacity(used);
                let mut data = Vec::with_capacity(used * dim);
                for (i, &id) in b.ids.iter().enumerate() {
                    let v = Self::to_f32(elem, &b.rows[i * rb..(i + 1) * rb], dim);
                    // Non-finite vectors cannot be encoded; they stay out of
                    // the lists (their distance is NaN, which sorts last).
                    if v.iter().all(|x| x.is_finite()) {
                        ids.push(id);
                        data.extend_from_slice(&v);
                    }
                }
                let enc = model
                    .encode_batch(&data, threads)
                    .map_err(|e| SqlError::from(format!("pocketvec: {e}")))?;
                for (i, &id) in ids.iter().enumerate() {
                    let (l, code, aux) = enc.get(i);
                    let chunks = &mut lists[l as usize];
                    if chunks
                        .last()
                        .is_none_or(|c| c.len() >= ivf::DEFAULT_CHUNK_ROWS)
                    {
                        chunks.push(ivf::ListChunk::new(layout));
                    }
                    let seq = chunks.len() - 1;
                    chunks[seq]
                        .push(id, code, aux)
                        .map_err(|e| SqlError::from(format!("pocketvec: {e}")))?;
                    placed.push((id, l, seq));
                }
            }
        }
        let n = self.names.clone();
        let indexed = placed.len();
        // SAFETY: as above; inside the caller's transaction.
        unsafe {
            exec(
                self.db,
                &format!(
                    "DELETE FROM {}; DELETE FROM {}; DELETE FROM {};",
                    n.q("lists"),
                    n.q("map"),
                    n.q("chunks")
                ),
            )?;
            let mut ins = Stmt::prepare(
                self.db,
                &format!(
                    "INSERT INTO {}(id, list, data) VALUES (?1, ?2, ?3)",
                    n.q("lists")
                ),
                false,
            )?;
            for (l, chunks) in lists.iter().enumerate() {
                for (s, c) in chunks.iter().enumerate() {
                    ins.bind_i64(1, (l as i64) << LIST_SHIFT | s as i64)?;
                    ins.bind_i64(2, l as i64)?;
                    ins.bind_blob(3, &c.to_bytes())?;
                    ins.run()?;
                }
            }
            let mut map = Stmt::prepare(
                self.db,
                &format!("INSERT INTO {}(id, pos) VALUES (?1, ?2)", n.q("map")),
                false,
            )?;
            for (id, l, s) in placed {
                map.bind_i64(1, id)?;
                map.bind_i64(2, i64::from(l) << LIST_SHIFT | s as i64)?;
                map.run()?;
            }
            let mt = shadow::new_token(0);
            shadow::set_info_blob(self.db, &n, "model", &model.to_bytes())?;
            shadow::set_info_i64(self.db, &n, "model_token", mt)?;
            shadow::set_info_i64(self.db, &n, "trained", 1)?;
            shadow::set_info_i64(self.db, &n, "rows", indexed as i64)?;
            let t = shadow::new_token(token);
            shadow::set_info_i64(self.db, &n, "token", t)?;
            self.ivf = Some(IvfCache {
                model_token: mt,
                model: Arc::new(model),
                lists: None,
            });
        }
        self.cache = None;
        Ok(())
    }

    fn model(&mut self, s: &State) -> Result<Arc<ivf::IvfModel>, String> {
        if let Some(ic) = &self.ivf {
            if ic.model_token == s.model_token {
                return Ok(Arc::clone(&ic.model));
            }
        }
        // SAFETY: db is the connection owning this table.
        let bytes = unsafe { shadow::info_blob(self.db, &self.names, "model") }?
            .ok_or_else(|| flat::corrupt(&self.names, "the IVF model is missing"))?;
        let model = ivf::IvfModel::from_bytes(&bytes).map_err(|e| {
            flat::corrupt(&self.names, &format!("the IVF model is unreadable ({e})"))
        })?;
        if model.dim() != self.opts.dim || model.metric() != self.opts.metric {
            return Err(flat::corrupt(
                &self.names,
                "the IVF model does not match the table",
            ));
        }
        let model = Arc::new(model);
        self.ivf = Some(IvfCache {
            model_token: s.model_token,
            model: Arc::clone(&model),
            lists: None,
        });
        Ok(model)
    }

    /// Chunks of one list, read from the database: `(chunk id, bytes)`.
    fn read_list(&self, list: u32) -> Result<Vec<(i64, Vec<u8>)>, String> {
        let (lo, hi) = list_range(list);
        // SAFETY: db is the connection owning this table.
        let mut st = unsafe {
            Stmt::prepare(
                self.db,
                &format!(
                    "SELECT id, data FROM {} WHERE id BETWEEN ?1 AND ?2",
                    self.names.q("lists")
                ),
                false,
            )
        }?;
        st.bind_i64(1, lo)?;
        st.bind_i64(2, hi)?;
        let mut out = Vec::new();
        while st.step()? == Step::Row {
            out.push((st.column_i64(0), st.column_blob(1).to_vec()));
        }
        Ok(out)
    }

    /// Applies one batch of logged rowids to the IVF lists. Touched list
    /// chunks stay in `chunks` (and list tails in `tail`) across batches and
    /// are written once by [`Self::flush_ivf`].
    #[allow(clippy::too_many_arguments)]
    fn apply_ivf_batch(
        &mut self,
        ids: &[i64],
        rows: usize,
        model_token: i64,
        bad: &mut Vec<i64>,
        chunks: &mut HashMap<i64, ivf::ListChunk>,
        tail: &mut HashMap<u32, i64>,
    ) -> Result<usize, SqlError> {
        let s = State {
            model_token,
            ..State::default()
        };
        let model = self.model(&s)?;
        let layout = model.code_layout();
        let current = self.fetch_rows(ids, bad)?;
        if let Some(r) = self.rowstore.as_mut() {
            let (kern, elem, norms) = (self.kern, self.layout.elem, self.layout.norms);
            for (id, v) in &current {
                match v {
                    Some(row) => {
                        let nm = if norms {
                            row_norm(&kern, elem, row)
                        } else {
                            0.0
                        };
                        r.put(*id, row, nm);
                    }
                    None => r.remove(*id),
                }
            }
            for id in bad.iter() {
                r.remove(*id);
            }
        }
        // SAFETY: db is the connection owning this table.
        let pos = unsafe { flat::positions(self.db, &self.names, ids) }?;
        let mut rows = rows as i64;
        let load = |this: &Self,
                    chunks: &mut HashMap<i64, ivf::ListChunk>,
                    cid: i64|
         -> Result<(), SqlError> {
            if chunks.contains_key(&cid) {
                return Ok(());
            }
            // SAFETY: db is the connection owning this table.
            let mut st = unsafe {
                Stmt::prepare(
                    this.db,
                    &format!("SELECT data FROM {} WHERE id = ?1", this.names.q("lists")),
                    false,
                )
            }?;
            st.bind_i64(1, cid)?;
            let c = match st.step()? {
                Step::Row => {
                    ivf::ListChunk::from_bytes(st.column_blob(0), layout).map_err(|e| {
                        SqlError::from(flat::corrupt(
                            &this.names,
                            &format!("list chunk {cid}: {e}"),
                        ))
                    })?
                }
                Step::Done => ivf::ListChunk::new(layout),
            };
            chunks.insert(cid, c);
            Ok(())
        };
        let mut map_del = Vec::new();
        for (id, _) in &current {
            if let Some(&cid) = pos.get(id) {
                // A damaged map must not send the row to a list chunk that
                // does not hold it (or to a list the model does not have).
                if (cid >> LIST_SHIFT) as usize >= model.lists() {
                    return Err(SqlError::from(flat::corrupt(
                        &self.names,
                        &format!("the map entry of row {id} is wrong"),
                    )));
                }
                load(self, chunks, cid)?;
                if !chunks.get_mut(&cid).is_some_and(|c| c.remove(*id)) {
                    return Err(SqlError::from(flat::corrupt(
                        &self.names,
                        &format!("the map entry of row {id} is wrong"),
                    )));
                }
                rows -= 1;
                map_del.push(*id);
            }
        }
        let dim = self.opts.dim;
        let mut add_ids = Vec::new();
        let mut data = Vec::new();
        for (id, v) in &current {
            if let Some(row) = v {
                let f = Self::to_f32(self.layout.elem, row, dim);
                if f.iter().all(|x| x.is_finite()) {
                    add_ids.push(*id);
                    data.extend_from_slice(&f);
                }
            }
        }
        let mut map_put = Vec::new();
        if !add_ids.is_empty() {
            let enc = model
                .encode_batch(&data, ivf::default_threads())
                .map_err(|e| SqlError::from(format!("pocketvec: {e}")))?;
            // The last chunk of each list receives its new rows.
            for (i, &id) in add_ids.iter().enumerate() {
                let (l, code, aux) = enc.get(i);
                let cid = match tail.get(&l) {
                    Some(&c) => c,
                    None => {
                        let c = self.last_chunk(l)?.unwrap_or(list_range(l).0);
                        tail.insert(l, c);
                        c
                    }
                };
                load(self, chunks, cid)?;
                let mut cid = cid;
                if chunks[&cid].len() >= ivf::DEFAULT_CHUNK_ROWS {
                    cid += 1;
                    if cid > list_range(l).1 {
                        return Err(SqlError::from(format!(
                            "pocketvec: list {l} of {} is full",
                            self.label()
                        )));
                    }
                    tail.insert(l, cid);
                    load(self, chunks, cid)?;
                }
                chunks
                    .get_mut(&cid)
                    .expect("loaded")
                    .push(id, code, aux)
                    .map_err(|e| SqlError::from(format!("pocketvec: {e}")))?;
                map_put.push((id, cid));
                rows += 1;
            }
        }
        let n = &self.names;
        // SAFETY: as above.
        unsafe {
            let mut md = Stmt::prepare(
                self.db,
                &format!("DELETE FROM {} WHERE id = ?1", n.q("map")),
                false,
            )?;
            for id in map_del {
                md.bind_i64(1, id)?;
                md.run()?;
            }
            let mut mp = Stmt::prepare(
                self.db,
                &format!(
                    "INSERT OR REPLACE INTO {}(id, pos) VALUES (?1, ?2)",
                    n.q("map")
                ),
                false,
            )?;
            for (id, cid) in map_put {
                mp.bind_i64(1, id)?;
                mp.bind_i64(2, cid)?;
                mp.run()?;
            }
        }
        Ok(usize::try_from(rows).unwrap_or(0))
    }

    /// Writes the list chunks an apply touched (deleting emptied ones) and
    /// patches the cached lists.
    fn flush_ivf(&mut self, chunks: HashMap<i64, ivf::ListChunk>) -> Result<(), SqlError> {
        let n = &self.names;
        // SAFETY: db is the connection owning this table; in the caller's
        // transaction.
        unsafe {
            let mut put = Stmt::prepare(
                self.db,
                &format!(
                    "INSERT OR REPLACE INTO {}(id, list, data) VALUES (?1, ?2, ?3)",
                    n.q("lists")
                ),
                false,
            )?;
            let mut del = Stmt::prepare(
                self.db,
                &format!("DELETE FROM {} WHERE id = ?1", n.q("lists")),
                false,
            )?;
            for (cid, c) in &chunks {
                if c.is_empty() {
                    del.bind_i64(1, *cid)?;
                    del.run()?;
                } else {
                    put.bind_i64(1, *cid)?;
                    put.bind_i64(2, cid >> LIST_SHIFT)?;
                    put.bind_blob(3, &c.to_bytes())?;
                    put.run()?;
                }
            }
        }
        if let Some((_, lists, bytes)) = self.ivf.as_mut().and_then(|ic| ic.lists.as_mut()) {
            for (cid, c) in &chunks {
                let l = (cid >> LIST_SHIFT) as usize;
                let s = (cid & ((1 << LIST_SHIFT) - 1)) as usize;
                let list = &mut lists[l];
                if list.len() <= s {
                    list.resize(s + 1, Vec::new());
                }
                *bytes -= list[s].capacity();
                list[s] = if c.is_empty() {
                    Vec::new()
                } else {
                    c.to_bytes()
                };
                *bytes += list[s].capacity();
            }
        }
        Ok(())
    }

    fn last_chunk(&self, list: u32) -> Result<Option<i64>, SqlError> {
        let (lo, hi) = list_range(list);
        // SAFETY: db is the connection owning this table.
        let mut st = unsafe {
            Stmt::prepare(
                self.db,
                &format!(
                    "SELECT max(id) FROM {} WHERE id BETWEEN ?1 AND ?2",
                    self.names.q("lists")
                ),
                false,
            )
        }?;
        st.bind_i64(1, lo)?;
        st.bind_i64(2, hi)?;
        st.step()?;
        Ok((st.column_type(0) != ValueType::Null).then(|| st.column_i64(0)))
    }

    /// Every list's chunks, from the cache (loaded if needed) or `None`
    /// when the cache is off.
    fn cached_lists(&mut self, s: &State, lists: usize) -> Result<bool, String> {
        if !self.cache_enabled() {
            if let Some(ic) = self.ivf.as_mut() {
                ic.lists = None;
            }
            self.stats.cache_used.store(false, Ordering::Relaxed);
            self.set_cache_stats();
            return Ok(false);
        }
        let valid = self
            .ivf
            .as_ref()
            .and_then(|ic| ic.lists.as_ref())
            .is_some_and(|(t, _, _)| *t == s.token);
        if !valid {
            let mut all: Vec<Vec<Vec<u8>>> = vec![Vec::new(); lists];
            let mut bytes = 0;
            // SAFETY: db is the connection owning this table.
            let mut st = unsafe {
                Stmt::prepare(
                    self.db,
                    &format!("SELECT id, data FROM {}", self.names.q("lists")),
                    false,
                )
            }?;
            while st.step()? == Step::Row {
                let cid = st.column_i64(0);
                let (l, q) = (
                    (cid >> LIST_SHIFT) as usize,
                    (cid & ((1 << LIST_SHIFT) - 1)) as usize,
                );
                if l >= lists {
                    return Err(flat::corrupt(
                        &self.names,
                        &format!("list chunk {cid} is out of range"),
                    ));
                }
                let v = st.column_blob(1).to_vec();
                bytes += v.capacity();
                let list = &mut all[l];
                if list.len() <= q {
                    list.resize(q + 1, Vec::new());
                }
                list[q] = v;
            }
            if let Some(ic) = self.ivf.as_mut() {
                ic.lists = Some((s.token, all, bytes));
            }
            self.stats.cache_loads.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.cache_used.store(true, Ordering::Relaxed);
        self.set_cache_stats();
        Ok(true)
    }

    /// Keeps the RAM copy of the base vectors current: dropped when the
    /// cache is off or the token moved; filled (one pass over the base
    /// table) by a query that sees the same token as the one before it.
    fn ivf_rowstore(&mut self, s: &State) -> Result<(), String> {
        if !self.cache_enabled() {
            self.rowstore = None;
            return Ok(());
        }
        if self.rowstore.as_ref().is_some_and(|r| r.token == s.token) {
            return Ok(());
        }
        // Fill only once the data has been stable for two queries in a row:
        // a table written between most queries (from other connections)
        // re-ranks from the base table instead of rereading it every time.
        let stable = self.ivf_last_token == Some(s.token);
        self.ivf_last_token = Some(s.token);
        if !stable {
            self.rowstore = None;
            self.set_cache_stats();
            return Ok(());
        }
        let (kern, elem, norms) = (self.kern, self.layout.elem, self.layout.norms);
        let mut r = self
            .rowstore
            .take()
            .map(|mut old| {
                // Reuse the buffers (no fresh page faults).
                old.at.clear();
                old.free.clear();
                old.rows.clear();
                old.norms.clear();
                old.token = s.token;
                old
            })
            .unwrap_or_else(|| RowStore::new(s.token, self.layout.row_bytes()));
        r.at.reserve(s.rows.min(1 << 24));
        self.base.for_each(&mut |id, row| {
            let nm = if norms {
                row_norm(&kern, elem, row)
            } else {
                0.0
            };
            r.put(id, row, nm);
            Ok(())
        })?;
        self.rowstore = Some(r);
        self.set_cache_stats();
        Ok(())
    }

    /// One IVF query: probe, scan, re-rank against the base table, widen
    /// until `n` rows pass the filters. Returns `None` when the caller should
    /// answer exactly instead (every list would be probed).
    #[allow(clippy::too_many_arguments)]
    fn ivf_query(
        &mut self,
        s: &State,
        q: &Vector,
        req: &Request<'_>,
        admit: &Admit<'_>,
        n: usize,
        out: &mut Collector,
    ) -> Result<bool, String> {
        let model = self.model(s)?;
        let lists = model.lists();
        let mut nprobe = req
            .nprobe
            .or(self.opts.ivf.nprobe)
            .unwrap_or_else(|| model.default_nprobe())
            .max(1);
        if nprobe >= lists {
            return Ok(false);
        }
        let cached = self.cached_lists(s, lists)?;
        // The query as f32 (borrowed when it already is).
        let mut qbuf = std::mem::take(&mut self.ivf_qbuf);
        let qf: &[f32] = match q {
            Vector::F32(v) => v,
            _ => {
                qbuf.clear();
                qbuf.extend(q.to_f32());
                &qbuf
            }
        };
        // Re-rank depth from the k asked for, not from k plus the slack.
        let rerank = self
            .opts
            .ivf
            .rerank
            .unwrap_or_else(|| ivf::default_rerank(req.n.unwrap_or(n).min(n)));
        let (kern, metric, elem) = (self.kern, req.metric, self.layout.elem);
        let mut hits = std::mem::take(&mut self.ivf_hits);
        let r = loop {
            let params = ivf::SearchParams {
                k: n,
                nprobe,
                rerank: rerank.max(n),
            };
            let scratch = self.ivf_scratch.take().unwrap_or_default();
            let mut searcher = model
                .searcher_with(qf, &params, scratch)
                .map_err(|e| format!("pocketvec: query for {}: {e}", self.label()))?;
            let mut keep = |id: i64| admit.admits(id);
            if cached {
                let (_, all, _) = self
                    .ivf
                    .as_ref()
                    .and_then(|ic| ic.lists.as_ref())
                    .expect("cached");
                // Every probed list at once: the searcher prefetches the
                // lists coming next and scans the code blocks of several
                // lists together.
                searcher
                    .scan_probed(|l| &all[l as usize][..], &mut keep)
                    .map_err(|e| flat::corrupt(&self.names, &e.to_string()))?;
            } else {
                for i in 0..searcher.probe_lists().len() {
                    let l = searcher.probe_lists()[i];
                    for (_, b) in self.read_list(l)? {
                        searcher
                            .scan_chunk_filtered(l, &b, &mut keep)
                            .map_err(|e| flat::corrupt(&self.names, &e.to_string()))?;
                    }
                }
            }
            let candidates = searcher.candidates();
            let base = &mut self.base;
            let store = self.rowstore.as_ref();
            let rr = &mut self.ivf_rerank;
            let res = searcher.finish_rerank_into(
                |ids: &[i64], dists: &mut [Option<f32>]| {
                    let mut d = [0f32];
                    // From the RAM copy when there is one, each row scored
                    // in place. Rows it lacks come from the base table.
                    rr.missing.clear();
                    if let Some(r) = store {
                        // All lookups first, each row's first lines and
                        // norm requested at once: the candidates' cache
                        // misses (hash slot, row, norm) overlap instead of
                        // being paid one candidate after another (the
                        // hardware prefetcher streams the rest of a row).
                        rr.slots.clear();
                        for &id in ids {
                            let at = r.slot(id);
                            if let Some(at) = at {
                                let row = r.row(at);
                                for o in (0..row.len().min(256)).step_by(64) {
                                    prefetch_line(row.as_ptr().wrapping_add(o));
                                }
                                prefetch_line((&r.norms[at] as *const f32).cast());
                            }
                            rr.slots.push(at);
                        }
                        // Then the rest of each row, three candidates
                        // ahead of the one being scored (~2 us less per
                        // query than leaving it to the hardware prefetcher,
                        // alternating runs on the real data).
                        const AHEAD: usize = 3;
                        for (i, &id) in ids.iter().enumerate() {
                            if let Some(Some(ahead)) = rr.slots.get(i + AHEAD) {
                                let row = r.row(*ahead);
                                for o in (256..row.len()).step_by(64) {
                                    prefetch_line(row.as_ptr().wrapping_add(o));
                                }
                            }
                            match rr.slots[i] {
                                Some(at) => {
                                    score_block(
                                        &kern,
                                        metric,
                                        q,
                                        r.row(at),
                                        Some(&[r.norms[at]]),
                                        &mut d,
                                    )?;
                                    dists[i] = Some(d[0]);
                                }
                                None => rr.missing.push(id),
                            }
                        }
                    } else {
                        rr.missing.extend_from_slice(ids);
                    }
                    if rr.missing.is_empty() {
                        return Ok(());
                    }
                    base.fetch(&rr.missing, &mut |id, v| {
                        if let Some(row) = v {
                            score::row_distances(
                                &kern,
                                metric,
                                elem,
                                std::slice::from_ref(q),
                                row,
                                &mut d,
                            )?;
                            // ids are ascending.
                            if let Ok(i) = ids.binary_search(&id) {
                                dists[i] = Some(d[0]);
                            }
                        }
                        Ok(())
                    })
                },
                &mut hits,
            );
            self.ivf_scratch = Some(searcher.into_scratch());
            res?;
            let mut trial = out.empty_like();
            for &(id, d) in &hits {
                trial.push(id, d);
            }
            // Enough rows passed the filters: done. Otherwise probe twice as
            // many lists; once that would be every list, the exact answer
            // is cheaper.
            if trial.len() >= n || candidates == 0 && admit.all() {
                out.merge(trial);
                break Ok(true);
            }
            nprobe = nprobe.saturating_mul(2);
            if nprobe >= lists {
                break Ok(false);
            }
        };
        self.ivf_hits = hits;
        self.ivf_qbuf = qbuf;
        r
    }

    // ---- commands -------------------------------------------------------------

    /// Rebuilds the stored data from the base table (IVF: retrains).
    fn rebuild_data(&mut self) -> Result<(), String> {
        let n = self.names.clone();
        let old = self.read_state().map(|s| s.token).unwrap_or(0);
        // SAFETY: db is the connection owning this table.
        unsafe {
            exec(
                self.db,
                &format!(
                    "DELETE FROM {}; DELETE FROM {}; DELETE FROM {}; DELETE FROM {};",
                    n.q("chunks"),
                    n.q("map"),
                    n.q("lists"),
                    n.q(LOG)
                ),
            )?;
            shadow::set_info_i64(self.db, &n, "trained", 0)?;
            shadow::set_info_blob(self.db, &n, "model", &[])?;
        }
        self.cache = None;
        self.ivf = None;
        let layout = self.layout;
        let (kern, elem) = (self.kern, layout.elem);
        // SAFETY: as above.
        let mut w = unsafe { Writer::new(self.db, &n, layout, 0, None) };
        let mut err = None;
        self.base.for_each(&mut |id, row| {
            let norm = if layout.norms {
                row_norm(&kern, elem, row)
            } else {
                0.0
            };
            w.push(id, row, norm).map_err(|e| {
                let m = e.msg.clone();
                err = Some(e);
                m
            })?;
            Ok(())
        })?;
        let rows = w.finish()?;
        let token = shadow::new_token(old);
        // SAFETY: as above.
        unsafe {
            shadow::set_info_i64(self.db, &n, "rows", rows as i64)?;
            shadow::set_info_i64(self.db, &n, "token", token)?;
        }
        if self.opts.index == IndexKind::Ivf && rows >= self.train_min(rows) {
            self.train(rows, token)?;
        }
        Ok(())
    }

    /// `INSERT INTO ann(ann) VALUES('rebuild')`: triggers re-created (on
    /// the base table's current name), data rebuilt, IVF retrained.
    pub fn cmd_rebuild(&mut self) -> Result<(), String> {
        // Shadow tables dropped by hand are created again (empty).
        self.state_stmt = None;
        // SAFETY: db is the connection owning this table.
        unsafe { exec(self.db, &shadow::create_missing_tables_sql(&self.names)) }?;
        let s = self.read_state()?;
        // Only a format from the future is kept (a newer pocketvec's data);
        // a damaged one is rewritten.
        if s.format.is_some_and(|f| f > FORMAT_VERSION) {
            return Err(format!(
                "pocketvec: table {} uses on-disk format {}; DROP TABLE it and create it again",
                self.label(),
                s.format.unwrap_or(0)
            ));
        }
        if let Some(b) = s.trigger_base.as_ref().or(s.base.as_ref()) {
            let b = b.clone();
            self.base.set_table(&b);
        }
        self.base.reset();
        self.base.check()?;
        // SAFETY: db is the connection owning this table.
        let key = unsafe { integer_key(self.db, &self.names.schema, self.base.table()) }?;
        // SAFETY: as above.
        unsafe {
            exec(self.db, &shadow::drop_triggers_sql(&self.names))?;
            exec(
                self.db,
                &shadow::create_triggers_sql(
                    &self.names,
                    self.base.table(),
                    &key,
                    &self.opts.column,
                ),
            )?;
            shadow::set_info_text(self.db, &self.names, "key", &key)?;
            shadow::set_info_text(self.db, &self.names, "base", self.base.table())?;
            shadow::set_info_i64(self.db, &self.names, "format", FORMAT_VERSION)?;
            shadow::set_info_i64(self.db, &self.names, "model_token", 0)?;
            shadow::set_info_i64(self.db, &self.names, "chunk_rows", self.layout.cap as i64)?;
            shadow::set_info_text(self.db, &self.names, "index", self.opts.index.name())?;
        }
        self.state_stmt = None;
        self.rebuild_data()
    }

    /// `INSERT INTO ann(ann) VALUES('optimize')`: logs stored rows whose
    /// base row is gone without a trigger (REPLACE through a UNIQUE
    /// conflict), then applies the change log.
    pub fn cmd_optimize(&mut self) -> Result<(), String> {
        let s = self.sync(false)?;
        self.log_gone().map_err(String::from)?;
        let state = self.read_state()?;
        if state.pending || s.state.pending {
            self.apply(&state).map_err(String::from)?;
        }
        Ok(())
    }

    /// `INSERT INTO ann(ann) VALUES('integrity-check')`: the stored data
    /// must equal the base table row for row (after applying the log).
    pub fn cmd_integrity_check(&mut self) -> Result<(), String> {
        self.cmd_optimize()?;
        let s = self.read_state()?;
        let names = self.names.clone();
        let bad = |what: String| flat::corrupt(&names, &what);
        // Every stored entry: id → position (flat) or list chunk (IVF).
        let mut stored: HashMap<i64, (i64, Option<Vec<u8>>, f32)> = HashMap::new();
        // IVF: every entry's code and side values, checked against the row.
        let mut codes: HashMap<i64, (Vec<u8>, Vec<f32>)> = HashMap::new();
        let ivf_model = if s.trained {
            Some(self.model(&s)?)
        } else {
            None
        };
        if let Some(model) = &ivf_model {
            let layout = model.code_layout();
            // SAFETY: db is the connection owning this table.
            let mut st = unsafe {
                Stmt::prepare(
                    self.db,
                    &format!("SELECT id, data FROM {}", self.names.q("lists")),
                    false,
                )
            }?;
            while st.step()? == Step::Row {
                let cid = st.column_i64(0);
                let c = ivf::ListChunkRef::parse(st.column_blob(1), layout)
                    .map_err(|e| bad(format!("list chunk {cid}: {e}")))?;
                if (cid >> LIST_SHIFT) as usize >= model.lists() {
                    return Err(bad(format!("list chunk {cid} is out of range")));
                }
                for (i, id) in c.ids().enumerate() {
                    if stored.insert(id, (cid, None, 0.0)).is_some() {
                        return Err(bad(format!("row {id} is stored twice")));
                    }
                    let aux = (0..layout.aux).map(|k| c.aux(i, k)).collect();
                    codes.insert(id, (c.code(i), aux));
                }
            }
        } else if s.rows > 0 {
            // SAFETY: as above.
            let mut r = unsafe { ChunkReader::new(self.db, &self.names, self.layout, 0) }?;
            let rb = self.layout.row_bytes();
            for c in 0..self.layout.chunks(s.rows) {
                let used = self.layout.used(c, s.rows);
                let b = r.read(&self.names, c as i64, used)?;
                for (i, &id) in b.ids.iter().enumerate() {
                    let norm = b.norms.get(i).copied().unwrap_or(0.0);
                    let pos = (c * self.layout.cap + i) as i64;
                    let row = b.rows[i * rb..(i + 1) * rb].to_vec();
                    if stored.insert(id, (pos, Some(row), norm)).is_some() {
                        return Err(bad(format!("row {id} is stored twice")));
                    }
                }
            }
            // SAFETY: as above.
            let chunks = unsafe {
                count(
                    self.db,
                    &format!("SELECT count(*) FROM {}", self.names.q("chunks")),
                )
            }?;
            if chunks != self.layout.chunks(s.rows) as i64 {
                return Err(bad(format!(
                    "{chunks} chunks stored for {} rows of {} per chunk",
                    s.rows, self.layout.cap
                )));
            }
        }
        if stored.len() != s.rows {
            return Err(bad(format!(
                "{} rows recorded, {} stored",
                s.rows,
                stored.len()
            )));
        }
        // The map agrees with the stored positions.
        // SAFETY: as above.
        let mut st = unsafe {
            Stmt::prepare(
                self.db,
                &format!("SELECT id, pos FROM {}", self.names.q("map")),
                false,
            )
        }?;
        let mut mapped = 0usize;
        while st.step()? == Step::Row {
            let (id, pos) = (st.column_i64(0), st.column_i64(1));
            mapped += 1;
            match stored.get(&id) {
                Some((p, _, _)) if *p == pos && st.column_type(1) == ValueType::Integer => {}
                _ => return Err(bad(format!("the map entry of row {id} is wrong"))),
            }
        }
        if mapped != stored.len() {
            return Err(bad(format!(
                "{mapped} map entries for {} stored rows",
                stored.len()
            )));
        }
        // Every base row with a vector is stored, with the same bytes.
        let (kern, elem, norms) = (self.kern, self.layout.elem, self.layout.norms);
        let trained = s.trained;
        let mut seen = 0usize;
        let mut problem: Option<String> = None;
        self.base.for_each(&mut |id, row| {
            seen += 1;
            match stored.get(&id) {
                None => {
                    let finite = Self::to_f32(elem, row, row.len() / elem.size().max(1))
                        .iter()
                        .all(|x| x.is_finite());
                    if !trained || finite {
                        problem.get_or_insert(format!("row {id} of the base table is not indexed"));
                    }
                }
                Some((_, Some(v), n)) => {
                    if v.as_slice() != row {
                        problem
                            .get_or_insert(format!("row {id} is stored with a different vector"));
                    } else if norms && n.to_bits() != row_norm(&kern, elem, row).to_bits() {
                        problem.get_or_insert(format!("row {id} has a wrong stored norm"));
                    }
                }
                Some((cid, None, _)) => {
                    // The stored code must reconstruct the row about as well
                    // as encoding it again does (not bit-equal: another
                    // machine's kernels may round differently).
                    if let (Some(m), Some((code, aux))) = (&ivf_model, codes.get(&id)) {
                        let v = Self::to_f32(elem, row, m.dim());
                        if let Err(what) =
                            Self::check_code(m, &v, (*cid >> LIST_SHIFT) as u32, code, aux)
                        {
                            problem.get_or_insert(format!("row {id} {what}"));
                        }
                    }
                }
            }
            Ok(())
        })?;
        if let Some(p) = problem {
            return Err(bad(p));
        }
        let skipped = if trained {
            0
        } else {
            seen.saturating_sub(stored.len())
        };
        if stored.len() + skipped != seen && !trained || trained && stored.len() > seen {
            return Err(bad(format!(
                "{} rows stored, {seen} base rows with vectors",
                stored.len()
            )));
        }
        Ok(())
    }

    /// Checks one IVF entry: its code (in list `list`) decodes to about as
    /// near a vector to `v` as a fresh encoding does.
    fn check_code(
        m: &ivf::IvfModel,
        v: &[f32],
        list: u32,
        code: &[u8],
        aux: &[f32],
    ) -> Result<(), &'static str> {
        if !v.iter().all(|x| x.is_finite()) {
            return Err("is stored but not finite in the base table");
        }
        let mut target: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
        if m.metric() == ivf::Metric::Cosine {
            let n = target.iter().map(|x| x * x).sum::<f64>().sqrt();
            if n > 0.0 {
                target.iter_mut().for_each(|x| *x /= n);
            }
        }
        let err = |d: &[f32]| -> f64 {
            d.iter()
                .zip(&target)
                .map(|(&a, &b)| (f64::from(a) - b).powi(2))
                .sum::<f64>()
        };
        let stored = m
            .decode(list, code, aux)
            .map_err(|_| "has an unreadable code")?;
        let fresh = m.encode(v).map_err(|_| "cannot be encoded")?;
        let again = m
            .decode(fresh.list, &fresh.code, &fresh.aux)
            .map_err(|_| "cannot be encoded")?;
        let (es, ef) = (err(&stored), err(&again));
        let scale = target.iter().map(|x| x * x).sum::<f64>().max(1e-30);
        if !es.is_finite() || es > ef * 1.5 + 1e-4 * scale {
            return Err("has a code that does not match its vector");
        }
        Ok(())
    }

    /// JSON for `pocketvec_info`.
    pub fn info_json(&mut self) -> Result<serde_json::Value, String> {
        let s = self.read_state()?;
        let n = &self.names;
        // SAFETY: db is the connection owning this table.
        let (pending, distinct, chunk_bytes, list_bytes, map_rows) = unsafe {
            (
                count(self.db, &format!("SELECT count(*) FROM {}", n.q(LOG)))?,
                count(
                    self.db,
                    &format!("SELECT count(DISTINCT id) FROM {}", n.q(LOG)),
                )?,
                count(
                    self.db,
                    &format!(
                        "SELECT coalesce(sum(length(data)), 0) FROM {}",
                        n.q("chunks")
                    ),
                )?,
                count(
                    self.db,
                    &format!(
                        "SELECT coalesce(sum(length(data)), 0) FROM {}",
                        n.q("lists")
                    ),
                )?,
                count(self.db, &format!("SELECT count(*) FROM {}", n.q("map")))?,
            )
        };
        let model_bytes = if s.trained {
            // SAFETY: as above.
            unsafe {
                count(
                    self.db,
                    &format!(
                        "SELECT coalesce(length(value), 0) FROM {} WHERE key = 'model'",
                        n.q("info")
                    ),
                )
            }?
        } else {
            0
        };
        let mut j = serde_json::json!({
            "table": n.vtab,
            "base_table": s.trigger_base.clone().unwrap_or_else(|| self.base.table().to_string()),
            "format": s.format,
            "index": self.opts.index.name(),
            "type": self.opts.elem_type.name(),
            "dim": self.opts.dim,
            "metric": crate::vtab::options::metric_name(self.opts.metric),
            "rows": s.rows,
            "pending_log": pending,
            "pending_rows": distinct,
            "trained": s.trained,
            "chunk_rows": self.layout.cap,
            "vector_bytes": s.rows * self.layout.row_bytes(),
            "chunk_bytes": chunk_bytes,
            "list_bytes": list_bytes,
            "model_bytes": model_bytes,
            "map_rows": map_rows,
            "index_bytes": chunk_bytes + list_bytes + model_bytes,
            "cache": self.cache_enabled(),
            "cache_form": if self.cache_compact() { "compact" } else { "full" },
            "cache_bytes": self.stats.cache_bytes.load(Ordering::Relaxed),
            "cache_loads": self.stats.cache_loads.load(Ordering::Relaxed),
            "triggers": s.trigger_base.is_some(),
            "generation": s.token,
            // Exact tables always check; IVF: this connection's last
            // decision (null before its first query).
            "replace_check": if s.trained { self.guard.as_ref().map(|g| g.check) } else { Some(true) },
            "sweeps": self.stats.sweeps.load(Ordering::Relaxed),
        });
        if s.trained {
            if let Ok(m) = self.model(&s) {
                j["lists"] = m.lists().into();
                j["quantizer"] = m.quantizer().name().into();
                j["nprobe_default"] = self
                    .opts
                    .ivf
                    .nprobe
                    .unwrap_or_else(|| m.default_nprobe())
                    .into();
                j["trained_on"] = m.trained_on().into();
                j["bytes_per_vector"] = m.bytes_per_vector().into();
            }
        } else if self.opts.index == IndexKind::Ivf {
            j["train_at_rows"] = self.train_min(s.rows).into();
        }
        Ok(j)
    }
}

/// Whether `table` has a UNIQUE index (a UNIQUE constraint or `CREATE
/// UNIQUE INDEX`, partial or on expressions alike): the only way a REPLACE
/// can delete one of its rows without a DELETE trigger.
///
/// # Safety
/// `db` is an open connection.
unsafe fn unique_index(db: *mut sys::sqlite3, schema: &str, table: &str) -> Result<bool, String> {
    // SAFETY: caller guarantees db.
    let mut st = unsafe {
        Stmt::prepare(
            db,
            "SELECT EXISTS (SELECT 1 FROM pragma_index_list(?1, ?2) WHERE \"unique\")",
            false,
        )
    }?;
    st.bind_text(1, table)?;
    st.bind_text(2, schema)?;
    Ok(match st.step()? {
        Step::Row => st.column_i64(0) != 0,
        Step::Done => true,
    })
}

/// Runs a `SELECT <integer>` statement.
///
/// # Safety
/// `db` is an open connection.
unsafe fn count(db: *mut sys::sqlite3, sql: &str) -> Result<i64, String> {
    // SAFETY: caller guarantees db.
    let mut st = unsafe { Stmt::prepare(db, sql, false) }?;
    Ok(match st.step()? {
        Step::Row => st.column_i64(0),
        Step::Done => 0,
    })
}

impl VectorSource for Index {
    fn layout(&self) -> (ElemType, usize) {
        (self.opts.elem_type, self.opts.dim)
    }

    fn search(&mut self, req: &Request<'_>) -> Result<Vec<Vec<(i64, f32)>>, String> {
        let synced = self.sync(true)?;
        let s = synced.state.clone();
        let nq = req.queries.len();
        if req.rowids.is_empty() || req.n == Some(0) || req.dist.never() {
            return Ok(vec![Vec::new(); nq]);
        }
        let pending: HashSet<i64> = synced.pending.iter().copied().collect();
        let mut gone: HashSet<i64> = HashSet::new();
        let mut checked: HashMap<i64, bool> = HashMap::new();
        // Rows found gone, logged for the next write to remove.
        let mut logged_gone: Vec<i64> = Vec::new();
        // A small rowid set is answered from the base table directly: exact,
        // current, and cheaper than a scan.
        let small_set = req
            .rowids
            .set
            .as_ref()
            .is_some_and(|set| set.len() <= 256 || set.len().saturating_mul(8) <= s.rows);
        loop {
            let want = req.n.map(|n| n.saturating_add(SLACK + gone.len()));
            let mut outs: Vec<Collector> = (0..nq)
                .map(|_| Collector::new(want, req.dist.clone()))
                .collect();
            let mut exclude: HashSet<i64> = pending.clone();
            exclude.extend(gone.iter().copied());
            let admit = Admit {
                rowids: req.rowids,
                exclude: Some(&exclude),
            };
            let mut from_base = false;
            if small_set {
                let ids: Vec<i64> = req.rowids.set.clone().unwrap_or_default();
                self.score_base_rows(&ids, req, &mut outs)?;
                from_base = true;
            } else if s.trained {
                let Some(n) = req.n else {
                    return self.base.search(req);
                };
                self.ivf_rowstore(&s)?;
                // Ask for the slack too: rows re-ranked from the RAM copy
                // are checked against the base table below.
                let n = want.unwrap_or(n);
                for (q, out) in req.queries.iter().zip(outs.iter_mut()) {
                    if !self.ivf_query(&s, q, req, &admit, n, out)? {
                        // Every list would be probed: answer exactly from
                        // the base table (current by definition).
                        return self.base.search(req);
                    }
                }
                if !synced.pending.is_empty() {
                    let ids: Vec<i64> = synced
                        .pending
                        .iter()
                        .copied()
                        .filter(|&id| req.rowids.admits(id))
                        .collect();
                    self.score_base_rows(&ids, req, &mut outs)?;
                }
                // Re-ranked from base rows, they exist; from the RAM copy
                // they are checked like flat results (REPLACE trap).
                from_base = self.rowstore.is_none();
            } else {
                match self.scan_flat(&s, req, &admit, &mut outs)? {
                    Some(found) if !found.is_empty() => {
                        // Candidates whose base row is gone (a REPLACE
                        // through a UNIQUE conflict): exclude them and
                        // search again.
                        for id in found {
                            if gone.insert(id) {
                                logged_gone.push(id);
                            }
                        }
                        continue;
                    }
                    Some(_) => from_base = true,
                    None => {}
                }
                if !synced.pending.is_empty() {
                    let ids: Vec<i64> = synced
                        .pending
                        .iter()
                        .copied()
                        .filter(|&id| req.rowids.admits(id))
                        .collect();
                    self.score_base_rows(&ids, req, &mut outs)?;
                }
            }
            let scanned: u64 = outs.iter().map(Collector::scanned).sum();
            self.stats.last_scanned.store(scanned, Ordering::Relaxed);
            // Check rows taken from stored data against the base table.
            let mut results = Vec::with_capacity(nq);
            let mut retry = false;
            let newly_gone = &mut logged_gone;
            for out in outs {
                let full = out.len() >= out.capacity();
                let rows = out.into_sorted_vec();
                let mut kept = Vec::with_capacity(rows.len());
                for (id, d) in rows {
                    if req.n.is_some_and(|n| kept.len() >= n) {
                        break;
                    }
                    if !from_base && synced.check && !pending.contains(&id) {
                        let ok = match checked.get(&id) {
                            Some(&ok) => ok,
                            None => {
                                let ok = self.base.exists(id)?;
                                checked.insert(id, ok);
                                ok
                            }
                        };
                        if !ok {
                            if gone.insert(id) {
                                newly_gone.push(id);
                            }
                            continue;
                        }
                    }
                    kept.push((id, d));
                }
                if full && req.n.is_some_and(|n| kept.len() < n) {
                    retry = true;
                }
                results.push(kept);
            }
            if !retry {
                if !logged_gone.is_empty() && synced.writable {
                    // Let the next write remove them (best effort: a
                    // failure only means they are checked again next time).
                    let _ = self.log_ids(&logged_gone);
                }
                return Ok(results);
            }
        }
    }
}

impl Index {
    fn log_ids(&self, ids: &[i64]) -> Result<(), SqlError> {
        // SAFETY: db is the connection owning this table.
        let mut st = unsafe {
            Stmt::prepare(
                self.db,
                &format!("INSERT INTO {}(id) VALUES (?1)", self.names.q(LOG)),
                false,
            )
        }?;
        for &id in ids {
            st.bind_i64(1, id)?;
            st.run()?;
        }
        Ok(())
    }
}
