//! rusqlite's bundled SQLite, loading the built `libpocketvec0` with
//! `load_extension`: the connection driver of `bundled.rs` and of the
//! bundled half of `hostile.rs`.

use crate::common::{ext_path, Conn, Driver, Val};
use rusqlite::types::{Value as RValue, ValueRef};

pub struct Bundled(pub rusqlite::Connection);

fn message(e: rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m,
        rusqlite::Error::SqlInputError { msg, .. } => msg,
        e => e.to_string(),
    }
}

impl Conn for Bundled {
    fn exec(&self, sql: &str) -> Result<(), String> {
        self.0.execute_batch(sql).map_err(message)
    }
    fn query(&self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, String> {
        let mut st = self.0.prepare(sql).map_err(message)?;
        let n = st.column_count();
        let p: Vec<RValue> = params
            .iter()
            .map(|v| match v {
                Val::Null => RValue::Null,
                Val::Int(i) => RValue::Integer(*i),
                Val::Real(x) => RValue::Real(*x),
                Val::Text(s) => RValue::Text(s.clone()),
                Val::Blob(b) => RValue::Blob(b.clone()),
            })
            .collect();
        let mut rows = st.query(rusqlite::params_from_iter(p)).map_err(message)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(message)? {
            out.push(
                (0..n)
                    .map(|i| match r.get_ref(i).expect("column in range") {
                        ValueRef::Null => Val::Null,
                        ValueRef::Integer(i) => Val::Int(i),
                        ValueRef::Real(x) => Val::Real(x),
                        ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(b) => Val::Blob(b.to_vec()),
                    })
                    .collect(),
            );
        }
        Ok(out)
    }
    fn version(&self) -> i32 {
        rusqlite::version_number()
    }
    fn set_defensive(&self, on: bool) {
        self.0
            .set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, on)
            .expect("db_config DEFENSIVE");
    }
}

pub fn open_plain(path: &str) -> Box<dyn Conn> {
    Box::new(Bundled(rusqlite::Connection::open(path).expect("open")))
}

pub const DRIVER: Driver = Driver {
    open,
    plain: open_plain,
};

pub fn open(path: &str) -> Box<dyn Conn> {
    let c = rusqlite::Connection::open(path).expect("open");
    // SAFETY: loading our own extension, built by this workspace.
    unsafe {
        let _guard = rusqlite::LoadExtensionGuard::new(&c).expect("enable load_extension");
        c.load_extension(ext_path(), None::<&str>)
            .expect("load libpocketvec0");
    }
    Box::new(Bundled(c))
}
