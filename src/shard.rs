//! A hash map split into shards, each behind its own lock, for the memo
//! maps every pool thread reads and writes during a run; and
//! [`get_or_compute`], a once-cell read that never waits.
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
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

/// The value of `cell`, computed by `f` when it has none yet, without
/// waiting for another thread that is computing it at that moment: both
/// compute, the first value stored is kept and the other dropped. For
/// values that are the same whoever computes them (parses, indexes).
///
/// [`OnceLock::get_or_init`] makes the second thread sleep in the kernel
/// until the first is done, and the first one's wake-up puts it in the
/// waker's run queue: on a VM whose scheduler packs woken threads onto
/// busy vCPUs (the benchmark VM's `kernel.sched_vcpu_pack`) it then waited
/// up to a few milliseconds more while the other vCPU idled, in about one
/// run in eight of the union of `/usr/bin` (ARCHITECTURE.md, thirty-third
/// stop). Computing the value again costs that thread the time it would
/// have waited.
pub fn get_or_compute<T>(cell: &OnceLock<T>, f: impl FnOnce() -> T) -> &T {
    if let Some(v) = cell.get() {
        return v;
    }
    let v = f();
    // `get_or_init` with a value already made: it waits only while another
    // thread stores its own (a move), never while one computes.
    cell.get_or_init(|| v)
}

/// One value per thread of a rayon pool, and one for every thread outside
/// it, each on cache lines of its own: what a thread keeps for itself during
/// a parallel phase, so that what it alone reads and writes stays in its
/// core's cache. Using a thread's own value is one uncontended atomic
/// operation on a line no other core holds.
///
/// The pool's values are made the first time one of its threads asks
/// (asking from outside a pool does not start rayon's global pool). A
/// thread of a larger pool than the first asker's shares the last value;
/// sharing costs only the traffic this type exists to avoid.
#[derive(Debug)]
pub struct PerThread<T> {
    pool: OnceLock<Box<[Padded<Mutex<T>>]>>,
    outside: Padded<Mutex<T>>,
}

impl<T: Default> PerThread<T> {
    /// A default value for each thread.
    pub fn new() -> Self {
        PerThread {
            pool: OnceLock::new(),
            outside: Padded(Mutex::new(T::default())),
        }
    }

    /// Runs `f` on the calling thread's value.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let slot = match rayon::current_thread_index() {
            Some(i) => {
                let pool = get_or_compute(&self.pool, || {
                    (0..rayon::current_num_threads().max(1))
                        .map(|_| Padded(Mutex::new(T::default())))
                        .collect()
                });
                &pool[i.min(pool.len() - 1)]
            }
            None => &self.outside,
        };
        let mut v = slot.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut v)
    }
}

impl<T: Default> Default for PerThread<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A shared value as one thread holds it: an `Arc` of that thread's own
/// around the shared `Arc`, so that cloning and dropping it changes a
/// count no other core uses (the shared count is changed once, when the
/// thread first takes the value).
#[derive(Debug)]
// The two allocations are the point: the outer one's count is the thread's.
#[allow(clippy::redundant_allocation)]
pub struct Held<T>(Arc<Arc<T>>);

impl<T> Held<T> {
    /// `shared`, held by the calling thread.
    pub fn new(shared: Arc<T>) -> Self {
        Held(Arc::new(shared))
    }

    /// The shared `Arc` (cloning it changes the shared count).
    pub fn shared(&self) -> &Arc<T> {
        &self.0
    }

    /// Whether `a` and `b` are one thread's hold (not only one value).
    pub fn same_hold(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T> Clone for Held<T> {
    fn clone(&self) -> Self {
        Held(Arc::clone(&self.0))
    }
}

impl<T> std::ops::Deref for Held<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Shards per map: a power of two.
pub const SHARDS: usize = 16;

type Hasher = foldhash::quality::RandomState;
type Shard<K, V> = HashTable<(K, V)>;
type PaddedShard<K, V> = Padded<RwLock<Shard<K, V>>>;

/// A shard's lock and table on cache lines of their own. Unpadded, a
/// shard (a lock and a table header, 48 bytes) shared its line with its
/// neighbours, and taking any lock, even to read, writes the line: two
/// threads working on different shards passed lines back and forth
/// between their cores. 128 bytes, because x86 cores also fetch the
/// adjacent line of a pair.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Padded<T>(pub T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A `HashMap<K, V>` whose keys are spread over [`SHARDS`] tables by hash.
/// A key is hashed once: bits 32–35 of its hash pick the shard, and the
/// shard's table uses the same hash (its bucket index comes from the low
/// bits, its tag from the top seven, so the shard's keys still differ
/// in both).
#[derive(Debug)]
pub struct ShardedMap<K, V> {
    shards: Box<[PaddedShard<K, V>]>,
    hasher: Hasher,
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
                .map(|_| Padded(RwLock::new(HashTable::with_capacity(each))))
                .collect(),
            hasher: Hasher::default(),
        }
    }

    /// Makes room for about `total` entries in all (a table grown by
    /// doubling has touched twice its final memory, in page faults).
    pub fn reserve(&self, total: usize) {
        let each = total.div_ceil(SHARDS);
        for s in self.shards.iter() {
            let mut s = s.write().unwrap_or_else(|e| e.into_inner());
            let hasher = &self.hasher;
            let more = each.saturating_sub(s.len());
            s.reserve(more, |(k, _)| hasher.hash_one(k));
        }
    }

    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Shard of hash `h`, read-locked (a poisoned lock is used as is: every
    /// write is one insert, so a panic elsewhere cannot leave a table
    /// half-written).
    fn read(&self, h: u64) -> RwLockReadGuard<'_, Shard<K, V>> {
        self.shards[(h >> 32) as usize & (SHARDS - 1)]
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Shard of hash `h`, write-locked.
    fn write(&self, h: u64) -> RwLockWriteGuard<'_, Shard<K, V>> {
        self.shards[(h >> 32) as usize & (SHARDS - 1)]
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the value under `key`, under the shard's read lock.
    pub fn with<Q, R>(&self, key: &Q, f: impl FnOnce(Option<&V>) -> R) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = self.hash(key);
        let shard = self.read(h);
        f(shard.find(h, |(k, _)| k.borrow() == key).map(|(_, v)| v))
    }

    /// A copy of the value under `key`.
    pub fn get_cloned<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.with(key, |v| v.cloned())
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with(key, |v| v.is_some())
    }

    /// Inserts `value` under `key` unless a value is there; returns the
    /// value the map holds afterwards. `key` is built before the lock is
    /// taken, so no allocation happens while it is held (beyond the
    /// table's own growth).
    pub fn get_or_insert(&self, key: K, value: V) -> V
    where
        V: Clone,
    {
        let h = self.hash(&key);
        let mut shard = self.write(h);
        let entry = shard.entry(h, |(k, _)| *k == key, |(k, _)| self.hash(k));
        match entry {
            Entry::Occupied(e) => e.get().1.clone(),
            Entry::Vacant(e) => e.insert((key, value)).get().1.clone(),
        }
    }

    /// Inserts `value` under `key` unless a value is there; whether it
    /// was inserted.
    pub fn insert_new(&self, key: K, value: V) -> bool {
        let h = self.hash(&key);
        let mut shard = self.write(h);
        let entry = shard.entry(h, |(k, _)| *k == key, |(k, _)| self.hash(k));
        match entry {
            Entry::Occupied(_) => false,
            Entry::Vacant(e) => {
                e.insert((key, value));
                true
            }
        }
    }

    /// Inserts `value` under `key`, replacing what was there.
    pub fn insert(&self, key: K, value: V) {
        let h = self.hash(&key);
        let mut shard = self.write(h);
        let entry = shard.entry(h, |(k, _)| *k == key, |(k, _)| self.hash(k));
        match entry {
            Entry::Occupied(mut e) => e.get_mut().1 = value,
            Entry::Vacant(e) => {
                e.insert((key, value));
            }
        }
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

    /// Entries the shards hold room for without growing, together.
    pub fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).capacity())
            .sum()
    }
}

/// Runs `f` with its thread's index on every thread of a new pool of
/// `threads`, all of them at once (none can run another's turn).
#[cfg(test)]
pub(crate) fn on_every_thread_at_once(threads: usize, f: impl Fn(usize) + Sync) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    let barrier = std::sync::Barrier::new(threads);
    pool.broadcast(|ctx| {
        barrier.wait();
        f(ctx.index());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `reserve` gives every shard room for its share, keeps what is in
    /// the map, and never shrinks a shard that already has more room.
    #[test]
    fn reserve_makes_room_in_every_shard() {
        let m: ShardedMap<u32, u32> = ShardedMap::default();
        m.insert(7, 70);
        let caps = |m: &ShardedMap<u32, u32>| -> Vec<usize> {
            m.shards
                .iter()
                .map(|s| s.read().unwrap().capacity())
                .collect()
        };
        m.reserve(1600);
        assert!(caps(&m).iter().all(|&c| c >= 100), "{:?}", caps(&m));
        assert_eq!(m.get_cloned(&7), Some(70));
        let before = caps(&m);
        m.reserve(16);
        assert_eq!(caps(&m), before);
    }

    /// Each shard's lock sits on cache lines of its own: taking one never
    /// writes a line another shard's lock is on.
    #[test]
    fn shards_do_not_share_cache_lines() {
        let m: ShardedMap<u32, u32> = ShardedMap::with_capacity(64);
        let at: Vec<usize> = m
            .shards
            .iter()
            .map(|s| std::ptr::from_ref::<RwLock<Shard<u32, u32>>>(s).addr())
            .collect();
        for w in at.windows(2) {
            assert!(w[1] - w[0] >= 128, "shards {} bytes apart", w[1] - w[0]);
        }
        assert!(at.iter().all(|a| a % 128 == 0), "{at:?}");
    }

    /// Every thread of a pool gets a value of its own, kept between its
    /// calls; a thread outside the pool gets the outside value.
    #[test]
    fn each_pool_thread_has_its_own_value() {
        let per: PerThread<Vec<usize>> = PerThread::new();
        on_every_thread_at_once(3, |i| {
            for _ in 0..5 {
                per.with(|v| v.push(i));
            }
        });
        per.with(|v| v.push(99));
        let slots = per.pool.get().expect("made by the pool's threads");
        assert_eq!(slots.len(), 3);
        for (i, s) in slots.iter().enumerate() {
            assert_eq!(*s.lock().unwrap(), vec![i; 5], "thread {i}");
        }
        assert_eq!(*per.outside.lock().unwrap(), vec![99]);
        assert_eq!(std::mem::align_of::<Padded<Mutex<u8>>>(), 128);
    }

    /// Cloning a [`Held`] value leaves the shared count alone.
    #[test]
    fn held_values_count_for_themselves() {
        let shared = Arc::new(String::from("libc.so.6"));
        let held = Held::new(shared.clone());
        assert_eq!(Arc::strong_count(&shared), 2);
        let copies: Vec<Held<String>> = (0..10).map(|_| held.clone()).collect();
        assert_eq!(
            Arc::strong_count(&shared),
            2,
            "a clone took the shared count"
        );
        assert!(Arc::ptr_eq(copies[9].shared(), &shared));
        assert!(Held::same_hold(&copies[2], &held));
        assert!(!Held::same_hold(&Held::new(shared.clone()), &held));
        assert_eq!(copies[3].as_str(), "libc.so.6");
        drop((held, copies));
        assert_eq!(Arc::strong_count(&shared), 1);
    }

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
        assert!(!m.insert_new(b"x".to_vec(), 8));
        assert!(m.insert_new(b"z".to_vec(), 9));
        m.insert(b"z".to_vec(), 10);
        assert_eq!(m.get_cloned(b"z".as_slice()), Some(10));
        assert_eq!(m.len(), 1002);
        assert!(m.capacity() >= 1002);
        assert_eq!(ShardedMap::<u8, u8>::with_capacity(0).capacity(), 0);
        assert!(ShardedMap::<u8, u8>::with_capacity(100).capacity() >= 100);
        assert!(m.contains_key(b"x".as_slice()));
        assert!(!m.contains_key(b"y".as_slice()));
        // The keys are spread: no shard holds most of them.
        let biggest = m.shards.iter().map(|s| s.read().unwrap().len()).max();
        assert!(biggest.unwrap() < 1001 / 4, "{biggest:?}");
    }

    /// A thread that finds the cell being filled computes its own value
    /// instead of waiting (with `OnceLock::get_or_init` the second thread
    /// here would wait for the first, which waits for the second's answer,
    /// and the test would time out); the first value stored is the one
    /// every caller gets, and a filled cell is not computed again.
    #[test]
    fn a_cell_being_filled_is_not_waited_for() {
        use std::sync::mpsc::channel;
        use std::time::Duration;
        let cell: OnceLock<u32> = OnceLock::new();
        let (go_on, wait) = channel::<()>();
        let (second_done, second) = channel::<u32>();
        let (entered, inside) = channel::<()>();
        let filled = &cell;
        std::thread::scope(|s| {
            let first = s.spawn(move || {
                *super::get_or_compute(filled, || {
                    // Filling, until the second caller has its answer.
                    entered.send(()).ok();
                    wait.recv_timeout(Duration::from_secs(30)).ok();
                    1
                })
            });
            inside.recv().unwrap();
            s.spawn(move || {
                let v = *super::get_or_compute(filled, || 2);
                second_done.send(v).ok();
            });
            let got = second.recv_timeout(Duration::from_secs(10));
            go_on.send(()).ok();
            assert_eq!(got, Ok(2), "the second caller waited for the first");
            assert_eq!(first.join().unwrap(), 2, "the value stored first wins");
        });
        assert_eq!(*super::get_or_compute(&cell, || unreachable!()), 2);
    }
}
