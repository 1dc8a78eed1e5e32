//! Sharded maps: the pool-wide maps split into independently locked shards.

use super::*;

pub(super) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

const SHARDS: usize = 64;

type Shards<M> = Box<[CachePadded<Mutex<M>>]>;

/// A map split into independently locked shards.
pub(crate) struct Sharded<K, V> {
    pub(super) shards: Shards<FastMap<K, V>>,
    hasher: foldhash::fast::RandomState,
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    pub fn new() -> Self {
        Sharded { shards: (0..SHARDS).map(|_| CachePadded::new(Mutex::new(FastMap::default()))).collect(), hasher: Default::default() }
    }
    pub fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> MutexGuard<'_, FastMap<K, V>> {
        let h = self.hasher.hash_one(key);
        self.shards[(h as usize) % SHARDS].lock()
    }
}

/// The maps every hold touches (request ids, patients), sharded like
/// `Sharded` but probed with a hash the caller computes once: the same hash
/// picks the shard, probes it and (for request ids) the Bloom filter.
pub(crate) struct HashedShards<K, V> {
    pub(super) shards: Shards<hashbrown::HashTable<(K, V)>>,
    hasher: foldhash::fast::RandomState,
}

/// A locked shard of a `HashedShards`.
pub(crate) struct HashedShard<'a, K, V> {
    pub(super) table: MutexGuard<'a, hashbrown::HashTable<(K, V)>>,
    hasher: &'a foldhash::fast::RandomState,
}

impl<K: std::borrow::Borrow<str>, V> HashedShards<K, V> {
    pub fn new() -> Self {
        HashedShards { shards: (0..SHARDS).map(|_| CachePadded::new(Mutex::new(hashbrown::HashTable::new()))).collect(), hasher: Default::default() }
    }
    #[inline]
    pub fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }
    /// The shard of hash `h`. Bits 32.. pick it: the table itself uses the
    /// low bits (bucket) and the top seven (control byte).
    #[inline]
    pub fn lock(&self, h: u64) -> HashedShard<'_, K, V> {
        HashedShard { table: self.shards[(h >> 32) as usize % SHARDS].lock(), hasher: &self.hasher }
    }
}

impl<K: std::borrow::Borrow<str>, V> HashedShard<'_, K, V> {
    #[inline]
    pub fn get(&self, h: u64, key: &str) -> Option<&V> {
        self.table.find(h, |e| e.0.borrow() == key).map(|e| &e.1)
    }
    #[inline]
    pub fn get_mut(&mut self, h: u64, key: &str) -> Option<&mut V> {
        self.table.find_mut(h, |e| e.0.borrow() == key).map(|e| &mut e.1)
    }
    #[inline]
    pub fn entry(&mut self, h: u64, key: &str) -> hashbrown::hash_table::Entry<'_, (K, V)> {
        let hasher = self.hasher;
        self.table.entry(h, |e| e.0.borrow() == key, |e| hasher.hash_one(e.0.borrow()))
    }
    /// The value under `key`, inserted as `V::default()` under `make_key()` if absent.
    #[inline]
    pub fn get_or_default(&mut self, h: u64, key: &str, make_key: impl FnOnce() -> K) -> &mut V
    where
        V: Default,
    {
        &mut self.entry(h, key).or_insert_with(|| (make_key(), V::default())).into_mut().1
    }
    /// Applies `f` to the value under `key`, and removes the entry if `f` says it is no longer needed.
    #[inline]
    pub fn update_or_remove(&mut self, h: u64, key: &str, f: impl FnOnce(&mut V) -> bool) {
        if let Ok(mut o) = self.table.find_entry(h, |e| e.0.borrow() == key) {
            if !f(&mut o.get_mut().1) {
                o.remove();
            }
        }
    }
    pub fn remove(&mut self, h: u64, key: &str) -> Option<(K, V)> {
        self.table.find_entry(h, |e| e.0.borrow() == key).ok().map(|o| o.remove().0)
    }
}
