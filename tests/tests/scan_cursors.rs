//! SCAN cursors are stateless (issue 7, defect 10): a cursor names the scan position to
//! resume at, so no client can evict another's cursors by opening many, and a cursor no
//! reply could have produced is refused instead of silently restarting the scan.

use kv_tests::{encode_command, Kvd};
use std::collections::BTreeSet;

/// One SCAN call with the redis client: (next cursor, keys).
fn scan(c: &mut redis::Connection, cursor: u64, count: u64) -> (u64, Vec<String>) {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("COUNT")
        .arg(count)
        .query(c)
        .unwrap()
}

#[test]
fn twenty_thousand_cursors_of_one_client_do_not_disturb_another_clients_scan() {
    let k = Kvd::start_default();
    let mut victim = k.client();
    let all: BTreeSet<String> = (0..100).map(|i| format!("key:{i}")).collect();
    for key in &all {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("v")
            .query(&mut victim)
            .unwrap();
    }
    // The victim reads a first page.
    let (mut cursor, first) = scan(&mut victim, 0, 10);
    assert_ne!(cursor, 0);
    let mut seen: Vec<String> = first;
    // The attacker opens 20 000 cursors (the old table held 16 384, oldest evicted first),
    // pipelined in rounds of 1000.
    let mut attacker = k.raw();
    let command = encode_command(&[b"SCAN", b"0", b"COUNT", b"1"]);
    for _ in 0..20 {
        attacker.send(&command.repeat(1000));
        for _ in 0..1000 {
            let reply = String::from_utf8_lossy(&attacker.reply()).into_owned();
            assert!(reply.starts_with("*2\r\n"), "{reply}");
        }
    }
    // The victim's scan continues where it was: every key exactly once, no restart.
    while cursor != 0 {
        let (next, keys) = scan(&mut victim, cursor, 10);
        seen.extend(keys);
        cursor = next;
    }
    let distinct: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "a key was returned twice: restarted"
    );
    assert_eq!(distinct, all);
}

#[test]
fn a_cursor_no_reply_could_have_produced_ends_the_scan_like_redis() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"SET", b"a", b"1"]), "+OK\r\n");
    // Redis reads the cursor with strtoul: any number is a cursor (`-1` wraps to
    // u64::MAX); one no reply produced ends the scan instead of erroring.
    for past_end in [
        &b"18446744073709551615"[..], // u64::MAX: past the last slot
        b"70368744177665",            // slot 16384, hash 0, plus one
        b"-1",
    ] {
        assert_eq!(
            r.cmd(&[b"SCAN", past_end]),
            "*2\r\n$1\r\n0\r\n*0\r\n",
            "cursor {}",
            String::from_utf8_lossy(past_end)
        );
    }
    for garbage in [
        &b"12abc"[..],
        b"18446744073709551616", // does not fit in 64 bits
        b" ",
    ] {
        assert_eq!(
            r.cmd(&[b"SCAN", garbage]),
            "-ERR invalid cursor\r\n",
            "cursor {}",
            String::from_utf8_lossy(garbage)
        );
    }
    // The largest valid cursor (last slot, last hash) is accepted and ends the scan.
    assert_eq!(
        r.cmd(&[b"SCAN", b"70368744177664"]),
        "*2\r\n$1\r\n0\r\n*0\r\n"
    );
}
