//! /health, /ready, /metrics and /cluster/nodes of a running kvd, alone and as a node
//! of a 3-node cluster.

use kv_tests::eventually;
use kv_tests::http::{get, request, start_cluster, start_kvd};
use serde_json::Value;
use std::time::Duration;

#[test]
fn health_and_readiness_answer_json() {
    let (_k, port) = start_kvd(&[]);
    let health = get(port, "/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let ready = get(port, "/ready");
    assert_eq!(ready.status, 200);
    let body = ready.json();
    assert_eq!(body["ready"], true);
    assert_eq!(body["checks"]["engine"]["ok"], true);
}

#[test]
fn metrics_expose_commands_latencies_and_the_engine() {
    let (k, port) = start_kvd(&[]);
    assert_eq!(request(port, "PUT", "/kv/m", &[], b"v").status, 200);
    let mut c = k.client();
    let _: Option<String> = redis::cmd("GET").arg("m").query(&mut c).unwrap();
    let _: redis::RedisResult<()> = redis::cmd("INCR").arg("m").query(&mut c);
    let m = get(port, "/metrics");
    assert_eq!(m.status, 200);
    assert!(m
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/openmetrics-text")));
    let text = String::from_utf8(m.body).expect("utf-8");
    for want in [
        "# TYPE kvd_commands counter",
        "kvd_command_calls_total{command=\"set\"} 1",
        "kvd_command_calls_total{command=\"get\"} 1",
        "kvd_command_failed_calls_total{command=\"incr\"} 1",
        "# TYPE kvd_command_duration_seconds histogram",
        "kvd_command_duration_seconds_count{command=\"get\"} 1",
        "kvd_connected_clients ",
        "kvd_engine_level_files{level=\"0\"}",
        "kvd_engine_wal_syncs_total ",
        "kvd_engine_write_amplification_ratios ",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(text.trim_end().ends_with("# EOF"));
    assert!(
        !text.contains("kvd_cluster_"),
        "cluster metrics on a single node"
    );
    let nodes = request(port, "GET", "/cluster/nodes", &[], b"");
    assert_eq!(nodes.status, 404, "{nodes:?}");
    assert_eq!(nodes.json()["code"], "not_clustered");
    // Every bucket line is cumulative: counts never decrease along one command's series.
    let buckets: Vec<u64> = text
        .lines()
        .filter(|l| {
            l.starts_with("kvd_command_duration_seconds_bucket") && l.contains("command=\"set\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 13);
    assert!(
        buckets.windows(2).all(|w| w[0] <= w[1]) && buckets[12] == 1,
        "{buckets:?}"
    );
}

#[test]
fn the_dashboard_is_self_contained_html_reading_this_servers_metrics() {
    let (_k, port) = start_kvd(&[]);
    let page = get(port, "/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));
    let html = String::from_utf8(page.body).expect("utf-8");
    assert!(html.contains("<title>kvd dashboard</title>"));
    assert!(html.contains("fetch(\"/metrics\")") && html.contains("fetch(\"/ready\")"));
    // No external assets: nothing is loaded from another origin.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "external reference"
    );
    // The metric names the page reads are ones the server exports.
    let metrics = String::from_utf8(get(port, "/metrics").body).expect("utf-8");
    for name in [
        "kvd_commands_total",
        "kvd_connected_clients",
        "kvd_uptime_seconds",
        "kvd_engine_write_amplification_ratios",
        "kvd_engine_memtable_bytes",
        "kvd_engine_wal_syncs_total",
        "kvd_engine_level_files",
        "kvd_engine_level_bytes",
        "kvd_command_calls_total",
    ] {
        assert!(html.contains(name), "page does not read {name}");
        assert!(metrics.contains(name), "server does not export {name}");
    }
}

/// How long a killed node may take to leave "up" in the others' failure detectors (the
/// phi-accrual detector needs a few missed gossip rounds).
const DETECTION: Duration = Duration::from_secs(20);

/// The node of `/cluster/nodes` whose RESP address is on `port`.
fn node_on(nodes: &Value, port: u16) -> &Value {
    let addr = format!("127.0.0.1:{port}");
    nodes["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["resp_addr"] == addr.as_str()))
        .unwrap_or_else(|| panic!("no node at {addr} in {nodes}"))
}

/// The value of the metric line that starts with `series` (name and labels).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The fields the OpenAPI document requires of `schema`.
fn required_fields(schema: &str) -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/http-api.yaml");
    let text = std::fs::read_to_string(path).expect("docs/http-api.yaml");
    let doc = yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML");
    doc[0]["components"]["schemas"][schema]["required"]
        .as_vec()
        .unwrap_or_else(|| panic!("schema {schema} lists no required fields"))
        .iter()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_cluster_node_reports_nodes_hints_metrics_and_readiness() {
    let (mut cluster, http) = start_cluster(3, &["--cluster-down-after-ms", "2000"]);
    let resp: Vec<u16> = cluster.nodes.iter().map(|k| k.port).collect();
    // A peer gossip has not reported yet shows "up" for a grace period, and one never
    // reported up is only suspect once killed, never down: wait for gossip's report
    // before the kills below (as tests/tests/dashboard_browser.rs does).
    cluster.wait_all_up();

    // Every node, with the HTTP address gossip carried, seen from node 1.
    let mut view = Value::Null;
    // Right after forming, gossip may still count a peer as suspect: poll until the
    // failure detector has settled.
    eventually(
        "node 1 sees every node up with its HTTP address",
        DETECTION,
        || {
            view = get(http[0], "/cluster/nodes").json();
            (0..3).all(|i| {
                let n = node_on(&view, resp[i]);
                n["http_addr"] == format!("127.0.0.1:{}", http[i]) && n["state"] == "up"
            })
        },
    );
    for field in required_fields("ClusterNodes") {
        assert!(view.get(&field).is_some(), "{field} missing in {view}");
    }
    for field in required_fields("ClusterNode") {
        assert!(
            view["nodes"][0].get(&field).is_some(),
            "{field} missing in {view}"
        );
    }
    let map = view["partition_map"].as_array().expect("partition map");
    assert_eq!(map.len(), 256);
    assert!(map
        .iter()
        .all(|p| p.as_array().is_some_and(|r| r.len() == 3)));
    for (i, &port) in resp.iter().enumerate() {
        let n = node_on(&view, port);
        assert_eq!(n["state"], "up", "{n}");
        assert_eq!(n["myself"], i == 0, "{n}");
        assert_eq!(
            n["partitions"], 256,
            "3 replicas on 3 nodes: each holds all: {n}"
        );
    }
    let first: u64 = (0..3)
        .map(|i| {
            node_on(&view, resp[i])["first_partitions"]
                .as_u64()
                .expect("count")
        })
        .sum();
    assert_eq!(first, 256, "each partition has one first replica");
    // Ready once every partition has a quorum of up replicas. Polled as a load balancer
    // would: under load a failure detector may doubt a peer for a moment right after
    // the view above showed it up (seen in a full suite run: 503 with "256 of this
    // node's partitions have fewer than 2 up replicas").
    let mut ready = None;
    eventually("/ready answers 200 on node 1", DETECTION, || {
        let answer = get(http[0], "/ready");
        let ok = answer.status == 200;
        ready = Some(answer);
        ok
    });
    let ready = ready.expect("polled at least once").json();
    assert_eq!(ready["checks"]["cluster"]["ok"], true, "{ready}");

    // A write through consensus: counted rounds and bus RPC latencies.
    let mut c = cluster.nodes[0].client();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut c)
        .expect("SET");
    let text = String::from_utf8(get(http[0], "/metrics").body).expect("utf-8");
    assert!(metric(&text, "kvd_cluster_consensus_rounds_total").is_some_and(|v| v >= 1.0));
    for rpc in ["Prepare", "Accept"] {
        let count = format!("kvd_cluster_rpc_duration_seconds_count{{rpc=\"{rpc}\"}}");
        assert!(
            metric(&text, &count).is_some_and(|v| v >= 1.0),
            "{count} in\n{text}"
        );
    }
    // Peers by replica carrier: the counts CLUSTER INFO prints (polled: a peer's
    // carrier is set by the first replica request to it, which may fall between).
    let carriers_match = || {
        let text = String::from_utf8(get(http[0], "/metrics").body).expect("utf-8");
        let metrics = ["link", "stream", "unary"].map(|c| {
            metric(
                &text,
                &format!("kvd_cluster_replica_peers{{carrier=\"{c}\"}}"),
            )
        });
        let info = [
            "kvd_replica_links",
            "kvd_replica_streams",
            "kvd_replica_unary_peers",
        ]
        .map(|f| {
            kv_tests::cluster::cluster_info(&cluster.nodes[0], f)?
                .parse::<f64>()
                .ok()
        });
        metrics.iter().all(Option::is_some) && metrics == info
    };
    eventually(
        "/metrics counts peers by carrier as CLUSTER INFO does",
        DETECTION,
        carriers_match,
    );
    let id3 = node_on(&view, resp[2])["id"]
        .as_str()
        .expect("id")
        .to_string();
    let up3 = format!("kvd_cluster_node_state{{node=\"{id3}\",state=\"up\"}}");
    // On a loaded machine a late heartbeat can make node 3 briefly suspect between the
    // view above and this scrape: poll until the metric shows it up again.
    let mut last = text;
    eventually("/metrics shows node 3 up", DETECTION, || {
        if metric(&last, &up3) == Some(1.0) {
            return true;
        }
        last = String::from_utf8(get(http[0], "/metrics").body).expect("utf-8");
        false
    });

    // Node 3 dies: node 1 sees it down, keeps hints for it, and stays ready (two of
    // three replicas are a quorum).
    cluster.nodes[2].kill9();
    eventually("node 1 sees node 3 down", DETECTION, || {
        let v = get(http[0], "/cluster/nodes").json();
        node_on(&v, resp[2])["state"] == "down"
    });
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v2")
        .query(&mut c)
        .expect("SET");
    eventually("a hint for node 3", DETECTION, || {
        let v = get(http[0], "/cluster/nodes").json();
        node_on(&v, resp[2])["hints_pending"].as_u64() >= Some(1)
    });
    let text = String::from_utf8(get(http[0], "/metrics").body).expect("utf-8");
    assert!(metric(&text, "kvd_cluster_hints_written_total").is_some_and(|v| v >= 1.0));
    assert!(metric(&text, "kvd_cluster_hints_pending").is_some_and(|v| v >= 1.0));
    let down3 = format!("kvd_cluster_node_state{{node=\"{id3}\",state=\"down\"}}");
    assert_eq!(metric(&text, &down3), Some(1.0), "{down3} in\n{text}");
    assert_eq!(get(http[0], "/ready").status, 200);

    // Node 2 dies too: no partition of node 1 has a quorum left.
    cluster.nodes[1].kill9();
    eventually("node 1 not ready without a quorum", DETECTION, || {
        get(http[0], "/ready").status == 503
    });
    let ready = get(http[0], "/ready").json();
    assert_eq!(ready["checks"]["cluster"]["ok"], false, "{ready}");
    assert_eq!(ready["checks"]["engine"]["ok"], true, "{ready}");
}
