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
    /// How vectors are stored and searched.
    pub index: IndexKind,
    /// Keep a per-connection RAM copy of the chunks (validated per query).
    pub cache: bool,
    /// `cache=full`: an f32 table's copy holds the f32 rows themselves
    /// rather than their compact form (`cache=on`, see `source/screen.rs`).
    pub cache_full: bool,
    /// Rows per flat chunk.
    pub chunk_rows: usize,
    /// Threads for the exact scan (1 = the calling thread only).
    pub threads: usize,
    /// IVF settings (`index=ivf`).
    pub ivf: IvfOptions,
}

/// `index=`: where the table keeps its vectors.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IndexKind {
    /// No copy: every query scans the base table through SQL.
    None,
    /// Exact search over contiguous chunks in shadow tables (the default).
    Flat,
    /// Inverted lists with compressed codes, exact re-rank.
    Ivf,
}

impl IndexKind {
    pub fn name(self) -> &'static str {
        match self {
            IndexKind::None => "none",
            IndexKind::Flat => "flat",
            IndexKind::Ivf => "ivf",
        }
    }
}

/// Options of `index=ivf`; `None` = the default chosen at training time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IvfOptions {
    pub lists: Option<usize>,
    pub quantizer: Option<ivf::QuantizerKind>,
    pub pq_m: Option<usize>,
    pub nprobe: Option<usize>,
    pub rerank: Option<usize>,
    /// Rows needed before the index trains by itself.
    pub train_min: Option<usize>,
}

/// Default rows per flat chunk.
pub const DEFAULT_CHUNK_ROWS: usize = 1024;

const KNOWN: &str = "base_table, dim, column, metric, type, index, cache, chunk_rows, threads, lists, quantizer, pq_m, nprobe, rerank, train_min";

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
    // The quote characters are ASCII, so slicing one byte off each end is on
    // a char boundary only once both ends are known to be quotes.
    for (open, close, doubled) in [
        ('\'', '\'', Some("''")),
        ('"', '"', Some("\"\"")),
        ('`', '`', Some("``")),
        ('[', ']', None),
    ] {
        if let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
            return match doubled {
                Some(d) => inner.replace(d, &d[..1]),
                None => inner.to_string(),
            };
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
    let mut index = None;
    let mut cache = None;
    let mut chunk_rows = None;
    let mut threads = None;
    let mut ivf = IvfOptions::default();
    let mut quantizer = None;
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
            "index" => {
                let k = match value.to_ascii_lowercase().as_str() {
                    "flat" | "exact" => IndexKind::Flat,
                    "ivf" => IndexKind::Ivf,
                    "none" => IndexKind::None,
                    _ => {
                        return Err(format!(
                            "pocketvec: unknown index '{value}'; expected flat, ivf or none"
                        ))
                    }
                };
                if index.replace(k).is_some() {
                    return Err(dup("index"));
                }
            }
            "cache" => {
                let on = match value.to_ascii_lowercase().as_str() {
                    "on" | "1" | "true" | "yes" => (true, false),
                    "full" => (true, true),
                    "off" | "0" | "false" | "no" => (false, false),
                    _ => {
                        return Err(format!(
                            "pocketvec: cache must be on, full or off, found '{value}'"
                        ))
                    }
                };
                if cache.replace(on).is_some() {
                    return Err(dup("cache"));
                }
            }
            "chunk_rows" => {
                let n = parse_count("chunk_rows", &value, 16, 65_536)?;
                if chunk_rows.replace(n).is_some() {
                    return Err(dup("chunk_rows"));
                }
            }
            "threads" => {
                let n = parse_count("threads", &value, 0, 256)?;
                if threads.replace(n).is_some() {
                    return Err(dup("threads"));
                }
            }
            "lists" => {
                let n = parse_count("lists", &value, 1, ivf::MAX_LISTS)?;
                if ivf.lists.replace(n).is_some() {
                    return Err(dup("lists"));
                }
            }
            "quantizer" => {
                let q =
                    ivf::QuantizerKind::parse(&value.to_ascii_lowercase()).ok_or_else(|| {
                        format!("pocketvec: unknown quantizer '{value}'; expected pq, int8 or none")
                    })?;
                if quantizer.replace(q).is_some() {
                    return Err(dup("quantizer"));
                }
            }
            "pq_m" => {
                let n = parse_count("pq_m", &value, 1, MAX_DIM)?;
                if ivf.pq_m.replace(n).is_some() {
                    return Err(dup("pq_m"));
                }
            }
            "nprobe" => {
                let n = parse_count("nprobe", &value, 1, ivf::MAX_LISTS)?;
                if ivf.nprobe.replace(n).is_some() {
                    return Err(dup("nprobe"));
                }
            }
            "rerank" => {
                let n = parse_count("rerank", &value, 0, 1 << 20)?;
                if ivf.rerank.replace(n).is_some() {
                    return Err(dup("rerank"));
                }
            }
            "train_min" => {
                let n = parse_count("train_min", &value, 1, 1 << 40)?;
                if ivf.train_min.replace(n).is_some() {
                    return Err(dup("train_min"));
                }
            }
            _ => {
                return Err(format!(
                    "pocketvec: unknown option '{key}'; expected one of {KNOWN}"
                ));
            }
        }
    }
    ivf.quantizer = quantizer;
    let index = index.unwrap_or(IndexKind::Flat);
    let ivf_only = ivf.lists.is_some()
        || ivf.quantizer.is_some()
        || ivf.pq_m.is_some()
        || ivf.nprobe.is_some()
        || ivf.rerank.is_some()
        || ivf.train_min.is_some();
    if ivf_only && index != IndexKind::Ivf {
        return Err(
            "pocketvec: lists, quantizer, pq_m, nprobe, rerank and train_min need index=ivf".into(),
        );
    }
    if let (Some(m), Some(q)) = (ivf.pq_m, ivf.quantizer) {
        if q != ivf::QuantizerKind::Pq {
            return Err(format!(
                "pocketvec: pq_m={m} needs quantizer=pq, found quantizer={}",
                q.name()
            ));
        }
    }
    if index == IndexKind::None && (cache.is_some() || chunk_rows.is_some()) {
        return Err("pocketvec: cache and chunk_rows need index=flat or index=ivf".into());
    }
    Ok(Options {
        base_table: base_table.ok_or("pocketvec: missing option base_table=<table>")?,
        column: column.unwrap_or_else(|| "vec".to_string()),
        dim: dim.ok_or("pocketvec: missing option dim=<dimensions>")?,
        metric: metric.unwrap_or(Metric::Cosine),
        elem_type: elem_type.unwrap_or(ElemType::F32),
        index,
        cache: cache.is_none_or(|c| c.0),
        cache_full: cache.is_some_and(|c| c.1),
        chunk_rows: chunk_rows.unwrap_or(DEFAULT_CHUNK_ROWS),
        threads: threads.unwrap_or(1),
        ivf,
    })
}

fn parse_count(name: &str, value: &str, min: usize, max: usize) -> Result<usize, String> {
    let bad =
        || format!("pocketvec: {name} must be an integer between {min} and {max}, found '{value}'");
    let n: i128 = value.trim().parse().map_err(|_| bad())?;
    if n < min as i128 || n > max as i128 {
        return Err(bad());
    }
    Ok(n as usize)
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
    fn unquote_handles_multibyte_ends() {
        assert_eq!(unquote("édim"), "édim");
        assert_eq!(unquote("dimé"), "dimé");
        assert_eq!(unquote("é"), "é");
        assert_eq!(unquote("'é'"), "é");
        assert_eq!(unquote("\"a\"\"b\""), "a\"b");
        assert_eq!(unquote("'it''s'"), "it's");
        assert_eq!(unquote("[x y]"), "x y");
        assert_eq!(unquote("'"), "'");
        assert!(p(&["base_table=docs", "édim=2"])
            .unwrap_err()
            .contains("édim"));
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
                elem_type: ElemType::F32,
                index: IndexKind::Flat,
                cache: true,
                cache_full: false,
                chunk_rows: DEFAULT_CHUNK_ROWS,
                threads: 1,
                ivf: IvfOptions::default(),
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
        let full = p(&["base_table=t", "dim=2", "cache=FULL"]).unwrap();
        assert!(full.cache && full.cache_full);
        let off = p(&["base_table=t", "dim=2", "cache=off"]).unwrap();
        assert!(!off.cache && !off.cache_full);
        assert!(p(&["base_table=t", "dim=2", "cache=half"])
            .unwrap_err()
            .contains("cache must be on, full or off, found 'half'"));
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
            format!("pocketvec: unknown option 'size'; expected one of {KNOWN}")
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
            format!("pocketvec: expected key=value options ({KNOWN}), found 'docs'")
        );
    }
}
