//! What this node answers on the bus besides replica operations: introductions during
//! bootstrap, the layout, and clock pings (stamped with the node's wall clock).

use super::ClusterNode;
use crate::layout::{Layout, NodeInfo};
use crate::replica_api::{ReplicaApi, ReplicaError};
use crate::rpc::{BusHandler, Hello, LayoutBlob, PeerAddr, PushLayoutReply};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::{Arc, Weak};

/// The bus handler of a node. Holds the node weakly: the bus server must not keep a
/// node alive after it shut down.
pub struct NodeBus(pub Weak<ClusterNode>, pub Arc<dyn ReplicaApi>);

impl NodeBus {
    fn node(&self) -> Result<Arc<ClusterNode>, ReplicaError> {
        self.0
            .upgrade()
            .ok_or_else(|| ReplicaError::Unreachable("node is shutting down".into()))
    }
}

#[async_trait]
impl BusHandler for NodeBus {
    fn replica(&self) -> Arc<dyn ReplicaApi> {
        self.1.clone()
    }

    async fn hello(&self, from: Hello) -> Result<Hello, ReplicaError> {
        let node = self.node()?;
        node.meet(NodeInfo {
            id: from.node,
            resp_addr: from.resp_addr.clone(),
            bus_addr: from.bus_addr.clone(),
            zone: String::new(),
            capacity: 1,
        });
        Ok(node.hello())
    }

    async fn get_layout(&self) -> Result<Option<LayoutBlob>, ReplicaError> {
        Ok(self.node()?.layout.get().map(|l| blob(&l)))
    }

    fn layout_tag(&self) -> Option<Arc<crate::rpc::LayoutTag>> {
        self.0.upgrade().map(|node| node.peers.layout_tag().clone())
    }

    fn pull_layout(&self, from: crate::NodeId, version: u64) {
        if let Some(node) = self.0.upgrade() {
            tokio::spawn(async move {
                node.pull_layout(from, version).await;
            });
        }
    }

    fn wall_clock_ms(&self) -> i64 {
        match self.0.upgrade() {
            Some(node) => node.wall.now_ms() as i64,
            None => crate::rpc::auth::unix_ms(),
        }
    }

    async fn sync_metadata(
        &self,
        entries: Vec<crate::metadata::MetaEntry>,
    ) -> Result<Vec<crate::metadata::MetaEntry>, ReplicaError> {
        let node = self.node()?;
        crate::metadata::spread::serve_sync(&node.metadata, entries).await
    }

    async fn publish(
        &self,
        messages: Vec<crate::pubsub_fanout::PubSubMessage>,
    ) -> Result<u64, ReplicaError> {
        Ok(self.node()?.pubsub.deliver(&messages))
    }

    async fn propose(&self, command: crate::forward::Forwarded) -> Result<Bytes, ReplicaError> {
        self.node()?.propose_here(command).await
    }

    async fn partition_sizes(
        &self,
        partitions: Vec<u16>,
    ) -> Result<Vec<crate::partition_size::PartitionSize>, ReplicaError> {
        self.node()?.local_partition_sizes(partitions).await
    }

    async fn push_layout(&self, pushed: LayoutBlob) -> Result<PushLayoutReply, ReplicaError> {
        let node = self.node()?;
        let layout = Layout::from_json(&pushed.json)
            .map_err(|e| ReplicaError::Failed(format!("pushed layout refused: {e}")))?;
        let accepted = node.adopt(layout).await.is_ok();
        Ok(PushLayoutReply {
            accepted,
            current_version: node.layout.get().map_or(0, |l| l.version),
        })
    }
}

/// A layout as it travels on the bus.
pub fn blob(layout: &Layout) -> LayoutBlob {
    LayoutBlob {
        version: layout.version,
        json: Bytes::from(layout.to_json()),
    }
}

/// The peers a node tells others about.
pub fn peer_addrs(nodes: &[NodeInfo]) -> Vec<PeerAddr> {
    nodes
        .iter()
        .map(|n| PeerAddr {
            node: n.id,
            bus_addr: n.bus_addr.clone(),
        })
        .collect()
}
