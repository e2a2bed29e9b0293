//! Small in-process caches of rows read on hot paths, bounded, and emptied whenever the
//! rows may have changed (by this process at once, by others through a notice).

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

/// Entries at most; a full cache starts over.
const MAX_ENTRIES: usize = 10_000;

/// A map of answers, emptied by [`Memo::forget_all`]. An answer read before a forget is not
/// stored after it (each read notes the generation it started in).
#[derive(Debug)]
pub(crate) struct Memo<K, V> {
    map: RwLock<HashMap<K, V>>,
    generation: AtomicU64,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            map: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// The generation a read starts in (pass it to [`Memo::put`]).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores an answer read in `generation`, unless a forget happened since.
    pub(crate) fn put<Q>(&self, key: &Q, value: V, generation: u64)
    where
        Q: ToOwned<Owned = K> + ?Sized,
    {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key.to_owned(), value);
    }

    pub(crate) fn forget_all(&self) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }
}
