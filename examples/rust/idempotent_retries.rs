//! Retries that are safe: exponential backoff with jitter, and a request id per logical
//! request so that a retry never applies it twice.
//!
//! A client that sent INCR and lost the connection before the reply cannot know whether
//! it counted. Sending it again may count it twice; not sending it may count it never.
//! Wrapped as `IDEMPOTENT <request-id> INCR key`, the retry (through any node) returns the
//! first attempt's reply if that attempt was applied, and applies it otherwise
//! (docs/versions-and-locks.md, docs/consistency.md "Idempotent retries").
//!
//! Failures are injected on purpose: some requests drop their connection right after
//! sending, some read the reply and act as if it never came. Every request is then
//! retried through the next node. The counter must equal the number of requests.
//!
//! Usage: example-idempotent-retries [host:port ...]   (default: the README's cluster)

mod nodes;

use nodes::{
    addresses, connect, expect_reply, fail, nothing_written, outcome_unknown, run_together,
};
use rand::Rng;
use std::sync::Mutex;
use std::time::Duration;

const KEY: &str = "example:orders";
const UNSAFE_KEY: &str = "example:orders-without-ids";
const WORKERS: usize = 3;
/// By each worker.
const REQUESTS: usize = 8;
/// Per request, the first included.
const ATTEMPTS: u32 = 8;
/// Before the first retry, doubled each time ...
const BASE_DELAY: Duration = Duration::from_millis(10);
/// ... up to this.
const MAX_DELAY: Duration = Duration::from_millis(500);

/// The failure injected into a request's first attempt.
#[derive(Clone, Copy, PartialEq)]
enum Injected {
    None,
    /// The connection is closed right after the request is sent.
    DropConnection,
    /// The reply is read, then treated as if it never came.
    LoseReply,
}

/// What went wrong with one attempt.
enum AttemptError {
    /// Caused by this program.
    Injected(String),
    /// From the connection or the server.
    Redis(redis::RedisError),
}

impl AttemptError {
    /// True if the request may or may not have been applied, or surely was not: with a
    /// request id, sending it again is safe after any of these.
    fn retryable(&self) -> bool {
        match self {
            AttemptError::Injected(_) => true,
            AttemptError::Redis(e) => nothing_written(e) || outcome_unknown(e),
        }
    }
}

/// Full jitter (a random wait up to the exponential bound), so that clients failing
/// together do not retry together.
fn backoff(attempt: u32) {
    let bound = MAX_DELAY.min(BASE_DELAY * 2u32.pow(attempt));
    std::thread::sleep(bound.mul_f64(rand::thread_rng().gen::<f64>()));
}

/// Sends a command and closes the connection without reading the reply: what a client
/// sees when the network breaks after the request left.
fn send_and_drop(mut con: redis::Connection, command: &redis::Cmd) -> redis::RedisResult<()> {
    con.send_packed_command(&command.get_packed_command())
}

/// One logical increment, retried until it is known to be applied; returns its reply
/// (the counter's value after it).
fn increment_once(
    nodes: &[String],
    first_node: usize,
    inject: Injected,
    log: &Mutex<Vec<String>>,
) -> i64 {
    let request_id = format!("order-{:032x}", rand::random::<u128>());
    let mut command = redis::cmd("IDEMPOTENT");
    command.arg(&request_id).arg("INCR").arg(KEY);
    let mut first_reply = None;
    for attempt in 0..ATTEMPTS {
        // Each retry through the next node, on a new connection.
        let mut con = connect(&nodes[(first_node + attempt as usize) % nodes.len()]);
        let outcome = if attempt == 0 && inject == Injected::DropConnection {
            match send_and_drop(con, &command) {
                Ok(()) => Err(AttemptError::Injected(
                    "connection dropped before the reply".into(),
                )),
                Err(e) => Err(AttemptError::Redis(e)),
            }
        } else {
            match command.query::<i64>(&mut con) {
                Ok(reply) if attempt == 0 && inject == Injected::LoseReply => {
                    first_reply = Some(reply);
                    Err(AttemptError::Injected(format!(
                        "reply {reply} treated as lost"
                    )))
                }
                Ok(reply) => Ok(reply),
                Err(e) => Err(AttemptError::Redis(e)),
            }
        };
        match outcome {
            Ok(reply) => {
                if first_reply.is_some_and(|first| first != reply) {
                    fail(format!(
                        "{request_id}: the retry answered {reply}, the first attempt {first_reply:?}"
                    ));
                }
                return reply;
            }
            Err(e) if e.retryable() => {
                let why = match e {
                    AttemptError::Injected(why) => why,
                    AttemptError::Redis(e) => e.to_string(),
                };
                if let Ok(mut log) = log.lock() {
                    log.push(format!(
                        "attempt {} of {request_id}: {why}; retrying",
                        attempt + 1
                    ));
                }
                backoff(attempt);
            }
            Err(AttemptError::Redis(e)) => fail(format!("{request_id}: {e}")),
            Err(AttemptError::Injected(why)) => fail(why),
        }
    }
    fail(format!("{request_id}: no answer after {ATTEMPTS} attempts"))
}

/// REQUESTS increments, starting at node `index`; returns their replies.
fn worker(nodes: &[String], index: usize, log: &Mutex<Vec<String>>) -> Vec<i64> {
    let injected = [
        Injected::None,
        Injected::DropConnection,
        Injected::LoseReply,
    ];
    (0..REQUESTS)
        .map(|i| increment_once(nodes, index % nodes.len(), injected[i % 3], log))
        .collect()
}

fn main() {
    let nodes = addresses();
    let mut con = connect(&nodes[0]);
    expect_reply(
        "DEL",
        redis::cmd("DEL")
            .arg(KEY)
            .arg(UNSAFE_KEY)
            .query::<i64>(&mut con),
    );
    let log = Mutex::new(Vec::new());
    let mut replies: Vec<i64> = run_together(WORKERS, |i| worker(&nodes, i, &log))
        .into_iter()
        .flatten()
        .collect();
    let log = log
        .into_inner()
        .unwrap_or_else(|_| fail("a worker panicked"));
    for line in log.iter().take(4) {
        println!("{line}");
    }
    let requests = (WORKERS * REQUESTS) as i64;
    println!(
        "{requests} requests by {WORKERS} workers, {} retries after injected or real \
         failures, each retry through another node",
        log.len()
    );

    let mut last = connect(&nodes[nodes.len() - 1]);
    let counter: Option<i64> = expect_reply("GET", redis::cmd("GET").arg(KEY).query(&mut last));
    let counter = counter.unwrap_or(0);
    println!("counter = {counter}");
    replies.sort_unstable();
    if replies != (1..=requests).collect::<Vec<i64>>() || counter != requests {
        fail(format!(
            "expected {requests} with replies 1..{requests}, got {replies:?}"
        ));
    }
    println!("every request counted once, however often it was sent");

    // The same lost reply without a request id: the retry counts again.
    let mut incr = || {
        expect_reply(
            "INCR",
            redis::cmd("INCR").arg(UNSAFE_KEY).query::<i64>(&mut con),
        )
    };
    incr(); // the reply "lost"
    let unsafe_count = incr(); // the retry
    println!("without a request id, one increment retried once counts {unsafe_count} times");
    if unsafe_count != 2 {
        fail(format!("plain INCR retried: {unsafe_count}, expected 2"));
    }
    println!("OK");
}
