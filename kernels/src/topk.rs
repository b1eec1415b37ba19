//! Bounded top-k selection.
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::Error;

/// Top-k selection with a bounded max-heap: O(n log k) for n pushes and
/// memory proportional to the number kept (k itself is never preallocated,
/// so any k ≥ 1 is fine).
///
/// Order: ascending distance, ties broken by ascending id; NaN sorts after
/// every number (including +∞), and −0.0 equals +0.0.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Entry>,
}

#[derive(Copy, Clone, Debug)]
struct Entry {
    dist: f32,
    id: i64,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // `canonical` leaves only +0.0 and positive quiet NaN, for which
        // `total_cmp` is the documented order.
        self.dist
            .total_cmp(&other.dist)
            .then(self.id.cmp(&other.id))
    }
}

/// Maps −0.0 to +0.0 and every NaN to the positive quiet NaN.
#[inline(always)]
fn canonical(d: f32) -> f32 {
    if d.is_nan() {
        f32::NAN
    } else {
        d + 0.0
    }
}

/// An empty selector with `k = 1`, for buffers set up before `k` is known;
/// [`TopK::reset`] chooses `k`.
impl Default for TopK {
    fn default() -> TopK {
        TopK {
            k: 1,
            heap: BinaryHeap::new(),
        }
    }
}

impl TopK {
    /// A selector keeping the `k` nearest; `Err(ZeroK)` if `k == 0`.
    pub fn new(k: usize) -> Result<TopK, Error> {
        if k == 0 {
            return Err(Error::ZeroK);
        }
        Ok(TopK {
            k,
            heap: BinaryHeap::new(),
        })
    }

    /// Offers one candidate.
    #[inline]
    pub fn push(&mut self, id: i64, dist: f32) {
        let e = Entry {
            dist: canonical(dist),
            id,
        };
        if self.heap.len() < self.k {
            self.heap.push(e);
        } else if let Some(mut top) = self.heap.peek_mut() {
            if e < *top {
                *top = e;
            }
        }
    }

    /// The current k-th smallest distance (a candidate must not be larger
    /// to enter), once k candidates are held.
    pub fn threshold(&self) -> Option<f32> {
        if self.heap.len() == self.k {
            self.heap.peek().map(|e| e.dist)
        } else {
            None
        }
    }

    /// How many candidates are held (at most k).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Starts over with `k` (`Err(ZeroK)` if `k == 0`), keeping the heap's
    /// buffer, so a selector reused from query to query stops allocating.
    pub fn reset(&mut self, k: usize) -> Result<(), Error> {
        if k == 0 {
            return Err(Error::ZeroK);
        }
        self.k = k;
        self.heap.clear();
        Ok(())
    }

    /// Moves the kept `(id, distance)` pairs into `out` (cleared first),
    /// nearest first, and leaves the selector empty with its buffer kept
    /// (the same order as [`TopK::into_sorted_vec`]).
    pub fn drain_sorted_into(&mut self, out: &mut Vec<(i64, f32)>) {
        let mut sorted = std::mem::take(&mut self.heap).into_sorted_vec();
        out.clear();
        out.extend(sorted.iter().map(|e| (e.id, e.dist)));
        sorted.clear();
        self.heap = BinaryHeap::from(sorted);
    }

    /// The kept `(id, distance)` pairs, nearest first.
    pub fn into_sorted_vec(self) -> Vec<(i64, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|e| (e.id, e.dist))
            .collect()
    }
}

/// The `k` nearest `(id, distance)` pairs of parallel `ids`/`dists`, in
/// [`TopK`] order.
pub fn top_k(ids: &[i64], dists: &[f32], k: usize) -> Result<Vec<(i64, f32)>, Error> {
    if ids.len() != dists.len() {
        return Err(Error::LengthMismatch {
            expected: ids.len(),
            found: dists.len(),
        });
    }
    let mut t = TopK::new(k)?;
    for (&id, &d) in ids.iter().zip(dists) {
        t.push(id, d);
    }
    Ok(t.into_sorted_vec())
}
