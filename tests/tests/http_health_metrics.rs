//! /health, /ready and /metrics of a running kvd.

use kv_tests::http::{get, request, start_kvd};

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
