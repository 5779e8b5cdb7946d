//! The `PartitionSizes` RPC (docs/cluster-protocol.md): the records and bytes a node
//! holds of some partitions, for layout plans and streaming progress (crate::
//! partition_size). A peer built before it answers `Unimplemented`, which the asker
//! shows as an unknown size.

// tonic's service trait returns `Status` by value.
#![allow(clippy::result_large_err)]

use super::client::PeerClient;
use super::convert as cv;
use super::handler::BusHandler;
use super::pb;
use crate::partition_size::PartitionSize;
use crate::replica_api::ReplicaError;
use tonic::Status;

impl PeerClient {
    /// The peer's size of each of `partitions`, in order.
    pub async fn partition_sizes(
        &self,
        partitions: Vec<u16>,
    ) -> Result<Vec<PartitionSize>, ReplicaError> {
        let asked = partitions.len();
        let msg = pb::PartitionSizesRequest {
            partitions: partitions.into_iter().map(u32::from).collect(),
        };
        let r = self
            .call("PartitionSizes", msg, |mut c, r| async move {
                c.partition_sizes(r).await
            })
            .await?;
        if r.keys.len() != asked || r.bytes.len() != asked {
            return Err(ReplicaError::Failed(format!(
                "{} and {} sizes for {asked} partitions",
                r.keys.len(),
                r.bytes.len()
            )));
        }
        Ok(r.keys
            .into_iter()
            .zip(r.bytes)
            .map(|(keys, bytes)| PartitionSize { keys, bytes })
            .collect())
    }
}

/// Serves one admitted `PartitionSizes`.
pub(super) async fn serve(
    handler: &dyn BusHandler,
    partitions: Vec<u32>,
) -> Result<pb::PartitionSizesResponse, Status> {
    let partitions = partitions
        .into_iter()
        .map(cv::partition_from_pb)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let sizes = handler
        .partition_sizes(partitions)
        .await
        .map_err(super::server::status_of)?;
    Ok(pb::PartitionSizesResponse {
        keys: sizes.iter().map(|s| s.keys).collect(),
        bytes: sizes.iter().map(|s| s.bytes).collect(),
    })
}
