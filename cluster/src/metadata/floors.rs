//! Database flush floors (FLUSHDB / FLUSHALL on a ring, docs/cluster.md, "Flushing a
//! database"). A flush of database `db` is the metadata entry `flush/<db>` whose version
//! V is the floor: every record of `db` with a version below V is gone. Replicas and
//! coordinators read the floors here, on every read, write and scan.

use crate::{Record, Version};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// Prefix of the flush entries' names.
pub const FLUSH_PREFIX: &str = "flush/";

/// The metadata entry name of database `db`'s flush.
pub fn flush_entry_name(db: u32) -> String {
    format!("{FLUSH_PREFIX}{db}")
}

/// The database a flush entry's name names, if it is one.
pub fn flushed_db(name: &str) -> Option<u32> {
    name.strip_prefix(FLUSH_PREFIX)?.parse().ok()
}

/// The floor of each flushed database. Cheap to clone; clones share the same floors.
#[derive(Debug, Clone, Default)]
pub struct FlushFloors {
    floors: Arc<RwLock<HashMap<u32, Version>>>,
}

impl FlushFloors {
    /// Raises `db`'s floor to `floor` (floors never go down: last writer wins). Returns
    /// whether it rose.
    pub fn raise(&self, db: u32, floor: Version) -> bool {
        let mut floors = self.floors.write();
        let cur = floors.entry(db).or_insert(Version::ZERO);
        let rose = floor > *cur;
        if rose {
            *cur = floor;
        }
        rose
    }

    /// The floor of `db` (`Version::ZERO`, below every version, if never flushed).
    pub fn floor(&self, db: u32) -> Version {
        self.floors
            .read()
            .get(&db)
            .copied()
            .unwrap_or(Version::ZERO)
    }

    /// Every flushed database with its floor.
    pub fn all(&self) -> Vec<(u32, Version)> {
        let mut v: Vec<_> = self.floors.read().iter().map(|(d, f)| (*d, *f)).collect();
        v.sort_unstable();
        v
    }

    /// Whether a record of `db` at `version` was flushed.
    pub fn flushed(&self, db: u32, version: Version) -> bool {
        version < self.floor(db)
    }

    /// `record` unless the flush of `db` removed it.
    pub fn visible(&self, db: u32, record: Option<Record>) -> Option<Record> {
        record.filter(|r| !self.flushed(db, r.version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;

    fn v(ts: u64) -> Version {
        Version {
            ts,
            node: NodeId(1),
        }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(flushed_db(&flush_entry_name(15)), Some(15));
        assert_eq!(flushed_db("flush/x"), None);
        assert_eq!(flushed_db("acl/user/flush/1"), None);
    }

    #[test]
    fn the_floor_only_rises_and_hides_older_records_of_its_database() {
        let f = FlushFloors::default();
        assert!(!f.flushed(0, v(1)));
        assert!(f.raise(0, v(10)));
        assert!(!f.raise(0, v(5)), "an older flush does not lower the floor");
        assert_eq!(f.floor(0), v(10));
        assert!(f.flushed(0, v(9)));
        assert!(
            !f.flushed(0, v(10)),
            "the flush's own version is not below it"
        );
        assert!(!f.flushed(0, v(11)));
        assert!(!f.flushed(1, v(9)), "other databases are untouched");
        let rec = Record::tombstone(v(3));
        assert_eq!(f.visible(0, Some(rec.clone())), None);
        assert_eq!(f.visible(1, Some(rec.clone())), Some(rec));
        let shared = f.clone();
        shared.raise(2, v(4));
        assert_eq!(f.all(), vec![(0, v(10)), (2, v(4))]);
    }
}
