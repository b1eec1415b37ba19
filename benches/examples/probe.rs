//! Quick, interference-tolerant timing for kernel development: the minimum
//! over many repetitions of the mean time of a batch of calls. Not the
//! benchmark of record (that is `cargo bench --bench kernels`).
//! Usage: cargo run --release -p pocketvec-benches --example probe [filter]
#![deny(unstable_features)]
use std::hint::black_box;
use std::time::Instant;

use half::f16;
use kernels::{available_isas, Kernels};
use pocketvec_benches::{Placed, Rng};
use simsimd::SpatialSimilarity;

fn min_ns(mut f: impl FnMut()) -> f64 {
    let batch = 200;
    let mut best = f64::INFINITY;
    for _ in 0..300 {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    best
}

fn ss_f16(x: &[f16]) -> &[simsimd::f16] {
    // SAFETY: both are repr(transparent) u16.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), x.len()) }
}

fn scan() {
    let (n, d) = (100_000usize, 768usize);
    let mut rng = Rng(11);
    let block = rng.vec_f32(n * d);
    let q = rng.vec_f32(d);
    let k = Kernels::detect();
    let norms: Vec<f32> = block.chunks(d).map(|r| k.norm_f32(r)).collect();
    let mut out = vec![0f32; n];
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e3
    };
    // Interleaved rounds, so background load hits baseline and scan alike;
    // report the median of the per-round ratios.
    let mut rows: Vec<[f64; 5]> = Vec::new();
    for _ in 0..15 {
        let base = time(&mut || {
            black_box(pocketvec_benches::memory_read_sum(black_box(&block)));
        });
        let mut r = [base, 0.0, 0.0, 0.0, 0.0];
        for (j, (metric, with_norms)) in [
            (kernels::Metric::Cosine, true),
            (kernels::Metric::Dot, false),
            (kernels::Metric::L2, false),
            (kernels::Metric::Cosine, false),
        ]
        .into_iter()
        .enumerate()
        {
            let ns = with_norms.then_some(&norms[..]);
            r[j + 1] = time(&mut || k.distances_f32(metric, &q, &block, ns, &mut out).unwrap());
        }
        rows.push(r);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let names = ["memory_read", "cosine+norms", "dot", "l2", "cosine"];
    let mut line = format!("scan {n}x{d} ({}):", k.isa().name());
    for j in 0..5 {
        let t = median(rows.iter().map(|r| r[j]).collect());
        let ratio = median(rows.iter().map(|r| r[0] / r[j]).collect());
        line += &format!(" {} {t:.2} ms ({ratio:.2}x baseline) |", names[j]);
    }
    println!("{line}");
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    if filter == "scan" {
        return scan();
    }
    let levels: Vec<Kernels> = available_isas()
        .into_iter()
        .map(|i| Kernels::new(i).unwrap())
        .collect();
    let mut rng = Rng(7);
    let dims: Vec<usize> = std::env::var("PROBE_DIMS")
        .map(|s| s.split(',').map(|x| x.parse().unwrap()).collect())
        .unwrap_or(vec![128, 384, 768, 1536]);
    for d in dims {
        let (a, b) = (rng.vec_f32(d), rng.vec_f32(d));
        let (pa, pb) = (Placed::new(&a, false), Placed::new(&b, false));
        let (x, y) = (pa.get(), pb.get());
        let ah: Vec<f16> = a.iter().map(|&v| f16::from_f32(v)).collect();
        let bh: Vec<f16> = b.iter().map(|&v| f16::from_f32(v)).collect();
        let (pah, pbh) = (Placed::new(&ah, false), Placed::new(&bh, false));
        let (xh, yh) = (pah.get(), pbh.get());
        let (ai, bi) = (rng.vec_i8(d), rng.vec_i8(d));
        let (pai, pbi) = (Placed::new(&ai, false), Placed::new(&bi, false));
        let (xi, yi) = (pai.get(), pbi.get());
        let row = |name: &str, ss: f64, ours: &dyn Fn(&Kernels) -> f64| {
            if !name.contains(&filter) {
                return;
            }
            let mut s = format!("{name:>12} d={d:<5} simsimd {ss:7.1} ns |");
            for k in &levels {
                let t = ours(k);
                s += &format!(" {} {t:7.1} ns ({:.2}x)", k.isa().name(), ss / t);
            }
            println!("{s}");
        };
        row(
            "dot_f32",
            min_ns(|| {
                black_box(f32::dot(black_box(x), black_box(y)));
            }),
            &|k| {
                min_ns(|| {
                    black_box(k.dot_f32(black_box(x), black_box(y)).unwrap());
                })
            },
        );
        row(
            "cos_f32",
            min_ns(|| {
                black_box(<f32 as SpatialSimilarity>::cos(black_box(x), black_box(y)));
            }),
            &|k| {
                min_ns(|| {
                    black_box(k.cosine_distance_f32(black_box(x), black_box(y)).unwrap());
                })
            },
        );
        row(
            "l2sq_f32",
            min_ns(|| {
                black_box(f32::l2sq(black_box(x), black_box(y)));
            }),
            &|k| {
                min_ns(|| {
                    black_box(k.l2sq_f32(black_box(x), black_box(y)).unwrap());
                })
            },
        );
        row(
            "dot_f16",
            min_ns(|| {
                black_box(simsimd::f16::dot(
                    ss_f16(black_box(xh)),
                    ss_f16(black_box(yh)),
                ));
            }),
            &|k| {
                min_ns(|| {
                    black_box(k.dot_f16(black_box(xh), black_box(yh)).unwrap());
                })
            },
        );
        row(
            "cos_f16",
            min_ns(|| {
                black_box(simsimd::f16::cos(
                    ss_f16(black_box(xh)),
                    ss_f16(black_box(yh)),
                ));
            }),
            &|k| {
                min_ns(|| {
                    black_box(k.cosine_distance_f16(black_box(xh), black_box(yh)).unwrap());
                })
            },
        );
        row(
            "cos_i8",
            min_ns(|| {
                black_box(i8::cos(black_box(xi), black_box(yi)));
            }),
            &|k| {
                min_ns(|| {
                    black_box(k.cosine_distance_i8(black_box(xi), black_box(yi)).unwrap());
                })
            },
        );
        row(
            "dot_i8",
            min_ns(|| {
                black_box(i8::dot(black_box(xi), black_box(yi)));
            }),
            &|k| {
                min_ns(|| {
                    black_box(k.dot_i8(black_box(xi), black_box(yi)).unwrap());
                })
            },
        );
        row(
            "l2sq_i8",
            min_ns(|| {
                black_box(i8::l2sq(black_box(xi), black_box(yi)));
            }),
            &|k| {
                min_ns(|| {
                    black_box(k.l2sq_i8(black_box(xi), black_box(yi)).unwrap());
                })
            },
        );
    }
}
