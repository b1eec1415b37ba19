//! The speed goals, measured interleaved. On a shared machine the
//! background load drifts within seconds, so criterion's one-function-after-
//! another medians can compare a quiet moment with a busy one. Here every
//! comparison runs its contenders round-robin — a batch of calls of each, 31
//! rounds — and reports the median over rounds of the per-round ratio, plus
//! each contender's median time. Same data, same call shape (one pair per
//! call, norms not precomputed) as the criterion groups in `kernels.rs`.
#![deny(unstable_features)]

use std::hint::black_box;
use std::time::Instant;

use half::f16;
use kernels::{available_isas, Isa, Kernels, Metric};
use pocketvec_benches::{memory_read_sum, Placed, Rng};
use simsimd::SpatialSimilarity;

const ROUNDS: usize = 31;
const WARMUP: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Runs `calls` calls of `f` and returns the mean ns per call. Generic, so
/// the closure is inlined into its timing loop exactly as in criterion.
#[inline(always)]
fn batch(f: &mut impl FnMut(), calls: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..calls {
        f();
    }
    t.elapsed().as_nanos() as f64 / calls as f64
}

/// Runs the contenders round-robin (WARMUP unrecorded rounds, then ROUNDS
/// recorded ones, each a batch of about `$target` ns per contender) and
/// evaluates to a [`Rounds`].
macro_rules! interleaved {
    ($target:expr; $($f:expr),+ $(,)?) => {{
        let mut fns = ($($f,)+);
        let _ = &mut fns;
        interleaved!(@run $target; fns; $($f),+)
    }};
    (@run $target:expr; $fns:ident; $f0:expr, $f1:expr, $f2:expr) => {{
        let (mut a, mut b, mut c_) = $fns;
        run_rounds(
            $target,
            &mut [&mut |c| batch(&mut a, c), &mut |c| batch(&mut b, c), &mut |c| batch(&mut c_, c)],
        )
    }};
    (@run $target:expr; $fns:ident; $f0:expr, $f1:expr) => {{
        let (mut a, mut b) = $fns;
        run_rounds($target, &mut [&mut |c| batch(&mut a, c), &mut |c| batch(&mut b, c)])
    }};
    (@run $target:expr; $fns:ident; $f0:expr, $f1:expr, $f2:expr, $f3:expr, $f4:expr, $f5:expr) => {{
        let (mut a, mut b, mut c_, mut d, mut e, mut f) = $fns;
        run_rounds(
            $target,
            &mut [
                &mut |c| batch(&mut a, c),
                &mut |c| batch(&mut b, c),
                &mut |c| batch(&mut c_, c),
                &mut |c| batch(&mut d, c),
                &mut |c| batch(&mut e, c),
                &mut |c| batch(&mut f, c),
            ],
        )
    }};
}

/// The round-robin driver behind `interleaved!`: each entry runs a batch of
/// the given number of calls and returns ns per call.
fn run_rounds(target_ns: f64, fns: &mut [&mut dyn FnMut(usize) -> f64]) -> Rounds {
    let calls: Vec<usize> = fns
        .iter_mut()
        .map(|f| ((target_ns / f(10).max(1.0)) as usize).max(1))
        .collect();
    let mut times = vec![Vec::with_capacity(ROUNDS); fns.len()];
    // WARMUP unrecorded rounds first (caches, branch predictors, clock ramp).
    for round in 0..WARMUP + ROUNDS {
        for (j, f) in fns.iter_mut().enumerate() {
            let t = f(calls[j]);
            if round >= WARMUP {
                times[j].push(t);
            }
        }
    }
    Rounds(times)
}

/// Per-contender, per-round ns per call.
struct Rounds(Vec<Vec<f64>>);

impl Rounds {
    /// Median ns per call of contender `j`.
    fn ns(&self, j: usize) -> f64 {
        median(self.0[j].clone())
    }
    /// How many times faster `fast` is than `slow`: the median over rounds
    /// of `time[slow] / time[fast]` measured in the same round.
    fn speedup(&self, fast: usize, slow: usize) -> f64 {
        median(
            (0..ROUNDS)
                .map(|r| self.0[slow][r] / self.0[fast][r])
                .collect(),
        )
    }
}

/// The clock, from the fastest of many runs of a dependent-add chain.
fn clock_ghz() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut best = f64::INFINITY;
        for _ in 0..200 {
            let t = Instant::now();
            black_box(pocketvec_benches::dependent_adds(black_box(25_000)));
            best = best.min(t.elapsed().as_nanos() as f64);
        }
        Some(100_000.0 / best)
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

fn ss_f16(x: &[f16]) -> &[simsimd::f16] {
    // SAFETY: both types are `#[repr(transparent)]` over u16; same length and lifetime.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), x.len()) }
}

struct Table(Vec<[String; 5]>);

impl Table {
    fn row(&mut self, goal: String, measured: f64, target: f64, note: String) {
        let status = if measured >= target { "met" } else { "NOT met" };
        self.0.push([
            goal,
            format!("{measured:.2}×"),
            format!("≥ {target}×"),
            status.into(),
            note,
        ]);
    }
}

fn main() {
    let ghz = clock_ghz();
    let levels: Vec<Kernels> = available_isas()
        .into_iter()
        .map(|i| Kernels::new(i).unwrap())
        .collect();
    let best = *levels.last().unwrap();
    let bn = best.isa().name();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut t = Table(Vec::new());
    let mut times: Vec<String> = Vec::new();
    let cpe = |ns: f64, d: usize| {
        ghz.map(|g| format!("{:.3} cycles/elem", ns * g / d as f64))
            .unwrap_or_default()
    };
    let mut rng = Rng(7);

    for d in [128usize, 384, 768, 1536] {
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

        if d >= 768 {
            let m = interleaved!(50_000.0;
                || {
                    black_box(f32::dot(black_box(x), black_box(y)));
                },
                || {
                    black_box(best.dot_f32(black_box(x), black_box(y)).unwrap());
                },
            );
            times.push(format!(
                "dot_f32 d={d}: simsimd {:.1} ns, {bn} {:.1} ns",
                m.ns(0),
                m.ns(1)
            ));
            t.row(
                format!("f32 dot d={d}, {bn} vs simsimd"),
                m.speedup(1, 0),
                1.25,
                cpe(m.ns(1), d) + " (L1 load ceiling 0.125)",
            );
        }
        // f32 cosine, f16 cosine and int8 cosine in one interleaved set, so
        // the int8-vs-f32 ratio is same-run too.
        let m = interleaved!(50_000.0;
            || {
                black_box(<f32 as SpatialSimilarity>::cos(black_box(x), black_box(y)));
            },
            || {
                black_box(best.cosine_distance_f32(black_box(x), black_box(y)).unwrap());
            },
            || {
                black_box(simsimd::f16::cos(ss_f16(black_box(xh)), ss_f16(black_box(yh))));
            },
            || {
                black_box(best.cosine_distance_f16(black_box(xh), black_box(yh)).unwrap());
            },
            || {
                black_box(i8::cos(black_box(xi), black_box(yi)));
            },
            || {
                black_box(best.cosine_distance_i8(black_box(xi), black_box(yi)).unwrap());
            },
        );
        times.push(format!(
            "cosine d={d}: f32 simsimd {:.1} / {bn} {:.1} ns; f16 simsimd {:.1} / {bn} {:.1} ns; i8 simsimd {:.1} / {bn} {:.1} ns",
            m.ns(0),
            m.ns(1),
            m.ns(2),
            m.ns(3),
            m.ns(4),
            m.ns(5)
        ));
        if d >= 768 {
            t.row(
                format!("f32 cosine d={d}, {bn} vs simsimd"),
                m.speedup(1, 0),
                1.25,
                cpe(m.ns(1), d),
            );
        }
        t.row(
            format!("f16 cosine d={d}, {bn} vs simsimd"),
            m.speedup(3, 2),
            2.0,
            cpe(m.ns(3), d),
        );
        t.row(
            format!("int8 cosine d={d}, {bn} vs simsimd"),
            m.speedup(5, 4),
            1.3,
            cpe(m.ns(5), d),
        );
        t.row(
            format!("int8 cosine d={d} vs our f32 cosine ({bn}), elements/s"),
            m.speedup(5, 1),
            2.0,
            ghz.map(|g| {
                format!(
                    "per call: int8 {:.0}, f32 {:.0} cycles",
                    m.ns(5) * g,
                    m.ns(1) * g
                )
            })
            .unwrap_or_default(),
        );
    }

    // f32 dot d=768: each SIMD level against our scalar level.
    {
        let mut rng = Rng(7);
        let _ = rng.vec_f32(128 * 2 + 384 * 2);
        let (a, b) = (rng.vec_f32(768), rng.vec_f32(768));
        let (pa, pb) = (Placed::new(&a, false), Placed::new(&b, false));
        let (x, y) = (pa.get(), pb.get());
        let scalar = Kernels::new(Isa::Scalar).unwrap();
        for k in levels.iter().filter(|k| k.isa() != Isa::Scalar) {
            let m = interleaved!(50_000.0;
                || {
                    black_box(scalar.dot_f32(black_box(x), black_box(y)).unwrap());
                },
                || {
                    black_box(k.dot_f32(black_box(x), black_box(y)).unwrap());
                },
                || {
                    black_box(pocketvec_benches::plain::dot_f32(black_box(x), black_box(y)));
                },
            );
            let name = k.isa().name();
            times.push(format!(
                "dot_f32 d=768: scalar level {:.1} ns, {name} {:.1} ns, plain one-accumulator loop {:.1} ns ({name} {:.1}× faster)",
                m.ns(0),
                m.ns(1),
                m.ns(2),
                m.speedup(1, 2)
            ));
            t.row(
                format!("f32 dot d=768, {name} vs our scalar level"),
                m.speedup(1, 0),
                6.0,
                ghz.map(|_| format!("scalar {}, {name} {}", cpe(m.ns(0), 768), cpe(m.ns(1), 768)))
                    .unwrap_or_default(),
            );
        }
    }

    // One-to-many scan of 100 000 × 768 f32 with precomputed norms.
    {
        let (n, d) = (100_000usize, 768usize);
        let mut rng = Rng(11);
        let block = rng.vec_f32(n * d);
        let q = rng.vec_f32(d);
        let norms: Vec<f32> = block.chunks(d).map(|r| best.norm_f32(r)).collect();
        let mut out = vec![0f32; n];
        let m = interleaved!(1.0;
            || {
                black_box(memory_read_sum(black_box(&block)));
            },
            || {
                best.distances_f32(Metric::Cosine, black_box(&q), &block, Some(&norms), &mut out).unwrap();
            },
        );
        let gbs = |ns: f64| (n * d * 4) as f64 / ns;
        times.push(format!(
            "scan {n}x{d}: memory-read baseline {:.2} ms ({:.1} GB/s), cosine with norms {:.2} ms ({:.1} GB/s)",
            m.ns(0) / 1e6,
            gbs(m.ns(0)),
            m.ns(1) / 1e6,
            gbs(m.ns(1))
        ));
        t.row(
            format!("one-to-many {n}×{d} f32 cosine with norms ({bn}) vs memory-read baseline"),
            m.speedup(1, 0),
            0.8,
            String::new(),
        );
    }

    println!(
        "### Speed goals, measured interleaved ({ROUNDS} rounds, median of per-round ratios)\n"
    );
    if let Some(g) = ghz {
        println!(
            "Clock {:.0} MHz (fastest dependent-add chain); load average at start: {}",
            g * 1000.0,
            load.trim()
        );
    }
    println!();
    println!("| goal | measured | target | status | note |");
    println!("|---|---:|---:|---|---|");
    for r in &t.0 {
        println!("| {} |", r.join(" | "));
    }
    println!("\nMedian times per call:\n");
    for s in times {
        println!("- {s}");
    }
}
