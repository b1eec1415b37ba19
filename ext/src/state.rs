//! Per-connection state: the query vector of `pocketvec_set_q`, the
//! per-connection cache switch, and statistics of the tables open on the
//! connection (for `pocketvec_info`).
//!
//! One `ConnState` is created per `register` call, i.e. per connection that
//! loads the extension. It is shared (as an `Arc`) by the functions (their
//! user data) and by the `pocketvec` module (its client data), and dropped
//! by SQLite's destructors when the connection closes. Nothing about a query
//! lives in process-wide state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::vector::OwnedInput;

/// What one table instance reports about itself on this connection.
#[derive(Default)]
pub struct TableStats {
    /// Heap bytes of the RAM cache.
    pub cache_bytes: AtomicUsize,
    /// Whether the last query used the cache.
    pub cache_used: AtomicBool,
    /// Times the cache was (re)loaded from the database.
    pub cache_loads: AtomicU64,
    /// Rows the last query scored.
    pub last_scanned: AtomicU64,
    /// Whether the last query had to read a pending change log without
    /// applying it (read-only database).
    pub last_overlay: AtomicUsize,
    /// Sweeps of the base table for REPLACE leftovers (trained IVF tables)
    /// this connection ran.
    pub sweeps: AtomicU64,
}

#[derive(Default)]
pub struct ConnState {
    query: Mutex<Option<OwnedInput>>,
    tables: Mutex<HashMap<String, Weak<TableStats>>>,
    cache: Mutex<HashMap<String, bool>>,
}

/// Registry key of a table: `schema.name`, case-folded like SQLite names.
pub fn table_key(schema: &str, name: &str) -> String {
    format!(
        "{}.{}",
        schema.to_ascii_lowercase(),
        name.to_ascii_lowercase()
    )
}

impl ConnState {
    pub fn new() -> Arc<ConnState> {
        Arc::new(ConnState::default())
    }
    /// Replaces (or with `None` clears) the connection's query vector.
    pub fn set_query(&self, q: Option<OwnedInput>) {
        *self.query.lock().unwrap_or_else(PoisonError::into_inner) = q;
    }
    /// A copy of the connection's query vector, if set.
    pub fn query(&self) -> Option<OwnedInput> {
        self.query
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    /// Registers a table instance's statistics (replacing a stale entry).
    pub fn register_table(&self, key: &str, stats: &Arc<TableStats>) {
        let mut t = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        t.retain(|_, w| w.strong_count() > 0);
        t.insert(key.to_string(), Arc::downgrade(stats));
    }
    /// Statistics of an open table, if it was used on this connection.
    pub fn table_stats(&self, key: &str) -> Option<Arc<TableStats>> {
        self.tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .and_then(Weak::upgrade)
    }
    /// Per-connection cache switch of a table (`None`: the table's option).
    pub fn cache_override(&self, key: &str) -> Option<bool> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied()
    }
    pub fn set_cache_override(&self, key: &str, on: Option<bool>) {
        let mut c = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match on {
            Some(v) => {
                c.insert(key.to_string(), v);
            }
            None => {
                c.remove(key);
            }
        }
    }
}
