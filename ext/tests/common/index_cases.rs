//! Index cases (flat and IVF storage in shadow tables): consistency with
//! the base table under random writes from pocketvec and plain
//! connections, read-only opens, DEFENSIVE mode, lifecycle, commands,
//! cache validation, batches, filters, IVF. Every query is checked against
//! an f64 brute force over what the base table holds.
#![allow(clippy::cloned_ref_to_slice_refs)]

use std::collections::BTreeMap;

use super::*;

const TOL: f64 = 2e-5;

fn tmp_db(tag: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "pocketvec-index-{}-{tag}-{}",
        std::process::id(),
        std::thread::current()
            .name()
            .unwrap_or("t")
            .replace("::", "_")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("t.db").to_string_lossy().into_owned()
}

/// What the base table holds: id → (name, vector or NULL).
type Model = BTreeMap<i64, (String, Option<Vec<f32>>)>;

fn reference(model: &Model) -> Vec<(i64, Vec<f64>)> {
    model
        .iter()
        .filter_map(|(id, (_, v))| {
            v.as_ref()
                .map(|v| (*id, v.iter().map(|&x| f64::from(x)).collect()))
        })
        .collect()
}

/// Runs `SELECT rowid, distance FROM vt WHERE query = ? AND k = ?` and
/// checks it against brute force over `model`.
fn check_knn(c: &dyn Conn, vt: &str, m: Metric, q: &[f32], k: usize, model: &Model, ctx: &str) {
    let got = pairs(&c.rows(
        &format!("SELECT rowid, distance FROM {vt} WHERE query = ? AND k = ?"),
        &[Val::Blob(f32_blob(q)), Val::Int(k as i64)],
    ));
    let q64: Vec<f64> = q.iter().map(|&x| f64::from(x)).collect();
    let all = brute(m, &q64, &reference(model));
    assert_topk(&got, &all, k, TOL, &format!("{ctx} ({vt})"));
}

/// An approximate query: exactly `min(k, rows)` rows, each one a current
/// base row (never a row deleted behind the triggers' back) with its exact
/// distance, nearest first. Exact tables are checked by `check_knn`.
fn check_ann(c: &dyn Conn, vt: &str, m: Metric, q: &[f32], k: usize, model: &Model, ctx: &str) {
    if !vt.ends_with("_i") {
        return check_knn(c, vt, m, q, k, model, ctx);
    }
    let got = pairs(&c.rows(
        &format!("SELECT rowid, distance FROM {vt} WHERE query = ? AND k = ?"),
        &[Val::Blob(f32_blob(q)), Val::Int(k as i64)],
    ));
    let q64: Vec<f64> = q.iter().map(|&x| f64::from(x)).collect();
    let all = brute(m, &q64, &reference(model));
    assert_eq!(got.len(), k.min(all.len()), "{ctx} ({vt}): row count");
    let truth: BTreeMap<i64, f64> = all.iter().cloned().collect();
    for (i, (id, d)) in got.iter().enumerate() {
        let t = truth
            .get(id)
            .unwrap_or_else(|| panic!("{ctx} ({vt}): returned row {id} is not in the base table"));
        assert!(
            (t - d).abs() <= TOL * (1.0 + t.abs()),
            "{ctx} ({vt}): row {id} at {d}, true {t}"
        );
        if i > 0 {
            assert!(got[i - 1].1 <= *d, "{ctx} ({vt}): not ascending");
        }
    }
}

fn set_model_row(model: &mut Model, id: i64, name: &str, v: Option<Vec<f32>>) {
    model.insert(id, (name.to_string(), v));
}

/// Inserts `vecs` into `table(id, name, vec)` in one transaction as rows
/// `first_id..`, named `{prefix}{id}`, and records them in `model`.
fn insert_named(
    c: &dyn Conn,
    table: &str,
    vecs: &[Vec<f32>],
    first_id: i64,
    prefix: &str,
    model: &mut Model,
) {
    c.ok("BEGIN");
    for (i, v) in vecs.iter().enumerate() {
        let id = first_id + i as i64;
        let name = format!("{prefix}{id}");
        c.rows(
            &format!("INSERT INTO {table} VALUES (?, ?, ?)"),
            &[
                Val::Int(id),
                Val::Text(name.clone()),
                Val::Blob(f32_blob(v)),
            ],
        );
        set_model_row(model, id, &name, Some(v.clone()));
    }
    c.ok("COMMIT");
}

fn vec_or_null(v: &Option<Vec<f32>>) -> Val {
    match v {
        Some(v) => Val::Blob(f32_blob(v)),
        None => Val::Null,
    }
}

fn fresh_id(rng: &mut Rng, model: &Model) -> i64 {
    loop {
        let id = 1 + rng.below(600) as i64;
        if !model.contains_key(&id) {
            return id;
        }
    }
}

fn pick(rng: &mut Rng, model: &Model) -> Option<i64> {
    if model.is_empty() {
        return None;
    }
    let i = rng.below(model.len() as u64) as usize;
    model.keys().nth(i).copied()
}

/// One random write on `c`, mirrored into `model`.
fn random_write(c: &dyn Conn, rng: &mut Rng, model: &mut Model, d: usize, serial: &mut i64) {
    let newvec = |rng: &mut Rng| -> Option<Vec<f32>> {
        if rng.below(10) == 0 {
            None
        } else {
            Some(rng.vec_f32(d))
        }
    };
    match rng.below(8) {
        0 | 1 => {
            let id = fresh_id(rng, model);
            *serial += 1;
            let name = format!("n{serial}");
            let v = newvec(rng);
            c.rows(
                "INSERT INTO docs(id, name, vec) VALUES (?, ?, ?)",
                &[Val::Int(id), Val::Text(name.clone()), vec_or_null(&v)],
            );
            set_model_row(model, id, &name, v);
        }
        2 => {
            if let Some(id) = pick(rng, model) {
                let v = newvec(rng);
                c.rows(
                    "UPDATE docs SET vec = ? WHERE id = ?",
                    &[vec_or_null(&v), Val::Int(id)],
                );
                model.get_mut(&id).unwrap().1 = v;
            }
        }
        3 => {
            // A change of rowid.
            if let Some(id) = pick(rng, model) {
                let to = fresh_id(rng, model);
                c.rows(
                    "UPDATE docs SET id = ? WHERE id = ?",
                    &[Val::Int(to), Val::Int(id)],
                );
                let row = model.remove(&id).unwrap();
                model.insert(to, row);
            }
        }
        4 => {
            if let Some(id) = pick(rng, model) {
                c.rows("DELETE FROM docs WHERE id = ?", &[Val::Int(id)]);
                model.remove(&id);
            }
        }
        5 => {
            // The REPLACE trap: the row holding `name` is deleted through
            // the UNIQUE conflict without a DELETE trigger.
            if let Some(victim) = pick(rng, model) {
                let name = model[&victim].0.clone();
                let id = fresh_id(rng, model);
                let v = newvec(rng);
                c.rows(
                    "REPLACE INTO docs(id, name, vec) VALUES (?, ?, ?)",
                    &[Val::Int(id), Val::Text(name.clone()), vec_or_null(&v)],
                );
                model.remove(&victim);
                set_model_row(model, id, &name, v);
            }
        }
        6 => {
            // INSERT OR REPLACE on an existing key.
            if let Some(id) = pick(rng, model) {
                *serial += 1;
                let name = format!("n{serial}");
                let v = newvec(rng);
                c.rows(
                    "INSERT OR REPLACE INTO docs(id, name, vec) VALUES (?, ?, ?)",
                    &[Val::Int(id), Val::Text(name.clone()), vec_or_null(&v)],
                );
                set_model_row(model, id, &name, v);
            }
        }
        _ => {
            // An update that does not touch the vector or the key.
            if let Some(id) = pick(rng, model) {
                *serial += 1;
                let name = format!("n{serial}");
                c.rows(
                    "UPDATE docs SET name = ? WHERE id = ?",
                    &[Val::Text(name.clone()), Val::Int(id)],
                );
                model.get_mut(&id).unwrap().0 = name;
            }
        }
    }
}

const VTABS: [(&str, Metric); 5] = [
    // Compact RAM cache (f16 screening, candidates re-scored from the base).
    ("ann_c", Metric::Cosine),
    ("ann_l", Metric::L2),
    ("ann_d", Metric::Dot),
    // IVF (3 of 4 lists probed: approximate, checked by `check_ann`),
    // re-ranked from the RAM copy of the base vectors or the base table.
    ("ann_i", Metric::Cosine),
    // The f32 rows themselves in RAM.
    ("ann_f", Metric::Cosine),
];

fn setup_docs(
    c: &dyn Conn,
    rng: &mut Rng,
    n: usize,
    d: usize,
    model: &mut Model,
    serial: &mut i64,
) {
    c.ok("CREATE TABLE docs(id INTEGER PRIMARY KEY, name TEXT UNIQUE, vec BLOB)");
    c.ok("BEGIN");
    for i in 1..=n as i64 {
        *serial += 1;
        let name = format!("n{serial}");
        let v = Some(rng.vec_f32(d));
        c.rows(
            "INSERT INTO docs(id, name, vec) VALUES (?, ?, ?)",
            &[Val::Int(i * 2), Val::Text(name.clone()), vec_or_null(&v)],
        );
        set_model_row(model, i * 2, &name, v);
    }
    c.ok("COMMIT");
}

/// Random INSERT/UPDATE (vector, key, other column)/DELETE/REPLACE from a
/// pocketvec connection and a plain one, single statements and
/// transactions that commit or roll back; after each step exact queries on
/// three tables (cosine cached, l2 streamed, dot cached) from two pocketvec
/// connections equal brute force over the base table.
pub fn index_random_writes_match_brute_force(d: Driver) {
    let path = tmp_db("rand");
    let a = (d.open)(&path);
    let b = (d.plain)(&path);
    let c2 = (d.open)(&path);
    let dim = 8;
    let mut rng = Rng::new(2024);
    let mut model = Model::new();
    let mut serial = 0;
    setup_docs(&*a, &mut rng, 120, dim, &mut model, &mut serial);
    a.ok("CREATE VIRTUAL TABLE ann_c USING pocketvec(base_table=docs, dim=8, chunk_rows=16)");
    a.ok("CREATE VIRTUAL TABLE ann_l USING pocketvec(base_table=docs, dim=8, metric=l2, chunk_rows=16, cache=off)");
    a.ok("CREATE VIRTUAL TABLE ann_d USING pocketvec(base_table=docs, dim=8, metric=dot, chunk_rows=16)");
    a.ok("CREATE VIRTUAL TABLE ann_i USING pocketvec(base_table=docs, dim=8, index=ivf, lists=4, quantizer=int8, train_min=100, nprobe=3)");
    a.ok("CREATE VIRTUAL TABLE ann_f USING pocketvec(base_table=docs, dim=8, chunk_rows=16, cache=full)");
    let conns: [&dyn Conn; 3] = [&*a, &*b, &*c2];
    let ext: [&dyn Conn; 2] = [&*a, &*c2];
    for step in 0..300 {
        let wi = rng.below(3) as usize;
        let w = conns[wi];
        if rng.below(4) == 0 {
            // A transaction of a few writes; queried inside it when the
            // writer has pocketvec, then committed or rolled back.
            let mut pending = model.clone();
            w.ok("BEGIN");
            for _ in 0..1 + rng.below(5) {
                random_write(w, &mut rng, &mut pending, dim, &mut serial);
            }
            if wi != 1 {
                let q = rng.vec_f32(dim);
                let (vt, m) = VTABS[rng.below(VTABS.len() as u64) as usize];
                check_ann(
                    w,
                    vt,
                    m,
                    &q,
                    1 + rng.below(12) as usize,
                    &pending,
                    &format!("step {step} in tx"),
                );
            }
            if rng.below(2) == 0 {
                w.ok("COMMIT");
                model = pending;
            } else {
                w.ok("ROLLBACK");
            }
        } else {
            random_write(w, &mut rng, &mut model, dim, &mut serial);
        }
        for (i, c) in ext.iter().enumerate() {
            let q = rng.vec_f32(dim);
            let (vt, m) = VTABS[(step + i) % VTABS.len()];
            check_ann(
                *c,
                vt,
                m,
                &q,
                1 + rng.below(15) as usize,
                &model,
                &format!("step {step} conn {i}"),
            );
        }
        if step % 50 == 49 {
            for (vt, m) in VTABS {
                a.ok(&format!("INSERT INTO {vt}({vt}) VALUES('integrity-check')"));
                // Every row, nearest first (no k): still exactly the base.
                let q = rng.vec_f32(dim);
                let got = pairs(&c2.rows(
                    &format!("SELECT rowid, distance FROM {vt} WHERE query = ?"),
                    &[Val::Blob(f32_blob(&q))],
                ));
                let q64: Vec<f64> = q.iter().map(|&x| f64::from(x)).collect();
                let all = brute(m, &q64, &reference(&model));
                assert_topk(
                    &got,
                    &all,
                    all.len(),
                    TOL,
                    &format!("step {step} all rows {vt}"),
                );
            }
        }
    }
    // The REPLACE trap left stale entries; queries never returned them, and
    // a write-capable query logged them so 'optimize' removes them.
    a.ok("INSERT INTO ann_c(ann_c) VALUES('optimize')");
    a.ok("INSERT INTO ann_c(ann_c) VALUES('integrity-check')");
}

/// A prebuilt database opened read-only (`mode=ro`, `immutable=1`,
/// `PRAGMA query_only`, and a lock held by another connection) with changes
/// still waiting in the log: queries are exact and nothing is written.
pub fn index_read_only_opens_overlay_pending_log(d: Driver) {
    let path = tmp_db("ro");
    let dim = 6;
    let mut rng = Rng::new(7);
    let mut model = Model::new();
    let mut serial = 0;
    {
        let a = (d.open)(&path);
        setup_docs(&*a, &mut rng, 80, dim, &mut model, &mut serial);
        a.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=6, chunk_rows=16)");
        a.ok("CREATE VIRTUAL TABLE annf USING pocketvec(base_table=docs, dim=6, chunk_rows=16, cache=off, metric=l2)");
    }
    {
        // Changes from an app without pocketvec: they wait in the log.
        let b = (d.plain)(&path);
        for _ in 0..40 {
            random_write(&*b, &mut rng, &mut model, dim, &mut serial);
        }
    }
    let logged = |p: &str| -> (i64, Vec<Val>) {
        let b = (d.plain)(p);
        (
            b.one("SELECT count(*) FROM ann_log", &[]).int(),
            b.rows("SELECT value FROM ann_info WHERE key = 'token'", &[])[0].clone(),
        )
    };
    let before = logged(&path);
    assert!(before.0 > 0);
    let bytes = std::fs::read(&path).unwrap();
    let uris = [
        format!("file:{path}?mode=ro"),
        format!("file:{path}?immutable=1"),
    ];
    for uri in &uris {
        let c = (d.open)(uri);
        for _ in 0..5 {
            let q = rng.vec_f32(dim);
            check_knn(&*c, "ann", Metric::Cosine, &q, 7, &model, uri);
            check_knn(&*c, "annf", Metric::L2, &q, 3, &model, uri);
        }
        let info = c.one("SELECT ann FROM ann WHERE ann = 'info'", &[]);
        assert!(info.text().contains("\"pending_log\":"), "{info:?}");
    }
    {
        let c = (d.open)(&path);
        c.ok("PRAGMA query_only = 1");
        let q = rng.vec_f32(dim);
        check_knn(&*c, "ann", Metric::Cosine, &q, 9, &model, "query_only");
    }
    assert_eq!(logged(&path), before, "a read-only query wrote");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file changed");
    {
        // Another connection holds the write lock: the query overlays the
        // log instead of waiting or failing.
        let holder = (d.plain)(&path);
        holder.ok("BEGIN IMMEDIATE");
        let c = (d.open)(&path);
        c.ok("PRAGMA busy_timeout = 0");
        let q = rng.vec_f32(dim);
        check_knn(&*c, "ann", Metric::Cosine, &q, 5, &model, "locked");
        holder.ok("COMMIT");
        assert_eq!(logged(&path), before);
        // Writable again: the next query applies the log.
        check_knn(&*c, "ann", Metric::Cosine, &q, 5, &model, "unlocked");
        assert_eq!(logged(&path).0, 0);
    }
}

/// DEFENSIVE mode: shadow tables are read-only to ordinary SQL, the log is
/// not, so triggers and queries keep working.
pub fn index_defensive_mode(d: Driver) {
    let path = tmp_db("def");
    let dim = 4;
    let mut rng = Rng::new(11);
    let mut model = Model::new();
    let mut serial = 0;
    let a = (d.open)(&path);
    a.set_defensive(true);
    setup_docs(&*a, &mut rng, 50, dim, &mut model, &mut serial);
    a.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=4, chunk_rows=16)");
    for i in 0..30 {
        random_write(&*a, &mut rng, &mut model, dim, &mut serial);
        let q = rng.vec_f32(dim);
        check_knn(
            &*a,
            "ann",
            Metric::Cosine,
            &q,
            6,
            &model,
            &format!("defensive {i}"),
        );
    }
    let e = a.err("DELETE FROM ann_chunks", &[]);
    assert!(e.contains("may not be modified"), "{e}");
    let e = a.err("UPDATE ann_info SET value = 0 WHERE key = 'rows'", &[]);
    assert!(e.contains("may not be modified"), "{e}");
    a.ok("INSERT INTO ann(ann) VALUES('rebuild')");
    a.ok("INSERT INTO ann(ann) VALUES('integrity-check')");
    // A plain connection in DEFENSIVE mode writes the base table (the
    // triggers append to the log, which is no shadow table).
    let b = (d.plain)(&path);
    b.set_defensive(true);
    for _ in 0..10 {
        random_write(&*b, &mut rng, &mut model, dim, &mut serial);
    }
    let q = rng.vec_f32(dim);
    check_knn(
        &*a,
        "ann",
        Metric::Cosine,
        &q,
        6,
        &model,
        "after plain defensive writes",
    );
    a.ok("ALTER TABLE ann RENAME TO ann2");
    check_knn(
        &*a,
        "ann2",
        Metric::Cosine,
        &q,
        6,
        &model,
        "renamed in defensive mode",
    );
    a.ok("DROP TABLE ann2");
}

fn names_like(c: &dyn Conn, prefix: &str) -> Vec<String> {
    c.rows(
        "SELECT type || ' ' || name FROM sqlite_master WHERE name LIKE ? ORDER BY 1",
        &[Val::Text(format!("{prefix}%"))],
    )
    .iter()
    .map(|r| r[0].text().to_string())
    .collect()
}

/// DROP TABLE, ALTER TABLE … RENAME of the virtual and the base table,
/// dropping the base table, removing the triggers without the extension,
/// and a format version this build does not read.
pub fn index_lifecycle_drop_rename_format(d: Driver) {
    let path = tmp_db("life");
    let dim = 4;
    let mut rng = Rng::new(5);
    let mut model = Model::new();
    let mut serial = 0;
    let a = (d.open)(&path);
    setup_docs(&*a, &mut rng, 40, dim, &mut model, &mut serial);
    a.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=4)");
    assert_eq!(
        names_like(&*a, "ann"),
        [
            "table ann",
            "table ann_chunks",
            "table ann_info",
            "table ann_lists",
            "table ann_log",
            "table ann_map",
            "trigger ann_ad",
            "trigger ann_ai",
            "trigger ann_au",
        ]
    );
    a.ok("ALTER TABLE ann RENAME TO vec_idx");
    assert!(
        names_like(&*a, "ann").is_empty(),
        "{:?}",
        names_like(&*a, "ann")
    );
    assert_eq!(names_like(&*a, "vec_idx").len(), 9);
    random_write(&*a, &mut rng, &mut model, dim, &mut serial);
    let q = rng.vec_f32(dim);
    check_knn(
        &*a,
        "vec_idx",
        Metric::Cosine,
        &q,
        5,
        &model,
        "after vtab rename",
    );
    // The base table renamed: the triggers follow it, and so does the index.
    a.ok("ALTER TABLE docs RENAME TO documents");
    {
        let b = (d.plain)(&path);
        b.rows(
            "INSERT INTO documents(id, name, vec) VALUES (9999, 'new', ?)",
            &[Val::Blob(f32_blob(&[1.0, 2.0, 3.0, 4.0]))],
        );
        set_model_row(&mut model, 9999, "new", Some(vec![1.0, 2.0, 3.0, 4.0]));
    }
    let c = (d.open)(&path);
    check_knn(
        &*c,
        "vec_idx",
        Metric::Cosine,
        &q,
        5,
        &model,
        "after base rename",
    );
    let info = c.one("SELECT vec_idx FROM vec_idx WHERE vec_idx = 'info'", &[]);
    assert!(
        info.text().contains("\"base_table\":\"documents\""),
        "{info:?}"
    );
    // Triggers removed without the extension (the documented SQL):
    {
        let b = (d.plain)(&path);
        b.ok("DROP TRIGGER IF EXISTS vec_idx_ai; DROP TRIGGER IF EXISTS vec_idx_ad; DROP TRIGGER IF EXISTS vec_idx_au;");
    }
    let e = c.err(
        "SELECT rowid FROM vec_idx WHERE query = '[1,0,0,0]' AND k = 1",
        &[],
    );
    assert!(
        e.contains("change-log triggers") && e.contains("'rebuild'"),
        "{e}"
    );
    c.ok("INSERT INTO vec_idx(vec_idx) VALUES('rebuild')");
    check_knn(
        &*c,
        "vec_idx",
        Metric::Cosine,
        &q,
        5,
        &model,
        "after rebuild",
    );
    // A format this build does not read.
    {
        let b = (d.plain)(&path);
        b.ok("UPDATE vec_idx_info SET value = 99 WHERE key = 'format'");
    }
    let c = (d.open)(&path);
    assert_eq!(
        c.err(
            "SELECT rowid FROM vec_idx WHERE query = '[1,0,0,0]' AND k = 1",
            &[]
        ),
        "pocketvec: table \"vec_idx\" uses on-disk format 99, this pocketvec reads format 1; \
         use a matching pocketvec version, or DROP TABLE \"vec_idx\" and create it again"
    );
    c.ok("DROP TABLE vec_idx");
    assert!(names_like(&*c, "vec_idx").is_empty());
    // Dropping the base table: a clear error, and the index still drops.
    c.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=documents, dim=4)");
    c.ok("DROP TABLE documents");
    let e = c.err(
        "SELECT rowid FROM ann WHERE query = '[1,0,0,0]' AND k = 1",
        &[],
    );
    assert_eq!(
        e,
        "pocketvec: base table \"documents\" does not exist in schema \"main\" (virtual table \"ann\")"
    );
    c.ok("DROP TABLE ann");
    assert_eq!(c.one("SELECT count(*) FROM sqlite_master", &[]).int(), 0);
}

/// 'optimize', 'integrity-check' (finds damage), 'rebuild', the info
/// query, `pocketvec_info` and `pocketvec_cache`.
pub fn index_commands_and_info(d: Driver) {
    let path = tmp_db("cmd");
    let dim = 4;
    let mut rng = Rng::new(3);
    let mut model = Model::new();
    let mut serial = 0;
    let a = (d.open)(&path);
    setup_docs(&*a, &mut rng, 100, dim, &mut model, &mut serial);
    a.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=4, chunk_rows=32)");
    let info = |c: &dyn Conn| -> serde_json::Value {
        serde_json::from_str(c.one("SELECT pocketvec_info('ann')", &[]).text()).unwrap()
    };
    let j = info(&*a);
    assert_eq!(j["rows"], 100);
    assert_eq!(j["pending_log"], 0);
    assert_eq!(j["trained"], false);
    assert_eq!(j["index"], "flat");
    assert_eq!(j["chunk_bytes"], 4 * 32 * (8 + 4 + 16));
    {
        let b = (d.plain)(&path);
        b.ok("DELETE FROM docs WHERE id <= 20");
    }
    model.retain(|id, _| *id > 20);
    let j = info(&*a);
    assert_eq!(j["pending_log"], 10);
    a.ok("INSERT INTO ann(ann) VALUES('optimize')");
    let j = info(&*a);
    assert_eq!(j["pending_log"], 0);
    assert_eq!(j["rows"], 90);
    let q = rng.vec_f32(dim);
    check_knn(&*a, "ann", Metric::Cosine, &q, 4, &model, "after optimize");
    // The first query of a connection streams; the second fills the cache.
    assert_eq!(info(&*a)["cache_bytes"], 0);
    check_knn(&*a, "ann", Metric::Cosine, &q, 4, &model, "cache filled");
    let j = info(&*a);
    let cache = j["cache_bytes"].as_u64().unwrap();
    assert!(
        cache > 0 && cache as f64 <= 1.05 * (90 * (8 + 4 + 16)) as f64 + 4096.0,
        "{j}"
    );
    // Switch the cache off for this connection: same answers, no cache.
    assert_eq!(a.one("SELECT pocketvec_cache('ann', 0)", &[]).int(), 0);
    check_knn(&*a, "ann", Metric::Cosine, &q, 4, &model, "cache off");
    assert_eq!(info(&*a)["cache_bytes"], 0);
    assert_eq!(a.one("SELECT pocketvec_cache('ann', 1)", &[]).int(), 1);
    a.ok("INSERT INTO ann(ann) VALUES('integrity-check')");
    // Damage the stored vectors from a plain connection.
    {
        let b = (d.plain)(&path);
        // Keep chunk 0's rowids and norms (32 x 12 bytes), zero its vectors.
        b.ok("UPDATE ann_chunks SET data = substr(data, 1, 384) || zeroblob(length(data) - 384) WHERE id = 0");
    }
    let e = a.err("INSERT INTO ann(ann) VALUES('integrity-check')", &[]);
    assert!(
        e.contains("is damaged") && e.contains("different vector"),
        "{e}"
    );
    a.ok("INSERT INTO ann(ann) VALUES('rebuild')");
    a.ok("INSERT INTO ann(ann) VALUES('integrity-check')");
    check_knn(&*a, "ann", Metric::Cosine, &q, 4, &model, "after rebuild");
    assert!(a.err("SELECT pocketvec_info('nope')", &[]).contains("nope"));
}

/// Caches on two connections stay exact across each other's writes, a
/// rolled-back transaction, and writes from a plain connection.
pub fn index_cache_validation_across_connections(d: Driver) {
    let path = tmp_db("cache");
    let dim = 8;
    let mut rng = Rng::new(99);
    let mut model = Model::new();
    let mut serial = 0;
    let a = (d.open)(&path);
    let c = (d.open)(&path);
    let b = (d.plain)(&path);
    setup_docs(&*a, &mut rng, 200, dim, &mut model, &mut serial);
    a.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=8, chunk_rows=16)");
    let q = rng.vec_f32(dim);
    for round in 0..20 {
        check_knn(
            &*a,
            "ann",
            Metric::Cosine,
            &q,
            10,
            &model,
            &format!("a {round}"),
        );
        check_knn(
            &*c,
            "ann",
            Metric::Cosine,
            &q,
            10,
            &model,
            &format!("c {round}"),
        );
        // The nearest row itself changes, from a rotating writer.
        let near = pairs(&a.rows(
            "SELECT rowid, distance FROM ann WHERE query = ? AND k = 1",
            &[Val::Blob(f32_blob(&q))],
        ))[0]
            .0;
        let w: &dyn Conn = [&*a, &*b, &*c][round % 3];
        match round % 4 {
            0 => {
                w.rows("DELETE FROM docs WHERE id = ?", &[Val::Int(near)]);
                model.remove(&near);
            }
            1 => {
                let v = rng.vec_f32(dim);
                w.rows(
                    "UPDATE docs SET vec = ? WHERE id = ?",
                    &[Val::Blob(f32_blob(&v)), Val::Int(near)],
                );
                model.get_mut(&near).unwrap().1 = Some(v);
            }
            2 => {
                // A rolled-back transaction that moved the nearest row: the
                // cache of the connection that queried inside it must not
                // keep the undone state.
                if w.version() > 0 && round % 3 != 1 {
                    w.ok("BEGIN");
                    w.rows(
                        "UPDATE docs SET vec = ? WHERE id = ?",
                        &[Val::Blob(f32_blob(&q)), Val::Int(near + 100_000)],
                    );
                    w.rows("DELETE FROM docs WHERE id = ?", &[Val::Int(near)]);
                    let mut inside = model.clone();
                    inside.remove(&near);
                    check_knn(w, "ann", Metric::Cosine, &q, 10, &inside, "inside tx");
                    w.ok("ROLLBACK");
                }
            }
            _ => {
                serial += 1;
                let id = fresh_id(&mut rng, &model);
                w.rows(
                    "INSERT INTO docs(id, name, vec) VALUES (?, ?, ?)",
                    &[
                        Val::Int(id),
                        Val::Text(format!("n{serial}")),
                        Val::Blob(f32_blob(&q)),
                    ],
                );
                set_model_row(&mut model, id, &format!("n{serial}"), Some(q.clone()));
            }
        }
    }
}

/// The (rowid, distance) rows of query `i` in the result of a batch
/// query selecting `query_index, rowid, distance`.
fn batch_rows(rows: &[Vec<Val>], i: usize) -> Vec<(i64, f64)> {
    rows.iter()
        .filter(|r| r[0].int() == i as i64)
        .map(|r| (r[1].int(), r[2].real()))
        .collect()
}

/// Several query vectors in one pass (`queries` BLOB or JSON, rows carry
/// `query_index`), and the multi-threaded scan, equal single queries.
pub fn index_batch_and_threads(d: Driver) {
    let c = (d.open)(":memory:");
    let dim = 12;
    let mut rng = Rng::new(42);
    let mut model = Model::new();
    let mut serial = 0;
    setup_docs(&*c, &mut rng, 500, dim, &mut model, &mut serial);
    c.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=12, chunk_rows=64)");
    let qs: Vec<Vec<f32>> = (0..5).map(|_| rng.vec_f32(dim)).collect();
    let blob: Vec<u8> = qs.iter().flat_map(|q| f32_blob(q)).collect();
    let json = format!(
        "[{}]",
        qs.iter()
            .map(|q| format!(
                "[{}]",
                q.iter()
                    .map(|x| format!("{x:?}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    for arg in [Val::Blob(blob), Val::Text(json)] {
        let rows = c.rows(
            "SELECT query_index, rowid, distance FROM ann WHERE queries = ? AND k = 7",
            &[arg.clone()],
        );
        assert_eq!(rows.len(), 35);
        for (i, q) in qs.iter().enumerate() {
            let got = batch_rows(&rows, i);
            let q64: Vec<f64> = q.iter().map(|&x| f64::from(x)).collect();
            assert_topk(
                &got,
                &brute(Metric::Cosine, &q64, &reference(&model)),
                7,
                TOL,
                "batch",
            );
        }
        // LIMIT is applied by SQLite over the whole batch.
        let n = c.rows(
            "SELECT rowid FROM ann WHERE queries = ? AND k = 7 ORDER BY query_index, distance LIMIT 9",
            &[arg],
        );
        assert_eq!(n.len(), 9);
    }
    for threads in [0, 2, 3] {
        let q = &qs[threads % 5];
        let one = c.rows(
            "SELECT rowid, distance FROM ann WHERE query = ? AND k = 10",
            &[Val::Blob(f32_blob(q))],
        );
        let par = c.rows(
            "SELECT rowid, distance FROM ann WHERE query = ? AND k = 10 AND threads = ?",
            &[Val::Blob(f32_blob(q)), Val::Int(threads as i64)],
        );
        assert_eq!(one, par, "threads = {threads}");
    }
    assert!(c
        .err(
            "SELECT rowid FROM ann WHERE queries = X'0000' AND k = 1",
            &[]
        )
        .contains(
            "expected a BLOB of whole 12-dimension f32 vectors (48 bytes each), found 2 bytes"
        ));
    assert!(c
        .err(
            "SELECT rowid FROM ann WHERE queries = '[[1,2]]' AND k = 1",
            &[]
        )
        .contains("vector 0: expected 12 dimensions"));
    assert!(c
        .err("SELECT rowid FROM ann WHERE query = '[1,2,3,4,5,6,7,8,9,10,11,12]' AND k = 1 AND threads = -1", &[])
        .contains("threads for table \"ann\" must be an integer from 0"));
}

/// Rowid IN lists, ranges and distance bounds return k rows when k match.
pub fn index_filters_return_k_rows(d: Driver) {
    let c = (d.open)(":memory:");
    let dim = 6;
    let mut rng = Rng::new(8);
    let mut model = Model::new();
    let mut serial = 0;
    setup_docs(&*c, &mut rng, 400, dim, &mut model, &mut serial);
    c.ok("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=6, chunk_rows=32)");
    c.ok("DELETE FROM docs WHERE id % 6 = 0");
    model.retain(|id, _| id % 6 != 0);
    let q = rng.vec_f32(dim);
    let q64: Vec<f64> = q.iter().map(|&x| f64::from(x)).collect();
    type Keep = Box<dyn Fn(i64) -> bool>;
    let cases: Vec<(String, Keep)> = vec![
        (
            "rowid IN (SELECT id FROM docs WHERE id % 4 = 2)".into(),
            Box::new(|id| id % 4 == 2),
        ),
        (
            "rowid IN (2, 4, 8, 10, 14, 16, 20, 22, 26, 28)".into(),
            Box::new(|id| [2, 4, 8, 10, 14, 16, 20, 22, 26, 28].contains(&id)),
        ),
        (
            "rowid BETWEEN 100 AND 300".into(),
            Box::new(|id| (100..=300).contains(&id)),
        ),
        ("rowid > 700".into(), Box::new(|id| id > 700)),
    ];
    for (filter, keep) in &cases {
        let got = pairs(&c.rows(
            &format!("SELECT rowid, distance FROM ann WHERE query = ? AND k = 10 AND {filter}"),
            &[Val::Blob(f32_blob(&q))],
        ));
        let sub: Model = model
            .iter()
            .filter(|(id, _)| keep(**id))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let all = brute(Metric::Cosine, &q64, &reference(&sub));
        assert_topk(&got, &all, 10, TOL, filter);
    }
    let all = brute(Metric::Cosine, &q64, &reference(&model));
    let cut = all[40].1;
    let got = pairs(&c.rows(
        "SELECT rowid, distance FROM ann WHERE query = ? AND k = 10 AND distance > ?",
        &[Val::Blob(f32_blob(&q)), Val::Real(cut)],
    ));
    let above: Vec<(i64, f64)> = all.iter().filter(|x| x.1 > cut).cloned().collect();
    assert_topk(&got, &above, 10, TOL, "distance >");
}

/// Clustered rows: `n` vectors around `centers` centres.
fn clustered(rng: &mut Rng, n: usize, d: usize, centers: usize) -> Vec<Vec<f32>> {
    let cs: Vec<Vec<f32>> = (0..centers).map(|_| rng.vec_f32(d)).collect();
    (0..n)
        .map(|i| {
            let c = &cs[i % centers];
            c.iter().map(|x| x + 0.15 * rng.f32()).collect()
        })
        .collect()
}

fn recall(got: &[(i64, f64)], truth: &[(i64, f64)], k: usize) -> f64 {
    let t: std::collections::HashSet<i64> = truth.iter().take(k).map(|x| x.0).collect();
    got.iter().filter(|x| t.contains(&x.0)).count() as f64 / k as f64
}

/// IVF: trains at creation (or on 'rebuild' / once enough rows exist), new
/// and changed rows go to their list at once, deleted rows leave, nprobe =
/// every list is exact, filtered queries widen, read-only overlay.
pub fn index_ivf_search_and_maintenance(d: Driver) {
    let path = tmp_db("ivf");
    let dim = 16;
    let mut rng = Rng::new(77);
    let a = (d.open)(&path);
    a.ok("CREATE TABLE docs(id INTEGER PRIMARY KEY, name TEXT, vec BLOB)");
    let mut model = Model::new();
    let vecs = clustered(&mut rng, 3000, dim, 40);
    insert_named(&*a, "docs", &vecs, 1, "n", &mut model);
    for (quant, min_recall) in [("pq", 0.8), ("int8", 0.8), ("none", 0.8)] {
        let vt = format!("iv_{quant}");
        a.ok(&format!(
            "CREATE VIRTUAL TABLE {vt} USING pocketvec(base_table=docs, dim=16, index=ivf, lists=16, quantizer={quant}, train_min=1000)"
        ));
        let j: serde_json::Value =
            serde_json::from_str(a.one(&format!("SELECT pocketvec_info('{vt}')"), &[]).text())
                .unwrap();
        assert_eq!(j["trained"], true, "{j}");
        assert_eq!(j["lists"], 16);
        assert_eq!(j["quantizer"], quant);
        let mut total = 0.0;
        for t in 0..20 {
            let q = rng.vec_f32(dim);
            let q64: Vec<f64> = q.iter().map(|&x| f64::from(x)).collect();
            let all = brute(Metric::Cosine, &q64, &reference(&model));
            // Every list probed: exact.
            let got = pairs(&a.rows(
                &format!(
                    "SELECT rowid, distance FROM {vt} WHERE query = ? AND k = 10 AND nprobe = 16"
                ),
                &[Val::Blob(f32_blob(&q))],
            ));
            assert_topk(&got, &all, 10, TOL, &format!("{vt} nprobe=all {t}"));
            let got = pairs(&a.rows(
                &format!(
                    "SELECT rowid, distance FROM {vt} WHERE query = ? AND k = 10 AND nprobe = 4"
                ),
                &[Val::Blob(f32_blob(&q))],
            ));
            assert_eq!(got.len(), 10);
            // Distances are exact (re-ranked from the base rows).
            let truth: BTreeMap<i64, f64> = all.iter().cloned().collect();
            for (id, dist) in &got {
                assert!(
                    (truth[id] - dist).abs() < TOL * (1.0 + dist.abs()),
                    "{vt}: {id} {dist}"
                );
            }
            total += recall(&got, &all, 10);
        }
        assert!(total / 20.0 >= min_recall, "{vt}: recall {}", total / 20.0);
        a.ok(&format!("INSERT INTO {vt}({vt}) VALUES('integrity-check')"));
    }
    // New rows (from a plain connection) are found at once; deleted rows go.
    let b = (d.plain)(&path);
    let fresh = rng.vec_f32(dim);
    b.rows(
        "INSERT INTO docs VALUES (5000, 'fresh', ?)",
        &[Val::Blob(f32_blob(&fresh))],
    );
    model.insert(5000, ("fresh".into(), Some(fresh.clone())));
    for vt in ["iv_pq", "iv_int8", "iv_none"] {
        let got = pairs(&a.rows(
            &format!("SELECT rowid, distance FROM {vt} WHERE query = ? AND k = 1 AND nprobe = 1"),
            &[Val::Blob(f32_blob(&fresh))],
        ));
        assert_eq!(got[0].0, 5000, "{vt}");
        assert!(got[0].1.abs() < 1e-5);
    }
    b.ok("DELETE FROM docs WHERE id = 5000 OR id BETWEEN 1 AND 500");
    model.retain(|id, _| *id != 5000 && *id > 500);
    for vt in ["iv_pq", "iv_int8", "iv_none"] {
        let got = pairs(&a.rows(
            &format!("SELECT rowid, distance FROM {vt} WHERE query = ? AND k = 20 AND nprobe = 16"),
            &[Val::Blob(f32_blob(&fresh))],
        ));
        let q64: Vec<f64> = fresh.iter().map(|&x| f64::from(x)).collect();
        assert_topk(
            &got,
            &brute(Metric::Cosine, &q64, &reference(&model)),
            20,
            TOL,
            vt,
        );
        a.ok(&format!("INSERT INTO {vt}({vt}) VALUES('integrity-check')"));
        // Filtered: a narrow rowid range still gives k rows, all in range.
        let got = pairs(&a.rows(
            &format!("SELECT rowid, distance FROM {vt} WHERE query = ? AND k = 10 AND nprobe = 2 AND rowid BETWEEN 600 AND 700"),
            &[Val::Blob(f32_blob(&fresh))],
        ));
        assert_eq!(got.len(), 10, "{vt}");
        assert!(got.iter().all(|(id, _)| (600..=700).contains(id)));
        // A small IN list is answered exactly.
        let ids = "(601, 602, 603, 650, 651, 2999, 3000)";
        let got = pairs(&a.rows(
            &format!(
                "SELECT rowid, distance FROM {vt} WHERE query = ? AND k = 3 AND rowid IN {ids}"
            ),
            &[Val::Blob(f32_blob(&fresh))],
        ));
        let sub: Model = model
            .iter()
            .filter(|(id, _)| [601, 602, 603, 650, 651, 2999, 3000].contains(*id))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let q64: Vec<f64> = fresh.iter().map(|&x| f64::from(x)).collect();
        assert_topk(
            &got,
            &brute(Metric::Cosine, &q64, &reference(&sub)),
            3,
            TOL,
            "ivf IN",
        );
    }
    // A bulk insert larger than one apply batch (4096 rowids) into trained
    // lists, then an update of half of it: lists stay exact at nprobe = all.
    let vecs = clustered(&mut rng, 5000, dim, 40);
    insert_named(&*b, "docs", &vecs, 10_000, "b", &mut model);
    b.ok("UPDATE docs SET vec = (SELECT vec FROM docs AS o WHERE o.id = docs.id - 9000) WHERE id BETWEEN 10000 AND 12499");
    for id in 10_000..12_500i64 {
        // Rows 3001..3499 do not exist: their vectors become NULL.
        let v = model.get(&(id - 9000)).and_then(|r| r.1.clone());
        model.get_mut(&id).unwrap().1 = v;
    }
    for vt in ["iv_pq", "iv_int8", "iv_none"] {
        a.ok(&format!("INSERT INTO {vt}({vt}) VALUES('integrity-check')"));
        let q = rng.vec_f32(dim);
        let got = pairs(&a.rows(
            &format!("SELECT rowid, distance FROM {vt} WHERE query = ? AND k = 10 AND nprobe = 16"),
            &[Val::Blob(f32_blob(&q))],
        ));
        let q64: Vec<f64> = q.iter().map(|&x| f64::from(x)).collect();
        assert_topk(
            &got,
            &brute(Metric::Cosine, &q64, &reference(&model)),
            10,
            TOL,
            "after bulk",
        );
    }
    // The REPLACE trap with the re-rank rows in RAM: a row deleted through a
    // UNIQUE conflict (no trigger) is still in the lists and in the RAM
    // copy, and must not come back.
    a.ok("CREATE TABLE u(id INTEGER PRIMARY KEY, name TEXT UNIQUE, vec BLOB)");
    let uv = clustered(&mut rng, 400, dim, 8);
    a.ok("BEGIN");
    for (i, v) in uv.iter().enumerate() {
        a.rows(
            "INSERT INTO u VALUES (?, ?, ?)",
            &[
                Val::Int(i as i64 + 1),
                Val::Text(format!("u{}", i + 1)),
                Val::Blob(f32_blob(v)),
            ],
        );
    }
    a.ok("COMMIT");
    a.ok("CREATE VIRTUAL TABLE iu USING pocketvec(base_table=u, dim=16, index=ivf, lists=4, quantizer=int8, train_min=300, nprobe=2)");
    let target = f32_blob(&uv[6]);
    let first = |c: &dyn Conn| -> i64 {
        c.rows(
            "SELECT rowid FROM iu WHERE query = ? AND k = 1",
            &[Val::Blob(target.clone())],
        )[0][0]
            .int()
    };
    for _ in 0..3 {
        assert_eq!(first(&*a), 7);
    }
    let info: serde_json::Value =
        serde_json::from_str(a.one("SELECT pocketvec_info('iu')", &[]).text()).unwrap();
    assert!(info["cache_bytes"].as_u64().unwrap() >= 400 * 64, "{info}");
    a.rows(
        "REPLACE INTO u VALUES (9000, 'u7', ?)",
        &[Val::Blob(f32_blob(&uv[100]))],
    );
    for _ in 0..3 {
        let got = first(&*a);
        assert_ne!(got, 7, "a row deleted by REPLACE came back");
    }
    a.ok("INSERT INTO iu(iu) VALUES('integrity-check')");
    // Below train_min the table is exact (flat) until enough rows exist.
    a.ok("CREATE VIRTUAL TABLE iv_late USING pocketvec(base_table=docs, dim=16, index=ivf, lists=8, train_min=100000)");
    let j: serde_json::Value =
        serde_json::from_str(a.one("SELECT pocketvec_info('iv_late')", &[]).text()).unwrap();
    assert_eq!(j["trained"], false);
    assert_eq!(j["train_at_rows"], 100000);
    let q = rng.vec_f32(dim);
    check_knn(
        &*a,
        "iv_late",
        Metric::Cosine,
        &q,
        10,
        &model,
        "untrained ivf",
    );
    // Pending rows in a read-only open are found too.
    let fresh2 = rng.vec_f32(dim);
    b.rows(
        "INSERT INTO docs VALUES (6000, 'fresh2', ?)",
        &[Val::Blob(f32_blob(&fresh2))],
    );
    model.insert(6000, ("fresh2".into(), Some(fresh2.clone())));
    drop(a);
    let ro = (d.open)(&format!("file:{path}?mode=ro"));
    let got = pairs(&ro.rows(
        "SELECT rowid, distance FROM iv_pq WHERE query = ? AND k = 1 AND nprobe = 2",
        &[Val::Blob(f32_blob(&fresh2))],
    ));
    assert_eq!(got[0].0, 6000);
    check_knn(
        &*ro,
        "iv_late",
        Metric::Cosine,
        &fresh2,
        5,
        &model,
        "ro untrained",
    );
}

/// The REPLACE check against the base table is skipped while the base
/// table has no UNIQUE index (a REPLACE on the INTEGER PRIMARY KEY fires the
/// insert trigger), and comes back when a connection without pocketvec
/// creates one; leftovers of a UNIQUE index created, used by a REPLACE and
/// dropped between two queries are swept. Flat and IVF (RAM re-rank) tables.
pub fn index_replace_check_follows_schema(d: Driver) {
    let path = tmp_db("replace_schema");
    let a = (d.open)(&path);
    let b = (d.plain)(&path);
    let dim = 16;
    let mut rng = Rng::new(99);
    let mut model = Model::new();
    a.ok("CREATE TABLE p(id INTEGER PRIMARY KEY, name TEXT, vec BLOB)");
    let pv = clustered(&mut rng, 400, dim, 8);
    insert_named(&*a, "p", &pv, 1, "p", &mut model);
    a.ok("CREATE VIRTUAL TABLE pf USING pocketvec(base_table=p, dim=16)");
    a.ok("CREATE VIRTUAL TABLE pi USING pocketvec(base_table=p, dim=16, index=ivf, lists=4, quantizer=int8, train_min=300, nprobe=3)");
    let info = |vt: &str| -> serde_json::Value {
        serde_json::from_str(a.one(&format!("SELECT pocketvec_info('{vt}')"), &[]).text()).unwrap()
    };
    let first = |vt: &str, v: &[f32]| -> i64 {
        a.rows(
            &format!("SELECT rowid FROM {vt} WHERE query = ? AND k = 1"),
            &[Val::Blob(f32_blob(v))],
        )[0][0]
            .int()
    };
    for vt in ["pf", "pi"] {
        for _ in 0..3 {
            assert_eq!(first(vt, &pv[6]), 7, "{vt}");
        }
        // Exact tables always check their results; trained IVF tables skip
        // the check while the base table has no UNIQUE index.
        assert_eq!(
            info(vt)["replace_check"],
            vt == "pf",
            "{vt}: no UNIQUE index"
        );
        assert_eq!(info(vt)["trained"], vt == "pi", "{vt}");
    }
    // A REPLACE on the key itself goes through the insert trigger.
    b.rows(
        "REPLACE INTO p VALUES (7, 'p7', ?)",
        &[Val::Blob(f32_blob(&pv[200]))],
    );
    set_model_row(&mut model, 7, "p7", Some(pv[200].clone()));
    for vt in ["pf", "pi"] {
        assert_ne!(first(vt, &pv[6]), 7, "{vt}: row 7 has a new vector");
        assert_eq!(info(vt)["replace_check"], vt == "pf", "{vt}");
    }
    let q = rng.vec_f32(dim);
    check_knn(
        &*a,
        "pf",
        Metric::Cosine,
        &q,
        10,
        &model,
        "after key REPLACE",
    );
    // A UNIQUE index made by a connection without pocketvec, then a REPLACE
    // through it: row 8 is deleted without a trigger and must not come back.
    b.ok("CREATE UNIQUE INDEX p_name ON p(name)");
    for vt in ["pf", "pi"] {
        // This connection sees the new schema before the REPLACE.
        assert_eq!(first(vt, &pv[7]), 8, "{vt}");
    }
    b.rows(
        "REPLACE INTO p VALUES (9000, 'p8', ?)",
        &[Val::Blob(f32_blob(&pv[300]))],
    );
    model.remove(&8);
    set_model_row(&mut model, 9000, "p8", Some(pv[300].clone()));
    for vt in ["pf", "pi"] {
        for _ in 0..3 {
            assert_ne!(
                first(vt, &pv[7]),
                8,
                "{vt}: a row deleted by REPLACE came back"
            );
        }
        assert_eq!(info(vt)["replace_check"], true, "{vt}: UNIQUE index");
    }
    let q = rng.vec_f32(dim);
    check_knn(
        &*a,
        "pf",
        Metric::Cosine,
        &q,
        10,
        &model,
        "after UNIQUE REPLACE",
    );
    // Leftovers of a UNIQUE index that is gone again: created, used and
    // dropped between two queries of this connection.
    b.ok("DROP INDEX p_name");
    b.ok("CREATE UNIQUE INDEX p_name2 ON p(name)");
    b.rows(
        "REPLACE INTO p VALUES (9001, 'p9', ?)",
        &[Val::Blob(f32_blob(&pv[301]))],
    );
    b.ok("DROP INDEX p_name2");
    model.remove(&9);
    set_model_row(&mut model, 9001, "p9", Some(pv[301].clone()));
    for vt in ["pf", "pi"] {
        for _ in 0..3 {
            assert_ne!(
                first(vt, &pv[8]),
                9,
                "{vt}: a leftover of a dropped UNIQUE index came back"
            );
        }
        assert_eq!(
            info(vt)["replace_check"],
            vt == "pf",
            "{vt}: swept (IVF), no UNIQUE index"
        );
        a.ok(&format!("INSERT INTO {vt}({vt}) VALUES('integrity-check')"));
    }
    let q = rng.vec_f32(dim);
    check_knn(&*a, "pf", Metric::Cosine, &q, 10, &model, "after sweep");
    // Row 8 went while the check was on: the query logged it, so it is out
    // of the stored data too.
    let cnt = a
        .one("SELECT count(*) FROM pf_map WHERE id IN (8, 9)", &[])
        .int();
    assert_eq!(cnt, 0);
    // The sweep above was recorded by the write that removed its leftovers:
    // a new connection at the same schema version skips it, and still
    // answers exactly.
    let sweeps = |c: &dyn Conn| -> i64 {
        let j: serde_json::Value =
            serde_json::from_str(c.one("SELECT pocketvec_info('pi')", &[]).text()).unwrap();
        assert_eq!(j["replace_check"], false);
        j["sweeps"].as_i64().unwrap()
    };
    assert!(sweeps(&*a) >= 1, "the first connection swept");
    let c = (d.open)(&path);
    assert_ne!(first_on(&*c, "pi", &pv[8]), 9);
    assert_eq!(sweeps(&*c), 0, "recorded clean at this schema version");
    // Another schema change: the next new connection sweeps again (nothing
    // to remove, and nothing written by a read-only query).
    b.ok("CREATE TABLE unrelated(x)");
    let e = (d.open)(&path);
    assert_ne!(first_on(&*e, "pi", &pv[8]), 9);
    assert_eq!(sweeps(&*e), 1, "a new schema version is swept");
    // A write through that connection records it; the next one skips.
    e.rows(
        "INSERT INTO p VALUES (9500, 'p9500', ?)",
        &[Val::Blob(f32_blob(&pv[5]))],
    );
    assert_ne!(first_on(&*e, "pi", &pv[8]), 9);
    let f = (d.open)(&path);
    assert_ne!(first_on(&*f, "pi", &pv[8]), 9);
    assert_eq!(sweeps(&*f), 0, "recorded by the write");
}

/// The nearest row of `vt` to `v` on `c`.
fn first_on(c: &dyn Conn, vt: &str, v: &[f32]) -> i64 {
    c.rows(
        &format!("SELECT rowid FROM {vt} WHERE query = ? AND k = 1"),
        &[Val::Blob(f32_blob(v))],
    )[0][0]
        .int()
}

/// The compact cache of f32 tables (unit vectors in f16 + error bounds,
/// candidates re-scored from the base rows) answers exactly like brute
/// force on hard data: clusters, 600 exact duplicates (queries next to
/// them have more candidates than a screen may re-score, and fall back to
/// the stored f32 rows), zero rows, rows scaled by 0.01 and 4, every
/// metric, k from 1 to 300, rowid and distance filters, batches, threads,
/// and a REPLACE through a UNIQUE conflict behind the triggers' back.
pub fn index_compact_cache_is_exact(d: Driver) {
    let path = tmp_db("compact");
    let c = (d.open)(&path);
    let dim = 48;
    let mut rng = Rng::new(77);
    let mut model = Model::new();
    c.ok("CREATE TABLE docs(id INTEGER PRIMARY KEY, name TEXT UNIQUE, vec BLOB)");
    let mut vecs = clustered(&mut rng, 1500, dim, 12);
    let dup = vecs[0].clone();
    vecs.extend(std::iter::repeat_n(dup.clone(), 600));
    vecs.extend(std::iter::repeat_n(vec![0f32; dim], 5));
    for (i, v) in vecs.iter_mut().enumerate().take(1500) {
        let s = [1.0f32, 0.01, 4.0][i % 3];
        v.iter_mut().for_each(|x| *x *= s);
    }
    insert_named(&*c, "docs", &vecs, 1, "r", &mut model);
    let tables = [
        ("cc", Metric::Cosine, ""),
        ("cl", Metric::L2, ", metric=l2"),
        ("cd", Metric::Dot, ", metric=dot"),
        ("cf", Metric::Cosine, ", cache=full"),
    ];
    for (vt, _, opt) in tables {
        c.ok(&format!(
            "CREATE VIRTUAL TABLE {vt} USING pocketvec(base_table=docs, dim={dim}, chunk_rows=256{opt})"
        ));
    }
    let q_near_dup: Vec<f32> = dup.iter().map(|x| x + 1e-4).collect();
    let mut queries: Vec<Vec<f32>> = (0..6)
        .map(|_| {
            let i = rng.below(1500) as usize;
            vecs[i].iter().map(|x| x + 0.05 * rng.f32()).collect()
        })
        .collect();
    queries.push(q_near_dup);
    let check = |ctx: &str, model: &Model| {
        for (vt, m, _) in tables {
            for (qi, q) in queries.iter().enumerate() {
                let q64: Vec<f64> = q.iter().map(|&x| f64::from(x)).collect();
                let all = brute(m, &q64, &reference(model));
                for k in [1usize, 10, 300] {
                    // Twice: the first query of a table streams, the
                    // second fills the cache, the third uses it.
                    for _ in 0..if qi == 0 && k == 1 { 3 } else { 1 } {
                        check_knn(&*c, vt, m, q, k, model, &format!("{ctx} q{qi} k={k}"));
                    }
                }
                let got = pairs(&c.rows(
                    &format!("SELECT rowid, distance FROM {vt} WHERE query = ? AND k = 10 AND rowid BETWEEN 200 AND 1700"),
                    &[Val::Blob(f32_blob(q))],
                ));
                let sub: Vec<(i64, f64)> = all
                    .iter()
                    .filter(|x| (200..=1700).contains(&x.0))
                    .cloned()
                    .collect();
                assert_topk(&got, &sub, 10, TOL, &format!("{ctx} {vt} q{qi} range"));
                // A cut between two distances (away from rounding).
                let j = (0..all.len() - 1)
                    .skip(20)
                    .find(|&j| all[j + 1].1 - all[j].1 > 1e-4 * (1.0 + all[j].1.abs()))
                    .unwrap();
                let cut = (all[j].1 + all[j + 1].1) / 2.0;
                let got = pairs(&c.rows(
                    &format!("SELECT rowid, distance FROM {vt} WHERE query = ? AND k = 50 AND distance > ?"),
                    &[Val::Blob(f32_blob(q)), Val::Real(cut)],
                ));
                let above: Vec<(i64, f64)> = all.iter().filter(|x| x.1 > cut).cloned().collect();
                assert_topk(
                    &got,
                    &above,
                    50,
                    TOL,
                    &format!("{ctx} {vt} q{qi} distance >"),
                );
                // No k: every row under the cut, nearest first.
                let got = pairs(&c.rows(
                    &format!("SELECT rowid, distance FROM {vt} WHERE query = ? AND distance < ?"),
                    &[Val::Blob(f32_blob(q)), Val::Real(cut)],
                ));
                let below: Vec<(i64, f64)> = all.iter().filter(|x| x.1 < cut).cloned().collect();
                let what = format!("{ctx} {vt} q{qi} distance < (no k)");
                assert_eq!(got.len(), below.len(), "{what}");
                assert_topk(&got, &below, below.len(), TOL, &what);
            }
            // A batch and two threads answer like single queries.
            let blob: Vec<u8> = queries.iter().flat_map(|q| f32_blob(q)).collect();
            let rows = c.rows(
                &format!("SELECT query_index, rowid, distance FROM {vt} WHERE queries = ? AND k = 12 AND threads = 2"),
                &[Val::Blob(blob)],
            );
            for (i, q) in queries.iter().enumerate() {
                let got = batch_rows(&rows, i);
                let q64: Vec<f64> = q.iter().map(|&x| f64::from(x)).collect();
                assert_topk(
                    &got,
                    &brute(m, &q64, &reference(model)),
                    12,
                    TOL,
                    &format!("{ctx} {vt} batch {i}"),
                );
            }
        }
    };
    check("initial", &model);
    let info = |vt: &str| -> (String, f64, f64) {
        let j = c.rows(&format!("SELECT pocketvec_info('{vt}')"), &[])[0][0]
            .text()
            .to_string();
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        (
            v["cache_form"].as_str().unwrap().to_string(),
            v["cache_bytes"].as_f64().unwrap(),
            v["vector_bytes"].as_f64().unwrap(),
        )
    };
    let (form, bytes, vb) = info("cc");
    assert_eq!(form, "compact");
    assert!(
        bytes > 0.5 * vb && bytes < 0.62 * vb,
        "compact cache {bytes} for {vb} vector bytes"
    );
    let (form, bytes, vb) = info("cf");
    assert_eq!(form, "full");
    // Rowids and norms beside the vectors: 12 bytes a row on 192 here.
    assert!(
        bytes >= vb && bytes < 1.1 * vb,
        "full cache {bytes} for {vb} vector bytes"
    );
    // Writes through this connection patch the compact cache in place.
    c.ok("BEGIN");
    for id in [3i64, 700, 1501, 1805] {
        let v = rng.vec_f32(dim);
        c.rows(
            "UPDATE docs SET vec = ? WHERE id = ?",
            &[Val::Blob(f32_blob(&v)), Val::Int(id)],
        );
        model.get_mut(&id).unwrap().1 = Some(v);
    }
    c.ok("DELETE FROM docs WHERE id IN (10, 11, 1600)");
    for id in [10, 11, 1600] {
        model.remove(&id);
    }
    c.ok("COMMIT");
    check("after writes", &model);
    // REPLACE through the UNIQUE name deletes row 5 without a trigger: the
    // compact screen meets row 5 (the nearest to its old vector, which the
    // queries below look for) and must not let its bound prune the rows
    // that take its place: it finds row 5 gone when it re-scores it, and
    // searches again without it.
    let old5 = model[&5].1.clone().unwrap();
    let far = rng.vec_f32(dim);
    let plain = (d.plain)(&path);
    plain.rows(
        "REPLACE INTO docs(id, name, vec) VALUES (5000, 'r5', ?)",
        &[Val::Blob(f32_blob(&far))],
    );
    model.remove(&5);
    set_model_row(&mut model, 5000, "r5", Some(far));
    // Read-only first: the log cannot be applied, the cache stays valid and
    // the screen meets row 5; then writable (the log is applied).
    c.ok("PRAGMA query_only = 1");
    for k in [1, 3, 10] {
        for (vt, m, _) in tables {
            check_knn(&*c, vt, m, &old5, k, &model, "after REPLACE, read-only");
        }
    }
    check("after REPLACE, read-only", &model);
    c.ok("PRAGMA query_only = 0");
    check("after REPLACE", &model);
}
