//! Pipelines on a cluster node (docs/cluster.md, "Pipelining"), with real kvd processes:
//! a run of reads has its keys read together, yet every reply is what the commands one
//! by one would give, in order; a read after a write of the same pipeline sees it; a run
//! at SERIAL is not read ahead (each read is its own consensus round); with
//! cluster-group-pipelined-writes, runs of blind writes replicate as one round and still
//! reply in order; values of 1 MiB cross the ring in all these shapes.

use kv_tests::cluster::Cluster;
use kv_tests::{info_field, RawConn};

/// The node's `pipelined_reads_ahead` (INFO stats).
fn reads_ahead(r: &mut RawConn) -> u64 {
    let info = r.cmd(&[b"INFO", b"stats"]);
    info_field(&info, "pipelined_reads_ahead")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no pipelined_reads_ahead in {info}"))
}

fn bulk(v: &str) -> String {
    format!("${}\r\n{v}\r\n", v.len())
}

#[test]
fn a_pipeline_of_reads_is_read_ahead_and_replies_as_one_by_one() {
    let c = Cluster::start(3, &["--cluster-eventual-databases", "1"]);
    // Database 0 is linearizable (written through consensus), database 1 eventual.
    let mut w = c.nodes[0].raw();
    for db in ["0", "1"] {
        assert_eq!(w.cmd(&[b"SELECT", db.as_bytes()]), "+OK\r\n");
        for i in 0..30 {
            let (k, v) = (format!("k{i}"), format!("{db}-v{i}"));
            assert_eq!(w.cmd(&[b"SET", k.as_bytes(), v.as_bytes()]), "+OK\r\n");
        }
    }

    // Through another node: twenty GETs, a write, then reads of several kinds.
    let mut r = c.nodes[1].raw();
    for db in ["0", "1"] {
        assert_eq!(r.cmd(&[b"SELECT", db.as_bytes()]), "+OK\r\n");
        let before = reads_ahead(&mut r);
        let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
        let mut cmds: Vec<Vec<&str>> = keys.iter().map(|k| vec!["GET", k.as_str()]).collect();
        let tail: [&[&str]; 8] = [
            &["SET", "k0", "new"],
            &["GET", "k0"],
            &["MGET", "k1", "missing", "k2"],
            &["EXISTS", "k3", "k3", "missing"],
            &["STRLEN", "k4"],
            &["TTL", "k5"],
            &["GET", "k0"],
            &["GET", "missing"],
        ];
        cmds.extend(tail.iter().map(|c| c.to_vec()));
        let refs: Vec<&[&str]> = cmds.iter().map(Vec::as_slice).collect();
        let replies = r.pipeline(&refs);

        let mut want: Vec<String> = (0..20).map(|i| bulk(&format!("{db}-v{i}"))).collect();
        want.extend([
            "+OK\r\n".to_string(),
            bulk("new"),
            format!(
                "*3\r\n{}$-1\r\n{}",
                bulk(&format!("{db}-v1")),
                bulk(&format!("{db}-v2"))
            ),
            ":2\r\n".to_string(),
            format!(":{}\r\n", format!("{db}-v4").len()),
            ":-1\r\n".to_string(),
            bulk("new"),
            "$-1\r\n".to_string(),
        ]);
        assert_eq!(replies, want, "database {db}");
        // Two runs were read ahead: the twenty GETs, and the seven reads after the SET.
        assert_eq!(reads_ahead(&mut r) - before, 27, "database {db}");
    }

    // At SERIAL every read is a consensus round of its own: nothing is read ahead.
    assert_eq!(r.cmd(&[b"SELECT", b"0"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"CLUSTER", b"CONSISTENCY", b"SERIAL"]), "+OK\r\n");
    let before = reads_ahead(&mut r);
    let replies = r.pipeline(&[&["GET", "k0"], &["GET", "k7"], &["EXISTS", "k8"]]);
    assert_eq!(replies, [bulk("new"), bulk("0-v7"), ":1\r\n".to_string()]);
    assert_eq!(reads_ahead(&mut r), before);
}

/// The node's `pipelined_writes_grouped` (INFO stats).
fn writes_grouped(r: &mut RawConn) -> u64 {
    let info = r.cmd(&[b"INFO", b"stats"]);
    info_field(&info, "pipelined_writes_grouped")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no pipelined_writes_grouped in {info}"))
}

#[test]
fn grouped_pipelined_writes_run_as_one_round_and_reply_in_order() {
    let c = Cluster::start(3, &["--cluster-eventual-databases", "1"]);
    let mut w = c.nodes[0].raw();
    assert_eq!(w.cmd(&[b"SELECT", b"1"]), "+OK\r\n");
    // Off by default: writes run one by one.
    let replies = w.pipeline(&[&["SET", "x", "1"], &["SET", "y", "2"]]);
    assert_eq!(replies, ["+OK\r\n", "+OK\r\n"]);
    assert_eq!(writes_grouped(&mut w), 0);

    assert_eq!(
        w.cmd(&[b"CONFIG", b"SET", b"cluster-group-pipelined-writes", b"yes"]),
        "+OK\r\n"
    );
    let replies = w.pipeline(&[
        // One run: three blind writes, five distinct keys.
        &["SET", "a", "1"],
        &["SET", "b", "2"],
        &["MSET", "c", "3", "d", "4"],
        // "a" again ends the run (its writes would race); it runs alone, before the GET.
        &["SET", "a", "11"],
        &["GET", "a"],
        // A second run of two.
        &["SETEX", "e", "100", "5"],
        &["PSETEX", "f", "100000", "6"],
        // Refused in an eventual database: ends the run, answers its own error.
        &["SET", "g", "7", "NX"],
        // A third run of two.
        &["SET", "h", "8"],
        &["SET", "i", "9"],
    ]);
    let ok = "+OK\r\n".to_string();
    assert_eq!(
        replies[..4],
        [ok.clone(), ok.clone(), ok.clone(), ok.clone()]
    );
    assert_eq!(replies[4], bulk("11"));
    assert_eq!(replies[5..7], [ok.clone(), ok.clone()]);
    assert!(replies[7].starts_with("-ERR"), "{}", replies[7]);
    assert_eq!(replies[8..], [ok.clone(), ok]);
    assert_eq!(
        writes_grouped(&mut w),
        7,
        "the three runs, 3 + 2 + 2 commands"
    );

    // Every write reached its replicas: read through another node at ALL.
    let mut r = c.nodes[2].raw();
    assert_eq!(r.cmd(&[b"SELECT", b"1"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"CLUSTER", b"CONSISTENCY", b"ALL"]), "+OK\r\n");
    for (k, v) in [
        ("a", "11"),
        ("b", "2"),
        ("c", "3"),
        ("d", "4"),
        ("e", "5"),
        ("f", "6"),
        ("h", "8"),
        ("i", "9"),
    ] {
        assert_eq!(r.cmd(&[b"GET", k.as_bytes()]), bulk(v), "key {k}");
    }
    assert_eq!(r.cmd(&[b"GET", b"g"]), "$-1\r\n");
    let ttl = r.cmd(&[b"TTL", b"e"]);
    assert!(
        ttl.starts_with(':') && ttl != ":-1\r\n" && ttl != ":-2\r\n",
        "{ttl}"
    );

    // A linearizable database writes through consensus, never grouped.
    assert_eq!(w.cmd(&[b"SELECT", b"0"]), "+OK\r\n");
    let replies = w.pipeline(&[&["SET", "x", "1"], &["SET", "y", "2"]]);
    assert_eq!(replies, ["+OK\r\n", "+OK\r\n"]);
    assert_eq!(writes_grouped(&mut w), 7);
}

/// Values of 1 MiB cross the ring in every shape (docs/cluster.md, "Value size"): a
/// grouped pipeline of forty SETs (one write request per replica of 40 MiB, sent in
/// parts), an MGET and a pipeline of GETs of all forty through other nodes (answers
/// above the bus bound, asked again in parts), in an eventual and a linearizable
/// database. A value above the ring's bound is refused with an error that says so, and
/// nothing of it is written anywhere. Before, the reads timed out, and the oversized
/// SET timed out after landing on the coordinator's own replica.
#[test]
fn large_values_cross_the_ring_and_an_oversized_one_is_refused() {
    use kv_tests::cluster::connect;
    let c = Cluster::start(3, &["--cluster-eventual-databases", "1"]);
    let value = vec![b'v'; 1 << 20];
    let keys: Vec<String> = (0..40).map(|i| format!("big{i}")).collect();
    for db in [1, 0] {
        let mut w = connect(&c.nodes[0].url(false));
        let () = redis::cmd("SELECT").arg(db).query(&mut w).expect("SELECT");
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("cluster-group-pipelined-writes")
            .arg("yes")
            .query(&mut w)
            .expect("CONFIG SET");
        let mut sets = redis::pipe();
        for k in &keys {
            sets.cmd("SET").arg(k).arg(&value).ignore();
        }
        let () = sets.query(&mut w).expect("forty SETs of 1 MiB");

        let mut r = connect(&c.nodes[1].url(false));
        let () = redis::cmd("SELECT").arg(db).query(&mut r).expect("SELECT");
        let () = redis::cmd("CLUSTER")
            .arg("CONSISTENCY")
            .arg("ALL")
            .query(&mut r)
            .expect("CONSISTENCY ALL");
        let got: Vec<Vec<u8>> = redis::cmd("MGET").arg(&keys).query(&mut r).expect("MGET");
        assert_eq!(got.len(), keys.len(), "database {db}");
        assert!(got.iter().all(|v| *v == value), "database {db}: MGET");

        let mut p = connect(&c.nodes[2].url(false));
        let () = redis::cmd("SELECT").arg(db).query(&mut p).expect("SELECT");
        let mut gets = redis::pipe();
        for k in &keys {
            gets.cmd("GET").arg(k);
        }
        let got: Vec<Vec<u8>> = gets.query(&mut p).expect("forty pipelined GETs");
        assert!(got.iter().all(|v| *v == value), "database {db}: GETs");

        let huge = vec![b'h'; 17 << 20];
        let refused = redis::cmd("SET")
            .arg("huge")
            .arg(huge)
            .query::<()>(&mut w)
            .expect_err("a 17 MiB value on a ring");
        assert!(
            refused.to_string().contains("too large for a kvd cluster"),
            "database {db}: {refused}"
        );
        for node in &c.nodes {
            let mut conn = connect(&node.url(false));
            let () = redis::cmd("SELECT")
                .arg(db)
                .query(&mut conn)
                .expect("SELECT");
            // At ALL: a copy on any one replica would be found.
            let () = redis::cmd("CLUSTER")
                .arg("CONSISTENCY")
                .arg("ALL")
                .query(&mut conn)
                .expect("CONSISTENCY ALL");
            let exists: i64 = redis::cmd("EXISTS")
                .arg("huge")
                .query(&mut conn)
                .expect("EXISTS");
            assert_eq!(
                exists, 0,
                "database {db}: the refused value on {}",
                node.port
            );
        }
    }
}

/// A run of pipelined reads is admitted as it is formed (the ACL among the checks), and
/// its commands are not checked again when they run: a command the user may not run
/// must still be refused in its place, logged once, and end the run before it.
#[test]
fn a_read_ahead_run_stops_at_a_refused_command_which_is_refused_in_its_place() {
    let c = Cluster::start(3, &["--cluster-eventual-databases", "0"]);
    let mut admin = c.nodes[0].raw();
    for i in 1..=4 {
        let (k, v) = (format!("open:{i}"), format!("v{i}"));
        assert_eq!(admin.cmd(&[b"SET", k.as_bytes(), v.as_bytes()]), "+OK\r\n");
    }
    assert_eq!(admin.cmd(&[b"SET", b"secret", b"s"]), "+OK\r\n");
    let setuser: [&[u8]; 7] = [
        b"ACL", b"SETUSER", b"reader", b"on", b">pw", b"~open:*", b"+get",
    ];
    assert_eq!(admin.cmd(&setuser), "+OK\r\n");
    let before = reads_ahead(&mut admin);

    let mut r = c.nodes[0].raw();
    assert_eq!(r.cmd(&[b"AUTH", b"reader", b"pw"]), "+OK\r\n");
    let replies = r.pipeline(&[
        &["GET", "open:1"],
        &["GET", "open:2"],
        &["GET", "secret"],
        &["GET", "open:3"],
        &["GET", "open:4"],
    ]);
    let noperm =
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";
    assert_eq!(
        replies,
        vec![
            bulk("v1"),
            bulk("v2"),
            noperm.to_string(),
            bulk("v3"),
            bulk("v4")
        ]
    );
    // Two runs of two were read ahead around the refused command, which ran alone.
    assert_eq!(reads_ahead(&mut admin) - before, 4);
    let log = admin.cmd(&[b"ACL", b"LOG"]);
    assert!(log.starts_with("*1\r\n"), "one denial logged: {log}");
    assert!(log.contains("secret"), "{log}");
}
