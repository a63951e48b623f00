//! A hash map split into shards, each behind its own lock, for the memo
//! maps every pool thread reads and writes during a run.
//!
//! Owns no I/O and no policy: only the locking. One map behind one lock
//! made the two pool threads of a large run wait for each other about
//! twenty times a run, each time sleeping in the kernel for as long as a
//! wake-up takes (tens of microseconds on a virtual machine): the writer
//! was inside an allocation or a first touch of the table's memory (a page
//! fault, several microseconds) longer than a waiter spins. With
//! [`SHARDS`] locks, two threads meet on one only when their keys fall in
//! the same shard.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Shards per map: a power of two.
pub const SHARDS: usize = 16;

type Hasher = foldhash::quality::RandomState;

/// A `HashMap<K, V>` whose keys are spread over [`SHARDS`] maps by hash.
#[derive(Debug)]
pub struct ShardedMap<K, V> {
    shards: Box<[RwLock<HashMap<K, V, Hasher>>]>,
    /// Picks the shard; independent of the shards' own hashers, so a
    /// shard's keys are not alike in the bits its table uses.
    pick: Hasher,
}

impl<K: Hash + Eq, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    /// An empty map with room for about `total` entries.
    pub fn with_capacity(total: usize) -> Self {
        let each = total.div_ceil(SHARDS);
        ShardedMap {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::with_capacity_and_hasher(each, Hasher::default())))
                .collect(),
            pick: Hasher::default(),
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &RwLock<HashMap<K, V, Hasher>> {
        let h = self.pick.hash_one(key);
        &self.shards[(h >> 32) as usize & (SHARDS - 1)]
    }

    /// The shard of `key`, read-locked (a poisoned lock is used as is:
    /// every write is one insert, so a panic elsewhere cannot leave a map
    /// half-written).
    pub fn read<Q: Hash + ?Sized>(&self, key: &Q) -> RwLockReadGuard<'_, HashMap<K, V, Hasher>>
    where
        K: Borrow<Q>,
    {
        self.shard(key).read().unwrap_or_else(|e| e.into_inner())
    }

    /// The shard of `key`, write-locked.
    pub fn write<Q: Hash + ?Sized>(&self, key: &Q) -> RwLockWriteGuard<'_, HashMap<K, V, Hasher>>
    where
        K: Borrow<Q>,
    {
        self.shard(key).write().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the value under `key`.
    pub fn get_cloned<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        V: Clone,
    {
        self.read(key).get(key).cloned()
    }

    /// Whether `key` is present.
    pub fn contains_key<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.read(key).contains_key(key)
    }

    /// Inserts `value` under `key` unless a value is there; returns the
    /// value the map holds afterwards. `key` is built before the lock is
    /// taken, so no allocation happens while it is held.
    pub fn get_or_insert(&self, key: K, value: V) -> V
    where
        V: Clone,
    {
        self.write(&key).entry(key).or_insert(value).clone()
    }

    /// Inserts `value` under `key`, replacing what was there.
    pub fn insert(&self, key: K, value: V) {
        self.write(&key).insert(key, value);
    }

    /// Number of entries (locks each shard in turn).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_one_map() {
        let m: ShardedMap<Vec<u8>, usize> = ShardedMap::with_capacity(64);
        for i in 0..1000usize {
            m.insert(i.to_string().into_bytes(), i);
        }
        assert_eq!(m.len(), 1000);
        for i in 0..1000usize {
            assert_eq!(m.get_cloned(i.to_string().as_bytes()), Some(i));
        }
        assert_eq!(m.get_or_insert(b"5".to_vec(), 99), 5);
        assert_eq!(m.get_or_insert(b"x".to_vec(), 7), 7);
        assert!(m.contains_key(b"x".as_slice()));
        assert!(!m.contains_key(b"y".as_slice()));
        // The keys are spread: no shard holds most of them.
        let biggest = m.shards.iter().map(|s| s.read().unwrap().len()).max();
        assert!(biggest.unwrap() < 1001 / 4, "{biggest:?}");
    }
}
