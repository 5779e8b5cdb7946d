//! What every example shares: the cluster's nodes, a connection per node, running
//! workers at once, and how to tell an error that wrote nothing from one whose outcome
//! is unknown (docs/consistency.md).
//!
//! A kvd cluster needs no cluster-aware client: any node serves any key, so the examples
//! open plain `redis` connections to several nodes and spread their workers over them.
#![allow(dead_code)] // each example uses part of this module

use std::fmt::Display;
use std::time::Duration;

/// The nodes of `kvtool cluster up --nodes 3 --base-port 7001` (README.md).
pub const DEFAULT_NODES: [&str; 3] = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];

/// Longest wait for any one reply: a hang is a failure, not a wait.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The node addresses given as arguments (`host:port ...`), else [`DEFAULT_NODES`].
pub fn addresses() -> Vec<String> {
    let given: Vec<String> = std::env::args().skip(1).collect();
    if given.is_empty() {
        DEFAULT_NODES.iter().map(|a| a.to_string()).collect()
    } else {
        given
    }
}

/// A plain connection to one node, with reply timeouts.
pub fn connect(address: &str) -> redis::Connection {
    let connection = redis::Client::open(format!("redis://{address}/"))
        .and_then(|client| client.get_connection_with_timeout(REPLY_TIMEOUT))
        .and_then(|con| {
            con.set_read_timeout(Some(REPLY_TIMEOUT))?;
            con.set_write_timeout(Some(REPLY_TIMEOUT))?;
            Ok(con)
        });
    connection.unwrap_or_else(|e| fail(format!("cannot connect to {address}: {e}")))
}

/// True if the error says for sure that the command was not applied: a consensus round
/// that kept losing (TRYAGAIN) or too few replicas (CLUSTERDOWN). Anything else after
/// the command was sent (a broken connection, a timeout, TIMEOUT) may have applied it.
pub fn nothing_written(error: &redis::RedisError) -> bool {
    error.to_string().contains("nothing was written")
}

/// True if the command may or may not have been applied: the connection broke or timed
/// out after it was sent, or the cluster answered TIMEOUT (docs/consistency.md).
pub fn outcome_unknown(error: &redis::RedisError) -> bool {
    error.is_io_error() || error.code() == Some("TIMEOUT")
}

/// `call(con)`, sent again (on a new connection to `address` after a broken one) after
/// any error that wrote nothing or whose outcome is unknown. Only for commands that are
/// safe to repeat: LOCK by its owner, anything wrapped in IDEMPOTENT.
pub fn until_answered<T>(
    address: &str,
    con: &mut redis::Connection,
    mut call: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
) -> T {
    const ATTEMPTS: usize = 20;
    for _ in 0..ATTEMPTS {
        match call(con) {
            Ok(reply) => return reply,
            Err(e) if nothing_written(&e) || outcome_unknown(&e) => {
                println!("sending again after: {e}");
                if e.is_io_error() {
                    *con = connect(address); // a late reply must not be taken for the next
                }
            }
            Err(e) => fail(e),
        }
    }
    fail(format!(
        "no answer from {address} after {ATTEMPTS} attempts"
    ))
}

/// `call()`, sent again while it fails with an error saying nothing was written; any
/// other error is returned (the caller decides what an unknown outcome means for it).
pub fn unless_nothing_written<T>(
    mut call: impl FnMut() -> redis::RedisResult<T>,
) -> redis::RedisResult<T> {
    loop {
        match call() {
            Err(e) if nothing_written(&e) => continue,
            other => return other,
        }
    }
}

/// The reply, or the end of the program if the command failed.
pub fn expect_reply<T>(what: &str, reply: redis::RedisResult<T>) -> T {
    reply.unwrap_or_else(|e| fail(format!("{what}: {e}")))
}

/// Runs `task(0)` .. `task(count - 1)` in threads at once and returns their results in
/// order.
pub fn run_together<T: Send>(count: usize, task: impl Fn(usize) -> T + Sync) -> Vec<T> {
    std::thread::scope(|scope| {
        let task = &task;
        let handles: Vec<_> = (0..count).map(|i| scope.spawn(move || task(i))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| fail("a worker panicked")))
            .collect()
    })
}

/// Ends the program with a non-zero status: an expectation did not hold.
pub fn fail(message: impl Display) -> ! {
    println!("FAILED: {message}");
    std::process::exit(1)
}
