//! Gossip on loopback: real UDP sockets, real chitchat, short intervals. Every wait
//! polls for the expected state with a generous deadline; no sleep is a synchronization.

use super::*;
use crate::replica_api::{Liveness, PeerState};
use crate::NodeId;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn config(node: u64, seeds: &[&Membership], secret: Option<&[u8]>) -> GossipConfig {
    let mut c = GossipConfig::new(
        NodeId(node),
        "127.0.0.1:0".parse().unwrap(),
        format!("127.0.0.1:{}", 7000 + node),
        format!("127.0.0.1:{}", 17000 + node),
    );
    c.seeds = seeds.iter().map(|m| m.local_addr().to_string()).collect();
    c.secret = secret.map(<[u8]>::to_vec);
    c.gossip_interval = Duration::from_millis(50);
    c.down_after = Duration::from_secs(2);
    c
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sees(m: &Membership, node: u64, state: PeerState) -> bool {
    m.state(NodeId(node)) == state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_see_each_other_then_one_stops() {
    let a = Membership::start(config(1, &[], Some(b"s"))).await.unwrap();
    let b = Membership::start(config(2, &[&a], Some(b"s")))
        .await
        .unwrap();
    let mut with_http = config(3, &[&a], Some(b"s"));
    with_http.http_addr = "127.0.0.1:8003".into();
    let c = Membership::start(with_http).await.unwrap();
    eventually("all three up everywhere", || {
        sees(&a, 2, PeerState::Up)
            && sees(&a, 3, PeerState::Up)
            && sees(&b, 1, PeerState::Up)
            && sees(&b, 3, PeerState::Up)
            && sees(&c, 1, PeerState::Up)
            && sees(&c, 2, PeerState::Up)
    })
    .await;
    assert_eq!(a.state(NodeId(1)), PeerState::Up, "a node is up to itself");
    // Published state travels.
    let m3 = a
        .members()
        .into_iter()
        .find(|m| m.node == NodeId(3))
        .unwrap();
    assert_eq!(m3.resp_addr, "127.0.0.1:7003");
    assert_eq!(m3.bus_addr, "127.0.0.1:17003");
    assert_eq!(m3.gossip_addr, c.local_addr());
    assert_eq!(m3.http_addr, "127.0.0.1:8003");
    let m2 = a.members().into_iter().find(|m| m.node == NodeId(2));
    assert_eq!(m2.map(|m| m.http_addr), Some(String::new()), "no HTTP port");
    assert_eq!(a.members().len(), 2, "members lists peers only");
    assert_eq!(*a.watch_members().borrow(), a.members());
    // The bus address book follows gossip.
    let book = crate::rpc::PeerClients::new(
        NodeId(1),
        std::sync::Arc::new(crate::rpc::tests::FakeReplica::default()),
        crate::rpc::BusAuth::new(NodeId(1), Some(b"s"), None),
        crate::rpc::ClientConfig::default(),
    );
    assert_eq!(a.update_address_book(&book), 2);
    assert_eq!(
        book.addresses(),
        vec![
            (NodeId(2), "127.0.0.1:17002".to_string()),
            (NodeId(3), "127.0.0.1:17003".to_string())
        ]
    );

    c.shutdown().await;
    eventually("the stopped node suspect or down", || {
        !sees(&a, 3, PeerState::Up) && !sees(&b, 3, PeerState::Up)
    })
    .await;
    eventually("the stopped node down", || {
        sees(&a, 3, PeerState::Down) && sees(&b, 3, PeerState::Down)
    })
    .await;
    eventually("the others still up", || {
        sees(&a, 2, PeerState::Up) && sees(&b, 1, PeerState::Up)
    })
    .await;
    assert_eq!(
        a.state(NodeId(99)),
        PeerState::Down,
        "unknown nodes are down"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_the_wrong_secret_never_joins() {
    let a = Membership::start(config(1, &[], Some(b"right")))
        .await
        .unwrap();
    let b = Membership::start(config(2, &[&a], Some(b"right")))
        .await
        .unwrap();
    let intruder = Membership::start(config(3, &[&a, &b], Some(b"wrong")))
        .await
        .unwrap();
    let open = Membership::start(config(4, &[&a, &b], None)).await.unwrap();
    eventually("a and b up", || {
        sees(&a, 2, PeerState::Up) && sees(&b, 1, PeerState::Up)
    })
    .await;
    // Both outsiders' packets reached a and were dropped...
    eventually("dropped packets counted", || {
        a.stats().dropped_unauthenticated.load(Ordering::Relaxed) >= 2
    })
    .await;
    // ...while a and b kept gossiping with each other for several more rounds.
    let received = a.stats().received.load(Ordering::Relaxed);
    eventually("more good rounds", || {
        a.stats().received.load(Ordering::Relaxed) > received + 10
    })
    .await;
    for m in [&a, &b] {
        assert!(
            m.members().iter().all(|m| m.node.0 <= 2),
            "{:?}",
            m.members()
        );
        assert!(!sees(m, 3, PeerState::Up) && !sees(m, 4, PeerState::Up));
    }
    assert!(intruder.members().is_empty());
    assert!(open.members().is_empty());
    for m in [a, b, intruder, open] {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_cluster_dropped_and_layout_versions_watched() {
    let mut ca = config(1, &[], Some(b"s"));
    ca.cluster_id = Some("c1".into());
    let a = Membership::start(ca).await.unwrap();
    let b = Membership::start(config(2, &[&a], Some(b"s")))
        .await
        .unwrap();
    let mut cc = config(3, &[&a], Some(b"s"));
    cc.cluster_id = Some("c2".into());
    let c = Membership::start(cc).await.unwrap();
    // b has no cluster id yet: it may meet a (to join), and a takes it.
    eventually("a and b up", || {
        sees(&a, 2, PeerState::Up) && sees(&b, 1, PeerState::Up)
    })
    .await;
    eventually("c's packets dropped by a", || {
        a.stats().dropped_other_cluster.load(Ordering::Relaxed) > 0
    })
    .await;
    assert!(!sees(&a, 3, PeerState::Up));

    let mut seen = b.watch_layout();
    assert_eq!(*seen.borrow(), None);
    a.set_layout_version(7).await;
    tokio::time::timeout(Duration::from_secs(30), seen.wait_for(|s| s.is_some()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        *seen.borrow(),
        Some(LayoutSeen {
            node: NodeId(1),
            version: 7
        })
    );
    // Once b learns its cluster id, it drops c too.
    b.set_cluster_id("c1".into()).await;
    eventually("b sees a publish c1", || {
        b.members()
            .iter()
            .any(|m| m.node == NodeId(1) && m.cluster_id.as_deref() == Some("c1"))
    })
    .await;
    assert!(b.members().iter().all(|m| m.node != NodeId(3)));
    for m in [a, b, c] {
        m.shutdown().await;
    }
}

/// A free UDP port on loopback (bound then released; the test binds it again at once).
fn free_udp_addr() -> std::net::SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_list_on_every_node_works() {
    let addrs = [free_udp_addr(), free_udp_addr()];
    let seeds: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let mut nodes = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let mut c = config(i as u64 + 1, &[], None);
        c.listen = *addr;
        c.seeds = seeds.clone();
        nodes.push(Membership::start(c).await.unwrap());
    }
    eventually("both up", || {
        sees(&nodes[0], 2, PeerState::Up) && sees(&nodes[1], 1, PeerState::Up)
    })
    .await;
    assert_eq!(nodes[0].members().len(), 1);
    for m in nodes {
        m.shutdown().await;
    }
}
