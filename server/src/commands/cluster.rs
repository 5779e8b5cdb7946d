//! CLUSTER INFO / NODES / MYID / KEYSLOT / PREFLIST (docs/cluster.md; SLOTS and SHARDS
//! are in cluster_compat.rs). REPAIR waits for
//! anti-entropy and so runs on the ring path (crate::cluster_mode); here it only answers
//! on a node without cluster support. On such a node every subcommand answers as Redis
//! does when cluster support is disabled.

use super::args::err;
use super::cluster_compat::compat_enabled;
use super::{CmdResult, Ctx};
use crate::cluster_mode::advertised::{slot_ranges, AdvertisedSlots};
use crate::protocol::Reply;
use bytes::Bytes;
use kv_cluster::replica_api::PeerState;
use kv_cluster::ring::{NodeRow, Ring};
use kv_keyspace::slot::key_slot;
use std::sync::Arc;

const DISABLED: &str = "ERR This instance has cluster support disabled";

fn ring(ctx: &Ctx<'_>) -> Result<Arc<dyn Ring>, Reply> {
    ctx.srv.ring.get().cloned().ok_or_else(|| err(DISABLED))
}

/// CLUSTER INFO: Redis's `name:value` lines, then kvd's own fields.
pub fn cluster_info(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let ring = ring(ctx)?;
    let mut text = String::new();
    for (name, value) in ring.info() {
        text.push_str(&format!("{name}:{value}\r\n"));
    }
    Ok(Reply::Bulk(Bytes::from(text)))
}

/// CLUSTER MYID
pub fn cluster_myid(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Reply::Bulk(Bytes::from(ring(ctx)?.my_id().to_string())))
}

/// CLUSTER KEYSLOT key: Redis's slot of the key (CRC16 of the key or its hash tag).
pub fn cluster_keyslot(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    ring(ctx)?;
    Ok(Reply::Int(key_slot(&a[2]) as i64))
}

/// CLUSTER NODES: one line per node in Redis's format. Every kvd node serves every key;
/// the slots shown are those of the partitions the node is first in preference for, or
/// in compatibility mode those it is advertised for (the first node up, as CLUSTER
/// SLOTS shows them).
pub fn cluster_nodes(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    let ring = ring(ctx)?;
    let advertised = compat_enabled(ctx)
        .then(|| ring.view().map(|v| AdvertisedSlots::of(&v)))
        .flatten();
    let mut text = String::new();
    for mut row in ring.nodes() {
        if let Some(a) = &advertised {
            row.first_partitions = a.partitions_of(row.id);
        }
        text.push_str(&nodes_line(&row));
        text.push('\n');
    }
    Ok(Reply::Bulk(Bytes::from(text)))
}

/// `<id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <epoch> <link> <slots>`
fn nodes_line(row: &NodeRow) -> String {
    let bus_port = row.bus_addr.rsplit(':').next().unwrap_or("0");
    let mut flags = Vec::new();
    if row.myself {
        flags.push("myself");
    }
    flags.push("master");
    match row.state {
        PeerState::Up => {}
        PeerState::Suspect => flags.push("fail?"),
        PeerState::Down => flags.push("fail"),
    }
    let link = if row.state == PeerState::Down {
        "disconnected"
    } else {
        "connected"
    };
    let mut line = format!(
        "{} {}@{} {} - 0 0 0 {}",
        row.id,
        row.resp_addr,
        bus_port,
        flags.join(","),
        link
    );
    for (first, last) in slot_ranges(&row.first_partitions) {
        if first == last {
            line.push_str(&format!(" {first}"));
        } else {
            line.push_str(&format!(" {first}-{last}"));
        }
    }
    line
}

/// CLUSTER PREFLIST key: the key's replicas in preference order, each as
/// `[id, client address, state]`.
pub fn cluster_preflist(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let rows = ring(ctx)?
        .preflist(&a[2])
        .map_err(|e| Reply::error(e.to_string()))?;
    Ok(Reply::Array(
        rows.iter()
            .map(|r| {
                Reply::Array(vec![
                    Reply::Bulk(Bytes::from(r.id.to_string())),
                    Reply::Bulk(Bytes::from(r.resp_addr.clone())),
                    Reply::Bulk(Bytes::from(state_name(r.state))),
                ])
            })
            .collect(),
    ))
}

/// How CLUSTER PREFLIST and `kvtool cluster status` name a state.
pub fn state_name(s: PeerState) -> &'static str {
    match s {
        PeerState::Up => "up",
        PeerState::Suspect => "suspect",
        PeerState::Down => "down",
    }
}

/// CLUSTER CONSISTENCY [ONE|QUORUM|ALL|SERIAL]: how many replicas this connection's
/// reads and writes wait for (cqlsh's CONSISTENCY), or SERIAL: reads through consensus
/// (cqlsh's SERIAL CONSISTENCY); without an argument, the current level.
pub fn cluster_consistency(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    ring(ctx)?;
    match a.get(2) {
        None => Ok(Reply::Bulk(Bytes::from(ctx.client.consistency.as_str()))),
        Some(level) => {
            ctx.client.consistency = std::str::from_utf8(level)
                .ok()
                .and_then(|l| l.parse().ok())
                .ok_or_else(|| err("ERR consistency level must be ONE, QUORUM, ALL or SERIAL"))?;
            Ok(Reply::Ok)
        }
    }
}

/// CLUSTER REPAIR and CLUSTER MERKLE on a node without cluster support (the ring path
/// answers otherwise).
pub fn cluster_ring_only(ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    ring(ctx)?;
    Err(err("ERR this CLUSTER subcommand runs on the ring path"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_cluster::NodeId;

    #[test]
    fn nodes_lines_follow_redis_format_and_merge_slot_ranges() {
        let row = NodeRow {
            id: NodeId(7),
            resp_addr: "127.0.0.1:7001".into(),
            bus_addr: "127.0.0.1:17001".into(),
            myself: true,
            state: PeerState::Up,
            first_partitions: vec![2, 0, 1, 5],
            partitions: 4,
        };
        assert_eq!(
            nodes_line(&row),
            format!(
                "{} 127.0.0.1:7001@17001 myself,master - 0 0 0 connected 0-191 320-383",
                NodeId(7)
            )
        );
        let down = NodeRow {
            myself: false,
            state: PeerState::Down,
            first_partitions: vec![],
            ..row
        };
        assert!(nodes_line(&down).ends_with("master,fail - 0 0 0 disconnected"));
    }
}
