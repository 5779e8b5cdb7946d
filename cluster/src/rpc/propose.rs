//! The `Propose` RPC (docs/cluster-protocol.md): a client command on one key, sent to
//! the key's proposer to run through consensus there (crate::forward). The answer is
//! the command's reply, encoded by the server. Served like every other call:
//! authenticated before the body is decoded, at most `max_items` arguments.

// tonic's service trait returns `Status` by value.
#![allow(clippy::result_large_err)]

use super::client::PeerClient;
use super::handler::BusHandler;
use super::pb;
use crate::config::Consistency;
use crate::forward::{ForwardError, Forwarded};
use bytes::Bytes;
use std::time::Duration;
use tonic::Status;

fn consistency_to_pb(c: Consistency) -> u32 {
    match c {
        Consistency::One => 1,
        Consistency::Quorum => 2,
        Consistency::All => 3,
        Consistency::Serial => 4,
    }
}

fn consistency_from_pb(c: u32) -> Result<Consistency, Status> {
    Ok(match c {
        1 => Consistency::One,
        2 => Consistency::Quorum,
        3 => Consistency::All,
        4 => Consistency::Serial,
        other => {
            return Err(Status::invalid_argument(format!(
                "unknown consistency level {other}"
            )))
        }
    })
}

impl PeerClient {
    /// Sends `command` to the peer to run as its key's proposer; waits up to `timeout`
    /// (the consensus timeout and a request's worth more). Never retried: a command
    /// that was sent may have run.
    pub async fn propose(
        &self,
        command: Forwarded,
        timeout: Duration,
    ) -> Result<Bytes, ForwardError> {
        let msg = pb::ProposeRequest {
            db: command.db,
            consistency: consistency_to_pb(command.consistency),
            args: command.args,
            has_request: command.request.is_some(),
            request: command.request.unwrap_or_default(),
        };
        let r = self
            .call_within(timeout, "Propose", msg, |mut c, r| async move {
                c.propose(r).await
            })
            .await
            .map_err(ForwardError::of)?;
        Ok(r.reply)
    }
}

/// Serves one admitted `Propose`: the node's server runs the command and the reply goes
/// back whatever it is (errors of the command included).
pub(super) async fn serve(
    handler: &dyn BusHandler,
    req: pb::ProposeRequest,
) -> Result<pb::ProposeResponse, Status> {
    if req.args.is_empty() {
        return Err(Status::invalid_argument("a command without a name"));
    }
    let command = Forwarded {
        db: req.db,
        consistency: consistency_from_pb(req.consistency)?,
        args: req.args,
        request: req.has_request.then_some(req.request),
    };
    let reply = handler
        .propose(command)
        .await
        .map_err(super::server::status_of)?;
    Ok(pb::ProposeResponse { reply })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_consistency_level_round_trips() {
        for c in [
            Consistency::One,
            Consistency::Quorum,
            Consistency::All,
            Consistency::Serial,
        ] {
            assert_eq!(consistency_from_pb(consistency_to_pb(c)).ok(), Some(c));
        }
        assert!(consistency_from_pb(0).is_err());
        assert!(consistency_from_pb(99).is_err());
    }
}
