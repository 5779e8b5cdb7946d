//! Starting this server as a cluster node: maps the `cluster-*` parameters onto the
//! cluster crate's settings and starts the node on the server's engine.

use crate::config::Config;
use crate::state::Shared;
use kv_cluster::config::ClusterConfig;
use kv_cluster::node::{ClusterNode, NodeConfig};
use std::sync::Arc;
use std::time::Duration;

/// The node settings for configuration `c`.
pub fn node_config(c: &Config) -> Result<NodeConfig, String> {
    let s = &c.cluster;
    let cluster = ClusterConfig {
        replicas: s.replicas,
        write_quorum: s.write_quorum,
        read_quorum: s.read_quorum,
        unsafe_allow_weak_quorums: s.unsafe_weak_quorums,
        request_timeout: Duration::from_millis(s.request_timeout_ms),
        anti_entropy_interval: Duration::from_millis(s.anti_entropy_interval_ms),
        merkle_rebuild_interval: Duration::from_millis(s.merkle_rebuild_interval_ms),
        background_bytes_per_sec: s.background_bytes_per_sec,
        stream_bytes_per_sec: s.stream_bytes_per_sec,
        max_clock_offset: Duration::from_millis(s.max_clock_offset_ms),
        tombstone_grace: Duration::from_millis(s.tombstone_grace_ms),
        hint_max_age: Duration::from_millis(s.hint_max_age_ms),
        wipe_stale_data: s.wipe_stale_data,
        consensus_timeout: Duration::from_millis(s.consensus_timeout_ms),
        down_after: Duration::from_millis(s.down_after_ms),
        forward_consensus: s.forward_consensus,
        phi_threshold: s.phi_threshold,
        ..ClusterConfig::default()
    };
    for (name, dbs) in [
        ("cluster-eventual-databases", &s.eventual_databases),
        ("cluster-siblings-databases", &s.siblings_databases),
    ] {
        if let Some(db) = dbs.iter().find(|&&d| d >= c.databases) {
            return Err(format!(
                "{name} names database {db}, but there are {} (databases)",
                c.databases
            ));
        }
    }
    if let Some(db) = s
        .siblings_databases
        .iter()
        .find(|d| s.eventual_databases.contains(d))
    {
        return Err(format!(
            "database {db} is in both cluster-eventual-databases and \
             cluster-siblings-databases: a database is linearizable, eventual or siblings"
        ));
    }
    cluster.validate().map_err(|e| e.to_string())?;
    let first_bind = c
        .bind
        .first()
        .map(|b| b.trim_start_matches('-').to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    // A match, not `unwrap_or(match ..)`: that evaluated the wildcard refusal even when
    // --cluster-announce-ip was given (a node in a container could not start).
    let announce_ip = match (&s.announce_ip, first_bind.as_str()) {
        (Some(ip), _) => ip.clone(),
        (None, "0.0.0.0" | "::" | "*") => {
            return Err("with a wildcard --bind, set --cluster-announce-ip to the address other nodes reach this one at".into())
        }
        (None, other) => other.to_string(),
    };
    Ok(NodeConfig {
        data_dir: c.dir.clone(),
        bind: c.bind.clone(),
        announce_ip,
        resp_port: c.port,
        bus_port: s.bus_port(c.port),
        http_port: c.http.port,
        seeds: s.seeds.clone(),
        expect: s.expected_nodes(),
        secret: s.secret.clone(),
        cluster,
        tls: bus_tls(c)?,
        databases: c.databases,
        fsync_always: c.appendfsync == kv_engine::FsyncPolicy::Always,
        test_clock_offset_ms: s.test_clock_offset_ms,
    })
}

/// Mutual TLS material for the bus when `tls-cluster yes`: the same certificate, key and
/// CA files as the client TLS port (every node's certificate must allow both server and
/// client authentication and carry the announce address as a SAN).
fn bus_tls(c: &Config) -> Result<Option<kv_cluster::rpc::BusTls>, String> {
    if !c.cluster.tls {
        return Ok(None);
    }
    let t = &c.tls;
    if t.cert_file.is_empty() || t.key_file.is_empty() || t.ca_cert_file.is_empty() {
        return Err(
            "tls-cluster yes needs tls-cert-file, tls-key-file and tls-ca-cert-file".into(),
        );
    }
    if !t.key_file_pass.is_empty() {
        return Err(
            "tls-cluster needs an unencrypted tls-key-file (the bus reads it as PEM)".into(),
        );
    }
    let read = |f: &str| std::fs::read(f).map_err(|e| format!("cannot read {f}: {e}"));
    Ok(Some(kv_cluster::rpc::BusTls {
        cert_pem: read(&t.cert_file)?,
        key_pem: read(&t.key_file)?,
        ca_pem: read(&t.ca_cert_file)?,
        server_name: None,
    }))
}

/// Starts the node and makes it the server's ring.
pub async fn start(srv: &Arc<Shared>, node: NodeConfig) -> Result<Arc<ClusterNode>, String> {
    let node = ClusterNode::start(node, srv.store.db.clone()).await?;
    let ring: Arc<dyn kv_cluster::ring::Ring> = node.clone();
    ring.observe_replica_ops(monitor_feed(Arc::downgrade(srv)));
    // ACL users and cluster-wide parameters written through any node apply here too
    // (held entries first: a restarted node gets back what CONFIG SET and ACL did).
    let weak = Arc::downgrade(srv);
    ring.listen_metadata(Arc::new(move |e: &kv_cluster::metadata::MetaEntry| {
        if let Some(srv) = weak.upgrade() {
            crate::cluster_mode::metadata::apply_entry(&srv, e);
        }
    }));
    // Messages PUBLISHed through other nodes reach this node's subscribers.
    crate::cluster_mode::pubsub::listen(srv, &ring);
    crate::cluster_mode::forward::serve(srv, &ring);
    srv.ring
        .set(ring)
        .map_err(|_| "the cluster node was started twice".to_string())?;
    Ok(node)
}

/// Shows the replica operations this node serves for other coordinators on MONITOR, as
/// `+<time> [<db> replica] "REPLICA.SET" "key" "<version>"` (REPLICA.DEL for tombstones,
/// REPLICA.GET for reads), so an operator can follow a key across nodes. Values are not
/// shown. Holds the server weakly: the ring must not keep it alive.
fn monitor_feed(srv: std::sync::Weak<Shared>) -> kv_cluster::ring::ReplicaObserver {
    use bytes::Bytes;
    use kv_cluster::ring::ReplicaEvent;
    use std::sync::atomic::Ordering;
    Arc::new(move |event: &ReplicaEvent<'_>| {
        let Some(srv) = srv.upgrade() else {
            return;
        };
        if srv.monitors.load(Ordering::Relaxed) == 0 {
            return;
        }
        let (db, args) = match event {
            ReplicaEvent::Write { key, record } => {
                let op = match record.body {
                    kv_cluster::Body::Tombstone => "REPLICA.DEL",
                    kv_cluster::Body::Value { .. } => "REPLICA.SET",
                    kv_cluster::Body::Siblings(_) | kv_cluster::Body::SiblingsWrite(_) => {
                        "REPLICA.SIBLINGS"
                    }
                };
                let version = Bytes::from(record.version.to_string());
                (
                    key.db,
                    vec![Bytes::from_static(op.as_bytes()), key.key.clone(), version],
                )
            }
            ReplicaEvent::Read { key } => (
                key.db,
                vec![Bytes::from_static(b"REPLICA.GET"), key.key.clone()],
            ),
        };
        crate::commands::send_monitor_line(&srv, &db.to_string(), "replica", &args);
    })
}
