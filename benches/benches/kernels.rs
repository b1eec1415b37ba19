//! Criterion benchmarks of pocketvec's kernels. One group per op × type ×
//! dimension; in each group every ISA level this CPU has (forced
//! explicitly), the `simsimd` crate and a plain scalar loop, on the same
//! buffers and with the same call shape (one pair per call, norms not
//! precomputed), plus misaligned inputs (one element past a 64-byte
//! boundary) for the best level and simsimd. Then a one-to-many scan of
//! 100 000 × 768 f32 beside the memory-read baseline over the same buffer,
//! and a cold-cache pair benchmark. `benches/ratio_table.py` turns the
//! medians into ratios.
#![deny(unstable_features)]
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use half::f16;
use kernels::{available_isas, Kernels, Metric};
use pocketvec_benches::{memory_read_sum, plain, Placed, Rng};
use simsimd::SpatialSimilarity;

const DIMS: [usize; 4] = [128, 384, 768, 1536];

fn levels() -> Vec<Kernels> {
    available_isas()
        .into_iter()
        .map(|i| Kernels::new(i).unwrap())
        .collect()
}

fn best() -> Kernels {
    *levels().last().unwrap()
}

/// simsimd's view of the same f16 buffer.
fn ss_f16(x: &[f16]) -> &[simsimd::f16] {
    // SAFETY: both types are `#[repr(transparent)]` over u16 with no invalid
    // bit patterns; the lifetime and length are those of `x`.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), x.len()) }
}

/// One benchmark group: our levels, simsimd and the plain loop on `a`, `b`.
#[allow(clippy::too_many_arguments)]
fn pair_group<T: Copy + Default, R1, R2, R3>(
    c: &mut Criterion,
    name: &str,
    a: &[T],
    b: &[T],
    ours: impl Fn(&Kernels, &[T], &[T]) -> R1,
    peer: impl Fn(&[T], &[T]) -> R2,
    plain: impl Fn(&[T], &[T]) -> R3,
) {
    let d = a.len();
    let mut g = c.benchmark_group(format!("{name}_d{d}"));
    g.throughput(Throughput::Elements(d as u64));
    for misaligned in [false, true] {
        let (pa, pb) = (Placed::new(a, misaligned), Placed::new(b, misaligned));
        let (x, y) = (pa.get(), pb.get());
        let suffix = if misaligned { "_misaligned" } else { "" };
        for k in levels() {
            if misaligned && k.isa() != best().isa() {
                continue;
            }
            g.bench_function(format!("{}{suffix}", k.isa().name()), |bn| {
                bn.iter(|| ours(&k, black_box(x), black_box(y)))
            });
        }
        g.bench_function(format!("simsimd{suffix}"), |bn| {
            bn.iter(|| peer(black_box(x), black_box(y)))
        });
        if !misaligned {
            g.bench_function("plain", |bn| bn.iter(|| plain(black_box(x), black_box(y))));
        }
    }
    g.finish();
}

fn pairs(c: &mut Criterion) {
    let mut rng = Rng(7);
    for d in DIMS {
        let (a, b) = (rng.vec_f32(d), rng.vec_f32(d));
        pair_group(
            c,
            "dot_f32",
            &a,
            &b,
            |k, x, y| k.dot_f32(x, y).unwrap(),
            |x, y| f32::dot(x, y).unwrap(),
            plain::dot_f32,
        );
        pair_group(
            c,
            "cosine_f32",
            &a,
            &b,
            |k, x, y| k.cosine_distance_f32(x, y).unwrap(),
            |x, y| <f32 as SpatialSimilarity>::cos(x, y).unwrap(),
            plain::cosine_distance_f32,
        );
        pair_group(
            c,
            "l2sq_f32",
            &a,
            &b,
            |k, x, y| k.l2sq_f32(x, y).unwrap(),
            |x, y| f32::l2sq(x, y).unwrap(),
            plain::l2sq_f32,
        );

        let ah: Vec<f16> = a.iter().map(|&x| f16::from_f32(x)).collect();
        let bh: Vec<f16> = b.iter().map(|&x| f16::from_f32(x)).collect();
        pair_group(
            c,
            "dot_f16",
            &ah,
            &bh,
            |k, x, y| k.dot_f16(x, y).unwrap(),
            |x, y| simsimd::f16::dot(ss_f16(x), ss_f16(y)).unwrap(),
            plain::dot_f16,
        );
        pair_group(
            c,
            "cosine_f16",
            &ah,
            &bh,
            |k, x, y| k.cosine_distance_f16(x, y).unwrap(),
            |x, y| simsimd::f16::cos(ss_f16(x), ss_f16(y)).unwrap(),
            plain::cosine_distance_f16,
        );
        pair_group(
            c,
            "l2sq_f16",
            &ah,
            &bh,
            |k, x, y| k.l2sq_f16(x, y).unwrap(),
            |x, y| simsimd::f16::l2sq(ss_f16(x), ss_f16(y)).unwrap(),
            plain::l2sq_f16,
        );

        let (ai, bi) = (rng.vec_i8(d), rng.vec_i8(d));
        pair_group(
            c,
            "dot_i8",
            &ai,
            &bi,
            |k, x, y| k.dot_i8(x, y).unwrap(),
            |x, y| i8::dot(x, y).unwrap(),
            plain::dot_i8,
        );
        pair_group(
            c,
            "cosine_i8",
            &ai,
            &bi,
            |k, x, y| k.cosine_distance_i8(x, y).unwrap(),
            |x, y| i8::cos(x, y).unwrap(),
            plain::cosine_distance_i8,
        );
        pair_group(
            c,
            "l2sq_i8",
            &ai,
            &bi,
            |k, x, y| k.l2sq_i8(x, y).unwrap(),
            |x, y| i8::l2sq(x, y).unwrap(),
            plain::l2sq_i8,
        );
    }
}

/// One-to-many scan of 100 000 × 768 f32 (307 MB, far beyond cache) with
/// precomputed norms, beside the memory-read baseline over the same buffer.
fn scan(c: &mut Criterion) {
    let (n, d) = (100_000usize, 768usize);
    let mut rng = Rng(11);
    let block = rng.vec_f32(n * d);
    let query = rng.vec_f32(d); // not a row of the block
    let k = best();
    let norms: Vec<f32> = block.chunks(d).map(|r| k.norm_f32(r)).collect();
    let mut out = vec![0f32; n];
    let mut g = c.benchmark_group(format!("scan_f32_{n}x{d}"));
    g.throughput(Throughput::Bytes((n * d * 4) as u64));
    g.sample_size(10);
    g.bench_function("memory_read", |bn| {
        bn.iter(|| memory_read_sum(black_box(&block)))
    });
    for k in levels() {
        if k.isa() == kernels::Isa::Scalar {
            continue;
        }
        let name = k.isa().name();
        g.bench_function(format!("cosine_norms_{name}"), |bn| {
            bn.iter(|| {
                k.distances_f32(
                    Metric::Cosine,
                    black_box(&query),
                    &block,
                    Some(&norms),
                    &mut out,
                )
                .unwrap()
            })
        });
    }
    g.bench_function(format!("dot_{}", k.isa().name()), |bn| {
        bn.iter(|| {
            k.distances_f32(Metric::Dot, black_box(&query), &block, None, &mut out)
                .unwrap()
        })
    });
    g.bench_function(format!("l2_{}", k.isa().name()), |bn| {
        bn.iter(|| {
            k.distances_f32(Metric::L2, black_box(&query), &block, None, &mut out)
                .unwrap()
        })
    });
    g.finish();
}

/// Pairs drawn in random order from a 256 MB pool: every call reads both
/// vectors from DRAM (cold), next to the warm, L1-resident groups above.
fn cold(c: &mut Criterion) {
    let d = 768;
    let pairs = (256 << 20) / (2 * d * 4);
    let mut rng = Rng(13);
    let pool = rng.vec_f32(2 * pairs * d);
    let order: Vec<usize> = {
        let mut o: Vec<usize> = (0..pairs).collect();
        for i in (1..pairs).rev() {
            o.swap(i, rng.next_u64() as usize % (i + 1));
        }
        o
    };
    let pair = |i: usize| {
        let p = order[i % pairs] * 2 * d;
        (&pool[p..p + d], &pool[p + d..p + 2 * d])
    };
    let mut g = c.benchmark_group(format!("cold_dot_f32_d{d}"));
    g.throughput(Throughput::Elements(d as u64));
    let k = best();
    let mut i = 0;
    g.bench_function(k.isa().name(), |bn| {
        bn.iter(|| {
            i += 1;
            let (x, y) = pair(i);
            k.dot_f32(x, y).unwrap()
        })
    });
    g.bench_function("simsimd", |bn| {
        bn.iter(|| {
            i += 1;
            let (x, y) = pair(i);
            f32::dot(x, y).unwrap()
        })
    });
    g.finish();
}

/// Clock calibration: one million dependent additions (one cycle each).
fn clock(c: &mut Criterion) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut g = c.benchmark_group("clock");
        g.throughput(Throughput::Elements(1_000_000));
        g.bench_function("dependent_add_1e6", |bn| {
            bn.iter(|| pocketvec_benches::dependent_adds(black_box(250_000)))
        });
        g.finish();
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = c;
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(700));
    targets = clock, pairs, scan, cold
}
criterion_main!(benches);
