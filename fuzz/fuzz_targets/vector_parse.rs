//! Vector parsing: BLOBs of every element type (tagged and untagged) and
//! JSON text, through the pure-Rust decoder and through the SQL functions.
//! Checks: no panic; a decoded vector re-encodes to the same bytes and its
//! JSON reads back to the same values; SQL agrees with the decoder; an
//! error leaves the connection usable.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use pocketvec0::vector::{parse_json, ElemType, Input, Vector};
use pocketvec_fuzz::{assert_usable, distance, f32_blob, open, query, tolerance, Metric};
use rusqlite::types::Value;
use rusqlite::Connection;

thread_local! {
    static CONN: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

const TYPES: [ElemType; 3] = [ElemType::F32, ElemType::F16, ElemType::Int8];

fn check_roundtrip(v: &Vector, bytes: Option<&[u8]>) {
    if let Some(b) = bytes {
        assert_eq!(v.to_bytes(), b, "decoded BLOB re-encodes differently");
    }
    let json = v.to_json();
    let back = parse_json(&json).expect("to_json output parses");
    assert_eq!(back, v.to_f32(), "JSON round trip changed values: {json}");
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let (mode, rest) = (data[0], &data[1..]);
    let t = TYPES[(mode % 3) as usize];

    // 1. The pure decoder.
    let blob = Vector::from_blob(t, rest);
    match &blob {
        Ok(v) => {
            assert_eq!(v.dim() * t.size(), rest.len());
            check_roundtrip(v, Some(rest));
        }
        Err(e) => assert!(!e.is_empty()),
    }
    let text = String::from_utf8_lossy(rest);
    let json = parse_json(&text);
    if let Ok(v) = &json {
        assert!(!v.is_empty() && v.iter().all(|x| x.is_finite()));
        check_roundtrip(&Vector::F32(v.clone()), None);
    }
    for inp in [
        Input::Blob {
            bytes: rest,
            tag: None,
        },
        Input::Blob {
            bytes: rest,
            tag: Some(t),
        },
        Input::Json(&text),
    ] {
        for dim in [1usize, 2, 3, 4, rest.len() / 4, rest.len() / 2, rest.len()] {
            if dim == 0 {
                continue;
            }
            if let Ok(v) = inp.decode_for_table(t, dim) {
                assert_eq!(
                    v.dim(),
                    dim,
                    "decode_for_table returned the wrong dimension"
                );
                assert_eq!(v.elem_type(), t, "decode_for_table returned the wrong type");
            }
        }
        let _ = inp.decode(t);
        let _ = inp.set_q_dim();
    }

    // 2. The SQL functions over the same input, as BLOB and as TEXT.
    CONN.with(|cell| {
        let mut cell = cell.borrow_mut();
        let c = cell.get_or_insert_with(open);
        let conv = match t {
            ElemType::F32 => "pocketvec_f32",
            ElemType::F16 => "pocketvec_f16",
            ElemType::Int8 => "pocketvec_int8",
        };
        // An untagged BLOB given to pocketvec_f32 is read as f32.
        let r = query(
            c,
            "SELECT pocketvec_to_json(pocketvec_f32(?1))",
            &[Value::Blob(rest.to_vec())],
        );
        match (&r, Vector::from_blob(ElemType::F32, rest)) {
            (Ok(rows), Ok(v)) => {
                let Value::Text(s) = &rows[0][0] else {
                    panic!("to_json gave {:?}", rows[0][0])
                };
                assert_eq!(parse_json(s).expect("SQL JSON parses"), v.to_f32());
            }
            (Err(_), Err(_)) => {}
            (r, v) => panic!("SQL pocketvec_f32(BLOB) and the decoder disagree: {r:?} vs {v:?}"),
        }
        let r = query(
            c,
            "SELECT pocketvec_to_json(pocketvec_f32(?1))",
            &[Value::Text(text.to_string())],
        );
        match (&r, &json) {
            (Ok(rows), Ok(v)) => {
                let Value::Text(s) = &rows[0][0] else {
                    panic!("to_json gave {:?}", rows[0][0])
                };
                assert_eq!(&parse_json(s).expect("SQL JSON parses"), v);
            }
            (Err(_), Err(_)) => {}
            (r, v) => panic!("SQL pocketvec_f32(TEXT) and parse_json disagree: {r:?} vs {v:?}"),
        }
        // Every function with a BLOB and a TEXT argument: never crashes,
        // errors leave the connection usable.
        for f in [
            conv,
            "pocketvec_dim",
            "pocketvec_norm",
            "pocketvec_normalize",
            "pocketvec_to_json",
            "pocketvec_set_q",
        ] {
            for arg in [Value::Blob(rest.to_vec()), Value::Text(text.to_string())] {
                let _ = query(c, &format!("SELECT {f}(?1)"), &[arg]);
            }
        }
        // Distances between the two halves, checked against f64.
        let half = rest.len() / 2 / 4 * 4;
        let (a, b) = (&rest[..half], &rest[half..2 * half]);
        for m in [Metric::Cosine, Metric::L2, Metric::Dot] {
            let sql = format!("SELECT pocketvec_distance_{}(?1, ?2)", m.name());
            let r = query(c, &sql, &[Value::Blob(a.to_vec()), Value::Blob(b.to_vec())]);
            let va = Vector::from_blob(ElemType::F32, a);
            let vb = Vector::from_blob(ElemType::F32, b);
            match (r, va, vb) {
                (Ok(rows), Ok(va), Ok(vb)) => {
                    let (fa, fb) = (va.to_f32(), vb.to_f32());
                    let want = distance(m, &fa, &fb);
                    match &rows[0][0] {
                        Value::Real(got) => {
                            // Overflow to inf in f32 is allowed where f64 is finite but huge.
                            let eps = tolerance(m, &fa, &fb);
                            if want.abs() < 1e30 && got.is_finite() {
                                assert!(
                                    (got - want).abs() <= eps,
                                    "{} distance {got} vs reference {want} (eps {eps})",
                                    m.name()
                                );
                            }
                        }
                        Value::Null => {}
                        v => panic!("distance returned {v:?}"),
                    }
                }
                (Ok(rows), va, vb) => {
                    panic!("distance of undecodable input returned {rows:?} ({va:?}, {vb:?})")
                }
                (Err(_), _, _) => {}
            }
        }
        let _ = f32_blob;
        assert_usable(c);
    });
});
