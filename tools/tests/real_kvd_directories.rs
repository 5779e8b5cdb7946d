//! Every offline command on a directory written by a real kvd (skipped, saying why, when
//! no kvd binary is built): inspect and verify while it runs, compact and backup refused
//! while it runs, then after SHUTDOWN verify, inspect --exact, compact and backup, and a
//! kvd started on the backup finds every key.

mod common;

use common::kvd::{call, find_or_skip, get, shutdown, start_kvd, start_or_skip};
use common::{kvtool_json, s, text};
use kvtool::resp::{Connection, Reply};

#[test]
fn offline_commands_on_a_directory_kvd_wrote() {
    let Some(bin) = find_or_skip() else { return };
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    let Some((mut server, addr)) = start_or_skip(&bin, &dir) else {
        return;
    };
    let mut conn = Connection::open(&addr, None).unwrap();
    for i in 0..2000 {
        let reply = call(
            &mut conn,
            &["SET", &format!("key:{i:05}"), &format!("value:{i}")],
        );
        assert_eq!(reply, Reply::Status("OK".into()));
    }
    for i in (0..2000).step_by(10) {
        call(&mut conn, &["DEL", &format!("key:{i:05}")]);
    }
    let live_keys = 2000 - 200;

    // While kvd runs: read-only commands work, the others refuse with exit 3.
    let (v, code) = kvtool_json(&["verify", s(&dir)]);
    assert_eq!(code, 0, "{v:#}");
    let (v, code) = kvtool_json(&["inspect", s(&dir)]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["in_use_by_pid"], server.0.id(), "{v:#}");
    let (_, err, code) = text(&common::kvtool(&["compact", s(&dir)]));
    assert_eq!(code, 3, "{err}");
    let (_, err, code) = text(&common::kvtool(&[
        "backup",
        s(&dir),
        s(&d.path().join("b")),
    ]));
    assert_eq!(code, 3, "{err}");

    shutdown(&mut server, &addr);
    let (v, code) = kvtool_json(&["verify", s(&dir)]);
    assert_eq!(code, 0, "{v:#}");
    let (v, code) = kvtool_json(&["inspect", "--exact", s(&dir)]);
    assert_eq!(code, 0, "{v:#}");
    let data = v["keyspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == 0)
        .unwrap()
        .clone();
    assert_eq!(data["exact_keys"], live_keys, "{v:#}");
    let (v, code) = kvtool_json(&["compact", s(&dir)]);
    assert_eq!(code, 0, "{v:#}");
    let backup = d.path().join("backup");
    let (v, code) = kvtool_json(&["backup", s(&dir), s(&backup)]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["verified"]["errors"], 0, "{v:#}");

    let (_restored, addr) = start_kvd(&bin, &backup).expect("kvd starts from the backup");
    let mut conn = Connection::open(&addr, None).unwrap();
    assert_eq!(call(&mut conn, &["DBSIZE"]), Reply::Integer(live_keys));
    assert_eq!(
        get(&mut conn, "key:01999").as_deref(),
        Some(&b"value:1999"[..])
    );
    assert_eq!(
        get(&mut conn, "key:01990"),
        None,
        "deleted before the backup"
    );
}
