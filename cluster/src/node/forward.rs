//! The node's part of one proposer per key (crate::forward): who proposes for a key,
//! sending a command there, and running the commands other nodes send here.

use super::ClusterNode;
use crate::forward::{ForwardError, ForwardServer, Forwarded};
use crate::replica_api::{ItemKey, ReplicaError};
use crate::NodeId;
use bytes::Bytes;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The server's runner of forwarded commands, and what forwarding did.
#[derive(Default)]
pub(super) struct Forwarding {
    server: RwLock<Option<ForwardServer>>,
    /// Commands this node sent to their key's proposer and got a reply for.
    sent: AtomicU64,
    /// Commands the proposer never got, which this node then ran itself.
    ran_here: AtomicU64,
    /// Commands sent whose outcome is unknown (no answer).
    unanswered: AtomicU64,
    /// Commands other nodes sent here.
    served: AtomicU64,
}

impl Forwarding {
    /// CLUSTER INFO fields.
    pub(super) fn info(&self) -> Vec<(String, String)> {
        [
            ("kvd_consensus_forwarded", &self.sent),
            ("kvd_consensus_forward_fallbacks", &self.ran_here),
            ("kvd_consensus_forward_unanswered", &self.unanswered),
            ("kvd_consensus_forwards_served", &self.served),
        ]
        .into_iter()
        .map(|(name, n)| (name.to_string(), n.load(Ordering::Relaxed).to_string()))
        .collect()
    }
}

impl ClusterNode {
    /// The node that proposes for `key` when it is not this one (and forwarding is on).
    /// A node that may not coordinate (removed from the layout, its clock off) sends
    /// nothing either: its client gets the refusal it would get for any request.
    pub(super) fn proposer_of(&self, key: &ItemKey) -> Option<NodeId> {
        if !self.config.cluster.forward_consensus || self.ready("write").is_err() {
            return None;
        }
        self.coordinator
            .proposer(&key.key)
            .filter(|&node| node != self.me.id)
    }

    /// Sends `command` to `node`, its key's proposer, and waits for the reply as long as
    /// the proposer may run it (the consensus timeout) and one request more.
    pub(super) async fn forward_to(
        &self,
        node: NodeId,
        command: Forwarded,
    ) -> Result<Bytes, ForwardError> {
        let f = &self.forwarding;
        let answer = match self.peers.peer(node) {
            None => Err(ForwardError::NotSent(format!(
                "no bus address for node {node}"
            ))),
            Some(client) => {
                let c = &self.config.cluster;
                client
                    .propose(command, c.consensus_timeout + c.request_timeout)
                    .await
            }
        };
        let counter = match &answer {
            Ok(_) => &f.sent,
            Err(ForwardError::NotSent(_)) => &f.ran_here,
            Err(ForwardError::Unknown(_)) => &f.unanswered,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        answer
    }

    /// Runs a command another node sent here, through the server.
    pub(super) async fn propose_here(&self, command: Forwarded) -> Result<Bytes, ReplicaError> {
        let server = self.forwarding.server.read().clone();
        let server = server.ok_or_else(|| {
            ReplicaError::Failed("this node's server runs no commands for other nodes yet".into())
        })?;
        self.forwarding.served.fetch_add(1, Ordering::Relaxed);
        Ok(server(command).await)
    }

    /// Installs the server's runner of forwarded commands.
    pub(super) fn serve_forwarded(&self, server: ForwardServer) {
        *self.forwarding.server.write() = Some(server);
    }
}
