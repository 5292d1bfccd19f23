//! Counts what one invocation spends against the platform's per-invocation limits, so a tick can
//! stop before it hits them and operators (and `make bench`) can see the cost per charge.

use std::cell::{Cell, RefCell};

use serde::Serialize;

#[derive(Debug, Default)]
pub struct Meter {
    subrequests: Cell<u32>,
    d1_calls: Cell<u32>,
    d1_queries: Cell<u32>,
    kv_reads: Cell<u32>,
    kv_writes: Cell<u32>,
    r2_ops: Cell<u32>,
    /// SQL statements run in each of the ledger's databases, shard 0 first.
    by_shard: RefCell<Vec<u32>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Outbound fetches (the provider).
    pub subrequests: u32,
    /// Round trips to D1 (a batch is one).
    pub d1_calls: u32,
    /// SQL statements run (a batch counts each).
    pub d1_queries: u32,
    pub kv_reads: u32,
    pub kv_writes: u32,
    /// Reads and writes of the archive bucket.
    pub r2_ops: u32,
}

impl Usage {
    /// Both spendings together.
    pub fn plus(&self, other: &Usage) -> Usage {
        Usage {
            subrequests: self.subrequests + other.subrequests,
            d1_calls: self.d1_calls + other.d1_calls,
            d1_queries: self.d1_queries + other.d1_queries,
            kv_reads: self.kv_reads + other.kv_reads,
            kv_writes: self.kv_writes + other.kv_writes,
            r2_ops: self.r2_ops + other.r2_ops,
        }
    }

    /// What was spent between `earlier` and this reading of the same meter.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            subrequests: self.subrequests.saturating_sub(earlier.subrequests),
            d1_calls: self.d1_calls.saturating_sub(earlier.d1_calls),
            d1_queries: self.d1_queries.saturating_sub(earlier.d1_queries),
            kv_reads: self.kv_reads.saturating_sub(earlier.kv_reads),
            kv_writes: self.kv_writes.saturating_sub(earlier.kv_writes),
            r2_ops: self.r2_ops.saturating_sub(earlier.r2_ops),
        }
    }
}

impl Meter {
    pub fn subrequest(&self) {
        self.subrequests.set(self.subrequests.get() + 1);
    }

    /// A D1 round trip to shard `shard` running `statements` statements (D1 bills statements).
    pub fn d1(&self, shard: usize, statements: u32) {
        self.d1_calls.set(self.d1_calls.get() + 1);
        self.d1_queries.set(self.d1_queries.get() + statements);
        let mut by_shard = self.by_shard.borrow_mut();
        if by_shard.len() <= shard {
            by_shard.resize(shard + 1, 0);
        }
        by_shard[shard] += statements;
    }

    pub fn kv_read(&self) {
        self.kv_reads.set(self.kv_reads.get() + 1);
    }

    pub fn kv_write(&self) {
        self.kv_writes.set(self.kv_writes.get() + 1);
    }

    pub fn r2_op(&self) {
        self.r2_ops.set(self.r2_ops.get() + 1);
    }

    /// Calls that count against the per-invocation subrequest limit. Whether binding calls
    /// count has varied with the platform's rules; counting them keeps the budget safe.
    pub fn platform_calls(&self) -> u32 {
        let u = self.usage();
        u.subrequests + u.d1_calls + u.kv_reads + u.kv_writes + u.r2_ops
    }

    /// Statements run in each of a ledger's `shards` databases, shard 0 first: for an operator
    /// (and `make bench`) to see the load spread. Empty with one database: `d1Queries` says it.
    pub fn queries_by_shard(&self, shards: usize) -> Vec<u32> {
        if shards <= 1 {
            return Vec::new();
        }
        let mut counts = self.by_shard.borrow().clone();
        counts.resize(shards.max(counts.len()), 0);
        counts
    }

    pub fn usage(&self) -> Usage {
        Usage {
            subrequests: self.subrequests.get(),
            d1_calls: self.d1_calls.get(),
            d1_queries: self.d1_queries.get(),
            kv_reads: self.kv_reads.get(),
            kv_writes: self.kv_writes.get(),
            r2_ops: self.r2_ops.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_kind_apart() {
        let m = Meter::default();
        m.subrequest();
        m.subrequest();
        m.d1(0, 3);
        m.kv_read();
        m.r2_op();
        assert_eq!(
            m.usage(),
            Usage {
                subrequests: 2,
                d1_calls: 1,
                d1_queries: 3,
                kv_reads: 1,
                kv_writes: 0,
                r2_ops: 1,
            }
        );
        assert!(m.queries_by_shard(1).is_empty());
        assert_eq!(m.platform_calls(), 5);
    }

    #[test]
    fn what_one_step_spent_is_the_difference_of_two_readings() {
        let m = Meter::default();
        m.d1(0, 2);
        let before = m.usage();
        m.d1(0, 3);
        m.subrequest();
        m.kv_write();
        let step = m.usage().since(&before);
        assert_eq!((step.d1_calls, step.d1_queries), (1, 3));
        assert_eq!((step.subrequests, step.kv_writes, step.kv_reads), (1, 1, 0));
        assert_eq!(before.plus(&step), m.usage());
    }

    #[test]
    fn statements_are_counted_per_shard_and_written_out_only_when_spread() {
        let m = Meter::default();
        m.d1(0, 2);
        assert_eq!(m.queries_by_shard(1), Vec::<u32>::new());
        // An invocation that only used `DB` still says so when there are more.
        assert_eq!(m.queries_by_shard(4), vec![2, 0, 0, 0]);
        m.d1(2, 5);
        assert_eq!(m.queries_by_shard(4), vec![2, 0, 5, 0]);
        assert_eq!(m.usage().d1_queries, 7);
    }
}
