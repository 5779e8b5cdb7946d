//! The client examples of examples/ (examples/README.md), run as their users would run
//! them against a real 3-node cluster: the Rust ones (bins of this package, built by
//! cargo with the tests) and the redis-py ones under Debian's /usr/bin/python3.
//!
//! Each example checks its own claim (no lost update, every request counted once, the
//! resource never sees a token go backwards, an exact sum) and exits non-zero with a
//! `FAILED:` line when it does not hold; here each must exit 0 with `OK` last. Without
//! redis-py the Python half prints `SKIPPED` (CI installs python3-redis: .ci/run).

use kv_tests::client_programs::{run_with_args, skipped, succeeds};
use kv_tests::cluster::Cluster;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The Rust examples: (name, binary).
const RUST_EXAMPLES: &[(&str, &str)] = &[
    (
        "optimistic concurrency (Rust)",
        env!("CARGO_BIN_EXE_example-optimistic-concurrency"),
    ),
    (
        "idempotent retries (Rust)",
        env!("CARGO_BIN_EXE_example-idempotent-retries"),
    ),
    (
        "fencing lock (Rust)",
        env!("CARGO_BIN_EXE_example-fencing-lock"),
    ),
    ("counter (Rust)", env!("CARGO_BIN_EXE_example-counter")),
];

/// The redis-py examples, in examples/python/.
const PYTHON_EXAMPLES: &[&str] = &[
    "optimistic_concurrency.py",
    "idempotent_retries.py",
    "fencing_lock.py",
    "counter.py",
];

/// Debian's python3-redis is found by the system interpreter, not by a pyenv's.
const PYTHON: &str = "/usr/bin/python3";

fn python_example(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/python")
        .join(script)
}

/// Runs one example with `args`; panics with its output unless it exited 0 with `OK`
/// last, and prints its output either way (what the example did is the point of it).
fn assert_passes(name: &str, program: &Path, args: &[&str]) {
    let started = Instant::now();
    let run = run_with_args(name, program, args, &[]);
    eprintln!(
        "---- {name} ({:.1} s)\n{}",
        started.elapsed().as_secs_f64(),
        run.stdout
    );
    assert!(
        run.status.is_some_and(|s| s.success()) && run.last_line() == Some("OK"),
        "example {name} failed: {}",
        run.describe()
    );
}

#[test]
fn every_example_passes_against_a_three_node_cluster() {
    let cluster = Cluster::start(3, &[]);
    let nodes: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();

    for (name, binary) in RUST_EXAMPLES {
        assert_passes(name, Path::new(binary), &nodes);
    }

    if !succeeds(PYTHON, &["-c", "import redis"], &[]) {
        return skipped("redis-py examples", "python3-redis is not installed");
    }
    for script in PYTHON_EXAMPLES {
        let path = python_example(script);
        let path = path.to_string_lossy();
        let args: Vec<&str> = std::iter::once(path.as_ref())
            .chain(nodes.iter().copied())
            .collect();
        let name = format!("{script} (redis-py)");
        assert_passes(&name, Path::new(PYTHON), &args);
    }
}
