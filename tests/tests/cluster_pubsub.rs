//! Pub/sub on a real 3-node cluster (docs/pubsub.md, "Cluster mode"): a message
//! published through one node reaches channel, pattern and shard-channel subscribers on
//! every node; 1000 messages from one publisher arrive in order at subscribers on the
//! other nodes; a node killed with SIGKILL does not stop delivery between the other
//! two (its lost messages are counted in `kvd_pubsub_dropped`), and once restarted it
//! receives again.

use kv_tests::cluster::{cluster_info, Cluster};
use kv_tests::{eventually, Kvd};
use redis::{Connection, PubSub};
use std::time::Duration;

/// How long a subscriber waits for one message before the test fails.
const MESSAGE_WAIT: Duration = Duration::from_secs(10);
/// How long a subscription or a node state gets to show.
const STATE_WAIT: Duration = Duration::from_secs(30);

/// A client of `node` whose reads give up after [`MESSAGE_WAIT`].
fn client(node: &Kvd) -> Connection {
    let conn = node.client();
    conn.set_read_timeout(Some(MESSAGE_WAIT))
        .expect("a read timeout can be set");
    conn
}

/// One integer answer of `PUBSUB <sub> [name]` on `node` (0 if it does not answer).
fn pubsub_count(node: &Kvd, sub: &str, name: Option<&str>) -> i64 {
    let mut c = client(node);
    let mut cmd = redis::cmd("PUBSUB");
    cmd.arg(sub);
    match name {
        Some(n) => cmd
            .arg(n)
            .query::<(String, i64)>(&mut c)
            .map_or(0, |(_, n)| n),
        None => cmd.query::<i64>(&mut c).unwrap_or(0),
    }
}

/// Waits until `node` has `n` subscribers of `channel`.
fn wait_subscribers(node: &Kvd, channel: &str, n: i64) {
    eventually(
        &format!("{n} subscribers of {channel} on {}", node.url(false)),
        STATE_WAIT,
        || pubsub_count(node, "NUMSUB", Some(channel)) == n,
    );
}

fn publish(conn: &mut Connection, channel: &str, message: &str) -> i64 {
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(message)
        .query(conn)
        .expect("PUBLISH answers")
}

/// The next message of `sub` as (pattern if any, channel, payload).
fn next(sub: &mut PubSub<'_>) -> (Option<String>, String, String) {
    let m = sub
        .get_message()
        .expect("a message within the read timeout");
    let pattern = m
        .from_pattern()
        .then(|| m.get_pattern().expect("a pattern name"));
    let payload: String = m.get_payload().expect("a text payload");
    (pattern, m.get_channel_name().to_string(), payload)
}

fn counter(node: &Kvd, field: &str) -> u64 {
    cluster_info(node, field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("CLUSTER INFO {field} is a number"))
}

#[test]
fn subscribers_on_every_node_get_a_message_published_through_one() {
    let c = Cluster::start(3, &[]);
    let mut channel_conns: Vec<Connection> = c.nodes.iter().map(client).collect();
    let mut pattern_conns: Vec<Connection> = c.nodes.iter().map(client).collect();
    let mut channel_subs: Vec<PubSub<'_>> =
        channel_conns.iter_mut().map(|c| c.as_pubsub()).collect();
    let mut pattern_subs: Vec<PubSub<'_>> =
        pattern_conns.iter_mut().map(|c| c.as_pubsub()).collect();
    for (s, p) in channel_subs.iter_mut().zip(&mut pattern_subs) {
        s.subscribe("news").expect("SUBSCRIBE on a cluster node");
        p.psubscribe("n*").expect("PSUBSCRIBE on a cluster node");
    }
    for node in &c.nodes {
        wait_subscribers(node, "news", 1);
        eventually("the pattern is registered", STATE_WAIT, || {
            pubsub_count(node, "NUMPAT", None) == 1
        });
    }
    let mut publisher = client(&c.nodes[1]);
    assert_eq!(
        publish(&mut publisher, "news", "hello"),
        2,
        "PUBLISH counts the receivers on the node that took it"
    );
    for (i, s) in channel_subs.iter_mut().enumerate() {
        assert_eq!(
            next(s),
            (None, "news".into(), "hello".into()),
            "channel subscriber on node {i}"
        );
    }
    for (i, p) in pattern_subs.iter_mut().enumerate() {
        assert_eq!(
            next(p),
            (Some("n*".into()), "news".into(), "hello".into()),
            "pattern subscriber on node {i}"
        );
    }

    // SPUBLISH reaches shard-channel subscribers on every node too.
    let mut shard_subs: Vec<_> = c.nodes.iter().map(Kvd::raw).collect();
    for s in &mut shard_subs {
        let confirmation = s.cmd(&[b"SSUBSCRIBE", b"orders"]);
        assert!(confirmation.contains("ssubscribe"), "{confirmation}");
    }
    let n: i64 = redis::cmd("SPUBLISH")
        .arg("orders")
        .arg("o1")
        .query(&mut publisher)
        .expect("SPUBLISH answers");
    assert_eq!(n, 1);
    for s in &mut shard_subs {
        assert_eq!(
            String::from_utf8_lossy(&s.reply()),
            "*3\r\n$8\r\nsmessage\r\n$6\r\norders\r\n$2\r\no1\r\n"
        );
    }
}

#[test]
fn a_thousand_messages_from_one_publisher_arrive_in_order_on_other_nodes() {
    let c = Cluster::start(3, &[]);
    let mut conns: Vec<Connection> = c.nodes[1..].iter().map(client).collect();
    let mut subs: Vec<PubSub<'_>> = conns.iter_mut().map(|c| c.as_pubsub()).collect();
    for s in &mut subs {
        s.subscribe("ticks").expect("SUBSCRIBE");
    }
    for node in &c.nodes[1..] {
        wait_subscribers(node, "ticks", 1);
    }
    let mut publisher = client(&c.nodes[0]);
    for i in 0..1000 {
        assert_eq!(publish(&mut publisher, "ticks", &format!("t{i}")), 0);
    }
    for (n, s) in subs.iter_mut().enumerate() {
        for i in 0..1000 {
            let (_, channel, payload) = next(s);
            assert_eq!(
                (channel.as_str(), payload),
                ("ticks", format!("t{i}")),
                "subscriber on node {}",
                n + 1
            );
        }
    }
    assert_eq!(counter(&c.nodes[0], "kvd_pubsub_dropped"), 0);
    assert_eq!(counter(&c.nodes[0], "kvd_pubsub_sent"), 2000);
}

#[test]
fn a_killed_node_does_not_stop_delivery_and_receives_again_once_restarted() {
    let mut c = Cluster::start(3, &[]);
    c.nodes[2].kill9();
    {
        let mut conn = client(&c.nodes[1]);
        let mut sub = conn.as_pubsub();
        sub.subscribe("news").expect("SUBSCRIBE");
        wait_subscribers(&c.nodes[1], "news", 1);
        let mut publisher = client(&c.nodes[0]);
        publish_and_receive(&mut publisher, &mut sub, "a", "delivery between 0 and 1");
    }
    // Every message to the dead node was lost, and counted (refused at once once
    // failure detection saw it down, or when its RPC failed).
    eventually("node 0 counts 100 messages dropped", STATE_WAIT, || {
        counter(&c.nodes[0], "kvd_pubsub_dropped") >= 100
    });

    c.nodes[2].restart();
    eventually("node 0 sees node 2 up again", STATE_WAIT, || {
        cluster_info(&c.nodes[0], "kvd_nodes_up").as_deref() == Some("3")
    });
    let mut conn = client(&c.nodes[2]);
    let mut sub = conn.as_pubsub();
    sub.subscribe("news")
        .expect("SUBSCRIBE on the restarted node");
    wait_subscribers(&c.nodes[2], "news", 1);
    // At most once: messages sent while the bus reconnects may be lost. Probes on a
    // channel nobody reads show when the bus carries messages to node 2 again.
    let mut publisher = client(&c.nodes[0]);
    eventually("node 2 receives from node 0 again", STATE_WAIT, || {
        publish(&mut publisher, "probe", "p");
        counter(&c.nodes[2], "kvd_pubsub_received") > 0
    });
    publish_and_receive(
        &mut publisher,
        &mut sub,
        "b",
        "delivery to the restarted node",
    );
}

/// Publishes 100 messages `<prefix><i>` on `news` and checks `sub` gets them in order.
fn publish_and_receive(publisher: &mut Connection, sub: &mut PubSub<'_>, prefix: &str, what: &str) {
    for i in 0..100 {
        publish(publisher, "news", &format!("{prefix}{i}"));
    }
    for i in 0..100 {
        assert_eq!(next(sub).2, format!("{prefix}{i}"), "{what}");
    }
}
