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
        ..ClusterConfig::default()
    };
    cluster.validate().map_err(|e| e.to_string())?;
    let first_bind = c
        .bind
        .first()
        .map(|b| b.trim_start_matches('-').to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let announce_ip = s.announce_ip.clone().unwrap_or(match first_bind.as_str() {
        "0.0.0.0" | "::" | "*" => {
            return Err("with a wildcard --bind, set --cluster-announce-ip to the address other nodes reach this one at".into())
        }
        other => other.to_string(),
    });
    Ok(NodeConfig {
        data_dir: c.dir.clone(),
        bind: c.bind.clone(),
        announce_ip,
        resp_port: c.port,
        bus_port: s.bus_port(c.port),
        seeds: s.seeds.clone(),
        expect: s.expected_nodes(),
        secret: s.secret.clone(),
        cluster,
        tls: bus_tls(c)?,
        databases: c.databases,
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
    srv.ring
        .set(ring)
        .map_err(|_| "the cluster node was started twice".to_string())?;
    Ok(node)
}
