//! The largest record a ring stores, and the largest message its nodes exchange.
//!
//! Every record must travel whole in one bus message: a replica write, a read answer,
//! a page of a partition stream or a hint replay carries at least one record, and the
//! bus refuses messages above [`MAX_BUS_MESSAGE_BYTES`] before allocating them (a
//! hostile peer must not make a node allocate what it likes). So the coordinator
//! refuses a write whose record would be larger than [`MAX_RECORD_BYTES`] before
//! sending anything: the client gets an error, and no replica holds a record that
//! could never be copied to the others (before this bound such a write landed on the
//! coordinator's own replica, timed out on the others, and anti-entropy retried it
//! forever). Requests and answers of several records are split to fit (rpc/client.rs,
//! replica_store's pages). Cassandra bounds a mutation the same way (half a commit log
//! segment, 16 MiB by default); Redis's own bound (512 MB) is a single process's.

use crate::quorum::ClusterError;
use crate::txn_lock::Intent;
use crate::{Body, Record};

/// Largest encoded message either way on the cluster bus (gRPC calls, streams, links).
pub const MAX_BUS_MESSAGE_BYTES: usize = 16 << 20;

/// Room for what surrounds one record in a message: the request or answer envelope,
/// the key, the version, request records.
const ENVELOPE_BYTES: usize = 64 << 10;

/// Largest record (its key and value bytes) a ring stores.
pub const MAX_RECORD_BYTES: usize = MAX_BUS_MESSAGE_BYTES - ENVELOPE_BYTES;

/// The bytes of `body` that grow with the user's data.
pub fn body_bytes(body: &Body) -> usize {
    match body {
        Body::Value { payload, .. } => payload.len(),
        Body::Tombstone => 0,
        Body::Siblings(s) => s.values().map(|(_, v)| v.len()).sum(),
        Body::SiblingsWrite(w) => w.value.as_ref().map_or(0, |v| v.len()),
    }
}

/// The bytes of `record` of `key` that grow with the user's data: its value, the value
/// a transaction's lock on it will write, and the replies its request records keep.
pub fn record_bytes(key: &[u8], record: &Record) -> usize {
    let intent = match record.txn.lock.as_deref().map(|l| &l.intent) {
        Some(Intent::Write { body, .. }) => body_bytes(body),
        _ => 0,
    };
    let requests: usize = record
        .requests
        .iter()
        .map(|r| r.id.len() + r.reply.len())
        .sum();
    key.len() + body_bytes(&record.body) + intent + requests
}

/// Refuses a blind write of `body` to `key` whose record would pass the bound.
pub fn check_body(key: &[u8], body: &Body) -> Result<(), ClusterError> {
    check_record_bytes(key.len() + body_bytes(body))
}

/// Refuses a write of `bytes` (from [`record_bytes`]) above [`MAX_RECORD_BYTES`]:
/// nothing was sent, so nothing was written.
pub fn check_record_bytes(bytes: usize) -> Result<(), ClusterError> {
    if bytes <= MAX_RECORD_BYTES {
        return Ok(());
    }
    Err(ClusterError::Refused(format!(
        "ERR the value is too large for a kvd cluster: its record would hold {bytes} bytes, \
         at most {MAX_RECORD_BYTES} travel between nodes; nothing was written"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NodeId, Version};
    use bytes::Bytes;

    fn string_of(len: usize) -> Record {
        let version = Version {
            ts: 1 << 16,
            node: NodeId(1),
        };
        Record::string(version, Bytes::from(vec![b'v'; len]), None)
    }

    #[test]
    fn a_record_at_the_bound_passes_and_one_byte_more_is_refused() {
        let key = b"k";
        let at = string_of(MAX_RECORD_BYTES - key.len());
        assert_eq!(record_bytes(key, &at), MAX_RECORD_BYTES);
        assert!(check_record_bytes(record_bytes(key, &at)).is_ok());
        let above = string_of(MAX_RECORD_BYTES - key.len() + 1);
        let refused = check_record_bytes(record_bytes(key, &above)).unwrap_err();
        assert!(
            refused.to_string().contains("too large") && refused.to_string().starts_with("ERR "),
            "{refused}"
        );
    }

    #[test]
    fn the_largest_record_fits_in_a_bus_message_with_its_envelope() {
        let key = vec![b'k'; 1024];
        let record = string_of(MAX_RECORD_BYTES - key.len());
        let encoded = record.encode().len() + key.len();
        assert!(
            encoded + 1024 < MAX_BUS_MESSAGE_BYTES,
            "{encoded} bytes leave no room for the message around them"
        );
    }
}
