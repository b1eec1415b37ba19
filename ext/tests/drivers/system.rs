//! Debian's `libsqlite3.so.0` (3.40), loaded at run time: the connection
//! driver of `system.rs` and of the Debian half of `hostile.rs`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

use crate::common::{ext_path, Conn, Driver, Val};

pub type Db = *mut c_void;
type St = *mut c_void;

/// The few C entry points the tests need.
pub struct Lib {
    pub open_v2: unsafe extern "C" fn(*const c_char, *mut Db, c_int, *const c_char) -> c_int,
    pub close_v2: unsafe extern "C" fn(Db) -> c_int,
    pub errmsg: unsafe extern "C" fn(Db) -> *const c_char,
    pub prepare_v2:
        unsafe extern "C" fn(Db, *const c_char, c_int, *mut St, *mut *const c_char) -> c_int,
    pub step: unsafe extern "C" fn(St) -> c_int,
    pub finalize: unsafe extern "C" fn(St) -> c_int,
    pub bind_null: unsafe extern "C" fn(St, c_int) -> c_int,
    pub bind_int64: unsafe extern "C" fn(St, c_int, i64) -> c_int,
    pub bind_double: unsafe extern "C" fn(St, c_int, f64) -> c_int,
    pub bind_text: unsafe extern "C" fn(St, c_int, *const c_char, c_int, isize) -> c_int,
    pub bind_blob: unsafe extern "C" fn(St, c_int, *const c_void, c_int, isize) -> c_int,
    pub column_count: unsafe extern "C" fn(St) -> c_int,
    pub column_type: unsafe extern "C" fn(St, c_int) -> c_int,
    pub column_int64: unsafe extern "C" fn(St, c_int) -> i64,
    pub column_double: unsafe extern "C" fn(St, c_int) -> f64,
    pub column_text: unsafe extern "C" fn(St, c_int) -> *const u8,
    pub column_blob: unsafe extern "C" fn(St, c_int) -> *const u8,
    pub column_bytes: unsafe extern "C" fn(St, c_int) -> c_int,
    pub enable_load_extension: unsafe extern "C" fn(Db, c_int) -> c_int,
    pub load_extension:
        unsafe extern "C" fn(Db, *const c_char, *const c_char, *mut *mut c_char) -> c_int,
    pub free: unsafe extern "C" fn(*mut c_void),
    pub db_config: unsafe extern "C" fn(Db, c_int, ...) -> c_int,
    pub libversion_number: unsafe extern "C" fn() -> c_int,
}

const TRANSIENT: isize = -1;

pub fn lib() -> &'static Lib {
    static LIB: OnceLock<Lib> = OnceLock::new();
    LIB.get_or_init(|| {
        // SAFETY: loading the system SQLite; it stays loaded for the process.
        let l: &'static libloading::Library = Box::leak(Box::new(unsafe {
            libloading::Library::new("libsqlite3.so.0")
                .expect("system libsqlite3.so.0 (apt install libsqlite3-0)")
        }));
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the signature matches sqlite3.h.
                *unsafe { l.get(concat!($name, "\0").as_bytes()) }.expect($name)
            };
        }
        Lib {
            open_v2: sym!("sqlite3_open_v2"),
            close_v2: sym!("sqlite3_close_v2"),
            errmsg: sym!("sqlite3_errmsg"),
            prepare_v2: sym!("sqlite3_prepare_v2"),
            step: sym!("sqlite3_step"),
            finalize: sym!("sqlite3_finalize"),
            bind_null: sym!("sqlite3_bind_null"),
            bind_int64: sym!("sqlite3_bind_int64"),
            bind_double: sym!("sqlite3_bind_double"),
            bind_text: sym!("sqlite3_bind_text"),
            bind_blob: sym!("sqlite3_bind_blob"),
            column_count: sym!("sqlite3_column_count"),
            column_type: sym!("sqlite3_column_type"),
            column_int64: sym!("sqlite3_column_int64"),
            column_double: sym!("sqlite3_column_double"),
            column_text: sym!("sqlite3_column_text"),
            column_blob: sym!("sqlite3_column_blob"),
            column_bytes: sym!("sqlite3_column_bytes"),
            enable_load_extension: sym!("sqlite3_enable_load_extension"),
            load_extension: sym!("sqlite3_load_extension"),
            free: sym!("sqlite3_free"),
            db_config: sym!("sqlite3_db_config"),
            libversion_number: sym!("sqlite3_libversion_number"),
        }
    })
}

pub struct System(pub Db);

impl System {
    fn errmsg(&self) -> String {
        // SAFETY: open handle; NUL-terminated message.
        unsafe { CStr::from_ptr((lib().errmsg)(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    /// Runs every statement of `sql`; rows of the last one are returned.
    fn run(&self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, String> {
        let l = lib();
        let text = CString::new(sql).expect("no NUL in SQL");
        let mut tail: *const c_char = text.as_ptr();
        let mut out = Vec::new();
        // SAFETY: all pointers come from SQLite or live CStrings/slices for
        // the duration of each call.
        unsafe {
            while *tail != 0 {
                let mut st: St = std::ptr::null_mut();
                let mut next: *const c_char = std::ptr::null();
                if (l.prepare_v2)(self.0, tail, -1, &mut st, &mut next) != 0 {
                    return Err(self.errmsg());
                }
                tail = next;
                if st.is_null() {
                    continue;
                }
                for (i, p) in params.iter().enumerate() {
                    let i = i as c_int + 1;
                    match p {
                        Val::Null => (l.bind_null)(st, i),
                        Val::Int(x) => (l.bind_int64)(st, i, *x),
                        Val::Real(x) => (l.bind_double)(st, i, *x),
                        Val::Text(s) => {
                            (l.bind_text)(st, i, s.as_ptr().cast(), s.len() as c_int, TRANSIENT)
                        }
                        Val::Blob(b) => {
                            (l.bind_blob)(st, i, b.as_ptr().cast(), b.len() as c_int, TRANSIENT)
                        }
                    };
                }
                out.clear();
                let n = (l.column_count)(st);
                loop {
                    match (l.step)(st) {
                        100 => out.push(
                            (0..n)
                                .map(|c| match (l.column_type)(st, c) {
                                    1 => Val::Int((l.column_int64)(st, c)),
                                    2 => Val::Real((l.column_double)(st, c)),
                                    3 => {
                                        let p = (l.column_text)(st, c);
                                        let len = (l.column_bytes)(st, c) as usize;
                                        Val::Text(
                                            String::from_utf8_lossy(std::slice::from_raw_parts(
                                                p, len,
                                            ))
                                            .into_owned(),
                                        )
                                    }
                                    4 => {
                                        let p = (l.column_blob)(st, c);
                                        let len = (l.column_bytes)(st, c) as usize;
                                        Val::Blob(if len == 0 {
                                            Vec::new()
                                        } else {
                                            std::slice::from_raw_parts(p, len).to_vec()
                                        })
                                    }
                                    _ => Val::Null,
                                })
                                .collect(),
                        ),
                        101 => break,
                        _ => {
                            let e = self.errmsg();
                            (l.finalize)(st);
                            return Err(e);
                        }
                    }
                }
                (l.finalize)(st);
            }
        }
        Ok(out)
    }
}

impl Drop for System {
    fn drop(&mut self) {
        // SAFETY: open handle, closed once.
        unsafe { (lib().close_v2)(self.0) };
    }
}

impl Conn for System {
    fn exec(&self, sql: &str) -> Result<(), String> {
        self.run(sql, &[]).map(|_| ())
    }
    fn query(&self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, String> {
        self.run(sql, params)
    }
    fn version(&self) -> i32 {
        // SAFETY: plain function.
        unsafe { (lib().libversion_number)() }
    }
    fn set_defensive(&self, on: bool) {
        let mut out: c_int = 0;
        // SAFETY: SQLITE_DBCONFIG_DEFENSIVE (1010) takes (int, int*).
        let rc =
            unsafe { (lib().db_config)(self.0, 1010, c_int::from(on), &mut out as *mut c_int) };
        assert_eq!(rc, 0, "db_config DEFENSIVE");
    }
}

pub fn open_plain_system(path: &str) -> System {
    let l = lib();
    let p = CString::new(path).unwrap();
    let mut db: Db = std::ptr::null_mut();
    // SAFETY: valid out-pointer and path; flags READWRITE|CREATE|URI|FULLMUTEX.
    let rc = unsafe {
        (l.open_v2)(
            p.as_ptr(),
            &mut db,
            0x2 | 0x4 | 0x40 | 0x10000,
            std::ptr::null(),
        )
    };
    let c = System(db);
    assert_eq!(rc, 0, "open {path}: {}", c.errmsg());
    c
}

pub fn open_plain(path: &str) -> Box<dyn Conn> {
    Box::new(open_plain_system(path))
}

pub const DRIVER: Driver = Driver {
    open,
    plain: open_plain,
};

pub fn open(path: &str) -> Box<dyn Conn> {
    let l = lib();
    let c = open_plain_system(path);
    let db = c.0;
    let ext = CString::new(ext_path().to_string_lossy().into_owned()).unwrap();
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: open handle; err is freed with sqlite3_free.
    unsafe {
        (l.enable_load_extension)(db, 1);
        if (l.load_extension)(db, ext.as_ptr(), std::ptr::null(), &mut err) != 0 {
            let m = CStr::from_ptr(err).to_string_lossy().into_owned();
            (l.free)(err.cast());
            panic!("load_extension: {m}");
        }
    }
    Box::new(c)
}
