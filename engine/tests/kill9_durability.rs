//! kill -9 with real processes: a child writes under `always` and reports each
//! acknowledged write on stdout; the parent kills it at a random moment, reopens the
//! directory and checks that every acknowledged write is there. Repeated many times on
//! the same directory, so recovery of recovered databases is exercised too.
//!
//! The child is this same test binary, re-executed with `KV_KILL9_CHILD_DIR` set.
//!
//! A second run has the child commit with `write_deferred` under `everysec` and call
//! `write_out_wal` before each acknowledgement, as the server does before its replies:
//! without that call the records wait in the log writer's buffer and the kill loses
//! acknowledged writes (tried).

use kv_engine::{Db, FsyncPolicy, Keyspace, Options, WriteBatch};
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "KV_KILL9_CHILD_DIR";
const DEFERRED_ENV: &str = "KV_KILL9_DEFERRED";

fn options(deferred: bool) -> Options {
    Options {
        fsync: if deferred {
            FsyncPolicy::EverySec
        } else {
            FsyncPolicy::Always
        },
        memtable_size: 64 * 1024, // flushes and compactions happen during the test
        l1_max_bytes: 256 * 1024,
        target_file_size: 64 * 1024,
        ..Options::default()
    }
}

fn value(round: u64, i: u64) -> Vec<u8> {
    format!("r{round}-i{i}-")
        .repeat(1 + (i % 20) as usize)
        .into_bytes()
}

/// The child: writes forever, printing "ACK round i seq" after each acknowledged write.
#[test]
#[ignore = "run only as the child of kill9_acknowledged_writes_survive"]
fn kill9_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u64 = std::env::var("KV_KILL9_ROUND")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let deferred = std::env::var(DEFERRED_ENV).is_ok();
    let db = Db::open(&dir, options(deferred)).expect("child open");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "ready").ok();
    out.flush().ok();
    for i in 0.. {
        let mut b = WriteBatch::new();
        b.put(
            Keyspace::DEFAULT,
            format!("r{round:03}-{i:08}").as_bytes(),
            &value(round, i),
        );
        let seq = if deferred {
            let seq = db.write_deferred(b).expect("child write");
            db.write_out_wal().expect("child write-out");
            seq
        } else {
            db.write(b).expect("child write")
        };
        writeln!(out, "ACK {round} {i} {seq}").ok();
        out.flush().ok();
    }
}

#[test]
fn kill9_acknowledged_writes_survive() {
    acknowledged_writes_survive(false);
}

#[test]
fn kill9_acknowledged_deferred_writes_survive() {
    acknowledged_writes_survive(true);
}

fn acknowledged_writes_survive(deferred: bool) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut acked: Vec<(u64, u64)> = Vec::new();
    let mut last_seq = 0u64;
    let rounds = 12u64;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "kill9_child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("KV_KILL9_ROUND", round.to_string())
            .envs(deferred.then_some((DEFERRED_ENV, "1")))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Wait for the child to be writing, then let it run for a random number of acks.
        let target = rng.gen_range(1..400u64);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            // The harness prints its own lines too; acknowledgements carry a marker.
            let Some(ack) = line.strip_prefix("ACK ") else {
                continue;
            };
            let mut parts = ack.split_whitespace();
            if let (Some(r), Some(i), Some(s)) = (parts.next(), parts.next(), parts.next()) {
                let (r, i, s): (u64, u64, u64) =
                    (r.parse().unwrap(), i.parse().unwrap(), s.parse().unwrap());
                assert!(
                    s > last_seq,
                    "sequence numbers went back: {s} after {last_seq}"
                );
                last_seq = s;
                acked.push((r, i));
                seen += 1;
                if seen >= target || Instant::now() > deadline {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
                               // Acks printed after our last read but before the kill are acknowledged too.
        for line in lines.map_while(Result::ok) {
            let Some(ack) = line.strip_prefix("ACK ") else {
                continue;
            };
            let mut parts = ack.split_whitespace();
            if let (Some(r), Some(i)) = (parts.next(), parts.next()) {
                acked.push((r.parse().unwrap(), i.parse().unwrap()));
            }
        }
        child.wait().unwrap();
        assert!(
            seen > 0,
            "round {round}: the child never acknowledged a write"
        );

        let db = Db::open(dir.path(), options(deferred)).unwrap();
        for &(r, i) in &acked {
            let got = db
                .get(Keyspace::DEFAULT, format!("r{r:03}-{i:08}").as_bytes())
                .unwrap();
            assert_eq!(
                got.map(|v| v.value.to_vec()),
                Some(value(r, i)),
                "round {round}: acknowledged write r{r} i{i} lost"
            );
        }
        db.close().unwrap();
    }
}
