//! The same random command streams go to kvd and to Debian's redis-server; every reply
//! must be byte-for-byte identical (RESP2 and RESP3). Skips with a message if
//! redis-server is not installed.

use kv_tests::{encode_command, Kvd, RawConn, RedisServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEYS: &[&str] = &["k0", "k1", "k2", "k3", "{n}", "bits"];
const VALUES: &[&str] = &[
    "",
    "a",
    "hello",
    "12",
    "-7",
    "9223372036854775807",
    "3.5",
    "x y",
    "0",
];

fn key(r: &mut StdRng) -> String {
    KEYS[r.gen_range(0..KEYS.len())].to_string()
}

fn value(r: &mut StdRng) -> String {
    VALUES[r.gen_range(0..VALUES.len())].to_string()
}

fn num(r: &mut StdRng) -> String {
    [
        "0",
        "1",
        "-1",
        "3",
        "10",
        "-100",
        "abc",
        "99999999999999999999",
        "2",
    ][r.gen_range(0..9)]
    .to_string()
}

fn random_command(r: &mut StdRng) -> Vec<String> {
    let k = key(r);
    let s = |x: &[&str]| x.iter().map(|v| v.to_string()).collect::<Vec<_>>();
    match r.gen_range(0..70) {
        0 | 1 => vec!["SET".into(), k, value(r)],
        2 => {
            let mut c = vec!["SET".into(), k, value(r)];
            for opt in [["NX"], ["XX"], ["GET"], ["KEEPTTL"]] {
                if r.gen_bool(0.3) {
                    c.push(opt[0].into());
                }
            }
            if r.gen_bool(0.3) {
                c.extend(s(&["EX", "100"]));
            }
            c
        }
        3 | 4 => vec!["GET".into(), k],
        5 => vec!["DEL".into(), k, key(r)],
        6 => vec!["EXISTS".into(), k, key(r), key(r)],
        7 => vec!["INCR".into(), k],
        8 => vec!["INCRBY".into(), k, num(r)],
        9 => vec!["DECRBY".into(), k, num(r)],
        10 => vec!["DECR".into(), k],
        11 => vec!["APPEND".into(), k, value(r)],
        12 => vec!["STRLEN".into(), k],
        13 => vec!["GETRANGE".into(), k, num(r), num(r)],
        14 => vec![
            "SETRANGE".into(),
            k,
            ["0", "2", "5", "-1"][r.gen_range(0..4)].into(),
            value(r),
        ],
        15 => vec!["MSET".into(), k, value(r), key(r), value(r)],
        16 => vec!["MGET".into(), k, key(r), key(r)],
        17 => vec!["MSETNX".into(), k, value(r), key(r), value(r)],
        18 => vec!["SETNX".into(), k, value(r)],
        19 => vec!["GETSET".into(), k, value(r)],
        20 => vec!["GETDEL".into(), k],
        21 => vec!["TYPE".into(), k],
        22 => vec!["RENAME".into(), k, key(r)],
        23 => vec!["RENAMENX".into(), k, key(r)],
        24 => {
            let mut c = vec!["COPY".into(), k, key(r)];
            if r.gen_bool(0.5) {
                c.push("REPLACE".into());
            }
            c
        }
        25 => {
            let mut c = vec![
                "EXPIRE".into(),
                k,
                ["100", "200", "abc", "50"][r.gen_range(0..4)].into(),
            ];
            if r.gen_bool(0.5) {
                c.push(["NX", "XX", "GT", "LT", "BAD"][r.gen_range(0..5)].into());
            }
            c
        }
        26 => vec!["TTL".into(), k],
        27 => vec!["PERSIST".into(), k],
        28 => vec![
            "SETBIT".into(),
            "bits".into(),
            ["0", "7", "100", "-1"][r.gen_range(0..4)].into(),
            ["0", "1", "2"][r.gen_range(0..3)].into(),
        ],
        29 => vec![
            "GETBIT".into(),
            k,
            ["0", "7", "100"][r.gen_range(0..3)].into(),
        ],
        30 => {
            let mut c = vec!["BITCOUNT".into(), k];
            if r.gen_bool(0.5) {
                c.extend([num(r), num(r)]);
            }
            c
        }
        31 => vec!["BITPOS".into(), k, ["0", "1"][r.gen_range(0..2)].into()],
        32 => vec!["LCS".into(), k, key(r)],
        33 => vec!["NOSUCHCMD".into(), k, value(r)],
        34 => vec!["GET".into()],
        35 => vec![
            "GETEX".into(),
            k,
            ["PERSIST", "EX"][r.gen_range(0..2)].into(),
            "100".into(),
        ],
        // Exactly representable sums on their own key; any value on any key in 68.
        36 => vec![
            "INCRBYFLOAT".into(),
            "{f}".into(),
            ["1.5", "-0.25", "abc", "2"][r.gen_range(0..4)].into(),
        ],
        37 => vec!["DBSIZE".into()],
        38 => vec!["ECHO".into(), value(r)],
        39 => vec!["PING".into()],
        40 => vec![
            "SET".into(),
            k,
            value(r),
            ["EX", "PX", "NX", "BAD"][r.gen_range(0..4)].into(),
        ],
        41 => vec![
            "SELECT".into(),
            ["0", "1", "16", "x"][r.gen_range(0..4)].into(),
        ],
        42 => vec!["EXPIRE".into(), k],
        43 => vec!["PTTL".into(), "nokey".into()],
        44 => vec!["MOVE".into(), k, ["0", "1"][r.gen_range(0..2)].into()],
        46 => vec![
            "SETEX".into(),
            k,
            ["100", "0", "-5", "x"][r.gen_range(0..4)].into(),
            value(r),
        ],
        47 => vec![
            "PSETEX".into(),
            k,
            ["100000", "0", "x"][r.gen_range(0..3)].into(),
            value(r),
        ],
        48 => vec![
            "PEXPIRE".into(),
            k,
            ["100000", "-1", "x"][r.gen_range(0..3)].into(),
        ],
        49 => vec![
            "EXPIREAT".into(),
            k,
            ["1", "33177117420", "x"][r.gen_range(0..3)].into(),
        ],
        // (EXPIRETIME of a relative expiry depends on the millisecond each server ran it.)
        50 => vec![
            ["EXPIRETIME", "PEXPIRETIME"][r.gen_range(0..2)].into(),
            "nokey".into(),
        ],
        51 => vec!["RENAME".into(), k.clone(), k],
        52 => vec![
            "COPY".into(),
            k,
            key(r),
            "DB".into(),
            ["1", "0", "99", "x"][r.gen_range(0..4)].into(),
        ],
        53 => vec![
            "LCS".into(),
            k,
            key(r),
            ["LEN", "IDX", "WITHMATCHLEN", "BAD"][r.gen_range(0..4)].into(),
        ],
        54 => vec![
            "BITCOUNT".into(),
            k,
            num(r),
            num(r),
            ["BIT", "BYTE", "BAD"][r.gen_range(0..3)].into(),
        ],
        55 => vec![
            "BITPOS".into(),
            k,
            ["0", "1", "2"][r.gen_range(0..3)].into(),
            num(r),
            num(r),
            ["BIT", "BYTE"][r.gen_range(0..2)].into(),
        ],
        56 => vec!["TOUCH".into(), k, key(r)],
        57 => vec!["UNLINK".into(), k, key(r)],
        58 => vec!["MSET".into(), k, value(r), key(r)],
        59 => vec!["FLUSHDB".into()],
        60 => vec!["SUBSTR".into(), k, num(r), num(r)],
        61 => vec!["GETEX".into(), k],
        // (A PXAT in the past leaves an expired key that Redis's DBSIZE still counts until
        // its expiry cycle runs: timing-dependent, so only future times here.)
        62 => vec![
            "SET".into(),
            k,
            value(r),
            "PXAT".into(),
            ["33177117420000", "x"][r.gen_range(0..2)].into(),
        ],
        63 => vec!["ECHO".into()],
        64 => vec![
            "SWAPDB".into(),
            ["0", "1", "x"][r.gen_range(0..3)].into(),
            ["0", "1", "20"][r.gen_range(0..3)].into(),
        ],
        45 => {
            let mut c = vec![
                "BITOP".into(),
                ["AND", "OR", "XOR", "NOT", "BAD"][r.gen_range(0..5)].into(),
                k,
            ];
            for _ in 0..r.gen_range(1..4) {
                c.push(key(r));
            }
            c
        }
        66 | 67 => {
            let mut c = vec![
                if r.gen_bool(0.7) {
                    "BITFIELD"
                } else {
                    "BITFIELD_RO"
                }
                .into(),
                k,
            ];
            for _ in 0..r.gen_range(0..4) {
                let ty = ["u8", "i8", "u1", "i64", "u63", "i5", "u64", "x"][r.gen_range(0..8)];
                let off = ["0", "3", "#1", "100", "-1"][r.gen_range(0..5)];
                match r.gen_range(0..4) {
                    0 => c.extend(s(&["GET", ty, off])),
                    1 => c.extend(["SET".into(), ty.into(), off.into(), num(r)]),
                    2 => c.extend(["INCRBY".into(), ty.into(), off.into(), num(r)]),
                    _ => c.extend(s(&["OVERFLOW", ["WRAP", "SAT", "FAIL"][r.gen_range(0..3)]])),
                }
            }
            c
        }
        68 => vec![
            "INCRBYFLOAT".into(),
            k,
            [
                "0.1",
                "1e3",
                "-7.25",
                "3.0e-5",
                "0x1p-3",
                "abc",
                "1e5000",
                "99999999999999999999",
            ][r.gen_range(0..8)]
            .into(),
        ],
        69 => vec![
            "GETEX".into(),
            k,
            ["EX", "PX", "EXAT"][r.gen_range(0..3)].into(),
            ["-1", "0", "abc"][r.gen_range(0..3)].into(),
        ],
        _ => vec!["STRLEN".into(), k.clone(), k],
    }
}

fn send(c: &mut RawConn, cmd: &[String]) -> Vec<u8> {
    let args: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
    c.send(&encode_command(&args));
    c.reply()
}

fn run_stream(seed: u64, resp3: bool, kvd: &Kvd, redis: &RedisServer) {
    let mut a = kvd.raw();
    let mut b = redis.raw();
    for c in [&mut a, &mut b] {
        send(c, &["FLUSHALL".into()]);
        if resp3 {
            send(c, &["HELLO".into(), "3".into()]);
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut history = Vec::new();
    // Every third stream is pipelined (kvd then group-commits runs of plain commands).
    let pipelined = seed % 3 == 2;
    let mut pending: Vec<Vec<String>> = Vec::new();
    for step in 0..400 {
        let batch: Vec<Vec<String>> = if rng.gen_bool(0.08) {
            let mut t = vec![vec!["MULTI".to_string()]];
            for _ in 0..rng.gen_range(1..5) {
                t.push(random_command(&mut rng));
            }
            t.push(vec![
                if rng.gen_bool(0.8) { "EXEC" } else { "DISCARD" }.to_string()
            ]);
            t
        } else {
            vec![random_command(&mut rng)]
        };
        pending.extend(batch);
        if pipelined && pending.len() < 24 && step != 399 {
            continue;
        }
        let encoded: Vec<u8> = pending
            .iter()
            .flat_map(|cmd| {
                let args: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
                encode_command(&args)
            })
            .collect();
        a.send(&encoded);
        b.send(&encoded);
        for cmd in pending.drain(..) {
            let (ra, rb) = (a.reply(), b.reply());
            history.push(cmd.join(" "));
            assert_eq!(
                String::from_utf8_lossy(&ra),
                String::from_utf8_lossy(&rb),
                "seed {seed} resp3 {resp3} pipelined {pipelined}: replies differ (kvd left, redis right) after:\n{}",
                history[history.len().saturating_sub(30)..].join("\n")
            );
        }
    }
}

#[test]
fn random_streams_match_redis_byte_for_byte() {
    let Some(redis) = RedisServer::start() else {
        eprintln!(
            "SKIPPED: redis-server is not installed (apt-get install redis-server); CI installs it"
        );
        return;
    };
    let kvd = Kvd::start_default();
    for seed in 0..24 {
        run_stream(seed, seed % 2 == 1, &kvd, &redis);
    }
}
