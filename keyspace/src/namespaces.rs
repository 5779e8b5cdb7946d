//! The namespace map: which namespace id each logical database (SELECT n) uses now.
//! FLUSHDB gives a database a fresh, never used id, so emptying it is O(1) and the
//! compaction filter drops the old id's keys (spec: docs/format/keyspace.md).
//!
//! ```text
//! record (engine keyspace "kvd-meta", key "namespaces") := next:u32-BE (namespace:u32-BE)*
//! ```

use std::collections::HashSet;

/// Engine keyspace of kvd's metadata records.
pub const META_KEYSPACE: &str = "kvd-meta";
/// Key of the namespace-map record in [`META_KEYSPACE`].
pub const META_NAMESPACES: &[u8] = b"namespaces";

/// Logical database -> namespace id, plus the next never-used id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespaces {
    /// `map[db]` is the namespace of database `db`.
    pub map: Vec<u32>,
    /// Next unused namespace id.
    pub next: u32,
}

impl Namespaces {
    /// The map of a new directory: database `n` uses namespace `n`.
    pub fn fresh(databases: usize) -> Namespaces {
        Namespaces {
            map: (0..databases as u32).collect(),
            next: databases as u32,
        }
    }

    /// `next:u32-BE (namespace:u32-BE)*`
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + 4 * self.map.len());
        v.extend_from_slice(&self.next.to_be_bytes());
        for ns in &self.map {
            v.extend_from_slice(&ns.to_be_bytes());
        }
        v
    }

    /// Decodes the record; `None` unless it is well formed: whole words, at least one
    /// database, every namespace below `next` and no namespace used twice.
    pub fn decode(b: &[u8]) -> Option<Namespaces> {
        if b.len() < 8 || !b.len().is_multiple_of(4) {
            return None;
        }
        let mut words = b
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        let next = words.next()?;
        let map: Vec<u32> = words.collect();
        let distinct: HashSet<u32> = map.iter().copied().collect();
        if distinct.len() != map.len() || map.iter().any(|&ns| ns >= next) {
            return None;
        }
        Some(Namespaces { next, map })
    }

    /// Grows the map to `databases` databases, each new one with a fresh namespace.
    pub fn grow_to(&mut self, databases: usize) {
        while self.map.len() < databases {
            self.map.push(self.next);
            self.next += 1;
        }
    }

    /// Assigns a fresh namespace to `db`.
    pub fn renew(&mut self, db: usize) {
        self.map[db] = self.next;
        self.next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_map_round_trip_renew_and_grow() {
        let mut ns = Namespaces::fresh(3);
        ns.renew(1);
        assert_eq!(ns.map, vec![0, 3, 2]);
        assert_eq!(Namespaces::decode(&ns.encode()), Some(ns.clone()));
        ns.grow_to(5);
        assert_eq!((ns.map.clone(), ns.next), (vec![0, 3, 2, 4, 5], 6));
        assert_eq!(Namespaces::decode(b"abc"), None);
        // next = 2 but a database maps to namespace 5; a duplicate; no database at all.
        assert_eq!(Namespaces::decode(&[0, 0, 0, 2, 0, 0, 0, 5]), None);
        assert_eq!(
            Namespaces::decode(&[0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1]),
            None
        );
        assert_eq!(Namespaces::decode(&[0, 0, 0, 9]), None);
    }
}
