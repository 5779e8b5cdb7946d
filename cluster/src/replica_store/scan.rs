//! Paging through one database of one partition in scan order (slot, key hash), for
//! the cluster-wide SCAN, and iterating a whole partition for repair.

use super::error::StoreError;
use super::records::{check_partition, decode_engine_key, decode_entry, decode_value};
use crate::record_size::record_bytes;
use crate::replica_api::{ItemKey, ScanPage};
use crate::Record;
use bytes::Bytes;
use kv_engine::{Db, DbIterator, Keyspace};
use kv_keyspace::data_key::{partition_range, ScanPosition};
use kv_keyspace::slot::SLOTS_PER_PARTITION;

/// Most records in one page, whatever the caller asks: a peer chooses `limit`, and a
/// page is held in memory whole.
pub const MAX_SCAN_LIMIT: usize = 4096;

/// Most bytes of records in one page (more only for a single record, or to finish a
/// scan position): a page crosses the bus as one message, which has a bound
/// (crate::record_size), and 2048 records of 8 KiB already passed it.
pub const MAX_PAGE_BYTES: usize = 4 << 20;

/// One page of database `ns` in `partition` from `from` on: at least `limit` records
/// (at most [`MAX_SCAN_LIMIT`]) unless the partition ends or [`MAX_PAGE_BYTES`] are
/// reached first, and never a page that ends between two keys of the same scan position
/// (a SCAN cursor names a position, so splitting one would skip or repeat keys).
pub fn scan_page(
    db: &Db,
    data: Keyspace,
    partition: u16,
    ns: u32,
    from: ScanPosition,
    limit: usize,
) -> Result<ScanPage, StoreError> {
    check_partition(partition)?;
    let first_slot = partition * SLOTS_PER_PARTITION;
    let end_slot = first_slot + SLOTS_PER_PARTITION;
    let start = from.max(ScanPosition {
        slot: first_slot,
        hash: 0,
    });
    if start.slot >= end_slot {
        return Ok(ScanPage::default());
    }
    let (_, range_end) = partition_range(partition);
    let mut iter = db.iter(data, Some(&start.seek_key(ns)), range_end.as_deref(), None)?;
    let entries = std::iter::from_fn(|| next_in_namespace(&mut iter, ns).transpose());
    let weigh = |(key, record): &ScanItem| record_bytes(key, record);
    let (items, next) = take_page(entries, limit.min(MAX_SCAN_LIMIT), MAX_PAGE_BYTES, weigh)?;
    Ok(ScanPage { items, next })
}

/// Takes entries until `limit` (at least one) are taken or the next would take the
/// page's weight above `max_bytes` (the first is always taken), then any more at the same
/// position as the last one taken; returns them with the position of the first entry
/// left, `None` when `entries` ran out.
fn take_page<T>(
    entries: impl Iterator<Item = Result<(ScanPosition, T), StoreError>>,
    limit: usize,
    max_bytes: usize,
    weigh: impl Fn(&T) -> usize,
) -> Result<(Vec<T>, Option<ScanPosition>), StoreError> {
    let limit = limit.max(1);
    let mut items = Vec::new();
    let mut bytes = 0;
    let mut last: Option<ScanPosition> = None;
    for entry in entries {
        let (position, item) = entry?;
        let weight = weigh(&item);
        let full = items.len() >= limit || (!items.is_empty() && bytes + weight > max_bytes);
        if full && last != Some(position) {
            return Ok((items, Some(position)));
        }
        bytes += weight;
        last = Some(position);
        items.push(item);
    }
    Ok((items, None))
}

/// A key of a scan page with its record.
type ScanItem = (Bytes, Record);

/// The next record of namespace `ns`, seeking over other namespaces' key ranges
/// instead of reading through them.
fn next_in_namespace(
    iter: &mut DbIterator,
    ns: u32,
) -> Result<Option<(ScanPosition, ScanItem)>, StoreError> {
    loop {
        let Some(entry) = iter.next().transpose()? else {
            return Ok(None);
        };
        let (key, position) = decode_engine_key(&entry.key)?;
        let next_seek = match key.db.cmp(&ns) {
            std::cmp::Ordering::Equal => {
                let record = decode_value(&key, &entry.value)?;
                return Ok(Some((position, (key.key, record))));
            }
            // Another database's keys of this slot come first: jump to ours.
            std::cmp::Ordering::Less => ScanPosition {
                slot: position.slot,
                hash: 0,
            },
            // Past our database in this slot: jump to the next slot.
            std::cmp::Ordering::Greater => match position.slot.checked_add(1) {
                Some(slot) => ScanPosition { slot, hash: 0 },
                None => return Ok(None),
            },
        };
        iter.seek(&next_seek.seek_key(ns));
    }
}

/// Every record of a partition, all databases, in engine key order. A corrupt entry
/// is yielded as an error naming it and iteration goes on past it.
pub struct PartitionRecords {
    iter: DbIterator,
}

impl PartitionRecords {
    pub(crate) fn new(db: &Db, data: Keyspace, partition: u16) -> Result<Self, StoreError> {
        check_partition(partition)?;
        let (start, end) = partition_range(partition);
        Ok(PartitionRecords {
            iter: db.iter(data, Some(&start), end.as_deref(), None)?,
        })
    }
}

impl Iterator for PartitionRecords {
    type Item = Result<(ItemKey, Record), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.iter.next()? {
            Ok(entry) => decode_entry(&entry.key, &entry.value),
            Err(e) => Err(e.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Positions with several keys (hash collisions) are rare in real data, so the
        /// paging rule is checked here on positions that collide on purpose.
        #[test]
        fn pages_never_split_a_position_and_cover_everything(
            mut hashes in proptest::collection::vec(0u32..6, 0..40),
            limit in 0usize..5,
            max_bytes in 0usize..12,
        ) {
            hashes.sort_unstable();
            let entries: Vec<(ScanPosition, usize)> = hashes
                .iter()
                .enumerate()
                .map(|(i, &hash)| (ScanPosition { slot: 0, hash }, i))
                .collect();
            let mut seen = Vec::new();
            let mut from = 0;
            loop {
                let rest = entries[from..].iter().map(|e| Ok(*e));
                // Entry i weighs i % 5.
                let (items, next) = take_page(rest, limit, max_bytes, |&i| i % 5).unwrap();
                let weight = |page: &[usize]| page.iter().map(|i| i % 5).sum::<usize>();
                if let Some(&after) = entries.get(from + items.len()) {
                    prop_assert!(
                        items.len() >= limit.max(1)
                            || weight(&items) + after.1 % 5 > max_bytes,
                        "page ended before its limit and its bytes"
                    );
                }
                // Up to the first entry of its last position, a page is within its
                // bytes (only finishing a position may pass them), or is one entry.
                let last_start = items
                    .iter()
                    .position(|&i| Some(entries[i].0) == items.last().map(|&l| entries[l].0))
                    .unwrap_or(0);
                prop_assert!(
                    last_start == 0 || weight(&items[..=last_start]) <= max_bytes,
                    "page of {items:?} passed {max_bytes} bytes"
                );
                if let (Some(next), Some(&last)) = (next, items.last()) {
                    prop_assert!(next > entries[last].0, "page ended inside a position");
                }
                from += items.len();
                seen.extend(items);
                match next {
                    Some(next) => prop_assert_eq!(Some(next), entries.get(from).map(|e| e.0)),
                    None => break,
                }
            }
            prop_assert_eq!(seen, (0..entries.len()).collect::<Vec<_>>());
        }
    }
}
