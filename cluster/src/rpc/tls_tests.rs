//! Mutual TLS on the bus, end to end over loopback with certificates made by rcgen.

use super::tests::{key, start_with, FakeReplica};
use super::*;
use crate::replica_api::{ReplicaApi, ReplicaError};
use crate::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn authority(name: &str) -> Authority {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = p.self_signed(&key).unwrap();
    Authority { cert, key }
}

/// A node certificate (server and client use) for 127.0.0.1, signed by `ca`.
fn node_tls(ca: &Authority) -> BusTls {
    use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "kvd node");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ServerAuth, ClientAuth];
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    BusTls {
        cert_pem: cert.pem().into_bytes(),
        key_pem: key.serialize_pem().into_bytes(),
        ca_pem: ca.cert.pem().into_bytes(),
        server_name: None,
    }
}

fn client(addr: &str, tls: Option<&BusTls>) -> PeerClient {
    let auth = BusAuth::new(NodeId(2), Some(b"s"), None);
    PeerClient::with_tls(addr, auth, ClientConfig::default(), tls).unwrap()
}

#[tokio::test]
async fn mutual_tls_round_trip_and_refusals() {
    let ca = authority("kvd cluster CA");
    let server_tls = node_tls(&ca);
    let s = start_with(FakeReplica::default(), Some(b"s"), None, Some(server_tls)).await;
    // A peer with a certificate of the cluster CA is served.
    let peer = node_tls(&ca);
    assert_eq!(
        client(&s.addr, Some(&peer)).read(vec![key("a")]).await,
        Ok(vec![None])
    );
    // Plain text to a TLS bus gets no answer.
    assert!(client(&s.addr, None).read(vec![key("a")]).await.is_err());
    // A certificate of another CA is refused (and the server is not trusted by it).
    let stranger = node_tls(&authority("some other CA"));
    let r = client(&s.addr, Some(&stranger)).read(vec![key("a")]).await;
    assert!(
        matches!(
            r,
            Err(ReplicaError::Unreachable(_) | ReplicaError::Failed(_))
        ),
        "{r:?}"
    );
    // A client that trusts the server but presents a certificate of another CA is
    // refused by the server: the authentication is mutual.
    let mut untrusted_client = node_tls(&ca);
    let other_ca_node = node_tls(&authority("third CA"));
    untrusted_client.cert_pem = other_ca_node.cert_pem;
    untrusted_client.key_pem = other_ca_node.key_pem;
    assert!(client(&s.addr, Some(&untrusted_client))
        .read(vec![key("a")])
        .await
        .is_err());
}

#[test]
fn debug_never_prints_the_key() {
    let tls = node_tls(&authority("ca"));
    let s = format!("{tls:?}");
    assert!(!s.contains("PRIVATE KEY"), "{s}");
}
