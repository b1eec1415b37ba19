//! Per-connection state: the query vector of `pocketvec_set_q`.
//!
//! One `ConnState` is created per `register` call, i.e. per connection that
//! loads the extension. It is shared (as an `Arc`) by the `pocketvec_set_q`
//! function (its user data) and by the `pocketvec` module (its client data),
//! and dropped by SQLite's destructors when the connection closes. Nothing
//! about a query lives in process-wide state.

use std::sync::{Arc, Mutex, PoisonError};

use crate::vector::OwnedInput;

#[derive(Default)]
pub struct ConnState {
    query: Mutex<Option<OwnedInput>>,
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
}
