//! A lock with a fencing token and a blocking wait, guarding a resource that refuses
//! stale tokens.
//!
//! `LOCK key owner lease-ms WAIT timeout-ms` takes the lock or waits for it, and answers
//! a fencing token that grows with every acquisition, whichever node answered
//! (docs/versions-and-locks.md). A lease alone cannot protect a resource: a holder that
//! pauses past its lease (GC, swap, a partition) goes on writing while the next holder
//! works. So each write to the resource carries the token, and the resource refuses any
//! token lower than the highest it has seen.
//!
//! Several workers take turns through different nodes, each reading the resource's value
//! and writing it back plus one (a lost update if two ever worked at once). Then a holder
//! with a short lease pauses past it, another worker takes the lock, and the paused
//! holder's late write is refused.
//!
//! Usage: example-fencing-lock [host:port ...]   (default: the README's cluster)

mod nodes;

use nodes::{addresses, connect, expect_reply, fail, run_together, until_answered};
use std::sync::Mutex;
use std::time::Duration;

const LOCK_KEY: &str = "example:lock";
/// Spread over the nodes.
const WORKERS: usize = 4;
/// Lock holds by each worker.
const ROUNDS: usize = 4;
/// Far longer than a hold: a worker's lease never runs out here.
const LEASE_MS: u64 = 10_000;
/// Longest a worker waits for its turn: below the reply timeout (nodes.rs).
const WAIT_MS: u64 = 8_000;
/// The paused holder's lease.
const SHORT_LEASE_MS: u64 = 300;

/// Stands for the storage the lock protects (a file store, another database). It knows
/// nothing of the lock, only the highest fencing token it has seen.
#[derive(Default)]
struct FencedResource {
    state: Mutex<ResourceState>,
}

#[derive(Default)]
struct ResourceState {
    highest: i64,
    value: i64,
    /// Every token it accepted, in the order it saw them.
    tokens: Vec<i64>,
}

impl FencedResource {
    /// Runs `f` on the state if `token` is not below the highest seen; else says why not.
    fn with_token<T>(
        &self,
        token: i64,
        f: impl FnOnce(&mut ResourceState) -> T,
    ) -> Result<T, String> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| "the resource is poisoned".to_string())?;
        if token < state.highest {
            return Err(format!("token {token} is below {}", state.highest));
        }
        state.highest = token;
        state.tokens.push(token);
        Ok(f(&mut state))
    }

    fn read(&self, token: i64) -> Result<i64, String> {
        self.with_token(token, |s| s.value)
    }

    fn write(&self, token: i64, value: i64) -> Result<(), String> {
        self.with_token(token, |s| s.value = value)
    }

    /// The value and the tokens seen, without a token (for the checks at the end).
    fn snapshot(&self) -> (i64, Vec<i64>) {
        match self.state.lock() {
            Ok(s) => (s.value, s.tokens.clone()),
            Err(_) => fail("the resource is poisoned"),
        }
    }
}

/// A unique owner name for one hold.
fn owner(role: &str) -> String {
    format!("{role}-{:032x}", rand::random::<u128>())
}

/// The fencing token of a hold by `owner`, waiting up to WAIT_MS for it. LOCK by the
/// current owner takes the lock again, so resending it after any error is safe.
fn acquire(address: &str, con: &mut redis::Connection, owner: &str, lease_ms: u64) -> i64 {
    let mut lock = redis::cmd("LOCK");
    lock.arg(LOCK_KEY)
        .arg(owner)
        .arg(lease_ms)
        .arg("WAIT")
        .arg(WAIT_MS);
    let token: Option<i64> = until_answered(address, con, |con| lock.query(con));
    token.unwrap_or_else(|| {
        fail(format!(
            "{owner} waited {WAIT_MS} ms without getting the lock"
        ))
    })
}

/// True if `owner` still held the lock and released it. Under a request id, so that
/// resending it after an unknown outcome answers the first reply instead of 0.
fn release(address: &str, con: &mut redis::Connection, owner: &str) -> bool {
    let mut unlock = redis::cmd("IDEMPOTENT");
    unlock
        .arg(format!("unlock-{owner}"))
        .arg("UNLOCK")
        .arg(LOCK_KEY)
        .arg(owner);
    let released: i64 = until_answered(address, con, |con| unlock.query(con));
    released == 1
}

fn add_one_under_lock(resource: &FencedResource, token: i64) -> Result<(), String> {
    let value = resource.read(token)?;
    // The work: another holder at the same time would lose this update.
    std::thread::sleep(Duration::from_millis(5));
    resource.write(token, value + 1)
}

/// ROUNDS holds of the lock through the node at `address`; returns their tokens.
fn worker(address: &str, resource: &FencedResource) -> Vec<i64> {
    let mut con = connect(address);
    (0..ROUNDS)
        .map(|_| {
            let owner = owner("worker");
            let token = acquire(address, &mut con, &owner, LEASE_MS);
            if let Err(why) = add_one_under_lock(resource, token) {
                fail(format!(
                    "the holder of token {token} was refused ({why}): tokens went backwards"
                ));
            }
            if !release(address, &mut con, &owner) {
                fail(format!("{owner} lost the lock before releasing it"));
            }
            token
        })
        .collect()
}

/// A holder pauses past its lease; the next holder works; the late write fails.
fn paused_holder_is_fenced_off(nodes: &[String], resource: &FencedResource) -> i64 {
    let (slow_address, fast_address) = (&nodes[0], &nodes[1 % nodes.len()]);
    let (mut slow_con, mut fast_con) = (connect(slow_address), connect(fast_address));
    let (slow, fast) = (owner("slow"), owner("fast"));
    let slow_token = acquire(slow_address, &mut slow_con, &slow, SHORT_LEASE_MS);
    let value = resource.read(slow_token).unwrap_or_else(|why| fail(why));
    println!("{slow} holds the lock with token {slow_token}, read {value}, and pauses");
    // The next worker waits through another node and gets the lock when the lease ends.
    let fast_token = acquire(fast_address, &mut fast_con, &fast, LEASE_MS);
    add_one_under_lock(resource, fast_token).unwrap_or_else(|why| fail(why));
    println!(
        "its lease ran out; {fast} got token {fast_token} and wrote {}",
        resource.snapshot().0
    );
    match resource.write(slow_token, value + 1) {
        Ok(()) => fail(format!(
            "the resource took the paused holder's write with stale token {slow_token}"
        )),
        Err(why) => println!("the paused holder's late write was refused: {why}"),
    }
    if release(slow_address, &mut slow_con, &slow) {
        fail("the paused holder could still release a lock it had lost");
    }
    if !release(fast_address, &mut fast_con, &fast) {
        fail(format!("{fast} lost the lock before releasing it"));
    }
    fast_token
}

fn main() {
    let nodes = addresses();
    expect_reply(
        "DEL",
        redis::cmd("DEL")
            .arg(LOCK_KEY)
            .query::<i64>(&mut connect(&nodes[0])),
    );
    let resource = FencedResource::default();
    let tokens: Vec<i64> = run_together(WORKERS, |i| worker(&nodes[i % nodes.len()], &resource))
        .into_iter()
        .flatten()
        .collect();
    let holds = WORKERS * ROUNDS;
    let min = tokens.iter().copied().min().unwrap_or(0);
    let max = tokens.iter().copied().max().unwrap_or(0);
    println!(
        "{WORKERS} workers through {} nodes held the lock {holds} times; tokens {min}..{max}",
        nodes.len()
    );
    let mut distinct = tokens.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != holds {
        fail("two holds got the same fencing token");
    }
    let (value, _) = resource.snapshot();
    if value != holds as i64 {
        fail(format!(
            "the resource counts {value}, expected {holds}: two holders overlapped"
        ));
    }
    println!("resource value {value}: the holds never overlapped");

    let last = paused_holder_is_fenced_off(&nodes, &resource);
    let (value, seen) = resource.snapshot();
    if last <= max || value != holds as i64 + 1 {
        fail(format!("after the pause: token {last}, value {value}"));
    }
    if seen.windows(2).any(|w| w[1] < w[0]) {
        fail(format!("the resource saw tokens go backwards: {seen:?}"));
    }
    println!(
        "the resource saw {} tokens, never one going backwards",
        seen.len()
    );
    println!("OK");
}
