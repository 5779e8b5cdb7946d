//! The snapshot phase of copying a partition to a new replica (docs/cluster.md,
//! "Changing the layout"): every record one previous replica holds, read with the
//! ScanPartition RPC page by page in engine order (all databases of the partition in one
//! range scan; the per-database Scan with a source built before it) and written to the new replica as it is, version and
//! all, so tombstones, expiries, request records and values accepted by consensus rounds
//! arrive unchanged. The Merkle catch-up against N - W + 1 previous replicas follows; it
//! then has only what changed during the stream to carry, instead of the whole partition
//! in key-by-key Merkle rounds.
//!
//! A record the new replica already holds in a newer version is refused there (`Stale`),
//! which is right: writes of the transition reach it directly.

use crate::hint_replay::ByteBudget;
use crate::replica_api::{is_no_partition_scan, ItemKey, ReplicaApi, ReplicaError, WriteItem};
use crate::Record;
use bytes::Bytes;
use kv_keyspace::data_key::{data_key, ScanPosition};

/// Records asked per Scan page: big enough that round trips do not dominate, small
/// enough that a page is a modest write batch and progress moves often.
pub const STREAM_PAGE: usize = 2048;

/// What one page brought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streamed {
    /// Records written to the new replica (tombstones included).
    pub keys: u64,
    /// Their engine key and value bytes (what [`crate::partition_size`] measures).
    pub bytes: u64,
}

impl Streamed {
    fn add(&mut self, other: Streamed) {
        self.keys += other.keys;
        self.bytes += other.bytes;
    }
}

/// Copies every record of `partition` from `source` to `dest`, spending the bytes from
/// `budget` (the stream rate) and reporting each page to `on_page`. The next page is
/// read while the current one is written. Pages span databases (one range scan of the
/// partition); a source that cannot scan that way (a peer built before it) is scanned
/// database by database over `dbs`.
pub async fn stream_partition(
    partition: u16,
    dbs: &[u32],
    source: &dyn ReplicaApi,
    dest: &dyn ReplicaApi,
    budget: &ByteBudget,
    mut on_page: impl FnMut(Streamed),
) -> Result<Streamed, ReplicaError> {
    let whole = |from: Option<Bytes>| async move {
        let page = source.scan_partition(partition, from, STREAM_PAGE).await?;
        let done = Streamed {
            keys: page.items.len() as u64,
            bytes: page.bytes,
        };
        Ok((page.items, done, page.next))
    };
    match whole(None).await {
        Err(e) if is_no_partition_scan(&e) => {}
        first => {
            let rest = |from| whole(Some(from));
            return stream_pages(first, rest, dest, budget, on_page).await;
        }
    }
    let mut total = Streamed::default();
    for &db in dbs {
        let of_db = |from: ScanPosition| async move {
            let page = source.scan(partition, db, from, STREAM_PAGE).await?;
            let (items, done) = page_items(db, page.items);
            Ok((items, done, page.next))
        };
        let first = of_db(ScanPosition::START).await;
        total.add(stream_pages(first, of_db, dest, budget, &mut on_page).await?);
    }
    Ok(total)
}

/// A page to write, what it weighs, and where the next one starts (`None`: done).
type Page<C> = (Vec<WriteItem>, Streamed, Option<C>);

/// Writes `first` and the pages `fetch` reads after it to `dest`, reading each next page
/// while the current one is written.
async fn stream_pages<C, F, Fut>(
    first: Result<Page<C>, ReplicaError>,
    fetch: F,
    dest: &dyn ReplicaApi,
    budget: &ByteBudget,
    mut on_page: impl FnMut(Streamed),
) -> Result<Streamed, ReplicaError>
where
    F: Fn(C) -> Fut,
    Fut: std::future::Future<Output = Result<Page<C>, ReplicaError>>,
{
    let mut total = Streamed::default();
    let (mut items, mut done, mut next) = first?;
    loop {
        budget.spend(done.bytes).await;
        let write = write_all(dest, items);
        let after = match next {
            Some(from) => {
                let (written, page) = tokio::join!(write, fetch(from));
                written?;
                Some(page?)
            }
            None => {
                write.await?;
                None
            }
        };
        on_page(done);
        total.add(done);
        match after {
            Some(page) => (items, done, next) = page,
            None => return Ok(total),
        }
    }
}

/// A page's records as writes of database `db`, and what they weigh.
fn page_items(db: u32, page: Vec<(Bytes, Record)>) -> (Vec<WriteItem>, Streamed) {
    let mut done = Streamed::default();
    let items = page
        .into_iter()
        .map(|(key, record)| {
            done.keys += 1;
            done.bytes += (data_key(db, &key).len() + record.encode().len()) as u64;
            WriteItem {
                key: ItemKey { db, key },
                record,
            }
        })
        .collect();
    (items, done)
}

async fn write_all(dest: &dyn ReplicaApi, items: Vec<WriteItem>) -> Result<(), ReplicaError> {
    if !items.is_empty() {
        // Stale outcomes are expected (the new replica took newer writes directly).
        dest.write(items).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
