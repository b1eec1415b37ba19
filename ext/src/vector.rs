//! Vector values: element types, BLOB/JSON decoding, conversions.
//!
//! No SQLite here; the callers turn `sqlite3_value`s into [`Input`]s.
//!
//! # The vector-type rule (documented once, in `README.md (ext section)`)
//! A BLOB cannot say its element type (768 f16 and 384 f32 have the same
//! length), so the type is decided, in this order, by:
//! 1. the subtype set by `pocketvec_f32()`/`pocketvec_f16()`/`pocketvec_int8()`;
//! 2. otherwise the context: the virtual table's `type=` (a query BLOB of
//!    exactly `dim × size(type)` bytes), a typed function name
//!    (`pocketvec_dot_f16`, `pocketvec_dot_int8`), and else f32.
//!
//! JSON text is an array of numbers. In an int8 context the numbers must be
//! integers in [-128, 127] and are taken literally. A float vector (f32 BLOB,
//! JSON, f16) given where int8 is needed is quantized with `pocketvec_int8`'s
//! mapping; an f32 vector given where f16 is needed is rounded to nearest.

use std::fmt::Write as _;

use kernels::f16;

/// Subtypes marking vector BLOBs (only the low 8 bits survive in SQLite).
pub const SUBTYPE_F32: u32 = 0x70;
pub const SUBTYPE_F16: u32 = 0x71;
pub const SUBTYPE_INT8: u32 = 0x72;

/// Largest `dim` a virtual table accepts.
pub const MAX_DIM: usize = 65_536;

/// Element type of a vector.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ElemType {
    F32,
    F16,
    Int8,
}

impl ElemType {
    pub fn size(self) -> usize {
        match self {
            ElemType::F32 => 4,
            ElemType::F16 => 2,
            ElemType::Int8 => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ElemType::F32 => "f32",
            ElemType::F16 => "f16",
            ElemType::Int8 => "int8",
        }
    }
    pub fn parse(s: &str) -> Option<ElemType> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" | "float" => Some(ElemType::F32),
            "f16" | "float16" | "half" => Some(ElemType::F16),
            "int8" | "i8" => Some(ElemType::Int8),
            _ => None,
        }
    }
    pub fn subtype(self) -> u32 {
        match self {
            ElemType::F32 => SUBTYPE_F32,
            ElemType::F16 => SUBTYPE_F16,
            ElemType::Int8 => SUBTYPE_INT8,
        }
    }
    pub fn from_subtype(t: u32) -> Option<ElemType> {
        match t {
            SUBTYPE_F32 => Some(ElemType::F32),
            SUBTYPE_F16 => Some(ElemType::F16),
            SUBTYPE_INT8 => Some(ElemType::Int8),
            _ => None,
        }
    }
}

/// An owned, validated vector (non-empty, finite).
#[derive(Clone, Debug, PartialEq)]
pub enum Vector {
    F32(Vec<f32>),
    F16(Vec<f16>),
    I8(Vec<i8>),
}

impl Vector {
    pub fn elem_type(&self) -> ElemType {
        match self {
            Vector::F32(_) => ElemType::F32,
            Vector::F16(_) => ElemType::F16,
            Vector::I8(_) => ElemType::Int8,
        }
    }
    pub fn dim(&self) -> usize {
        match self {
            Vector::F32(v) => v.len(),
            Vector::F16(v) => v.len(),
            Vector::I8(v) => v.len(),
        }
    }
    /// Little-endian bytes, the storage format (numpy `tobytes()`).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Vector::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Vector::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Vector::I8(v) => v.iter().map(|&x| x as u8).collect(),
        }
    }
    /// Element values as f32 (int8 values are taken as integers).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Vector::F32(v) => v.clone(),
            Vector::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            Vector::I8(v) => v.iter().map(|&x| f32::from(x)).collect(),
        }
    }
    /// JSON array text; floats in the shortest form that reads back exactly.
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(self.dim() * 12 + 2);
        s.push('[');
        let mut push = |i: usize, x: &dyn std::fmt::Debug| {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{x:?}");
        };
        match self {
            Vector::F32(v) => v.iter().enumerate().for_each(|(i, x)| push(i, x)),
            Vector::F16(v) => v.iter().enumerate().for_each(|(i, x)| push(i, &x.to_f32())),
            Vector::I8(v) => v.iter().enumerate().for_each(|(i, x)| push(i, x)),
        }
        s.push(']');
        s
    }

    /// Decodes a BLOB of the given element type, rejecting empty, ragged or
    /// non-finite input.
    pub fn from_blob(t: ElemType, bytes: &[u8]) -> Result<Vector, String> {
        if bytes.is_empty() {
            return Err(format!(
                "expected a vector of {} values, found an empty BLOB",
                t.name()
            ));
        }
        if bytes.len() % t.size() != 0 {
            return Err(format!(
                "a BLOB of {} values needs a length divisible by {}, found a BLOB of {} bytes",
                t.name(),
                t.size(),
                bytes.len()
            ));
        }
        let v = match t {
            ElemType::F32 => Vector::F32(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            ElemType::F16 => Vector::F16(
                bytes
                    .chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
            ElemType::Int8 => Vector::I8(bytes.iter().map(|&b| b as i8).collect()),
        };
        v.check_finite()?;
        Ok(v)
    }

    fn check_finite(&self) -> Result<(), String> {
        let bad = match self {
            Vector::F32(v) => v.iter().position(|x| !x.is_finite()).map(|i| (i, v[i])),
            Vector::F16(v) => v
                .iter()
                .position(|x| !x.is_finite())
                .map(|i| (i, v[i].to_f32())),
            Vector::I8(_) => None,
        };
        match bad {
            Some((i, x)) if x.is_nan() => Err(format!(
                "element at index {i} is NaN; vectors must be finite"
            )),
            Some((i, x)) => Err(format!(
                "element at index {i} is {x}; vectors must be finite"
            )),
            None => Ok(()),
        }
    }

    /// Converts to another element type (see the module docs for the rule).
    pub fn convert(self, to: ElemType) -> Result<Vector, String> {
        match (self, to) {
            (v @ Vector::F32(_), ElemType::F32)
            | (v @ Vector::F16(_), ElemType::F16)
            | (v @ Vector::I8(_), ElemType::Int8) => Ok(v),
            (v, ElemType::F32) => Ok(Vector::F32(v.to_f32())),
            (Vector::F32(v), ElemType::F16) => f32_to_f16(&v).map(Vector::F16),
            (Vector::I8(v), ElemType::F16) => Ok(Vector::F16(
                v.iter().map(|&x| f16::from_f32(f32::from(x))).collect(),
            )),
            (v, ElemType::Int8) => Ok(Vector::I8(quantize_i8(&v.to_f32())?.0)),
        }
    }
}

/// Round-to-nearest f32 → f16; values beyond ±65504 are an error.
pub fn f32_to_f16(v: &[f32]) -> Result<Vec<f16>, String> {
    let mut out = vec![f16::ZERO; v.len()];
    kernels::convert::f32_to_f16(v, &mut out).map_err(|e| e.to_string())?;
    if let Some(i) = out.iter().position(|x| x.is_infinite()) {
        return Err(format!(
            "element at index {i} ({}) is out of the f16 range (±65504)",
            v[i]
        ));
    }
    Ok(out)
}

/// `pocketvec_int8`'s mapping: symmetric per-vector quantization,
/// scale = max|x| / 127, q = round(x / scale) clamped to [-127, 127].
pub fn quantize_i8(v: &[f32]) -> Result<(Vec<i8>, f32), String> {
    let mut out = vec![0i8; v.len()];
    let scale = kernels::convert::quantize_i8(v, &mut out).map_err(|e| e.to_string())?;
    Ok((out, scale))
}

/// Fixed-scale quantization: q = round(x / scale) clamped to [-127, 127].
pub fn quantize_i8_scaled(v: &[f32], scale: f64) -> Result<Vec<i8>, String> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(format!(
            "the int8 scale must be a positive finite number, found {scale}"
        ));
    }
    Ok(v.iter()
        .map(|&x| (f64::from(x) / scale).round().clamp(-127.0, 127.0) as i8)
        .collect())
}

/// Parses a JSON array of numbers into f32 values.
pub fn parse_json(text: &str) -> Result<Vec<f32>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let serde_json::Value::Array(items) = value else {
        return Err(format!(
            "expected a JSON array of numbers, found {}",
            json_kind(&value)
        ));
    };
    if items.is_empty() {
        return Err("expected a vector, found an empty JSON array".into());
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let x = item.as_f64().ok_or_else(|| {
                format!(
                    "JSON element at index {i} is {}, expected a number",
                    json_kind(item)
                )
            })?;
            let y = x as f32;
            if !y.is_finite() {
                return Err(format!(
                    "JSON element at index {i} ({x:?}) is out of the f32 range"
                ));
            }
            Ok(y)
        })
        .collect()
}

/// JSON in an int8 context: integers in [-128, 127], taken literally.
pub fn json_to_i8(values: &[f32]) -> Result<Vec<i8>, String> {
    values
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if x.fract() == 0.0 && (-128.0..=127.0).contains(&x) {
                Ok(x as i8)
            } else {
                Err(format!(
                    "JSON element at index {i} is {x}; an int8 vector needs integers in [-128, 127] \
                     (use pocketvec_int8() to quantize floats)"
                ))
            }
        })
        .collect()
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A vector argument before its element type is settled.
#[derive(Clone, Debug)]
pub enum Input<'a> {
    /// BLOB bytes and the element type its subtype names, if any.
    Blob {
        bytes: &'a [u8],
        tag: Option<ElemType>,
    },
    /// JSON text.
    Json(&'a str),
}

/// An owned [`Input`], e.g. the connection's `pocketvec_set_q` vector.
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedInput {
    Blob {
        bytes: Vec<u8>,
        tag: Option<ElemType>,
    },
    Json(String),
}

impl OwnedInput {
    pub fn as_input(&self) -> Input<'_> {
        match self {
            OwnedInput::Blob { bytes, tag } => Input::Blob { bytes, tag: *tag },
            OwnedInput::Json(s) => Input::Json(s),
        }
    }
}

impl Input<'_> {
    pub fn to_owned_input(&self) -> OwnedInput {
        match self {
            Input::Blob { bytes, tag } => OwnedInput::Blob {
                bytes: bytes.to_vec(),
                tag: *tag,
            },
            Input::Json(s) => OwnedInput::Json((*s).to_string()),
        }
    }

    /// Reads a function argument. Untagged BLOBs are `default`; JSON is f32,
    /// or literal integers when `default` is int8, or rounded when f16.
    pub fn decode(&self, default: ElemType) -> Result<Vector, String> {
        match self {
            Input::Blob { bytes, tag } => Vector::from_blob(tag.unwrap_or(default), bytes),
            Input::Json(text) => {
                let v = parse_json(text)?;
                match default {
                    ElemType::F32 => Ok(Vector::F32(v)),
                    ElemType::F16 => f32_to_f16(&v).map(Vector::F16),
                    ElemType::Int8 => json_to_i8(&v).map(Vector::I8),
                }
            }
        }
    }

    /// Reads a query vector for a table of element type `t` and dimension
    /// `dim`, converting it to `t`.
    pub fn decode_for_table(&self, t: ElemType, dim: usize) -> Result<Vector, String> {
        let expected = || {
            let mut s = format!(
                "{dim} dimensions (a BLOB of {} bytes as {}",
                dim * t.size(),
                t.name()
            );
            if t != ElemType::F32 {
                let _ = write!(s, ", of {} bytes as f32", dim * 4);
            }
            let _ = write!(s, ", or a JSON array of {dim} numbers)");
            s
        };
        let v = match self {
            Input::Json(text) => {
                let v = parse_json(text)?;
                if v.len() != dim {
                    return Err(format!(
                        "expected {}, found a JSON array of {} numbers",
                        expected(),
                        v.len()
                    ));
                }
                match t {
                    ElemType::Int8 => Vector::I8(json_to_i8(&v)?),
                    _ => Vector::F32(v),
                }
            }
            Input::Blob {
                bytes,
                tag: Some(tag),
            } => {
                let v = Vector::from_blob(*tag, bytes)?;
                if v.dim() != dim {
                    return Err(format!(
                        "expected {}, found a {} vector of {} dimensions",
                        expected(),
                        tag.name(),
                        v.dim()
                    ));
                }
                v
            }
            Input::Blob { bytes, tag: None } => {
                if bytes.len() == dim * t.size() {
                    Vector::from_blob(t, bytes)?
                } else if bytes.len() == dim * 4 {
                    Vector::from_blob(ElemType::F32, bytes)?
                } else {
                    return Err(format!(
                        "expected {}, found a BLOB of {} bytes",
                        expected(),
                        bytes.len()
                    ));
                }
            }
        };
        v.convert(t)
    }

    /// Dimension of a `pocketvec_set_q` argument: untagged BLOBs count as f32.
    pub fn set_q_dim(&self) -> Result<usize, String> {
        match self {
            Input::Json(text) => parse_json(text).map(|v| v.len()),
            Input::Blob { bytes, tag } => {
                let t = tag.unwrap_or(ElemType::F32);
                if bytes.is_empty() {
                    return Err("expected a vector, found an empty BLOB".into());
                }
                if bytes.len() % t.size() != 0 {
                    return Err(format!(
                        "a BLOB of {} values needs a length divisible by {}, found a BLOB of {} bytes \
                         (tag other types with pocketvec_f16()/pocketvec_int8())",
                        t.name(),
                        t.size(),
                        bytes.len()
                    ));
                }
                Ok(bytes.len() / t.size())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn json_parses_numbers_and_rejects_everything_else() {
        assert_eq!(
            parse_json("[0.1, 2, -3e-2]").unwrap(),
            vec![0.1f32, 2.0, -0.03]
        );
        assert!(parse_json("[1, 2")
            .unwrap_err()
            .starts_with("malformed JSON: "));
        assert_eq!(
            parse_json("[1, \"a\"]").unwrap_err(),
            "JSON element at index 1 is a string, expected a number"
        );
        assert_eq!(
            parse_json("{\"a\": 1}").unwrap_err(),
            "expected a JSON array of numbers, found an object"
        );
        assert_eq!(
            parse_json("[]").unwrap_err(),
            "expected a vector, found an empty JSON array"
        );
        assert_eq!(
            parse_json("[1e300]").unwrap_err(),
            "JSON element at index 0 (1e300) is out of the f32 range"
        );
        assert!(parse_json("[NaN]")
            .unwrap_err()
            .starts_with("malformed JSON"));
    }

    #[test]
    fn blobs_decode_and_validate() {
        let b = f32_bytes(&[1.0, -2.5]);
        assert_eq!(
            Vector::from_blob(ElemType::F32, &b).unwrap(),
            Vector::F32(vec![1.0, -2.5])
        );
        assert_eq!(
            Vector::from_blob(ElemType::F32, &b[..7]).unwrap_err(),
            "a BLOB of f32 values needs a length divisible by 4, found a BLOB of 7 bytes"
        );
        assert_eq!(
            Vector::from_blob(ElemType::F32, &f32_bytes(&[1.0, f32::NAN])).unwrap_err(),
            "element at index 1 is NaN; vectors must be finite"
        );
        assert_eq!(
            Vector::from_blob(ElemType::F32, &[]).unwrap_err(),
            "expected a vector of f32 values, found an empty BLOB"
        );
        assert_eq!(
            Vector::from_blob(ElemType::Int8, &[255, 1]).unwrap(),
            Vector::I8(vec![-1, 1])
        );
    }

    #[test]
    fn json_round_trips_exactly() {
        let v = Vector::F32(vec![0.1, -3.4e38, 1e-7, 2.0, 0.333_333_34]);
        let back = parse_json(&v.to_json()).unwrap();
        assert_eq!(Vector::F32(back), v);
        assert_eq!(Vector::I8(vec![-128, 0, 127]).to_json(), "[-128,0,127]");
    }

    #[test]
    fn table_query_resolution_follows_the_type_rule() {
        let q = [1.0f32, -2.0, 0.5, 4.0];
        let b = f32_bytes(&q);
        // f32 BLOB into an f16 table: rounded to f16.
        let v = Input::Blob {
            bytes: &b,
            tag: None,
        }
        .decode_for_table(ElemType::F16, 4)
        .unwrap();
        assert_eq!(
            v,
            Vector::F16(q.iter().map(|&x| f16::from_f32(x)).collect())
        );
        // 4 raw bytes into a 4-dim int8 table: taken as int8.
        let raw = [1u8, 255, 3, 4];
        let v = Input::Blob {
            bytes: &raw,
            tag: None,
        }
        .decode_for_table(ElemType::Int8, 4)
        .unwrap();
        assert_eq!(v, Vector::I8(vec![1, -1, 3, 4]));
        // JSON into an int8 table: literal integers.
        let v = Input::Json("[1, -2, 3, 127]")
            .decode_for_table(ElemType::Int8, 4)
            .unwrap();
        assert_eq!(v, Vector::I8(vec![1, -2, 3, 127]));
        assert!(Input::Json("[1, -2, 3.5, 127]")
            .decode_for_table(ElemType::Int8, 4)
            .unwrap_err()
            .contains("index 2 is 3.5"));
        // Wrong size.
        assert_eq!(
            Input::Blob { bytes: &b[..12], tag: None }
                .decode_for_table(ElemType::F32, 4)
                .unwrap_err(),
            "expected 4 dimensions (a BLOB of 16 bytes as f32, or a JSON array of 4 numbers), found a BLOB of 12 bytes"
        );
        assert_eq!(
            Input::Json("[1,2,3]").decode_for_table(ElemType::F16, 4).unwrap_err(),
            "expected 4 dimensions (a BLOB of 8 bytes as f16, of 16 bytes as f32, or a JSON array of 4 numbers), \
             found a JSON array of 3 numbers"
        );
    }

    #[test]
    fn quantization_is_symmetric_per_vector() {
        let (q, scale) = quantize_i8(&[0.5, -1.0, 0.25]).unwrap();
        assert!((scale - 1.0 / 127.0).abs() < 1e-9);
        assert_eq!(q, vec![64, -127, 32]);
        assert_eq!(
            quantize_i8_scaled(&[0.5, -1.0, 300.0], 0.01).unwrap(),
            vec![50, -100, 127]
        );
        assert!(quantize_i8_scaled(&[1.0], 0.0).is_err());
    }
}
