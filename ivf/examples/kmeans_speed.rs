//! Throughput of the k-means assignment step (points × centroids
//! multiply-adds per second), e.g. for a 1M × 384, 1024-list training.
//! `cargo run -p pocketvec-ivf --release --example kmeans_speed -- [n] [k] [dim] [threads]`
use ivf::kmeans::{assign_points, Assign};
use std::time::Instant;

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("number"))
        .collect();
    let (n, k, dim, threads) = (
        *a.first().unwrap_or(&65_536),
        *a.get(1).unwrap_or(&1024),
        *a.get(2).unwrap_or(&384),
        *a.get(3).unwrap_or(&2),
    );
    let mut s = 1u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let data: Vec<f32> = (0..n * dim).map(|_| next()).collect();
    let cents: Vec<f32> = (0..k * dim).map(|_| next()).collect();
    let mut l = vec![0u32; n];
    let mut sc = vec![0f32; n];
    let t = Instant::now();
    assign_points(
        kernels::Kernels::detect(),
        &data,
        dim,
        &cents,
        Assign::L2,
        threads,
        &mut l,
        &mut sc,
    )
    .unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "assign {n} × {k} × {dim} on {threads} threads: {s:.3} s, {:.1} GMAC/s",
        (n * k * dim) as f64 / s / 1e9
    );
}
