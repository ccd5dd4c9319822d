//! Which rows of a global batch each rank takes.

/// The rows `[start, end)` of a batch of `n` that rank `rank` of `size` takes: contiguous shards
/// in rank order whose lengths differ by at most one (the first `n % size` ranks take one more).
/// Concatenating the shards of ranks `0..size` gives `0..n` in order, so gathered per-row results
/// come back in the original order. A rank may get an empty shard when `n < size`.
pub fn shard_range(n: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let size = size.max(1);
    let rank = rank.min(size - 1);
    let (base, extra) = (n / size, n % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// Length of [`shard_range`].
pub fn shard_len(n: usize, rank: usize, size: usize) -> usize {
    shard_range(n, rank, size).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_order() {
        for n in 0..40 {
            for size in 1..7 {
                let mut next = 0;
                for r in 0..size {
                    let s = shard_range(n, r, size);
                    assert_eq!(s.start, next, "n {n} size {size} rank {r}");
                    next = s.end;
                    let len = s.len();
                    assert!(len == n / size || len == n / size + 1);
                }
                assert_eq!(next, n);
            }
        }
        assert_eq!(shard_range(10, 0, 3), 0..4);
        assert_eq!(shard_range(10, 2, 3), 7..10);
    }
}
