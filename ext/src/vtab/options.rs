//! `CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs_vecs, dim=128,
//! column=vec, metric=cosine, type=f32)` argument parsing. Pure Rust.

use kernels::Metric;

use crate::vector::{ElemType, MAX_DIM};

/// Parsed table options.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Base table name (unquoted); it lives in the virtual table's schema.
    pub base_table: String,
    /// Vector column of the base table (unquoted). Default `vec`.
    pub column: String,
    pub dim: usize,
    pub metric: Metric,
    pub elem_type: ElemType,
}

const KNOWN: &str = "base_table, dim, column, metric, type";

pub fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::Cosine => "cosine",
        Metric::L2 => "l2",
        Metric::Dot => "dot",
    }
}

fn parse_metric(s: &str) -> Option<Metric> {
    match s.to_ascii_lowercase().as_str() {
        "cosine" => Some(Metric::Cosine),
        "l2" | "euclidean" => Some(Metric::L2),
        "dot" | "ip" | "inner_product" => Some(Metric::Dot),
        _ => None,
    }
}

/// Removes one level of SQL quoting: '...', "...", `...`, [...].
pub fn unquote(s: &str) -> String {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() >= 2 {
        let (first, last) = (b[0], b[b.len() - 1]);
        let inner = &s[1..s.len() - 1];
        match (first, last) {
            (b'\'', b'\'') => return inner.replace("''", "'"),
            (b'"', b'"') => return inner.replace("\"\"", "\""),
            (b'`', b'`') => return inner.replace("``", "`"),
            (b'[', b']') => return inner.to_string(),
            _ => {}
        }
    }
    s.to_string()
}

/// Parses the module arguments (`argv[3..]` of xCreate/xConnect).
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut base_table = None;
    let mut column = None;
    let mut dim = None;
    let mut metric = None;
    let mut elem_type = None;
    for raw in args {
        let Some((key, value)) = raw.split_once('=') else {
            return Err(format!(
                "pocketvec: expected key=value options ({KNOWN}), found '{}'",
                raw.trim()
            ));
        };
        let key = unquote(key).to_ascii_lowercase();
        let value = unquote(value);
        let dup = |k: &str| format!("pocketvec: option {k} is given twice");
        match key.as_str() {
            "base_table" => {
                if value.is_empty() {
                    return Err("pocketvec: base_table must not be empty".into());
                }
                if base_table.replace(value).is_some() {
                    return Err(dup("base_table"));
                }
            }
            "column" => {
                if value.is_empty() {
                    return Err("pocketvec: column must not be empty".into());
                }
                if column.replace(value).is_some() {
                    return Err(dup("column"));
                }
            }
            "dim" => {
                let d = parse_dim(&value)?;
                if dim.replace(d).is_some() {
                    return Err(dup("dim"));
                }
            }
            "metric" => {
                let m = parse_metric(&value).ok_or_else(|| {
                    format!("pocketvec: unknown metric '{value}'; expected cosine, l2 or dot")
                })?;
                if metric.replace(m).is_some() {
                    return Err(dup("metric"));
                }
            }
            "type" => {
                let t = ElemType::parse(&value).ok_or_else(|| {
                    format!("pocketvec: unknown type '{value}'; expected f32, f16 or int8")
                })?;
                if elem_type.replace(t).is_some() {
                    return Err(dup("type"));
                }
            }
            _ => {
                return Err(format!(
                    "pocketvec: unknown option '{key}'; expected one of {KNOWN}"
                ));
            }
        }
    }
    Ok(Options {
        base_table: base_table.ok_or("pocketvec: missing option base_table=<table>")?,
        column: column.unwrap_or_else(|| "vec".to_string()),
        dim: dim.ok_or("pocketvec: missing option dim=<dimensions>")?,
        metric: metric.unwrap_or(Metric::Cosine),
        elem_type: elem_type.unwrap_or(ElemType::F32),
    })
}

fn parse_dim(value: &str) -> Result<usize, String> {
    let bad =
        || format!("pocketvec: dim must be an integer between 1 and {MAX_DIM}, found '{value}'");
    let n: i128 = value.trim().parse().map_err(|_| bad())?;
    if n < 1 || n > MAX_DIM as i128 {
        return Err(bad());
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn seed_syntax_and_defaults() {
        let o = p(&["base_table=docs_vecs", " dim=128"]).unwrap();
        assert_eq!(
            o,
            Options {
                base_table: "docs_vecs".into(),
                column: "vec".into(),
                dim: 128,
                metric: Metric::Cosine,
                elem_type: ElemType::F32
            }
        );
        let o = p(&[
            "base_table='my \"t'",
            "column=[e mb]",
            "metric=L2",
            "type=int8",
            "dim=3",
        ])
        .unwrap();
        assert_eq!(o.base_table, "my \"t");
        assert_eq!(o.column, "e mb");
        assert_eq!(o.metric, Metric::L2);
        assert_eq!(o.elem_type, ElemType::Int8);
    }

    #[test]
    fn bad_options_are_named() {
        assert_eq!(
            p(&["dim=3"]).unwrap_err(),
            "pocketvec: missing option base_table=<table>"
        );
        assert_eq!(
            p(&["base_table=t"]).unwrap_err(),
            "pocketvec: missing option dim=<dimensions>"
        );
        assert_eq!(
            p(&["base_table=t", "dim=3", "size=4"]).unwrap_err(),
            "pocketvec: unknown option 'size'; expected one of base_table, dim, column, metric, type"
        );
        assert_eq!(
            p(&["base_table=t", "dim=0"]).unwrap_err(),
            "pocketvec: dim must be an integer between 1 and 65536, found '0'"
        );
        assert!(p(&["base_table=t", "dim=-4"])
            .unwrap_err()
            .contains("found '-4'"));
        assert!(p(&["base_table=t", "dim=abc"])
            .unwrap_err()
            .contains("found 'abc'"));
        assert!(p(&["base_table=t", "dim=99999999999999999999999"]).is_err());
        assert_eq!(
            p(&["base_table=t", "dim=3", "metric=hamming"]).unwrap_err(),
            "pocketvec: unknown metric 'hamming'; expected cosine, l2 or dot"
        );
        assert_eq!(
            p(&["base_table=t", "dim=3", "type=f64"]).unwrap_err(),
            "pocketvec: unknown type 'f64'; expected f32, f16 or int8"
        );
        assert_eq!(
            p(&["base_table=t", "dim=3", "dim=4"]).unwrap_err(),
            "pocketvec: option dim is given twice"
        );
        assert_eq!(
            p(&["docs"]).unwrap_err(),
            "pocketvec: expected key=value options (base_table, dim, column, metric, type), found 'docs'"
        );
    }
}
