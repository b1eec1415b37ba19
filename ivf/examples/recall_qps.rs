//! Recall@k vs queries per second over nprobe, for IVF-PQ and IVF-int8,
//! against exact brute force measured in the same run.
//!
//! ```text
//! cargo run -p pocketvec-ivf --release --example recall_qps                 # real data
//! cargo run -p pocketvec-ivf --release --example recall_qps -- --synthetic 1000000 --queries 200
//! ```
//! Options: `--data DIR` (default ../shared/data/debian), `--synthetic N`
//! (clustered 384-d, L2-normalised), `--queries NQ`, `--k K`, `--rerank R`,
//! `--nprobe 1,2,4,...`, `--quantizers pq,int8,none`, `--pq-m M`,
//! `--lists L`, `--threads T`, `--phases`
//! (split the time of each search into probe+table, scan, re-rank) (build only; search is single-threaded).
//!
//! QPS is 1/median latency (robust on a shared machine); `× exact` is the
//! ratio of median latencies in the same run. All searches are
//! single-threaded; the exact re-rank reads full f32
//! vectors from memory (the SQLite layer will read them from the table).

use ivf::{IvfModel, IvfParams, MemIndex, Metric, QuantizerKind, SearchParams};
use kernels::{f16, Kernels, TopK};
use std::collections::HashSet;
use std::time::Instant;

struct Args {
    data: String,
    synthetic: usize,
    queries: usize,
    k: usize,
    rerank: Option<usize>,
    nprobe: Vec<usize>,
    quantizers: Vec<QuantizerKind>,
    pq_m: Option<usize>,
    lists: Option<usize>,
    threads: usize,
    phases: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        data: concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/debian").to_string(),
        synthetic: 0,
        queries: 1000,
        k: 10,
        rerank: None,
        nprobe: vec![1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128],
        quantizers: vec![QuantizerKind::Pq, QuantizerKind::Int8],
        pq_m: None,
        lists: None,
        threads: ivf::default_threads(),
        phases: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let val = |i: usize| -> &str {
        argv.get(i + 1)
            .map(|s| s.as_str())
            .unwrap_or_else(|| panic!("{} needs a value", argv[i]))
    };
    while i < argv.len() {
        match argv[i].as_str() {
            "--data" => a.data = val(i).to_string(),
            "--synthetic" => a.synthetic = val(i).parse().expect("--synthetic N"),
            "--queries" => a.queries = val(i).parse().expect("--queries NQ"),
            "--k" => a.k = val(i).parse().expect("--k K"),
            "--rerank" => a.rerank = Some(val(i).parse().expect("--rerank R")),
            "--nprobe" => {
                a.nprobe = val(i)
                    .split(',')
                    .map(|s| s.parse().expect("--nprobe list"))
                    .collect()
            }
            "--quantizers" => {
                a.quantizers = val(i)
                    .split(',')
                    .map(|s| QuantizerKind::parse(s).expect("pq|int8|none"))
                    .collect()
            }
            "--pq-m" => a.pq_m = Some(val(i).parse().expect("--pq-m M")),
            "--lists" => a.lists = Some(val(i).parse().expect("--lists L")),
            "--threads" => a.threads = val(i).parse().expect("--threads T"),
            "--phases" => {
                a.phases = true;
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

fn load_f16(path: &str, dim: usize) -> Vec<f32> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(b.len() % (2 * dim), 0);
    let h: Vec<f16> = b
        .chunks_exact(2)
        .map(|c| f16::from_le_bytes([c[0], c[1]]))
        .collect();
    let mut out = vec![0f32; h.len()];
    kernels::convert::f16_to_f32(&h, &mut out).unwrap();
    out
}

/// SplitMix64 + Box–Muller: clustered Gaussian data, L2-normalised.
struct Gen(u64);
impl Gen {
    fn u(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn g(&mut self) -> f32 {
        let (a, b) = (self.u().max(1e-300), self.u());
        ((-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()) as f32
    }
}

/// Clustered data with structure inside clusters, like real embeddings:
/// `n/1000` (10..=2000) cluster centres ~ N(0, I); a point is its centre
/// plus a Gaussian in the cluster's own random 16-dimensional subspace
/// (basis entries N(0, 0.7²): ~2.8 per coordinate) plus isotropic noise
/// (0.15 per coordinate), L2-normalised.
/// (Purely isotropic clusters make every point of a cluster equidistant in
/// 384 dimensions, which no real embedding set looks like.)
fn synthetic(n: usize, nq: usize, dim: usize) -> (Vec<f32>, Vec<f32>) {
    const SUB: usize = 16;
    let clusters = (n / 1000).clamp(10, 2000);
    let mut g = Gen(12345);
    let centres: Vec<f32> = (0..clusters * dim).map(|_| g.g()).collect();
    let bases: Vec<f32> = (0..clusters * dim * SUB).map(|_| g.g() * 0.7).collect();
    let k = Kernels::detect();
    let make = |count: usize, g: &mut Gen| {
        let mut v = vec![0f32; count * dim];
        let mut z = [0f32; SUB];
        for x in v.chunks_exact_mut(dim) {
            let c = (g.u() * clusters as f64) as usize;
            z.iter_mut().for_each(|zi| *zi = g.g());
            let b = &bases[c * dim * SUB..(c + 1) * dim * SUB];
            for (d, xd) in x.iter_mut().enumerate() {
                let row = &b[d * SUB..(d + 1) * SUB];
                let s: f32 = row.iter().zip(&z).map(|(a, b)| a * b).sum();
                *xd = centres[c * dim + d] + s + 0.15 * g.g();
            }
            k.normalize_f32(x);
        }
        v
    };
    let data = make(n, &mut g);
    let mut gq = Gen(999);
    let queries = make(nq, &mut gq);
    (data, queries)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let a = parse_args();
    let dim = 384;
    let metric = Metric::Cosine;
    let kern = Kernels::detect();
    let (data, queries, label) = if a.synthetic > 0 {
        let (d, q) = synthetic(a.synthetic, a.queries, dim);
        (d, q, format!("clustered synthetic {} × {dim}", a.synthetic))
    } else {
        let d = load_f16(&format!("{}/docs.f16", a.data), dim);
        let q_all = load_f16(&format!("{}/queries.f16", a.data), dim);
        let nq_all = q_all.len() / dim;
        let step = (nq_all / a.queries.max(1)).max(1);
        let q: Vec<f32> = q_all
            .chunks_exact(dim)
            .step_by(step)
            .take(a.queries)
            .flatten()
            .copied()
            .collect();
        (d, q, format!("debian MiniLM {} × {dim}", 0))
    };
    let n = data.len() / dim;
    let label = label.replace(" 0 ×", &format!(" {n} ×"));
    let nq = queries.len() / dim;
    println!(
        "# {label}, {nq} held-out queries, k={}, metric cosine, ISA {}",
        a.k,
        kern.isa().name()
    );

    // Exact brute force (single-threaded): ground truth and the QPS baseline.
    let mut out = vec![0f32; n];
    let mut truth: Vec<HashSet<i64>> = Vec::with_capacity(nq);
    let mut lat = Vec::with_capacity(nq);
    let t0 = Instant::now();
    for q in queries.chunks_exact(dim) {
        let t = Instant::now();
        kern.distances_f32(metric, q, &data, None, &mut out)
            .unwrap();
        let mut top = TopK::new(a.k).unwrap();
        for (i, &d) in out.iter().enumerate() {
            top.push(i as i64, d);
        }
        truth.push(top.into_sorted_vec().into_iter().map(|x| x.0).collect());
        lat.push(t.elapsed().as_secs_f64());
    }
    let exact_mean_qps = nq as f64 / t0.elapsed().as_secs_f64();
    let exact_med = median(&mut lat);
    println!(
        "exact brute force: median {:.0} µs/query = {:.1} QPS (mean-based {exact_mean_qps:.1} QPS)",
        exact_med * 1e6,
        1.0 / exact_med
    );

    let ids: Vec<i64> = (0..n as i64).collect();
    for &kind in &a.quantizers {
        let mut p = IvfParams::new(dim, metric, n);
        p.quantizer = kind;
        if let Some(m) = a.pq_m {
            p.pq_m = m;
        }
        if let Some(l) = a.lists {
            p.lists = l;
        }
        let t = Instant::now();
        let model = IvfModel::train(&p, &data, a.threads).unwrap();
        let train_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut idx = MemIndex::new(model, ivf::DEFAULT_CHUNK_ROWS);
        idx.add_batch(&ids, &data, a.threads).unwrap();
        let add_s = t.elapsed().as_secs_f64();
        let model = idx.model();
        let rerank = a.rerank.unwrap_or_else(|| ivf::default_rerank(a.k));
        println!(
            "\n## IVF-{}: lists={} pq_m={} train {:.2}s (sample {}, {} threads), add {:.2}s; list bytes {:.1} MB = 1/{:.1} of raw f32; rerank {rerank}; default nprobe {}",
            kind.name(),
            model.lists(),
            if kind == QuantizerKind::Pq { model.params().pq_m } else { 0 },
            train_s,
            model.params().train_sample_size().min(n),
            a.threads,
            add_s,
            idx.list_bytes() as f64 / 1e6,
            (n * dim * 4) as f64 / idx.list_bytes() as f64,
            model.default_nprobe()
        );
        println!(
            "| nprobe | recall@{} | QPS (1/median) | × exact | median µs | mean-based QPS |",
            a.k
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        for &np in &a.nprobe {
            if np > model.lists() {
                continue;
            }
            let sp = SearchParams::new(a.k).nprobe(np).rerank(rerank);
            let mut rec = 0.0;
            let mut lat = Vec::with_capacity(nq);
            let t0 = Instant::now();
            for (q, tr) in queries.chunks_exact(dim).zip(&truth) {
                let t = Instant::now();
                let got = idx
                    .search(q, &sp, |ids: &[i64], out: &mut [Option<f32>]| {
                        for (id, o) in ids.iter().zip(out.iter_mut()) {
                            let i = *id as usize;
                            *o = kern
                                .cosine_distance_f32(q, &data[i * dim..(i + 1) * dim])
                                .ok();
                        }
                        Ok::<(), ivf::Error>(())
                    })
                    .unwrap();
                lat.push(t.elapsed().as_secs_f64());
                rec += got.iter().filter(|x| tr.contains(&x.0)).count() as f64 / a.k as f64;
            }
            let qps = nq as f64 / t0.elapsed().as_secs_f64();
            if a.phases {
                // Same searches, driven step by step, to split the time.
                let (mut t_start, mut t_scan, mut t_fin, mut scanned) = (0f64, 0f64, 0f64, 0usize);
                let mut scratch = ivf::SearchScratch::default();
                for q in queries.chunks_exact(dim) {
                    let t = Instant::now();
                    let mut s = model.searcher_with(q, &sp, scratch).unwrap();
                    let t1 = Instant::now();
                    s.scan_probed(|l| idx.chunks(l), &mut |_| true).unwrap();
                    scanned += s.scanned();
                    let t2 = Instant::now();
                    let mut r = Vec::new();
                    s.finish_rerank_into(
                        |ids: &[i64], out: &mut [Option<f32>]| {
                            for (id, o) in ids.iter().zip(out.iter_mut()) {
                                let i = *id as usize;
                                *o = kern
                                    .cosine_distance_f32(q, &data[i * dim..(i + 1) * dim])
                                    .ok();
                            }
                            Ok::<(), ivf::Error>(())
                        },
                        &mut r,
                    )
                    .unwrap();
                    scratch = s.into_scratch();
                    std::hint::black_box(r);
                    t_start += (t1 - t).as_secs_f64();
                    t_scan += (t2 - t1).as_secs_f64();
                    t_fin += t2.elapsed().as_secs_f64();
                }
                let f = 1e6 / nq as f64;
                println!(
                    "  phases (mean µs): probe+table {:.1}, scan {:.1} ({} entries), re-rank {:.1}",
                    t_start * f,
                    t_scan * f,
                    scanned / nq,
                    t_fin * f
                );
            }
            let med = median(&mut lat);
            println!(
                "| {np} | {:.4} | {:.0} | {:.1} | {:.0} | {qps:.0} |",
                rec / nq as f64,
                1.0 / med,
                exact_med / med,
                med * 1e6
            );
        }
    }
}
