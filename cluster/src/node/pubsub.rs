//! The node's part of cluster pub/sub (crate::pubsub_fanout): which nodes a message goes
//! to, and the bus sender its fan-out uses.

use super::ClusterNode;
use crate::pubsub_fanout::{
    BatchSender, PubSubFanout, PubSubMessage, SendFuture, PEER_QUEUE_BYTES,
};
use crate::rpc::PeerClients;
use crate::NodeId;
use std::sync::Arc;
use tokio::sync::watch;

/// A fan-out for node `me` that sends over the bus clients in `peers`.
pub fn fanout(me: NodeId, peers: Arc<PeerClients>, stop: watch::Receiver<bool>) -> PubSubFanout {
    let send: BatchSender = Arc::new(
        move |node: NodeId, batch: Vec<PubSubMessage>| -> SendFuture {
            let peers = peers.clone();
            Box::pin(async move {
                let client = peers
                    .peer(node)
                    .ok_or_else(|| format!("no bus address for node {node}"))?;
                client
                    .publish(batch)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        },
    );
    PubSubFanout::new(me, send, PEER_QUEUE_BYTES, stop)
}

impl ClusterNode {
    /// Sends `message` to every other node of the layout (every node met, before the
    /// first layout); failure detection's view decides which are down.
    pub(super) fn broadcast(&self, message: PubSubMessage) {
        let nodes: Vec<NodeId> = match self.layout.get() {
            Some(l) => l.nodes.iter().map(|n| n.id).collect(),
            None => self.met.lock().keys().copied().collect(),
        };
        self.pubsub.broadcast(&message, &nodes, self.live.as_ref());
    }
}
