//! Consensus commands sent to their key's proposer (docs/consistency.md, "One proposer
//! per key").
//!
//! Proposers on different nodes that work on one key refuse each other's ballots: each
//! round's prepare outbids the other's accept, and with many clients on a hot key
//! reaching every node, rounds mostly ended in TIMEOUT (the duelling proposers of
//! Lamport's "Paxos Made Simple", section 2.4). A node's own proposers already take turns
//! per key (coordinator/paxos.rs, `KeyTurns`). So a node sends a consensus command to the
//! key's proposer, the first replica of the key that failure detection sees up, which
//! runs it in its turn, as a distinguished proposer does in Multi-Paxos.
//!
//! Safety never depends on it: every node still may propose, and does when the proposer
//! cannot be reached, or when two nodes' views disagree on who it is. Only the outcome
//! of a command the proposer may have started is unknown to the client (TIMEOUT), as for
//! any consensus round whose coordinator stopped answering.

use crate::config::Consistency;
use crate::replica_api::ReplicaError;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A client command on one key, as the node that received it sends it to the proposer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The client's database.
    pub db: u32,
    /// The client's consistency level.
    pub consistency: Consistency,
    /// The command and its arguments, as the client sent them.
    pub args: Vec<Bytes>,
    /// The request id of IDEMPOTENT around the command, if any.
    pub request: Option<Bytes>,
}

/// The reply of a forwarded command, encoded by the server (opaque to the cluster).
pub type ForwardFuture = Pin<Box<dyn Future<Output = Bytes> + Send>>;

/// Runs commands other nodes forward here (installed by the server).
pub type ForwardServer = Arc<dyn Fn(Forwarded) -> ForwardFuture + Send + Sync>;

/// Why a forwarded command has no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// The proposer never ran it (unreachable, refused, an older build): the sender
    /// runs it itself.
    #[error("not sent: {0}")]
    NotSent(String),
    /// Sent, and no answer came: the proposer may have run it.
    #[error("{0}")]
    Unknown(String),
}

impl ForwardError {
    /// What a failed `Propose` call means for the command it carried. The proposer runs
    /// a command only after admitting the call, and then always answers with the reply:
    /// a refusal ([`ReplicaError::Failed`] from a status, [`ReplicaError::Overloaded`]
    /// before sending) means it did not run. A connection that could not be opened did
    /// not carry it either; any other transport failure or a timeout may have.
    pub fn of(e: ReplicaError) -> ForwardError {
        match e {
            ReplicaError::Overloaded
            | ReplicaError::CatchingUp
            | ReplicaError::StaleLayout { .. } => ForwardError::NotSent(e.to_string()),
            ReplicaError::Failed(m) if !answered(&m) => ForwardError::NotSent(m),
            ReplicaError::Unreachable(m) if never_connected(&m) => ForwardError::NotSent(m),
            other => ForwardError::Unknown(other.to_string()),
        }
    }
}

/// Whether a failure text says the peer answered (a reply that failed its check) rather
/// than refused the call (rpc/client.rs writes both).
fn answered(message: &str) -> bool {
    message.starts_with("unauthenticated reply") || message.starts_with("malformed reply")
}

/// Whether a transport failure text says no connection was made (hyper's "error trying
/// to connect", the OS's "Connection refused"): nothing was sent.
fn never_connected(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    // hyper cancels the requests still queued on a connection that closed before it
    // wrote them ("operation was canceled"), the ones its own client retries.
    m.contains("error trying to connect")
        || m.contains("operation was canceled")
        || m.contains("tcp connect error")
        || m.contains("connection refused")
        || m.contains("no bus address")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_before_sending_let_the_sender_run_the_command() {
        let not_sent = [
            ReplicaError::Overloaded,
            ReplicaError::Failed("Unimplemented: unknown method Propose".into()),
            ReplicaError::Failed("Unauthenticated: bad signature".into()),
            ReplicaError::Unreachable(
                "transport error: error trying to connect: tcp connect error: Connection refused (os error 111)".into(),
            ),
            ReplicaError::Unreachable("transport error: operation was canceled: connection closed".into()),
        ];
        for e in not_sent {
            assert!(
                matches!(ForwardError::of(e.clone()), ForwardError::NotSent(_)),
                "{e:?}"
            );
        }
        let unknown = [
            ReplicaError::Timeout,
            ReplicaError::Unreachable("transport error: connection reset".into()),
            ReplicaError::Failed("unauthenticated reply: bad mac".into()),
            ReplicaError::Failed("malformed reply from peer: x".into()),
        ];
        for e in unknown {
            assert!(
                matches!(ForwardError::of(e.clone()), ForwardError::Unknown(_)),
                "{e:?}"
            );
        }
    }
}
