//! Scripts as libraries ship them, against a real kvd: a token-bucket rate limiter
//! (single client and racing clients: a bucket never gives more than its tokens), and
//! redis-py's `Lock` (tests/scripts/redis_py_lock.py) when Debian's python3-redis is
//! installed (CI installs it; SKIPPED otherwise).

use kv_tests::scripts::take;
use kv_tests::Kvd;
use std::process::Command;

#[test]
fn token_bucket_limits_and_refills() {
    let kvd = Kvd::start_default();
    let mut c = kvd.client();
    let now = 1_000_000;
    let allowed: Vec<i64> = (0..7).map(|_| take(&mut c, "bucket", 5, now).0).collect();
    assert_eq!(allowed, [1, 1, 1, 1, 1, 0, 0]);
    // 2000 ms at 0.001 tokens/ms: two more.
    let later: Vec<i64> = (0..3)
        .map(|_| take(&mut c, "bucket", 5, now + 2000).0)
        .collect();
    assert_eq!(later, [1, 1, 0]);
    assert_eq!(take(&mut c, "bucket", 5, now + 2000).1, "0");
}

#[test]
fn racing_clients_never_get_more_than_the_bucket_holds() {
    let kvd = Kvd::start_default();
    let granted: i64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut c = kvd.client();
                    (0..25)
                        .map(|_| take(&mut c, "shared", 10, 5_000).0)
                        .sum::<i64>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(granted, 10);
}

#[test]
fn redis_py_lock_acquires_extends_and_releases() {
    let python = "/usr/bin/python3";
    let has_redis_py = Command::new(python)
        .args(["-c", "import redis"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_redis_py {
        eprintln!(
            "SKIPPED: redis-py is not installed (apt-get install python3-redis); CI installs it"
        );
        return;
    }
    let kvd = Kvd::start_default();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/redis_py_lock.py");
    let out = Command::new(python)
        .arg(script)
        .arg(kvd.port.to_string())
        .output()
        .expect("run python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "OK",
        "redis-py Lock failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
