//! Scalar SQL functions, registered from one table.
//!
//! Vector functions come in three names: the plain one reads an untagged
//! BLOB as f32, `_f16` and `_int8` read it as that type (a subtype from
//! `pocketvec_f16()`/`pocketvec_int8()` always wins). Results that are
//! vectors carry the subtype of their element type.

use std::ffi::{c_int, c_void, CString};
use std::sync::Arc;

use sqlite3ext_sys as sys;

use crate::api::{self, call, guard, Ctx, Value, ValueType};
use crate::state::ConnState;
use crate::vector::{quantize_i8, quantize_i8_scaled, ElemType, Input, Vector};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Op {
    Cosine,
    DistanceCosine,
    DistanceL2,
    DistanceDot,
    Dot,
    Norm,
    Dim,
    Normalize,
    ToJson,
    ToF32,
    ToF16,
    ToInt8,
    Version,
    Debug,
}

/// Registered once per (name, arity); owned by SQLite through its
/// destructor.
struct FnDef {
    name: String,
    op: Op,
    ty: ElemType,
    /// Accepted argument counts. Functions are registered variadic (-1) so
    /// a wrong count gets a message saying what was expected.
    arity: &'static [c_int],
}

/// Operations that have `_f16`/`_int8` variants, with their arities.
const TYPED_OPS: &[(&str, Op, &[c_int])] = &[
    ("pocketvec_cosine", Op::Cosine, &[2]),
    ("pocketvec_distance_cosine", Op::DistanceCosine, &[2]),
    ("pocketvec_distance_l2", Op::DistanceL2, &[2]),
    ("pocketvec_distance_dot", Op::DistanceDot, &[2]),
    ("pocketvec_dot", Op::Dot, &[2]),
    ("pocketvec_norm", Op::Norm, &[1]),
    ("pocketvec_dim", Op::Dim, &[1]),
    ("pocketvec_normalize", Op::Normalize, &[1]),
    ("pocketvec_to_json", Op::ToJson, &[1]),
];

/// Operations without typed variants.
const PLAIN_OPS: &[(&str, Op, &[c_int])] = &[
    ("pocketvec_f32", Op::ToF32, &[1]),
    ("pocketvec_f16", Op::ToF16, &[1]),
    ("pocketvec_int8", Op::ToInt8, &[1, 2]),
    ("pocketvec_version", Op::Version, &[0]),
    ("pocketvec_debug", Op::Debug, &[0]),
];

/// "expected 1 or 2 arguments, found 3".
fn arity_error(arity: &[c_int], found: c_int) -> String {
    let words: Vec<String> = arity.iter().map(|n| n.to_string()).collect();
    let last = arity.last().copied().unwrap_or(0);
    format!(
        "expected {} argument{}, found {found}",
        words.join(" or "),
        if last == 1 { "" } else { "s" }
    )
}

fn sets_subtype(op: Op) -> bool {
    matches!(op, Op::Normalize | Op::ToF32 | Op::ToF16 | Op::ToInt8)
}

fn reads_vectors(op: Op) -> bool {
    !matches!(op, Op::Version | Op::Debug)
}

/// Function flags supported by the host.
fn flags(deterministic: bool, reads_subtype: bool, sets_subtype: bool) -> c_int {
    let a = api::api();
    let mut f = api::SQLITE_UTF8;
    if deterministic {
        f |= api::SQLITE_DETERMINISTIC;
        if a.has(api::V3_31) {
            f |= api::SQLITE_INNOCUOUS;
        }
    }
    if reads_subtype && a.has(api::V3_30) {
        f |= api::SQLITE_SUBTYPE;
    }
    if sets_subtype && a.has(api::V3_45) {
        f |= api::SQLITE_RESULT_SUBTYPE;
    }
    f
}

/// Registers every scalar function on `db`.
///
/// # Safety
/// `db` is an open connection and the API is installed.
pub unsafe fn register(db: *mut sys::sqlite3, conn: &Arc<ConnState>) -> Result<(), String> {
    let mut defs: Vec<(String, Op, ElemType, &'static [c_int])> = Vec::new();
    for &(name, op, n) in TYPED_OPS {
        defs.push((name.to_string(), op, ElemType::F32, n));
        defs.push((format!("{name}_f16"), op, ElemType::F16, n));
        defs.push((format!("{name}_int8"), op, ElemType::Int8, n));
    }
    for &(name, op, n) in PLAIN_OPS {
        defs.push((name.to_string(), op, ElemType::F32, n));
    }
    for (name, op, ty, arity) in defs {
        let f = flags(true, reads_vectors(op), sets_subtype(op));
        let c_name = CString::new(name.clone()).expect("function names have no NUL");
        let data = Box::into_raw(Box::new(FnDef {
            name,
            op,
            ty,
            arity,
        }));
        // SAFETY: db valid; on failure SQLite calls the destructor itself
        // (create_function_v2 contract), so `data` is never leaked or
        // double-freed.
        let rc = unsafe {
            call!(create_function_v2(
                db,
                c_name.as_ptr(),
                -1,
                f,
                data.cast(),
                Some(x_func),
                None,
                None,
                Some(drop_box::<FnDef>),
            ))
        };
        if rc != api::SQLITE_OK {
            // SAFETY: db valid.
            return Err(format!(
                "pocketvec: cannot register {}: {}",
                c_name.to_string_lossy(),
                unsafe { api::errmsg(db) }
            ));
        }
    }
    let state = Arc::into_raw(Arc::clone(conn));
    // SAFETY: as above; the destructor releases this Arc reference.
    let rc = unsafe {
        call!(create_function_v2(
            db,
            c"pocketvec_set_q".as_ptr(),
            -1,
            flags(false, true, false),
            state as *mut c_void,
            Some(x_set_q),
            None,
            None,
            Some(drop_arc::<ConnState>),
        ))
    };
    if rc != api::SQLITE_OK {
        // SAFETY: db valid.
        return Err(format!(
            "pocketvec: cannot register pocketvec_set_q: {}",
            unsafe { api::errmsg(db) }
        ));
    }
    type XFunc =
        unsafe extern "C" fn(*mut sys::sqlite3_context, c_int, *mut *mut sys::sqlite3_value);
    let conn_fns: [(&std::ffi::CStr, XFunc); 2] =
        [(c"pocketvec_info", x_info), (c"pocketvec_cache", x_cache)];
    for (name, f) in conn_fns {
        let state = Arc::into_raw(Arc::clone(conn));
        // SAFETY: as above; the destructor releases this Arc reference.
        let rc = unsafe {
            call!(create_function_v2(
                db,
                name.as_ptr(),
                -1,
                flags(false, false, false),
                state as *mut c_void,
                Some(f),
                None,
                None,
                Some(drop_arc::<ConnState>),
            ))
        };
        if rc != api::SQLITE_OK {
            // SAFETY: db valid.
            return Err(format!(
                "pocketvec: cannot register {}: {}",
                name.to_string_lossy(),
                unsafe { api::errmsg(db) }
            ));
        }
    }
    Ok(())
}

/// `(table, schema)` from the arguments of `pocketvec_info` /
/// `pocketvec_cache` (schema defaults to `main`).
fn table_args(args: &[Value<'_>], schema_at: usize) -> Result<(String, String), String> {
    let text = |v: Value<'_>, what: &str| match v.value_type() {
        ValueType::Text => Ok(String::from_utf8_lossy(v.text()).into_owned()),
        _ => Err(format!(
            "expected the {what} name as text, found {}",
            v.describe()
        )),
    };
    let table = text(args[0], "table")?;
    let schema = match args.get(schema_at) {
        Some(v) => text(*v, "schema")?,
        None => "main".to_string(),
    };
    Ok((table, schema))
}

/// `pocketvec_info(table [, schema])`: the table's JSON description
/// (`SELECT t FROM t WHERE t = 'info'`).
unsafe extern "C" fn x_info(
    ctx: *mut sys::sqlite3_context,
    argc: c_int,
    argv: *mut *mut sys::sqlite3_value,
) {
    let c = Ctx(ctx);
    guard(
        |msg| c.result_error(&msg),
        || {
            if !(1..=2).contains(&argc) {
                c.result_error(&format!("pocketvec_info: {}", arity_error(&[1, 2], argc)));
                return;
            }
            // SAFETY: SQLite passes argc valid values.
            let args = unsafe { Value::args(argc, argv) };
            let r = table_args(&args, 1).and_then(|(table, schema)| {
                let t = api::quote_ident(&table);
                let sql = format!(
                    "SELECT {t} FROM {}.{t} WHERE {t} = 'info'",
                    api::quote_ident(&schema)
                );
                // SAFETY: the connection running this function.
                let mut st = unsafe { api::Stmt::prepare(c.db(), &sql, false) }.map_err(|e| {
                    format!(
                        "{} is not a pocketvec table ({e})",
                        api::quote_ident(&table)
                    )
                })?;
                match st.step()? {
                    api::Step::Row => Ok(st.column_text(0)),
                    api::Step::Done => Err(format!(
                        "{} returned no description",
                        api::quote_ident(&table)
                    )),
                }
            });
            match r {
                Ok(j) => c.result_text(&j),
                Err(e) => c.result_error(&format!("pocketvec_info: {e}")),
            }
        },
    )
}

/// `pocketvec_cache(table, on [, schema])`: switches the table's RAM cache
/// on (1) or off (0) for this connection, or back to the table's `cache=`
/// option (NULL). Returns the setting (NULL: the table's option).
unsafe extern "C" fn x_cache(
    ctx: *mut sys::sqlite3_context,
    argc: c_int,
    argv: *mut *mut sys::sqlite3_value,
) {
    let c = Ctx(ctx);
    guard(
        |msg| c.result_error(&msg),
        || {
            // SAFETY: user data is the Arc<ConnState> of this connection.
            let state = unsafe { &*(c.user_data() as *const ConnState) };
            if !(2..=3).contains(&argc) {
                c.result_error(&format!("pocketvec_cache: {}", arity_error(&[2, 3], argc)));
                return;
            }
            // SAFETY: SQLite passes argc valid values.
            let args = unsafe { Value::args(argc, argv) };
            let r = table_args(&args, 2).and_then(|(table, schema)| {
                let on = match args[1].value_type() {
                    ValueType::Null => None,
                    ValueType::Integer if matches!(args[1].int64(), 0 | 1) => {
                        Some(args[1].int64() == 1)
                    }
                    _ => {
                        return Err(format!(
                            "expected 1 (on), 0 (off) or NULL (the table's option), found {}",
                            args[1].describe()
                        ))
                    }
                };
                state.set_cache_override(&crate::state::table_key(&schema, &table), on);
                Ok(on)
            });
            match r {
                Ok(Some(on)) => c.result_i64(i64::from(on)),
                Ok(None) => c.result_null(),
                Err(e) => c.result_error(&format!("pocketvec_cache: {e}")),
            }
        },
    )
}

unsafe extern "C" fn drop_box<T>(p: *mut c_void) {
    guard(
        |_| (),
        || {
            if !p.is_null() {
                // SAFETY: p came from Box::into_raw::<T> and is dropped once.
                drop(unsafe { Box::from_raw(p.cast::<T>()) });
            }
        },
    )
}

pub(crate) unsafe extern "C" fn drop_arc<T>(p: *mut c_void) {
    guard(
        |_| (),
        || {
            if !p.is_null() {
                // SAFETY: p came from Arc::into_raw::<T>; this releases that reference.
                drop(unsafe { Arc::from_raw(p.cast::<T>()) });
            }
        },
    )
}

unsafe extern "C" fn x_func(
    ctx: *mut sys::sqlite3_context,
    argc: c_int,
    argv: *mut *mut sys::sqlite3_value,
) {
    let c = Ctx(ctx);
    guard(
        |msg| c.result_error(&msg),
        || {
            // SAFETY: user data is the FnDef registered with this function.
            let def = unsafe { &*(c.user_data() as *const FnDef) };
            if !def.arity.contains(&argc) {
                c.result_error(&format!("{}: {}", def.name, arity_error(def.arity, argc)));
                return;
            }
            // SAFETY: SQLite passes argc valid values.
            let args = unsafe { Value::args(argc, argv) };
            if let Err(e) = run(def, c, &args) {
                c.result_error(&format!("{}: {e}", def.name));
            }
        },
    )
}

unsafe extern "C" fn x_set_q(
    ctx: *mut sys::sqlite3_context,
    argc: c_int,
    argv: *mut *mut sys::sqlite3_value,
) {
    let c = Ctx(ctx);
    guard(
        |msg| c.result_error(&msg),
        || {
            // SAFETY: user data is the Arc<ConnState> of this connection.
            let state = unsafe { &*(c.user_data() as *const ConnState) };
            if argc != 1 {
                c.result_error(&format!("pocketvec_set_q: {}", arity_error(&[1], argc)));
                return;
            }
            // SAFETY: SQLite passes argc (= 1) valid values.
            let args = unsafe { Value::args(argc, argv) };
            let v = args[0];
            if v.value_type() == ValueType::Null {
                state.set_query(None);
                c.result_null();
                return;
            }
            let r = read_input(v, 1).and_then(|input| {
                let dim = input.set_q_dim()?;
                // Validate what can be validated without a table: JSON
                // numbers, and tagged or f32 BLOBs being finite.
                if let Input::Json(_) | Input::Blob { tag: Some(_), .. } = input {
                    input.decode(ElemType::F32)?;
                }
                state.set_query(Some(input.to_owned_input()));
                Ok(dim)
            });
            match r {
                Ok(dim) => c.result_i64(dim as i64),
                Err(e) => c.result_error(&format!("pocketvec_set_q: {e}")),
            }
        },
    )
}

/// Reads argument `n` (1-based, for messages) as a vector input.
pub fn read_input(v: Value<'_>, n: usize) -> Result<Input<'_>, String> {
    match v.value_type() {
        ValueType::Blob => Ok(Input::Blob {
            bytes: v.blob(),
            tag: ElemType::from_subtype(v.subtype()),
        }),
        ValueType::Text => std::str::from_utf8(v.text())
            .map(Input::Json)
            .map_err(|_| format!("argument {n}: text is not valid UTF-8")),
        t => Err(format!(
            "argument {n}: expected a vector (a BLOB or a JSON array text), found {}",
            match t {
                ValueType::Null => "NULL".to_string(),
                _ => v.describe(),
            }
        )),
    }
}

fn arg_vector(v: Value<'_>, n: usize, ty: ElemType) -> Result<Vector, String> {
    read_input(v, n)?
        .decode(ty)
        .map_err(|e| format!("argument {n}: {e}"))
}

fn result_vector(c: Ctx, v: &Vector) {
    c.result_blob(&v.to_bytes());
    c.result_subtype(v.elem_type().subtype());
}

fn run(def: &FnDef, c: Ctx, args: &[Value<'_>]) -> Result<(), String> {
    match def.op {
        Op::Version => {
            c.result_text(env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Op::Debug => {
            c.result_text(&debug_text());
            Ok(())
        }
        Op::Cosine | Op::DistanceCosine | Op::DistanceL2 | Op::DistanceDot | Op::Dot => {
            let a = arg_vector(args[0], 1, def.ty)?;
            let b = arg_vector(args[1], 2, def.ty)?;
            c.result_f64(binary(def.op, a, b)?);
            Ok(())
        }
        Op::Norm => {
            let v = arg_vector(args[0], 1, def.ty)?;
            c.result_f64(f64::from(match &v {
                Vector::F32(x) => kernels::norm_f32(x),
                Vector::F16(x) => kernels::norm_f16(x),
                Vector::I8(x) => kernels::norm_i8(x),
            }));
            Ok(())
        }
        Op::Dim => {
            let v = arg_vector(args[0], 1, def.ty)?;
            c.result_i64(v.dim() as i64);
            Ok(())
        }
        Op::Normalize => {
            let v = match arg_vector(args[0], 1, def.ty)? {
                Vector::F32(mut x) => {
                    kernels::normalize_f32(&mut x);
                    Vector::F32(x)
                }
                Vector::F16(mut x) => {
                    kernels::normalize_f16(&mut x);
                    Vector::F16(x)
                }
                Vector::I8(_) => {
                    return Err(
                        "int8 vectors cannot be normalized; normalize the float vector \
                                before pocketvec_int8()"
                            .into(),
                    )
                }
            };
            result_vector(c, &v);
            Ok(())
        }
        Op::ToJson => {
            let v = arg_vector(args[0], 1, def.ty)?;
            c.result_text(&v.to_json());
            Ok(())
        }
        Op::ToF32 | Op::ToF16 => {
            let to = if def.op == Op::ToF32 {
                ElemType::F32
            } else {
                ElemType::F16
            };
            let v = arg_vector(args[0], 1, ElemType::F32)?
                .convert(to)
                .map_err(|e| format!("argument 1: {e}"))?;
            result_vector(c, &v);
            Ok(())
        }
        Op::ToInt8 => {
            let v = arg_vector(args[0], 1, ElemType::F32)?;
            let q = match (v, args.get(1)) {
                (Vector::I8(x), None) => x,
                (v, None) => {
                    quantize_i8(&v.to_f32())
                        .map_err(|e| format!("argument 1: {e}"))?
                        .0
                }
                (v, Some(s)) => {
                    let scale = match s.value_type() {
                        ValueType::Integer | ValueType::Float => s.double(),
                        _ => {
                            return Err(format!(
                                "argument 2: expected a positive scale, found {}",
                                s.describe()
                            ))
                        }
                    };
                    if let Vector::I8(_) = v {
                        return Err("argument 1 is already an int8 vector; a scale applies to float vectors".into());
                    }
                    quantize_i8_scaled(&v.to_f32(), scale)
                        .map_err(|e| format!("argument 2: {e}"))?
                }
            };
            result_vector(c, &Vector::I8(q));
            Ok(())
        }
    }
}

/// Applies a two-vector operation after settling a common element type:
/// equal types stay, f32 with f16 compute in f32, int8 mixes with nothing.
fn binary(op: Op, a: Vector, b: Vector) -> Result<f64, String> {
    let (a, b) = match (a.elem_type(), b.elem_type()) {
        (x, y) if x == y => (a, b),
        (ElemType::Int8, other) | (other, ElemType::Int8) => {
            return Err(format!(
                "cannot mix an int8 vector with an {} vector; convert both with pocketvec_int8() \
                 or use the _int8 function",
                other.name()
            ))
        }
        _ => (a.convert(ElemType::F32)?, b.convert(ElemType::F32)?),
    };
    if a.dim() != b.dim() {
        return Err(format!(
            "dimension mismatch: argument 1 has {} dimensions, argument 2 has {}",
            a.dim(),
            b.dim()
        ));
    }
    let r = match (&a, &b) {
        (Vector::F32(x), Vector::F32(y)) => match op {
            Op::Cosine => kernels::cosine_f32(x, y),
            Op::DistanceCosine => kernels::cosine_distance_f32(x, y),
            Op::DistanceL2 => kernels::l2_f32(x, y),
            Op::DistanceDot => kernels::dot_f32(x, y).map(|d| -d),
            _ => kernels::dot_f32(x, y),
        },
        (Vector::F16(x), Vector::F16(y)) => match op {
            Op::Cosine => kernels::cosine_f16(x, y),
            Op::DistanceCosine => kernels::cosine_distance_f16(x, y),
            Op::DistanceL2 => kernels::l2_f16(x, y),
            Op::DistanceDot => kernels::dot_f16(x, y).map(|d| -d),
            _ => kernels::dot_f16(x, y),
        },
        (Vector::I8(x), Vector::I8(y)) => match op {
            Op::Cosine => kernels::cosine_i8(x, y),
            Op::DistanceCosine => kernels::cosine_distance_i8(x, y),
            Op::DistanceL2 => kernels::l2_i8(x, y),
            Op::DistanceDot => {
                return kernels::dot_i8(x, y)
                    .map(|d| -f64::from(d))
                    .map_err(|e| e.to_string())
            }
            _ => {
                return kernels::dot_i8(x, y)
                    .map(f64::from)
                    .map_err(|e| e.to_string())
            }
        },
        _ => unreachable!("element types were unified above"),
    };
    r.map(f64::from).map_err(|e| e.to_string())
}

/// `pocketvec_debug()`: version, ISA in use, build details, host SQLite.
pub fn debug_text() -> String {
    let isas: Vec<&str> = kernels::available_isas().iter().map(|i| i.name()).collect();
    format!(
        "pocketvec {}\nisa: {}\navailable isas: {}\nsqlite: {} (host)\nbuild: {}, profile {}, target {}",
        env!("CARGO_PKG_VERSION"),
        kernels::isa().name(),
        isas.join(", "),
        api::api().version_text(),
        env!("POCKETVEC_RUSTC"),
        env!("POCKETVEC_PROFILE"),
        env!("POCKETVEC_TARGET"),
    )
}
