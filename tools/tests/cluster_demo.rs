//! `kvtool cluster demo` end to end with real kvd processes: it exits 0, prints every
//! step with figures read from the cluster, and leaves no node running.

mod common;

use std::process::Command;

#[test]
fn the_demo_runs_every_step_and_stops_its_nodes() {
    let Some(kvd) = common::kvd::find_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let base = common::kvd::free_base_port(3);
    let out = Command::new(env!("CARGO_BIN_EXE_kvtool"))
        .args(["cluster", "demo", "--base-port", &base.to_string()])
        .arg("--dir")
        .arg(&demo_dir)
        .arg("--kvd")
        .arg(&kvd)
        .output()
        .unwrap();
    let (stdout, stderr, code) = common::text(&out);
    assert_eq!(code, 0, "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let total = kvtool::cluster::demo::STEPS.len();
    for (i, title) in kvtool::cluster::demo::STEPS.iter().enumerate() {
        let header = format!("[{}/{total}] {title}\n", i + 1);
        assert!(stdout.contains(&header), "no {header:?} in\n{stdout}");
    }
    // The figures come from the cluster: spot-check that each kind was printed with
    // the value the walk-through produces.
    for shown in [
        "cluster_state:ok on every node",
        "N=3 W=2 R=2",
        "replicas in preference order: n",
        "\"hello\": R=2 replicas answered",
        "100 of 100 keys read back",
        "kvd_hints_pending 0 -> ",
        "-> 0 after",
        "the same Merkle root for all 256 partitions on n1, n2, n3",
        "refused: ",
        "\"demo:read-repair\"; n2 CLUSTER INFO: kvd_read_repairs ",
        "the same Merkle root for all 256 partitions on n2, n3",
        "\"demo:read-repair\": all three replicas answered",
        "each flushed and exited 0",
        "demo complete: all 10 steps showed what they should",
    ] {
        assert!(stdout.contains(shown), "no {shown:?} in\n{stdout}");
    }
    let repaired: u64 = stdout
        .split("keys_repaired=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no keys_repaired=N in\n{stdout}"));
    assert!(
        repaired >= 50,
        "anti-entropy repaired {repaired} keys\n{stdout}"
    );
    for i in 0..3 {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", base + i)).is_err(),
            "node {i} still listens after the demo"
        );
    }
    assert!(!demo_dir.exists(), "the demo left {}", demo_dir.display());
}

#[test]
fn the_demo_refuses_a_directory_that_holds_something() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious"), b"x").unwrap();
    let out = common::kvtool(&["cluster", "demo", "--dir", common::s(dir.path())]);
    let (_, stderr, code) = common::text(&out);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");
    assert!(dir.path().join("precious").exists());
    let out = common::kvtool(&["--json", "cluster", "demo"]);
    assert_eq!(common::text(&out).2, 2, "the demo has no JSON output");
}

#[test]
fn ctrl_c_stops_the_demo_and_its_nodes() {
    use std::io::{BufRead, BufReader};
    let Some(kvd) = common::kvd::find_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let base = common::kvd::free_base_port(3);
    let mut demo = Command::new(env!("CARGO_BIN_EXE_kvtool"))
        .args(["cluster", "demo", "--base-port", &base.to_string()])
        .arg("--dir")
        .arg(&demo_dir)
        .arg("--kvd")
        .arg(&kvd)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the nodes are up and the demo is working with them.
    let mut seen = String::new();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("[3/10]") {
            break;
        }
    }
    assert!(seen.contains("[3/10]"), "the demo ended early:\n{seen}");
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(demo.id() as i32, libc::SIGINT) };
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = demo.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{}", rest.join("\n"));
    assert!(
        rest.iter().any(|l| l == "interrupted: nodes stopped"),
        "{rest:?}"
    );
    for i in 0..3 {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", base + i)).is_err(),
            "node {i} still listens after Ctrl-C"
        );
    }
}
