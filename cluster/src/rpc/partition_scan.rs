//! The `ScanPartition` RPC (docs/cluster-protocol.md): one page of every database of a
//! partition in engine key order, what a new replica streams (crate::snapshot_stream).
//! A peer built before it answers `Unimplemented`, which the client reports as
//! [`NO_PARTITION_SCAN`], and the streamer scans database by database instead.

// tonic's service trait returns `Status` by value.
#![allow(clippy::result_large_err)]

use super::client::PeerClient;
use super::convert as cv;
use super::handler::BusHandler;
use super::pb;
use crate::replica_api::{PartitionPage, ReplicaError, WriteItem, NO_PARTITION_SCAN};
use bytes::Bytes;
use kv_keyspace::data_key::DATA_KEY_PREFIX;
use tonic::Status;

impl PeerClient {
    /// One page of `partition` on the peer from engine key `from` on.
    pub(super) async fn partition_page(
        &self,
        partition: u16,
        from: Option<Bytes>,
        limit: usize,
    ) -> Result<PartitionPage, ReplicaError> {
        let msg = pb::ScanPartitionRequest {
            partition: partition.into(),
            from: from.unwrap_or_default(),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        };
        let r = self
            .call("ScanPartition", msg, |mut c, r| async move {
                c.scan_partition(r).await
            })
            .await
            .map_err(|e| match e {
                ReplicaError::Failed(m) if m.starts_with("Unimplemented") => {
                    ReplicaError::Failed(NO_PARTITION_SCAN.into())
                }
                e => e,
            })?;
        page_from_pb(r).map_err(|e| ReplicaError::Failed(format!("malformed reply from peer: {e}")))
    }
}

/// The page a reply carries; its bytes counted as the engine holds them (engine key:
/// the data key prefix and the Redis key; value: the encoded record).
fn page_from_pb(r: pb::ScanPartitionResponse) -> Result<PartitionPage, cv::BadMessage> {
    let mut bytes = 0;
    let items = r
        .items
        .into_iter()
        .map(|i| {
            let record_len = i.record.len();
            let item = cv::write_item_from_pb(i)?;
            bytes += (DATA_KEY_PREFIX + item.key.key.len() + record_len) as u64;
            Ok(item)
        })
        .collect::<Result<Vec<WriteItem>, cv::BadMessage>>()?;
    Ok(PartitionPage {
        items,
        bytes,
        next: (!r.next.is_empty()).then_some(r.next),
    })
}

/// Serves one admitted `ScanPartition` (at most `max_limit` records).
pub(super) async fn serve(
    handler: &dyn BusHandler,
    req: pb::ScanPartitionRequest,
    max_limit: usize,
) -> Result<pb::ScanPartitionResponse, Status> {
    let partition = cv::partition_from_pb(req.partition)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let from = (!req.from.is_empty()).then_some(req.from);
    let limit = (req.limit as usize).min(max_limit);
    let page = handler
        .replica()
        .scan_partition(partition, from, limit)
        .await
        .map_err(super::server::status_of)?;
    Ok(pb::ScanPartitionResponse {
        items: page.items.into_iter().map(cv::write_item_to_pb).collect(),
        next: page.next.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{client, key, start, FakeReplica, RESUME};
    use crate::replica_api::{ReplicaApi, WriteItem};
    use crate::{NodeId, Record, Version};
    use bytes::Bytes;
    use kv_keyspace::data_key::data_key;

    #[tokio::test]
    async fn a_partition_page_crosses_the_bus_with_its_bytes_and_where_to_go_on() {
        let s = start(FakeReplica::default(), None, None).await;
        let c = client(&s, None, None);
        let v = Version {
            ts: 7 << 16,
            node: NodeId(9),
        };
        let mut items = vec![
            WriteItem {
                key: key("a"),
                record: Record::string(v, Bytes::from_static(b"value"), Some(1_900_000_000_000)),
            },
            WriteItem {
                key: key("b"),
                record: Record::tombstone(v),
            },
        ];
        items[1].key.db = 7;
        c.write(items.clone()).await.unwrap();
        let page = c.scan_partition(3, None, 100).await.unwrap();
        assert_eq!(page.items, items);
        let bytes: usize = items
            .iter()
            .map(|i| data_key(i.key.db, &i.key.key).len() + i.record.encode().len())
            .sum();
        assert_eq!(page.bytes, bytes as u64, "counted as the engine holds them");
        assert_eq!(page.next.as_deref(), Some(RESUME));
        let last = c.scan_partition(3, page.next, 100).await.unwrap();
        assert_eq!((last.items.len(), last.next), (0, None));
        // A partition that does not exist is refused by the receiver, not scanned.
        assert!(c.scan_partition(300, None, 100).await.is_err());
    }
}
