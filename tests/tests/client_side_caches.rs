//! Client libraries' own client-side caches against a real kvd (docs/compatibility.md,
//! "Client-side caches"): redis-py's (PyPI versions .ci/run installs under
//! `target/pypi/`) and the Rust `redis` crate's (`cache-aio`, which the workspace's
//! `redis` 0.27 lacks: the tests crate also depends on a newer release, renamed
//! `redis_with_cache`).
//!
//! Each case reads a key twice through the cache (the second read is served by the
//! library: the server counts one GET), writes the key through another connection, and
//! sees the new value once the server's `invalidate` push has reached the library
//! (exactly one more GET reaches the server); FLUSHALL's null invalidation then empties
//! the cache. The same case runs against Debian's redis-server first when it is
//! installed, so an expectation only kvd meets cannot hide in it.

use kv_tests::client_programs::{
    clients_dir, run_program, run_to_end, skipped, succeeds, ProgramRun,
};
use kv_tests::{info_field, Kvd, RedisServer};
use redis_with_cache::caching::{CacheConfig, CacheStatistics};
use redis_with_cache::AsyncConnectionConfig;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// redis-py versions whose cache is tried: the 5.x line, the first with a cache, and the
/// newest release when this was written. .ci/run installs each with
/// `python3 -m pip install --target target/pypi/redis-<version> redis==<version>`.
const REDIS_PY_VERSIONS: &[&str] = &["5.2.1", "8.1.0"];

/// Exit status of tests/clients/python/kvd_client_cache.py when redis-py refuses to
/// start its cache because of the version the server reports.
const REFUSED: i32 = 3;

/// Longest wait for an invalidation to reach a cache, or for any one reply.
const WAIT: Duration = Duration::from_secs(10);

/// Where .ci/run installs redis-py `version`: `<target dir>/pypi/redis-<version>`.
fn redis_py_dir(version: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("..")
        .join("pypi")
        .join(format!("redis-{version}"))
}

/// Panics unless the program ended with redis-py's refusal of the server's version.
fn assert_refused(lib: &str, server: &str, run: &ProgramRun) {
    let refused =
        run.code() == Some(REFUSED) && run.last_line().is_some_and(|l| l.starts_with("REFUSED: "));
    assert!(
        refused,
        "{lib} against {server}: expected the library to refuse the version\n{}",
        run.describe()
    );
    eprintln!("{lib} against {server}: {}", run.last_line().unwrap_or(""));
}

fn redis_py_cache(version: &str) {
    let lib = format!("redis-py {version} cache");
    let dir = redis_py_dir(version);
    let pythonpath = dir.to_string_lossy().into_owned();
    let env = [("PYTHONPATH", pythonpath.as_str())];
    if !succeeds("python3", &["--version"], &[]) {
        return skipped(&lib, "python3 is not installed");
    }
    let probe = format!("import redis, sys; sys.exit(redis.__version__ != '{version}')");
    if !succeeds("python3", &["-c", &probe], &env) {
        return skipped(
            &lib,
            &format!(
                "redis=={version} is not installed in {} (python3 -m pip install --target)",
                dir.display()
            ),
        );
    }
    let script = clients_dir("python/kvd_client_cache.py");
    let script = script.to_string_lossy();
    let python = Path::new("python3");
    let args = [script.as_ref()];

    // redis-py caches only for servers reporting 7.4 or later: Debian's redis-server
    // (7.0) is refused, and so is kvd reporting its default 7.0.15.
    match RedisServer::start() {
        Some(redis) => {
            let run = run_to_end(&lib, python, &args, redis.port, &env);
            if run.code() == Some(REFUSED) {
                assert_refused(&lib, "redis-server", &run);
            } else {
                run_program(&lib, "redis-server", redis.port, python, &args, &env);
            }
        }
        None => eprintln!("{lib}: redis-server is not installed; running against kvd only"),
    }
    let kvd = Kvd::start_default();
    let run = run_to_end(&lib, python, &args, kvd.port, &env);
    assert_refused(&lib, "kvd reporting 7.0.15", &run);

    let kvd = Kvd::start(&["--compat-version", "7.4.0"]);
    run_program(
        &lib,
        "kvd --compat-version 7.4.0",
        kvd.port,
        python,
        &args,
        &env,
    );
}

#[test]
fn redis_py_cache_5() {
    redis_py_cache(REDIS_PY_VERSIONS[0]);
}

#[test]
fn redis_py_cache_8() {
    redis_py_cache(REDIS_PY_VERSIONS[1]);
}

/// GETs the server has run, from INFO commandstats (through a plain RESP2 connection).
fn get_calls(plain: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(plain)
        .expect("INFO commandstats");
    info_field(&info, "cmdstat_get")
        .and_then(|v| {
            v.split(',')
                .find_map(|kv| kv.strip_prefix("calls=").and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Polls GET `key` through the cache until it answers `want`, at most [`WAIT`]: the
/// invalidation push reaches the connection some time after the writer's reply, and the
/// crate applies it on the task that reads the socket.
async fn until_value(
    cached: &mut redis_with_cache::aio::MultiplexedConnection,
    key: &str,
    want: Option<&str>,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got: Option<String> = redis_with_cache::cmd("GET")
            .arg(key)
            .query_async(cached)
            .await
            .expect("GET through the cache");
        if got.as_deref() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "GET {key} still answers {got:?}, not {want:?}, {WAIT:?} after the write"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The crate's cache against the server on `port`.
fn rust_crate_cache_against(server: &str, port: u16) {
    let url = format!("redis://127.0.0.1:{port}/");
    let mut plain = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(WAIT))
        .expect("plain connection");
    redis::cmd("FLUSHALL").exec(&mut plain).expect("FLUSHALL");
    redis::cmd("SET")
        .arg("cached")
        .arg("v1")
        .exec(&mut plain)
        .expect("SET");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // The cache needs RESP3: the crate sends HELLO 3, then CLIENT TRACKING ON.
        let client =
            redis_with_cache::Client::open(format!("{url}?protocol=resp3")).expect("client");
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(WAIT))
            .set_cache_config(CacheConfig::new());
        let mut cached = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap_or_else(|e| panic!("caching connection to {server}: {e}"));
        let stats = |c: &redis_with_cache::aio::MultiplexedConnection| {
            c.get_cache_statistics().expect("the cache is on")
        };

        let before = get_calls(&mut plain);
        until_value(&mut cached, "cached", Some("v1")).await;
        until_value(&mut cached, "cached", Some("v1")).await;
        assert_eq!(
            (stats(&cached), get_calls(&mut plain) - before),
            (
                CacheStatistics {
                    hit: 1,
                    miss: 1,
                    invalidate: 0
                },
                1
            ),
            "{server}: the second GET must come from the cache"
        );

        redis::cmd("SET")
            .arg("cached")
            .arg("v2")
            .exec(&mut plain)
            .expect("SET");
        until_value(&mut cached, "cached", Some("v2")).await;
        let after_write = stats(&cached);
        assert_eq!(
            (after_write.invalidate, get_calls(&mut plain) - before),
            (1, 2),
            "{server}: one invalidation, then one GET to the server ({after_write:?})"
        );

        redis::cmd("FLUSHALL").exec(&mut plain).expect("FLUSHALL");
        until_value(&mut cached, "cached", None).await;
    });
}

#[test]
fn rust_redis_crate_cache() {
    match RedisServer::start() {
        Some(redis) => rust_crate_cache_against("redis-server", redis.port),
        None => eprintln!("redis crate cache: redis-server is not installed; kvd only"),
    }
    let kvd = Kvd::start_default();
    rust_crate_cache_against("kvd", kvd.port);
}
