//! The `Publish` RPC (docs/cluster-protocol.md): a batch of pub/sub messages, in publish
//! order, for the receiver's subscribers (crate::pubsub_fanout sends them). Served like
//! every other call: authenticated before the body is decoded, at most `max_items`
//! messages per request.

// tonic's service trait returns `Status` by value.
#![allow(clippy::result_large_err)]

use super::client::PeerClient;
use super::handler::BusHandler;
use super::pb;
use crate::pubsub_fanout::PubSubMessage;
use crate::replica_api::ReplicaError;
use tonic::Status;

fn to_pb(m: PubSubMessage) -> pb::PubSubMessage {
    pb::PubSubMessage {
        channel: m.channel,
        message: m.message,
        sharded: m.sharded,
    }
}

fn from_pb(m: pb::PubSubMessage) -> PubSubMessage {
    PubSubMessage {
        channel: m.channel,
        message: m.message,
        sharded: m.sharded,
    }
}

impl PeerClient {
    /// Sends `messages` (in publish order) to the peer's subscribers; the answer is the
    /// number of deliveries the peer made. Never retried: a timeout may still have
    /// delivered.
    pub async fn publish(&self, messages: Vec<PubSubMessage>) -> Result<u64, ReplicaError> {
        let msg = pb::PublishRequest {
            messages: messages.into_iter().map(to_pb).collect(),
        };
        let r = self
            .call("Publish", msg, |mut c, r| async move { c.publish(r).await })
            .await?;
        Ok(r.receivers)
    }
}

/// Serves one `Publish` whose `messages` were admitted: hands them to the node.
pub(super) async fn serve(
    handler: &dyn BusHandler,
    messages: Vec<pb::PubSubMessage>,
) -> Result<pb::PublishResponse, Status> {
    let messages = messages.into_iter().map(from_pb).collect();
    let receivers = handler
        .publish(messages)
        .await
        .map_err(super::server::status_of)?;
    Ok(pb::PublishResponse { receivers })
}
