//! Paging through a whole partition, every database at once, in engine key order: what
//! a new replica streams (crate::snapshot_stream). One range scan of the partition's
//! contiguous key range, where a scan per database (scan.rs) seeks into every slot of
//! every database asked, empty ones included.

use super::error::StoreError;
use super::records::{check_partition, decode_entry};
use crate::replica_api::{PartitionPage, WriteItem};
use crate::Version;
use kv_engine::{Db, Keyspace};
use kv_keyspace::data_key::partition_range;

/// One page of `partition` from engine key `from` on (`None`: its start): `limit`
/// records read (at least one, at most [`super::MAX_SCAN_LIMIT`]) unless the partition
/// ends first or the next record kept would take the page above
/// [`super::MAX_PAGE_BYTES`], of which those `keep(db, version)` refuses are left out
/// (flushed records). `next` is the engine key of the first record not read, so the next page
/// starts exactly there. A `from` outside the partition (it may come from a peer) is
/// clamped into it.
pub fn partition_page(
    db: &Db,
    data: Keyspace,
    partition: u16,
    from: Option<&[u8]>,
    limit: usize,
    keep: impl Fn(u32, Version) -> bool,
) -> Result<PartitionPage, StoreError> {
    check_partition(partition)?;
    let (start, end) = partition_range(partition);
    let start = match from {
        Some(from) if from > start.as_slice() => from.to_vec(),
        _ => start,
    };
    if end.as_deref().is_some_and(|end| start.as_slice() >= end) {
        return Ok(PartitionPage::default());
    }
    let limit = limit.clamp(1, super::MAX_SCAN_LIMIT);
    let mut page = PartitionPage::default();
    for (read, entry) in db
        .iter(data, Some(&start), end.as_deref(), None)?
        .enumerate()
    {
        let entry = entry?;
        let bytes = (entry.key.len() + entry.value.len()) as u64;
        let full = !page.items.is_empty() && page.bytes + bytes > super::MAX_PAGE_BYTES as u64;
        if read == limit || full {
            page.next = Some(entry.key);
            break;
        }
        let (key, record) = decode_entry(&entry.key, &entry.value)?;
        if keep(key.db, record.version) {
            page.bytes += bytes;
            page.items.push(WriteItem { key, record });
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica_api::ItemKey;
    use crate::replica_store::ReplicaStore;
    use crate::{NodeId, Record};
    use bytes::Bytes;
    use kv_keyspace::slot::key_partition;
    use std::sync::Arc;

    /// Seven keys of one hash tag (one slot, so one partition) in each of databases 0,
    /// 3 and 15 and the layout register's, and as many in other partitions.
    fn store_with_keys(dir: &std::path::Path) -> (ReplicaStore, u16) {
        let db = Arc::new(Db::open(dir, kv_engine::Options::default()).unwrap());
        let store = ReplicaStore::open(db).unwrap();
        let record = Record::string(
            Version {
                ts: 1 << 16,
                node: NodeId(1),
            },
            Bytes::from_static(b"value"),
            None,
        );
        let items: Vec<WriteItem> = [0, 3, 15, u32::MAX]
            .into_iter()
            .flat_map(|db| (0..7).map(move |i| (db, format!("{{t}}{i}"))))
            .chain((0..28).map(|i| (0, format!("other{i}"))))
            .map(|(db, key)| WriteItem {
                key: ItemKey {
                    db,
                    key: Bytes::from(key),
                },
                record: record.clone(),
            })
            .collect();
        store.apply(&items).unwrap();
        (store, key_partition(b"{t}0"))
    }

    #[test]
    fn pages_span_databases_and_resume_exactly_where_the_last_one_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let (store, p) = store_with_keys(dir.path());
        let want: Vec<(ItemKey, Record)> = store
            .partition_records(p)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(want.len(), 28, "the other keys are in other partitions");
        let (mut got, mut from, mut pages, mut bytes) = (Vec::new(), None::<Bytes>, 0, 0);
        loop {
            let page = store.scan_partition(p, from.as_deref(), 5).unwrap();
            pages += 1;
            assert!(page.items.len() == 5 || page.next.is_none());
            bytes += page.bytes;
            got.extend(page.items.into_iter().map(|i| (i.key, i.record)));
            match page.next {
                Some(next) => from = Some(next),
                None => break,
            }
        }
        assert_eq!(got, want);
        // 28 records in pages of 5, whatever databases they are in.
        assert_eq!(pages, 6);
        assert_eq!(bytes, store.partition_size(p).unwrap().bytes);
    }

    #[test]
    fn a_start_outside_the_partition_is_clamped_into_it() {
        let dir = tempfile::tempdir().unwrap();
        let (store, p) = store_with_keys(dir.path());
        // Before the partition (a peer may send anything): from its start.
        let page = store.scan_partition(p, Some(b"\0"), 100).unwrap();
        assert_eq!((page.items.len(), page.next), (28, None));
        // At or past its end: nothing.
        let (_, end) = partition_range(p);
        let end = end.expect("not the last partition");
        let page = store.scan_partition(p, Some(&end), 100).unwrap();
        assert_eq!(page, PartitionPage::default());
        assert!(store.scan_partition(256, None, 100).is_err());
    }

    #[test]
    fn records_refused_by_keep_are_left_out_and_the_page_goes_on_past_them() {
        let dir = tempfile::tempdir().unwrap();
        let (store, p) = store_with_keys(dir.path());
        let data = store.data_keyspace();
        let page = partition_page(store.db(), data, p, None, 100, |db, _| db != 3).unwrap();
        assert_eq!(page.items.len(), 21);
        assert!(page.items.iter().all(|i| i.key.db != 3));
        // A page whose records were all refused still says where to go on.
        let page = partition_page(store.db(), data, p, None, 7, |db, _| db != 0).unwrap();
        assert!(page.items.is_empty());
        assert!(page.next.is_some());
    }

    /// Pages of large records stop at the byte bound, so each fits in a bus message
    /// (2048 records of 8 KiB once made a page no peer could take), and still cover the
    /// partition exactly.
    #[test]
    fn pages_of_large_records_stop_at_the_byte_bound() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path(), kv_engine::Options::default()).unwrap());
        let store = ReplicaStore::open(db).unwrap();
        let value = Bytes::from(vec![b'v'; 1 << 20]);
        let version = Version {
            ts: 1 << 16,
            node: NodeId(1),
        };
        let items: Vec<WriteItem> = (0..10)
            .map(|i| WriteItem {
                key: ItemKey {
                    db: 0,
                    key: Bytes::from(format!("{{big}}{i}")),
                },
                record: Record::string(version, value.clone(), None),
            })
            .collect();
        store.apply(&items).unwrap();
        let p = key_partition(b"{big}0");
        let (mut from, mut keys, mut pages) = (None::<Bytes>, 0, 0);
        loop {
            let page = store.scan_partition(p, from.as_deref(), 2048).unwrap();
            pages += 1;
            assert!(
                page.bytes <= super::super::MAX_PAGE_BYTES as u64,
                "a page of {} bytes",
                page.bytes
            );
            // Four 1 MiB records and their keys pass 4 MiB: three per page.
            assert!(
                page.items.len() == 3 || page.next.is_none(),
                "{}",
                page.items.len()
            );
            keys += page.items.len();
            match page.next {
                Some(next) => from = Some(next),
                None => break,
            }
        }
        assert_eq!((keys, pages), (10, 4));
    }
}
