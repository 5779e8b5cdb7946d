//! String commands end to end: SET options, counters, ranges, bit operations, LCS and the
//! Redis 8.4 conditional writes, through the `redis` crate and byte-exact raw replies.

use kv_tests::Kvd;
use redis::Commands;

#[test]
fn set_get_with_options_and_binary_values() {
    let k = Kvd::start_default();
    let mut c = k.client();
    let bin: Vec<u8> = (0..=255u8).chain([b'\r', b'\n', 0]).collect();
    let _: () = c.set("bin", &bin).unwrap();
    let back: Vec<u8> = c.get("bin").unwrap();
    assert_eq!(back, bin);

    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"SET", b"k", b"v1", b"NX"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"SET", b"k", b"v2", b"NX"]), "$-1\r\n");
    assert_eq!(r.cmd(&[b"SET", b"k", b"v2", b"XX", b"GET"]), "$2\r\nv1\r\n");
    assert_eq!(r.cmd(&[b"SET", b"nokey", b"v", b"XX"]), "$-1\r\n");
    assert_eq!(
        r.cmd(&[b"SET", b"k", b"v", b"NX", b"XX"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        r.cmd(&[b"SET", b"k", b"v", b"EX", b"0"]),
        "-ERR invalid expire time in 'set' command\r\n"
    );
    assert_eq!(
        r.cmd(&[b"SET", b"k", b"v", b"EX", b"abc"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(r.cmd(&[b"SET", b"k", b"v", b"PX", b"100000"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"SET", b"k", b"v3", b"KEEPTTL"]), "+OK\r\n");
    let pttl = r.cmd(&[b"PTTL", b"k"]);
    let ms: i64 = pttl.trim_start_matches(':').trim().parse().unwrap();
    assert!(ms > 90_000 && ms <= 100_000, "{pttl}");
    assert_eq!(r.cmd(&[b"SET", b"k", b"v4"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"TTL", b"k"]), ":-1\r\n");
    assert_eq!(
        r.cmd(&[b"GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(r.cmd(&[b"SETNX", b"k", b"x"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"SETEX", b"se", b"100", b"x"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"TTL", b"se"]), ":100\r\n");
    assert_eq!(r.cmd(&[b"GETSET", b"se", b"y"]), "$1\r\nx\r\n");
    assert_eq!(r.cmd(&[b"TTL", b"se"]), ":-1\r\n");
    assert_eq!(r.cmd(&[b"GETDEL", b"se"]), "$1\r\ny\r\n");
    assert_eq!(r.cmd(&[b"GETDEL", b"se"]), "$-1\r\n");
    assert_eq!(r.cmd(&[b"SET", b"ge", b"v"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"GETEX", b"ge", b"EX", b"50"]), "$1\r\nv\r\n");
    assert_eq!(r.cmd(&[b"TTL", b"ge"]), ":50\r\n");
    assert_eq!(r.cmd(&[b"GETEX", b"ge", b"PERSIST"]), "$1\r\nv\r\n");
    assert_eq!(r.cmd(&[b"TTL", b"ge"]), ":-1\r\n");
}

#[test]
fn counters_append_and_ranges() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"INCR", b"n"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"INCRBY", b"n", b"41"]), ":42\r\n");
    assert_eq!(r.cmd(&[b"DECRBY", b"n", b"2"]), ":40\r\n");
    assert_eq!(r.cmd(&[b"DECR", b"n"]), ":39\r\n");
    assert_eq!(r.cmd(&[b"SET", b"big", b"9223372036854775807"]), "+OK\r\n");
    assert_eq!(
        r.cmd(&[b"INCR", b"big"]),
        "-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(r.cmd(&[b"SET", b"s", b"abc"]), "+OK\r\n");
    assert_eq!(
        r.cmd(&[b"INCR", b"s"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(r.cmd(&[b"INCRBYFLOAT", b"f", b"10.5"]), "$4\r\n10.5\r\n");
    assert_eq!(r.cmd(&[b"INCRBYFLOAT", b"f", b"0.1"]), "$4\r\n10.6\r\n");
    assert_eq!(
        r.cmd(&[b"INCRBYFLOAT", b"f", b"x"]),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(r.cmd(&[b"APPEND", b"s", b"def"]), ":6\r\n");
    assert_eq!(r.cmd(&[b"STRLEN", b"s"]), ":6\r\n");
    assert_eq!(r.cmd(&[b"GETRANGE", b"s", b"1", b"-2"]), "$4\r\nbcde\r\n");
    assert_eq!(
        r.cmd(&[b"SUBSTR", b"s", b"-100", b"100"]),
        "$6\r\nabcdef\r\n"
    );
    assert_eq!(r.cmd(&[b"GETRANGE", b"nokey", b"0", b"-1"]), "$0\r\n\r\n");
    assert_eq!(r.cmd(&[b"SETRANGE", b"s", b"8", b"XY"]), ":10\r\n");
    assert_eq!(r.cmd(&[b"GET", b"s"]), "$10\r\nabcdef\0\0XY\r\n");
    assert_eq!(
        r.cmd(&[b"SETRANGE", b"s", b"-1", b"x"]),
        "-ERR offset is out of range\r\n"
    );
    assert_eq!(r.cmd(&[b"MSET", b"a", b"1", b"b", b"2"]), "+OK\r\n");
    assert_eq!(
        r.cmd(&[b"MSET", b"a", b"1", b"b"]),
        "-ERR wrong number of arguments for 'mset' command\r\n"
    );
    assert_eq!(
        r.cmd(&[b"MGET", b"a", b"nokey", b"b"]),
        "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n"
    );
    assert_eq!(r.cmd(&[b"MSETNX", b"a", b"9", b"c", b"3"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"MSETNX", b"c", b"3", b"d", b"4"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"SET", b"l1", b"ohmytext"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"SET", b"l2", b"mynewtext"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"LCS", b"l1", b"l2"]), "$6\r\nmytext\r\n");
    assert_eq!(r.cmd(&[b"LCS", b"l1", b"l2", b"LEN"]), ":6\r\n");
    assert_eq!(
        r.cmd(&[b"LCS", b"l1", b"l2", b"IDX", b"MINMATCHLEN", b"4", b"WITHMATCHLEN"]),
        "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"
    );
}

#[test]
fn bit_operations() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"SETBIT", b"b", b"7", b"1"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"SETBIT", b"b", b"7", b"0"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"SETBIT", b"b", b"100", b"1"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"GETBIT", b"b", b"100"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"GETBIT", b"b", b"100000"]), ":0\r\n");
    assert_eq!(
        r.cmd(&[b"SETBIT", b"b", b"-1", b"1"]),
        "-ERR bit offset is not an integer or out of range\r\n"
    );
    assert_eq!(
        r.cmd(&[b"SETBIT", b"b", b"1", b"2"]),
        "-ERR bit is not an integer or out of range\r\n"
    );
    assert_eq!(r.cmd(&[b"SET", b"m", b"foobar"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"BITCOUNT", b"m"]), ":26\r\n");
    assert_eq!(r.cmd(&[b"BITCOUNT", b"m", b"1", b"1"]), ":6\r\n");
    assert_eq!(r.cmd(&[b"BITCOUNT", b"m", b"5", b"30", b"BIT"]), ":17\r\n");
    assert_eq!(r.cmd(&[b"BITCOUNT", b"m", b"1"]), "-ERR syntax error\r\n");
    assert_eq!(r.cmd(&[b"SET", b"p", b"\xff\xf0\x00"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"BITPOS", b"p", b"0"]), ":12\r\n");
    assert_eq!(r.cmd(&[b"SET", b"q", b"\x00\xff\xf0"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"BITPOS", b"q", b"1", b"0"]), ":8\r\n");
    assert_eq!(r.cmd(&[b"BITPOS", b"q", b"1", b"2"]), ":16\r\n");
    assert_eq!(
        r.cmd(&[b"BITPOS", b"q", b"1", b"7", b"15", b"BIT"]),
        ":8\r\n"
    );
    assert_eq!(r.cmd(&[b"BITPOS", b"nokey", b"0"]), ":0\r\n");
    assert_eq!(
        r.cmd(&[b"BITPOS", b"p", b"2"]),
        "-ERR The bit argument must be 1 or 0.\r\n"
    );
}

#[test]
fn conditional_writes_delex_and_digest() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"SET", b"k", b"v1", b"IFEQ", b"v0"]), "$-1\r\n");
    assert_eq!(r.cmd(&[b"EXISTS", b"k"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"SET", b"k", b"v1", b"IFNE", b"zz"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"SET", b"k", b"v2", b"IFEQ", b"v1"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"SET", b"k", b"v3", b"IFNE", b"v2"]), "$-1\r\n");
    let d = r.cmd(&[b"DIGEST", b"k"]);
    let hex = d.lines().nth(1).unwrap().to_string();
    assert_eq!(hex.len(), 16, "{d}");
    assert_eq!(
        r.cmd(&[b"SET", b"k", b"v3", b"IFDEQ", hex.as_bytes()]),
        "+OK\r\n"
    );
    assert_eq!(r.cmd(&[b"DELEX", b"k", b"IFEQ", b"nope"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"DELEX", b"k", b"IFEQ", b"v3"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"DELEX", b"k"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"DIGEST", b"k"]), "$-1\r\n");
}

#[test]
fn resp3_client_sees_the_same_strings() {
    let k = Kvd::start_default();
    let mut c = k.client_with(true);
    let _: () = c.set("x", "1").unwrap();
    let n: i64 = c.incr("x", 5).unwrap();
    assert_eq!(n, 6);
    let v: Option<String> = c.get("missing").unwrap();
    assert_eq!(v, None);
    let vals: Vec<Option<String>> = c.mget(&["x", "missing"]).unwrap();
    assert_eq!(vals, vec![Some("6".to_string()), None]);
}
