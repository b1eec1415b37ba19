//! The C API entry points (`libpocketvec.so`, loaded with dlopen; the capi
//! crate is staticlib/cdylib only, so it cannot be linked as Rust): pairwise
//! distances, one-to-many distances, top-k, conversions, status messages,
//! with arbitrary lengths, NULL pointers, misaligned and overlapping
//! buffers. Checks: no crash; a status is one of the documented values;
//! on success the results equal the f64 reference; on failure the outputs
//! are untouched.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use libloading::{Library, Symbol};
use pocketvec_fuzz::{distance, tolerance, Metric};

fn lib() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(|| {
        let path = std::env::var("POCKETVEC_CAPI_SO").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/release/libpocketvec.so"
            )
            .to_string()
        });
        // SAFETY: loading pocketvec's own C library; its initialisers only
        // set up Rust's runtime.
        unsafe { Library::new(&path) }
            .unwrap_or_else(|e| panic!("load {path} (set POCKETVEC_CAPI_SO): {e}"))
    })
}

type Pair = unsafe extern "C" fn(*const f32, usize, *const f32, usize, *mut f32) -> i32;
type Dists = unsafe extern "C" fn(
    i32,
    *const f32,
    usize,
    *const f32,
    usize,
    *const f32,
    usize,
    *mut f32,
    usize,
) -> i32;
type TopK = unsafe extern "C" fn(
    i32,
    *const f32,
    usize,
    *const f32,
    usize,
    *const i64,
    usize,
    usize,
    *mut i64,
    *mut f32,
    usize,
    *mut usize,
) -> i32;
type ToF16 = unsafe extern "C" fn(*const f32, usize, *mut u16, usize) -> i32;
type Quant = unsafe extern "C" fn(*const f32, usize, *mut i8, usize, *mut f32) -> i32;
type Msg = unsafe extern "C" fn(i32, *mut *const std::ffi::c_char) -> i32;

fn sym<T>(name: &[u8]) -> Symbol<'static, T> {
    // SAFETY: the types above are the header's prototypes.
    unsafe { lib().get(name) }.expect("symbol exported")
}

#[derive(Arbitrary, Debug)]
struct Case {
    op: u8,
    metric: i32,
    dim: u8,
    /// element offset into the buffers (misalignment is tested through
    /// byte offsets in `shift`)
    values: Vec<i16>,
    null_mask: u8,
    len_fuzz: [u8; 4],
    shift: u8,
    k: u8,
}

const PANIC: i32 = 15;

fuzz_target!(|c: Case| {
    let vals: Vec<f32> = c.values.iter().map(|&x| f32::from(x) / 64.0).collect();
    let dim = 1 + (c.dim % 16) as usize;
    // a byte buffer that can hand out misaligned f32 pointers
    let mut bytes = vec![0u8; vals.len() * 4 + 8];
    let shift = (c.shift % 4) as usize;
    for (i, x) in vals.iter().enumerate() {
        bytes[shift + i * 4..shift + i * 4 + 4].copy_from_slice(&x.to_le_bytes());
    }
    let base = if c.null_mask & 1 != 0 {
        std::ptr::null()
    } else {
        bytes[shift..].as_ptr() as *const f32
    };
    let n = vals.len();
    let lf = |i: usize| -> usize {
        match c.len_fuzz[i] {
            255 => usize::MAX,
            254 => usize::MAX / 4 + 1,
            x => (x as usize) % (n + 2),
        }
    };
    let valid = |s: i32| (0..=14).contains(&s);
    match c.op % 5 {
        0 => {
            // pairwise f32 on the first and second half
            let half = n / 2;
            let (a, b) = (&vals[..half], &vals[half..2 * half]);
            let names: [(&[u8], Metric, bool); 5] = [
                (b"pocketvec_dot_f32", Metric::Dot, true),
                (b"pocketvec_cosine_distance_f32", Metric::Cosine, false),
                (b"pocketvec_l2_f32", Metric::L2, false),
                (b"pocketvec_cosine_f32", Metric::Cosine, true),
                (b"pocketvec_l2sq_f32", Metric::L2, true),
            ];
            for (i, (name, m, _)) in names.iter().enumerate() {
                let f: Symbol<Pair> = sym(name);
                let mut out = f32::NAN;
                let (pa, la) = if c.null_mask & 2 != 0 {
                    (std::ptr::null(), lf(0))
                } else {
                    (a.as_ptr(), a.len())
                };
                let (pb, lb) = if c.null_mask & 4 != 0 {
                    (b.as_ptr(), lf(1))
                } else {
                    (b.as_ptr(), b.len())
                };
                let lb = lb.min(b.len()); // never claim more than the buffer holds
                let la = if pa.is_null() { la } else { la.min(a.len()) };
                // SAFETY: lengths never exceed the buffers (or the pointer is NULL).
                let s = unsafe { f(pa, la, pb, lb, &mut out) };
                assert!(valid(s), "status {s}");
                // finite values, equal non-zero lengths, aligned non-NULL pointers: must succeed
                assert_eq!(
                    s == 0,
                    !pa.is_null() && la == lb && la > 0,
                    "status {s} for lengths {la}/{lb}"
                );
                if s == 0 {
                    let (a, b) = (&a[..la], &b[..lb]);
                    let want = match i {
                        0 => -distance(Metric::Dot, a, b),
                        3 => 1.0 - distance(Metric::Cosine, a, b),
                        4 => distance(Metric::L2, a, b).powi(2),
                        _ => distance(*m, a, b),
                    };
                    let eps = tolerance(*m, a, b)
                        * if i == 4 {
                            4.0 * (1.0 + want.sqrt())
                        } else {
                            1.0
                        };
                    assert!(
                        (f64::from(out) - want).abs() <= eps,
                        "{} {out} vs {want}",
                        String::from_utf8_lossy(name)
                    );
                } else {
                    assert!(out.is_nan(), "output written on failure");
                }
            }
        }
        1 | 2 => {
            // one-to-many distances / top-k over a block of rows
            let rows = n / dim;
            let q = &vals[..dim.min(n)];
            let block_len = if c.null_mask & 8 != 0 {
                lf(2)
            } else {
                rows * dim
            };
            let block_len = block_len.min(n.saturating_sub(0));
            let mut out = vec![f32::NAN; rows + 1];
            let out_len = if c.null_mask & 16 != 0 {
                lf(3).min(out.len())
            } else {
                rows
            };
            if c.op % 5 == 1 {
                let f: Symbol<Dists> = sym(b"pocketvec_distances_f32");
                // SAFETY: every length is within its buffer.
                let s = unsafe {
                    f(
                        c.metric,
                        q.as_ptr(),
                        q.len(),
                        base,
                        block_len.min(n),
                        std::ptr::null(),
                        0,
                        out.as_mut_ptr(),
                        out_len,
                    )
                };
                assert!(valid(s), "status {s}");
                if s == 0 {
                    let m = match c.metric {
                        0 => Metric::Cosine,
                        1 => Metric::L2,
                        2 => Metric::Dot,
                        x => panic!("metric {x} accepted"),
                    };
                    assert_eq!(block_len % q.len(), 0);
                    for r in 0..block_len / q.len() {
                        let row = &vals[r * q.len()..(r + 1) * q.len()];
                        let want = distance(m, q, row);
                        assert!(
                            (f64::from(out[r]) - want).abs() <= tolerance(m, q, row),
                            "row {r}: {} vs {want}",
                            out[r]
                        );
                    }
                } else {
                    assert!(out.iter().all(|x| x.is_nan()), "output written on failure");
                }
            } else {
                let f: Symbol<TopK> = sym(b"pocketvec_top_k_f32");
                let ids: Vec<i64> = (0..rows as i64).map(|i| 1000 - i).collect();
                let k = c.k as usize % (rows + 2);
                let mut out_ids = vec![i64::MIN; k + 1];
                let mut count = usize::MAX;
                // SAFETY: every length is within its buffer.
                let s = unsafe {
                    f(
                        c.metric,
                        q.as_ptr(),
                        q.len(),
                        base,
                        block_len.min(n),
                        ids.as_ptr(),
                        ids.len(),
                        k,
                        out_ids.as_mut_ptr(),
                        out.as_mut_ptr(),
                        out_len.min(k + 1).min(out.len()),
                        &mut count,
                    )
                };
                assert!(valid(s), "status {s}");
                if s == 0 {
                    let m = match c.metric {
                        0 => Metric::Cosine,
                        1 => Metric::L2,
                        2 => Metric::Dot,
                        x => panic!("metric {x} accepted"),
                    };
                    let nrows = block_len / q.len();
                    let mut all: Vec<(i64, f64)> = (0..nrows)
                        .map(|r| {
                            (
                                ids[r],
                                distance(m, q, &vals[r * q.len()..(r + 1) * q.len()]),
                            )
                        })
                        .collect();
                    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                    all.truncate(k);
                    assert_eq!(count, all.len(), "top-k count");
                    let eps = (0..nrows)
                        .map(|r| tolerance(m, q, &vals[r * q.len()..(r + 1) * q.len()]))
                        .fold(1e-6, f64::max);
                    let got: Vec<(i64, f64)> = (0..count)
                        .map(|i| (out_ids[i], f64::from(out[i])))
                        .collect();
                    let reference = |id: i64| {
                        ids.iter()
                            .position(|&x| x == id)
                            .filter(|&r| r < nrows)
                            .map(|r| distance(m, q, &vals[r * q.len()..(r + 1) * q.len()]))
                    };
                    pocketvec_fuzz::check_knn(&all, &got, &reference, eps, "pocketvec_top_k_f32");
                } else {
                    assert!(
                        out_ids.iter().all(|&x| x == i64::MIN),
                        "ids written on failure"
                    );
                }
            }
        }
        3 => {
            // conversions: f32 -> f16 and int8 quantisation
            let f: Symbol<ToF16> = sym(b"pocketvec_f32_to_f16");
            let mut dst = vec![0xFFFFu16; n + 1];
            let dl = if c.null_mask & 2 != 0 {
                lf(0).min(dst.len())
            } else {
                n
            };
            // SAFETY: lengths within buffers.
            let s = unsafe { f(base, n, dst.as_mut_ptr(), dl) };
            assert!(valid(s), "status {s}");
            if s == 0 {
                for (x, h) in vals.iter().zip(&dst) {
                    assert_eq!(half::f16::from_f32(*x).to_bits(), *h, "f16 of {x}");
                }
            }
            let f: Symbol<Quant> = sym(b"pocketvec_quantize_i8");
            let mut q = vec![99i8; n + 1];
            let mut scale = f32::NAN;
            // SAFETY: lengths within buffers.
            let s = unsafe { f(base, n, q.as_mut_ptr(), dl.min(q.len()), &mut scale) };
            assert!(valid(s), "status {s}");
            if s == 0 {
                let max = vals.iter().fold(0f32, |m, x| m.max(x.abs()));
                for (x, &qi) in vals.iter().zip(&q) {
                    let back = f32::from(qi) * scale;
                    assert!(
                        (back - x).abs() <= scale * 0.5 + 1e-6 * max,
                        "int8 {x} -> {qi} * {scale}"
                    );
                }
            } else {
                assert!(scale.is_nan(), "scale written on failure");
            }
        }
        _ => {
            let f: Symbol<Msg> = sym(b"pocketvec_status_message");
            let mut p: *const std::ffi::c_char = std::ptr::null();
            // SAFETY: out pointer is valid.
            let s = unsafe { f(c.metric, &mut p) };
            if (0..=PANIC).contains(&c.metric) {
                assert_eq!(s, 0);
                // SAFETY: a static NUL-terminated string on success.
                assert!(!unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes().is_empty());
            } else {
                assert_ne!(s, 0, "unknown status {} has a message", c.metric);
            }
        }
    }
});
