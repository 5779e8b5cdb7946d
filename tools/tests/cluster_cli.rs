//! `kvtool cluster up` and `kvtool cluster status` with real processes: up forms a
//! cluster that status describes, and SIGINT (Ctrl-C) stops every node.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

fn kvtool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kvtool"))
}

#[test]
fn up_forms_a_cluster_status_shows_it_and_ctrl_c_stops_it() {
    let Some(kvd) = common::kvd::find_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Three consecutive free ports (and their bus ports) for the nodes.
    let base = common::kvd::free_base_port(3);
    let mut up = kvtool()
        .args([
            "cluster",
            "up",
            "--nodes",
            "3",
            "--base-port",
            &base.to_string(),
        ])
        .arg("--dir")
        .arg(dir.path())
        .arg("--kvd")
        .arg(&kvd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{base}");
    let mut status = String::new();
    kv_tests::eventually(
        "kvtool cluster status shows 3 nodes up",
        Duration::from_secs(90),
        || {
            let out = kvtool()
                .args(["cluster", "status", "--addr", &addr, "--json"])
                .output()
                .unwrap();
            status = String::from_utf8_lossy(&out.stdout).into_owned();
            // Up, and the first layout made (nodes answer before bootstrap ends).
            out.status.success()
                && status.matches("\"state\": \"up\"").count() == 3
                && status.matches("\"layout_version\": 1").count() == 3
        },
    );
    let nodes: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(nodes.as_array().map(|a| a.len()), Some(3), "{status}");
    assert!(nodes[0]["layout_version"].as_u64() == Some(1), "{status}");
    // Ctrl-C: kvtool stops every node and exits by itself: 0 once it had reported the
    // cluster ready, 130 (interrupted) if that came during its own start-up checks.
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(up.id() as i32, libc::SIGINT) };
    let exited = up.wait().unwrap();
    assert!(
        matches!(exited.code(), Some(0 | 130)),
        "kvtool cluster up exited with {exited}"
    );
    for i in 0..3 {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", base + i)).is_err(),
            "node {i} still listens after Ctrl-C"
        );
    }
}
