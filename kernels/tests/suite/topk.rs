//! Top-k against a full sort: random data with many ties, every k from 1 to
//! n (and beyond), NaN last.
use kernels::{top_k, Error, TopK};

use crate::common::Rng;

/// The documented order: ascending distance (NaN last, -0 == +0), ties by id.
fn full_sort(ids: &[i64], dists: &[f32]) -> Vec<(i64, f32)> {
    let mut v: Vec<(i64, f32)> = ids.iter().copied().zip(dists.iter().copied()).collect();
    v.sort_by(|a, b| {
        let key = |d: f32| if d.is_nan() { (1, 0.0) } else { (0, d) };
        let (ka, kb) = (key(a.1), key(b.1));
        ka.0.cmp(&kb.0)
            .then(ka.1.partial_cmp(&kb.1).unwrap())
            .then(a.0.cmp(&b.0))
    });
    v
}

fn same(got: &[(i64, f32)], want: &[(i64, f32)]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.0 == w.0 && (g.1 == w.1 || (g.1.is_nan() && w.1.is_nan())))
}

#[test]
fn equals_full_sort_for_every_k_with_ties() {
    let mut rng = Rng::new(50);
    for n in [1usize, 2, 5, 17, 64, 200] {
        for round in 0..4 {
            // Few distinct values so ties are everywhere; ids shuffled and negative too.
            let dists: Vec<f32> = (0..n)
                .map(|_| match rng.below(12) {
                    0 => f32::NAN,
                    1 => -0.0,
                    2 => 0.0,
                    3 => f32::INFINITY,
                    v => (v as f32 - 6.0) * 0.5,
                })
                .collect();
            let mut ids: Vec<i64> = (0..n as i64).map(|i| i * 7 - 40).collect();
            for i in (1..n).rev() {
                ids.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let sorted = full_sort(&ids, &dists);
            for k in 1..=n + 2 {
                let got = top_k(&ids, &dists, k).unwrap();
                let want = &sorted[..k.min(n)];
                assert!(
                    same(&got, want),
                    "n={n} round={round} k={k}:\n got {got:?}\nwant {want:?}"
                );
                let mut t = TopK::new(k).unwrap();
                assert!(t.is_empty());
                for (&id, &d) in ids.iter().zip(&dists) {
                    t.push(id, d);
                }
                assert_eq!(t.len(), k.min(n));
                let threshold = t.threshold();
                if k <= n {
                    let w = want[k - 1].1;
                    assert!(threshold.is_some_and(|t| t == w || (t.is_nan() && w.is_nan())));
                } else {
                    assert_eq!(threshold, None);
                }
                assert!(same(&t.into_sorted_vec(), want));
            }
        }
    }
}

/// One selector reused through `reset` and `drain_sorted_into` (as a
/// per-connection scratch does) answers every k like a fresh one.
#[test]
fn reused_selector_equals_full_sort() {
    let mut rng = Rng::new(51);
    let mut t = TopK::default();
    let mut out = vec![(99i64, 1.0f32)];
    assert_eq!(t.reset(0), Err(Error::ZeroK));
    for round in 0..40 {
        let n = 1 + rng.below(150) as usize;
        let dists: Vec<f32> = (0..n)
            .map(|_| match rng.below(10) {
                0 => f32::NAN,
                1 => -0.0,
                v => (v as f32 - 5.0) * 0.25,
            })
            .collect();
        let ids: Vec<i64> = (0..n as i64).map(|i| (i * 13) % 101 - 50).collect();
        let k = 1 + rng.below(n as u64 + 3) as usize;
        t.reset(k).unwrap();
        assert!(t.is_empty());
        for (&id, &d) in ids.iter().zip(&dists) {
            t.push(id, d);
        }
        t.drain_sorted_into(&mut out);
        let sorted = full_sort(&ids, &dists);
        let want = &sorted[..k.min(n)];
        assert!(
            same(&out, want),
            "round {round} n={n} k={k}:
 got {out:?}
want {want:?}"
        );
        assert!(t.is_empty(), "drained");
    }
}

#[test]
fn errors_and_large_k() {
    assert_eq!(TopK::new(0).err(), Some(Error::ZeroK));
    assert_eq!(top_k(&[1], &[1.0], 0), Err(Error::ZeroK));
    assert_eq!(
        top_k(&[1, 2], &[1.0], 1),
        Err(Error::LengthMismatch {
            expected: 2,
            found: 1
        })
    );
    // No preallocation of k: a huge k costs nothing up front.
    let mut t = TopK::new(usize::MAX).unwrap();
    t.push(3, 0.5);
    t.push(1, 0.5);
    assert_eq!(t.into_sorted_vec(), vec![(1, 0.5), (3, 0.5)]);
}
