//! SQL sequences against a real in-memory database: a base table and a
//! pocketvec table over it (`index=none`, flat, or IVF with a tiny
//! `train_min`, so it trains after a few rows), writes to the base table
//! (insert, update, delete, NULL and malformed vectors, rolled-back
//! transactions), the table commands ('optimize', 'integrity-check',
//! 'rebuild'), and k-NN queries with arbitrary query/k/nprobe/LIMIT/OFFSET/
//! rowid/distance filters. Every successful exact query (any table but a
//! trained IVF one probed with nprobe < lists) is checked against brute
//! force in f64 over the base table as it is at that moment; an
//! approximate one must return at most the expected number of rows, each
//! an existing eligible row with its exact distance, nearest first.
//! Every failed statement must leave the connection usable.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pocketvec_fuzz::{
    assert_usable, check_knn, distance, f32_blob, open, query, tolerance, Metric,
};
use rusqlite::types::Value;

#[derive(Arbitrary, Debug)]
enum QueryVec {
    Json,
    Blob,
    SetQ,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Insert {
        rowid: i8,
        v: [i8; 6],
    },
    Update {
        rowid: i8,
        v: [i8; 6],
    },
    Delete {
        rowid: i8,
    },
    InsertNull {
        rowid: i8,
    },
    InsertRaw {
        rowid: i8,
        bytes: Vec<u8>,
    },
    Rollback {
        rowid: i8,
        v: [i8; 6],
    },
    /// 'optimize', 'integrity-check' or 'rebuild' (must succeed while the
    /// base table holds only valid vectors).
    Command(u8),
    Query {
        q: [i8; 6],
        how: QueryVec,
        k: i16,
        limit: Option<i8>,
        offset: Option<i8>,
        lo: Option<i8>,
        hi: Option<i8>,
        dist_lt: Option<i8>,
        in_set: Option<Vec<i8>>,
        order: u8,
        /// `nprobe = n`: a non-negative byte is taken mod 6 (0 = an
        /// error, 1-5 around the 1-4 lists), a negative one as is (error).
        nprobe: Option<i8>,
    },
}

#[derive(Arbitrary, Debug)]
struct Case {
    dim: u8,
    metric: u8,
    index: u8,
    /// Rows inserted before the ops (preload % 48, vectors from a fixed
    /// generator seeded by it), so that short inputs reach trained IVF
    /// tables and multi-row scans.
    preload: u8,
    ops: Vec<Op>,
}

fn vec_of(v: &[i8; 6], dim: usize) -> Vec<f32> {
    v[..dim].iter().map(|&x| f32::from(x) / 4.0).collect()
}

fn json(v: &[f32]) -> String {
    format!(
        "[{}]",
        v.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// The base table's valid rows (an f32 BLOB of `dim` values), and whether
/// any non-NULL row is malformed.
fn snapshot(c: &rusqlite::Connection, dim: usize) -> (Vec<(i64, Vec<f32>)>, Vec<i64>) {
    let rows = query(c, "SELECT rowid, vec FROM docs ORDER BY rowid", &[]).unwrap();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for r in rows {
        let Value::Integer(id) = r[0] else {
            unreachable!()
        };
        match &r[1] {
            Value::Null => {}
            Value::Blob(b) if b.len() == dim * 4 => {
                let v: Vec<f32> = b
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                if v.iter().all(|x| x.is_finite()) {
                    good.push((id, v));
                } else {
                    bad.push(id);
                }
            }
            _ => bad.push(id),
        }
    }
    (good, bad)
}

fuzz_target!(|case: Case| {
    let dim = 1 + (case.dim % 6) as usize;
    let metric = Metric::from_byte(case.metric);
    let c = open();
    c.execute_batch("CREATE TABLE docs(rowid INTEGER PRIMARY KEY, vec BLOB)")
        .unwrap();
    // index=none is the exact scan over the base table; the default
    // storage is whatever the extension chooses. An option the build does
    // not know is a clean error, and the case ends.
    // IVF: 1-4 lists (the byte's high bits), int8 / none / pq codes;
    // training starts once the table holds train_min rows (never below what
    // training accepts: `lists`, or 256 for pq).
    let lists = 1 + (case.index >> 4) as i64 % 4;
    let index = match case.index % 6 {
        0 => String::new(),
        1 => ", index=none".to_string(),
        2 => ", index=flat".to_string(),
        q => format!(
            ", index=ivf, lists={lists}, train_min=2, quantizer={}",
            ["int8", "none", "pq"][q as usize - 3]
        ),
    };
    let ivf = case.index % 6 >= 3;
    let create = format!(
        "CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim={dim}, metric={}{index})",
        metric.name()
    );
    if let Err(e) = c.execute(&create, []) {
        let m = pocketvec_fuzz::message(e);
        assert!(m.contains("index"), "unexpected CREATE error: {m}");
        return;
    }
    let mut seed = u64::from(case.preload).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in 0..i64::from(case.preload % 48) {
        let v: Vec<f32> = (0..dim)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                f32::from((seed >> 56) as u8 as i8) / 4.0
            })
            .collect();
        c.execute(
            "INSERT INTO docs(rowid, vec) VALUES (?1, ?2)",
            rusqlite::params![i * 5 - 120, f32_blob(&v)],
        )
        .unwrap();
    }
    for op in case.ops.iter().take(64) {
        match op {
            Op::Insert { rowid, v } => {
                let _ = c.execute(
                    "INSERT OR REPLACE INTO docs(rowid, vec) VALUES (?1, ?2)",
                    rusqlite::params![*rowid as i64, f32_blob(&vec_of(v, dim))],
                );
            }
            Op::Update { rowid, v } => {
                let _ = c.execute(
                    "UPDATE docs SET vec = ?2 WHERE rowid = ?1",
                    rusqlite::params![*rowid as i64, f32_blob(&vec_of(v, dim))],
                );
            }
            Op::Delete { rowid } => {
                let _ = c.execute("DELETE FROM docs WHERE rowid = ?1", [*rowid as i64]);
            }
            Op::InsertNull { rowid } => {
                let _ = c.execute(
                    "INSERT OR REPLACE INTO docs(rowid, vec) VALUES (?1, NULL)",
                    [*rowid as i64],
                );
            }
            Op::InsertRaw { rowid, bytes } => {
                let r = c.execute(
                    "INSERT OR REPLACE INTO docs(rowid, vec) VALUES (?1, ?2)",
                    rusqlite::params![*rowid as i64, bytes],
                );
                if r.is_err() {
                    assert_usable(&c);
                }
            }
            Op::Rollback { rowid, v } => {
                let (before, _) = snapshot(&c, dim);
                c.execute_batch("BEGIN").unwrap();
                let _ = c.execute(
                    "INSERT OR REPLACE INTO docs(rowid, vec) VALUES (?1, ?2)",
                    rusqlite::params![*rowid as i64, f32_blob(&vec_of(v, dim))],
                );
                let _ = c.execute("DELETE FROM docs WHERE rowid = ?1", [(*rowid as i64) + 1]);
                c.execute_batch("ROLLBACK").unwrap();
                assert_eq!(
                    snapshot(&c, dim).0,
                    before,
                    "ROLLBACK did not restore the base table"
                );
            }
            Op::Command(which) => {
                let cmd = ["optimize", "integrity-check", "rebuild"][*which as usize % 3];
                let (_, bad) = snapshot(&c, dim);
                let r = c.execute(&format!("INSERT INTO ann(ann) VALUES('{cmd}')"), []);
                match r {
                    Ok(_) => {}
                    // index=none has no stored data to check; rows that are
                    // not vectors of the right size are named.
                    Err(e) => {
                        let m = pocketvec_fuzz::message(e);
                        assert!(
                            !bad.is_empty() || index.contains("none"),
                            "'{cmd}' failed on a healthy index: {m}"
                        );
                        assert_usable(&c);
                    }
                }
            }
            Op::Query {
                q,
                how,
                k,
                limit,
                offset,
                lo,
                hi,
                dist_lt,
                in_set,
                order,
                nprobe,
            } => {
                let nprobe = &nprobe.map(|n| if n >= 0 { n % 6 } else { n });
                let qv = vec_of(q, dim);
                let mut sql = String::from("SELECT rowid, distance FROM ann WHERE k = ?2");
                let mut params: Vec<Value> = vec![Value::Null, Value::Integer(*k as i64)];
                match how {
                    QueryVec::Json => {
                        sql.push_str(" AND query = ?1");
                        params[0] = Value::Text(json(&qv));
                    }
                    QueryVec::Blob => {
                        sql.push_str(" AND query = ?1");
                        params[0] = Value::Blob(f32_blob(&qv));
                    }
                    QueryVec::SetQ => {
                        query(
                            &c,
                            "SELECT pocketvec_set_q(?1)",
                            &[Value::Blob(f32_blob(&qv))],
                        )
                        .unwrap();
                    }
                    QueryVec::Raw(b) => {
                        sql.push_str(" AND query = ?1");
                        params[0] = Value::Blob(b.clone());
                    }
                }
                if let Some(lo) = lo {
                    params.push(Value::Integer(*lo as i64));
                    sql.push_str(&format!(" AND rowid >= ?{}", params.len()));
                }
                if let Some(hi) = hi {
                    params.push(Value::Integer(*hi as i64));
                    sql.push_str(&format!(" AND rowid < ?{}", params.len()));
                }
                if let Some(d) = dist_lt {
                    params.push(Value::Real(f64::from(*d) / 8.0));
                    sql.push_str(&format!(" AND distance < ?{}", params.len()));
                }
                if let Some(n) = nprobe {
                    params.push(Value::Integer(*n as i64));
                    sql.push_str(&format!(" AND nprobe = ?{}", params.len()));
                }
                if let Some(set) = in_set {
                    let list: Vec<String> = set.iter().take(8).map(|x| x.to_string()).collect();
                    sql.push_str(&format!(" AND rowid IN ({})", list.join(",")));
                }
                let ordered = order % 3 != 0;
                match order % 3 {
                    1 => sql.push_str(" ORDER BY distance"),
                    2 => sql.push_str(" ORDER BY distance, rowid"),
                    _ => {}
                }
                if let Some(l) = limit {
                    params.push(Value::Integer(*l as i64));
                    sql.push_str(&format!(" LIMIT ?{}", params.len()));
                    if let Some(o) = offset {
                        params.push(Value::Integer(*o as i64));
                        sql.push_str(&format!(" OFFSET ?{}", params.len()));
                    }
                }
                let (good, bad) = snapshot(&c, dim);
                let got = query(&c, &sql, &params);
                // Approximate: a trained IVF table probed with fewer lists
                // than it has (the default nprobe, max(lists/10, 8), probes
                // all of 1-4 lists: exact). Read after the query, which may have
                // trained the table (the log is applied first).
                let approximate = ivf
                    && nprobe.is_some_and(|n| n >= 1 && (n as i64) < lists)
                    && query(&c, "SELECT pocketvec_info('ann')", &[])
                        .ok()
                        .and_then(|r| match r.first().map(|r| &r[0]) {
                            Some(Value::Text(j)) => Some(j.contains("\"trained\":true")),
                            _ => None,
                        })
                        .unwrap_or(false);
                let raw_ok = match how {
                    QueryVec::Raw(b) => {
                        b.len() == dim * 4
                            && b.chunks_exact(4)
                                .all(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite())
                    }
                    _ => true,
                };
                let expect_error = *k <= 0 || !raw_ok || nprobe.is_some_and(|n| n <= 0);
                // SQLite never runs the scan (xFilter) when the WHERE or the
                // LIMIT make the result empty up front (LIMIT 0, an empty IN
                // list, and seen with `rowid IN (x)` beside an empty rowid
                // range): then invalid arguments are never looked at, and
                // the result must be empty.
                let short_circuit = *limit == Some(0) || in_set.is_some();
                let rows = match got {
                    Err(m) => {
                        assert!(
                            expect_error || !bad.is_empty(),
                            "query failed on valid input: {m}\n{sql} {params:?}"
                        );
                        assert_usable(&c);
                        continue;
                    }
                    Ok(rows) if expect_error => {
                        assert!(
                            short_circuit && rows.is_empty(),
                            "invalid query accepted (k = {k}, query ok = {raw_ok}): {rows:?}\n{sql} {params:?}"
                        );
                        continue;
                    }
                    Ok(rows) => rows,
                };
                let qv: Vec<f32> = match how {
                    QueryVec::Raw(b) => b
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                    _ => qv,
                };
                assert_eq!(qv.len(), dim, "a query of the wrong size was accepted");
                // Brute force: eligible rows, sorted by (distance, rowid).
                let eligible = |id: i64, d: f64| {
                    lo.is_none_or(|lo| id >= lo as i64)
                        && hi.is_none_or(|hi| id < hi as i64)
                        && dist_lt.is_none_or(|t| d < f64::from(t) / 8.0)
                        && in_set
                            .as_ref()
                            .is_none_or(|s| s.iter().take(8).any(|&x| x as i64 == id))
                };
                let eps = good
                    .iter()
                    .map(|(_, v)| tolerance(metric, &qv, v))
                    .fold(1e-6, f64::max);
                let mut all: Vec<(i64, f64)> = good
                    .iter()
                    .map(|(id, v)| (*id, distance(metric, &qv, v)))
                    .collect();
                // rows within eps of the distance threshold may go either way
                if let Some(t) = dist_lt {
                    let t = f64::from(*t) / 8.0;
                    if all.iter().any(|&(_, d)| (d - t).abs() <= eps) {
                        return;
                    }
                }
                all.retain(|&(id, d)| eligible(id, d));
                all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                let off = offset
                    .filter(|_| limit.is_some())
                    .map_or(0, |o| o.max(0) as usize);
                let lim = limit.map_or(usize::MAX, |l| if l < 0 { usize::MAX } else { l as usize });
                let expected: Vec<(i64, f64)> = all
                    .iter()
                    .take(*k as usize)
                    .skip(off)
                    .take(lim)
                    .copied()
                    .collect();
                let mut got: Vec<(i64, f64)> = rows
                    .iter()
                    .map(|r| match (&r[0], &r[1]) {
                        (Value::Integer(id), Value::Real(d)) => (*id, *d),
                        r => panic!("row {r:?}"),
                    })
                    .collect();
                if approximate {
                    // At most as many rows as the exact answer, distinct,
                    // each an existing eligible row with its exact
                    // distance; nearest first when ordered (the vtab's
                    // own order otherwise is also by distance).
                    assert!(
                        got.len() <= expected.len(),
                        "approximate query returned {} rows, exact answer has {}\n{sql} {params:?}",
                        got.len(),
                        expected.len()
                    );
                    let mut seen = std::collections::HashSet::new();
                    for (i, (id, d)) in got.iter().enumerate() {
                        assert!(seen.insert(*id), "rowid {id} twice\n{sql} {params:?}");
                        let (_, v) = good.iter().find(|(g, _)| g == id).unwrap_or_else(|| {
                            panic!("rowid {id} does not exist\n{sql} {params:?}")
                        });
                        let rd = distance(metric, &qv, v);
                        assert!(
                            (d - rd).abs() <= eps && eligible(*id, rd),
                            "rowid {id}: distance {d}, reference {rd}\n{sql} {params:?}"
                        );
                        if ordered && i > 0 {
                            assert!(got[i - 1].1 <= *d, "not ascending\n{sql} {params:?}");
                        }
                    }
                    continue;
                }
                if !ordered {
                    if limit.is_some() {
                        // LIMIT without ORDER BY picks any rows: check
                        // only that they are eligible with right distances.
                        for (id, d) in &got {
                            let (_, v) = good
                                .iter()
                                .find(|(g, _)| g == id)
                                .expect("returned rowid exists");
                            let rd = distance(metric, &qv, v);
                            assert!((d - rd).abs() <= eps && eligible(*id, rd));
                        }
                        continue;
                    }
                    got.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                }
                let reference = |id: i64| {
                    good.iter()
                        .find(|(g, _)| *g == id)
                        .map(|(_, v)| distance(metric, &qv, v))
                        .filter(|&d| eligible(id, d))
                };
                check_knn(
                    &expected,
                    &got,
                    &reference,
                    eps,
                    &format!("{sql} {params:?}"),
                );
            }
        }
    }
    assert_usable(&c);
});
