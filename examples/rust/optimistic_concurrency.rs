//! Optimistic concurrency: read a value with its version, write only if nobody wrote
//! since, and when told it lost, retry with the newer version the server sent back.
//!
//! Several writers add to one balance at once through different nodes. A plain GET and
//! SET would lose updates (two writers read 5, both write 6); SETIFMATCH writes only if
//! the key's version is still the one read, and a loser's reply carries the current
//! version and value, so it retries without another read (docs/versions-and-locks.md).
//! The final balance proves no update was lost.
//!
//! Usage: example-optimistic-concurrency [host:port ...]   (default: the README's cluster)

mod nodes;

use nodes::{addresses, connect, expect_reply, fail, nothing_written, run_together};

const KEY: &str = "example:balance";
/// Spread over the nodes.
const WRITERS: usize = 4;
/// By each writer, each adding 1.
const UPDATES: usize = 8;

/// What one writer went through.
#[derive(Default)]
struct Tally {
    /// Attempts that lost a race and were retried with the newer version.
    lost: usize,
    /// Attempts whose outcome is unknown (they may have been applied).
    unknown: usize,
}

/// (version, balance); version 0 means there is no such key.
fn read_balance(con: &mut redis::Connection) -> redis::RedisResult<(i64, i64)> {
    let reply: Option<(i64, i64)> = redis::cmd("GETWITHETAG").arg(KEY).query(con)?;
    Ok(reply.unwrap_or((0, 0)))
}

/// Adds 1 to the balance through the node at `address`.
fn add_one(con: &mut redis::Connection, address: &str, tally: &mut Tally) {
    let (mut version, mut value) = expect_reply("GETWITHETAG", read_balance(con));
    loop {
        // Written: [new version, nil]. Lost: [current version, current value], or
        // [0, nil] if there is no such key now.
        let reply: redis::RedisResult<(i64, Option<i64>)> = redis::cmd("SETIFMATCH")
            .arg(KEY)
            .arg(value + 1)
            .arg(version)
            .query(con);
        match reply {
            Ok((new_version, None)) if new_version != 0 => return,
            Ok((current_version, current)) => {
                tally.lost += 1;
                (version, value) = (current_version, current.unwrap_or(0));
            }
            Err(e) if nothing_written(&e) => {}
            Err(e) => {
                // It may have been applied: the final check allows for it.
                println!("unknown outcome: {e}");
                tally.unknown += 1;
                if e.is_io_error() {
                    *con = connect(address); // a late reply must not be taken for the next
                }
                (version, value) = expect_reply("GETWITHETAG", read_balance(con));
            }
        }
    }
}

/// UPDATES additions by one writer.
fn writer(address: &str) -> Tally {
    let mut con = connect(address);
    let mut tally = Tally::default();
    for _ in 0..UPDATES {
        add_one(&mut con, address, &mut tally);
    }
    tally
}

fn main() {
    let nodes = addresses();
    let mut first = connect(&nodes[0]);
    expect_reply("SET", redis::cmd("SET").arg(KEY).arg(0).exec(&mut first));
    let tallies = run_together(WRITERS, |i| writer(&nodes[i % nodes.len()]));
    let lost: usize = tallies.iter().map(|t| t.lost).sum();
    let unknown: usize = tallies.iter().map(|t| t.unknown).sum();
    let updates = (WRITERS * UPDATES) as i64;
    println!(
        "{WRITERS} writers through {} nodes made {updates} updates; {lost} attempts lost a \
         race and were retried with the newer version; {unknown} of unknown outcome",
        nodes.len()
    );

    let mut last = connect(&nodes[nodes.len() - 1]);
    let (version, balance) = expect_reply("GETWITHETAG", read_balance(&mut last));
    println!("balance = {balance} at version {version}");
    if !(updates..=updates + unknown as i64).contains(&balance) {
        fail(format!(
            "balance {balance}, expected {updates} (plus at most {unknown}): an update was lost"
        ));
    }
    println!("no update was lost");
    println!("OK");
}
