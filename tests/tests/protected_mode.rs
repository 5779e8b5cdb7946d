//! Defect 11: protected mode was checked only at start, so `CONFIG SET requirepass ""` on
//! a public bind opened the server to the network. Every change that would leave a
//! non-loopback bind with a passwordless default user while protected mode is on is now
//! refused with an error that says why: CONFIG SET requirepass / protected-mode, ACL
//! SETUSER default, ACL LOAD. (The accept-time `-DENIED` refusal of non-loopback clients
//! needs a non-loopback peer, which these tests may not use; `acl::tests` covers it.)

use kv_tests::{kvd_binary, Kvd, RawConn};
use std::process::Command;

fn cmd(r: &mut RawConn, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.cmd(&args)
}

fn authed(k: &Kvd, pass: &str) -> RawConn {
    let mut r = k.raw();
    assert_eq!(cmd(&mut r, &["AUTH", pass]), "+OK\r\n");
    r
}

/// kvd bound to every interface (the tests only connect through loopback).
fn public(extra: &[&str]) -> Kvd {
    let mut args = vec!["--bind", "0.0.0.0"];
    args.extend_from_slice(extra);
    Kvd::start(&args)
}

fn still_requires_password(k: &Kvd) {
    assert_eq!(
        cmd(&mut k.raw(), &["GET", "k"]),
        "-NOAUTH Authentication required.\r\n"
    );
}

#[test]
fn config_set_cannot_remove_the_password_of_a_public_bind() {
    let k = public(&["--requirepass", "pw"]);
    let mut r = authed(&k, "pw");
    let e = cmd(&mut r, &["CONFIG", "SET", "requirepass", ""]);
    assert!(
        e.starts_with("-ERR CONFIG SET failed (possibly related to argument 'requirepass') - refused, protected mode is on and kvd listens on 0.0.0.0"),
        "{e}"
    );
    still_requires_password(&k);
    assert_eq!(
        cmd(&mut r, &["CONFIG", "GET", "requirepass"]),
        "*2\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"
    );
    // Changing the password is fine.
    assert_eq!(
        cmd(&mut r, &["CONFIG", "SET", "requirepass", "pw2"]),
        "+OK\r\n"
    );
    authed(&k, "pw2");
    // Turning protected mode off is the operator's explicit choice; then it may open.
    assert_eq!(
        cmd(&mut r, &["CONFIG", "SET", "protected-mode", "no"]),
        "+OK\r\n"
    );
    assert_eq!(
        cmd(&mut r, &["CONFIG", "SET", "requirepass", ""]),
        "+OK\r\n"
    );
    assert_eq!(cmd(&mut k.raw(), &["PING"]), "+PONG\r\n");
    // ...and protected mode cannot come back on while it is open.
    let e = cmd(&mut r, &["CONFIG", "SET", "protected-mode", "yes"]);
    assert!(
        e.contains("'protected-mode'") && e.contains("must have a password"),
        "{e}"
    );
}

#[test]
fn acl_setuser_cannot_make_the_default_user_passwordless() {
    let k = public(&["--requirepass", "pw"]);
    let mut r = authed(&k, "pw");
    let e = cmd(&mut r, &["ACL", "SETUSER", "default", "nopass"]);
    assert!(
        e.starts_with(
            "-ERR Error in ACL SETUSER for the default user: refused, protected mode is on"
        ),
        "{e}"
    );
    let e = cmd(
        &mut r,
        &["ACL", "SETUSER", "default", "resetpass", "nopass"],
    );
    assert!(e.contains("protected mode"), "{e}");
    still_requires_password(&k);
    // Other changes to the default user, and other users without passwords, are fine.
    assert_eq!(
        cmd(&mut r, &["ACL", "SETUSER", "default", ">another"]),
        "+OK\r\n"
    );
    assert_eq!(
        cmd(
            &mut r,
            &["ACL", "SETUSER", "guest", "on", "nopass", "+ping"]
        ),
        "+OK\r\n"
    );
    authed(&k, "another");
}

#[test]
fn acl_load_cannot_open_a_public_bind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.acl");
    std::fs::write(&path, "user default on >pw ~* &* +@all\n").unwrap();
    let k = public(&["--aclfile", path.to_str().unwrap()]);
    let mut r = authed(&k, "pw");
    std::fs::write(&path, "user default on nopass ~* &* +@all\n").unwrap();
    let e = cmd(&mut r, &["ACL", "LOAD"]);
    assert!(
        e.starts_with("-ERR Error loading ACLs: refused, protected mode is on"),
        "{e}"
    );
    still_requires_password(&k);
    // A file without a default user keeps requirepass semantics: here no password.
    std::fs::write(&path, "user admin on >a ~* +@all\n").unwrap();
    assert!(cmd(&mut r, &["ACL", "LOAD"]).contains("protected mode"));
    still_requires_password(&k);
}

#[test]
fn start_refuses_a_passwordless_default_user_on_a_public_bind() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("users.acl");
    std::fs::write(&acl, "user default on nopass ~* +@all\n").unwrap();
    let out = Command::new(kvd_binary())
        .args([
            "--bind",
            "0.0.0.0",
            "--port",
            "0",
            "--requirepass",
            "ignored-by-the-aclfile",
            "--aclfile",
        ])
        .arg(&acl)
        .arg("--dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("protected mode is on"), "{err}");
    // The same file with a password for the default user starts.
    std::fs::write(&acl, "user default on >pw ~* +@all\n").unwrap();
    let k = public(&["--aclfile", acl.to_str().unwrap()]);
    still_requires_password(&k);
    authed(&k, "pw");
}
