//! Clients over TLS (`--tls-port`): the `redis` crate over rustls and Debian's
//! `redis-cli --tls`, client certificates required/optional, hostile connections on the
//! TLS port (plain TCP, silence) that must not harm other clients, handshakes counting
//! toward maxclients, TLS-only serving, and clear start-up errors for bad files.

use kv_tests::tls::{assert_closed_by_server, Identity, RawKvd, Tls, KEY_PASS};
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn config_get(c: &mut redis::Connection, name: &str) -> String {
    let pair: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(c).unwrap();
    assert_eq!(pair.len(), 2, "CONFIG GET {name}: {pair:?}");
    pair[1].clone()
}

#[test]
fn redis_crate_set_get_and_large_pipelines_over_tls() {
    let tls = Tls::new();
    let k = tls.start("yes", &[]);
    let mut c = tls.connect(Identity::Signed).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
    // A reply far larger than one TLS record, and a long pipeline: both must arrive whole.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query(&mut c)
        .unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut c).unwrap();
    assert!(got == big, "3 MB value came back as {} bytes", got.len());
    let mut p = redis::pipe();
    for _ in 0..2000 {
        p.cmd("INCR").arg("n");
    }
    let counts: Vec<i64> = p.query(&mut c).unwrap();
    assert_eq!(counts.last(), Some(&2000));
    // The same data is visible over plain TCP: one store, two ways in.
    let n: i64 = redis::cmd("GET").arg("n").query(&mut k.client()).unwrap();
    assert_eq!(n, 2000);
    assert_eq!(config_get(&mut c, "tls-port"), tls.port.to_string());
    assert_eq!(config_get(&mut c, "tls-auth-clients"), "yes");
    assert_eq!(
        config_get(&mut c, "tls-cert-file"),
        tls.certs.server_cert.display().to_string()
    );
    assert_eq!(config_get(&mut c, "tls-cluster"), "no");
}

#[test]
fn client_certificates_required_or_optional() {
    let tls = Tls::new();
    let _k = tls.start("yes", &[]);
    assert_eq!(tls.ping(Identity::Signed).unwrap(), "PONG");
    let anonymous = tls.ping(Identity::Anonymous);
    assert!(anonymous.is_err(), "no certificate, yet: {anonymous:?}");
    let stranger = tls.ping(Identity::Stranger);
    assert!(stranger.is_err(), "untrusted CA, yet: {stranger:?}");
    assert_eq!(tls.ping(Identity::Signed).unwrap(), "PONG");

    let tls = Tls::new();
    let _k = tls.start("optional", &[]);
    assert_eq!(tls.ping(Identity::Anonymous).unwrap(), "PONG");
    assert_eq!(tls.ping(Identity::Signed).unwrap(), "PONG");
    // Optional still checks a certificate that is given.
    assert!(tls.ping(Identity::Stranger).is_err());
}

#[test]
fn plain_tcp_and_silent_clients_on_the_tls_port_are_cut_off_others_served() {
    let tls = Tls::new();
    let k = tls.start(
        "yes",
        &["--tls-handshake-timeout-ms", "500", "--maxclients", "4"],
    );
    let mut a = tls.connect(Identity::Signed).unwrap();
    let _: () = redis::cmd("SET").arg("x").arg("1").query(&mut a).unwrap();

    // Clear-text RESP instead of a ClientHello: disconnected at once.
    let mut plain = TcpStream::connect(("127.0.0.1", tls.port)).unwrap();
    plain.write_all(b"PING\r\n").unwrap();
    assert_closed_by_server(&mut plain, "plain PING on the TLS port");
    let mut garbage = TcpStream::connect(("127.0.0.1", tls.port)).unwrap();
    garbage
        .write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3])
        .unwrap();
    assert_closed_by_server(&mut garbage, "a broken ClientHello");
    let v: String = redis::cmd("GET").arg("x").query(&mut a).unwrap();
    assert_eq!(v, "1");

    // Silent connections hold a client slot during their handshake: with `a` and the
    // plain-TCP client `b`, two silent ones fill maxclients 4 and a TLS client is refused...
    let mut b = k.client();
    let mut silent: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", tls.port)).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let clients: String = redis::cmd("INFO").arg("clients").query(&mut b).unwrap();
        if clients.contains("connected_clients:4") {
            break tls.ping(Identity::Signed);
        }
        assert!(
            Instant::now() < deadline,
            "silent clients not counted: {clients}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(refused.is_err(), "a 5th client got in: {refused:?}");
    // ...until their handshake deadline passes and they are closed, while `a` and `b`
    // keep being served.
    for s in &mut silent {
        assert_closed_by_server(s, "a silent client after the handshake timeout");
    }
    let v: String = redis::cmd("GET").arg("x").query(&mut a).unwrap();
    assert_eq!(v, "1");
    let _: () = redis::cmd("SET").arg("y").arg("2").query(&mut b).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tls.ping(Identity::Signed).is_err() {
        assert!(Instant::now() < deadline, "TLS clients still refused");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn port_zero_serves_tls_only_with_an_encrypted_key() {
    let tls = Tls::new();
    let mut args = tls.args("yes");
    let key = args
        .iter()
        .position(|a| a == "--tls-key-file")
        .expect("flag")
        + 1;
    args[key] = tls.certs.server_key_encrypted.display().to_string();
    args.extend(["--port", "0", "--tls-key-file-pass", KEY_PASS].map(String::from));
    let mut kvd = RawKvd::spawn(&args);
    kvd.wait_until(|| tls.ping(Identity::Signed).is_ok());
    let mut c = tls.connect(Identity::Signed).unwrap();
    assert_eq!(config_get(&mut c, "port"), "0");
    let log = kvd.log_text();
    assert!(
        log.contains(&format!("tls_listen=127.0.0.1:{}", tls.port)) && log.contains("listen= "),
        "log should show a TLS listener and no plain one:\n{log}"
    );
}

#[test]
fn bad_tls_settings_stop_kvd_at_start_with_a_clear_message() {
    let tls = Tls::new();
    let certs = &tls.certs;
    let missing = tls.dir.path().join("missing.key");
    let with = |flag: &str, value: &std::path::Path| {
        let mut a = tls.args("yes");
        let i = a.iter().position(|x| x == flag).expect("flag");
        a[i + 1] = value.display().to_string();
        a
    };
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            with("--tls-key-file", &missing),
            format!("tls-key-file {}: cannot read", missing.display()),
        ),
        (
            with("--tls-key-file", &certs.server_key_encrypted),
            "the key is encrypted and tls-key-file-pass is not set".into(),
        ),
        (
            with("--tls-key-file", &certs.client_key),
            "do not form a usable pair".into(),
        ),
        (
            with("--tls-cert-file", &certs.server_key),
            format!(
                "tls-cert-file {}: no certificate found",
                certs.server_key.display()
            ),
        ),
        (
            with("--tls-ca-cert-file", &missing),
            "tls-ca-cert-file".into(),
        ),
        (
            vec!["--tls-port".into(), tls.port.to_string()],
            "tls-cert-file must be set".into(),
        ),
        (
            vec!["--port".into(), "0".into()],
            "not listen anywhere".into(),
        ),
        (
            vec!["--tls-auth-clients".into(), "maybe".into()],
            "--tls-auth-clients: argument(s) must be one of the following: no, yes, optional"
                .into(),
        ),
        (
            vec!["--tls-protocols".into(), "TLSv1.1".into()],
            "TLSv1.1 is not supported".into(),
        ),
        (
            vec!["--tls-cluster".into(), "yes".into()],
            "needs cluster-enabled yes".into(),
        ),
    ];
    for (args, want) in cases {
        RawKvd::spawn(&args).assert_fails_to_start(&format!("{args:?}"), &want);
    }
}

/// Debian's redis-cli over TLS; skipped with a message if absent or built without TLS.
#[test]
fn redis_cli_over_tls() {
    let tls_ok = Command::new("redis-cli")
        .args(["--tls", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !tls_ok {
        eprintln!(
            "SKIPPED: redis-cli is missing or lacks TLS support (apt-get install redis-tools)"
        );
        return;
    }
    let tls = Tls::new();
    let _k = tls.start("yes", &[]);
    let p = |path: &std::path::Path| path.display().to_string();
    let cli = |with_cert: bool, cmd: &[&str]| {
        let mut c = Command::new("redis-cli");
        c.args(["-h", "127.0.0.1", "-p", &tls.port.to_string(), "--tls"])
            .args(["--cacert", &p(&tls.certs.ca)]);
        if with_cert {
            c.args(["--cert", &p(&tls.certs.client_cert)])
                .args(["--key", &p(&tls.certs.client_key)]);
        }
        let out = c.args(cmd).output().expect("run redis-cli");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = cli(true, &["SET", "foo", "bar"]);
    assert!(ok && out == "OK\n", "SET: {out:?} {err:?}");
    let (ok, out, err) = cli(true, &["GET", "foo"]);
    assert!(ok && out == "bar\n", "GET: {out:?} {err:?}");
    // Without a certificate the handshake is refused: redis-cli fails and reads nothing.
    let (ok, out, err) = cli(false, &["GET", "foo"]);
    assert!(
        !ok && !out.contains("bar"),
        "without a certificate: {out:?} {err:?}"
    );
}
