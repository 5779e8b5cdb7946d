//! PUBLISH and SPUBLISH on a cluster node (docs/pubsub.md, "Cluster mode"). The message
//! reaches this node's subscribers as on a single node, and is queued for every other
//! node (kv_cluster::pubsub_fanout), whose subscribers get it from the bus. The reply
//! counts this node's receivers only, as Redis Cluster's does.

use crate::commands::{self, table::CommandSpec};
use crate::protocol::Reply;
use crate::pubsub::Kind;
use crate::state::{Client, Shared};
use bytes::Bytes;
use kv_cluster::pubsub_fanout::PubSubMessage;
use kv_cluster::ring::Ring;
use std::sync::Arc;

/// Runs PUBLISH or SPUBLISH here, then sends the message to the other nodes. A refused
/// PUBLISH (ACL, wrong arguments) goes nowhere.
pub fn publish(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &mut Client,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> Reply {
    let reply = commands::run(srv, client, spec, args);
    if let (false, [_, channel, message]) = (reply.is_error(), args) {
        ring.broadcast_pubsub(PubSubMessage {
            channel: channel.clone(),
            message: message.clone(),
            sharded: spec.name == "spublish",
        });
    }
    reply
}

/// Hands messages published through other nodes to this node's subscribers. Holds the
/// server weakly: the ring must not keep it alive.
pub fn listen(srv: &Arc<Shared>, ring: &Arc<dyn Ring>) {
    let weak = Arc::downgrade(srv);
    ring.listen_pubsub(Arc::new(move |m: &PubSubMessage| {
        weak.upgrade().map_or(0, |srv| deliver(&srv, m))
    }));
}

/// Delivers one message from another node; returns the deliveries made here.
fn deliver(srv: &Shared, m: &PubSubMessage) -> u64 {
    let kind = if m.sharded {
        Kind::Shard
    } else {
        Kind::Channel
    };
    srv.pubsub.publish(kind, &m.channel, &m.message).max(0) as u64
}
