//! The thin FFI layer: every SQLite call of the extension goes through the
//! `sqlite3_api_routines` table that SQLite hands to the entry point.
//!
//! `sqlite3ext-sys` also declares the `sqlite3_*` functions themselves (and
//! compiles a whole SQLite 3.39 into a static library); referencing any of
//! them would link that SQLite into `libpocketvec0.so`. Nothing here does:
//! only the types and constants of the bindings are used, and the `nm` test
//! in `tests/artifact.rs` checks the built library.
//!
//! The routines table is process-wide immutable data of the host SQLite, so
//! it is stored once per process. Entries newer than the oldest supported
//! host (3.20.0) are only touched after checking `libversion_number()`.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::OnceLock;

use sqlite3ext_sys as sys;

/// Oldest host SQLite the extension loads into (`sqlite3_prepare_v3`).
pub const MIN_VERSION: c_int = 3_020_000;
/// `SQLITE_SUBTYPE`, `SQLITE_DIRECTONLY` function flags.
pub const V3_30: c_int = 3_030_000;
/// `SQLITE_INNOCUOUS` function flag and `SQLITE_VTAB_INNOCUOUS`.
pub const V3_31: c_int = 3_031_000;
/// `sqlite3_vtab_in*`, `sqlite3_vtab_rhs_value`, LIMIT/OFFSET constraints.
pub const V3_38: c_int = 3_038_000;
/// `SQLITE_RESULT_SUBTYPE` function flag.
pub const V3_45: c_int = 3_045_000;

pub const SQLITE_OK: c_int = sys::SQLITE_OK as c_int;
pub const SQLITE_ERROR: c_int = sys::SQLITE_ERROR as c_int;
pub const SQLITE_NOMEM: c_int = sys::SQLITE_NOMEM as c_int;
pub const SQLITE_CONSTRAINT: c_int = sys::SQLITE_CONSTRAINT as c_int;
pub const SQLITE_ROW: c_int = sys::SQLITE_ROW as c_int;
pub const SQLITE_DONE: c_int = sys::SQLITE_DONE as c_int;
pub const SQLITE_UTF8: c_int = sys::SQLITE_UTF8 as c_int;
pub const SQLITE_DETERMINISTIC: c_int = sys::SQLITE_DETERMINISTIC as c_int;
pub const SQLITE_INNOCUOUS: c_int = sys::SQLITE_INNOCUOUS as c_int;
pub const SQLITE_SUBTYPE: c_int = sys::SQLITE_SUBTYPE as c_int;
/// Not in the 3.39 headers of `sqlite3ext-sys`; value from SQLite 3.45.
pub const SQLITE_RESULT_SUBTYPE: c_int = 0x0100_0000;
pub const SQLITE_VTAB_INNOCUOUS: c_int = 2;
const SQLITE_PREPARE_PERSISTENT: u32 = 0x01;

/// The host's routines table plus its version number.
pub struct Api {
    r: &'static sys::sqlite3_api_routines,
    version: c_int,
}

// SAFETY: the routines table is a `static const` struct inside the host
// SQLite; it is never written after the process starts.
unsafe impl Send for Api {}
// SAFETY: as above, shared read-only access from any thread is fine.
unsafe impl Sync for Api {}

static API: OnceLock<Api> = OnceLock::new();

/// Calls a routines-table entry; a missing entry panics (caught at the FFI
/// boundary and reported as an SQLite error, never unwinding into C).
macro_rules! call {
    ($name:ident ( $($arg:expr),* $(,)? )) => {
        ($crate::api::api().routines().$name.expect(concat!("SQLite API routine `", stringify!($name), "` is missing")))($($arg),*)
    };
}
pub(crate) use call;

/// Stores the routines table on first use. A second, different table means
/// two SQLite libraries in one process: refuse rather than mix them.
///
/// # Safety
/// `p` must be the routines pointer SQLite passed to an extension entry point.
pub unsafe fn install(p: *const sys::sqlite3_api_routines) -> Result<&'static Api, String> {
    if p.is_null() {
        return Err("pocketvec: SQLite passed no API routines table (pApi is NULL); \
                    a statically linked host must register pocketvec0::init with sqlite3_auto_extension"
            .into());
    }
    // SAFETY: non-null, points at the host's static routines table.
    let r: &'static sys::sqlite3_api_routines = unsafe { &*p };
    let version_fn = r
        .libversion_number
        .ok_or("pocketvec: the SQLite API table has no libversion_number")?;
    // SAFETY: plain C function without arguments.
    let version = unsafe { version_fn() };
    if version < MIN_VERSION {
        return Err(format!(
            "pocketvec needs SQLite 3.20.0 or newer; this host is {}",
            version_string(version)
        ));
    }
    let api = API.get_or_init(|| Api { r, version });
    if !ptr::eq(api.r, r) {
        return Err(format!(
            "pocketvec: already loaded by another SQLite library in this process (SQLite {}); \
             a process can use pocketvec with one SQLite library only",
            version_string(api.version)
        ));
    }
    Ok(api)
}

/// Whether a routines table was installed in this process.
pub fn installed() -> bool {
    API.get().is_some()
}

/// The installed routines table. Only reachable after `install`.
pub fn api() -> &'static Api {
    API.get()
        .expect("pocketvec: SQLite API used before the extension was initialised")
}

impl Api {
    /// The raw routines table (use through `call!`).
    pub fn routines(&self) -> &'static sys::sqlite3_api_routines {
        self.r
    }
    /// `sqlite3_libversion_number()` of the host.
    pub fn version(&self) -> c_int {
        self.version
    }
    pub fn has(&self, version: c_int) -> bool {
        self.version >= version
    }
    /// `sqlite3_libversion()` of the host.
    pub fn version_text(&self) -> String {
        // SAFETY: returns a static NUL-terminated string.
        unsafe { cstr_lossy(call!(libversion())) }
    }
}

pub fn version_string(v: c_int) -> String {
    format!("{}.{}.{}", v / 1_000_000, (v / 1000) % 1000, v % 1000)
}

/// Runs `f`, turning a panic into `on_panic(message)`. Used at every
/// `extern "C"` entry so no unwind reaches SQLite.
pub fn guard<R>(on_panic: impl FnOnce(String) -> R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(e) => {
            let msg = if let Some(s) = e.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = e.downcast_ref::<String>() {
                s.clone()
            } else {
                "unknown panic".to_string()
            };
            on_panic(format!("pocketvec internal error: {msg}"))
        }
    }
}

/// # Safety
/// `p` is NULL or a NUL-terminated string.
pub unsafe fn cstr_lossy(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: caller guarantees NUL termination.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Copies `s` into memory from `sqlite3_malloc`, as SQLite expects for
/// `zErrMsg` / `*pzErr`. Interior NULs are replaced. NULL on OOM.
pub fn sqlite_string(s: &str) -> *mut c_char {
    let bytes = s.as_bytes();
    let Ok(n) = c_int::try_from(bytes.len() + 1) else {
        return ptr::null_mut();
    };
    // SAFETY: sqlite3_malloc returns n bytes or NULL.
    let p = unsafe { call!(malloc(n)) } as *mut u8;
    if p.is_null() {
        return p.cast();
    }
    for (i, &b) in bytes.iter().enumerate() {
        // SAFETY: i < n - 1, inside the allocation.
        unsafe { *p.add(i) = if b == 0 { b'?' } else { b } };
    }
    // SAFETY: index n - 1 is the last byte of the allocation.
    unsafe { *p.add(bytes.len()) = 0 };
    p.cast()
}

/// Frees memory from `sqlite3_malloc` (NULL is fine).
///
/// # Safety
/// `p` is NULL or was allocated by SQLite's allocator.
pub unsafe fn sqlite_free(p: *mut c_void) {
    if !p.is_null() {
        // SAFETY: caller guarantees the allocator.
        unsafe { call!(free(p)) };
    }
}

/// `sqlite3_errmsg(db)`.
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn errmsg(db: *mut sys::sqlite3) -> String {
    // SAFETY: db is valid; the message is NUL-terminated.
    unsafe { cstr_lossy(call!(errmsg(db))) }
}

/// Quotes an identifier for SQL text: `"` around it, inner `"` doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Fundamental datatype of a value.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ValueType {
    Integer,
    Float,
    Text,
    Blob,
    Null,
}

impl ValueType {
    fn from_code(code: c_int) -> ValueType {
        match code as u32 {
            sys::SQLITE_INTEGER => ValueType::Integer,
            sys::SQLITE_FLOAT => ValueType::Float,
            sys::SQLITE_TEXT => ValueType::Text,
            sys::SQLITE_BLOB => ValueType::Blob,
            _ => ValueType::Null,
        }
    }
    /// Word used in error messages ("found an integer").
    pub fn describe(self) -> &'static str {
        match self {
            ValueType::Integer => "an integer",
            ValueType::Float => "a real number",
            ValueType::Text => "text",
            ValueType::Blob => "a BLOB",
            ValueType::Null => "NULL",
        }
    }
}

/// A borrowed `sqlite3_value*` (function argument, xFilter argument).
#[derive(Copy, Clone)]
pub struct Value<'a> {
    p: *mut sys::sqlite3_value,
    _life: PhantomData<&'a ()>,
}

impl<'a> Value<'a> {
    /// # Safety
    /// `p` is a valid protected or unprotected value for lifetime `'a`.
    pub unsafe fn from_ptr(p: *mut sys::sqlite3_value) -> Value<'a> {
        Value {
            p,
            _life: PhantomData,
        }
    }
    /// Wraps the `argc` values of an `argv` array.
    ///
    /// # Safety
    /// `argv` holds `argc` valid values for `'a`.
    pub unsafe fn args(argc: c_int, argv: *mut *mut sys::sqlite3_value) -> Vec<Value<'a>> {
        (0..usize::try_from(argc).unwrap_or(0))
            // SAFETY: i < argc.
            .map(|i| unsafe { Value::from_ptr(*argv.add(i)) })
            .collect()
    }
    pub fn raw(self) -> *mut sys::sqlite3_value {
        self.p
    }
    pub fn value_type(self) -> ValueType {
        // SAFETY: valid value.
        ValueType::from_code(unsafe { call!(value_type(self.p)) })
    }
    /// Applies numeric affinity (like a comparison with a numeric column)
    /// and returns the resulting type.
    pub fn numeric_type(self) -> ValueType {
        // SAFETY: valid value.
        ValueType::from_code(unsafe { call!(value_numeric_type(self.p)) })
    }
    pub fn int64(self) -> i64 {
        // SAFETY: valid value.
        unsafe { call!(value_int64(self.p)) }
    }
    pub fn double(self) -> f64 {
        // SAFETY: valid value.
        unsafe { call!(value_double(self.p)) }
    }
    /// The BLOB bytes (empty for a zero-length BLOB, whose pointer is NULL).
    pub fn blob(self) -> &'a [u8] {
        // SAFETY: valid value; bytes must be read after the pointer.
        unsafe {
            let p = call!(value_blob(self.p)) as *const u8;
            let n = call!(value_bytes(self.p));
            raw_slice(p, n)
        }
    }
    /// The UTF-8 text bytes.
    pub fn text(self) -> &'a [u8] {
        // SAFETY: valid value; bytes must be read after the pointer.
        unsafe {
            let p = call!(value_text(self.p));
            let n = call!(value_bytes(self.p));
            raw_slice(p, n)
        }
    }
    /// The subtype set by the function that produced the value (0 if none).
    pub fn subtype(self) -> u32 {
        // SAFETY: valid value; value_subtype exists since 3.9.0 < MIN_VERSION.
        unsafe { call!(value_subtype(self.p)) }
    }
    /// A short description for error messages: type and size.
    pub fn describe(self) -> String {
        match self.value_type() {
            ValueType::Blob => format!("a BLOB of {} bytes", self.blob().len()),
            ValueType::Text => {
                let t = String::from_utf8_lossy(self.text()).into_owned();
                format!("text '{}'", shorten(&t, 40))
            }
            ValueType::Integer => format!("the integer {}", self.int64()),
            ValueType::Float => format!("the real number {}", self.double()),
            ValueType::Null => "NULL".into(),
        }
    }
}

/// Truncates long text for error messages.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push_str("...");
        t
    }
}

/// # Safety
/// `p` is valid for `n` bytes, or `n <= 0`.
unsafe fn raw_slice<'a>(p: *const u8, n: c_int) -> &'a [u8] {
    if p.is_null() || n <= 0 {
        &[]
    } else {
        // SAFETY: caller guarantees p..p+n is readable for 'a.
        unsafe { std::slice::from_raw_parts(p, n as usize) }
    }
}

/// An owned copy of a value (`sqlite3_value_dup`), freed on drop.
pub struct OwnedValue(NonNull<sys::sqlite3_value>);

impl OwnedValue {
    pub fn dup(v: Value<'_>) -> Option<OwnedValue> {
        // SAFETY: valid value; value_dup exists since 3.18 < MIN_VERSION.
        NonNull::new(unsafe { call!(value_dup(v.raw())) }).map(OwnedValue)
    }
    pub fn raw(&self) -> *mut sys::sqlite3_value {
        self.0.as_ptr()
    }
}

impl Drop for OwnedValue {
    fn drop(&mut self) {
        // SAFETY: allocated by value_dup, freed once.
        unsafe { call!(value_free(self.0.as_ptr())) }
    }
}

/// A function or xColumn context.
#[derive(Copy, Clone)]
pub struct Ctx(pub *mut sys::sqlite3_context);

/// `SQLITE_TRANSIENT`: SQLite copies the bytes before the call returns.
fn transient() -> sys::sqlite3_destructor_type {
    // SAFETY: SQLite defines SQLITE_TRANSIENT as the destructor value -1; it
    // is compared against, never called.
    Some(unsafe { std::mem::transmute::<isize, unsafe extern "C" fn(*mut c_void)>(-1) })
}

impl Ctx {
    pub fn user_data(self) -> *mut c_void {
        // SAFETY: valid context.
        unsafe { call!(user_data(self.0)) }
    }
    /// The connection the function runs on.
    pub fn db(self) -> *mut sys::sqlite3 {
        // SAFETY: valid context.
        unsafe { call!(context_db_handle(self.0)) }
    }
    pub fn result_error(self, msg: &str) {
        let n = c_int::try_from(msg.len()).unwrap_or(c_int::MAX);
        // SAFETY: SQLite copies the n bytes.
        unsafe { call!(result_error(self.0, msg.as_ptr().cast(), n)) }
    }
    pub fn result_null(self) {
        // SAFETY: valid context.
        unsafe { call!(result_null(self.0)) }
    }
    pub fn result_i64(self, v: i64) {
        // SAFETY: valid context.
        unsafe { call!(result_int64(self.0, v)) }
    }
    pub fn result_f64(self, v: f64) {
        // SAFETY: valid context.
        unsafe { call!(result_double(self.0, v)) }
    }
    pub fn result_text(self, s: &str) {
        match c_int::try_from(s.len()) {
            // SAFETY: SQLite copies the n bytes (SQLITE_TRANSIENT).
            Ok(n) => unsafe { call!(result_text(self.0, s.as_ptr().cast(), n, transient())) },
            Err(_) => self.result_error("pocketvec: result text too large"),
        }
    }
    pub fn result_blob(self, b: &[u8]) {
        match c_int::try_from(b.len()) {
            // SAFETY: SQLite copies the n bytes (SQLITE_TRANSIENT); a
            // zero-length BLOB with a dangling pointer is fine since n = 0.
            Ok(n) => unsafe { call!(result_blob(self.0, b.as_ptr().cast(), n, transient())) },
            Err(_) => self.result_error("pocketvec: result BLOB too large"),
        }
    }
    pub fn result_subtype(self, t: u32) {
        // SAFETY: valid context; exists since 3.9.0.
        unsafe { call!(result_subtype(self.0, t)) }
    }
    /// # Safety
    /// `v` is a valid value (SQLite copies it).
    pub unsafe fn result_value(self, v: *mut sys::sqlite3_value) {
        // SAFETY: valid context; caller guarantees v.
        unsafe { call!(result_value(self.0, v)) }
    }
}

/// A prepared statement, finalized on drop.
pub struct Stmt {
    p: NonNull<sys::sqlite3_stmt>,
    db: *mut sys::sqlite3,
    /// Bumped by `reset`; rows borrowed from the statement die with it.
    _not_sync: PhantomData<Cell<()>>,
}

/// Outcome of `Stmt::step`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Row,
    Done,
}

impl Stmt {
    /// Prepares one statement (`prepare_v3` with `SQLITE_PREPARE_PERSISTENT`
    /// when `persistent`, for statements cached across queries).
    ///
    /// # Safety
    /// `db` is an open connection that outlives the statement.
    pub unsafe fn prepare(
        db: *mut sys::sqlite3,
        sql: &str,
        persistent: bool,
    ) -> Result<Stmt, String> {
        let n =
            c_int::try_from(sql.len()).map_err(|_| "pocketvec: SQL text too long".to_string())?;
        let mut p: *mut sys::sqlite3_stmt = ptr::null_mut();
        let flags = if persistent {
            SQLITE_PREPARE_PERSISTENT
        } else {
            0
        };
        // SAFETY: db valid; sql is n bytes; out-pointer valid.
        let rc = unsafe {
            call!(prepare_v3(
                db,
                sql.as_ptr().cast(),
                n,
                flags,
                &mut p,
                ptr::null_mut()
            ))
        };
        if rc != SQLITE_OK {
            // SAFETY: db valid.
            let msg = unsafe { errmsg(db) };
            if !p.is_null() {
                // SAFETY: p was returned by prepare.
                unsafe { call!(finalize(p)) };
            }
            return Err(msg);
        }
        match NonNull::new(p) {
            Some(p) => Ok(Stmt {
                p,
                db,
                _not_sync: PhantomData,
            }),
            None => Err("pocketvec: SQL text holds no statement".into()),
        }
    }
    pub fn bind_i64(&mut self, i: c_int, v: i64) -> Result<(), String> {
        // SAFETY: valid statement.
        let rc = unsafe { call!(bind_int64(self.p.as_ptr(), i, v)) };
        self.check(rc)
    }
    pub fn bind_blob(&mut self, i: c_int, b: &[u8]) -> Result<(), String> {
        let n = c_int::try_from(b.len()).map_err(|_| "pocketvec: BLOB too large".to_string())?;
        // SAFETY: SQLite copies the n bytes (SQLITE_TRANSIENT); n = 0 with a
        // dangling pointer binds an empty BLOB.
        let rc = unsafe {
            call!(bind_blob(
                self.p.as_ptr(),
                i,
                b.as_ptr().cast(),
                n,
                transient()
            ))
        };
        self.check(rc)
    }
    /// Binds a BLOB of `n` zero bytes (`zeroblob(n)`).
    pub fn bind_zeroblob(&mut self, i: c_int, n: usize) -> Result<(), String> {
        let n = c_int::try_from(n).map_err(|_| "pocketvec: BLOB too large".to_string())?;
        // SAFETY: valid statement.
        let rc = unsafe { call!(bind_zeroblob(self.p.as_ptr(), i, n)) };
        self.check(rc)
    }
    pub fn bind_null(&mut self, i: c_int) -> Result<(), String> {
        // SAFETY: valid statement.
        let rc = unsafe { call!(bind_null(self.p.as_ptr(), i)) };
        self.check(rc)
    }
    pub fn bind_text(&mut self, i: c_int, s: &str) -> Result<(), String> {
        let n = c_int::try_from(s.len()).map_err(|_| "pocketvec: text too long".to_string())?;
        // SAFETY: SQLite copies the bytes (SQLITE_TRANSIENT).
        let rc = unsafe {
            call!(bind_text(
                self.p.as_ptr(),
                i,
                s.as_ptr().cast(),
                n,
                transient()
            ))
        };
        self.check(rc)
    }
    fn check(&self, rc: c_int) -> Result<(), String> {
        if rc == SQLITE_OK {
            Ok(())
        } else {
            // SAFETY: db valid while the statement lives.
            Err(unsafe { errmsg(self.db) })
        }
    }
    pub fn step(&mut self) -> Result<Step, String> {
        // SAFETY: valid statement.
        match unsafe { call!(step(self.p.as_ptr())) } {
            SQLITE_ROW => Ok(Step::Row),
            SQLITE_DONE => Ok(Step::Done),
            _ => {
                // SAFETY: db valid; reset returns the real error code and
                // makes the statement reusable.
                let msg = unsafe { errmsg(self.db) };
                self.reset();
                Err(msg)
            }
        }
    }
    /// `step`, with the (extended) error code on failure.
    pub fn step_rc(&mut self) -> Result<Step, SqlError> {
        // SAFETY: valid statement.
        match unsafe { call!(step(self.p.as_ptr())) } {
            SQLITE_ROW => Ok(Step::Row),
            SQLITE_DONE => Ok(Step::Done),
            _ => {
                // SAFETY: db valid.
                let e = unsafe { SqlError::last(self.db) };
                self.reset();
                Err(e)
            }
        }
    }
    /// Steps to the end (a statement without result rows, or whose rows
    /// are not needed), then resets.
    pub fn run(&mut self) -> Result<(), SqlError> {
        while self.step_rc()? == Step::Row {}
        self.reset();
        Ok(())
    }
    /// Resets the statement (bindings stay).
    pub fn reset(&mut self) {
        // SAFETY: valid statement.
        unsafe { call!(reset(self.p.as_ptr())) };
    }
    pub fn column_i64(&self, i: c_int) -> i64 {
        // SAFETY: valid statement positioned on a row.
        unsafe { call!(column_int64(self.p.as_ptr(), i)) }
    }
    pub fn column_f64(&self, i: c_int) -> f64 {
        // SAFETY: valid statement positioned on a row.
        unsafe { call!(column_double(self.p.as_ptr(), i)) }
    }
    pub fn column_type(&self, i: c_int) -> ValueType {
        // SAFETY: valid statement positioned on a row.
        ValueType::from_code(unsafe { call!(column_type(self.p.as_ptr(), i)) })
    }
    /// BLOB bytes of column `i` of the current row; valid until the next
    /// `step`/`reset` (enforced by the `&self` borrow against `&mut self`).
    pub fn column_blob(&self, i: c_int) -> &[u8] {
        // SAFETY: valid statement on a row; pointer read before the length.
        unsafe {
            let p = call!(column_blob(self.p.as_ptr(), i)) as *const u8;
            let n = call!(column_bytes(self.p.as_ptr(), i));
            raw_slice(p, n)
        }
    }
    pub fn column_text(&self, i: c_int) -> String {
        // SAFETY: valid statement on a row; pointer read before the length.
        let b = unsafe {
            let p = call!(column_text(self.p.as_ptr(), i));
            let n = call!(column_bytes(self.p.as_ptr(), i));
            raw_slice(p, n)
        };
        String::from_utf8_lossy(b).into_owned()
    }
}

impl Drop for Stmt {
    fn drop(&mut self) {
        // SAFETY: finalized exactly once.
        unsafe { call!(finalize(self.p.as_ptr())) };
    }
}

/// Replaces `(*vtab).zErrMsg` with `msg` (old message freed).
///
/// # Safety
/// `vtab` points at a live `sqlite3_vtab`.
pub unsafe fn set_vtab_error(vtab: *mut sys::sqlite3_vtab, msg: &str) {
    // SAFETY: zErrMsg is NULL or from sqlite3_malloc.
    unsafe {
        sqlite_free((*vtab).zErrMsg.cast());
        (*vtab).zErrMsg = sqlite_string(msg);
    }
}

/// Sets an out-parameter error string (`*pzErr` of xCreate, pzErrMsg of init).
///
/// # Safety
/// `pz` is NULL or a writable `char**`.
pub unsafe fn set_out_error(pz: *mut *mut c_char, msg: &str) {
    if !pz.is_null() {
        // SAFETY: writable per caller.
        unsafe { *pz = sqlite_string(msg) };
    }
}

/// An SQLite error: the extended result code and the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlError {
    pub code: c_int,
    pub msg: String,
}

impl SqlError {
    /// The most recent error of `db`.
    ///
    /// # Safety
    /// `db` is an open connection.
    pub unsafe fn last(db: *mut sys::sqlite3) -> SqlError {
        // SAFETY: caller guarantees db.
        unsafe {
            SqlError {
                code: call!(extended_errcode(db)),
                msg: errmsg(db),
            }
        }
    }
    /// The primary result code (low 8 bits).
    pub fn primary(&self) -> c_int {
        self.code & 0xff
    }
    /// The database cannot be written now or at all: read-only file or
    /// connection, `PRAGMA query_only`, locked, busy, or a stale WAL
    /// snapshot. A query then reads without writing.
    pub fn is_cannot_write(&self) -> bool {
        matches!(
            self.primary() as u32,
            sys::SQLITE_READONLY | sys::SQLITE_BUSY | sys::SQLITE_LOCKED | sys::SQLITE_PERM
        ) || self.msg.contains("statements in progress")
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl From<SqlError> for String {
    fn from(e: SqlError) -> String {
        e.msg
    }
}

impl From<String> for SqlError {
    fn from(msg: String) -> SqlError {
        SqlError {
            code: SQLITE_ERROR,
            msg,
        }
    }
}

/// Runs SQL text of one or more statements without results.
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn exec(db: *mut sys::sqlite3, sql: &str) -> Result<(), SqlError> {
    let c = std::ffi::CString::new(sql)
        .map_err(|_| SqlError::from("pocketvec: NUL in SQL".to_string()))?;
    let mut err: *mut c_char = ptr::null_mut();
    // SAFETY: db valid, c NUL-terminated; no callback.
    let rc = unsafe { call!(exec(db, c.as_ptr(), None, ptr::null_mut(), &mut err)) };
    if rc == SQLITE_OK {
        return Ok(());
    }
    // SAFETY: err is NULL or from sqlite3_malloc.
    let msg = unsafe {
        let m = if err.is_null() {
            errmsg(db)
        } else {
            cstr_lossy(err)
        };
        sqlite_free(err.cast());
        m
    };
    // SAFETY: db valid.
    let code = unsafe { call!(extended_errcode(db)) };
    Err(SqlError {
        code: if code == SQLITE_OK { rc } else { code },
        msg,
    })
}

/// `sqlite3_db_readonly(db, schema)`: `Some(true)` for a read-only
/// database (`mode=ro`, `immutable=1`, a read-only file), `None` if the
/// schema is unknown.
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn db_readonly(db: *mut sys::sqlite3, schema: &str) -> Option<bool> {
    let c = std::ffi::CString::new(schema).ok()?;
    // SAFETY: db valid, c NUL-terminated.
    match unsafe { call!(db_readonly(db, c.as_ptr())) } {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    }
}

/// `sqlite3_get_autocommit(db)`: no explicit transaction is open.
///
/// # Safety
/// `db` is an open connection.
pub unsafe fn autocommit(db: *mut sys::sqlite3) -> bool {
    // SAFETY: db valid.
    unsafe { call!(get_autocommit(db)) != 0 }
}

/// Eight bytes from SQLite's PRNG as an i64.
pub fn random_i64() -> i64 {
    let mut x = 0i64;
    // SAFETY: writes 8 bytes into x.
    unsafe { call!(randomness(8, (&mut x as *mut i64).cast())) };
    x
}

/// An incremental BLOB I/O handle (`sqlite3_blob_open`), closed on drop.
/// Reads and writes go through SQLite's pager (never around it), so WAL,
/// VFSes and encryption see them like any other access.
pub struct Blob {
    p: NonNull<sys::sqlite3_blob>,
    db: *mut sys::sqlite3,
    row: i64,
}

impl Blob {
    /// Opens `schema.table.column` of row `row`, for writing if `write`.
    ///
    /// # Safety
    /// `db` is an open connection that outlives the handle.
    pub unsafe fn open(
        db: *mut sys::sqlite3,
        schema: &str,
        table: &str,
        column: &str,
        row: i64,
        write: bool,
    ) -> Result<Blob, SqlError> {
        let s = std::ffi::CString::new(schema)
            .map_err(|_| SqlError::from("NUL in name".to_string()))?;
        let t =
            std::ffi::CString::new(table).map_err(|_| SqlError::from("NUL in name".to_string()))?;
        let c = std::ffi::CString::new(column)
            .map_err(|_| SqlError::from("NUL in name".to_string()))?;
        let mut p: *mut sys::sqlite3_blob = ptr::null_mut();
        // SAFETY: db valid; names NUL-terminated; out-pointer valid.
        let rc = unsafe {
            call!(blob_open(
                db,
                s.as_ptr(),
                t.as_ptr(),
                c.as_ptr(),
                row,
                c_int::from(write),
                &mut p
            ))
        };
        if rc != SQLITE_OK {
            // SAFETY: db valid.
            let e = unsafe { SqlError::last(db) };
            if !p.is_null() {
                // SAFETY: p from blob_open.
                unsafe { call!(blob_close(p)) };
            }
            return Err(e);
        }
        match NonNull::new(p) {
            Some(p) => Ok(Blob { p, db, row }),
            None => Err(SqlError::from(
                "pocketvec: blob_open returned no handle".to_string(),
            )),
        }
    }
    /// The row this handle points at.
    pub fn row(&self) -> i64 {
        self.row
    }
    /// Moves the handle to another row of the same table and column.
    pub fn reopen(&mut self, row: i64) -> Result<(), SqlError> {
        if row == self.row {
            return Ok(());
        }
        // SAFETY: valid handle.
        let rc = unsafe { call!(blob_reopen(self.p.as_ptr(), row)) };
        if rc != SQLITE_OK {
            // SAFETY: db valid.
            return Err(unsafe { SqlError::last(self.db) });
        }
        self.row = row;
        Ok(())
    }
    /// Size of the BLOB in bytes.
    pub fn len(&self) -> usize {
        // SAFETY: valid handle.
        usize::try_from(unsafe { call!(blob_bytes(self.p.as_ptr())) }).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads `buf.len()` bytes at `offset`.
    pub fn read(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), SqlError> {
        if buf.is_empty() {
            return Ok(());
        }
        let n =
            c_int::try_from(buf.len()).map_err(|_| SqlError::from("read too large".to_string()))?;
        let o =
            c_int::try_from(offset).map_err(|_| SqlError::from("offset too large".to_string()))?;
        // SAFETY: buf is writable for n bytes; SQLite checks the range.
        let rc = unsafe { call!(blob_read(self.p.as_ptr(), buf.as_mut_ptr().cast(), n, o)) };
        if rc != SQLITE_OK {
            // SAFETY: db valid.
            return Err(unsafe { SqlError::last(self.db) });
        }
        Ok(())
    }
    /// Writes `data` at `offset` (inside the BLOB's current size).
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), SqlError> {
        if data.is_empty() {
            return Ok(());
        }
        let n = c_int::try_from(data.len())
            .map_err(|_| SqlError::from("write too large".to_string()))?;
        let o =
            c_int::try_from(offset).map_err(|_| SqlError::from("offset too large".to_string()))?;
        // SAFETY: data readable for n bytes; SQLite checks the range.
        let rc = unsafe { call!(blob_write(self.p.as_ptr(), data.as_ptr().cast(), n, o)) };
        if rc != SQLITE_OK {
            // SAFETY: db valid.
            return Err(unsafe { SqlError::last(self.db) });
        }
        Ok(())
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        // SAFETY: closed exactly once.
        unsafe { call!(blob_close(self.p.as_ptr())) };
    }
}
