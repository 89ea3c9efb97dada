//! The iteration order of a GLib `GHashTable` keyed by strings.
//!
//! libostree builds the summary's `a{sv}` dictionaries with `GVariantDict`,
//! which keeps its entries in a `GHashTable` and serializes them in bucket
//! order. To write summaries byte for byte as `ostree summary -u` does, kiln
//! replays the same table: `g_str_hash`, the prime-modulo initial bucket,
//! quadratic probing and the grow-on-insert rule of GLib 2.74.

/// GLib's `g_str_hash` (djb2 over *signed* chars).
pub fn str_hash(s: &str) -> u32 {
    let mut h: u32 = 5381;
    for &b in s.as_bytes() {
        h = h
            .wrapping_shl(5)
            .wrapping_add(h)
            .wrapping_add(b as i8 as i32 as u32);
    }
    h
}

const MIN_SHIFT: u32 = 3;
const PRIME_MOD: [u32; 32] = [
    1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
    262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859, 134217689,
    268435399, 536870909, 1073741789, 2147483647,
];

/// A replay of a `GHashTable<string, _>` that is only inserted into.
#[derive(Debug, Clone)]
pub struct GHashOrder {
    /// (hash, index into `keys`) per bucket; hash 0 = unused.
    buckets: Vec<(u32, usize)>,
    keys: Vec<String>,
    shift: u32,
    nnodes: usize,
}

impl Default for GHashOrder {
    fn default() -> Self {
        Self::new()
    }
}

impl GHashOrder {
    pub fn new() -> Self {
        GHashOrder {
            buckets: vec![(0, 0); 1 << MIN_SHIFT],
            keys: Vec::new(),
            shift: MIN_SHIFT,
            nnodes: 0,
        }
    }

    fn size(&self) -> usize {
        1 << self.shift
    }

    fn to_index(&self, hash: u32) -> usize {
        (hash.wrapping_mul(11) % PRIME_MOD[self.shift as usize]) as usize
    }

    fn hash_of(key: &str) -> u32 {
        let h = str_hash(key);
        if h < 2 {
            2
        } else {
            h
        }
    }

    /// `g_hash_table_insert`: a key already present keeps its bucket.
    pub fn insert(&mut self, key: &str) {
        let hash = Self::hash_of(key);
        let mask = self.size() - 1;
        let mut idx = self.to_index(hash);
        let mut step = 0;
        while self.buckets[idx].0 != 0 {
            let (h, k) = self.buckets[idx];
            if h == hash && self.keys[k] == key {
                return;
            }
            step += 1;
            idx = (idx + step) & mask;
        }
        self.keys.push(key.to_string());
        self.buckets[idx] = (hash, self.keys.len() - 1);
        self.nnodes += 1;
        self.maybe_resize();
    }

    fn maybe_resize(&mut self) {
        let size = self.size();
        let occupied = self.nnodes; // no removals, so no tombstones
        if (size > self.nnodes * 4 && size > 1 << MIN_SHIFT) || size <= occupied + occupied / 16 {
            self.resize();
        }
    }

    fn resize(&mut self) {
        let old_size = self.size();
        // g_hash_table_set_shift_from_size (nnodes * 1.333)
        let target = (self.nnodes as f64 * 1.333) as u64;
        let mut shift = 0u32;
        let mut n = target;
        while n != 0 {
            n >>= 1;
            shift += 1;
        }
        self.shift = shift.max(MIN_SHIFT);
        let new_size = self.size();
        if new_size > old_size {
            self.buckets.resize(new_size, (0, 0));
        }
        let mask = new_size - 1;
        let mut placed = vec![false; new_size.max(old_size)];
        for i in 0..old_size {
            let (node_hash, node_key) = self.buckets[i];
            if node_hash < 2 {
                self.buckets[i] = (0, 0);
                continue;
            }
            if placed[i] {
                continue;
            }
            self.buckets[i] = (0, 0);
            let (mut hash, mut key) = (node_hash, node_key);
            loop {
                let mut idx = self.to_index(hash);
                let mut step = 0;
                while placed[idx] {
                    step += 1;
                    idx = (idx + step) & mask;
                }
                placed[idx] = true;
                let (rh, rk) = self.buckets[idx];
                self.buckets[idx] = (hash, key);
                if rh < 2 {
                    break;
                }
                hash = rh;
                key = rk;
            }
        }
        if new_size < old_size {
            self.buckets.truncate(new_size);
        }
    }

    /// Keys in the order `g_hash_table_iter_next` returns them.
    pub fn order(&self) -> Vec<&str> {
        self.buckets
            .iter()
            .filter(|(h, _)| *h >= 2)
            .map(|(_, k)| self.keys[*k].as_str())
            .collect()
    }
}

/// Order `(key, value)` pairs inserted in this order as a `GVariantDict`
/// would serialize them (a later duplicate key replaces the value in place).
pub fn gvariant_dict_order<V>(entries: Vec<(String, V)>) -> Vec<(String, V)> {
    let mut table = GHashOrder::new();
    let mut values: std::collections::HashMap<String, V> = std::collections::HashMap::new();
    for (k, v) in entries {
        table.insert(&k);
        values.insert(k, v);
    }
    let order: Vec<String> = table.order().into_iter().map(str::to_string).collect();
    order
        .into_iter()
        .filter_map(|k| values.remove(&k).map(|v| (k, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_metadata_order_matches_ostree() {
        // Observed in `ostree summary -u` output (2022.7, GLib 2.74).
        let keys = [
            "ostree.summary.last-modified",
            "ostree.summary.mode",
            "ostree.summary.tombstone-commits",
            "ostree.summary.indexed-deltas",
        ];
        let mut t = GHashOrder::new();
        for k in keys {
            t.insert(k);
        }
        assert_eq!(
            t.order(),
            vec![
                "ostree.summary.mode",
                "ostree.summary.last-modified",
                "ostree.summary.tombstone-commits",
                "ostree.summary.indexed-deltas"
            ]
        );
    }

    #[test]
    fn many_keys_survive_resizes() {
        let mut t = GHashOrder::new();
        for i in 0..1000 {
            t.insert(&format!("k{i}"));
        }
        let mut o: Vec<_> = t.order();
        assert_eq!(o.len(), 1000);
        o.sort();
        o.dedup();
        assert_eq!(o.len(), 1000);
    }
}
