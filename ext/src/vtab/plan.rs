//! xBestIndex in pure Rust: classify the constraints SQLite offers into a
//! [`Plan`], and encode/decode it through `idxNum`/`idxStr`.
//!
//! Encoding (written down in `ARCHITECTURE.md (ext section)`):
//! - `idxNum` is the plan kind: `1` = exact k-nearest-neighbour scan.
//! - `idxStr` has one two-character token per xFilter argument, in argv
//!   order. The first character names the argument, the second the operator:
//!   `Q=` query vector, `K=` k, `L_` LIMIT, `O_` OFFSET,
//!   `RI` rowid IN (...) read with `sqlite3_vtab_in_first/next`, `R=` rowid =,
//!   `R>` `Rg` `R<` `Rl` rowid >, >=, <, <=, and `D>` `Dg` `D<` `Dl` the
//!   same on distance.

use std::fmt;

/// Columns as SQLite numbers them in `aConstraint[].iColumn`.
pub const COL_ROWID: i32 = -1;
pub const COL_DISTANCE: i32 = 0;
pub const COL_QUERY: i32 = 1;
pub const COL_K: i32 = 2;
pub const COL_NPROBE: i32 = 3;
pub const COL_THREADS: i32 = 4;
pub const COL_QUERIES: i32 = 5;
pub const COL_QUERY_INDEX: i32 = 6;
/// The hidden column named like the table, for FTS5-style commands.
pub const COL_COMMAND: i32 = 7;

/// Column names, in declaration order (the last one is the table's name).
pub const COLUMNS: [&str; 7] = [
    "distance",
    "query",
    "k",
    "nprobe",
    "threads",
    "queries",
    "query_index",
];

/// The declared schema of a table called `name`: `distance`, then hidden
/// argument columns, then the hidden command column named like the table
/// (`INSERT INTO ann(ann) VALUES('optimize')`).
pub fn declare_sql(name: &str) -> Result<String, String> {
    if COLUMNS.iter().any(|c| c.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "pocketvec: a pocketvec table cannot be named \"{name}\" (one of its column names: {})",
            COLUMNS.join(", ")
        ));
    }
    Ok(format!(
        "CREATE TABLE x(distance REAL, query HIDDEN, k HIDDEN, nprobe HIDDEN, threads HIDDEN, \
         queries HIDDEN, query_index HIDDEN, \"{}\" HIDDEN)",
        name.replace('"', "\"\"")
    ))
}

// SQLITE_INDEX_CONSTRAINT_* codes.
pub const OP_EQ: u8 = 2;
pub const OP_GT: u8 = 4;
pub const OP_LE: u8 = 8;
pub const OP_LT: u8 = 16;
pub const OP_GE: u8 = 32;
pub const OP_LIMIT: u8 = 73;
pub const OP_OFFSET: u8 = 74;

/// `idxNum` of the exact scan plan.
pub const PLAN_EXACT_KNN: i32 = 1;

/// Cost of a scan over every stored vector, and of a scan restricted by a
/// rowid set or range. Only the ratios matter to SQLite's planner.
///
/// A plain `rowid = x` is priced like a full scan on purpose: in a join
/// (`ann a JOIN docs d ON a.rowid = d.id`) a cheap price would make SQLite
/// loop over `docs` and probe `ann` once per row, and each probe would
/// return that row whatever `k` says. Priced high, SQLite runs the k-NN scan
/// once as the outer loop and looks the rows up in `docs`.
const COST_FULL_SCAN: f64 = 1e6;
const COST_ROWID_SET: f64 = 1e4;
const COST_ROWID_RANGE: f64 = 1e5;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn from_code(op: u8) -> Option<CmpOp> {
        match op {
            OP_LT => Some(CmpOp::Lt),
            OP_LE => Some(CmpOp::Le),
            OP_GT => Some(CmpOp::Gt),
            OP_GE => Some(CmpOp::Ge),
            _ => None,
        }
    }
    fn token(self) -> char {
        match self {
            CmpOp::Lt => '<',
            CmpOp::Le => 'l',
            CmpOp::Gt => '>',
            CmpOp::Ge => 'g',
        }
    }
    fn from_token(c: char) -> Option<CmpOp> {
        match c {
            '<' => Some(CmpOp::Lt),
            'l' => Some(CmpOp::Le),
            '>' => Some(CmpOp::Gt),
            'g' => Some(CmpOp::Ge),
            _ => None,
        }
    }
}

/// What one xFilter argument is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    Query,
    K,
    Limit,
    Offset,
    /// `rowid IN (...)`, all values in one xFilter call.
    RowidIn,
    /// `rowid = value`.
    RowidEq,
    Rowid(CmpOp),
    Distance(CmpOp),
    /// `nprobe = n` (IVF lists to probe).
    Nprobe,
    /// `threads = n`.
    Threads,
    /// `queries = ?`: several query vectors in one pass.
    Queries,
    /// `ann = 'info'`: one row describing the table (no search).
    Command,
}

impl Arg {
    fn token(self) -> [char; 2] {
        match self {
            Arg::Query => ['Q', '='],
            Arg::K => ['K', '='],
            Arg::Limit => ['L', '_'],
            Arg::Offset => ['O', '_'],
            Arg::RowidIn => ['R', 'I'],
            Arg::RowidEq => ['R', '='],
            Arg::Rowid(op) => ['R', op.token()],
            Arg::Distance(op) => ['D', op.token()],
            Arg::Nprobe => ['N', '='],
            Arg::Threads => ['T', '='],
            Arg::Queries => ['B', '='],
            Arg::Command => ['C', '='],
        }
    }
    fn from_token(a: char, b: char) -> Option<Arg> {
        Some(match (a, b) {
            ('Q', '=') => Arg::Query,
            ('K', '=') => Arg::K,
            ('L', '_') => Arg::Limit,
            ('O', '_') => Arg::Offset,
            ('R', 'I') => Arg::RowidIn,
            ('R', '=') => Arg::RowidEq,
            ('R', c) => Arg::Rowid(CmpOp::from_token(c)?),
            ('D', c) => Arg::Distance(CmpOp::from_token(c)?),
            ('N', '=') => Arg::Nprobe,
            ('T', '=') => Arg::Threads,
            ('B', '=') => Arg::Queries,
            ('C', '=') => Arg::Command,
            _ => return None,
        })
    }
}

/// A query plan chosen by xBestIndex and replayed by xFilter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Exact scan of every stored vector passing the rowid filters, top-k by
    /// distance. `args[i]` describes `argv[i]` of xFilter.
    ExactKnn { args: Vec<Arg> },
}

impl Plan {
    pub fn encode(&self) -> (i32, String) {
        match self {
            Plan::ExactKnn { args } => (
                PLAN_EXACT_KNN,
                args.iter().flat_map(|a| a.token()).collect(),
            ),
        }
    }
    pub fn decode(idx_num: i32, idx_str: &str) -> Result<Plan, String> {
        let bad = || format!("pocketvec internal error: unknown plan ({idx_num}, {idx_str:?})");
        match idx_num {
            PLAN_EXACT_KNN => {
                let chars: Vec<char> = idx_str.chars().collect();
                if chars.len() % 2 != 0 {
                    return Err(bad());
                }
                let args = chars
                    .chunks_exact(2)
                    .map(|c| Arg::from_token(c[0], c[1]))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(bad)?;
                Ok(Plan::ExactKnn { args })
            }
            _ => Err(bad()),
        }
    }
}

/// One entry of `aConstraint`, plus what `sqlite3_vtab_in(.., -1)` said.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub column: i32,
    pub op: u8,
    pub usable: bool,
    /// The constraint is an `IN (...)` that can be read all at once.
    pub is_in: bool,
}

/// One entry of `aOrderBy`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OrderTerm {
    pub column: i32,
    pub desc: bool,
}

/// What the host SQLite supports.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    /// `sqlite3_vtab_in` (3.38+). Without it `rowid =` is left to SQLite, as
    /// an `IN` would then arrive one value per xFilter call.
    pub vtab_in: bool,
}

/// Output of [`best_index`].
#[derive(Clone, Debug, PartialEq)]
pub struct BestIndex {
    /// Per constraint: `(argvIndex, omit)`, argvIndex 0 = not used.
    pub usage: Vec<(i32, bool)>,
    /// Constraint indexes to hand to `sqlite3_vtab_in(.., 1)`.
    pub handle_in: Vec<usize>,
    pub plan: Plan,
    pub order_by_consumed: bool,
    pub cost: f64,
    pub rows: i64,
}

/// The combination offered is unusable (`SQLITE_CONSTRAINT`): a `query =`
/// constraint exists but its value is not available yet (join order).
#[derive(Debug, PartialEq, Eq)]
pub struct Unusable;

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("query constraint not usable in this join order")
    }
}

/// Chooses the plan.
///
/// Consumed (argv + omit): the first usable `query =` and `k =`, rowid `=`,
/// `IN`, `<`, `<=`, `>`, `>=`, and distance `<`, `<=`, `>`, `>=`. Everything
/// else is left to SQLite. LIMIT (and OFFSET) are taken only when every
/// other constraint was consumed and the ORDER BY is absent or consumed:
/// otherwise SQLite filters or re-sorts the rows afterwards and a limit
/// applied inside the scan would return too few or wrong rows.
pub fn best_index(
    cons: &[Constraint],
    order: &[OrderTerm],
    caps: Caps,
) -> Result<BestIndex, Unusable> {
    let mut usage = vec![(0i32, false); cons.len()];
    let mut args: Vec<Arg> = Vec::new();
    let mut handle_in = Vec::new();
    let mut all_consumed = true;
    let mut have_query = false;
    let mut query_unusable = false;
    let mut have_k = false;
    let mut have_nprobe = false;
    let mut have_threads = false;
    let mut have_queries = false;
    let mut rowid_set = false;
    let mut rowid_range = false;
    let mut limit = None;
    let mut offset = None;

    for (i, c) in cons.iter().enumerate() {
        let is_limit = c.op == OP_LIMIT || c.op == OP_OFFSET;
        if !c.usable {
            if (c.column == COL_QUERY || c.column == COL_QUERIES) && c.op == OP_EQ {
                query_unusable = true;
            }
            if !is_limit {
                all_consumed = false;
            }
            continue;
        }
        let arg = match (c.column, c.op) {
            (_, OP_LIMIT) => {
                limit.get_or_insert(i);
                None
            }
            (_, OP_OFFSET) => {
                offset.get_or_insert(i);
                None
            }
            (COL_QUERY, OP_EQ) if !have_query => {
                have_query = true;
                Some(Arg::Query)
            }
            (COL_K, OP_EQ) if !have_k => {
                have_k = true;
                Some(Arg::K)
            }
            (COL_NPROBE, OP_EQ) if !have_nprobe => {
                have_nprobe = true;
                Some(Arg::Nprobe)
            }
            (COL_THREADS, OP_EQ) if !have_threads => {
                have_threads = true;
                Some(Arg::Threads)
            }
            (COL_QUERIES, OP_EQ) if !have_queries => {
                have_queries = true;
                Some(Arg::Queries)
            }
            (COL_COMMAND, OP_EQ) => {
                // `WHERE ann = 'info'`: nothing else is pushed down.
                let mut usage = vec![(0i32, false); cons.len()];
                usage[i] = (1, true);
                return Ok(BestIndex {
                    usage,
                    handle_in: Vec::new(),
                    plan: Plan::ExactKnn {
                        args: vec![Arg::Command],
                    },
                    order_by_consumed: false,
                    cost: 1.0,
                    rows: 1,
                });
            }
            (COL_ROWID, OP_EQ) if c.is_in => {
                handle_in.push(i);
                rowid_set = true;
                Some(Arg::RowidIn)
            }
            (COL_ROWID, OP_EQ) if caps.vtab_in => Some(Arg::RowidEq),
            (COL_ROWID, op) => CmpOp::from_code(op).map(|o| {
                rowid_range = true;
                Arg::Rowid(o)
            }),
            (COL_DISTANCE, op) => CmpOp::from_code(op).map(Arg::Distance),
            _ => None,
        };
        match arg {
            Some(a) => {
                args.push(a);
                usage[i] = (args.len() as i32, true);
            }
            None if is_limit => {}
            None => all_consumed = false,
        }
    }
    if query_unusable && !have_query && !have_queries {
        return Err(Unusable);
    }

    // `ORDER BY distance` or `ORDER BY distance, rowid` (the scan's tie
    // order), both ascending.
    const DIST: OrderTerm = OrderTerm {
        column: COL_DISTANCE,
        desc: false,
    };
    const ROWID: OrderTerm = OrderTerm {
        column: COL_ROWID,
        desc: false,
    };
    const QI: OrderTerm = OrderTerm {
        column: COL_QUERY_INDEX,
        desc: false,
    };
    // A batch returns its rows by query, nearest first within each; LIMIT
    // then counts rows of every query together, so it stays with SQLite.
    let order_by_consumed = if have_queries {
        order == [QI] || order == [QI, DIST] || order == [QI, DIST, ROWID]
    } else {
        order == [DIST] || order == [DIST, ROWID]
    };
    if let Some(li) = limit.filter(|_| !have_queries) {
        if all_consumed && (order.is_empty() || order_by_consumed) {
            args.push(Arg::Limit);
            // omit stays false: SQLite still counts LIMIT itself, harmlessly.
            usage[li] = (args.len() as i32, false);
            if let Some(oi) = offset {
                args.push(Arg::Offset);
                // omit must stay false: an omitted OFFSET makes SQLite leave
                // the skipping to the table, and the scan returns
                // LIMIT + OFFSET rows for SQLite to skip.
                usage[oi] = (args.len() as i32, false);
            }
        }
    }

    let cost = if rowid_set {
        COST_ROWID_SET
    } else if rowid_range {
        COST_ROWID_RANGE
    } else {
        COST_FULL_SCAN
    };
    let rows = if have_k || args.contains(&Arg::Limit) {
        10
    } else {
        100_000
    };
    Ok(BestIndex {
        usage,
        handle_in,
        plan: Plan::ExactKnn { args },
        order_by_consumed,
        cost,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps { vtab_in: true };

    fn c(column: i32, op: u8) -> Constraint {
        Constraint {
            column,
            op,
            usable: true,
            is_in: false,
        }
    }
    fn by_distance() -> Vec<OrderTerm> {
        vec![OrderTerm {
            column: COL_DISTANCE,
            desc: false,
        }]
    }

    #[test]
    fn seed_form_takes_limit() {
        let b = best_index(&[c(0, OP_LIMIT)], &by_distance(), CAPS).unwrap();
        assert_eq!(
            b.plan,
            Plan::ExactKnn {
                args: vec![Arg::Limit]
            }
        );
        assert_eq!(b.usage, vec![(1, false)]);
        assert!(b.order_by_consumed);
    }

    #[test]
    fn stateless_form_consumes_query_k_limit_offset() {
        let cons = [
            c(COL_QUERY, OP_EQ),
            c(COL_K, OP_EQ),
            c(0, OP_LIMIT),
            c(0, OP_OFFSET),
        ];
        let b = best_index(&cons, &by_distance(), CAPS).unwrap();
        assert_eq!(
            b.plan,
            Plan::ExactKnn {
                args: vec![Arg::Query, Arg::K, Arg::Limit, Arg::Offset]
            }
        );
        assert_eq!(b.usage, vec![(1, true), (2, true), (3, false), (4, false)]);
    }

    #[test]
    fn limit_is_dropped_when_something_is_left_to_sqlite() {
        // `distance = 0.5` is not consumed: SQLite filters afterwards.
        let cons = [c(COL_QUERY, OP_EQ), c(COL_DISTANCE, OP_EQ), c(0, OP_LIMIT)];
        let b = best_index(&cons, &by_distance(), CAPS).unwrap();
        assert_eq!(
            b.plan,
            Plan::ExactKnn {
                args: vec![Arg::Query]
            }
        );
        assert_eq!(b.usage[2], (0, false));
        // An unusable constraint is evaluated by SQLite too.
        let mut cons = [c(COL_QUERY, OP_EQ), c(COL_ROWID, OP_GT), c(0, OP_LIMIT)];
        cons[1].usable = false;
        let b = best_index(&cons, &by_distance(), CAPS).unwrap();
        assert_eq!(
            b.plan,
            Plan::ExactKnn {
                args: vec![Arg::Query]
            }
        );
    }

    #[test]
    fn limit_is_dropped_when_sqlite_sorts() {
        let order = [OrderTerm {
            column: COL_ROWID,
            desc: false,
        }];
        let b = best_index(&[c(COL_QUERY, OP_EQ), c(0, OP_LIMIT)], &order, CAPS).unwrap();
        assert_eq!(
            b.plan,
            Plan::ExactKnn {
                args: vec![Arg::Query]
            }
        );
        assert!(!b.order_by_consumed);
        let desc = [OrderTerm {
            column: COL_DISTANCE,
            desc: true,
        }];
        let b = best_index(&[c(0, OP_LIMIT)], &desc, CAPS).unwrap();
        assert!(!b.order_by_consumed);
        assert_eq!(b.plan, Plan::ExactKnn { args: vec![] });
        // No ORDER BY at all: rows come nearest first, LIMIT applies.
        let b = best_index(&[c(0, OP_LIMIT)], &[], CAPS).unwrap();
        assert_eq!(
            b.plan,
            Plan::ExactKnn {
                args: vec![Arg::Limit]
            }
        );
    }

    #[test]
    fn filters_are_consumed() {
        let mut inc = c(COL_ROWID, OP_EQ);
        inc.is_in = true;
        let cons = [
            inc,
            c(COL_ROWID, OP_GE),
            c(COL_DISTANCE, OP_LT),
            c(COL_K, OP_EQ),
        ];
        let b = best_index(&cons, &[], CAPS).unwrap();
        assert_eq!(
            b.plan,
            Plan::ExactKnn {
                args: vec![
                    Arg::RowidIn,
                    Arg::Rowid(CmpOp::Ge),
                    Arg::Distance(CmpOp::Lt),
                    Arg::K
                ]
            }
        );
        assert_eq!(b.handle_in, vec![0]);
        assert!(b.cost < COST_FULL_SCAN);
    }

    #[test]
    fn old_hosts_leave_rowid_eq_to_sqlite() {
        let b = best_index(
            &[c(COL_ROWID, OP_EQ), c(0, OP_LIMIT)],
            &[],
            Caps { vtab_in: false },
        )
        .unwrap();
        assert_eq!(b.plan, Plan::ExactKnn { args: vec![] });
    }

    #[test]
    fn batch_keeps_limit_with_sqlite() {
        let cons = [c(COL_QUERIES, OP_EQ), c(COL_K, OP_EQ), c(0, OP_LIMIT)];
        let order = [
            OrderTerm {
                column: COL_QUERY_INDEX,
                desc: false,
            },
            OrderTerm {
                column: COL_DISTANCE,
                desc: false,
            },
        ];
        let b = best_index(&cons, &order, CAPS).unwrap();
        assert_eq!(
            b.plan,
            Plan::ExactKnn {
                args: vec![Arg::Queries, Arg::K]
            }
        );
        assert!(b.order_by_consumed);
        // ORDER BY distance alone is not the batch order.
        let b = best_index(&cons, &by_distance(), CAPS).unwrap();
        assert!(!b.order_by_consumed);
    }

    #[test]
    fn declared_columns() {
        assert!(declare_sql("ann")
            .unwrap()
            .ends_with("query_index HIDDEN, \"ann\" HIDDEN)"));
        assert!(declare_sql("Distance").is_err());
        assert!(declare_sql("a\"b").unwrap().contains("\"a\"\"b\" HIDDEN"));
    }

    #[test]
    fn unusable_query_rejects_the_plan() {
        let mut q = c(COL_QUERY, OP_EQ);
        q.usable = false;
        assert_eq!(best_index(&[q], &[], CAPS), Err(Unusable));
    }

    #[test]
    fn plans_round_trip() {
        let all = vec![
            Arg::Query,
            Arg::K,
            Arg::Limit,
            Arg::Offset,
            Arg::RowidIn,
            Arg::RowidEq,
            Arg::Rowid(CmpOp::Lt),
            Arg::Rowid(CmpOp::Le),
            Arg::Rowid(CmpOp::Gt),
            Arg::Rowid(CmpOp::Ge),
            Arg::Distance(CmpOp::Lt),
            Arg::Distance(CmpOp::Le),
            Arg::Distance(CmpOp::Gt),
            Arg::Distance(CmpOp::Ge),
            Arg::Nprobe,
            Arg::Threads,
            Arg::Queries,
            Arg::Command,
        ];
        let p = Plan::ExactKnn { args: all };
        let (n, s) = p.encode();
        assert_eq!(n, 1);
        assert_eq!(s, "Q=K=L_O_RIR=R<RlR>RgD<DlD>DgN=T=B=C=");
        assert_eq!(Plan::decode(n, &s).unwrap(), p);
        assert!(Plan::decode(2, "").is_err());
        assert!(Plan::decode(1, "Q").is_err());
        assert!(Plan::decode(1, "Zz").is_err());
    }
}
