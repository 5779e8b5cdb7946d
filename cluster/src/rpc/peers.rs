//! The address book: which bus client serves which node. The coordinator reads it as
//! [`Replicas`]; membership updates it as gossip learns addresses.

use super::auth::BusAuth;
use super::client::{ClientConfig, PeerClient};
use super::latency::RpcLatencies;
use super::layout_tag::LayoutTag;
use super::replica_stream::Carrier;
use super::tls::BusTls;
use crate::node_id::IdMap;
use crate::replica_api::{ReplicaApi, Replicas};
use crate::NodeId;
use parking_lot::RwLock;
use std::sync::Arc;

/// Peers counted by how their replica requests travel (CLUSTER INFO's
/// `kvd_replica_links`, `kvd_replica_streams`, `kvd_replica_unary_peers`): a mixed-version
/// or TLS cluster shows here why its bus costs more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CarrierCounts {
    /// Peers reached by a replica link.
    pub links: usize,
    /// Peers reached by the gRPC replica stream.
    pub streams: usize,
    /// Peers reached by unary calls.
    pub unary: usize,
}

/// NodeId -> bus client, with this node mapped to its local replica.
pub struct PeerClients {
    local_node: NodeId,
    local: Arc<dyn ReplicaApi>,
    auth: BusAuth,
    config: ClientConfig,
    tls: Option<BusTls>,
    peers: RwLock<IdMap<NodeId, Arc<PeerClient>>>,
    /// Durations of every call to every peer, per RPC kind.
    latencies: Arc<RpcLatencies>,
    /// The layout version every replica request to a peer carries (rpc/layout_tag.rs).
    layout: Arc<LayoutTag>,
}

impl PeerClients {
    /// An empty address book; `local` serves `local_node`.
    pub fn new(
        local_node: NodeId,
        local: Arc<dyn ReplicaApi>,
        auth: BusAuth,
        config: ClientConfig,
    ) -> PeerClients {
        PeerClients {
            local_node,
            local,
            auth,
            config,
            tls: None,
            peers: RwLock::new(IdMap::default()),
            latencies: Arc::new(RpcLatencies::default()),
            layout: Arc::new(LayoutTag::default()),
        }
    }

    /// Talks to peers over mutual TLS (set before adding addresses).
    pub fn with_tls(mut self, tls: BusTls) -> PeerClients {
        self.tls = Some(tls);
        self
    }

    fn client(&self, bus_addr: &str) -> Result<PeerClient, String> {
        PeerClient::with_tls(bus_addr, self.auth.clone(), self.config, self.tls.as_ref()).map(|c| {
            c.with_latencies(self.latencies.clone())
                .with_layout_tag(self.layout.clone())
        })
    }

    /// The layout tag this node's requests carry; the node sets it as it installs
    /// layouts, and its bus server checks requests against it.
    pub fn layout_tag(&self) -> &Arc<LayoutTag> {
        &self.layout
    }

    /// How long calls to the peers took, per RPC kind.
    pub fn latencies(&self) -> &RpcLatencies {
        &self.latencies
    }

    /// Records `node`'s bus address. A changed address gets a new client (and a new
    /// connection); an unchanged one keeps its connection.
    pub fn set_address(&self, node: NodeId, bus_addr: &str) -> Result<(), String> {
        if node == self.local_node {
            return Ok(());
        }
        if self
            .peers
            .read()
            .get(&node)
            .is_some_and(|c| c.addr() == bus_addr)
        {
            return Ok(());
        }
        let client = Arc::new(self.client(bus_addr)?);
        self.peers.write().insert(node, client);
        Ok(())
    }

    /// Forgets `node`.
    pub fn remove(&self, node: NodeId) {
        self.peers.write().remove(&node);
    }

    /// The bus client of a peer (for hello, layout and ping calls).
    pub fn peer(&self, node: NodeId) -> Option<Arc<PeerClient>> {
        self.peers.read().get(&node).cloned()
    }

    /// How many peers' replica requests travel on each carrier now.
    pub fn carriers(&self) -> CarrierCounts {
        let mut counts = CarrierCounts::default();
        for client in self.peers.read().values() {
            match client.carrier() {
                Carrier::Link => counts.links += 1,
                Carrier::Stream => counts.streams += 1,
                Carrier::Unary => counts.unary += 1,
                Carrier::None => {}
            }
        }
        counts
    }

    /// Every known peer and its bus address.
    pub fn addresses(&self) -> Vec<(NodeId, String)> {
        let mut v: Vec<_> = self
            .peers
            .read()
            .iter()
            .map(|(n, c)| (*n, c.addr().to_string()))
            .collect();
        v.sort();
        v
    }

    /// A client for an address whose node is not known yet (a seed).
    pub fn connect_seed(&self, bus_addr: &str) -> Result<PeerClient, String> {
        self.client(bus_addr)
    }
}

impl Replicas for PeerClients {
    fn replica(&self, node: NodeId) -> Option<Arc<dyn ReplicaApi>> {
        if node == self.local_node {
            return Some(self.local.clone());
        }
        self.peer(node).map(|c| c as Arc<dyn ReplicaApi>)
    }
}
