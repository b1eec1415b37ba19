//! The integration test cases, each run against both SQLite libraries.
// `&[v.clone()]` reads better than `std::slice::from_ref(&v)` in SQL calls.
#![allow(clippy::cloned_ref_to_slice_refs)]

use super::*;
use half::f16;

const TOL: f64 = 2e-5;
/// `generate_series` is a CLI extension, not in every library build.
const SERIES_300: &str =
    "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 300)";

fn mem(open: Opener) -> Box<dyn Conn> {
    open(":memory:")
}

fn tmp_db(tag: &str) -> String {
    let dir = std::env::temp_dir().join(format!("pocketvec-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("t.db").to_string_lossy().into_owned()
}

/// `CREATE TABLE name(id INTEGER PRIMARY KEY, vec BLOB)` filled with rows.
fn base_table(c: &dyn Conn, name: &str, rows: &[(i64, Val)]) {
    c.ok(&format!(
        "CREATE TABLE {name}(id INTEGER PRIMARY KEY, vec BLOB)"
    ));
    c.ok("BEGIN");
    for (id, v) in rows {
        c.rows(
            &format!("INSERT INTO {name}(id, vec) VALUES(?, ?)"),
            &[Val::Int(*id), v.clone()],
        );
    }
    c.ok("COMMIT");
}

/// n random f32 rows with ids 1..=n: (rows for SQL, rows for the reference).
/// Reference rows: (id, values in f64).
type RefRows = Vec<(i64, Vec<f64>)>;

fn f32_rows(rng: &mut Rng, n: usize, d: usize) -> (Vec<(i64, Val)>, RefRows) {
    let mut sql = Vec::new();
    let mut reference = Vec::new();
    for i in 1..=n as i64 {
        let v = rng.vec_f32(d);
        sql.push((i, Val::Blob(f32_blob(&v))));
        reference.push((i, v.iter().map(|&x| f64::from(x)).collect()));
    }
    (sql, reference)
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

pub fn loads_and_reports_versions(open: Opener) {
    let c = mem(open);
    assert_eq!(
        c.one("SELECT pocketvec_version()", &[]).text(),
        env!("CARGO_PKG_VERSION")
    );
    let debug = c.one("SELECT pocketvec_debug()", &[]);
    let host = c.one("SELECT sqlite_version()", &[]);
    let debug = debug.text();
    assert!(
        debug.starts_with(&format!("pocketvec {}\n", env!("CARGO_PKG_VERSION"))),
        "{debug}"
    );
    assert!(debug.contains("\nisa: "), "{debug}");
    assert!(
        debug.contains(&format!("sqlite: {} (host)", host.text())),
        "{debug}"
    );
    assert!(debug.contains("rustc "), "{debug}");
}

/// The seed README's flow: base table, vtab, pocketvec_set_q, LIMIT 5.
pub fn seed_demo_exact_top5(open: Opener) {
    let c = mem(open);
    let (d, n) = (128, 1000);
    let mut rng = Rng::new(1);
    c.ok("CREATE TABLE IF NOT EXISTS docs_vecs(rowid INTEGER PRIMARY KEY, vec BLOB NOT NULL)");
    let mut reference = Vec::new();
    c.ok("BEGIN");
    for i in 1..=n {
        let mut v = rng.vec_f32(d);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        c.rows(
            "INSERT INTO docs_vecs(rowid, vec) VALUES(?, ?)",
            &[Val::Int(i), Val::Blob(f32_blob(&v))],
        );
        reference.push((i, to64(&v)));
    }
    c.ok("COMMIT");
    c.ok("CREATE VIRTUAL TABLE IF NOT EXISTS ann USING pocketvec(base_table=docs_vecs, dim=128)");
    let q = rng.vec_f32(d);
    assert_eq!(
        c.one("SELECT pocketvec_set_q(?)", &[Val::Blob(f32_blob(&q))])
            .int(),
        128
    );
    let got = pairs(&c.rows(
        "SELECT rowid, distance FROM ann ORDER BY distance LIMIT 5",
        &[],
    ));
    let all = brute(Metric::Cosine, &to64(&q), &reference);
    assert_topk(&got, &all, 5, TOL, "seed demo");
    // The seed promises cosine distances: 1 - cos.
    let cos = c.one(
        "SELECT pocketvec_cosine(vec, ?) FROM docs_vecs WHERE rowid = ?",
        &[Val::Blob(f32_blob(&q)), Val::Int(got[0].0)],
    );
    assert!((1.0 - cos.real() - got[0].1).abs() < 1e-5);
}

pub fn exact_topk_every_metric_and_type(open: Opener) {
    let c = mem(open);
    let (d, n) = (37, 600);
    let mut rng = Rng::new(7);
    for (t, ty) in ["f32", "f16", "int8"].iter().enumerate() {
        let mut sql = Vec::new();
        let mut reference = Vec::new();
        for i in 1..=n as i64 {
            let (blob, vals) = match *ty {
                "f32" => {
                    let v = rng.vec_f32(d);
                    (f32_blob(&v), to64(&v))
                }
                "f16" => {
                    let v: Vec<f16> = rng
                        .vec_f32(d)
                        .iter()
                        .map(|&x| f16::from_f32(x * 4.0))
                        .collect();
                    (
                        f16_blob(&v),
                        v.iter().map(|x| f64::from(x.to_f32())).collect(),
                    )
                }
                _ => {
                    let v: Vec<i8> = (0..d).map(|_| rng.i8()).collect();
                    (i8_blob(&v), v.iter().map(|&x| f64::from(x)).collect())
                }
            };
            sql.push((i, Val::Blob(blob)));
            reference.push((i, vals));
        }
        let base = format!("base_{ty}");
        base_table(&*c, &base, &sql);
        // Query in the table's own format.
        let (qblob, q64) = match *ty {
            "f32" => {
                let q = rng.vec_f32(d);
                (f32_blob(&q), to64(&q))
            }
            "f16" => {
                let q: Vec<f16> = rng.vec_f32(d).iter().map(|&x| f16::from_f32(x)).collect();
                (
                    f16_blob(&q),
                    q.iter().map(|x| f64::from(x.to_f32())).collect(),
                )
            }
            _ => {
                let q: Vec<i8> = (0..d).map(|_| rng.i8()).collect();
                (i8_blob(&q), q.iter().map(|&x| f64::from(x)).collect())
            }
        };
        for m in [Metric::Cosine, Metric::L2, Metric::Dot] {
            let vt = format!("ann_{t}_{}", m.name());
            c.ok(&format!(
                "CREATE VIRTUAL TABLE {vt} USING pocketvec(base_table={base}, dim={d}, metric={}, type={ty})",
                m.name()
            ));
            let all = brute(m, &q64, &reference);
            let ctx = format!("{ty}/{}", m.name());
            let got = pairs(&c.rows(
                &format!("SELECT rowid, distance FROM {vt} WHERE query = ? AND k = 10"),
                &[Val::Blob(qblob.clone())],
            ));
            assert_topk(&got, &all, 10, TOL, &ctx);
            let got = pairs(&c.rows(
                &format!(
                    "SELECT rowid, distance FROM {vt} WHERE query = ? ORDER BY distance LIMIT 7"
                ),
                &[Val::Blob(qblob.clone())],
            ));
            assert_topk(&got, &all, 7, TOL, &ctx);
            // Neither k nor LIMIT: every row, nearest first.
            let got = pairs(&c.rows(
                &format!("SELECT rowid, distance FROM {vt} WHERE query = ?"),
                &[Val::Blob(qblob.clone())],
            ));
            assert_topk(&got, &all, n, TOL, &ctx);
        }
    }
}

pub fn f32_query_into_int8_and_f16_tables(open: Opener) {
    let c = mem(open);
    let d = 24;
    let mut rng = Rng::new(11);
    let rows8: Vec<(i64, Val)> = (1..=200)
        .map(|i| {
            (
                i,
                Val::Blob(i8_blob(&(0..d).map(|_| rng.i8()).collect::<Vec<_>>())),
            )
        })
        .collect();
    base_table(&*c, "b8", &rows8);
    let rows16: Vec<(i64, Val)> = (1..=200)
        .map(|i| {
            (
                i,
                Val::Blob(f16_blob(
                    &rng.vec_f32(d)
                        .iter()
                        .map(|&x| f16::from_f32(x))
                        .collect::<Vec<_>>(),
                )),
            )
        })
        .collect();
    base_table(&*c, "b16", &rows16);
    c.ok(&format!(
        "CREATE VIRTUAL TABLE a8 USING pocketvec(base_table=b8, dim={d}, type=int8, metric=l2)"
    ));
    c.ok(&format!(
        "CREATE VIRTUAL TABLE a16 USING pocketvec(base_table=b16, dim={d}, type=f16, metric=dot)"
    ));
    let q = rng.vec_f32(d);
    let qb = Val::Blob(f32_blob(&q));
    // f32 into int8: pocketvec_int8's mapping.
    let a = c.rows(
        "SELECT rowid, distance FROM a8 WHERE query = ? AND k = 15",
        &[qb.clone()],
    );
    let quantized = c.one("SELECT pocketvec_int8(?)", &[qb.clone()]);
    let b = c.rows(
        "SELECT rowid, distance FROM a8 WHERE query = ? AND k = 15",
        &[quantized.clone()],
    );
    assert_eq!(a, b);
    // JSON into int8: literal integers, same as the raw bytes.
    let ints: Vec<i8> = quantized.blob().iter().map(|&x| x as i8).collect();
    let json = format!(
        "[{}]",
        ints.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let j = c.rows(
        "SELECT rowid, distance FROM a8 WHERE query = ? AND k = 15",
        &[Val::Text(json.clone())],
    );
    assert_eq!(a, j);
    // The seed form with tagged and JSON vectors.
    c.rows("SELECT pocketvec_set_q(pocketvec_int8(?))", &[qb.clone()]);
    assert_eq!(
        c.rows("SELECT rowid, distance FROM a8 WHERE k = 15", &[]),
        a
    );
    c.rows("SELECT pocketvec_set_q(?)", &[Val::Text(json.clone())]);
    assert_eq!(
        c.rows("SELECT rowid, distance FROM a8 WHERE k = 15", &[]),
        a
    );
    // f32 into f16: rounded, same as pocketvec_f16().
    let a = c.rows(
        "SELECT rowid, distance FROM a16 WHERE query = ? AND k = 15",
        &[qb.clone()],
    );
    let b = c.rows(
        "SELECT rowid, distance FROM a16 WHERE query = pocketvec_f16(?) AND k = 15",
        &[qb.clone()],
    );
    assert_eq!(a, b);
    let as_json = c.one("SELECT pocketvec_to_json(?)", &[qb.clone()]);
    let j = c.rows(
        "SELECT rowid, distance FROM a16 WHERE query = ? AND k = 15",
        &[as_json],
    );
    assert_eq!(a, j);
}

fn small_setup(c: &dyn Conn, n: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<(i64, f64)>) {
    let mut rng = Rng::new(seed);
    let (sql, reference) = f32_rows(&mut rng, n, d);
    base_table(c, "docs", &sql);
    c.ok(&format!(
        "CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim={d})"
    ));
    let q = rng.vec_f32(d);
    let all = brute(Metric::Cosine, &to64(&q), &reference);
    (q, all)
}

pub fn k_and_limit_semantics(open: Opener) {
    let c = mem(open);
    let (q, all) = small_setup(&*c, 50, 8, 3);
    let qb = || Val::Blob(f32_blob(&q));
    let run = |sql: &str| pairs(&c.rows(sql, &[qb()]));
    assert_topk(
        &run("SELECT rowid, distance FROM ann WHERE query = ? AND k = 5"),
        &all,
        5,
        TOL,
        "k",
    );
    assert_topk(
        &run("SELECT rowid, distance FROM ann WHERE query = ? ORDER BY distance LIMIT 7"),
        &all,
        7,
        TOL,
        "limit",
    );
    assert_topk(
        &run("SELECT rowid, distance FROM ann WHERE query = ? AND k = 5 ORDER BY distance LIMIT 7"),
        &all,
        5,
        TOL,
        "min(k, limit)",
    );
    assert_topk(
        &run(
            "SELECT rowid, distance FROM ann WHERE query = ? AND k = 12 ORDER BY distance LIMIT 3",
        ),
        &all,
        3,
        TOL,
        "min(limit, k)",
    );
    // OFFSET: the scan returns min(k, LIMIT + OFFSET) rows, SQLite skips OFFSET.
    let got = run("SELECT rowid, distance FROM ann WHERE query = ? AND k = 9 ORDER BY distance LIMIT 3 OFFSET 2");
    assert_topk(&got, &all[2..], 3, TOL, "offset");
    let got = run("SELECT rowid, distance FROM ann WHERE query = ? AND k = 4 ORDER BY distance LIMIT 3 OFFSET 2");
    assert_topk(&got, &all[2..], 2, TOL, "offset past k");
    assert_eq!(
        run("SELECT rowid, distance FROM ann WHERE query = ? ORDER BY distance LIMIT -1").len(),
        50
    );
    assert_topk(
        &run("SELECT rowid, distance FROM ann WHERE query = ?"),
        &all,
        50,
        TOL,
        "all rows",
    );
    assert_topk(
        &run("SELECT rowid, distance FROM ann WHERE query = ? AND k = 1000"),
        &all,
        50,
        TOL,
        "k > n",
    );
    assert_topk(
        &run("SELECT rowid, distance FROM ann WHERE query = ? AND k = 1099511627776"),
        &all,
        50,
        TOL,
        "k = 2^40, no cap",
    );
    assert!(
        run("SELECT rowid, distance FROM ann WHERE query = ? ORDER BY distance LIMIT 0").is_empty()
    );
    // Without ORDER BY the rows still come nearest first.
    assert_topk(
        &run("SELECT rowid, distance FROM ann WHERE query = ? LIMIT 4"),
        &all,
        4,
        TOL,
        "no order by",
    );
    // LIMIT from a parameter.
    let got = pairs(&c.rows(
        "SELECT rowid, distance FROM ann WHERE query = ?1 ORDER BY distance LIMIT ?2",
        &[qb(), Val::Int(6)],
    ));
    assert_topk(&got, &all, 6, TOL, "bound limit");
    // Seed form, k as a constraint too.
    c.rows("SELECT pocketvec_set_q(?)", &[qb()]);
    assert_topk(
        &pairs(&c.rows(
            "SELECT rowid, distance FROM ann ORDER BY distance LIMIT 5",
            &[],
        )),
        &all,
        5,
        TOL,
        "seed",
    );
    assert_topk(
        &pairs(&c.rows("SELECT rowid, distance FROM ann WHERE k = 3", &[])),
        &all,
        3,
        TOL,
        "seed k",
    );
    // The hidden columns read back.
    let r = c.rows(
        "SELECT k, query FROM ann WHERE query = ? AND k = 2",
        &[qb()],
    );
    assert_eq!(r, vec![vec![Val::Int(2), qb()], vec![Val::Int(2), qb()]]);
}

pub fn limit_not_applied_when_sqlite_filters_or_sorts(open: Opener) {
    let c = mem(open);
    let (q, all) = small_setup(&*c, 60, 8, 5);
    let qb = || Val::Blob(f32_blob(&q));
    let run = |sql: &str| pairs(&c.rows(sql, &[qb()]));
    // An expression on distance is filtered by SQLite after the scan.
    // Midway between two ranks, so f32 rounding cannot move a row across.
    let median = (all[30].1 + all[31].1) / 2.0;
    let far: Vec<(i64, f64)> = all.iter().filter(|r| r.1 + 0.0 > median).cloned().collect();
    let got = run(&format!(
        "SELECT rowid, distance FROM ann WHERE query = ? AND distance + 0 > {median:?} ORDER BY distance LIMIT 5"
    ));
    assert_topk(&got, &far, 5, TOL, "expression filter");
    // A rowid expression, too.
    let even: Vec<(i64, f64)> = all.iter().filter(|r| r.0 % 2 == 0).cloned().collect();
    let got = run("SELECT rowid, distance FROM ann WHERE query = ? AND rowid % 2 = 0 ORDER BY distance LIMIT 4");
    assert_topk(&got, &even, 4, TOL, "rowid expression");
    // k counts the rows the scan returns; SQLite's own filters come after.
    let got = run("SELECT rowid, distance FROM ann WHERE query = ? AND k = 10 AND rowid % 2 = 0");
    let expect: Vec<(i64, f64)> = all[..10].iter().filter(|r| r.0 % 2 == 0).cloned().collect();
    assert_eq!(
        got.iter().map(|r| r.0).collect::<Vec<_>>(),
        expect.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    // ORDER BY rowid: SQLite sorts, so LIMIT must not cut the scan.
    let got =
        run("SELECT rowid, distance FROM ann WHERE query = ? AND k = 20 ORDER BY rowid LIMIT 5");
    let mut top20: Vec<i64> = all[..20].iter().map(|r| r.0).collect();
    top20.sort();
    assert_eq!(
        got.iter().map(|r| r.0).collect::<Vec<_>>(),
        top20[..5].to_vec()
    );
    // ORDER BY distance DESC: the farthest.
    let got = run("SELECT rowid, distance FROM ann WHERE query = ? ORDER BY distance DESC LIMIT 3");
    let far3: Vec<i64> = all.iter().rev().take(3).map(|r| r.0).collect();
    assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), far3);
}

pub fn filtered_knn_rowid_in_ranges_distance(open: Opener) {
    let c = mem(open);
    let (q, all) = small_setup(&*c, 300, 16, 9);
    let qb = || Val::Blob(f32_blob(&q));
    let run = |sql: &str| pairs(&c.rows(sql, &[qb()]));
    let only = |f: &dyn Fn(i64, f64) -> bool| -> Vec<(i64, f64)> {
        all.iter().filter(|r| f(r.0, r.1)).cloned().collect()
    };

    let mut rng = Rng::new(99);
    let mut ids: Vec<i64> = (0..40).map(|_| 1 + rng.below(300) as i64).collect();
    ids.push(10_000);
    let list = ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let set: std::collections::HashSet<i64> = ids.iter().cloned().collect();
    let got = run(&format!(
        "SELECT rowid, distance FROM ann WHERE query = ? AND k = 10 AND rowid IN ({list})"
    ));
    assert_topk(
        &got,
        &only(&|id, _| set.contains(&id)),
        10,
        TOL,
        "rowid IN list",
    );
    // A large IN set (range scan with membership test).
    let big: Vec<i64> = (1..=300).filter(|i| i % 7 != 0).collect();
    let big_list = big
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let got = run(&format!(
        "SELECT rowid, distance FROM ann WHERE query = ? AND k = 10 AND rowid IN ({big_list})"
    ));
    assert_topk(&got, &only(&|id, _| id % 7 != 0), 10, TOL, "large IN");
    // IN (subquery).
    c.ok("CREATE TABLE tags(id INTEGER, tag TEXT)");
    c.ok(&format!(
        "{SERIES_300} INSERT INTO tags SELECT v, CASE WHEN v % 3 = 0 THEN 'a' ELSE 'b' END FROM s"
    ));
    let got = run("SELECT rowid, distance FROM ann WHERE query = ? AND k = 5 AND rowid IN (SELECT id FROM tags WHERE tag = 'a')");
    assert_topk(&got, &only(&|id, _| id % 3 == 0), 5, TOL, "IN subquery");
    // Two IN lists intersect; an empty list gives nothing.
    let got = run(
        "SELECT rowid, distance FROM ann WHERE query = ? AND rowid IN (1,2,3) AND rowid IN (2,3,4)",
    );
    assert_topk(&got, &only(&|id, _| id == 2 || id == 3), 2, TOL, "IN ∩ IN");
    assert!(run("SELECT rowid, distance FROM ann WHERE query = ? AND rowid IN ()").is_empty());
    // Ranges.
    let got = run(
        "SELECT rowid, distance FROM ann WHERE query = ? AND k = 7 AND rowid BETWEEN 100 AND 200",
    );
    assert_topk(
        &got,
        &only(&|id, _| (100..=200).contains(&id)),
        7,
        TOL,
        "BETWEEN",
    );
    let got =
        run("SELECT rowid, distance FROM ann WHERE query = ? AND rowid > 250.5 AND rowid <= 280");
    assert_topk(
        &got,
        &only(&|id, _| id > 250 && id <= 280),
        30,
        TOL,
        "real bound",
    );
    let got = run("SELECT rowid, distance FROM ann WHERE query = ? AND k = 3 AND rowid >= '290'");
    assert_topk(&got, &only(&|id, _| id >= 290), 3, TOL, "text bound");
    let got = run("SELECT rowid, distance FROM ann WHERE query = ? AND rowid < 5 AND rowid > 1");
    assert_topk(&got, &only(&|id, _| id > 1 && id < 5), 3, TOL, "open range");
    let got = run("SELECT rowid, distance FROM ann WHERE query = ? AND rowid = 17");
    assert_topk(&got, &only(&|id, _| id == 17), 1, TOL, "rowid =");
    assert!(run("SELECT rowid, distance FROM ann WHERE query = ? AND rowid > 'abc'").is_empty());
    // Odd right-hand sides follow SQLite's own comparison rules: the same
    // condition on the base table's INTEGER PRIMARY KEY is the reference.
    for cond in [
        "IN ('5', 7.0, 'x', NULL, 8.5, x'09')",
        ">= '290'",
        "> 297.0",
        "< 3.5",
        "<= -1",
        "> 'abc'",
        "< 'abc'",
        "> x'00'",
        "BETWEEN '10' AND 12.5",
        "= '42'",
        "= 42.5",
        "IN (SELECT '17' UNION SELECT 18.0)",
    ] {
        let mut want: Vec<i64> = c
            .rows(&format!("SELECT id FROM docs WHERE id {cond}"), &[])
            .iter()
            .map(|r| r[0].int())
            .collect();
        want.sort();
        let mut got: Vec<i64> = run(&format!(
            "SELECT rowid, distance FROM ann WHERE query = ? AND rowid {cond}"
        ))
        .iter()
        .map(|r| r.0)
        .collect();
        got.sort();
        assert_eq!(got, want, "rowid {cond}");
    }
    // Distance filters; k counts rows that pass them.
    // Bounds midway between ranks, so f32 rounding cannot move a row across.
    let x = (all[40].1 + all[41].1) / 2.0;
    let got = run(&format!(
        "SELECT rowid, distance FROM ann WHERE query = ? AND distance < {x:?}"
    ));
    assert_topk(&got, &only(&|_, d| d < x), 41, TOL, "distance <");
    let y = (all[100].1 + all[101].1) / 2.0;
    let got = run(&format!(
        "SELECT rowid, distance FROM ann WHERE query = ? AND k = 5 AND distance >= {x:?} AND distance < {y:?}"
    ));
    assert_topk(
        &got,
        &only(&|_, d| d >= x && d < y),
        5,
        TOL,
        "distance window",
    );
    assert!(run("SELECT rowid, distance FROM ann WHERE query = ? AND distance < NULL").is_empty());
    // Everything together, with LIMIT.
    let got = run(&format!(
        "SELECT rowid, distance FROM ann WHERE query = ? AND rowid IN ({big_list}) AND rowid > 20 \
         AND distance > {x:?} ORDER BY distance LIMIT 6"
    ));
    assert_topk(
        &got,
        &only(&|id, d| id % 7 != 0 && id > 20 && d > x),
        6,
        TOL,
        "combined",
    );
}

pub fn joins_back_to_base_and_other_tables(open: Opener) {
    let c = mem(open);
    let (q, all) = small_setup(&*c, 120, 8, 13);
    c.ok("CREATE TABLE titles(id INTEGER PRIMARY KEY, title TEXT)");
    c.ok(
        "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 120) \
          INSERT INTO titles SELECT v, 'doc ' || v FROM s",
    );
    let qb = || Val::Blob(f32_blob(&q));
    let rows = c.rows(
        "SELECT a.rowid, a.distance, t.title, pocketvec_distance_cosine(d.vec, ?1) \
         FROM ann a JOIN titles t ON t.id = a.rowid JOIN docs d ON d.id = a.rowid \
         WHERE a.query = ?1 AND a.k = 5 ORDER BY a.distance",
        &[qb()],
    );
    assert_topk(&pairs(&rows), &all, 5, TOL, "join");
    for r in &rows {
        assert_eq!(r[2].text(), format!("doc {}", r[0].int()));
        assert!((r[3].real() - r[1].real()).abs() < 1e-6);
    }
    // A small table joined on rowid, listed first: still the top-k of ann
    // (SQLite must not probe ann once per docs row).
    c.ok("CREATE TABLE few(id INTEGER PRIMARY KEY, label TEXT)");
    let few: Vec<i64> = vec![all[0].0, all[5].0, all[9].0, 1, 2, 3];
    for id in &few {
        c.rows("INSERT OR IGNORE INTO few VALUES(?, 'x')", &[Val::Int(*id)]);
    }
    c.ok("ANALYZE"); // the planner now knows `few` is tiny
    for sql in [
        "SELECT a.rowid, a.distance FROM few f JOIN ann a ON a.rowid = f.id WHERE a.query = ? AND a.k = 2",
        "SELECT a.rowid, a.distance FROM few f, ann a WHERE a.rowid = f.id AND a.query = ? AND a.k = 2",
    ] {
        let got = pairs(&c.rows(sql, &[qb()]));
        let in_few: Vec<(i64, f64)> = all[..2].iter().filter(|r| few.contains(&r.0)).cloned().collect();
        assert!(!in_few.is_empty());
        let mut got_sorted = got.clone();
        got_sorted.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap());
        assert_eq!(got_sorted.iter().map(|r| r.0).collect::<Vec<_>>(), in_few.iter().map(|r| r.0).collect::<Vec<_>>(), "{sql}");
    }
    // Query vectors from another table: top-3 per query.
    c.ok("CREATE TABLE queries(id INTEGER PRIMARY KEY, vec BLOB)");
    let mut rng = Rng::new(77);
    let qs: Vec<Vec<f32>> = (0..3).map(|_| rng.vec_f32(8)).collect();
    for (i, v) in qs.iter().enumerate() {
        c.rows(
            "INSERT INTO queries VALUES(?, ?)",
            &[Val::Int(i as i64 + 1), Val::Blob(f32_blob(v))],
        );
    }
    let rows = c.rows(
        "SELECT qq.id, a.rowid, a.distance FROM queries qq JOIN ann a ON a.query = qq.vec AND a.k = 3 \
         ORDER BY qq.id, a.distance",
        &[],
    );
    assert_eq!(rows.len(), 9);
    for (i, v) in qs.iter().enumerate() {
        let solo = pairs(&c.rows(
            "SELECT rowid, distance FROM ann WHERE query = ? AND k = 3",
            &[Val::Blob(f32_blob(v))],
        ));
        let group: Vec<(i64, f64)> = rows
            .iter()
            .filter(|r| r[0].int() == i as i64 + 1)
            .map(|r| (r[1].int(), r[2].real()))
            .collect();
        assert_eq!(group, solo, "query {i}");
    }
}

pub fn set_q_is_per_connection_and_overridable(open: Opener) {
    let path = tmp_db("setq");
    let c1 = open(&path);
    let mut rng = Rng::new(21);
    let (sql, reference) = f32_rows(&mut rng, 80, 8);
    base_table(&*c1, "docs", &sql);
    base_table(&*c1, "docs2", &sql);
    let (sql4, _) = f32_rows(&mut rng, 10, 4);
    base_table(&*c1, "small", &sql4);
    c1.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=8)");
    c1.ok("CREATE VIRTUAL TABLE ann2 USING pocketvec(base_table=docs2, dim=8, metric=l2)");
    c1.ok("CREATE VIRTUAL TABLE ann4 USING pocketvec(base_table=small, dim=4)");
    let q1 = rng.vec_f32(8);
    let q2 = rng.vec_f32(8);
    assert_eq!(
        c1.one("SELECT pocketvec_set_q(?)", &[Val::Blob(f32_blob(&q1))])
            .int(),
        8
    );
    let seed = "SELECT rowid, distance FROM ann ORDER BY distance LIMIT 5";
    assert_topk(
        &pairs(&c1.rows(seed, &[])),
        &brute(Metric::Cosine, &to64(&q1), &reference),
        5,
        TOL,
        "c1",
    );
    // The same vector serves every table of matching dimension...
    assert_topk(
        &pairs(&c1.rows(
            "SELECT rowid, distance FROM ann2 ORDER BY distance LIMIT 5",
            &[],
        )),
        &brute(Metric::L2, &to64(&q1), &reference),
        5,
        TOL,
        "ann2",
    );
    // ...and not the others.
    assert_eq!(
        c1.err("SELECT rowid FROM ann4 LIMIT 1", &[]),
        "pocketvec: the pocketvec_set_q vector cannot query table \"ann4\": expected 4 dimensions \
         (a BLOB of 16 bytes as f32, or a JSON array of 4 numbers), found a BLOB of 32 bytes"
    );
    // query = ? overrides it.
    assert_topk(
        &pairs(&c1.rows(
            "SELECT rowid, distance FROM ann WHERE query = ? ORDER BY distance LIMIT 5",
            &[Val::Blob(f32_blob(&q2))],
        )),
        &brute(Metric::Cosine, &to64(&q2), &reference),
        5,
        TOL,
        "override",
    );
    // A second connection has its own (none yet).
    let c2 = open(&path);
    assert_eq!(
        c2.err(seed, &[]),
        "pocketvec: table \"ann\" has no query vector: add WHERE query = ? or call SELECT pocketvec_set_q(?) \
         on this connection first"
    );
    let json = format!(
        "[{}]",
        q2.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert_eq!(
        c2.one("SELECT pocketvec_set_q(?)", &[Val::Text(json)])
            .int(),
        8
    );
    assert_topk(
        &pairs(&c2.rows(seed, &[])),
        &brute(Metric::Cosine, &to64(&q2), &reference),
        5,
        TOL,
        "c2",
    );
    assert_topk(
        &pairs(&c1.rows(seed, &[])),
        &brute(Metric::Cosine, &to64(&q1), &reference),
        5,
        TOL,
        "c1 again",
    );
    // An untagged BLOB is checked when a table reads it.
    let nan = f32_blob(&[1.0, f32::NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(
        c1.one("SELECT pocketvec_set_q(?)", &[Val::Blob(nan)]).int(),
        8
    );
    assert_eq!(
        c1.err(seed, &[]),
        "pocketvec: the pocketvec_set_q vector cannot query table \"ann\": element at index 1 is NaN; \
         vectors must be finite"
    );
    // NULL clears.
    assert_eq!(c1.one("SELECT pocketvec_set_q(NULL)", &[]), Val::Null);
    assert!(c1.err(seed, &[]).contains("has no query vector"));
}

pub fn two_connections_on_two_threads(open: Opener) {
    let path = tmp_db("threads");
    let mut rng = Rng::new(31);
    let (sql, reference) = f32_rows(&mut rng, 400, 32);
    {
        let c = open(&path);
        base_table(&*c, "docs", &sql);
        c.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=32)");
    }
    let reference = std::sync::Arc::new(reference);
    let handles: Vec<_> = (0..2u64)
        .map(|t| {
            let path = path.clone();
            let reference = reference.clone();
            std::thread::spawn(move || {
                let c = open(&path);
                let mut rng = Rng::new(1000 + t);
                for round in 0..25 {
                    let q = rng.vec_f32(32);
                    c.rows("SELECT pocketvec_set_q(?)", &[Val::Blob(f32_blob(&q))]);
                    for _ in 0..3 {
                        let got = pairs(&c.rows(
                            "SELECT rowid, distance FROM ann ORDER BY distance LIMIT 5",
                            &[],
                        ));
                        let all = brute(Metric::Cosine, &to64(&q), &reference);
                        assert_topk(&got, &all, 5, TOL, &format!("thread {t} round {round}"));
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread panicked");
    }
}

pub fn null_rows_skipped_bad_rows_named(open: Opener) {
    let c = mem(open);
    let v = |x: f32| Val::Blob(f32_blob(&[x, 1.0, 0.0, 0.5]));
    base_table(
        &*c,
        "docs",
        &[
            (1, v(0.1)),
            (2, v(0.2)),
            (3, Val::Null),
            (4, v(0.4)),
            (5, v(0.5)),
        ],
    );
    c.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=4)");
    let q = Val::Text("[1, 1, 0, 0.5]".into());
    let ids: Vec<i64> = c
        .rows(
            "SELECT rowid FROM ann WHERE query = ? ORDER BY rowid",
            &[q.clone()],
        )
        .iter()
        .map(|r| r[0].int())
        .collect();
    assert_eq!(ids, vec![1, 2, 4, 5]);
    c.rows(
        "INSERT INTO docs VALUES(6, ?)",
        &[Val::Blob(f32_blob(&[1.0, 2.0, 3.0]))],
    );
    assert_eq!(
        c.err("SELECT rowid FROM ann WHERE query = ? AND k = 3", &[q.clone()]),
        "pocketvec: row 6 of \"docs\".\"vec\" holds a BLOB of 12 bytes; virtual table \"ann\" expects a BLOB of 16 bytes \
         (4 f32 values) or NULL"
    );
    // Rows the filters exclude are not read.
    assert_eq!(
        c.rows(
            "SELECT rowid FROM ann WHERE query = ? AND rowid IN (1, 2)",
            &[q.clone()]
        )
        .len(),
        2
    );
    c.ok("UPDATE docs SET vec = 'oops' WHERE id = 6");
    assert_eq!(
        c.err("SELECT rowid FROM ann WHERE query = ?", &[q.clone()]),
        "pocketvec: row 6 of \"docs\".\"vec\" holds text; virtual table \"ann\" expects a BLOB of 16 bytes \
         (4 f32 values) or NULL"
    );
    c.ok("UPDATE docs SET vec = 7 WHERE id = 6");
    assert!(c
        .err("SELECT rowid FROM ann WHERE query = ?", &[q.clone()])
        .contains("row 6 of \"docs\".\"vec\" holds an integer"));
    c.ok("DELETE FROM docs WHERE id = 6");
    assert_eq!(
        c.rows("SELECT rowid FROM ann WHERE query = ?", &[q]).len(),
        4
    );
}

pub fn scalar_functions_match_reference(open: Opener) {
    let c = mem(open);
    let mut rng = Rng::new(41);
    let a = rng.vec_f32(50);
    let b = rng.vec_f32(50);
    let (ab, bb) = (Val::Blob(f32_blob(&a)), Val::Blob(f32_blob(&b)));
    let (a64, b64) = (to64(&a), to64(&b));
    let one = |sql: &str| c.one(sql, &[ab.clone(), bb.clone()]).real();
    let close = |x: f64, y: f64, what: &str| {
        assert!(
            (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
            "{what}: {x} vs {y}"
        )
    };
    close(
        one("SELECT pocketvec_cosine(?, ?)"),
        1.0 - dist64(Metric::Cosine, &a64, &b64),
        "cosine",
    );
    close(
        one("SELECT pocketvec_distance_cosine(?, ?)"),
        dist64(Metric::Cosine, &a64, &b64),
        "distance_cosine",
    );
    close(
        one("SELECT pocketvec_distance_l2(?, ?)"),
        dist64(Metric::L2, &a64, &b64),
        "l2",
    );
    close(
        one("SELECT pocketvec_distance_dot(?, ?)"),
        dist64(Metric::Dot, &a64, &b64),
        "distance_dot",
    );
    close(
        one("SELECT pocketvec_dot(?, ?)"),
        -dist64(Metric::Dot, &a64, &b64),
        "dot",
    );
    let norm = a64.iter().map(|x| x * x).sum::<f64>().sqrt();
    close(
        c.one("SELECT pocketvec_norm(?)", &[ab.clone()]).real(),
        norm,
        "norm",
    );
    assert_eq!(c.one("SELECT pocketvec_dim(?)", &[ab.clone()]).int(), 50);
    let unit = blob_f32(c.one("SELECT pocketvec_normalize(?)", &[ab.clone()]).blob());
    for (u, x) in unit.iter().zip(&a64) {
        close(f64::from(*u), x / norm, "normalize");
    }
    // JSON round trip is exact.
    let json = c.one("SELECT pocketvec_to_json(?)", &[ab.clone()]);
    assert_eq!(c.one("SELECT pocketvec_f32(?)", &[json]), ab);
    assert_eq!(
        c.one("SELECT pocketvec_dot('[1,2,3]', '[4,5,6]')", &[])
            .real(),
        32.0
    );
    assert_eq!(
        c.one("SELECT pocketvec_distance_l2('[0,0]', '[3,4]')", &[])
            .real(),
        5.0
    );
    assert_eq!(
        c.one("SELECT pocketvec_distance_cosine('[0,0]', '[1,0]')", &[])
            .real(),
        1.0
    );
    assert_eq!(
        c.one("SELECT pocketvec_cosine('[0,0]', '[1,0]')", &[])
            .real(),
        0.0
    );
    assert_eq!(
        c.one("SELECT pocketvec_f32('[0.1, 2, -3e-2]')", &[]),
        Val::Blob(f32_blob(&[0.1, 2.0, -0.03]))
    );
    assert_eq!(
        c.one("SELECT pocketvec_to_json('[0.5, -2, 1e-7]')", &[])
            .text(),
        "[0.5,-2.0,1e-7]"
    );
    // Zero vectors normalize to themselves.
    assert_eq!(
        c.one(
            "SELECT pocketvec_to_json(pocketvec_normalize('[0,0]'))",
            &[]
        )
        .text(),
        "[0.0,0.0]"
    );
    // Conversions.
    let h = c.one("SELECT pocketvec_f16('[0.5, -2, 0.1]')", &[]);
    assert_eq!(
        h.blob(),
        f16_blob(&[f16::from_f32(0.5), f16::from_f32(-2.0), f16::from_f32(0.1)]).as_slice()
    );
    assert_eq!(
        c.one("SELECT pocketvec_to_json(pocketvec_f16('[0.5, -2]'))", &[])
            .text(),
        "[0.5,-2.0]"
    );
    assert_eq!(
        c.one("SELECT pocketvec_int8('[0.5, -1.0, 0.25]')", &[])
            .blob(),
        i8_blob(&[64, -127, 32]).as_slice()
    );
    assert_eq!(
        c.one("SELECT pocketvec_int8('[0.5, -1.0, 3.0]', 0.01)", &[])
            .blob(),
        i8_blob(&[50, -100, 127]).as_slice()
    );
    assert_eq!(
        c.one(
            "SELECT pocketvec_to_json(pocketvec_int8('[0.5, -1.0, 0.25]'))",
            &[]
        )
        .text(),
        "[64,-127,32]"
    );
}

pub fn typed_functions_and_subtypes(open: Opener) {
    let c = mem(open);
    let mut rng = Rng::new(51);
    let a: Vec<f16> = rng.vec_f32(33).iter().map(|&x| f16::from_f32(x)).collect();
    let b: Vec<f16> = rng.vec_f32(33).iter().map(|&x| f16::from_f32(x)).collect();
    let a64: Vec<f64> = a.iter().map(|x| f64::from(x.to_f32())).collect();
    let b64: Vec<f64> = b.iter().map(|x| f64::from(x.to_f32())).collect();
    let (ab, bb) = (Val::Blob(f16_blob(&a)), Val::Blob(f16_blob(&b)));
    let typed = c
        .one(
            "SELECT pocketvec_distance_l2_f16(?, ?)",
            &[ab.clone(), bb.clone()],
        )
        .real();
    assert!((typed - dist64(Metric::L2, &a64, &b64)).abs() < 1e-4);
    // Subtypes from pocketvec_f16() carry the type into untyped functions.
    let a32: Vec<f32> = a.iter().map(|x| x.to_f32()).collect();
    let b32: Vec<f32> = b.iter().map(|x| x.to_f32()).collect();
    let tagged = c
        .one(
            "SELECT pocketvec_distance_l2(pocketvec_f16(?), pocketvec_f16(?))",
            &[Val::Blob(f32_blob(&a32)), Val::Blob(f32_blob(&b32))],
        )
        .real();
    assert_eq!(tagged, typed);
    assert_eq!(
        c.one("SELECT pocketvec_dim_f16(?)", &[ab.clone()]).int(),
        33
    );
    assert_eq!(
        c.one(
            "SELECT pocketvec_dim(pocketvec_f16(?))",
            &[Val::Blob(f32_blob(&a32))]
        )
        .int(),
        33
    );
    let cos = c
        .one(
            "SELECT pocketvec_cosine_f16(?, ?)",
            &[ab.clone(), bb.clone()],
        )
        .real();
    assert!((cos - (1.0 - dist64(Metric::Cosine, &a64, &b64))).abs() < 1e-4);
    // f16 with f32 computes in f32.
    let mixed = c
        .one(
            "SELECT pocketvec_dot(pocketvec_f16(?), ?)",
            &[Val::Blob(f32_blob(&a32)), Val::Blob(f32_blob(&b32))],
        )
        .real();
    assert!((mixed + dist64(Metric::Dot, &a64, &b64)).abs() < 1e-4);
    // int8: exact integer arithmetic.
    let x: Vec<i8> = (0..100).map(|_| rng.i8()).collect();
    let y: Vec<i8> = (0..100).map(|_| rng.i8()).collect();
    let (xb, yb) = (Val::Blob(i8_blob(&x)), Val::Blob(i8_blob(&y)));
    let dot: i64 = x
        .iter()
        .zip(&y)
        .map(|(&p, &q)| i64::from(p) * i64::from(q))
        .sum();
    assert_eq!(
        c.one("SELECT pocketvec_dot_int8(?, ?)", &[xb.clone(), yb.clone()])
            .real(),
        dot as f64
    );
    assert_eq!(
        c.one(
            "SELECT pocketvec_distance_dot_int8(?, ?)",
            &[xb.clone(), yb.clone()]
        )
        .real(),
        -dot as f64
    );
    let l2sq: i64 = x
        .iter()
        .zip(&y)
        .map(|(&p, &q)| (i64::from(p) - i64::from(q)).pow(2))
        .sum();
    let l2 = c
        .one(
            "SELECT pocketvec_distance_l2_int8(?, ?)",
            &[xb.clone(), yb.clone()],
        )
        .real();
    assert!((l2 - (l2sq as f64).sqrt()).abs() < 1e-3);
    assert_eq!(
        c.one("SELECT pocketvec_dim_int8(?)", &[xb.clone()]).int(),
        100
    );
    assert_eq!(
        c.one("SELECT pocketvec_dim(x'0102030405060708')", &[])
            .int(),
        2
    );
    // JSON in an int8 function: literal integers.
    assert_eq!(
        c.one("SELECT pocketvec_dot_int8(x'0102', '[3, -4]')", &[])
            .real(),
        -5.0
    );
    assert_eq!(
        c.one("SELECT pocketvec_to_json_int8(x'01ff80')", &[])
            .text(),
        "[1,-1,-128]"
    );
}

pub fn normalize_table_in_place(open: Opener) {
    let c = mem(open);
    let mut rng = Rng::new(61);
    let rows: Vec<Vec<f32>> = (0..20)
        .map(|_| rng.vec_f32(12).iter().map(|x| x * 5.0).collect())
        .collect();
    base_table(
        &*c,
        "t",
        &rows
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 + 1, Val::Blob(f32_blob(v))))
            .collect::<Vec<_>>(),
    );
    c.ok("UPDATE t SET vec = pocketvec_normalize(vec)");
    for r in c.rows(
        "SELECT id, vec, pocketvec_norm(vec) FROM t ORDER BY id",
        &[],
    ) {
        assert!((r[2].real() - 1.0).abs() < 1e-6);
        let orig = &rows[(r[0].int() - 1) as usize];
        let n = orig
            .iter()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            .sqrt();
        for (u, x) in blob_f32(r[1].blob()).iter().zip(orig) {
            assert!((f64::from(*u) - f64::from(*x) / n).abs() < 1e-6);
        }
    }
}

pub fn bad_function_inputs(open: Opener) {
    let c = mem(open);
    let cases: &[(&str, &str)] = &[
        (
            "SELECT pocketvec_distance_l2(x'0000803f', NULL)",
            "pocketvec_distance_l2: argument 2: expected a vector (a BLOB or a JSON array text), found NULL",
        ),
        (
            "SELECT pocketvec_dim(42)",
            "pocketvec_dim: argument 1: expected a vector (a BLOB or a JSON array text), found the integer 42",
        ),
        (
            "SELECT pocketvec_norm(1.5)",
            "pocketvec_norm: argument 1: expected a vector (a BLOB or a JSON array text), found the real number 1.5",
        ),
        (
            "SELECT pocketvec_dim(x'000000')",
            "pocketvec_dim: argument 1: a BLOB of f32 values needs a length divisible by 4, found a BLOB of 3 bytes",
        ),
        ("SELECT pocketvec_dim(x'')", "pocketvec_dim: argument 1: expected a vector of f32 values, found an empty BLOB"),
        (
            "SELECT pocketvec_dim('[1, 2')",
            "pocketvec_dim: argument 1: malformed JSON: EOF while parsing a list at line 1 column 5",
        ),
        (
            "SELECT pocketvec_dim('[1, \"x\"]')",
            "pocketvec_dim: argument 1: JSON element at index 1 is a string, expected a number",
        ),
        ("SELECT pocketvec_dim('[]')", "pocketvec_dim: argument 1: expected a vector, found an empty JSON array"),
        (
            "SELECT pocketvec_dim('{\"a\": 1}')",
            "pocketvec_dim: argument 1: expected a JSON array of numbers, found an object",
        ),
        (
            "SELECT pocketvec_norm(x'0000c07f0000803f')",
            "pocketvec_norm: argument 1: element at index 0 is NaN; vectors must be finite",
        ),
        (
            "SELECT pocketvec_norm('[1e39]')",
            "pocketvec_norm: argument 1: JSON element at index 0 (1e39) is out of the f32 range",
        ),
        (
            "SELECT pocketvec_distance_l2('[1,2,3]', '[1,2]')",
            "pocketvec_distance_l2: dimension mismatch: argument 1 has 3 dimensions, argument 2 has 2",
        ),
        ("SELECT pocketvec_dim('[1]', '[2]')", "pocketvec_dim: expected 1 argument, found 2"),
        ("SELECT pocketvec_cosine('[1]')", "pocketvec_cosine: expected 2 arguments, found 1"),
        ("SELECT pocketvec_int8('[1]', 1, 2)", "pocketvec_int8: expected 1 or 2 arguments, found 3"),
        ("SELECT pocketvec_version(1)", "pocketvec_version: expected 0 arguments, found 1"),
        ("SELECT pocketvec_set_q()", "pocketvec_set_q: expected 1 argument, found 0"),
        (
            "SELECT pocketvec_dot(pocketvec_int8('[1,2]'), '[1,2]')",
            "pocketvec_dot: cannot mix an int8 vector with an f32 vector; convert both with pocketvec_int8() \
             or use the _int8 function",
        ),
        (
            "SELECT pocketvec_dot_int8('[1.5]', x'01')",
            "pocketvec_dot_int8: argument 1: JSON element at index 0 is 1.5; an int8 vector needs integers in \
             [-128, 127] (use pocketvec_int8() to quantize floats)",
        ),
        (
            "SELECT pocketvec_f16('[70000]')",
            "pocketvec_f16: argument 1: element at index 0 (70000) is out of the f16 range (±65504)",
        ),
        (
            "SELECT pocketvec_int8('[1]', 0)",
            "pocketvec_int8: argument 2: the int8 scale must be a positive finite number, found 0",
        ),
        (
            "SELECT pocketvec_normalize(pocketvec_int8('[1]'))",
            "pocketvec_normalize: int8 vectors cannot be normalized; normalize the float vector before pocketvec_int8()",
        ),
        (
            "SELECT pocketvec_set_q(x'000000')",
            "pocketvec_set_q: a BLOB of f32 values needs a length divisible by 4, found a BLOB of 3 bytes \
             (tag other types with pocketvec_f16()/pocketvec_int8())",
        ),
        (
            "SELECT pocketvec_set_q('[1, nope]')",
            "pocketvec_set_q: malformed JSON: expected ident at line 1 column 6",
        ),
        (
            "SELECT pocketvec_set_q(12)",
            "pocketvec_set_q: argument 1: expected a vector (a BLOB or a JSON array text), found the integer 12",
        ),
    ];
    for (sql, msg) in cases {
        assert_eq!(&c.err(sql, &[]), msg, "{sql}");
        assert_eq!(
            c.one("SELECT pocketvec_dim('[1,2]')", &[]).int(),
            2,
            "usable after {sql}"
        );
    }
}

pub fn bad_query_inputs(open: Opener) {
    let c = mem(open);
    let (q, all) = small_setup(&*c, 20, 4, 71);
    let label = "table \"ann\"";
    assert_eq!(
        c.err("SELECT rowid FROM ann ORDER BY distance LIMIT 5", &[]),
        format!(
            "pocketvec: {label} has no query vector: add WHERE query = ? or call SELECT pocketvec_set_q(?) \
             on this connection first"
        )
    );
    let qv = |v: Val| c.err("SELECT rowid FROM ann WHERE query = ? AND k = 3", &[v]);
    let prefix = format!("pocketvec: query vector for {label}: ");
    let dims = "expected 4 dimensions (a BLOB of 16 bytes as f32, or a JSON array of 4 numbers)";
    assert_eq!(
        qv(Val::Blob(f32_blob(&[1.0, 2.0, 3.0]))),
        format!("{prefix}{dims}, found a BLOB of 12 bytes")
    );
    assert_eq!(
        qv(Val::Blob(vec![0; 13])),
        format!("{prefix}{dims}, found a BLOB of 13 bytes")
    );
    assert_eq!(
        qv(Val::Text("[1,2,3]".into())),
        format!("{prefix}{dims}, found a JSON array of 3 numbers")
    );
    assert_eq!(
        qv(Val::Null),
        format!("{prefix}expected a vector, found NULL")
    );
    assert_eq!(
        qv(Val::Int(5)),
        format!("{prefix}expected a vector (a BLOB or a JSON array text), found the integer 5")
    );
    assert!(qv(Val::Text("[1,2,".into())).starts_with(&format!("{prefix}malformed JSON: ")));
    assert_eq!(
        qv(Val::Text("[1,2,true,4]".into())),
        format!("{prefix}JSON element at index 2 is a boolean, expected a number")
    );
    assert_eq!(
        qv(Val::Blob(f32_blob(&[1.0, f32::NAN, 0.0, 0.0]))),
        format!("{prefix}element at index 1 is NaN; vectors must be finite")
    );
    assert_eq!(
        qv(Val::Blob(f32_blob(&[1.0, f32::INFINITY, 0.0, 0.0]))),
        format!("{prefix}element at index 1 is inf; vectors must be finite")
    );
    let kq = |k: &str| {
        c.err(
            &format!("SELECT rowid FROM ann WHERE query = ? AND k = {k}"),
            &[Val::Blob(f32_blob(&q))],
        )
    };
    let kp = format!("pocketvec: k for {label} must be a positive integer, found ");
    assert_eq!(kq("0"), format!("{kp}the integer 0"));
    assert_eq!(kq("-3"), format!("{kp}the integer -3"));
    assert_eq!(kq("2.5"), format!("{kp}the real number 2.5"));
    assert_eq!(kq("'10'"), format!("{kp}text '10'"));
    assert_eq!(kq("NULL"), format!("{kp}NULL"));
    // Still usable.
    let got = pairs(&c.rows(
        "SELECT rowid, distance FROM ann WHERE query = ? AND k = 3",
        &[Val::Blob(f32_blob(&q))],
    ));
    assert_topk(&got, &all, 3, TOL, "after errors");
}

pub fn bad_create_options(open: Opener) {
    let c = mem(open);
    c.ok("CREATE TABLE docs(id INTEGER PRIMARY KEY, vec BLOB, note TEXT)");
    c.ok("CREATE TABLE wr(id INTEGER PRIMARY KEY, vec BLOB) WITHOUT ROWID");
    let cases: &[(&str, &str)] = &[
        ("dim=4", "pocketvec: missing option base_table=<table>"),
        ("base_table=docs", "pocketvec: missing option dim=<dimensions>"),
        (
            "base_table=docs, dim=4, size=3",
            "pocketvec: unknown option 'size'; expected one of base_table, dim, column, metric, type, \
             index, cache, chunk_rows, threads, lists, quantizer, pq_m, nprobe, rerank, train_min",
        ),
        ("base_table=docs, dim=4, metric=hamming", "pocketvec: unknown metric 'hamming'; expected cosine, l2 or dot"),
        ("base_table=docs, dim=4, type=f64", "pocketvec: unknown type 'f64'; expected f32, f16 or int8"),
        ("base_table=docs, dim=0", "pocketvec: dim must be an integer between 1 and 65536, found '0'"),
        ("base_table=docs, dim=-8", "pocketvec: dim must be an integer between 1 and 65536, found '-8'"),
        ("base_table=docs, dim=abc", "pocketvec: dim must be an integer between 1 and 65536, found 'abc'"),
        ("base_table=docs, dim=1000000", "pocketvec: dim must be an integer between 1 and 65536, found '1000000'"),
        (
            "base_table=docs, dim=100000000000000000000000000",
            "pocketvec: dim must be an integer between 1 and 65536, found '100000000000000000000000000'",
        ),
        ("base_table=docs, dim=4, dim=5", "pocketvec: option dim is given twice"),
        (
            "docs, dim=4",
            "pocketvec: expected key=value options (base_table, dim, column, metric, type, index, cache, \
             chunk_rows, threads, lists, quantizer, pq_m, nprobe, rerank, train_min), found 'docs'",
        ),
        ("base_table=nope, dim=4", "pocketvec: base table \"nope\" does not exist in schema \"main\""),
        (
            "base_table=docs, dim=4, column=emb",
            "pocketvec: base table \"docs\" has no column \"emb\" (its columns: \"id\", \"vec\", \"note\")",
        ),
    ];
    for (args, msg) in cases {
        let sql = format!("CREATE VIRTUAL TABLE bad USING pocketvec({args})");
        assert_eq!(&c.err(&sql, &[]), msg, "{sql}");
        assert_eq!(
            c.one("SELECT count(*) FROM sqlite_master WHERE name = 'bad'", &[])
                .int(),
            0
        );
    }
    let e = c.err(
        "CREATE VIRTUAL TABLE bad USING pocketvec(base_table=wr, dim=4)",
        &[],
    );
    assert!(
        e.starts_with("pocketvec: cannot read rowids and \"vec\" from base table \"wr\" (no such column: rowid)"),
        "{e}"
    );
    // The good form works after all that.
    c.ok("CREATE VIRTUAL TABLE good USING pocketvec(base_table=docs, dim=4, column=VEC, metric=L2, type=F16)");
}

pub fn identifiers_are_quoted_not_spliced(open: Opener) {
    let c = mem(open);
    c.ok("CREATE TABLE keep(x)");
    c.ok("INSERT INTO keep VALUES(1)");
    let e = c.err(
        "CREATE VIRTUAL TABLE bad USING pocketvec(base_table='keep\"; DROP TABLE keep; --', dim=4)",
        &[],
    );
    assert_eq!(
        e,
        "pocketvec: base table \"keep\"\"; DROP TABLE keep; --\" does not exist in schema \"main\""
    );
    let e = c.err("CREATE VIRTUAL TABLE bad USING pocketvec(base_table=keep, column='x\" FROM keep; --', dim=4)", &[]);
    assert!(
        e.starts_with("pocketvec: base table \"keep\" has no column \"x\"\" FROM keep; --\""),
        "{e}"
    );
    assert_eq!(c.one("SELECT count(*) FROM keep", &[]).int(), 1);
    // Odd but real names work.
    c.ok("CREATE TABLE \"we\"\"ird tbl\"(id INTEGER PRIMARY KEY, \"my col\" BLOB)");
    c.rows(
        "INSERT INTO \"we\"\"ird tbl\" VALUES(7, ?)",
        &[Val::Blob(f32_blob(&[1.0, 0.0]))],
    );
    c.rows(
        "INSERT INTO \"we\"\"ird tbl\" VALUES(8, ?)",
        &[Val::Blob(f32_blob(&[0.0, 1.0]))],
    );
    c.ok("CREATE VIRTUAL TABLE \"a n\" USING pocketvec(base_table='we\"ird tbl', column='my col', dim=2)");
    let r = c.rows(
        "SELECT rowid, distance FROM \"a n\" WHERE query = '[0.1, 1]' AND k = 1",
        &[],
    );
    assert_eq!(r[0][0], Val::Int(8));
    // A real column called rowid that is not the key: the true rowid is used.
    c.ok("CREATE TABLE odd(rowid TEXT, vec BLOB)");
    c.rows(
        "INSERT INTO odd(_rowid_, rowid, vec) VALUES(42, 'label', ?)",
        &[Val::Blob(f32_blob(&[1.0, 0.0]))],
    );
    // An index needs an INTEGER PRIMARY KEY (VACUUM may renumber implicit
    // rowids); index=none scans the base table and takes any rowid table.
    assert_eq!(
        c.err("CREATE VIRTUAL TABLE aodd USING pocketvec(base_table=odd, dim=2)", &[]),
        "pocketvec: base table \"odd\" needs an INTEGER PRIMARY KEY column for an index (implicit \
         rowids may change on VACUUM); declare one, e.g. id INTEGER PRIMARY KEY, or create the table \
         with index=none to scan the base table without an index"
    );
    c.ok("CREATE VIRTUAL TABLE aodd USING pocketvec(base_table=odd, dim=2, index=none)");
    assert_eq!(
        c.one("SELECT rowid FROM aodd WHERE query = '[1, 0]'", &[]),
        Val::Int(42)
    );
}

pub fn failed_statements_change_nothing(open: Opener) {
    let c = mem(open);
    let mut rng = Rng::new(81);
    let mut rows: Vec<(i64, Val)> = (1..=5)
        .map(|i| (i, Val::Blob(f32_blob(&rng.vec_f32(6)))))
        .collect();
    rows[2].1 = Val::Text("oops".into());
    base_table(&*c, "t", &rows);
    let before = c.rows("SELECT id, vec FROM t ORDER BY id", &[]);
    let e = c.err("UPDATE t SET vec = pocketvec_normalize(vec)", &[]);
    assert!(
        e.starts_with("pocketvec_normalize: argument 1: malformed JSON: "),
        "{e}"
    );
    assert_eq!(c.rows("SELECT id, vec FROM t ORDER BY id", &[]), before);
    c.ok("UPDATE t SET vec = NULL WHERE id = 3");
    c.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=t, dim=6)");
    let read_only = "pocketvec: table \"ann\" is read-only: write to its base table \"t\"; commands: \
                     INSERT INTO \"ann\"(\"ann\") VALUES('optimize' | 'rebuild' | 'integrity-check')";
    assert_eq!(c.err("INSERT INTO ann(rowid) VALUES(1)", &[]), read_only);
    let q = "query = '[1, 0, 0, 0, 0, 0]'";
    assert_eq!(c.err(&format!("DELETE FROM ann WHERE {q}"), &[]), read_only);
    assert_eq!(
        c.err(&format!("UPDATE ann SET k = 3 WHERE {q}"), &[]),
        read_only
    );
    assert_eq!(
        c.err("INSERT INTO ann(ann) VALUES('vacuum')", &[]),
        "pocketvec: unknown command 'vacuum' for table \"ann\"; expected 'optimize', 'rebuild' or 'integrity-check'"
    );
    assert_eq!(
        c.one(
            "SELECT count(*) FROM ann WHERE query = pocketvec_normalize('[1,0,0,0,0,0]')",
            &[]
        )
        .int(),
        4
    );
}

pub fn dropped_base_table_reported_and_vtab_droppable(open: Opener) {
    let path = tmp_db("drop");
    {
        let c = open(&path);
        base_table(&*c, "docs", &[(1, Val::Blob(f32_blob(&[1.0, 2.0])))]);
        c.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=2)");
    }
    let c = open(&path);
    c.ok("DROP TABLE docs");
    assert_eq!(
        c.err("SELECT rowid FROM ann WHERE query = '[1, 2]'", &[]),
        "pocketvec: base table \"docs\" does not exist in schema \"main\" (virtual table \"ann\")"
    );
    c.ok("DROP TABLE ann");
    assert_eq!(c.one("SELECT count(*) FROM sqlite_master", &[]).int(), 0);
}
