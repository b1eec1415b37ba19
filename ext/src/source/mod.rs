//! Vector sources: where a scan gets its stored vectors from.
//!
//! The virtual table's cursor turns a plan plus xFilter arguments into a
//! [`Search`] (query vector in the table's type, rowid filter, distance
//! filter, k) and hands a [`Collector`] to a [`VectorSource`]. The only
//! source today reads the base table through SQL ([`base_table`]); the index
//! work adds chunked shadow-table storage behind the same trait.

pub mod base_table;
pub mod flat;
pub mod index;
pub mod score;
pub mod screen;
pub mod shadow;

use std::cmp::Ordering;

use kernels::{Metric, TopK};

use crate::vector::{ElemType, Vector};
use crate::vtab::plan::CmpOp;

/// Which rowids a scan may return: `lo..=hi`, and if `set` is given only
/// those (sorted, unique, inside `lo..=hi`).
#[derive(Clone, Debug, PartialEq)]
pub struct RowidFilter {
    pub lo: i64,
    pub hi: i64,
    pub set: Option<Vec<i64>>,
}

impl Default for RowidFilter {
    fn default() -> Self {
        RowidFilter {
            lo: i64::MIN,
            hi: i64::MAX,
            set: None,
        }
    }
}

impl RowidFilter {
    /// No rowid can pass.
    pub fn is_empty(&self) -> bool {
        self.lo > self.hi || self.set.as_ref().is_some_and(|s| s.is_empty())
    }
    /// Intersects with a set of rowids.
    pub fn restrict_to(&mut self, ids: impl IntoIterator<Item = i64>) {
        let mut v: Vec<i64> = ids.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        self.set = Some(match self.set.take() {
            None => v,
            Some(old) => old
                .into_iter()
                .filter(|x| v.binary_search(x).is_ok())
                .collect(),
        });
    }
    /// Whether `id` passes.
    #[inline]
    pub fn admits(&self, id: i64) -> bool {
        id >= self.lo
            && id <= self.hi
            && self
                .set
                .as_ref()
                .is_none_or(|s| s.binary_search(&id).is_ok())
    }
    /// Applies the range bounds to the set, after all constraints are in.
    pub fn finish(&mut self) {
        let (lo, hi) = (self.lo, self.hi);
        if let Some(s) = &mut self.set {
            s.retain(|&x| x >= lo && x <= hi);
        }
    }
}

/// A number as SQLite compares it: integers exactly, reals as f64.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Num {
    Int(i64),
    Real(f64),
}

/// `d` (a distance widened to f64) compared with `x`, exactly like SQLite
/// compares a REAL with an INTEGER.
fn cmp_num(d: f64, x: Num) -> Ordering {
    match x {
        Num::Real(r) => d.partial_cmp(&r).unwrap_or(Ordering::Less),
        Num::Int(i) => {
            const TWO63: f64 = 9_223_372_036_854_775_808.0;
            if d < -TWO63 {
                Ordering::Less
            } else if d >= TWO63 {
                Ordering::Greater
            } else {
                let t = d.trunc();
                match (t as i64).cmp(&i) {
                    Ordering::Equal => (d - t).partial_cmp(&0.0).unwrap_or(Ordering::Equal),
                    o => o,
                }
            }
        }
    }
}

/// The `distance <op> value` constraints of a query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DistanceFilter {
    conds: Vec<(CmpOp, Num)>,
    /// A constraint no row can pass (`distance > 'text'`, `distance < NULL`).
    never: bool,
}

/// The right-hand side of a distance constraint, after numeric affinity.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Rhs {
    Num(Num),
    Null,
    /// TEXT that is not a number, or a BLOB: greater than every number.
    AboveNumbers,
}

impl DistanceFilter {
    pub fn add(&mut self, op: CmpOp, rhs: Rhs) {
        match rhs {
            Rhs::Null => self.never = true,
            Rhs::AboveNumbers => {
                if matches!(op, CmpOp::Gt | CmpOp::Ge) {
                    self.never = true;
                }
            }
            Rhs::Num(n) => self.conds.push((op, n)),
        }
    }
    pub fn never(&self) -> bool {
        self.never
    }
    pub fn is_active(&self) -> bool {
        self.never || !self.conds.is_empty()
    }
    /// Whether a row at distance `d` passes. A NaN distance is NULL in SQL
    /// and passes no comparison.
    #[inline]
    pub fn pass(&self, d: f32) -> bool {
        if self.conds.is_empty() {
            return !self.never;
        }
        if self.never || d.is_nan() {
            return false;
        }
        let d = f64::from(d);
        self.conds.iter().all(|&(op, x)| {
            let o = cmp_num(d, x);
            match op {
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Le => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::Ge => o != Ordering::Less,
            }
        })
    }
    /// Whether some distance in `lo..=hi` may pass (each constraint alone
    /// is met somewhere in the range).
    pub fn range_may_pass(&self, lo: f64, hi: f64) -> bool {
        !self.never
            && self.conds.iter().all(|&(op, x)| match op {
                CmpOp::Lt => cmp_num(lo, x) == Ordering::Less,
                CmpOp::Le => cmp_num(lo, x) != Ordering::Greater,
                CmpOp::Gt => cmp_num(hi, x) == Ordering::Greater,
                CmpOp::Ge => cmp_num(hi, x) != Ordering::Less,
            })
    }
    /// Whether every distance in `lo..=hi` passes.
    pub fn range_sure_pass(&self, lo: f64, hi: f64) -> bool {
        !self.never
            && self.conds.iter().all(|&(op, x)| match op {
                CmpOp::Lt => cmp_num(hi, x) == Ordering::Less,
                CmpOp::Le => cmp_num(hi, x) != Ordering::Greater,
                CmpOp::Gt => cmp_num(lo, x) == Ordering::Greater,
                CmpOp::Ge => cmp_num(lo, x) != Ordering::Less,
            })
    }
}

/// Receives scored rows: applies the distance filter, keeps the k nearest.
pub struct Collector {
    topk: TopK,
    k: usize,
    filter: DistanceFilter,
    scanned: u64,
}

impl Collector {
    /// `k = None` keeps every row.
    pub fn new(k: Option<usize>, filter: DistanceFilter) -> Collector {
        let k = k.unwrap_or(usize::MAX).max(1);
        Collector {
            topk: TopK::new(k).expect("k >= 1"),
            k,
            filter,
            scanned: 0,
        }
    }
    /// An empty collector with the same k and filter (one per scan thread).
    pub fn empty_like(&self) -> Collector {
        Collector {
            topk: TopK::new(self.k).expect("k >= 1"),
            k: self.k,
            filter: self.filter.clone(),
            scanned: 0,
        }
    }
    /// Adds what another collector kept (already filtered).
    pub fn merge(&mut self, other: Collector) {
        self.scanned += other.scanned;
        for (id, d) in other.topk.into_sorted_vec() {
            self.topk.push(id, d);
        }
    }
    /// Rows kept so far.
    pub fn len(&self) -> usize {
        self.topk.len()
    }
    pub fn is_empty(&self) -> bool {
        self.topk.is_empty()
    }
    /// How many rows it keeps at most.
    pub fn capacity(&self) -> usize {
        self.k
    }
    #[inline]
    pub fn push(&mut self, id: i64, d: f32) {
        self.scanned += 1;
        if self.filter.pass(d) {
            self.topk.push(id, d);
        }
    }
    /// The k-th distance kept, once k rows are held.
    pub fn threshold(&self) -> Option<f32> {
        self.topk.threshold()
    }
    /// Counts rows offered elsewhere (screened without being scored here).
    pub fn add_scanned(&mut self, n: u64) {
        self.scanned += n;
    }
    /// Rows offered so far (after rowid filters, before the distance filter).
    pub fn scanned(&self) -> u64 {
        self.scanned
    }
    pub fn into_sorted_vec(self) -> Vec<(i64, f32)> {
        self.topk.into_sorted_vec()
    }
}

/// A k-nearest-neighbour request: one or more query vectors (already in
/// the table's type and dimension) and what every query shares.
pub struct Request<'a> {
    pub queries: &'a [Vector],
    pub metric: Metric,
    pub rowids: &'a RowidFilter,
    pub dist: &'a DistanceFilter,
    /// Rows wanted per query (`None`: every row, nearest first).
    pub n: Option<usize>,
    /// IVF lists to probe (`None`: the table's default).
    pub nprobe: Option<usize>,
    /// Threads for the scan (0: all cores).
    pub threads: usize,
}

/// One search request against a source.
pub struct Search<'a> {
    /// The query, already in the table's element type and dimension.
    pub query: &'a Vector,
    pub metric: Metric,
    pub rowids: &'a RowidFilter,
}

/// Where a virtual table's queries are answered from.
pub trait VectorSource {
    /// Element type and dimension of the stored vectors.
    fn layout(&self) -> (ElemType, usize);
    /// The nearest rows per query (ascending distance, ties by rowid),
    /// filtered by `req.rowids` and `req.dist`. Errors name the offending
    /// row.
    fn search(&mut self, req: &Request<'_>) -> Result<Vec<Vec<(i64, f32)>>, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_filter_matches_sql_semantics() {
        let mut f = DistanceFilter::default();
        assert!(f.pass(f32::NAN), "no filter keeps NaN (NULL) rows");
        f.add(CmpOp::Lt, Rhs::Num(Num::Real(0.5)));
        assert!(f.pass(0.25) && !f.pass(0.5) && !f.pass(f32::NAN));
        f.add(CmpOp::Ge, Rhs::Num(Num::Int(0)));
        assert!(f.pass(0.0) && !f.pass(-0.1));
        let mut g = DistanceFilter::default();
        g.add(CmpOp::Lt, Rhs::AboveNumbers);
        assert!(g.pass(1e30));
        assert!(!g.is_active());
        g.add(CmpOp::Gt, Rhs::AboveNumbers);
        assert!(!g.pass(0.0));
        let mut h = DistanceFilter::default();
        h.add(CmpOp::Le, Rhs::Null);
        assert!(h.never() && !h.pass(0.0));
    }

    #[test]
    fn int_comparison_is_exact() {
        assert_eq!(cmp_num(2.5, Num::Int(2)), Ordering::Greater);
        assert_eq!(cmp_num(-2.5, Num::Int(-2)), Ordering::Less);
        assert_eq!(cmp_num(2.0, Num::Int(2)), Ordering::Equal);
        assert_eq!(cmp_num(1e19, Num::Int(i64::MAX)), Ordering::Greater);
        assert_eq!(
            cmp_num(9.223372036854775e18, Num::Int(i64::MAX)),
            Ordering::Less
        );
    }

    #[test]
    fn rowid_filter_intersects() {
        let mut r = RowidFilter::default();
        r.restrict_to([5, 3, 9, 3]);
        r.restrict_to([9, 3, 4]);
        r.lo = 4;
        r.finish();
        assert_eq!(r.set, Some(vec![9]));
        assert!(!r.is_empty());
        r.hi = 8;
        r.finish();
        assert!(r.is_empty());
    }
}
