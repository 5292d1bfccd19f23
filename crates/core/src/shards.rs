//! The pure rules of a ledger spread over several D1 databases ("shards").
//!
//! A customer lives on one shard, chosen once by a consistent hash of its reference, and every id
//! minted for it says which shard holds the row, so a lookup by id never has to ask every
//! database. Ids minted before sharding carry no shard and are read as shard 0, which is why
//! shard 0's ids keep the old form.
//!
//! Lists that span shards are merged here: the events feed by a cursor holding one position per
//! shard, and other lists by whatever order they are already sorted in.

use sha2::{Digest, Sha256};

/// The most shards a deployment may configure.
pub const MAX_SHARDS: usize = 128;

/// Length of an id's random part, in lowercase hex digits.
const ID_HEX_LEN: usize = 20;

/// Longest decimal position a feed cursor accepts: `seq` values fit well inside this, and a
/// bound keeps parsing free of overflow without needing to say so.
const CURSOR_MAX_DIGITS: usize = 15;

const CURSOR_PREFIX: &str = "fc1.";

/// Jump consistent hash (Lamping & Veach 2014): bucket in 0..buckets for key; buckets >= 1.
///
/// Chosen because growing from n to n + 1 buckets moves only the keys that now land in the new
/// bucket, so adding a shard never reassigns a customer between existing shards. Zero buckets
/// is read as one, since there is no bucket to answer otherwise.
pub fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    let buckets = i64::from(buckets.max(1));
    let (mut b, mut j) = (-1i64, 0i64);
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2862933555777941757).wrapping_add(1);
        // Exactly the published float arithmetic: any other rounding would give other buckets
        // than every other implementation, and the shard of existing customers would drift.
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

/// A new customer's shard: jump_hash of the first 8 bytes (big-endian u64) of
/// SHA-256(customer_ref), over `shards`.
///
/// `shards` is taken within 1..=MAX_SHARDS: the configuration refuses anything else, and a
/// shard at or past MAX_SHARDS could not be named by an id.
pub fn shard_for_customer(customer_ref: &str, shards: usize) -> usize {
    let digest = Sha256::digest(customer_ref.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let buckets = shards.clamp(1, MAX_SHARDS) as u32;
    jump_hash(u64::from_be_bytes(first), buckets) as usize
}

/// The shard an id names. Ids are `<prefix>_<20 lowercase hex>` (shard 0, and every id made
/// before sharding) or `<prefix>_<k>_<20 hex>` with k in 1..MAX_SHARDS written in decimal
/// without leading zero. Prefixes are lowercase ascii letters. Anything else (malformed, k = 0,
/// leading zero, k >= MAX_SHARDS) returns None.
///
/// The shard part has exactly one spelling per shard, so an id cannot be forged into a second
/// text that names the same row.
pub fn shard_of_id(id: &str) -> Option<usize> {
    let mut parts = id.split('_');
    let prefix = parts.next()?;
    let (shard, random) = match (parts.next()?, parts.next(), parts.next()) {
        (random, None, _) => (0, random),
        (k, Some(random), None) => (parse_shard(k)?, random),
        (_, Some(_), Some(_)) => return None,
    };
    let prefix_ok = !prefix.is_empty() && prefix.bytes().all(|c| c.is_ascii_lowercase());
    let random_ok = random.len() == ID_HEX_LEN
        && random
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    (prefix_ok && random_ok).then_some(shard)
}

/// A shard number as written inside an id: 1..MAX_SHARDS, decimal, no leading zero (shard 0 is
/// written by leaving the part out).
fn parse_shard(text: &str) -> Option<usize> {
    if text.is_empty() || text.starts_with('0') || !text.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // At most three digits can be below MAX_SHARDS; the bound also keeps the parse from
    // overflowing.
    if text.len() > 3 {
        return None;
    }
    let k: usize = text.parse().ok()?;
    (k < MAX_SHARDS).then_some(k)
}

/// The text an id's random part is preceded by in shard `shard`: "" for shard 0, "3_" for
/// shard 3. New ids are `format!("{prefix}_{}{hex}", id_infix(shard))`.
///
/// Shard 0 writes nothing so that its ids look like those made before sharding, which live there.
pub fn id_infix(shard: usize) -> String {
    if shard == 0 {
        String::new()
    } else {
        format!("{shard}_")
    }
}

/// A position in the merged events feed: for each shard, the last sequence number (`seq`,
/// per-database AUTOINCREMENT) already read.
///
/// Times alone cannot be a position: rows of one shard may share a millisecond, and clocks of
/// different writers disagree. Each database's own `seq` is exact within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedCursor {
    /// Index = shard, length = shard count.
    pub positions: Vec<i64>,
}

impl FeedCursor {
    /// Text form used as the feed's `nextCursor` when there is more than one shard: "fc1."
    /// followed by the positions joined by "." in decimal, e.g. "fc1.120.0.57.9".
    pub fn encode(&self) -> String {
        let parts: Vec<String> = self.positions.iter().map(i64::to_string).collect();
        format!("{CURSOR_PREFIX}{}", parts.join("."))
    }

    /// Parses the text form; None unless it starts with "fc1.", has exactly `shards`
    /// non-negative decimal numbers (no signs, no empty parts, at most 15 digits each).
    ///
    /// A cursor made under another shard count is refused rather than stretched: its positions
    /// would be read against the wrong databases.
    pub fn decode(text: &str, shards: usize) -> Option<FeedCursor> {
        let body = text.strip_prefix(CURSOR_PREFIX)?;
        let positions = body
            .split('.')
            .map(|part| {
                let digits_ok = !part.is_empty()
                    && part.len() <= CURSOR_MAX_DIGITS
                    && part.bytes().all(|c| c.is_ascii_digit());
                digits_ok.then(|| part.parse::<i64>().ok()).flatten()
            })
            .collect::<Option<Vec<i64>>>()?;
        (positions.len() == shards).then_some(FeedCursor { positions })
    }
}

/// One row offered to the feed merge: its shard, its time (ms) and its sequence in that shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedKey {
    pub shard: usize,
    pub at: i64,
    pub seq: i64,
}

/// Merges per-shard pages (each already in ascending seq order, each the rows after that
/// shard's position, possibly `limit + 1` of them) into the page of at most `limit` rows to
/// show, in the order (at, shard, seq). Returns the indices chosen as (shard,
/// index_in_that_shard_list) in display order, and whether some row was offered but not taken.
///
/// Each shard's rows are taken strictly in seq order, a prefix of its list, even when a later
/// row has an earlier `at`: the cursor keeps one position per shard, so a row passed over
/// within a shard could never be reached again. Display order is therefore only roughly by
/// time; never skipping a row matters more.
pub fn merge_feed(pages: &[Vec<FeedKey>], limit: usize) -> (Vec<(usize, usize)>, bool) {
    merge_sorted(pages, limit, |a, b| {
        (a.at, a.shard, a.seq) < (b.at, b.shard, b.seq)
    })
}

/// The cursor after a merged page: each shard's position advances to the seq of its last taken
/// row; untaken shards keep `before`'s position.
///
/// A shard without a position in `before` (one the cursor did not know of) starts at 0, which
/// is before every AUTOINCREMENT `seq`.
pub fn advance(
    before: &FeedCursor,
    pages: &[Vec<FeedKey>],
    taken: &[(usize, usize)],
) -> FeedCursor {
    let mut positions = before.positions.clone();
    if positions.len() < pages.len() {
        positions.resize(pages.len(), 0);
    }
    for &(shard, index) in taken {
        if let Some(row) = pages.get(shard).and_then(|page| page.get(index)) {
            // The max, not the last seen, so the cursor cannot move backwards whatever order
            // `taken` comes in.
            positions[shard] = positions[shard].max(row.seq);
        }
    }
    FeedCursor { positions }
}

/// Merges lists that are each already sorted by a key (e.g. (created_at desc, id)), keeping
/// the first `limit` overall; returns (list index, index in list) in merged order and whether
/// more remain. `before(a, b)` says a sorts before b.
///
/// Each list is consumed from its front only, so what is taken from a list is always a prefix
/// of it; on a tie the lower list index goes first, which keeps the result deterministic.
pub fn merge_sorted<T>(
    lists: &[Vec<T>],
    limit: usize,
    before: impl Fn(&T, &T) -> bool,
) -> (Vec<(usize, usize)>, bool) {
    let mut next = vec![0usize; lists.len()];
    let mut merged = Vec::with_capacity(limit.min(lists.iter().map(Vec::len).sum()));
    while merged.len() < limit {
        // A linear scan over at most MAX_SHARDS heads is simpler than a heap and as fast here.
        let mut best: Option<usize> = None;
        for (list, items) in lists.iter().enumerate() {
            let Some(candidate) = items.get(next[list]) else {
                continue;
            };
            if best.is_none_or(|b| before(candidate, &lists[b][next[b]])) {
                best = Some(list);
            }
        }
        let Some(list) = best else { break };
        merged.push((list, next[list]));
        next[list] += 1;
    }
    let more = lists
        .iter()
        .zip(&next)
        .any(|(items, &taken)| taken < items.len());
    (merged, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reproducible stream of well-mixed keys (splitmix64), so the statistical tests see
    /// keys spread like hashes, not the consecutive integers a loop counter would give.
    fn keys(count: usize) -> Vec<u64> {
        let mut state = 0x1234_5678_9abc_def0u64;
        (0..count)
            .map(|_| {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            })
            .collect()
    }

    fn hex20() -> &'static str {
        "0123456789abcdef0123"
    }

    #[test]
    fn jump_hash_matches_the_reference_values() {
        // Golden values of the published algorithm, as also pinned by Guava's consistentHash.
        let golden_100 = [
            0, 55, 62, 8, 45, 59, 86, 97, 82, 59, 73, 37, 17, 56, 86, 21, 90, 37, 38, 83,
        ];
        for (key, want) in golden_100.iter().enumerate() {
            assert_eq!(jump_hash(key as u64, 100), *want, "key {key}");
        }
        assert_eq!(jump_hash(10863919174838991, 11), 6);
        assert_eq!(jump_hash(2016238256797177309, 11), 3);
        assert_eq!(jump_hash(1673758223894951030, 11), 5);
        assert_eq!(jump_hash(2, 100001), 80343);
        assert_eq!(jump_hash(2201, 100001), 22152);
        assert_eq!(jump_hash(2202, 100001), 15018);
        for n in 1..=1000 {
            assert_eq!(jump_hash(0, n), 0);
        }
        for key in keys(100) {
            assert_eq!(jump_hash(key, 1), 0);
            assert_eq!(jump_hash(key, 0), 0);
        }
    }

    #[test]
    fn jump_hash_spreads_keys_evenly() {
        let mut counts = [0usize; 4];
        let all = keys(100_000);
        for &key in &all {
            counts[jump_hash(key, 4) as usize] += 1;
        }
        for count in counts {
            let share = count as f64 / all.len() as f64;
            assert!(
                (share - 0.25).abs() <= 0.05 * 0.25,
                "share {share} of {counts:?}"
            );
        }
    }

    #[test]
    fn jump_hash_moves_only_keys_into_the_new_bucket() {
        let all = keys(100_000);
        for n in 1..MAX_SHARDS as u32 {
            let mut moved = 0usize;
            for &key in &all {
                let (old, new) = (jump_hash(key, n), jump_hash(key, n + 1));
                if old != new {
                    assert_eq!(
                        new,
                        n,
                        "key {key} moved from {old} to {new} going to {} buckets",
                        n + 1
                    );
                    moved += 1;
                }
            }
            let share = moved as f64 / all.len() as f64;
            let expected = 1.0 / f64::from(n + 1);
            assert!(
                (share - expected).abs() <= 0.1 * expected,
                "n={n}: moved {share}, expected {expected}"
            );
        }
    }

    #[test]
    fn customers_get_a_stable_shard_in_range() {
        // Pinned: computed independently from SHA-256 and the reference algorithm. If this
        // changes, existing customers would be looked for on the wrong shard.
        assert_eq!(shard_for_customer("cus_123", 16), 11);
        assert_eq!(shard_for_customer("cus_123", 8), 6);
        assert_eq!(shard_for_customer("alice@example.com", 16), 14);
        assert_eq!(shard_for_customer("", 3), 2);
        for i in 0..2000 {
            let customer = format!("cus_{i}");
            assert_eq!(shard_for_customer(&customer, 1), 0);
            for shards in 1..=MAX_SHARDS {
                let shard = shard_for_customer(&customer, shards);
                assert!(shard < shards);
                assert_eq!(shard, shard_for_customer(&customer, shards));
            }
        }
        // Out-of-range counts never name an unaddressable shard.
        assert_eq!(shard_for_customer("cus_123", 0), 0);
        assert!(shard_for_customer("cus_123", 1000) < MAX_SHARDS);
    }

    #[test]
    fn ids_name_their_shard() {
        let hex = hex20();
        assert_eq!(shard_of_id(&format!("ch_{hex}")), Some(0));
        assert_eq!(shard_of_id(&format!("evt_{hex}")), Some(0));
        assert_eq!(shard_of_id(&format!("sub_15_{hex}")), Some(15));
        assert_eq!(shard_of_id(&format!("sub_127_{hex}")), Some(127));
        assert_eq!(shard_of_id(&format!("co_1_{hex}")), Some(1));
        assert_eq!(shard_of_id(&format!("pm_10_{hex}")), Some(10));
        for shard in 0..MAX_SHARDS {
            let id = format!("re_{}{hex}", id_infix(shard));
            assert_eq!(shard_of_id(&id), Some(shard), "{id}");
        }
        assert_eq!(id_infix(0), "");
        assert_eq!(id_infix(3), "3_");
    }

    #[test]
    fn malformed_ids_name_no_shard() {
        let hex = hex20();
        let refused = [
            format!("ch_0_{hex}"),
            format!("ch_01_{hex}"),
            format!("ch_128_{hex}"),
            format!("ch_999_{hex}"),
            format!("ch_1000_{hex}"),
            format!("ch_18446744073709551616_{hex}"),
            format!("ch_+1_{hex}"),
            format!("ch_-1_{hex}"),
            format!("ch_a_{hex}"),
            format!("ch__{hex}"),
            format!("ch_1_2_{hex}"),
            format!("ch_{}", hex.to_uppercase()),
            format!("ch_1_{}", "0123456789ABCDEF0123"),
            format!("ch_{}", &hex[..19]),
            format!("ch_{hex}0"),
            format!("ch_1_{}", &hex[..19]),
            format!("ch_{}g", &hex[..19]),
            format!("_{hex}"),
            format!("_1_{hex}"),
            format!("Ch_{hex}"),
            format!("c1_{hex}"),
            format!("ch_{hex}_"),
            format!("ch_1_{hex}_"),
            hex.to_string(),
            String::new(),
            "ch".to_string(),
            "ch_".to_string(),
            format!("ch {hex}"),
            format!("ch_١_{hex}"),
        ];
        for id in &refused {
            assert_eq!(shard_of_id(id), None, "{id}");
        }
    }

    #[test]
    fn cursor_round_trips() {
        let cursor = FeedCursor {
            positions: vec![120, 0, 57, 9],
        };
        assert_eq!(cursor.encode(), "fc1.120.0.57.9");
        assert_eq!(FeedCursor::decode("fc1.120.0.57.9", 4), Some(cursor));
        let big = FeedCursor {
            positions: vec![999_999_999_999_999, 1],
        };
        assert_eq!(FeedCursor::decode(&big.encode(), 2), Some(big));
        let one = FeedCursor { positions: vec![7] };
        assert_eq!(FeedCursor::decode(&one.encode(), 1), Some(one));
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let refused = [
            ("fc1.1.2.3", 4),
            ("fc1.1.2.3.4.5", 4),
            ("fc1.1.-1.3.4", 4),
            ("fc1.1.+1.3.4", 4),
            ("fc1.1..3.4", 4),
            ("fc1.1.2.3.", 4),
            ("fc1..1.2.3", 4),
            ("fc1.1.2.x.4", 4),
            ("fc1.1.2.3.4a", 4),
            ("fc1.1. 2.3.4", 4),
            ("fc1.1.2.3.1e3", 4),
            ("fc1.1.2.3.1000000000000000", 4),
            ("1.2.3.4", 4),
            ("fc2.1.2.3.4", 4),
            ("FC1.1.2.3.4", 4),
            ("fc1", 1),
            ("fc1.", 1),
            ("fc1.", 0),
            ("", 1),
        ];
        for (text, shards) in refused {
            assert_eq!(
                FeedCursor::decode(text, shards),
                None,
                "{text:?} over {shards}"
            );
        }
    }

    fn key(shard: usize, at: i64, seq: i64) -> FeedKey {
        FeedKey { shard, at, seq }
    }

    #[test]
    fn feed_merges_by_time_then_shard_then_seq() {
        let pages = vec![
            vec![key(0, 10, 1), key(0, 30, 2), key(0, 30, 3)],
            vec![key(1, 20, 5), key(1, 30, 6)],
            vec![key(2, 5, 9)],
        ];
        let (taken, more) = merge_feed(&pages, 10);
        assert_eq!(taken, vec![(2, 0), (0, 0), (1, 0), (0, 1), (0, 2), (1, 1)]);
        assert!(!more);
    }

    #[test]
    fn feed_never_skips_a_row_within_a_shard() {
        // Shard 0's seq 2 was written with an earlier time than seq 1; it must still wait for
        // seq 1, or the cursor (past seq 2) would lose seq 1 forever.
        let pages = vec![
            vec![key(0, 50, 1), key(0, 10, 2)],
            vec![key(1, 20, 1), key(1, 60, 2)],
        ];
        let (taken, more) = merge_feed(&pages, 10);
        assert_eq!(taken, vec![(1, 0), (0, 0), (0, 1), (1, 1)]);
        assert!(!more);

        let (taken, more) = merge_feed(&pages, 2);
        assert_eq!(taken, vec![(1, 0), (0, 0)]);
        assert!(more);
        for shard in 0..pages.len() {
            let indices: Vec<usize> = taken.iter().filter(|t| t.0 == shard).map(|t| t.1).collect();
            assert_eq!(
                indices,
                (0..indices.len()).collect::<Vec<_>>(),
                "shard {shard}"
            );
        }
    }

    #[test]
    fn feed_respects_the_limit_and_reports_more() {
        // Each shard offered limit + 1 rows: something must remain.
        let limit = 3;
        let pages = vec![
            (1..=4).map(|s| key(0, s * 10, s)).collect::<Vec<_>>(),
            (1..=4).map(|s| key(1, s * 10 + 5, s)).collect::<Vec<_>>(),
        ];
        let (taken, more) = merge_feed(&pages, limit);
        assert_eq!(taken, vec![(0, 0), (1, 0), (0, 1)]);
        assert!(more);

        // Exactly `limit` rows offered in all: the page is full and nothing remains.
        let pages = vec![vec![key(0, 1, 1), key(0, 2, 2)], vec![key(1, 3, 8)]];
        let (taken, more) = merge_feed(&pages, 3);
        assert_eq!(taken.len(), 3);
        assert!(!more);

        let (taken, more) = merge_feed(&pages, 0);
        assert!(taken.is_empty());
        assert!(more);
    }

    #[test]
    fn feed_of_empty_pages_is_empty() {
        assert_eq!(merge_feed(&[], 10), (vec![], false));
        assert_eq!(merge_feed(&[vec![], vec![], vec![]], 10), (vec![], false));
        let pages = vec![vec![], vec![key(1, 7, 3)], vec![]];
        assert_eq!(merge_feed(&pages, 10), (vec![(1, 0)], false));
    }

    #[test]
    fn advance_moves_only_shards_that_gave_rows() {
        let before = FeedCursor {
            positions: vec![100, 200, 300],
        };
        let pages = vec![
            vec![key(0, 10, 101), key(0, 40, 102)],
            vec![],
            vec![key(2, 20, 305), key(2, 30, 306), key(2, 50, 307)],
        ];
        let (taken, more) = merge_feed(&pages, 3);
        assert_eq!(taken, vec![(0, 0), (2, 0), (2, 1)]);
        assert!(more);
        let after = advance(&before, &pages, &taken);
        assert_eq!(after.positions, vec![101, 200, 306]);

        assert_eq!(advance(&before, &pages, &[]), before);

        // A shard the cursor did not know of starts from the beginning.
        let short = FeedCursor {
            positions: vec![100],
        };
        assert_eq!(
            advance(&short, &pages, &[(2, 0)]).positions,
            vec![100, 0, 305]
        );
    }

    #[test]
    fn merge_sorted_interleaves_sorted_lists() {
        // Sorted by (created_at desc, id), as the listing endpoints are.
        let lists = vec![
            vec![(50, "a"), (30, "c"), (10, "e")],
            vec![(40, "b"), (30, "b"), (20, "d")],
            vec![],
        ];
        let before = |x: &(i64, &str), y: &(i64, &str)| (-x.0, x.1) < (-y.0, y.1);
        let (taken, more) = merge_sorted(&lists, 10, before);
        assert_eq!(taken, vec![(0, 0), (1, 0), (1, 1), (0, 1), (1, 2), (0, 2)]);
        assert!(!more);

        let (taken, more) = merge_sorted(&lists, 2, before);
        assert_eq!(taken, vec![(0, 0), (1, 0)]);
        assert!(more);

        // Ties go to the lower list first.
        let ties = vec![vec![1], vec![1], vec![1]];
        let (taken, more) = merge_sorted(&ties, 3, |a: &i32, b: &i32| a < b);
        assert_eq!(taken, vec![(0, 0), (1, 0), (2, 0)]);
        assert!(!more);

        let none: Vec<Vec<i32>> = vec![];
        assert_eq!(merge_sorted(&none, 5, |a, b| a < b), (vec![], false));
    }
}
