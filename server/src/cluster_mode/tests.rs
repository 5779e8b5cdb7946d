//! The ring path with the real command code and admission, over an in-memory ring: proves
//! that commands run unchanged, that writes reach the ring only when the command
//! succeeds, and that ring failures reach the client as errors, never as success.

use super::execute;
use crate::config::Config;
use crate::protocol::Reply;
use crate::state::{Client, Shared};
use async_trait::async_trait;
use bytes::Bytes;
use kv_cluster::config::Consistency;
use kv_cluster::coordinator::{Change, ChangeFn};
use kv_cluster::replica_api::ItemKey;
use kv_cluster::ring::{NodeRow, RepairReport, Ring, RingError};
use kv_cluster::{Body, NodeId, Record, Version};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Default)]
struct FakeRing {
    data: Mutex<BTreeMap<ItemKey, Record>>,
    clock: AtomicU64,
    refuse_writes: AtomicBool,
    last_level: Mutex<Option<Consistency>>,
    consensus_rounds: AtomicU64,
}

#[async_trait]
impl Ring for FakeRing {
    fn my_id(&self) -> NodeId {
        NodeId(1)
    }
    fn info(&self) -> Vec<(String, String)> {
        vec![("cluster_state".into(), "ok".into())]
    }
    fn nodes(&self) -> Vec<NodeRow> {
        Vec::new()
    }
    fn preflist(&self, _key: &[u8]) -> Result<Vec<NodeRow>, RingError> {
        Ok(Vec::new())
    }
    async fn get(&self, key: ItemKey, level: Consistency) -> Result<Option<Record>, RingError> {
        *self.last_level.lock() = Some(level);
        Ok(self.data.lock().get(&key).cloned())
    }
    async fn put(
        &self,
        key: ItemKey,
        body: Body,
        expire_at: Option<i64>,
        level: Consistency,
    ) -> Result<Version, RingError> {
        *self.last_level.lock() = Some(level);
        if self.refuse_writes.load(Ordering::Relaxed) {
            return Err(RingError::Unavailable {
                op: "write",
                needed: 2,
                alive: 1,
            });
        }
        Ok(self.store(key, body, expire_at))
    }
    /// One key's consensus on a single copy: the change function sees the record held.
    async fn consensus(
        &self,
        key: ItemKey,
        level: Consistency,
        change: ChangeFn<'_>,
    ) -> Result<Option<Version>, RingError> {
        *self.last_level.lock() = Some(level);
        self.consensus_rounds.fetch_add(1, Ordering::Relaxed);
        if self.refuse_writes.load(Ordering::Relaxed) {
            return Err(RingError::Unavailable {
                op: "write",
                needed: 2,
                alive: 1,
            });
        }
        let state = self.data.lock().get(&key).cloned();
        let change = change(state.as_ref());
        if change == Change::Keep {
            return Ok(None);
        }
        let version = self.next_version();
        let record = change.into_record(state.as_ref(), version);
        self.data.lock().extend(record.map(|r| (key, r)));
        Ok(Some(version))
    }
    async fn scan(
        &self,
        scope: &kv_cluster::partition_set::PartitionSet,
        db: u32,
        _cursor: u64,
        _count: usize,
        _level: Consistency,
    ) -> Result<(u64, Vec<Bytes>), RingError> {
        let now = crate::keyspace::now_ms();
        let data = self.data.lock();
        let keys = data
            .iter()
            .filter(|(k, r)| {
                k.db == db
                    && scope.contains(kv_keyspace::slot::key_partition(&k.key))
                    && r.live_value(now).is_some()
            })
            .map(|(k, _)| k.key.clone())
            .collect();
        Ok((0, keys))
    }
    async fn repair(&self, _partition: Option<u16>) -> Result<RepairReport, RingError> {
        Ok(RepairReport::default())
    }
    fn observe_replica_ops(&self, _observer: kv_cluster::ring::ReplicaObserver) {}
    async fn merkle_roots(
        &self,
    ) -> Result<Vec<Option<kv_cluster::replica_api::Hash16>>, RingError> {
        Ok(vec![None; 256])
    }
}

impl FakeRing {
    fn next_version(&self) -> Version {
        Version {
            ts: self.clock.fetch_add(1, Ordering::Relaxed) + 1,
            node: NodeId(1),
        }
    }

    fn store(&self, key: ItemKey, body: Body, expire_at: Option<i64>) -> Version {
        let version = self.next_version();
        let rec = Record {
            version,
            expire_at,
            body,
            requests: Vec::new(),
            txn: Default::default(),
        };
        self.data.lock().insert(key, rec);
        version
    }
}

struct Harness {
    srv: Arc<Shared>,
    ring: Arc<FakeRing>,
    client: Client,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            dir: dir.path().join("data"),
            ..Config::default()
        };
        let srv = tokio::task::spawn_blocking(move || crate::server::open(config))
            .await
            .unwrap()
            .unwrap();
        let ring = Arc::new(FakeRing::default());
        let as_ring: Arc<dyn Ring> = ring.clone();
        assert!(srv.ring.set(as_ring).is_ok());
        let info = crate::server::register(&srv, "test".into(), "test".into()).unwrap();
        let client = Client::new(info, srv.acl.open_default());
        Harness {
            srv,
            ring,
            client,
            _dir: dir,
        }
    }

    async fn run(&mut self, words: &[&str]) -> Reply {
        let args: Vec<Bytes> = words.iter().map(|w| Bytes::from(w.to_string())).collect();
        let ring = self.srv.ring.get().unwrap().clone();
        execute(&self.srv, &ring, &mut self.client, &args).await
    }
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::from(s.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_commands_run_their_single_node_code_on_the_ring() {
    let mut h = Harness::new().await;
    assert_eq!(h.run(&["SET", "a", "1"]).await, Reply::Ok);
    assert_eq!(h.run(&["MSET", "b", "2", "c", "3"]).await, Reply::Ok);
    assert_eq!(h.run(&["GET", "a"]).await, bulk("1"));
    assert_eq!(
        h.run(&["MGET", "a", "x", "c"]).await,
        Reply::Array(vec![bulk("1"), Reply::Nil, bulk("3")])
    );
    assert_eq!(h.run(&["STRLEN", "b"]).await, Reply::Int(1));
    assert_eq!(h.run(&["EXISTS", "a", "b", "zz"]).await, Reply::Int(2));
    assert_eq!(h.run(&["DEL", "a", "zz"]).await, Reply::Int(1));
    assert_eq!(h.run(&["GET", "a"]).await, Reply::Nil);
    // The delete is a tombstone on the ring, not a missing key.
    let a = ItemKey {
        db: 0,
        key: Bytes::from_static(b"a"),
    };
    assert_eq!(h.ring.data.lock()[&a].body, Body::Tombstone);
    assert_eq!(h.run(&["DBSIZE"]).await, Reply::Int(2));
    // Nothing went to the local engine's keyspace.
    assert_eq!(h.srv.store.db.get(h.srv.store.data, b"a").unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_travels_as_an_absolute_time() {
    let mut h = Harness::new().await;
    let before = crate::keyspace::now_ms();
    assert_eq!(h.run(&["SET", "t", "v", "PX", "60000"]).await, Reply::Ok);
    let key = ItemKey {
        db: 0,
        key: Bytes::from_static(b"t"),
    };
    let at = h.ring.data.lock()[&key].expire_at.unwrap();
    assert!(at >= before + 60_000 && at <= crate::keyspace::now_ms() + 60_000);
    match h.run(&["PTTL", "t"]).await {
        Reply::Int(ms) => assert!(ms > 0 && ms <= 60_000, "{ms}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_failures_are_errors_and_read_before_write_runs_through_consensus() {
    let mut h = Harness::new().await;
    h.ring.refuse_writes.store(true, Ordering::Relaxed);
    match h.run(&["SET", "a", "1"]).await {
        Reply::Error(e) => assert!(e.starts_with("CLUSTERDOWN"), "{e}"),
        other => panic!("{other:?}"),
    }
    match h.run(&["MSET", "a", "1", "b", "2"]).await {
        Reply::Error(e) => assert!(e.starts_with("PARTIAL 0 of 2"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(h.ring.data.lock().is_empty());
    h.ring.refuse_writes.store(false, Ordering::Relaxed);
    // A key without its value: refused whole, not split into a half-written MSET.
    assert_eq!(
        h.run(&["MSET", "a", "1", "b"]).await,
        Reply::error("ERR wrong number of arguments for 'mset' command")
    );
    assert!(h.ring.data.lock().is_empty());
    assert_eq!(h.run(&["INCR", "n"]).await, Reply::Int(1));
    assert_eq!(h.run(&["INCRBY", "n", "5"]).await, Reply::Int(6));
    // A failed condition writes nothing.
    let before = h.ring.clock.load(Ordering::Relaxed);
    assert_eq!(h.run(&["SET", "n", "x", "NX"]).await, Reply::Nil);
    assert_eq!(h.ring.clock.load(Ordering::Relaxed), before);
    // Versions in replies are the version the ring wrote.
    let n = ItemKey {
        db: 0,
        key: Bytes::from_static(b"n"),
    };
    let written = h.run(&["SETIFMATCH", "n", "7", &before.to_string()]).await;
    let held = h.ring.data.lock()[&n].version.ts;
    assert!(held > before);
    match written {
        Reply::Array(items) => assert_eq!(
            items[0],
            Reply::Version(crate::protocol::Version::Committed(held))
        ),
        other => panic!("{other:?}"),
    }
    // Admission still applies: arity errors are Redis's.
    assert_eq!(
        h.run(&["GET"]).await,
        Reply::error("ERR wrong number of arguments for 'get' command")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_consistency_sets_the_level_of_this_connection() {
    let mut h = Harness::new().await;
    assert_eq!(h.run(&["CLUSTER", "CONSISTENCY"]).await, bulk("QUORUM"));
    assert_eq!(h.run(&["SET", "a", "1"]).await, Reply::Ok);
    assert_eq!(*h.ring.last_level.lock(), Some(Consistency::Quorum));
    assert_eq!(h.run(&["CLUSTER", "CONSISTENCY", "all"]).await, Reply::Ok);
    assert_eq!(h.run(&["GET", "a"]).await, bulk("1"));
    assert_eq!(*h.ring.last_level.lock(), Some(Consistency::All));
    assert_eq!(h.run(&["CLUSTER", "CONSISTENCY"]).await, bulk("ALL"));
    match h.run(&["CLUSTER", "CONSISTENCY", "two"]).await {
        Reply::Error(e) => assert!(e.contains("ONE, QUORUM, ALL or SERIAL"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eventual_database_writes_blindly_and_refuses_read_modify_write() {
    let mut h = Harness::new().await;
    h.srv.config.write().cluster.eventual_databases = vec![1];
    assert_eq!(h.run(&["SELECT", "1"]).await, Reply::Ok);
    match h.run(&["INCR", "n"]).await {
        Reply::Error(e) => assert!(e.contains("eventual"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.run(&["SET", "n", "1"]).await, Reply::Ok);
    assert_eq!(h.run(&["GET", "n"]).await, bulk("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_reads_run_through_consensus_one_round_per_key() {
    let mut h = Harness::new().await;
    assert_eq!(h.run(&["SET", "a", "1"]).await, Reply::Ok);
    assert_eq!(h.run(&["SET", "b", "22"]).await, Reply::Ok);
    let ring = h.ring.clone();
    let rounds = || ring.consensus_rounds.load(Ordering::Relaxed);
    let writes = || ring.clock.load(Ordering::Relaxed);
    let (rounds_before, writes_before) = (rounds(), writes());
    // At QUORUM a read is a quorum read, not a round.
    assert_eq!(h.run(&["GET", "a"]).await, bulk("1"));
    assert_eq!(rounds(), rounds_before);
    assert_eq!(
        h.run(&["CLUSTER", "CONSISTENCY", "serial"]).await,
        Reply::Ok
    );
    assert_eq!(h.run(&["CLUSTER", "CONSISTENCY"]).await, bulk("SERIAL"));
    assert_eq!(h.run(&["GET", "a"]).await, bulk("1"));
    assert_eq!(rounds(), rounds_before + 1);
    assert_eq!(
        h.run(&["MGET", "a", "missing", "b"]).await,
        Reply::Array(vec![bulk("1"), Reply::Nil, bulk("22")])
    );
    assert_eq!(rounds(), rounds_before + 4);
    assert_eq!(h.run(&["EXISTS", "a", "a", "missing"]).await, Reply::Int(2));
    assert_eq!(h.run(&["STRLEN", "b"]).await, Reply::Int(2));
    assert_eq!(rounds(), rounds_before + 8);
    // Reading through a round writes nothing.
    assert_eq!(writes(), writes_before);
    // Writes at SERIAL are rounds as at any level in a linearizable database.
    assert_eq!(h.run(&["INCR", "n"]).await, Reply::Int(1));
    assert_eq!(*h.ring.last_level.lock(), Some(Consistency::Serial));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_reads_are_refused_in_an_eventual_database() {
    let mut h = Harness::new().await;
    h.srv.config.write().cluster.eventual_databases = vec![1];
    assert_eq!(h.run(&["SELECT", "1"]).await, Reply::Ok);
    assert_eq!(
        h.run(&["CLUSTER", "CONSISTENCY", "SERIAL"]).await,
        Reply::Ok
    );
    assert_eq!(h.run(&["SET", "n", "1"]).await, Reply::Ok);
    match h.run(&["GET", "n"]).await {
        Reply::Error(e) => assert!(e.contains("SERIAL needs a linearizable database"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.run(&["CLUSTER", "CONSISTENCY", "QUORUM"]).await,
        Reply::Ok
    );
    assert_eq!(h.run(&["GET", "n"]).await, bulk("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_writes_apply_once_and_retries_get_the_first_reply() {
    let mut h = Harness::new().await;
    let incr = ["IDEMPOTENT", "req-1", "INCR", "c"];
    assert_eq!(h.run(&incr).await, Reply::Int(1));
    assert_eq!(h.run(&incr).await, Reply::Int(1), "a retry is not applied");
    assert_eq!(h.run(&["GET", "c"]).await, bulk("1"));
    assert_eq!(
        h.run(&["IDEMPOTENT", "req-2", "INCR", "c"]).await,
        Reply::Int(2)
    );
    // A later plain write carries the request records on.
    assert_eq!(h.run(&["INCRBY", "c", "10"]).await, Reply::Int(12));
    assert_eq!(h.run(&incr).await, Reply::Int(1));
    assert_eq!(h.run(&["GET", "c"]).await, bulk("12"));
    // Versions in a replayed reply are those of the write that answered first.
    let tagged = ["IDEMPOTENT", "req-3", "SET", "c", "x", "WITHETAG"];
    let first = h.run(&tagged).await;
    assert!(matches!(first, Reply::Version(_)), "{first:?}");
    assert_eq!(h.run(&["SET", "c", "y"]).await, Reply::Ok);
    assert_eq!(h.run(&tagged).await, first);
    assert_eq!(h.run(&["GET", "c"]).await, bulk("y"));
    let replays = h.srv.counters.idempotent_replays.load(Ordering::Relaxed);
    assert_eq!(replays, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_command_that_changed_nothing_is_remembered_but_errors_are_not() {
    let mut h = Harness::new().await;
    assert_eq!(h.run(&["SET", "k", "held"]).await, Reply::Ok);
    let nx = ["IDEMPOTENT", "nx-1", "SET", "k", "mine", "NX"];
    assert_eq!(h.run(&nx).await, Reply::Nil);
    // The key is deleted (the tombstone carries the request on): the retry still gets
    // the first answer and does not create the key.
    assert_eq!(h.run(&["DEL", "k"]).await, Reply::Int(1));
    assert_eq!(h.run(&nx).await, Reply::Nil);
    assert_eq!(h.run(&["GET", "k"]).await, Reply::Nil);
    // An error that applied nothing runs again on retry.
    assert_eq!(h.run(&["SET", "s", "abc"]).await, Reply::Ok);
    let incr = ["IDEMPOTENT", "err-1", "INCR", "s"];
    assert!(h.run(&incr).await.is_error());
    assert_eq!(h.run(&["SET", "s", "5"]).await, Reply::Ok);
    assert_eq!(h.run(&incr).await, Reply::Int(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_commands_of_several_keys_or_in_an_eventual_database_are_refused() {
    let mut h = Harness::new().await;
    for cmd in [
        &["IDEMPOTENT", "m", "MSET", "a", "1", "b", "2"][..],
        &["IDEMPOTENT", "m", "DEL", "a", "b"],
    ] {
        match h.run(cmd).await {
            Reply::Error(e) => assert!(e.starts_with("CROSSSLOT"), "{cmd:?}: {e}"),
            other => panic!("{cmd:?}: {other:?}"),
        }
    }
    match h.run(&["IDEMPOTENT", "m", "RENAME", "a", "b"]).await {
        Reply::Error(e) => assert!(e.starts_with("CROSSSLOT IDEMPOTENT"), "{e}"),
        other => panic!("{other:?}"),
    }
    match h.run(&["IDEMPOTENT", "m", "GET", "a"]).await {
        Reply::Error(e) => assert!(e.contains("only wraps"), "{e}"),
        other => panic!("{other:?}"),
    }
    // One key of MSET or DEL is one key.
    assert_eq!(
        h.run(&["IDEMPOTENT", "one", "DEL", "a", "a"]).await,
        Reply::Int(0)
    );
    assert!(
        h.ring.data.lock().len() == 1,
        "nothing of the refused ones was written"
    );
    h.srv.config.write().cluster.eventual_databases = vec![1];
    assert_eq!(h.run(&["SELECT", "1"]).await, Reply::Ok);
    match h.run(&["IDEMPOTENT", "e", "SET", "a", "1"]).await {
        Reply::Error(e) => assert!(e.contains("eventual") && e.contains("single order"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// `container_of` agrees with looking the first word up, for every command and every
/// subcommand of the table, in any case.
#[test]
fn the_container_of_every_command_is_found_without_a_lookup_when_it_names_itself() {
    use crate::commands::table;
    for top in table::COMMANDS {
        for name in [top.name.to_string(), top.name.to_uppercase()] {
            let expected = (!top.subcommands.is_empty()).then_some(top.name);
            assert_eq!(
                super::container_of(top, name.as_bytes()),
                expected,
                "{name}"
            );
            for sub in top.subcommands {
                assert_eq!(
                    super::container_of(sub, name.as_bytes()),
                    Some(top.name),
                    "{name} {}",
                    sub.name
                );
            }
        }
    }
}

/// A command's writes become one ring put per key with its last write: a lone write (the
/// path without a map) and a key written twice among others (the map) alike, values with
/// their type and expiry, deletes as tombstones.
#[test]
fn a_commands_writes_become_one_put_per_key_with_its_last_write() {
    use crate::keyspace::encoding::encode_value;
    use crate::keyspace::ValueType;
    let value = |payload: &str, expire_at| {
        Some(Bytes::from(encode_value(
            ValueType::String,
            expire_at,
            payload.as_bytes(),
        )))
    };
    let key = |db: u32, k: &str| ItemKey {
        db,
        key: Bytes::copy_from_slice(k.as_bytes()),
    };
    let payload = |body: &Body| match body {
        Body::Value { payload, .. } => Some(payload.clone()),
        _ => None,
    };

    let lone = super::ring_puts(vec![(2, Bytes::from_static(b"a"), value("1", Some(7)))]);
    assert_eq!(lone.len(), 1);
    assert_eq!(lone[0].0, key(2, "a"));
    assert_eq!(payload(&lone[0].1).as_deref(), Some(&b"1"[..]));
    assert_eq!(lone[0].2, Some(7));

    let mut many = super::ring_puts(vec![
        (0, Bytes::from_static(b"a"), value("1", None)),
        (0, Bytes::from_static(b"b"), None),
        (1, Bytes::from_static(b"a"), value("other db", None)),
        (0, Bytes::from_static(b"a"), value("2", None)),
    ]);
    many.sort_by(|x, y| x.0.cmp(&y.0));
    let keys: Vec<_> = many.iter().map(|p| p.0.clone()).collect();
    assert_eq!(keys, vec![key(0, "a"), key(0, "b"), key(1, "a")]);
    assert_eq!(payload(&many[0].1).as_deref(), Some(&b"2"[..]));
    assert!(matches!(many[1].1, Body::Tombstone));
    assert_eq!(payload(&many[2].1).as_deref(), Some(&b"other db"[..]));
    assert!(super::ring_puts(Vec::new()).is_empty());
}
