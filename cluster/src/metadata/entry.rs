//! One cluster metadata entry and its stored form (spec: docs/format/cluster-storage.md,
//! keyspace `metadata`).
//!
//! ```text
//! entry := format:u8 (=1) version:16 value
//! ```

use crate::version::{Version, VERSION_LEN};
use bytes::Bytes;
use xxhash_rust::xxh3::Xxh3;

const FORMAT: u8 = 1;

/// A named piece of cluster-wide state: `name -> (version, value)`, merged
/// last-writer-wins by version. An empty value is how users of the store say "removed"
/// (an entry is never deleted, so a removal cannot be undone by an older copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEntry {
    /// What it is (`flush/3`, `acl/user/alice`, `config/maxmemory`).
    pub name: String,
    /// Assigned by the node that wrote it, from its hybrid logical clock.
    pub version: Version,
    /// Opaque to the store.
    pub value: Bytes,
}

impl MetaEntry {
    /// The stored value (the name is the engine key).
    pub fn encode_value(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1 + VERSION_LEN + self.value.len());
        v.push(FORMAT);
        v.extend_from_slice(&self.version.encode());
        v.extend_from_slice(&self.value);
        v
    }

    /// Decodes a stored value; `None` if the bytes are not one.
    pub fn decode_value(name: String, b: &Bytes) -> Option<MetaEntry> {
        if b.len() < 1 + VERSION_LEN || b[0] != FORMAT {
            return None;
        }
        Some(MetaEntry {
            name,
            version: Version::decode(&b[1..])?,
            value: b.slice(1 + VERSION_LEN..),
        })
    }
}

/// A digest of a set of entries: equal sets have equal digests, so two nodes compare
/// their whole metadata by one short string in gossip. xxh3-128 over the entries in
/// name order, each as `len(name):u32 name version:16`; the value is not hashed, as a
/// version names exactly one write.
pub fn digest<'a>(entries: impl Iterator<Item = (&'a str, &'a Version)>) -> String {
    let mut h = Xxh3::new();
    for (name, version) in entries {
        h.update(&(name.len() as u32).to_be_bytes());
        h.update(name.as_bytes());
        h.update(&version.encode());
    }
    format!("{:032x}", h.digest128())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;

    #[test]
    fn round_trip_and_damage() {
        let e = MetaEntry {
            name: "flush/0".into(),
            version: Version {
                ts: 7 << 16,
                node: NodeId(3),
            },
            value: Bytes::from_static(b"v"),
        };
        let b = Bytes::from(e.encode_value());
        assert_eq!(MetaEntry::decode_value(e.name.clone(), &b), Some(e));
        assert_eq!(MetaEntry::decode_value("x".into(), &b.slice(..5)), None);
        assert_eq!(
            MetaEntry::decode_value("x".into(), &Bytes::from_static(&[2; 20])),
            None
        );
    }

    #[test]
    fn digest_changes_with_any_name_or_version() {
        let v1 = Version {
            ts: 1,
            node: NodeId(1),
        };
        let v2 = Version {
            ts: 2,
            node: NodeId(1),
        };
        let a = digest([("a", &v1)].into_iter());
        assert_eq!(a, digest([("a", &v1)].into_iter()));
        assert_ne!(a, digest([("a", &v2)].into_iter()));
        assert_ne!(a, digest([("b", &v1)].into_iter()));
        assert_ne!(a, digest(std::iter::empty()));
        // Length prefixes: ("ab") and ("a","b") differ.
        assert_ne!(
            digest([("ab", &v1)].into_iter()),
            digest([("a", &v1), ("b", &v1)].into_iter())
        );
    }
}
