//! The HTTP API on a 3-node cluster (docs/http-api.md): a PUT through one node's HTTP
//! port is read through another's, ETags are the ring's versions, and a conditional PUT
//! with a stale ETag is refused whichever node it reaches (it runs through single-key
//! consensus, docs/consistency.md).

use kv_tests::cluster::{Cluster, Plan};
use kv_tests::http::{etag_version, get, request};
use kv_tests::{free_port, Kvd};

const JSON: (&str, &str) = ("content-type", "application/json");

#[test]
fn any_node_serves_the_same_keys_and_etags() {
    let plan = Plan::new(3);
    let http: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let nodes = (0..3)
        .map(|i| {
            let port = http[i].to_string();
            let args = plan.args(i, &["--http-port", &port]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Kvd::start_at(plan.ports[i].0, &args)
        })
        .collect();
    let cluster = Cluster { nodes };
    cluster.wait_formed();

    let put = request(
        http[0],
        "PUT",
        "/kv/greeting",
        &[JSON],
        br#"{"value":"hello"}"#,
    );
    assert_eq!(put.status, 200, "{put:?}");
    let version = etag_version(&put);

    let got = get(http[1], "/kv/greeting");
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.json()["value"], "hello");
    assert_eq!(etag_version(&got), version);

    let if_match = format!("\"{version}\"");
    let updated = request(
        http[2],
        "PUT",
        "/kv/greeting",
        &[JSON, ("if-match", &if_match)],
        br#"{"value":"v2"}"#,
    );
    assert_eq!(updated.status, 200, "{updated:?}");
    let newer = etag_version(&updated);
    assert!(newer > version);

    // The same (now stale) ETag through another node: refused, with the current one.
    let stale = request(
        http[0],
        "PUT",
        "/kv/greeting",
        &[JSON, ("if-match", &if_match)],
        br#"{"value":"v3"}"#,
    );
    assert_eq!(stale.status, 412, "{stale:?}");
    assert_eq!(etag_version(&stale), newer);
    assert_eq!(get(http[1], "/kv/greeting").json()["value"], "v2");

    // Create-only through two nodes: the second finds the key.
    let create = |port| {
        request(
            port,
            "PUT",
            "/kv/once",
            &[JSON, ("if-none-match", "*")],
            br#"{"value":"x"}"#,
        )
        .status
    };
    assert_eq!(create(http[1]), 201);
    assert_eq!(create(http[2]), 412);

    // ?consistency= sets the level of the request's commands: a SERIAL read runs a
    // consensus round on the node it reached (which counts it), a QUORUM read does not.
    let rounds = || {
        kv_tests::cluster::cluster_info(&cluster.nodes[1], "kvd_consensus_rounds")
            .and_then(|v| v.parse::<u64>().ok())
            .expect("kvd_consensus_rounds")
    };
    let before = rounds();
    let quorum = get(http[1], "/kv/greeting?consistency=quorum");
    assert_eq!(quorum.json()["value"], "v2");
    assert_eq!(rounds(), before);
    let serial = get(http[1], "/kv/greeting?consistency=SERIAL");
    assert_eq!(serial.json()["value"], "v2");
    assert_eq!(etag_version(&serial), newer);
    assert!(rounds() > before, "a SERIAL read ran no consensus round");
    assert_eq!(
        get(http[1], "/kv/greeting?consistency=sometimes").status,
        400
    );
}
