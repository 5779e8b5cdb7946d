//! Pub/sub and client-side caching scripts run against kvd and Debian's redis-server
//! over several raw connections each; every reply and every message must be byte for
//! byte the same (RESP2 and RESP3). Skips with a message if redis-server is missing.

use kv_tests::{encode_command, Kvd, RawConn, RedisServer};

/// One step of a script.
enum Step {
    /// Send a command on a connection and record its replies (a SUBSCRIBE of two
    /// channels answers twice).
    Cmd(usize, &'static [&'static str], usize),
    /// Send a command and read its replies without recording them (HELLO: the server
    /// name, version and client id differ).
    Quiet(usize, &'static [&'static str], usize),
    /// Record the next `n` messages waiting on a connection.
    Read(usize, usize),
    /// Send a command where `{idN}` stands for connection N's client id, and record the
    /// reply with that id written back as `{idN}`.
    WithIds(usize, &'static [&'static str]),
}

use Step::*;

fn run(script: &[Step], mut conns: Vec<RawConn>) -> Vec<String> {
    let ids: Vec<String> = conns
        .iter_mut()
        .map(|c| {
            let r = c.cmd(&[b"CLIENT", b"ID"]);
            r.trim().trim_start_matches(':').to_string()
        })
        .collect();
    let mut log: Vec<String> = Vec::new();
    for (i, step) in script.iter().enumerate() {
        // Shown if a read times out: where the script stopped.
        eprintln!("step {i}; last: {:?}", log.last());
        match step {
            Cmd(c, args, n) | Quiet(c, args, n) => {
                let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
                conns[*c].send(&encode_command(&a));
                for _ in 0..*n {
                    let r = String::from_utf8_lossy(&conns[*c].reply()).into_owned();
                    if matches!(step, Cmd(..)) {
                        log.push(format!("c{c} {} -> {r:?}", args.join(" ")));
                    }
                }
            }
            Read(c, n) => {
                for _ in 0..*n {
                    let r = String::from_utf8_lossy(&conns[*c].reply()).into_owned();
                    log.push(format!("c{c} (message) {r:?}"));
                }
            }
            WithIds(c, args) => {
                let with: Vec<String> = args
                    .iter()
                    .map(|s| {
                        let mut s = s.to_string();
                        for (i, id) in ids.iter().enumerate() {
                            s = s.replace(&format!("{{id{i}}}"), id);
                        }
                        s
                    })
                    .collect();
                let a: Vec<&[u8]> = with.iter().map(|s| s.as_bytes()).collect();
                conns[*c].send(&encode_command(&a));
                let mut r = String::from_utf8_lossy(&conns[*c].reply()).into_owned();
                for (i, id) in ids.iter().enumerate() {
                    r = r.replace(&format!(":{id}\r\n"), &format!(":{{id{i}}}\r\n"));
                }
                log.push(format!("c{c} {} -> {r:?}", args.join(" ")));
            }
        }
    }
    log
}

fn compare(name: &str, script: &[Step], conns: usize) {
    let Some(redis) = RedisServer::start() else {
        eprintln!(
            "SKIPPED: redis-server is not installed (apt-get install redis-server); CI installs it"
        );
        return;
    };
    let kvd = Kvd::start_default();
    let ours = run(script, (0..conns).map(|_| kvd.raw()).collect());
    let theirs = run(script, (0..conns).map(|_| redis.raw()).collect());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            a,
            b,
            "{name}: step {i} differs (kvd left, redis right); before it:\n{}",
            ours[..i].join("\n")
        );
    }
    assert_eq!(ours.len(), theirs.len());
}

#[test]
fn subscribe_publish_and_subscribed_mode_match_redis() {
    compare(
        "resp2 pub/sub",
        &[
            Cmd(0, &["SUBSCRIBE", "a", "b"], 2),
            Cmd(1, &["PUBLISH", "a", "hello"], 1),
            Read(0, 1),
            Cmd(1, &["PUBLISH", "nobody", "x"], 1),
            Cmd(0, &["PSUBSCRIBE", "a*"], 1),
            Cmd(1, &["PUBLISH", "a", "twice"], 1),
            Read(0, 2),
            Cmd(1, &["PUBLISH", "abc", "pattern only"], 1),
            Read(0, 1),
            Cmd(0, &["GET", "k"], 1),
            Cmd(0, &["CLIENT", "ID"], 1),
            Cmd(0, &["MULTI"], 1),
            Cmd(0, &["PING"], 1),
            Cmd(0, &["PING", "hi"], 1),
            Cmd(1, &["PUBSUB", "NUMSUB", "a", "b", "zz"], 1),
            Cmd(1, &["PUBSUB", "NUMSUB"], 1),
            Cmd(1, &["PUBSUB", "NUMPAT"], 1),
            Cmd(1, &["PUBSUB", "CHANNELS", "a"], 1),
            Cmd(1, &["PUBSUB", "CHANNELS", "x*"], 1),
            Cmd(1, &["PUBSUB", "CHANNELS", "a", "b"], 1),
            Cmd(1, &["PUBSUB", "NOPE"], 1),
            Cmd(1, &["PUBSUB", "NUMPAT", "x"], 1),
            Cmd(1, &["PUBSUB"], 1),
            Cmd(1, &["SUBSCRIBE"], 1),
            Cmd(1, &["PUBLISH", "a"], 1),
            Cmd(0, &["UNSUBSCRIBE", "a"], 1),
            Cmd(0, &["UNSUBSCRIBE", "notsubscribed"], 1),
            Cmd(0, &["PUNSUBSCRIBE"], 1),
            Cmd(0, &["UNSUBSCRIBE"], 1),
            Cmd(0, &["UNSUBSCRIBE"], 1),
            Cmd(0, &["PUNSUBSCRIBE"], 1),
            Cmd(0, &["GET", "k"], 1),
            Cmd(0, &["PING"], 1),
            Cmd(0, &["SUBSCRIBE", "x"], 1),
            Cmd(0, &["RESET"], 1),
            Cmd(1, &["PUBLISH", "x", "gone"], 1),
            Cmd(0, &["SSUBSCRIBE", "s"], 1),
            Cmd(0, &["SUBSCRIBE", "t"], 1),
            Cmd(1, &["SPUBLISH", "s", "sharded"], 1),
            Read(0, 1),
            Cmd(1, &["PUBLISH", "s", "not sharded"], 1),
            Cmd(1, &["PUBSUB", "SHARDCHANNELS"], 1),
            Cmd(1, &["PUBSUB", "SHARDNUMSUB", "s", "t"], 1),
            Cmd(0, &["SUNSUBSCRIBE"], 1),
            Cmd(0, &["SUNSUBSCRIBE"], 1),
            Cmd(0, &["UNSUBSCRIBE", "t"], 1),
            Cmd(0, &["MULTI"], 1),
            Cmd(0, &["SUBSCRIBE", "m"], 1),
            Cmd(0, &["EXEC"], 1),
            Cmd(0, &["UNSUBSCRIBE"], 1),
        ],
        2,
    );
}

#[test]
fn resp3_subscribers_get_pushes_and_may_run_any_command() {
    compare(
        "resp3 pub/sub",
        &[
            Quiet(0, &["HELLO", "3"], 1),
            Cmd(0, &["SUBSCRIBE", "a"], 1),
            Cmd(0, &["PSUBSCRIBE", "a*", "b*"], 2),
            Cmd(1, &["PUBLISH", "a", "hello"], 1),
            Read(0, 2),
            Cmd(0, &["SET", "k", "v"], 1),
            Cmd(0, &["GET", "k"], 1),
            Cmd(0, &["PING"], 1),
            Cmd(0, &["UNSUBSCRIBE"], 1),
            Cmd(0, &["PUNSUBSCRIBE", "b*", "a*"], 2),
            Cmd(0, &["UNSUBSCRIBE"], 1),
        ],
        2,
    );
}

#[test]
fn client_tracking_matches_redis() {
    compare(
        "tracking",
        &[
            Quiet(0, &["HELLO", "3"], 1),
            Cmd(0, &["CLIENT", "TRACKINGINFO"], 1),
            Cmd(0, &["CLIENT", "GETREDIR"], 1),
            Cmd(0, &["CLIENT", "CACHING", "yes"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "on"], 1),
            Cmd(0, &["CLIENT", "TRACKINGINFO"], 1),
            Cmd(0, &["CLIENT", "GETREDIR"], 1),
            Cmd(0, &["GET", "k"], 1),
            Cmd(1, &["SET", "k", "v"], 1),
            Read(0, 1),
            // k was forgotten with that message: only j's write is reported next.
            Cmd(1, &["SET", "k", "v2"], 1),
            Cmd(0, &["MGET", "j", "k"], 1),
            Cmd(1, &["SET", "j", "1"], 1),
            Read(0, 1),
            Cmd(1, &["DEL", "k"], 1),
            Read(0, 1),
            Cmd(0, &["CLIENT", "CACHING", "yes"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "on", "BCAST"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "on", "PREFIX", "a"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "on", "REDIRECT", "999999"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "on", "REDIRECT", "x"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "maybe"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "on", "BOGUS"], 1),
            Cmd(0, &["CLIENT", "TRACKING"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "off"], 1),
            Cmd(0, &["CLIENT", "TRACKINGINFO"], 1),
            Cmd(
                0,
                &[
                    "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a", "PREFIX", "ab",
                ],
                1,
            ),
            Cmd(0, &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ax"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "b"], 1),
            Cmd(0, &["CLIENT", "TRACKINGINFO"], 1),
            Cmd(1, &["SET", "c1", "x"], 1),
            Cmd(1, &["SET", "a1", "x"], 1),
            Read(0, 1),
            Cmd(0, &["CLIENT", "TRACKING", "on", "OPTIN"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "off"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "on", "OPTIN", "NOLOOP"], 1),
            Cmd(0, &["CLIENT", "CACHING", "no"], 1),
            Cmd(0, &["CLIENT", "CACHING", "maybe"], 1),
            Cmd(0, &["CLIENT", "CACHING", "yes"], 1),
            Cmd(0, &["CLIENT", "TRACKINGINFO"], 1),
            Cmd(0, &["GET", "o1"], 1),
            Cmd(0, &["GET", "o2"], 1),
            Cmd(0, &["CLIENT", "TRACKINGINFO"], 1),
            Cmd(0, &["SET", "o1", "mine"], 1),
            Cmd(1, &["SET", "o2", "theirs"], 1),
            Cmd(0, &["CLIENT", "CACHING", "yes"], 1),
            Cmd(0, &["GET", "o3"], 1),
            Cmd(1, &["SET", "o3", "theirs"], 1),
            Read(0, 1),
            Cmd(0, &["CLIENT", "TRACKING", "on", "OPTOUT"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "off"], 1),
            Cmd(0, &["CLIENT", "TRACKING", "on"], 1),
            Cmd(0, &["GET", "f"], 1),
            Cmd(1, &["FLUSHALL"], 1),
            Read(0, 1),
        ],
        2,
    );
}

#[test]
fn tracking_redirect_to_a_resp2_subscriber_matches_redis() {
    compare(
        "redirect",
        &[
            Cmd(0, &["SUBSCRIBE", "__redis__:invalidate"], 1),
            WithIds(1, &["CLIENT", "TRACKING", "on", "REDIRECT", "{id0}"]),
            WithIds(1, &["CLIENT", "GETREDIR"]),
            WithIds(1, &["CLIENT", "TRACKINGINFO"]),
            WithIds(
                1,
                &[
                    "CLIENT", "TRACKING", "on", "REDIRECT", "{id0}", "REDIRECT", "{id0}",
                ],
            ),
            Cmd(1, &["GET", "r"], 1),
            Cmd(2, &["SET", "r", "x"], 1),
            Read(0, 1),
            Cmd(1, &["GET", "r"], 1),
            Cmd(2, &["FLUSHDB"], 1),
            Read(0, 1),
        ],
        3,
    );
}

#[test]
fn acl_channel_permissions_match_redis() {
    compare(
        "acl channels",
        &[
            Cmd(
                0,
                &[
                    "ACL",
                    "SETUSER",
                    "u",
                    "on",
                    "nopass",
                    "+@all",
                    "~*",
                    "resetchannels",
                    "&news.*",
                    "&exact",
                ],
                1,
            ),
            Cmd(1, &["AUTH", "u", "x"], 1),
            Cmd(1, &["PUBLISH", "sport", "m"], 1),
            Cmd(1, &["PUBLISH", "news.a", "m"], 1),
            Cmd(1, &["PUBLISH", "exact", "m"], 1),
            Cmd(1, &["SPUBLISH", "sport", "m"], 1),
            Cmd(1, &["SUBSCRIBE", "news.a", "sport"], 1),
            Cmd(1, &["PSUBSCRIBE", "news.a*"], 1),
            Cmd(1, &["PSUBSCRIBE", "news.*"], 1),
            Cmd(1, &["SSUBSCRIBE", "sport"], 1),
            Cmd(1, &["SUBSCRIBE", "exact"], 1),
            Cmd(1, &["UNSUBSCRIBE", "sport"], 1),
            Cmd(1, &["RESET"], 1),
            Cmd(1, &["AUTH", "u", "x"], 1),
            Cmd(1, &["MULTI"], 1),
            Cmd(1, &["PUBLISH", "sport", "m"], 1),
            Cmd(1, &["EXEC"], 1),
            Cmd(0, &["ACL", "DRYRUN", "u", "PUBLISH", "sport", "m"], 1),
            Cmd(0, &["ACL", "DRYRUN", "u", "PSUBSCRIBE", "news.*", "x*"], 1),
            Cmd(0, &["ACL", "DRYRUN", "u", "UNSUBSCRIBE", "x"], 1),
            Cmd(
                1,
                &["EVAL", "return redis.call('publish', 'sport', 'm')", "0"],
                1,
            ),
            Cmd(1, &["MULTI"], 1),
            Cmd(1, &["PUBLISH", "news.b", "m"], 1),
            Cmd(0, &["ACL", "SETUSER", "u", "resetchannels"], 1),
            Cmd(1, &["EXEC"], 1),
            Cmd(
                0,
                &[
                    "ACL",
                    "SETUSER",
                    "v",
                    "on",
                    "nopass",
                    "+@all",
                    "~*",
                    "allchannels",
                ],
                1,
            ),
            Cmd(2, &["AUTH", "v", "x"], 1),
            Cmd(2, &["PUBLISH", "anything", "m"], 1),
        ],
        3,
    );
}

/// CLIENT LIST's `flags`, `sub`, `psub`, `ssub` of subscribers (RESP2; RESP3 inside
/// MULTI) and INFO's distinct channel and pattern counts, after the same subscriptions
/// on kvd and on redis-server (only those fields: ids, addresses and ages differ).
fn subscription_counts(conns: [RawConn; 3]) -> Vec<String> {
    let [mut observer, mut resp2, mut resp3] = conns;
    let id = |c: &mut RawConn| {
        let reply = c.cmd(&[b"CLIENT", b"ID"]);
        reply.trim().trim_start_matches(':').to_string()
    };
    let (id2, id3) = (id(&mut resp2), id(&mut resp3));
    let fields = |observer: &mut RawConn, id: &str| {
        client_fields(observer, id, &["flags=", "sub=", "psub=", "ssub="])
    };
    let info = |observer: &mut RawConn| {
        let info = observer.cmd(&[b"INFO", b"stats"]);
        ["pubsub_channels", "pubsub_patterns", "pubsubshard_channels"]
            .iter()
            .map(|f| format!("{f}={:?}", kv_tests::info_field(&info, f)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Sends a command and reads `replies` replies (one per channel for the subscribes).
    let send = |c: &mut RawConn, args: &[&str], replies: usize| {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        c.send(&encode_command(&args));
        for _ in 0..replies {
            c.reply();
        }
    };
    let mut seen = vec![fields(&mut observer, &id2), info(&mut observer)];
    send(&mut resp2, &["SUBSCRIBE", "a", "b"], 2);
    send(&mut resp2, &["PSUBSCRIBE", "x*"], 1);
    send(&mut resp2, &["SSUBSCRIBE", "s"], 1);
    seen.extend([fields(&mut observer, &id2), info(&mut observer)]);
    send(&mut resp3, &["HELLO", "3"], 1);
    send(&mut resp3, &["SUBSCRIBE", "a"], 1);
    send(&mut resp3, &["MULTI"], 1);
    seen.push(fields(&mut observer, &id3));
    send(&mut resp3, &["DISCARD"], 1);
    send(&mut resp2, &["UNSUBSCRIBE"], 2);
    send(&mut resp2, &["PUNSUBSCRIBE"], 1);
    send(&mut resp2, &["SUNSUBSCRIBE"], 1);
    seen.extend([fields(&mut observer, &id2), info(&mut observer)]);
    seen
}

#[test]
fn client_list_and_info_subscription_counts_match_redis() {
    let Some(ours) = same_on_both(subscription_counts) else {
        return;
    };
    let want = [
        "flags=N sub=0 psub=0 ssub=0",
        "pubsub_channels=Some(\"0\") pubsub_patterns=Some(\"0\") pubsubshard_channels=Some(\"0\")",
        "flags=P sub=2 psub=1 ssub=1",
        "pubsub_channels=Some(\"2\") pubsub_patterns=Some(\"1\") pubsubshard_channels=Some(\"1\")",
        "flags=Px sub=1 psub=0 ssub=0",
        "flags=N sub=0 psub=0 ssub=0",
        "pubsub_channels=Some(\"1\") pubsub_patterns=Some(\"0\") pubsubshard_channels=Some(\"0\")",
    ];
    assert_eq!(ours, want, "the counts are real");
}

/// CLIENT LIST `flags=` and `redir=` of tracking clients, and INFO `tracking_clients`,
/// through a tracking life: default mode, BCAST, a redirect, the redirect target killed
/// (flag R once an invalidation finds it gone), tracking off. Client ids differ between
/// servers, so the redirect target's id reads `<target>`.
fn tracking_fields(conns: [RawConn; 3]) -> Vec<String> {
    let [mut observer, mut a, mut b] = conns;
    let id_of = |c: &mut RawConn| kv_tests::int_reply(&c.cmd(&[b"CLIENT", b"ID"])).to_string();
    let (ida, idb) = (id_of(&mut a), id_of(&mut b));
    let fields = |observer: &mut RawConn, id: &str| {
        client_fields(observer, id, &["flags=", "redir="])
            .replace(&format!("redir={idb}"), "redir=<target>")
    };
    let tracking_clients = |observer: &mut RawConn| {
        let info = observer.cmd(&[b"INFO", b"clients"]);
        format!(
            "tracking_clients={:?}",
            kv_tests::info_field(&info, "tracking_clients")
        )
    };
    let mut seen = vec![fields(&mut observer, &ida), tracking_clients(&mut observer)];
    a.cmd(&[b"CLIENT", b"TRACKING", b"ON"]);
    b.cmd(&[b"CLIENT", b"TRACKING", b"ON", b"BCAST", b"PREFIX", b"p"]);
    seen.extend([
        fields(&mut observer, &ida),
        fields(&mut observer, &idb),
        tracking_clients(&mut observer),
    ]);
    a.cmd(&[b"CLIENT", b"TRACKING", b"OFF"]);
    a.cmd(&[b"CLIENT", b"TRACKING", b"ON", b"REDIRECT", idb.as_bytes()]);
    seen.push(fields(&mut observer, &ida));
    // The target goes away; the next invalidation for `a` finds it gone.
    observer.cmd(&[b"CLIENT", b"KILL", b"ID", idb.as_bytes()]);
    a.cmd(&[b"GET", b"tracked"]);
    observer.cmd(&[b"SET", b"tracked", b"1"]);
    seen.extend([fields(&mut observer, &ida), tracking_clients(&mut observer)]);
    a.cmd(&[b"CLIENT", b"TRACKING", b"OFF"]);
    seen.extend([fields(&mut observer, &ida), tracking_clients(&mut observer)]);
    seen
}

#[test]
fn client_list_tracking_flags_and_info_tracking_clients_match_redis() {
    let Some(ours) = same_on_both(tracking_fields) else {
        return;
    };
    // Not a vacuous match: tracking shows.
    assert!(ours.iter().any(|l| l.contains("flags=tR")), "{ours:?}");
}

/// Runs `scenario` with three connections to a fresh kvd and to a fresh redis-server,
/// asserts both saw the same, and returns it; `None` (after a SKIPPED line) without
/// redis-server.
fn same_on_both(scenario: fn([RawConn; 3]) -> Vec<String>) -> Option<Vec<String>> {
    let Some(redis) = RedisServer::start() else {
        eprintln!(
            "SKIPPED: redis-server is not installed (apt-get install redis-server); CI installs it"
        );
        return None;
    };
    let kvd = Kvd::start_default();
    let ours = scenario([kvd.raw(), kvd.raw(), kvd.raw()]);
    let theirs = scenario([redis.raw(), redis.raw(), redis.raw()]);
    assert_eq!(ours, theirs, "kvd left, redis-server right");
    Some(ours)
}

/// The fields of client `id`'s CLIENT LIST line that start with one of `prefixes`.
fn client_fields(observer: &mut RawConn, id: &str, prefixes: &[&str]) -> String {
    let list = observer.cmd(&[b"CLIENT", b"LIST"]);
    let line = list
        .lines()
        .find(|l| l.contains(&format!("id={id} ")))
        .unwrap_or_else(|| panic!("no client {id} in {list}"))
        .to_string();
    line.split(' ')
        .filter(|f| prefixes.iter().any(|p| f.starts_with(p)))
        .collect::<Vec<_>>()
        .join(" ")
}
