//! Recall on the real embeddings (`shared/data/debian`: 30k × 384 f16,
//! L2-normalised, with held-out query vectors). Skipped, visibly, when the
//! data is absent. Heavy in debug builds: run with
//! `cargo test -p pocketvec-ivf --release`.
mod common;

use common::*;
use ivf::{IvfModel, IvfParams, MemIndex, Metric, QuantizerKind, SearchParams};
use kernels::f16;
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    std::env::var_os("POCKETVEC_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/debian")
        })
}

fn load_f16(path: &std::path::Path, dim: usize) -> Option<Vec<f32>> {
    let b = std::fs::read(path).ok()?;
    assert_eq!(b.len() % (2 * dim), 0, "{path:?} is not n × {dim} f16");
    let h: Vec<f16> = b
        .chunks_exact(2)
        .map(|c| f16::from_le_bytes([c[0], c[1]]))
        .collect();
    let mut out = vec![0f32; h.len()];
    kernels::convert::f16_to_f32(&h, &mut out).unwrap();
    Some(out)
}

#[test]
#[cfg_attr(debug_assertions, ignore = "slow in debug; run with --release")]
fn recall_at_10_on_debian_embeddings() {
    let dim = 384;
    let dir = data_dir();
    let (Some(docs), Some(queries)) = (
        load_f16(&dir.join("docs.f16"), dim),
        load_f16(&dir.join("queries.f16"), dim),
    ) else {
        eprintln!("SKIPPED: real data not found in {dir:?} (set POCKETVEC_DATA)");
        return;
    };
    let n = docs.len() / dim;
    let nq = 300;
    // Every 100th query vector: held-out (not in docs), spread over the set.
    let qs: Vec<&[f32]> = queries.chunks_exact(dim).step_by(100).take(nq).collect();
    let truths: Vec<_> = qs
        .iter()
        .map(|q| brute_force(Metric::Cosine, &docs, dim, q, 10))
        .collect();
    let ids: Vec<i64> = (0..n as i64).collect();
    for kind in [QuantizerKind::Pq, QuantizerKind::Int8] {
        let p = IvfParams {
            quantizer: kind,
            ..IvfParams::new(dim, Metric::Cosine, n)
        };
        let m = IvfModel::train(&p, &docs, 2).unwrap();
        let mut idx = MemIndex::new(m, 1024);
        idx.add_batch(&ids, &docs, 2).unwrap();
        let nprobe = idx.model().default_nprobe();
        let mut total = 0.0;
        for (q, t) in qs.iter().zip(&truths) {
            let got = idx
                .search(
                    q,
                    &SearchParams::new(10).nprobe(nprobe),
                    exact_cb(Metric::Cosine, &docs, dim, q),
                )
                .unwrap();
            total += recall(&got, t);
        }
        let r = total / qs.len() as f64;
        eprintln!(
            "{kind:?}: recall@10 = {r:.4} at nprobe {nprobe} (default) of {} lists",
            idx.model().lists()
        );
        assert!(r >= 0.95, "{kind:?}: recall@10 {r} at the default nprobe");
    }
}
