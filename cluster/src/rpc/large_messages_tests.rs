//! Requests and answers of many large records on every carrier: a write batch whose
//! message would pass the bus bound goes in parts, and a read whose answer would is
//! refused by the replica and asked again in parts (rpc/client.rs, crate::record_size).
//! Before, both were lost on the way: the carrier refused the message and the caller
//! timed out, so an MGET of forty 1 MiB values failed on a ring.

use super::replica_stream_tests::{serving_with, tombstone};
use super::server::Serves;
use super::tests::{key, version, Server};
use super::{BusLimits, ClientConfig, PeerClient};
use crate::replica_api::{ItemKey, ReplicaApi, ReplicaError, WriteItem, WriteOutcome};
use crate::Record;
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// A small bus bound, so a handful of records passes it.
const BOUND: usize = 16 << 10;

/// Six records of 3000 bytes: 18 KB, above [`BOUND`]; each alone far below it.
const KEYS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

fn large(ts: u64) -> Record {
    Record::string(version(ts), Bytes::from(vec![b'v'; 3000]), None)
}

/// A fake replica and a client, both with the bus bound [`BOUND`].
async fn serving_small_messages(serves: Serves) -> (Server, PeerClient) {
    let limits = BusLimits {
        max_message_bytes: BOUND,
        ..BusLimits::default()
    };
    let config = ClientConfig {
        max_message_bytes: BOUND,
        ..ClientConfig::default()
    };
    serving_with(serves, limits, config).await
}

const ALL_CARRIERS: [Serves; 3] = [Serves::StreamsAndLinks, Serves::Streams, Serves::Unary];

#[tokio::test]
async fn a_write_batch_above_the_bus_bound_is_sent_in_parts() {
    for serves in ALL_CARRIERS {
        let (s, c) = serving_small_messages(serves).await;
        let items: Vec<WriteItem> = KEYS
            .iter()
            .map(|k| WriteItem {
                key: key(k),
                record: large(1),
            })
            .collect();
        assert_eq!(
            c.write(items).await,
            Ok(vec![WriteOutcome::Applied; KEYS.len()]),
            "{serves:?}"
        );
        assert_eq!(s.replica.data.lock().len(), KEYS.len(), "{serves:?}");
        // The connection still serves small requests.
        assert_eq!(
            c.write(tombstone("small", 2)).await,
            Ok(vec![WriteOutcome::Applied]),
            "{serves:?}"
        );
    }
}

#[tokio::test]
async fn a_read_whose_answer_passes_the_bus_bound_is_asked_again_in_parts() {
    for serves in ALL_CARRIERS {
        let (s, c) = serving_small_messages(serves).await;
        for k in KEYS {
            s.replica.data.lock().insert(key(k), large(1));
        }
        let keys: Vec<ItemKey> = KEYS.iter().map(|k| key(k)).collect();
        let asked = s.replica.reads_entered.load(Ordering::SeqCst);
        assert_eq!(
            c.read(keys).await,
            Ok(vec![Some(large(1)); KEYS.len()]),
            "{serves:?}"
        );
        // One refused read of six keys, then halves of three (each 9 KB) answered.
        let reads = s.replica.reads_entered.load(Ordering::SeqCst) - asked;
        assert_eq!(reads, 3, "{serves:?}: reads served");
    }
}

/// A record alone above the bound (an older build stored it, before the bound) cannot
/// travel: the replica says so at once, where the carrier used to drop the answer and
/// the asker waited for its whole timeout.
#[tokio::test]
async fn one_record_above_the_bus_bound_is_refused_at_once() {
    for serves in ALL_CARRIERS {
        let (s, c) = serving_small_messages(serves).await;
        let huge = Record::string(version(1), Bytes::from(vec![b'v'; BOUND + 1]), None);
        s.replica.data.lock().insert(key("huge"), huge);
        let started = std::time::Instant::now();
        let answer = c.read(vec![key("huge")]).await;
        assert!(
            matches!(answer, Err(ReplicaError::TooLarge(_))),
            "{serves:?}: {answer:?} after {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_bucket_whose_leaves_pass_the_bus_bound_comes_in_pages() {
    let (s, c) = serving_small_messages(Serves::StreamsAndLinks).await;
    // Six keys of 3000 bytes: their leaves alone pass the bound.
    let keys: Vec<ItemKey> = KEYS
        .iter()
        .map(|k| ItemKey {
            db: 0,
            key: Bytes::from(format!("{k}{}", ".".repeat(3000))),
        })
        .collect();
    for k in &keys {
        s.replica.data.lock().insert(k.clone(), large(1));
    }
    let leaves = c.merkle_leaves(3, 7).await.expect("every page");
    let mut got: Vec<ItemKey> = leaves.iter().map(|l| l.key.clone()).collect();
    got.sort();
    let mut want = keys.clone();
    want.push(ItemKey {
        db: 1,
        key: Bytes::from_static(b"leaf"),
    });
    want.sort();
    assert_eq!(got, want, "each leaf once");
    assert!(leaves.iter().all(|l| l.hash == [7; 16]));
}
