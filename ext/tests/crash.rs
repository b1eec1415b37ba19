//! Crash safety: a child process runs a large write transaction (base rows
//! written, the index log applied into the shadow tables, IVF lists
//! rewritten) and is killed with SIGKILL in the middle of it. After reopening,
//! `PRAGMA integrity_check` is ok, the index's own 'integrity-check' passes,
//! and queries equal brute force over the base table. Rollback-journal and
//! WAL mode, several kill times.

mod common;

use std::time::{Duration, Instant};

use common::{assert_topk, brute, ext_path, f32_blob, Metric, Rng};
use rusqlite::Connection;

const DIM: usize = 32;
const CHILD_ENV: &str = "POCKETVEC_CRASH_CHILD";

fn open(path: &str) -> Connection {
    let c = Connection::open(path).expect("open");
    // SAFETY: loading our own extension, built by this workspace.
    unsafe {
        let _guard = rusqlite::LoadExtensionGuard::new(&c).expect("enable load_extension");
        c.load_extension(ext_path(), None::<&str>)
            .expect("load libpocketvec0");
    }
    c
}

fn vecs(rng: &mut Rng, n: usize) -> Vec<Vec<f32>> {
    (0..n).map(|_| rng.vec_f32(DIM)).collect()
}

/// The child: one transaction that never ends, until it is killed.
fn child(path: &str) {
    let c = open(path);
    let mut rng = Rng::new(std::process::id() as u64);
    c.execute_batch("BEGIN").unwrap();
    let marker = format!("{path}.started");
    let mut next = 100_000i64;
    loop {
        {
            let mut ins = c
                .prepare("INSERT INTO docs(id, vec) VALUES (?, ?)")
                .unwrap();
            for v in vecs(&mut rng, 400) {
                ins.execute(rusqlite::params![next, f32_blob(&v)]).unwrap();
                next += 1;
            }
        }
        c.execute(
            "UPDATE docs SET vec = ? WHERE id IN (SELECT id FROM docs ORDER BY random() LIMIT 150)",
            [f32_blob(&rng.vec_f32(DIM))],
        )
        .unwrap();
        c.execute(
            "DELETE FROM docs WHERE id IN (SELECT id FROM docs ORDER BY random() LIMIT 100)",
            [],
        )
        .unwrap();
        // Queries apply the log inside this transaction: shadow-table writes.
        let q = f32_blob(&rng.vec_f32(DIM));
        for t in ["ann", "iv"] {
            let n: i64 = c
                .query_row(
                    &format!("SELECT count(*) FROM {t} WHERE query = ? AND k = 5"),
                    [&q],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 5);
        }
        let _ = std::fs::write(&marker, b"1");
    }
}

fn base_rows(c: &Connection) -> Vec<(i64, Vec<f64>)> {
    let mut st = c
        .prepare("SELECT id, vec FROM docs WHERE vec IS NOT NULL")
        .unwrap();
    let rows = st
        .query_map([], |r| {
            let id: i64 = r.get(0)?;
            let b: Vec<u8> = r.get(1)?;
            Ok((
                id,
                b.chunks_exact(4)
                    .map(|x| f64::from(f32::from_le_bytes([x[0], x[1], x[2], x[3]])))
                    .collect(),
            ))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn verify(path: &str, ctx: &str) {
    let c = open(path);
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "{ctx}");
    c.execute_batch("INSERT INTO ann(ann) VALUES('integrity-check')")
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    c.execute_batch("INSERT INTO iv(iv) VALUES('integrity-check')")
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let rows = base_rows(&c);
    let mut rng = Rng::new(5);
    for i in 0..5 {
        let q = rng.vec_f32(DIM);
        let q64: Vec<f64> = q.iter().map(|&x| f64::from(x)).collect();
        let all = brute(Metric::Cosine, &q64, &rows);
        for (t, extra) in [("ann", ""), ("iv", " AND nprobe = 8")] {
            let mut st = c
                .prepare(&format!(
                    "SELECT rowid, distance FROM {t} WHERE query = ? AND k = 10{extra}"
                ))
                .unwrap();
            let got: Vec<(i64, f64)> = st
                .query_map([f32_blob(&q)], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_topk(&got, &all, 10, 2e-5, &format!("{ctx} {t} query {i}"));
        }
    }
}

#[test]
fn kill_during_large_write_transaction() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        child(&path);
        return;
    }
    let dir = std::env::temp_dir().join(format!("pocketvec-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut run = 0;
    for journal in ["delete", "wal"] {
        for delay_ms in [0u64, 250, 700] {
            run += 1;
            let path = dir
                .join(format!("crash{run}.db"))
                .to_string_lossy()
                .into_owned();
            {
                let c = open(&path);
                c.execute_batch(&format!("PRAGMA journal_mode = {journal}"))
                    .unwrap();
                c.execute_batch("CREATE TABLE docs(id INTEGER PRIMARY KEY, vec BLOB)")
                    .unwrap();
                let mut rng = Rng::new(run);
                c.execute_batch("BEGIN").unwrap();
                for (i, v) in vecs(&mut rng, 3000).into_iter().enumerate() {
                    c.execute(
                        "INSERT INTO docs(id, vec) VALUES (?, ?)",
                        rusqlite::params![i as i64 + 1, f32_blob(&v)],
                    )
                    .unwrap();
                }
                c.execute_batch("COMMIT").unwrap();
                c.execute_batch(
                    "CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=32, chunk_rows=128);
                     CREATE VIRTUAL TABLE iv USING pocketvec(base_table=docs, dim=32, index=ivf, lists=8, train_min=1000);",
                )
                .unwrap();
            }
            let marker = format!("{path}.started");
            let mut ch = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "kill_during_large_write_transaction",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, &path)
                .env("POCKETVEC_EXT", ext_path())
                .spawn()
                .expect("spawn child");
            let t0 = Instant::now();
            while !std::path::Path::new(&marker).exists() {
                assert!(
                    t0.elapsed() < Duration::from_secs(60),
                    "child never started writing"
                );
                if let Some(s) = ch.try_wait().unwrap() {
                    panic!("child exited early: {s}");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(delay_ms));
            ch.kill().expect("SIGKILL");
            ch.wait().unwrap();
            verify(&path, &format!("{journal} after {delay_ms} ms"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
