//! Bootstrap (docs/cluster.md, "Starting a cluster"): until this node holds a layout it
//! introduces itself to the seeds and to every node they tell it about. A node that
//! holds a layout answers with it, and the newcomer adopts it if it is in it. Once
//! `cluster-bootstrap-expect` nodes have met and none has a layout, the node with the
//! smallest id among them makes the first layout (version 1, a fresh cluster id) and
//! the others adopt it from its answers (and from its push). As with Consul's
//! bootstrap_expect, exactly that many nodes should be started for the first layout;
//! later changes are explicit admin actions.

use super::{bus, ClusterNode};
use crate::layout::{new_cluster_id, Layout, NodeInfo};
use crate::rpc::PeerClient;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Pause between introduction rounds.
const ROUND: Duration = Duration::from_millis(200);

/// Runs until the node holds a layout or shuts down.
pub async fn run(node: Arc<ClusterNode>) {
    let mut clients: HashMap<String, PeerClient> = HashMap::new();
    let mut to_contact: BTreeSet<String> = node.config.seeds.iter().cloned().collect();
    let mut shutdown = node.shutdown.subscribe();
    // A peer that answered with a layout belongs to a cluster that exists: this node
    // waits to be added to it (CLUSTER LAYOUT ASSIGN) and never makes a first layout of
    // its own, which would split the cluster in two.
    let mut cluster_exists = false;
    loop {
        if node.layout.get().is_some() {
            return;
        }
        to_contact.extend(node.met.lock().values().map(|n| n.bus_addr.clone()));
        to_contact.remove(&node.me.bus_addr);
        for addr in to_contact.clone() {
            if !clients.contains_key(&addr) {
                match node.peers.connect_seed(&addr) {
                    Ok(c) => {
                        clients.insert(addr.clone(), c);
                    }
                    Err(e) => {
                        tracing::warn!(seed = %addr, error = %e, "bad seed address");
                        to_contact.remove(&addr);
                        continue;
                    }
                }
            }
            let Some(client) = clients.get(&addr) else {
                continue;
            };
            let Ok(reply) = client.hello(node.hello()).await else {
                continue; // not up yet: try again next round
            };
            node.meet(NodeInfo {
                id: reply.node,
                resp_addr: reply.resp_addr.clone(),
                bus_addr: reply.bus_addr.clone(),
                zone: String::new(),
                capacity: 1,
            });
            to_contact.extend(reply.peers.iter().map(|p| p.bus_addr.clone()));
            if let Some(json) = reply.layout {
                match Layout::from_json(&json) {
                    Ok(layout) => {
                        let version = layout.version;
                        match node.adopt(layout).await {
                            Ok(()) => return,
                            Err(e) => {
                                if !cluster_exists {
                                    tracing::warn!(peer = %reply.node, version, error = %e, "a cluster exists but does not include this node yet: add it with `kvtool cluster join` (CLUSTER LAYOUT ASSIGN) on a member");
                                }
                                cluster_exists = true;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(peer = %reply.node, error = %e, "damaged layout from peer")
                    }
                }
            }
        }
        if cluster_exists {
            // Waits for the layout that adds it (pushed by the member that applies it).
        } else if let Err(e) = make_first_layout(&node).await {
            tracing::error!(error = %e, "cannot make the first layout");
        }
        tokio::select! {
            _ = tokio::time::sleep(ROUND) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Makes and spreads the first layout if enough nodes met and this one has the smallest id.
async fn make_first_layout(node: &Arc<ClusterNode>) -> Result<(), String> {
    let met: Vec<NodeInfo> = node.met.lock().values().cloned().collect();
    let smallest = met.iter().map(|n| n.id).min();
    if met.len() < node.config.expect || smallest != Some(node.me.id) || node.layout.get().is_some()
    {
        return Ok(());
    }
    let layout = Layout::initial(new_cluster_id(), met, node.config.cluster.replicas)
        .map_err(|e| e.to_string())?;
    node.adopt(layout.clone()).await?;
    tracing::info!(nodes = layout.nodes.len(), "made the first cluster layout");
    for n in &layout.nodes {
        if n.id == node.me.id {
            continue;
        }
        if let Some(peer) = node.peers.peer(n.id) {
            // Best effort: peers that miss the push take the layout from a hello answer.
            if let Err(e) = peer.push_layout(bus::blob(&layout)).await {
                tracing::debug!(peer = %n.id, error = %e, "layout push failed; the peer will fetch it");
            }
        }
    }
    Ok(())
}
