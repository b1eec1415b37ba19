//! Integration tests of the IVF algorithms against brute-force references.
mod common;

use common::*;
use ivf::kmeans::{kmeans, Assign, KMeansConfig};
use ivf::{
    IvfModel, IvfParams, ListChunk, ListChunkRef, MemIndex, Metric, QuantizerKind, SearchParams,
};
use kernels::{Isa, Kernels};

const METRICS: [Metric; 3] = [Metric::Cosine, Metric::L2, Metric::Dot];
const KINDS: [QuantizerKind; 3] = [QuantizerKind::None, QuantizerKind::Int8, QuantizerKind::Pq];

fn params(dim: usize, metric: Metric, lists: usize, q: QuantizerKind) -> IvfParams {
    let mut p = IvfParams::new(dim, metric, 10_000);
    p.lists = lists;
    p.quantizer = q;
    p
}

#[test]
fn kmeans_recovers_separated_clusters() {
    let (dim, clusters) = (16, 12);
    let (data, labels) = clustered(6000, dim, clusters, 0.05, 7);
    for (assign, spherical) in [(Assign::L2, false), (Assign::InnerProduct, true)] {
        let mut data = data.clone();
        if spherical {
            for x in data.chunks_exact_mut(dim) {
                Kernels::detect().normalize_f32(x);
            }
        }
        let cfg = KMeansConfig {
            k: clusters,
            iters: 20,
            seed: 42,
            assign,
            spherical,
            threads: 2,
            init_trials: 0,
        };
        let km = kmeans(Kernels::detect(), &data, dim, &cfg).unwrap();
        // Every point's nearest centroid (f64 reference) must induce the
        // true partition: one centroid per true cluster.
        let mut map = vec![usize::MAX; clusters];
        let mut used = vec![false; clusters];
        for (x, &t) in data.chunks_exact(dim).zip(&labels) {
            let best = (0..clusters)
                .min_by(|&a, &b| {
                    let da = dist64(Metric::L2, x, &km.centroids[a * dim..(a + 1) * dim]);
                    let db = dist64(Metric::L2, x, &km.centroids[b * dim..(b + 1) * dim]);
                    da.total_cmp(&db)
                })
                .unwrap();
            if map[t] == usize::MAX {
                assert!(
                    !used[best],
                    "{assign:?}: centroid {best} covers two true clusters"
                );
                used[best] = true;
                map[t] = best;
            }
            assert_eq!(
                map[t], best,
                "{assign:?}: true cluster {t} split across centroids"
            );
        }
        if spherical {
            for c in km.centroids.chunks_exact(dim) {
                let n: f32 = c.iter().map(|v| v * v).sum::<f32>().sqrt();
                assert!((n - 1.0).abs() < 1e-4, "spherical centroid norm {n}");
            }
        }
    }
}

#[test]
fn kmeans_is_deterministic_and_thread_count_independent() {
    let dim = 40;
    let (data, _) = clustered(3000, dim, 30, 0.3, 9);
    let cfg = |threads| KMeansConfig {
        k: 50,
        iters: 6,
        seed: 5,
        assign: Assign::L2,
        spherical: false,
        threads,
        init_trials: 0,
    };
    let a = kmeans(Kernels::detect(), &data, dim, &cfg(1)).unwrap();
    let b = kmeans(Kernels::detect(), &data, dim, &cfg(2)).unwrap();
    assert_eq!(a.centroids, b.centroids);
}

#[test]
fn kmeans_repairs_empty_clusters_and_rejects_bad_input() {
    // 4 distinct points, duplicated: k = 6 forces empty clusters.
    let dim = 3;
    let base = [
        [0.0, 0.0, 1.0],
        [5.0, 0.0, 0.0],
        [0.0, 5.0, 0.0],
        [3.0, 3.0, 3.0],
    ];
    let mut data = Vec::new();
    for i in 0..200 {
        data.extend_from_slice(&base[i % 4]);
    }
    let cfg = KMeansConfig {
        k: 6,
        iters: 10,
        seed: 1,
        assign: Assign::L2,
        spherical: false,
        threads: 1,
        init_trials: 0,
    };
    let km = kmeans(Kernels::detect(), &data, dim, &cfg).unwrap();
    assert!(km.centroids.iter().all(|v| v.is_finite()));
    assert!(km.objective < 1e-4, "objective {}", km.objective);
    let few = &data[..5 * dim];
    assert!(matches!(
        kmeans(Kernels::detect(), few, dim, &cfg),
        Err(ivf::Error::TooFewTrainingVectors {
            needed: 6,
            found: 5
        })
    ));
    let mut bad = data.clone();
    bad[7] = f32::NAN;
    assert!(matches!(
        kmeans(Kernels::detect(), &bad, dim, &cfg),
        Err(ivf::Error::NonFinite { .. })
    ));
}

fn small_model(metric: Metric, q: QuantizerKind) -> (IvfModel, Vec<f32>) {
    let dim = 32;
    let (data, _) = clustered(2000, dim, 20, 0.4, 11);
    let mut p = params(dim, metric, 16, q);
    p.pq_m = 8;
    (IvfModel::train(&p, &data, 2).unwrap(), data)
}

#[test]
fn model_round_trips_through_bytes() {
    for metric in METRICS {
        for kind in KINDS {
            let (m, data) = small_model(metric, kind);
            let b = m.to_bytes();
            let m2 = IvfModel::from_bytes(&b).unwrap();
            assert_eq!(m2.to_bytes(), b);
            assert_eq!(m2.params(), m.params());
            let x = &data[5 * 32..6 * 32];
            assert_eq!(m.encode(x).unwrap(), m2.encode(x).unwrap());
            assert_eq!(m.probe(x, 4).unwrap(), m2.probe(x, 4).unwrap());
        }
    }
}

#[test]
fn corrupted_or_truncated_model_bytes_are_errors() {
    let (m, _) = small_model(Metric::L2, QuantizerKind::Pq);
    let b = m.to_bytes();
    // Every truncation.
    for len in 0..b.len() {
        assert!(
            IvfModel::from_bytes(&b[..len]).is_err(),
            "truncated to {len}"
        );
    }
    // Extension.
    let mut longer = b.clone();
    longer.push(0);
    assert!(IvfModel::from_bytes(&longer).is_err());
    // A flipped bit anywhere (header fields, floats, checksum).
    for pos in (0..b.len())
        .step_by(7)
        .chain([4, 6, 7, 8, 12, 16, 20, b.len() - 1])
    {
        let mut c = b.clone();
        c[pos] ^= 0x10;
        assert!(IvfModel::from_bytes(&c).is_err(), "flip at {pos}");
    }
    // Hostile header with huge sizes and a matching checksum: Err, no
    // allocation attempt, no panic.
    let mut h = b[..64].to_vec();
    h[8..12].copy_from_slice(&u32::MAX.to_le_bytes()); // dim
    h[12..16].copy_from_slice(&u32::MAX.to_le_bytes()); // lists
    let crc = crc32(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    assert!(IvfModel::from_bytes(&h).is_err());
    // Wrong version is reported as such.
    let mut v = b.clone();
    v[4] = 9;
    assert!(matches!(
        IvfModel::from_bytes(&v),
        Err(ivf::Error::UnsupportedVersion { found: 9, .. })
    ));
}

fn crc32(b: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE) reference, independent of the crate's.
    let mut c = 0xffff_ffffu32;
    for &x in b {
        c ^= x as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn chunks_append_remove_round_trip_and_reject_garbage() {
    for metric in METRICS {
        for kind in KINDS {
            let (m, data) = small_model(metric, kind);
            let layout = m.code_layout();
            let mut c = ListChunk::new(layout);
            let mut want: Vec<(i64, Vec<u8>)> = Vec::new();
            for i in 0..150usize {
                let e = m.encode(&data[i * 32..(i + 1) * 32]).unwrap();
                c.push(1000 + i as i64, &e.code, &e.aux).unwrap();
                want.push((1000 + i as i64, e.code));
            }
            for id in [1003, 1036, 1017, 1000] {
                assert!(c.remove(id));
                want.retain(|w| w.0 != id);
            }
            assert!(!c.remove(5));
            let b = c.to_bytes();
            assert_eq!(b.len(), c.byte_len());
            let r = ListChunkRef::parse(&b, layout).unwrap();
            assert_eq!(r.len(), want.len());
            for i in 0..r.len() {
                let id = r.id(i);
                let w = want.iter().find(|w| w.0 == id).expect("id present");
                assert_eq!(r.code(i), w.1, "code of {id}");
            }
            assert_eq!(ListChunk::from_bytes(&b, layout).unwrap(), c);
            // Unaligned storage parses the same.
            let mut shifted = vec![0u8; 1];
            shifted.extend_from_slice(&b);
            assert_eq!(ListChunk::from_bytes(&shifted[1..], layout).unwrap(), c);
            for len in 0..b.len() {
                assert!(ListChunkRef::parse(&b[..len], layout).is_err());
            }
            for pos in 0..24 {
                let mut x = b.clone();
                x[pos] ^= 0x01;
                // Reserved bytes (7, 20..24) are ignored; everything else
                // must be rejected.
                if pos == 7 || (20..24).contains(&pos) {
                    continue;
                }
                assert!(ListChunkRef::parse(&x, layout).is_err(), "flip {pos}");
            }
            // retain
            let before = c.len();
            let removed = c.retain(|id| id % 2 == 0);
            assert_eq!(c.len() + removed, before);
            assert!(c.ids().iter().all(|id| id % 2 == 0));
            assert!(c.push(1, &[0u8; 3], &[]).is_err());
        }
    }
}

#[test]
fn pq_reconstruction_error_is_small() {
    let dim = 64;
    let (data, _) = clustered(6000, dim, 40, 0.5, 21);
    let mut p = params(dim, Metric::L2, 32, QuantizerKind::Pq);
    p.pq_m = 16;
    let m = IvfModel::train(&p, &data, 2).unwrap();
    let (mut err_pq, mut err_coarse, mut var) = (0f64, 0f64, 0f64);
    let mean: Vec<f64> = (0..dim)
        .map(|d| {
            data.iter()
                .skip(d)
                .step_by(dim)
                .map(|&v| v as f64)
                .sum::<f64>()
                / 6000.0
        })
        .collect();
    for x in data.chunks_exact(dim).take(2000) {
        let e = m.encode(x).unwrap();
        let rec = m.decode(e.list, &e.code, &e.aux).unwrap();
        let c = m.centroid(e.list);
        for d in 0..dim {
            err_pq += (x[d] as f64 - rec[d] as f64).powi(2);
            err_coarse += (x[d] as f64 - c[d] as f64).powi(2);
            var += (x[d] as f64 - mean[d]).powi(2);
        }
    }
    // Residual PQ must beat the coarse centroid alone by a wide margin,
    // and be a small fraction of the data variance.
    assert!(
        err_pq < 0.35 * err_coarse,
        "pq {err_pq} vs coarse {err_coarse}"
    );
    assert!(err_pq < 0.1 * var, "pq {err_pq} vs variance {var}");
}

#[test]
fn all_lists_with_full_rerank_equals_brute_force() {
    let dim = 32;
    let (data, _) = clustered(1500, dim, 15, 0.5, 31);
    let queries = clustered_queries(20, dim, 15, 0.5, 31);
    for metric in METRICS {
        for kind in KINDS {
            let mut p = params(dim, metric, 12, kind);
            p.pq_m = 8;
            let m = IvfModel::train(&p, &data, 2).unwrap();
            let mut idx = MemIndex::new(m, 100);
            let ids: Vec<i64> = (0..1500).collect();
            idx.add_batch(&ids, &data, 2).unwrap();
            for q in queries.chunks_exact(dim) {
                let truth = brute_force(metric, &data, dim, q, 10);
                let sp = SearchParams::new(10).nprobe(12).rerank(1500);
                let got = idx.search(q, &sp, exact_cb(metric, &data, dim, q)).unwrap();
                let gi: Vec<i64> = got.iter().map(|x| x.0).collect();
                let ti: Vec<i64> = truth.iter().map(|x| x.0).collect();
                assert_eq!(gi, ti, "{metric:?} {kind:?}");
                if kind == QuantizerKind::None {
                    // No re-rank: the scan's own kernel distances.
                    let sp = SearchParams::new(10).nprobe(12).rerank(0);
                    let got = idx.search(q, &sp, exact_cb(metric, &data, dim, q)).unwrap();
                    for (g, t) in got.iter().zip(&truth) {
                        assert_eq!(g.0, t.0, "{metric:?} none, no re-rank");
                        assert!((g.1 as f64 - t.1).abs() < 1e-4 * t.1.abs().max(1.0));
                    }
                }
            }
        }
    }
}

#[test]
fn approximate_distances_track_exact_ones() {
    let dim = 32;
    let (data, _) = clustered(1500, dim, 15, 0.5, 41);
    let q = &clustered_queries(1, dim, 15, 0.5, 41)[..];
    for metric in METRICS {
        for kind in [QuantizerKind::Int8, QuantizerKind::Pq] {
            let mut p = params(dim, metric, 8, kind);
            p.pq_m = 16;
            let m = IvfModel::train(&p, &data, 2).unwrap();
            let mut idx = MemIndex::new(m, 64);
            idx.add_batch(&(0..1500).collect::<Vec<_>>(), &data, 1)
                .unwrap();
            let got = idx
                .search(
                    q,
                    &SearchParams::new(50).nprobe(8).rerank(0),
                    |_: &[i64], _: &mut [Option<f32>]| {
                        Err::<(), ivf::Error>(ivf::Error::NonFinite {
                            what: "unreachable",
                        })
                    },
                )
                .unwrap();
            assert_eq!(got.len(), 50);
            let tol = if kind == QuantizerKind::Int8 {
                0.03
            } else {
                0.25
            };
            for (id, d) in got {
                let x = &data[id as usize * dim..(id as usize + 1) * dim];
                let e = dist64(metric, q, x);
                let zero = vec![0.0; dim];
                let scale = match metric {
                    Metric::Cosine => 1.0,
                    Metric::L2 => e,
                    Metric::Dot => dist64(Metric::L2, q, &zero) * dist64(Metric::L2, x, &zero),
                };
                assert!(
                    (d as f64 - e).abs() <= tol * scale,
                    "{metric:?} {kind:?}: approx {d} exact {e}"
                );
            }
        }
    }
}

#[test]
fn scalar_and_simd_paths_give_same_results() {
    let dim = 48;
    let (data, _) = clustered(3000, dim, 30, 0.5, 51);
    let queries = clustered_queries(10, dim, 30, 0.5, 51);
    let mut p = params(dim, Metric::L2, 24, QuantizerKind::Pq);
    p.pq_m = 12;
    let m = IvfModel::train(&p, &data, 2).unwrap();
    let ids: Vec<i64> = (0..3000).collect();
    let mut reference: Option<Vec<Vec<(i64, f32)>>> = None;
    for isa in kernels::available_isas() {
        let mi = m.clone().with_kernels(Kernels::new(isa).unwrap());
        let mut idx = MemIndex::new(mi, 256);
        idx.add_batch(&ids, &data, 2).unwrap();
        let res: Vec<Vec<(i64, f32)>> = queries
            .chunks_exact(dim)
            .map(|q| {
                idx.search(
                    q,
                    &SearchParams::new(10).nprobe(6).rerank(100),
                    exact_cb(Metric::L2, &data, dim, q),
                )
                .unwrap()
            })
            .collect();
        match &reference {
            None => reference = Some(res),
            Some(r) => {
                for (a, b) in r.iter().zip(&res) {
                    let ai: Vec<i64> = a.iter().map(|x| x.0).collect();
                    let bi: Vec<i64> = b.iter().map(|x| x.0).collect();
                    assert_eq!(ai, bi, "isa {isa:?}");
                    for (x, y) in a.iter().zip(b) {
                        assert!((x.1 - y.1).abs() < 1e-3 * x.1.abs().max(1.0));
                    }
                }
            }
        }
    }
    assert!(Isa::Scalar.is_available());
}

#[test]
fn removal_and_filters_and_bad_queries() {
    let dim = 32;
    let (data, _) = clustered(1000, dim, 10, 0.5, 61);
    let m = IvfModel::train(
        &params(dim, Metric::Cosine, 8, QuantizerKind::Int8),
        &data,
        2,
    )
    .unwrap();
    let mut idx = MemIndex::new(m, 50);
    idx.add_batch(&(0..1000).collect::<Vec<_>>(), &data, 2)
        .unwrap();
    assert_eq!(idx.len(), 1000);
    assert_eq!(idx.list_sizes().iter().sum::<usize>(), 1000);
    let q = &data[3 * dim..4 * dim];
    let sp = SearchParams::new(5).nprobe(8).rerank(1000);
    let got = idx
        .search(q, &sp, exact_cb(Metric::Cosine, &data, dim, q))
        .unwrap();
    assert_eq!(got[0].0, 3);
    assert!(idx.remove(3).unwrap());
    assert!(!idx.remove(3).unwrap());
    let got = idx
        .search(q, &sp, exact_cb(Metric::Cosine, &data, dim, q))
        .unwrap();
    assert!(got.iter().all(|x| x.0 != 3));
    let truth: Vec<i64> = brute_force(Metric::Cosine, &data, dim, q, 6)
        .into_iter()
        .map(|x| x.0)
        .filter(|&i| i != 3)
        .collect();
    assert_eq!(got.iter().map(|x| x.0).collect::<Vec<_>>(), truth);
    // A filtered scan only admits matching ids.
    let model = idx.model();
    let mut s = model
        .searcher(q, &SearchParams::new(5).nprobe(8).rerank(0))
        .unwrap();
    for l in s.probe_lists().to_vec() {
        for b in idx.chunks(l) {
            s.scan_chunk_filtered(l, b, &mut |id| id % 7 == 0).unwrap();
        }
    }
    let got = s.finish();
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|x| x.0 % 7 == 0));
    // Rows that vanished before the re-rank are dropped.
    let got = idx
        .search(q, &sp, |ids: &[i64], out: &mut [Option<f32>]| {
            for (i, o) in ids.iter().zip(out.iter_mut()) {
                *o = (*i != 10).then(|| {
                    dist64(
                        Metric::Cosine,
                        q,
                        &data[*i as usize * dim..(*i as usize + 1) * dim],
                    ) as f32
                });
            }
            Ok::<(), ivf::Error>(())
        })
        .unwrap();
    assert!(got.iter().all(|x| x.0 != 10));
    // Bad queries.
    assert!(model.searcher(&q[1..], &sp).is_err());
    let mut nan = q.to_vec();
    nan[0] = f32::NAN;
    assert!(model.searcher(&nan, &sp).is_err());
    assert!(model.searcher(q, &SearchParams::new(0)).is_err());
    assert!(model.encode(&q[1..]).is_err());
    let mut s = model.searcher(q, &sp).unwrap();
    assert!(s.scan_chunk(99, idx.chunks(0)[0].as_slice()).is_err());
    assert!(s.scan_chunk(0, b"garbage").is_err());
}

#[test]
fn parameter_defaults() {
    assert_eq!(IvfParams::default_lists(30_000), 693);
    assert_eq!(IvfParams::default_lists(100), 2);
    assert_eq!(IvfParams::default_lists(0), 1);
    assert_eq!(
        IvfParams::default_lists(100_000_000),
        ivf::MAX_DEFAULT_LISTS
    );
    assert_eq!(IvfParams::default_nprobe(693), 69);
    assert_eq!(IvfParams::default_nprobe(20), 8);
    assert_eq!(IvfParams::default_nprobe(4), 4);
    let p = IvfParams::new(384, Metric::Cosine, 30_000);
    p.validate().unwrap();
    // PQ bytes per vector (code + id + side value) ≤ 1/8 of raw f32.
    assert!(p.pq_m + 8 + 4 <= 384 * 4 / 8);
    let mut bad = p.clone();
    bad.pq_m = 0;
    assert!(bad.validate().is_err());
    bad.pq_m = 100; // 100 × 4 dims > 384 leaves an empty sub-space
    assert!(bad.validate().is_err());
    bad.pq_m = 7; // non-divisor: zero-padded last sub-space, allowed
    bad.validate().unwrap();
}

/// Recall@10 on clustered synthetic 20k × 128 (held-out queries). Heavy in
/// debug builds: run with `cargo test -p pocketvec-ivf --release`.
#[test]
#[cfg_attr(debug_assertions, ignore = "slow in debug; run with --release")]
fn recall_at_10_on_clustered_20k_x_128() {
    let (n, dim, clusters, spread) = (20_000, 128, 200, 0.6);
    let (data, _) = clustered(n, dim, clusters, spread, 77);
    let queries = clustered_queries(200, dim, clusters, spread, 77);
    let truths: Vec<_> = queries
        .chunks_exact(dim)
        .map(|q| brute_force(Metric::L2, &data, dim, q, 10))
        .collect();
    for kind in [QuantizerKind::Pq, QuantizerKind::Int8] {
        let p = IvfParams {
            quantizer: kind,
            ..IvfParams::new(dim, Metric::L2, n)
        };
        let m = IvfModel::train(&p, &data, 2).unwrap();
        let mut idx = MemIndex::new(m, 1024);
        idx.add_batch(&(0..n as i64).collect::<Vec<_>>(), &data, 2)
            .unwrap();
        let nprobe = idx.model().default_nprobe();
        let mut total = 0.0;
        for (q, t) in queries.chunks_exact(dim).zip(&truths) {
            let got = idx
                .search(
                    q,
                    &SearchParams::new(10).nprobe(nprobe),
                    exact_cb(Metric::L2, &data, dim, q),
                )
                .unwrap();
            total += recall(&got, t);
        }
        let r = total / truths.len() as f64;
        eprintln!("{kind:?}: recall@10 = {r:.4} at nprobe {nprobe}");
        assert!(r >= 0.95, "{kind:?}: recall@10 {r}");
    }
}

#[test]
fn hostile_bytes_never_panic() {
    let (m, data) = small_model(Metric::L2, QuantizerKind::Pq);
    let layout = m.code_layout();
    let mut c = ListChunk::new(layout);
    for i in 0..100usize {
        let e = m.encode(&data[i * 32..(i + 1) * 32]).unwrap();
        c.push(i as i64, &e.code, &e.aux).unwrap();
    }
    let good = c.to_bytes();
    let mut rng = TestRng::new(99);
    for _ in 0..3000 {
        let mut b = good.clone();
        for _ in 0..1 + rng.below(4) {
            let pos = rng.below(b.len());
            b[pos] = rng.next_u64() as u8;
        }
        if rng.below(4) == 0 {
            // Hostile count field.
            b[8..12].copy_from_slice(&(rng.next_u64() as u32).to_le_bytes());
        }
        if rng.below(8) == 0 {
            let cut = rng.below(b.len());
            b.truncate(cut);
        }
        // Either an error or a chunk that scans without panicking.
        if let Ok(r) = ListChunkRef::parse(&b, layout) {
            let mut s = m
                .searcher(&data[..32], &SearchParams::new(5).nprobe(16))
                .unwrap();
            s.scan_ref(0, &r).unwrap();
            let _ = r.to_owned();
        }
    }
    // Model: NaN centroid with a valid checksum is rejected.
    let mut mb = m.to_bytes();
    mb[64..68].copy_from_slice(&f32::NAN.to_le_bytes());
    let n = mb.len();
    let crc = crc32(&mb[..n - 4]);
    mb[n - 4..].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        IvfModel::from_bytes(&mb),
        Err(ivf::Error::Corrupt { .. })
    ));
    // Random garbage of every small length.
    for len in 0..200 {
        let g: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        assert!(IvfModel::from_bytes(&g).is_err());
        assert!(ListChunkRef::parse(&g, layout).is_err() || len >= ivf::CHUNK_HEADER);
    }
}

#[test]
fn assignment_paths_agree_across_isas() {
    // GEMM path (dim ≥ 32) and small path (dim < 32), every ISA the CPU has.
    for dim in [8usize, 40, 384] {
        let (data, _) = clustered(700, dim, 25, 0.3, dim as u64);
        let cents: Vec<f32> = data[..37 * dim].to_vec();
        let mut reference: Option<(Vec<u32>, Vec<f32>)> = None;
        for isa in kernels::available_isas() {
            let mut l = vec![0u32; 700];
            let mut s = vec![0f32; 700];
            ivf::kmeans::assign_points(
                Kernels::new(isa).unwrap(),
                &data,
                dim,
                &cents,
                Assign::L2,
                2,
                &mut l,
                &mut s,
            )
            .unwrap();
            // f64 reference for the labels.
            for (i, x) in data.chunks_exact(dim).enumerate() {
                let best =
                    (0..37)
                        .min_by(|&a, &b| {
                            dist64(Metric::L2, x, &cents[a * dim..(a + 1) * dim])
                                .total_cmp(&dist64(Metric::L2, x, &cents[b * dim..(b + 1) * dim]))
                        })
                        .unwrap();
                let db = dist64(Metric::L2, x, &cents[best * dim..(best + 1) * dim]);
                let dl = dist64(
                    Metric::L2,
                    x,
                    &cents[l[i] as usize * dim..(l[i] as usize + 1) * dim],
                );
                assert!(
                    dl <= db + 1e-3 * db.max(1.0),
                    "dim {dim} {isa:?} point {i}: {dl} vs {db}"
                );
            }
            match &reference {
                None => reference = Some((l, s)),
                Some((rl, rs)) => {
                    assert_eq!(&l, rl, "dim {dim} {isa:?}");
                    for (a, b) in s.iter().zip(rs) {
                        assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0));
                    }
                }
            }
        }
    }
}

/// One `SearchScratch` carried across queries, metrics, quantizers, models
/// of different shapes, k, nprobe and re-rank depths gives bit-identical
/// results to a fresh searcher each time, and with every list probed and a
/// full re-rank still equals brute force.
#[test]
fn reused_scratch_matches_fresh_searchers() {
    let mut scratch = ivf::SearchScratch::default();
    let mut hits = Vec::new();
    let mut rng = TestRng::new(5);
    for (dim, lists, n) in [(24usize, 10usize, 900usize), (40, 6, 700)] {
        let (data, _) = clustered(n, dim, lists, 0.5, dim as u64);
        let queries = clustered_queries(6, dim, lists, 0.5, dim as u64);
        for metric in METRICS {
            for kind in KINDS {
                let mut p = params(dim, metric, lists, kind);
                p.pq_m = dim / 4;
                let m = IvfModel::train(&p, &data, 2).unwrap();
                let mut idx = MemIndex::new(m, 64);
                let ids: Vec<i64> = (0..n as i64).collect();
                idx.add_batch(&ids, &data, 2).unwrap();
                let model = idx.model();
                for q in queries.chunks_exact(dim) {
                    let k = 1 + rng.below(12);
                    let nprobe = 1 + rng.below(lists);
                    let rerank = [0, k, 3 * k, n][rng.below(4)];
                    let sp = SearchParams { k, nprobe, rerank };
                    let run = |s: &mut ivf::Searcher<'_>| {
                        for i in 0..s.probe_lists().len() {
                            let l = s.probe_lists()[i];
                            for b in idx.chunks(l) {
                                s.scan_chunk(l, b).unwrap();
                            }
                        }
                    };
                    let mut fresh = model.searcher(q, &sp).unwrap();
                    run(&mut fresh);
                    let mut reused = model.searcher_with(q, &sp, scratch).unwrap();
                    run(&mut reused);
                    assert_eq!(fresh.scanned(), reused.scanned());
                    assert_eq!(fresh.candidates(), reused.candidates());
                    let ctx = format!("{dim} {metric:?} {kind:?} k {k} nprobe {nprobe}");
                    if rerank == 0 {
                        let want = fresh.finish();
                        let got = reused.finish();
                        assert_eq!(bits(&got), bits(&want), "{ctx}");
                        // `finish` consumed the searcher: start clean.
                        scratch = ivf::SearchScratch::default();
                        continue;
                    }
                    let want = fresh
                        .finish_rerank(exact_cb(metric, &data, dim, q))
                        .unwrap();
                    reused
                        .finish_rerank_into(exact_cb(metric, &data, dim, q), &mut hits)
                        .unwrap();
                    assert_eq!(bits(&hits), bits(&want), "{ctx}");
                    scratch = reused.into_scratch();
                    if rerank == n {
                        // Every list and every row re-ranked: brute force.
                        let sp = SearchParams::new(k).nprobe(lists).rerank(n);
                        let mut s = model.searcher_with(q, &sp, scratch).unwrap();
                        run(&mut s);
                        s.finish_rerank_into(exact_cb(metric, &data, dim, q), &mut hits)
                            .unwrap();
                        let truth: Vec<i64> = brute_force(metric, &data, dim, q, k)
                            .into_iter()
                            .map(|x| x.0)
                            .collect();
                        let got: Vec<i64> = hits.iter().map(|x| x.0).collect();
                        assert_eq!(got, truth, "{ctx}: all lists");
                        scratch = s.into_scratch();
                    }
                }
            }
        }
    }
}

fn bits(v: &[(i64, f32)]) -> Vec<(i64, u32)> {
    v.iter().map(|&(id, d)| (id, d.to_bits())).collect()
}

/// The probe (int8 products of the query and the centred centroids) ranks
/// lists like an f64 reference within the int8 rounding bound, at any data
/// scale and far from the origin, on every ISA level: the list it puts
/// first is the nearest or within the bound of it, and the nearest list is
/// probed whenever it is clearly nearer than the fifth.
#[test]
fn probe_ranks_lists_like_f64_at_any_scale_and_offset() {
    let dim = 48;
    let lists = 40;
    let (base, _) = clustered(4000, dim, lists, 0.4, 77);
    let queries = clustered_queries(30, dim, lists, 0.4, 78);
    // (L2 squares in f32: beyond 1e±15 the squared terms leave its range.)
    for (scale, offset) in [
        (1e-12f32, 0.0f32),
        (1e-6, 0.0),
        (1.0, 0.0),
        (1e6, 0.0),
        (1e12, 0.0),
        (1.0, 1e3),
    ] {
        let data: Vec<f32> = base.iter().map(|v| v * scale + offset).collect();
        let qs: Vec<f32> = queries.iter().map(|v| v * scale + offset).collect();
        for metric in METRICS {
            let p = params(dim, metric, lists, QuantizerKind::Int8);
            let trained = IvfModel::train(&p, &data, 2).unwrap();
            let cents: Vec<Vec<f64>> = (0..lists as u32)
                .map(|l| trained.centroid(l).iter().map(|&v| v as f64).collect())
                .collect();
            let mu: Vec<f64> = (0..dim)
                .map(|i| cents.iter().map(|c| c[i]).sum::<f64>() / lists as f64)
                .collect();
            for isa in [Isa::Avx512, Isa::Avx2, Isa::Scalar] {
                let Ok(kern) = Kernels::new(isa) else {
                    eprintln!("skipping {isa:?}: CPU lacks it");
                    continue;
                };
                let m = trained.clone().with_kernels(kern);
                for q in qs.chunks_exact(dim) {
                    let refs: Vec<f64> = (0..lists as u32)
                        .map(|l| probe_score64(metric, q, m.centroid(l)))
                        .collect();
                    let mut order: Vec<usize> = (0..lists).collect();
                    order.sort_by(|&a, &b| refs[a].total_cmp(&refs[b]));
                    // What the probe multiplies: q − μ (L2) or q̂ / q, by c − μ.
                    let qn: f64 = q.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
                    let qv: Vec<f64> = (0..dim)
                        .map(|i| match metric {
                            Metric::L2 => q[i] as f64 - mu[i],
                            Metric::Cosine => q[i] as f64 / qn,
                            Metric::Dot => q[i] as f64,
                        })
                        .collect();
                    let (qsum, qmax) = sum_max(&qv);
                    let err = cents
                        .iter()
                        .map(|c| {
                            let cv: Vec<f64> = c.iter().zip(&mu).map(|(a, b)| a - b).collect();
                            let (csum, cmax) = sum_max(&cv);
                            let k = if metric == Metric::L2 { 2.0 } else { 1.0 };
                            k * ((qsum * cmax + qmax * csum) / 254.0
                                + dim as f64 * qmax * cmax / (254.0 * 254.0))
                        })
                        .fold(0.0, f64::max)
                        // f32 rounding of the remaining terms.
                        + 1e-5 * refs.iter().fold(0.0f64, |a, b| a.max(b.abs()));
                    let got = m.probe(q, 4).unwrap();
                    let (first, best) = (refs[got[0] as usize], refs[order[0]]);
                    assert!(
                        first <= best + 2.0 * err,
                        "{metric:?} x{scale}+{offset} {isa:?}: first list {} at {first}, best {} at {best} (bound {err})",
                        got[0],
                        order[0]
                    );
                    if refs[order[4]] - best > 2.0 * err {
                        assert!(
                            got.contains(&(order[0] as u32)),
                            "{metric:?} x{scale}+{offset} {isa:?}: nearest list {} not probed in {got:?}",
                            order[0]
                        );
                    }
                }
            }
        }
    }
}

fn sum_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((0.0, 0.0), |(s, m), x| (s + x.abs(), f64::max(m, x.abs())))
}

/// What the probe ranks lists by, in f64: cosine `1 - q̂·c` (centroids are
/// normalised), dot `-q·c`, L2 `‖q - c‖²`.
fn probe_score64(metric: Metric, q: &[f32], c: &[f32]) -> f64 {
    let dot: f64 = q.iter().zip(c).map(|(a, b)| *a as f64 * *b as f64).sum();
    match metric {
        Metric::Cosine => {
            let qn: f64 = q.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
            1.0 - dot / qn
        }
        Metric::Dot => -dot,
        Metric::L2 => q
            .iter()
            .zip(c)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum(),
    }
}

/// Scanning every probed list at once (`scan_probed`: grouped code blocks
/// on the VBMI path) admits the same candidates with the same approximate
/// distances, bit for bit, as scanning the chunks one by one in probe
/// order: lists of one or several chunks, full 64-code blocks and tails,
/// empty chunks, a filter, after removals; a damaged chunk is an error.
#[test]
fn scan_probed_matches_chunk_by_chunk_scan() {
    let dim = 32;
    let (data, _) = clustered(2500, dim, 12, 0.5, 77);
    let queries = clustered_queries(5, dim, 12, 0.5, 77);
    for metric in METRICS {
        for kind in KINDS {
            for chunk_rows in [40usize, 150] {
                let mut p = params(dim, metric, 12, kind);
                p.pq_m = 8;
                let m = IvfModel::train(&p, &data, 2).unwrap();
                let mut idx = MemIndex::new(m, chunk_rows);
                let ids: Vec<i64> = (0..2500).collect();
                idx.add_batch(&ids, &data, 2).unwrap();
                for id in (0..2500).step_by(11) {
                    assert!(idx.remove(id).unwrap());
                }
                // Every list gets an empty chunk in front (the SQLite
                // layer's cache holds one where a chunk was deleted).
                let lists: Vec<Vec<Vec<u8>>> = (0..12u32)
                    .map(|l| {
                        let mut v = vec![Vec::new()];
                        v.extend(idx.chunks(l).iter().cloned());
                        v
                    })
                    .collect();
                let model = idx.model();
                for (qi, q) in queries.chunks_exact(dim).enumerate() {
                    for nprobe in [1usize, 5, 12] {
                        let sp = SearchParams::new(10).nprobe(nprobe).rerank(30);
                        let keep = |id: i64| id % 3 != qi as i64 % 3;
                        let mut one = model.searcher(q, &sp).unwrap();
                        for i in 0..one.probe_lists().len() {
                            let l = one.probe_lists()[i];
                            for b in &lists[l as usize] {
                                if !b.is_empty() {
                                    one.scan_chunk_filtered(l, b, &mut |id| keep(id)).unwrap();
                                }
                            }
                        }
                        let mut all = model.searcher(q, &sp).unwrap();
                        all.scan_probed(|l| &lists[l as usize][..], &mut |id| keep(id))
                            .unwrap();
                        let ctx = format!("{metric:?} {kind:?} rows {chunk_rows} nprobe {nprobe}");
                        assert_eq!(one.scanned(), all.scanned(), "{ctx}");
                        assert_eq!(one.candidates(), all.candidates(), "{ctx}");
                        let (a, b) = (one.finish(), all.finish());
                        assert!(!a.is_empty(), "{ctx}");
                        assert!(a.iter().all(|x| keep(x.0)), "{ctx}");
                        assert_eq!(bits(&a), bits(&b), "{ctx}");
                    }
                }
                // A truncated chunk: an error, not a panic.
                let mut bad = lists.clone();
                for l in bad.iter_mut() {
                    if let Some(c) = l.iter_mut().find(|c| !c.is_empty()) {
                        c.truncate(c.len() - 1);
                    }
                }
                let mut s = model
                    .searcher(&queries[..dim], &SearchParams::new(10).nprobe(12))
                    .unwrap();
                assert!(s
                    .scan_probed(|l| &bad[l as usize][..], &mut |_| true)
                    .is_err());
            }
        }
    }
}
