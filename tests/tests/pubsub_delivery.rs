//! Pub/sub delivery and tracking invalidations against a real kvd: every subscriber gets
//! every message in order, a subscriber that stops reading is cut off at its output
//! buffer limit while publishers go on, expiry and flushes invalidate tracked keys, and
//! a redirect to a client that left is reported (docs/pubsub.md).

use kv_tests::{info_field, Kvd, RawConn};
use std::time::{Duration, Instant};

/// Reads the next RESP value as text.
fn next(c: &mut RawConn) -> String {
    String::from_utf8_lossy(&c.reply()).into_owned()
}

fn message(channel: &str, payload: &str) -> String {
    format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n",
        channel.len(),
        payload.len()
    )
}

#[test]
fn every_subscriber_gets_every_message_in_order() {
    let k = Kvd::start_default();
    let mut subs: Vec<RawConn> = (0..3).map(|_| k.raw()).collect();
    for s in &mut subs {
        assert!(next_after(s, &[b"SUBSCRIBE", b"news"]).ends_with(":1\r\n"));
    }
    let mut pattern = k.raw();
    assert!(next_after(&mut pattern, &[b"PSUBSCRIBE", b"n*"]).ends_with(":1\r\n"));
    let mut publisher = k.raw();
    for i in 0..200 {
        let n = publisher.cmd(&[b"PUBLISH", b"news", format!("m{i}").as_bytes()]);
        assert_eq!(n, ":4\r\n", "3 subscribers and 1 pattern");
    }
    for s in &mut subs {
        for i in 0..200 {
            assert_eq!(next(s), message("news", &format!("m{i}")));
        }
    }
    for i in 0..200 {
        let p = format!("m{i}");
        assert_eq!(
            next(&mut pattern),
            format!(
                "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n${}\r\n{p}\r\n",
                p.len()
            )
        );
    }
    // A subscriber that disconnects stops counting.
    drop(subs.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    while publisher.cmd(&[b"PUBSUB", b"NUMSUB", b"news"]) != "*2\r\n$4\r\nnews\r\n:2\r\n" {
        assert!(
            Instant::now() < deadline,
            "the closed subscriber stayed registered"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn next_after(c: &mut RawConn, args: &[&[u8]]) -> String {
    c.cmd(args)
}

#[test]
fn a_subscriber_that_stops_reading_is_cut_off_and_publishers_go_on() {
    let k = Kvd::start_default();
    let mut admin = k.raw();
    assert_eq!(
        admin.cmd(&[
            b"CONFIG",
            b"SET",
            b"client-output-buffer-limit",
            b"pubsub 1mb 512kb 60"
        ]),
        "+OK\r\n"
    );
    let mut slow = k.raw();
    assert!(slow.cmd(&[b"SUBSCRIBE", b"firehose"]).ends_with(":1\r\n"));
    let mut fast = k.raw();
    assert!(fast.cmd(&[b"SUBSCRIBE", b"firehose"]).ends_with(":1\r\n"));
    // The slow one never reads again; the socket buffers fill, then its mailbox passes
    // the 1 MiB hard limit. Each message is 64 KiB; 4000 of them (256 MiB) is far more
    // than any socket buffer holds, so the cut must come before.
    let payload = vec![b'x'; 64 * 1024];
    let mut published = 0;
    loop {
        let n = admin.cmd(&[b"PUBLISH", b"firehose", &payload]);
        published += 1;
        // The fast subscriber keeps up.
        let m = fast.reply();
        assert!(
            m.len() > payload.len(),
            "fast subscriber got {} bytes",
            m.len()
        );
        if n == ":1\r\n" {
            break; // only the fast subscriber is left
        }
        assert_eq!(n, ":2\r\n");
        assert!(
            published < 4000,
            "the slow subscriber was never disconnected"
        );
    }
    assert!(
        slow.is_closed(),
        "the slow subscriber's connection stays open"
    );
    let info = admin.cmd(&[b"INFO", b"stats"]);
    let cut: u64 = info_field(&info, "client_output_buffer_limit_disconnections")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(cut >= 1, "{info}");
    assert_eq!(
        admin.cmd(&[b"PUBSUB", b"NUMSUB", b"firehose"]),
        "*2\r\n$8\r\nfirehose\r\n:1\r\n"
    );
}

#[test]
fn expired_keys_invalidate_tracking_clients() {
    let k = Kvd::start(&["--hz", "50"]);
    let mut tracker = k.raw();
    assert!(tracker.cmd(&[b"HELLO", b"3"]).starts_with('%'));
    assert_eq!(tracker.cmd(&[b"CLIENT", b"TRACKING", b"on"]), "+OK\r\n");
    let mut writer = k.raw();
    assert_eq!(
        writer.cmd(&[b"SET", b"short", b"lived", b"PX", b"200"]),
        "+OK\r\n"
    );
    assert_eq!(tracker.cmd(&[b"GET", b"short"]), "$5\r\nlived\r\n");
    // The active expiry sweep deletes the key and tells the tracker (the read below
    // waits up to the connection's 10 s read timeout).
    assert_eq!(
        next(&mut tracker),
        ">2\r\n$10\r\ninvalidate\r\n*1\r\n$5\r\nshort\r\n"
    );
}

#[test]
fn a_redirect_to_a_client_that_left_is_reported() {
    let k = Kvd::start_default();
    let mut target = k.raw();
    let target_id = target.cmd(&[b"CLIENT", b"ID"]);
    let target_id = target_id.trim().trim_start_matches(':').to_string();
    let mut tracker = k.raw();
    assert!(tracker.cmd(&[b"HELLO", b"3"]).starts_with('%'));
    assert_eq!(
        tracker.cmd(&[
            b"CLIENT",
            b"TRACKING",
            b"on",
            b"REDIRECT",
            target_id.as_bytes()
        ]),
        "+OK\r\n"
    );
    assert_eq!(tracker.cmd(&[b"GET", b"key"]), "_\r\n");
    drop(target);
    let mut writer = k.raw();
    let deadline = Instant::now() + Duration::from_secs(10);
    while writer
        .cmd(&[b"CLIENT", b"LIST", b"ID", target_id.as_bytes()])
        .contains("id=")
    {
        assert!(Instant::now() < deadline, "the target never went away");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(writer.cmd(&[b"SET", b"key", b"v"]), "+OK\r\n");
    assert_eq!(
        next(&mut tracker),
        format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{target_id}\r\n")
    );
    let info = tracker.cmd(&[b"CLIENT", b"TRACKINGINFO"]);
    assert!(info.contains("broken_redirect"), "{info}");
}

#[test]
fn many_subscribers_do_not_slow_each_other() {
    // Subscribe 50 connections to 20 channels each and publish to all channels: each
    // delivery count is exact and every connection receives its 20 messages.
    let k = Kvd::start_default();
    let channels: Vec<String> = (0..20).map(|i| format!("ch{i}")).collect();
    let mut subs: Vec<RawConn> = (0..50).map(|_| k.raw()).collect();
    for s in &mut subs {
        let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
        args.extend(channels.iter().map(|c| c.as_bytes()));
        s.send(&kv_tests::encode_command(&args));
        for i in 0..20 {
            assert!(next(s).ends_with(&format!(":{}\r\n", i + 1)));
        }
    }
    let mut p = k.raw();
    for c in &channels {
        assert_eq!(p.cmd(&[b"PUBLISH", c.as_bytes(), b"hi"]), ":50\r\n");
    }
    for s in &mut subs {
        for c in &channels {
            assert_eq!(next(s), message(c, "hi"));
        }
    }
}
