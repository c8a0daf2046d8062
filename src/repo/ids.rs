//! Compact in-memory sets of 32-byte ids (blob ids, pack names): sorted
//! vectors of raw ids, 32 bytes an id, instead of hash sets of hex strings
//! (about 100 bytes an id). What prune and sync keep for a whole
//! repository.

use super::pack::BlobId;

/// Decodes a 64-character hex id.
pub fn parse_hex(s: &str) -> Option<BlobId> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Collects ids (with repeats, in any order) and becomes an [`IdSet`]. It
/// sorts and removes duplicates whenever its vector is full, so repeats
/// cost memory only between two compactions.
#[derive(Debug, Default)]
pub struct IdSetBuilder {
    ids: Vec<BlobId>,
}

impl IdSetBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, id: BlobId) {
        // Full: compact first, and grow only when that freed less than a
        // quarter (so the vector stays within about 2.7 times the distinct
        // ids, instead of holding every repeat).
        if self.ids.len() == self.ids.capacity() && self.ids.len() >= 1024 {
            self.compact();
            let cap = self.ids.capacity();
            if self.ids.len() > cap - cap / 4 {
                self.ids.reserve_exact(cap);
            }
        }
        self.ids.push(id);
    }

    pub fn extend<I: IntoIterator<Item = BlobId>>(&mut self, ids: I) {
        for id in ids {
            self.push(id);
        }
    }

    fn compact(&mut self) {
        self.ids.sort_unstable();
        self.ids.dedup();
    }

    /// The set (its vector keeps any spare capacity: shrinking it would
    /// copy, a higher peak than the spare room).
    pub fn build(mut self) -> IdSet {
        self.compact();
        IdSet { ids: self.ids }
    }
}

/// A sorted set of distinct ids: 32 bytes an id, lookups by binary search,
/// and a dense rank (`0..len`) for side tables such as bit sets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IdSet {
    ids: Vec<BlobId>,
}

impl IdSet {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The position of `id` in sorted order, if it is in the set.
    pub fn rank(&self, id: &BlobId) -> Option<usize> {
        self.ids.binary_search(id).ok()
    }

    pub fn contains(&self, id: &BlobId) -> bool {
        self.rank(id).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = &BlobId> {
        self.ids.iter()
    }

    /// Adds ids (sorted and deduplicated again).
    pub fn insert_all<I: IntoIterator<Item = BlobId>>(&mut self, more: I) {
        self.ids.extend(more);
        self.ids.sort_unstable();
        self.ids.dedup();
    }
}

impl FromIterator<BlobId> for IdSet {
    fn from_iter<I: IntoIterator<Item = BlobId>>(iter: I) -> Self {
        let mut b = IdSetBuilder::new();
        b.extend(iter);
        b.build()
    }
}

/// Which pack (by a caller's slot number) holds each indexed blob: sorted
/// `(id, slot)` pairs, 36 bytes a blob. Where an id was pushed more than
/// once, the lowest slot wins (callers number packs in reading order, so
/// that is the first one read).
#[derive(Debug, Default)]
pub struct BlobTable {
    entries: Vec<(BlobId, u32)>,
}

impl BlobTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, id: BlobId, slot: u32) {
        self.entries.push((id, slot));
    }

    /// Sorts and drops repeated ids; call once after the last push.
    pub fn finish(&mut self) {
        self.entries.sort_unstable();
        self.entries.dedup_by_key(|(id, _)| *id);
        self.entries.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The slot of `id` (after [`finish`](Self::finish)).
    pub fn get(&self, id: &BlobId) -> Option<u32> {
        self.entries
            .binary_search_by(|(e, _)| e.cmp(id))
            .ok()
            .map(|i| self.entries[i].1)
    }
}

/// One bit per element of an [`IdSet`] (by [`IdSet::rank`]).
#[derive(Debug, Clone)]
pub struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    pub fn new(len: usize) -> Self {
        BitSet {
            words: vec![0; len.div_ceil(64)],
        }
    }

    pub fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    pub fn get(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> BlobId {
        let mut b = [0u8; 32];
        // Big-endian in the first bytes: the numeric order is the byte order.
        b[..4].copy_from_slice(&n.to_be_bytes());
        b[31] = (n % 251) as u8;
        b
    }

    #[test]
    fn builder_sorts_and_removes_repeats_across_compactions() {
        let mut b = IdSetBuilder::new();
        // Enough pushes to compact several times, each id three times, in
        // descending order.
        for _ in 0..3 {
            for n in (0..5000u32).rev() {
                b.push(id(n));
            }
        }
        let set = b.build();
        assert_eq!(set.len(), 5000);
        let all: Vec<BlobId> = set.iter().copied().collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
        for n in 0..5000 {
            assert_eq!(set.rank(&id(n)), Some(n as usize));
        }
        assert!(!set.contains(&id(5000)));
        assert!(!set.contains(&[0xff; 32]));
    }

    #[test]
    fn lookups_at_the_boundaries() {
        let set: IdSet = [id(10), id(20), id(30)].into_iter().collect();
        assert_eq!(set.rank(&id(10)), Some(0));
        assert_eq!(set.rank(&id(30)), Some(2));
        assert_eq!(set.rank(&id(9)), None);
        assert_eq!(set.rank(&id(31)), None);
        assert_eq!(set.rank(&[0; 32]), None);
        let empty = IdSet::default();
        assert!(empty.is_empty());
        assert!(!empty.contains(&[0; 32]));
        let mut grown = set.clone();
        grown.insert_all([id(25), id(10), id(5)]);
        assert_eq!(grown.len(), 5);
        assert_eq!(grown.rank(&id(5)), Some(0));
        assert_eq!(grown.rank(&id(25)), Some(3));
    }

    #[test]
    fn hex_ids_round_trip_and_bad_ones_are_refused() {
        let i = id(77);
        assert_eq!(parse_hex(&hex::encode(i)), Some(i));
        assert_eq!(parse_hex("ab"), None);
        assert_eq!(parse_hex(&"zz".repeat(32)), None);
        assert_eq!(parse_hex(&"ab".repeat(33)), None);
    }

    #[test]
    fn blob_table_first_slot_wins() {
        let mut t = BlobTable::new();
        for n in (0..3000u32).rev() {
            t.push(id(n), n % 7 + 1);
        }
        // Repeats in later slots and in an earlier one.
        t.push(id(5), 9);
        t.push(id(6), 0);
        t.finish();
        assert_eq!(t.len(), 3000);
        assert_eq!(t.get(&id(5)), Some(6));
        assert_eq!(t.get(&id(6)), Some(0));
        assert_eq!(t.get(&id(0)), Some(1));
        assert_eq!(t.get(&id(2999)), Some(2999 % 7 + 1));
        assert_eq!(t.get(&id(3000)), None);
        assert!(BlobTable::new().get(&id(1)).is_none());
    }

    #[test]
    fn bit_set_by_rank() {
        let mut bits = BitSet::new(130);
        for i in [0, 63, 64, 129] {
            bits.set(i);
        }
        for i in 0..130 {
            assert_eq!(bits.get(i), [0, 63, 64, 129].contains(&i), "bit {i}");
        }
    }
}
