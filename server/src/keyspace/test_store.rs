//! A store on a fresh engine in a temporary directory, for the keyspace's unit tests.

use super::{ExpiryFilter, Store};
use kv_engine::{Db, Options};

/// A store with `databases` databases, its engine opened with the expiry filter as kvd
/// opens it; the directory lives as long as the returned guard.
pub(super) fn temp_store(databases: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let filter = ExpiryFilter::new(60_000);
    let options = Options {
        compaction_filter: Some(filter.clone()),
        ..Options::default()
    };
    let db = Db::open(dir.path(), options).unwrap();
    let store = Store::new(db, databases, filter).unwrap();
    (dir, store)
}
