//! Sets and counters for profile state.
//!
//! A full day has tens of thousands of host x window profiles, and most
//! hold only a handful of distinct destinations, ports or minutes: a short
//! vector scanned in place answers "seen before?" faster than a hash table
//! (no hashing, one or two cache lines, no rehashing as it grows). Past
//! [`SMALL`] values a collection moves into a hash table. Only counts and
//! contents are ever read (every caller that needs an order sorts), and
//! equality is set equality, whatever the insertion order.

use std::hash::Hash;

use rustc_hash::{FxHashMap, FxHashSet};

/// The values of a [`FlatSet`]: one match per call on which storage it
/// walks (a chain of the two would test both at every step), and `fold`
/// (hence `for_each`, `sum`, `max`, ...) handed to the storage's own.
pub enum Iter<'a, T> {
    /// Over the inline values.
    Small(std::slice::Iter<'a, T>),
    /// Over the hash set.
    Large(std::collections::hash_set::Iter<'a, T>),
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    #[inline]
    fn next(&mut self) -> Option<&'a T> {
        match self {
            Iter::Small(it) => it.next(),
            Iter::Large(it) => it.next(),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Small(it) => it.size_hint(),
            Iter::Large(it) => it.size_hint(),
        }
    }

    #[inline]
    fn fold<B, F: FnMut(B, &'a T) -> B>(self, init: B, f: F) -> B {
        match self {
            Iter::Small(it) => it.fold(init, f),
            Iter::Large(it) => it.fold(init, f),
        }
    }
}

/// The (key, count) pairs of a [`FlatCounts`] (see [`Iter`]).
pub enum CountsIter<'a, K> {
    /// Over the inline entries.
    Small(std::slice::Iter<'a, (K, u32)>),
    /// Over the hash map.
    Large(std::collections::hash_map::Iter<'a, K, u32>),
}

impl<K: Copy> Iterator for CountsIter<'_, K> {
    type Item = (K, u32);

    #[inline]
    fn next(&mut self) -> Option<(K, u32)> {
        match self {
            CountsIter::Small(it) => it.next().copied(),
            CountsIter::Large(it) => it.next().map(|(k, n)| (*k, *n)),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            CountsIter::Small(it) => it.size_hint(),
            CountsIter::Large(it) => it.size_hint(),
        }
    }

    #[inline]
    fn fold<B, F: FnMut(B, (K, u32)) -> B>(self, init: B, mut f: F) -> B {
        match self {
            CountsIter::Small(it) => it.fold(init, |acc, kn| f(acc, *kn)),
            CountsIter::Large(it) => it.fold(init, |acc, (k, n)| f(acc, (*k, *n))),
        }
    }
}

/// Values kept in a vector before moving to a hash table.
pub const SMALL: usize = 16;

/// A set of small `Copy` values.
#[derive(Debug, Clone)]
pub enum FlatSet<T> {
    /// A few values inline.
    Small(Vec<T>),
    /// Many values, hashed.
    Large(FxHashSet<T>),
}

impl<T> Default for FlatSet<T> {
    fn default() -> Self {
        FlatSet::Small(Vec::new())
    }
}

impl<T: Copy + Eq + Hash> FlatSet<T> {
    /// Adds `v`; true when it was not there.
    #[inline]
    pub fn insert(&mut self, v: T) -> bool {
        match self {
            FlatSet::Small(items) => {
                if items.contains(&v) {
                    return false;
                }
                if items.len() < SMALL {
                    items.push(v);
                } else {
                    let mut large: FxHashSet<T> = items.iter().copied().collect();
                    large.insert(v);
                    *self = FlatSet::Large(large);
                }
                true
            }
            FlatSet::Large(set) => set.insert(v),
        }
    }

    /// Whether `v` is in the set.
    pub fn contains(&self, v: &T) -> bool {
        match self {
            FlatSet::Small(items) => items.contains(v),
            FlatSet::Large(set) => set.contains(v),
        }
    }

    /// Distinct values.
    pub fn len(&self) -> usize {
        match self {
            FlatSet::Small(items) => items.len(),
            FlatSet::Large(set) => set.len(),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values, in no particular order.
    pub fn iter(&self) -> Iter<'_, T> {
        match self {
            FlatSet::Small(items) => Iter::Small(items.iter()),
            FlatSet::Large(set) => Iter::Large(set.iter()),
        }
    }
}

impl<T: Copy + Eq + Hash> PartialEq for FlatSet<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|v| other.contains(v))
    }
}

/// Counts by key (small `Copy` keys).
#[derive(Debug, Clone)]
pub enum FlatCounts<K> {
    /// A few entries inline.
    Small(Vec<(K, u32)>),
    /// Many entries, hashed.
    Large(FxHashMap<K, u32>),
}

impl<K> Default for FlatCounts<K> {
    fn default() -> Self {
        FlatCounts::Small(Vec::new())
    }
}

impl<K: Copy + Eq + Hash> FlatCounts<K> {
    /// Counts one more `k`.
    #[inline]
    pub fn add(&mut self, k: K) {
        match self {
            FlatCounts::Small(items) => {
                if let Some((_, n)) = items.iter_mut().find(|(key, _)| *key == k) {
                    *n += 1;
                } else if items.len() < SMALL {
                    items.push((k, 1));
                } else {
                    let mut large: FxHashMap<K, u32> = items.iter().copied().collect();
                    large.insert(k, 1);
                    *self = FlatCounts::Large(large);
                }
            }
            FlatCounts::Large(map) => *map.entry(k).or_default() += 1,
        }
    }

    /// The count of `k`.
    pub fn get(&self, k: &K) -> Option<u32> {
        match self {
            FlatCounts::Small(items) => items.iter().find(|(key, _)| key == k).map(|(_, n)| *n),
            FlatCounts::Large(map) => map.get(k).copied(),
        }
    }

    /// Distinct keys.
    pub fn len(&self) -> usize {
        match self {
            FlatCounts::Small(items) => items.len(),
            FlatCounts::Large(map) => map.len(),
        }
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (key, count) pairs, in no particular order.
    pub fn iter(&self) -> CountsIter<'_, K> {
        match self {
            FlatCounts::Small(items) => CountsIter::Small(items.iter()),
            FlatCounts::Large(map) => CountsIter::Large(map.iter()),
        }
    }

    /// The keys, in no order.
    pub fn keys(&self) -> impl Iterator<Item = K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The counts, in the order of `keys`.
    pub fn values(&self) -> impl Iterator<Item = u32> + '_ {
        self.iter().map(|(_, n)| n)
    }
}

impl<K: Copy + Eq + Hash> PartialEq for FlatCounts<K> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, n)| other.get(&k) == Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the standard collections, through the move to a hash
    /// table: the same contents and counts, and equality that ignores the
    /// order values came in.
    #[test]
    fn flat_collections_agree_with_hash_collections() {
        let mut seed = 3u64;
        for round in 0..200 {
            let spread = 1 + round % 60;
            let mut flat = FlatSet::default();
            let mut counts = FlatCounts::default();
            let mut set = std::collections::HashSet::new();
            let mut map = std::collections::HashMap::new();
            let mut order = Vec::new();
            for _ in 0..(round % 90) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = (seed >> 40) % spread;
                assert_eq!(flat.insert(v), set.insert(v));
                counts.add(v);
                *map.entry(v).or_insert(0u32) += 1;
                order.push(v);
            }
            assert_eq!(flat.len(), set.len());
            let mut got: Vec<u64> = flat.iter().copied().collect();
            got.sort_unstable();
            let mut want: Vec<u64> = set.iter().copied().collect();
            want.sort_unstable();
            assert_eq!(got, want);
            let mut got: Vec<(u64, u32)> = counts.iter().collect();
            got.sort_unstable();
            let mut want: Vec<(u64, u32)> = map.iter().map(|(k, n)| (*k, *n)).collect();
            want.sort_unstable();
            assert_eq!(got, want);
            // The same values in reverse order: equal collections.
            let mut flat2 = FlatSet::default();
            let mut counts2 = FlatCounts::default();
            for v in order.iter().rev() {
                flat2.insert(*v);
                counts2.add(*v);
            }
            assert_eq!(flat, flat2);
            assert_eq!(counts, counts2);
            if !order.is_empty() {
                counts2.add(order[0]);
                assert_ne!(counts, counts2);
                flat2.insert(u64::MAX);
                assert_ne!(flat, flat2);
            }
        }
    }
}
