//! HELLO negotiation and RESP3 encodings (maps, nulls, doubles, verbatim strings), raw
//! and through the `redis` crate's RESP3 mode.

use kv_tests::Kvd;

#[test]
fn hello_switches_protocol_and_reports_the_server() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    let h2 = r.cmd(&[b"HELLO"]);
    assert!(
        h2.starts_with("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{h2}"
    );
    let h3 = r.cmd(&[b"HELLO", b"3"]);
    assert!(
        h3.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{h3}"
    );
    assert!(h3.contains("$5\r\nproto\r\n:3\r\n"), "{h3}");
    assert_eq!(r.cmd(&[b"GET", b"missing"]), "_\r\n");
    assert_eq!(
        r.cmd(&[b"CONFIG", b"GET", b"databases"]),
        "%1\r\n$9\r\ndatabases\r\n$2\r\n16\r\n"
    );
    assert_eq!(r.cmd(&[b"SET", b"f", b"1.5"]), "+OK\r\n");
    assert!(r.cmd(&[b"CLIENT", b"INFO"]).starts_with('='));
    assert_eq!(
        r.cmd(&[b"HELLO", b"4"]),
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        r.cmd(&[b"HELLO", b"x"]),
        "-ERR Protocol version is not an integer or out of range\r\n"
    );
    assert!(r
        .cmd(&[b"HELLO", b"2", b"SETNAME", b"me"])
        .starts_with("*14\r\n"));
    assert_eq!(r.cmd(&[b"CLIENT", b"GETNAME"]), "$2\r\nme\r\n");
    assert_eq!(r.cmd(&[b"GET", b"missing"]), "$-1\r\n");
    assert_eq!(r.cmd(&[b"RESET"]), "+RESET\r\n");
    assert_eq!(r.cmd(&[b"CLIENT", b"GETNAME"]), "$-1\r\n");
}

#[test]
fn hello_auth_authenticates() {
    let k = Kvd::start(&["--requirepass", "pw"]);
    let mut r = k.raw();
    assert!(r
        .cmd(&[b"HELLO", b"3"])
        .starts_with("-NOAUTH HELLO must be called with the client already authenticated"));
    assert_eq!(
        r.cmd(&[b"HELLO", b"3", b"AUTH", b"default", b"bad"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert!(r
        .cmd(&[b"HELLO", b"3", b"AUTH", b"default", b"pw"])
        .starts_with("%7\r\n"));
    assert_eq!(r.cmd(&[b"PING"]), "+PONG\r\n");
    // The redis crate authenticates with HELLO 3 AUTH when asked for RESP3.
    let url = format!("redis://default:pw@127.0.0.1:{}/?protocol=resp3", k.port);
    let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn redis_crate_resp3_values() {
    let k = Kvd::start_default();
    let mut c = k.client_with(true);
    let v: redis::Value = redis::cmd("GET").arg("nothing").query(&mut c).unwrap();
    assert_eq!(v, redis::Value::Nil);
    let cfg: redis::Value = redis::cmd("CONFIG")
        .arg("GET")
        .arg("port")
        .query(&mut c)
        .unwrap();
    assert!(matches!(cfg, redis::Value::Map(_)), "{cfg:?}");
    let info: String = redis::cmd("INFO").arg("server").query(&mut c).unwrap();
    assert!(info.contains("redis_version:7."), "{info}");
    let n: i64 = redis::cmd("COMMAND").arg("COUNT").query(&mut c).unwrap();
    assert!(n > 80);
    let docs: redis::Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg("get")
        .query(&mut c)
        .unwrap();
    assert!(matches!(docs, redis::Value::Map(_)));
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("MSET")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, vec!["a", "b"]);
}

/// `compat-version` (docs/compatibility.md, "Reported version"): HELLO, INFO and Lua
/// report the same version, 7.0.15 by default or 7.4.0 when asked; it is fixed at start.
#[test]
fn compat_version_reported_by_hello_info_and_lua() {
    let cases: [(&[&str], &str, i64); 2] = [
        (&[], "7.0.15", 0x07000f),
        (&["--compat-version", "7.4.0"], "7.4.0", 0x070400),
    ];
    for (args, version, num) in cases {
        let k = Kvd::start(args);
        let mut r = k.raw();
        let hello = r.cmd(&[b"HELLO", b"3"]);
        let field = format!("$7\r\nversion\r\n${}\r\n{version}\r\n", version.len());
        assert!(hello.contains(&field), "{args:?}: {hello}");
        let info = r.cmd(&[b"INFO", b"server"]);
        assert!(
            info.contains(&format!("\r\nredis_version:{version}\r\n")),
            "{args:?}: {info}"
        );
        assert_eq!(
            r.cmd(&[b"EVAL", b"return redis.REDIS_VERSION", b"0"]),
            format!("${}\r\n{version}\r\n", version.len())
        );
        assert_eq!(
            r.cmd(&[b"EVAL", b"return redis.REDIS_VERSION_NUM", b"0"]),
            format!(":{num}\r\n")
        );
        assert_eq!(
            r.cmd(&[b"CONFIG", b"GET", b"compat-version"]),
            format!(
                "%1\r\n$14\r\ncompat-version\r\n${}\r\n{version}\r\n",
                version.len()
            )
        );
        let set = r.cmd(&[b"CONFIG", b"SET", b"compat-version", b"7.4.0"]);
        assert!(set.contains("can't set immutable config"), "{set}");
    }
}
