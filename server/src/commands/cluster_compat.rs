//! What Redis Cluster-aware clients ask of a node (`cluster-compat yes`; docs/cluster.md,
//! "Redis Cluster-aware clients"): CLUSTER SLOTS and CLUSTER SHARDS in Redis 7's reply
//! shapes, each node a primary without replicas of the slots it is advertised for
//! (crate::cluster_mode::advertised), and READONLY / READWRITE / ASKING, which only
//! answer OK: kvd never redirects, so there is nothing for them to change. Without
//! compatibility mode CLUSTER SLOTS and SHARDS stay unknown subcommands and the three
//! connection commands answer as Redis does with cluster support disabled.

use super::args::err;
use super::{unknown_subcommand, CmdResult, Ctx};
use crate::cluster_mode::advertised::{AdvertisedSlots, SlotRange};
use crate::config::Config;
use crate::protocol::Reply;
use bytes::Bytes;
use kv_cluster::replica_api::PeerState;
use kv_cluster::view::{ClusterView, NodeView};
use kv_cluster::NodeId;

const DISABLED: &str = "ERR This instance has cluster support disabled";

/// Whether this node presents itself to Redis Cluster-aware clients.
pub fn compat_enabled(ctx: &Ctx<'_>) -> bool {
    ctx.srv.config.read().cluster.compat
}

/// What INFO's `redis_mode` and HELLO's `mode` say: `cluster` to cluster-aware clients.
pub fn redis_mode(cfg: &Config) -> &'static str {
    if cfg.cluster.compat {
        "cluster"
    } else {
        "standalone"
    }
}

/// The cluster as this node sees it, when compatibility mode is on; else the reply a
/// node without it gives to `a` (CLUSTER SLOTS and SHARDS are unknown there).
fn compat_view(ctx: &Ctx<'_>, a: &[Bytes]) -> Result<ClusterView, Reply> {
    if !compat_enabled(ctx) {
        return Err(unknown_subcommand("cluster", &a[1]));
    }
    ctx.srv
        .ring
        .get()
        .and_then(|ring| ring.view())
        .ok_or_else(|| err(DISABLED))
}

/// A node's client address as Redis shows it: the host and the port apart.
fn host_and_port(node: &NodeView) -> (String, i64) {
    match node.resp_addr.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port.parse().unwrap_or(0),
        ),
        None => (node.resp_addr.clone(), 0),
    }
}

fn node_of(view: &ClusterView, id: NodeId) -> Option<&NodeView> {
    view.nodes.iter().find(|n| n.id == id)
}

fn bulk(s: impl Into<String>) -> Reply {
    Reply::Bulk(Bytes::from(s.into()))
}

/// CLUSTER SLOTS: `[first, last, [host, port, id, []]]` per merged range.
pub fn cluster_slots(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let view = compat_view(ctx, a)?;
    let ranges = AdvertisedSlots::of(&view).ranges();
    Ok(Reply::Array(
        ranges
            .iter()
            .filter_map(|r| node_of(&view, r.owner).map(|n| slots_entry(r, n)))
            .collect(),
    ))
}

fn slots_entry(r: &SlotRange, node: &NodeView) -> Reply {
    let (host, port) = host_and_port(node);
    Reply::Array(vec![
        Reply::Int(r.first as i64),
        Reply::Int(r.last as i64),
        Reply::Array(vec![
            bulk(host),
            Reply::Int(port),
            bulk(node.id.to_string()),
            // Redis 7's networking metadata (hostname): none.
            Reply::Array(Vec::new()),
        ]),
    ])
}

/// CLUSTER SHARDS: one shard per node of the layout, its one primary being the node,
/// with the slot ranges it is advertised for (none for a node that is not up).
pub fn cluster_shards(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let view = compat_view(ctx, a)?;
    let ranges = AdvertisedSlots::of(&view).ranges();
    Ok(Reply::Array(
        view.nodes
            .iter()
            .map(|node| {
                let slots = ranges
                    .iter()
                    .filter(|r| r.owner == node.id)
                    .flat_map(|r| [Reply::Int(r.first as i64), Reply::Int(r.last as i64)])
                    .collect();
                Reply::Map(vec![
                    (bulk("slots"), Reply::Array(slots)),
                    (bulk("nodes"), Reply::Array(vec![shard_node(node)])),
                ])
            })
            .collect(),
    ))
}

fn shard_node(node: &NodeView) -> Reply {
    let (host, port) = host_and_port(node);
    // Redis says "failed" only of a node the cluster agreed is down; kvd advertises no
    // slot on a node its failure detector does not see up, so it says so of both.
    let health = match node.state {
        PeerState::Up => "online",
        PeerState::Suspect | PeerState::Down => "failed",
    };
    Reply::Map(vec![
        (bulk("id"), bulk(node.id.to_string())),
        (bulk("port"), Reply::Int(port)),
        (bulk("ip"), bulk(host.clone())),
        (bulk("endpoint"), bulk(host)),
        (bulk("role"), bulk("master")),
        (bulk("replication-offset"), Reply::Int(0)),
        (bulk("health"), bulk(health)),
    ])
}

/// READONLY, READWRITE and ASKING: OK in compatibility mode. Every kvd node serves
/// reads and writes of every key, so a client's read-from-replica or redirection state
/// changes nothing.
pub fn cluster_client_mode(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    if compat_enabled(ctx) {
        Ok(Reply::Ok)
    } else {
        Err(err(DISABLED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(addr: &str, state: PeerState) -> NodeView {
        NodeView::bare(NodeId(9), addr.into(), state)
    }

    #[test]
    fn slots_entries_follow_redis_7() {
        let n = node("127.0.0.1:7001", PeerState::Up);
        let r = SlotRange {
            first: 0,
            last: 191,
            owner: n.id,
        };
        assert_eq!(
            slots_entry(&r, &n),
            Reply::Array(vec![
                Reply::Int(0),
                Reply::Int(191),
                Reply::Array(vec![
                    bulk("127.0.0.1"),
                    Reply::Int(7001),
                    bulk(format!("{:040x}", 9)),
                    Reply::Array(Vec::new()),
                ]),
            ])
        );
        assert_eq!(
            host_and_port(&node("[::1]:7002", PeerState::Up)),
            ("::1".to_string(), 7002)
        );
    }

    #[test]
    fn shard_nodes_report_health_from_the_failure_detector() {
        let health = |state| match shard_node(&node("h:1", state)) {
            Reply::Map(fields) => fields
                .into_iter()
                .find(|(k, _)| *k == bulk("health"))
                .map(|(_, v)| v),
            _ => None,
        };
        assert_eq!(health(PeerState::Up), Some(bulk("online")));
        assert_eq!(health(PeerState::Suspect), Some(bulk("failed")));
        assert_eq!(health(PeerState::Down), Some(bulk("failed")));
    }
}
