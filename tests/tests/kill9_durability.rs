//! kill -9 under concurrent write load: every acknowledged write is there after the
//! restart, and so is every value a reader was shown, and versions keep growing past
//! every version seen. With `--appendfsync always`, and with `everysec`, where a
//! connection's commits leave their WAL records buffered until it writes the WAL out
//! before its replies (docs/server.md, "Protocol"): a reply that left before its write
//! (or a write it showed) reached the operating system fails this test (tried).

use kv_tests::Kvd;
use std::time::{Duration, Instant};

const WRITERS: usize = 4;
const MAX_OPS_PER_WRITER: u64 = 3000;

struct Acked {
    last_set: u64,
    incrs: u64,
    max_version: i64,
}

#[test]
fn every_acknowledged_write_survives_kill9() {
    acknowledged_and_shown_writes_survive_kill9("always");
}

#[test]
fn every_acknowledged_write_survives_kill9_with_everysec() {
    acknowledged_and_shown_writes_survive_kill9("everysec");
}

fn acknowledged_and_shown_writes_survive_kill9(policy: &str) {
    let mut k = Kvd::start(&["--appendfsync", policy]);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let url = k.url(false);
            std::thread::spawn(move || {
                let mut acked = Acked {
                    last_set: 0,
                    incrs: 0,
                    max_version: 0,
                };
                let Ok(mut c) = redis::Client::open(url).unwrap().get_connection() else {
                    return acked;
                };
                for i in 1..=MAX_OPS_PER_WRITER {
                    let key = format!("w{w}:k{i}");
                    let r: redis::RedisResult<i64> = redis::cmd("SET")
                        .arg(&key)
                        .arg(i)
                        .arg("WITHETAG")
                        .query(&mut c);
                    match r {
                        Ok(v) => {
                            acked.last_set = i;
                            acked.max_version = acked.max_version.max(v);
                        }
                        Err(_) => break,
                    }
                    match redis::cmd("INCR")
                        .arg(format!("w{w}:count"))
                        .query::<i64>(&mut c)
                    {
                        Ok(_) => acked.incrs += 1,
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect();
    // A reader on its own connection: the largest count it was shown per writer.
    let reader = {
        let url = k.url(false);
        std::thread::spawn(move || {
            let mut shown = [0i64; WRITERS];
            let Ok(mut c) = redis::Client::open(url).unwrap().get_connection() else {
                return shown;
            };
            'reading: loop {
                for (w, max) in shown.iter_mut().enumerate() {
                    let r: redis::RedisResult<Option<i64>> =
                        redis::cmd("GET").arg(format!("w{w}:count")).query(&mut c);
                    match r {
                        Ok(n) => *max = (*max).max(n.unwrap_or(0)),
                        Err(_) => break 'reading,
                    }
                }
            }
            shown
        })
    };
    // Let the writers get going, then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut probe = k.client();
    loop {
        let n: Option<i64> = redis::cmd("GET").arg("w0:count").query(&mut probe).unwrap();
        if n.unwrap_or(0) >= 300 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    k.kill9();
    let acked: Vec<Acked> = writers.into_iter().map(|t| t.join().unwrap()).collect();
    let shown = reader.join().unwrap();
    k.restart();
    let mut c = k.client();
    let mut max_seen = 0;
    for (w, a) in acked.iter().enumerate() {
        assert!(a.last_set > 0, "writer {w} acknowledged nothing");
        for i in 1..=a.last_set {
            let v: Option<u64> = redis::cmd("GET")
                .arg(format!("w{w}:k{i}"))
                .query(&mut c)
                .unwrap();
            assert_eq!(
                v,
                Some(i),
                "writer {w} key {i} lost (acked up to {})",
                a.last_set
            );
        }
        let n: i64 = redis::cmd("GET")
            .arg(format!("w{w}:count"))
            .query(&mut c)
            .unwrap();
        assert!(
            n as u64 >= a.incrs,
            "writer {w}: counter {n} < acked {}",
            a.incrs
        );
        assert!(
            n >= shown[w],
            "writer {w}: counter {n} < {} shown to a reader before the crash",
            shown[w]
        );
        max_seen = max_seen.max(a.max_version);
    }
    let v: i64 = redis::cmd("SET")
        .arg("after")
        .arg("x")
        .arg("WITHETAG")
        .query(&mut c)
        .unwrap();
    assert!(
        v > max_seen,
        "version {v} not above {max_seen} seen before the crash"
    );
}
