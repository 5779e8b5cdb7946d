//! kvd with the real redis-cli and redis-benchmark (skipped with a message if absent).

use kv_tests::Kvd;
use std::path::Path;
use std::process::Command;

fn cli(k: &Kvd, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &k.port.to_string()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_cli_and_benchmark_work() {
    if !Path::new("/usr/bin/redis-cli").exists() {
        eprintln!("SKIPPED: redis-cli is not installed (apt-get install redis-tools)");
        return;
    }
    let k = Kvd::start_default();
    assert_eq!(cli(&k, &["SET", "foo", "bar"]), "OK\n");
    assert_eq!(cli(&k, &["GET", "foo"]), "bar\n");
    assert_eq!(cli(&k, &["INCR", "n"]), "1\n");
    assert_eq!(cli(&k, &["DBSIZE"]), "2\n");
    assert!(cli(&k, &["INFO", "server"]).contains("redis_version:"));
    if Path::new("/usr/bin/redis-benchmark").exists() {
        let out = Command::new("redis-benchmark")
            .args([
                "-p",
                &k.port.to_string(),
                "-t",
                "set,get,incr",
                "-n",
                "2000",
                "-P",
                "16",
                "-q",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("SET") && text.contains("GET"), "{text}");
    }
}
