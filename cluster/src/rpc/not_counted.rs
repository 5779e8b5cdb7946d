//! Writes a replica stores but that must not count toward W: a replica catching up
//! after an unclean restart answers them `StoredNotCounted` (cluster/src/catch_up.rs;
//! docs/cluster-protocol.md, "Writes a catching-up replica stores").
//!
//! On the wire that answer is a new field of `WriteOutcome`, which a build from before
//! it does not know: it would decode the message as "applied" and count it. So a sender
//! says it reads the field (`takes_not_counted` in `WriteRequest`), and a sender that
//! does not is answered `FAILED_PRECONDITION` for the whole batch instead, after the
//! writes were stored: every build takes an error as no acknowledgement (and hints the
//! write), which is what "not counted" asks for. A replica from before the field never
//! sends it, so a newer coordinator counts its answers as it always did.

use super::convert::outcome_to_pb;
use super::pb;
use crate::replica_api::WriteOutcome;
use tonic::Status;

/// The refusal of a sender that cannot read `stored_not_counted`; the bus answers it
/// with `FAILED_PRECONDITION`, which clients read as `ReplicaError::CatchingUp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotCounted;

impl From<NotCounted> for Status {
    fn from(_: NotCounted) -> Status {
        Status::failed_precondition(
            "replica catching up after an unclean restart: the writes were stored but do not count toward W",
        )
    }
}

/// The reply to a Write: the outcomes, or the refusal when some item was stored but not
/// counted and the sender cannot read that.
pub(crate) fn write_reply(
    outcomes: Vec<WriteOutcome>,
    sender_takes_it: bool,
) -> Result<pb::WriteResponse, NotCounted> {
    if !sender_takes_it && outcomes.contains(&WriteOutcome::StoredNotCounted) {
        return Err(NotCounted);
    }
    Ok(pb::WriteResponse {
        outcomes: outcomes.into_iter().map(outcome_to_pb).collect(),
    })
}

/// The reply to an Accept, whose request has no such flag. Acceptors never answer
/// `StoredNotCounted` (their state is fsynced before they answer); were one to, the
/// sender gets the refusal rather than an answer it would count.
pub(crate) fn accept_reply(outcome: WriteOutcome) -> Result<pb::WriteOutcome, NotCounted> {
    match outcome {
        WriteOutcome::StoredNotCounted => Err(NotCounted),
        o => Ok(outcome_to_pb(o)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::convert::outcome_from_pb;
    use crate::{NodeId, Version};
    use prost::Message;

    fn outcomes() -> Vec<WriteOutcome> {
        let current = Version {
            ts: 7 << 16,
            node: NodeId(2),
        };
        vec![
            WriteOutcome::Applied,
            WriteOutcome::StoredNotCounted,
            WriteOutcome::Stale { current },
        ]
    }

    #[test]
    fn a_sender_that_takes_it_reads_every_outcome_back() {
        let reply = write_reply(outcomes(), true).unwrap();
        let back: Vec<_> = reply
            .outcomes
            .into_iter()
            .map(|o| outcome_from_pb(o).unwrap())
            .collect();
        assert_eq!(back, outcomes());
    }

    #[test]
    fn a_sender_that_does_not_gets_a_refusal_never_an_applied() {
        let refused = Status::from(write_reply(outcomes(), false).unwrap_err());
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
        // Nothing to hide: an older sender gets the outcomes as before.
        let counted = vec![WriteOutcome::Applied];
        assert!(write_reply(counted, false).is_ok());
        assert!(accept_reply(WriteOutcome::StoredNotCounted).is_err());
        assert!(accept_reply(WriteOutcome::Applied).is_ok());
    }

    /// The message as a build from before the field decodes it.
    #[derive(Clone, PartialEq, prost::Message)]
    struct OlderWriteOutcome {
        #[prost(bytes = "bytes", tag = "1")]
        stale_current: bytes::Bytes,
        #[prost(bool, tag = "2")]
        stale: bool,
    }

    #[test]
    fn an_older_build_would_count_the_field_so_it_is_never_sent_to_one() {
        // Why the refusal above exists: the new field alone reads as "applied" to an
        // older build (proto3 drops unknown fields), indistinguishable from a counted
        // acknowledgement.
        let wire = outcome_to_pb(WriteOutcome::StoredNotCounted).encode_to_vec();
        let older = OlderWriteOutcome::decode(wire.as_slice()).unwrap();
        assert_eq!(
            older,
            OlderWriteOutcome::default(),
            "applied, to an older build"
        );
        // And an older replica's answers (which never set it) read as before.
        let older_applied = OlderWriteOutcome::default().encode_to_vec();
        let read = pb::WriteOutcome::decode(older_applied.as_slice()).unwrap();
        assert_eq!(outcome_from_pb(read), Ok(WriteOutcome::Applied));
    }

    #[test]
    fn an_outcome_both_stale_and_not_counted_is_malformed() {
        let both = pb::WriteOutcome {
            stale: true,
            stale_current: crate::rpc::convert::version_to_pb(Version::ZERO),
            stored_not_counted: true,
        };
        assert!(outcome_from_pb(both).is_err());
    }
}
