//! Malformed and hostile input: Redis's protocol errors then a closed connection, no
//! panic, bounded memory, and other clients unaffected. Also pipelining and inline
//! commands.

use kv_tests::{encode_command, rss_kb, Kvd};
use rand::{Rng, SeedableRng};
use std::io::Read;

#[test]
fn protocol_errors_reply_like_redis_and_close() {
    let k = Kvd::start_default();
    let cases: &[(&[u8], &str)] = &[
        (
            b"*abc\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*3000000000\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n+PING\r\n",
            "-ERR Protocol error: expected '$', got '+'\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$1073741824\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$x\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"SET \"abc\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (input, want) in cases {
        let mut r = k.raw();
        r.send(input);
        let got = String::from_utf8_lossy(&r.reply()).into_owned();
        assert_eq!(&got, want, "input {:?}", String::from_utf8_lossy(input));
        assert!(
            r.is_closed(),
            "connection stays open after {:?}",
            String::from_utf8_lossy(input)
        );
    }
    // An inline request over 64 KiB without a newline.
    let mut r = k.raw();
    r.send(&vec![b'a'; 70 * 1024]);
    assert_eq!(
        String::from_utf8_lossy(&r.reply()),
        "-ERR Protocol error: too big inline request\r\n"
    );
    assert!(r.is_closed());
    // Commands before the bad frame in the same packet still run.
    let mut r = k.raw();
    r.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*x\r\n");
    assert_eq!(String::from_utf8_lossy(&r.reply()), "+OK\r\n");
    assert_eq!(
        String::from_utf8_lossy(&r.reply()),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert_eq!(k.raw().cmd(&[b"GET", b"k"]), "$1\r\nv\r\n");
}

#[test]
fn argument_errors_keep_the_connection() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    assert_eq!(
        r.cmd(&[b"INCRBY", b"k", b"notanumber"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        r.cmd(&[b"EXPIRE", b"k"]),
        "-ERR wrong number of arguments for 'expire' command\r\n"
    );
    assert_eq!(
        r.cmd(&[b"FOO", b"bar", b"baz"]),
        "-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \r\n"
    );
    assert_eq!(
        r.cmd(&[b"CLIENT", b"NOPE"]),
        "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n"
    );
    assert_eq!(r.cmd(&[b"PING"]), "+PONG\r\n");
}

#[test]
fn claimed_huge_lengths_do_not_allocate_and_others_are_unaffected() {
    let k = Kvd::start_default();
    let before = rss_kb(k.pid());
    // Twenty clients each claim a 500 MB argument and send a few bytes of it.
    let mut hogs = Vec::new();
    for _ in 0..20 {
        let mut r = k.raw();
        r.send(b"*2\r\n$3\r\nGET\r\n$524288000\r\nabc");
        hogs.push(r);
    }
    let mut other = k.raw();
    assert_eq!(other.cmd(&[b"SET", b"x", b"1"]), "+OK\r\n");
    assert_eq!(other.cmd(&[b"GET", b"x"]), "$1\r\n1\r\n");
    let after = rss_kb(k.pid());
    assert!(
        after < before + 200 * 1024,
        "RSS grew from {before} kB to {after} kB"
    );
    drop(hogs);
}

#[test]
fn random_garbage_never_kills_the_server() {
    let k = Kvd::start_default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..60 {
        let mut r = k.raw();
        r.s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let len = rng.gen_range(1..2000);
        let mut junk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if round % 3 == 0 {
            junk.insert(0, b'*'); // exercise the multibulk path too
        }
        let _ = std::io::Write::write_all(&mut r.s, &junk);
        let mut buf = [0u8; 4096];
        let _ = r.s.read(&mut buf);
        let mut p = k.raw();
        p.s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        p.send(b"PING\r\n");
        let mut pb = [0u8; 64];
        let n = p.s.read(&mut pb).unwrap_or(0);
        assert_eq!(
            &pb[..n],
            b"+PONG\r\n",
            "after round {round}; log:\n{}",
            k.log_text()
        );
    }
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"PING"]), "+PONG\r\n", "log:\n{}", k.log_text());
}

#[test]
fn pipelining_thousands_of_commands_and_inline_commands() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    let n = 5000;
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend(encode_command(&[
            b"SET",
            format!("p{i}").as_bytes(),
            format!("{i}").as_bytes(),
        ]));
    }
    for i in 0..n {
        batch.extend(encode_command(&[b"GET", format!("p{i}").as_bytes()]));
    }
    r.send(&batch);
    for _ in 0..n {
        assert_eq!(r.reply(), b"+OK\r\n");
    }
    for i in 0..n {
        let want = format!("${}\r\n{i}\r\n", i.to_string().len());
        assert_eq!(String::from_utf8_lossy(&r.reply()), want);
    }
    r.send(b"SET inl \"hello world\"\r\nGET inl\r\n\r\nPING\n");
    assert_eq!(r.reply(), b"+OK\r\n");
    assert_eq!(r.reply(), b"$11\r\nhello world\r\n");
    assert_eq!(r.reply(), b"+PONG\r\n");
}

#[test]
fn requirepass_limits_unauthenticated_clients() {
    let k = Kvd::start(&["--requirepass", "sekret"]);
    let mut r = k.raw();
    assert_eq!(
        r.cmd(&[b"GET", b"k"]),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        r.cmd(&[b"AUTH", b"wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(r.cmd(&[b"AUTH", b"sekret"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"SET", b"k", b"v"]), "+OK\r\n");
    let mut r = k.raw();
    r.send(b"*11\r\n");
    assert_eq!(
        String::from_utf8_lossy(&r.reply()),
        "-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    assert!(r.is_closed());
}
