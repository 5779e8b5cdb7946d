//! The cluster bus over mutual TLS (`tls-cluster yes`, issue 7): three real nodes whose
//! bus accepts only peers with a certificate of the cluster CA form a ring and replicate.

use kv_tests::cluster::{cluster_info, Cluster};
use kv_tests::tls::Tls;
use redis::Commands;

#[test]
fn a_ring_forms_and_replicates_over_mutual_tls() {
    let tls = Tls::new();
    let path = |p: &std::path::Path| p.display().to_string();
    let (cert, key, ca) = (
        path(&tls.certs.server_cert),
        path(&tls.certs.server_key),
        path(&tls.certs.ca),
    );
    let c = Cluster::start(
        3,
        &[
            "--tls-cluster",
            "yes",
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
        ],
    );
    let mut n1 = c.nodes[0].client();
    let mut n3 = c.nodes[2].client();
    let _: () = n1.set("secret", "value").unwrap();
    let v: Option<String> = n3.get("secret").unwrap();
    assert_eq!(v.as_deref(), Some("value"));
    let tls_param: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("tls-cluster")
        .query(&mut n1)
        .unwrap();
    assert_eq!(
        tls_param,
        vec!["tls-cluster".to_string(), "yes".to_string()]
    );
    assert_eq!(
        cluster_info(&c.nodes[1], "kvd_nodes_up").as_deref(),
        Some("3")
    );
    // Node 3's GET read from a peer: under TLS on the gRPC stream, never on an
    // (unencrypted) replica link.
    let count = |f: &str| -> usize {
        cluster_info(&c.nodes[2], f)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {f} in node 3's CLUSTER INFO"))
    };
    assert!(
        count("kvd_replica_streams") >= 1,
        "node 3 read over a stream"
    );
    assert_eq!(count("kvd_replica_links"), 0, "no link under TLS");
}
