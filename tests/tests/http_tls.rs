//! HTTPS on `--http-tls-port` with the RESP TLS certificate flags: a request that trusts
//! the test CA succeeds, client certificates follow `tls-auth-clients`, clear-text HTTP
//! on the TLS port is refused at its first bytes while the server goes on serving, and
//! HTTPS without a certificate stops kvd at start with a message naming the flag.

use kv_tests::http::{request, HttpResponse};
use kv_tests::tls::{assert_closed_by_server, https_request, Identity, RawKvd, Tls};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// A kvd with a plain HTTP port and HTTPS on `tls.port`, client certificates as `auth`
/// says. The handshake deadline is far beyond the test's patience, so a connection that
/// closes did so because of what it sent, not because it waited.
fn start(tls: &Tls, auth: &str) -> (kv_tests::Kvd, u16) {
    let mut args = tls.args_for("--http-tls-port", auth);
    args.extend(["--tls-handshake-timeout-ms", "120000"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kv_tests::http::start_kvd(&args)
}

fn https(tls: &Tls, who: Identity, method: &str, path: &str, body: &[u8]) -> HttpResponse {
    https_request(tls.port, tls.client_config(who), method, path, &[], body)
        .unwrap_or_else(|e| panic!("HTTPS {method} {path} as {who:?}: {e}"))
}

#[test]
fn https_with_the_test_ca_reads_and_writes_the_same_store_as_plain_http() {
    let tls = Tls::new();
    let (_kvd, http_port) = start(&tls, "no");
    let put = https(&tls, Identity::Anonymous, "PUT", "/kv/greeting", b"hello");
    assert!(put.status == 200 || put.status == 201, "{put:?}");
    let got = https(&tls, Identity::Anonymous, "GET", "/kv/greeting", b"");
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.json()["value"], "hello");
    // One store, two ports: the plain HTTP port sees the HTTPS write, with the same ETag.
    let plain = request(http_port, "GET", "/kv/greeting", &[], b"");
    assert_eq!(plain.json()["value"], "hello");
    assert_eq!(plain.header("etag"), got.header("etag"));
    let health = https(&tls, Identity::Anonymous, "GET", "/health", b"");
    assert_eq!(health.status, 200, "{health:?}");
}

#[test]
fn clear_text_http_on_the_tls_port_is_closed_and_the_server_keeps_serving() {
    let tls = Tls::new();
    let (_kvd, http_port) = start(&tls, "no");
    for _ in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", tls.port)).expect("connect");
        s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .expect("send clear text");
        // Closed at the first bytes (the handshake deadline is 120 s), with at most a
        // TLS alert: never an HTTP answer in clear text.
        let mut first = [0u8; 5];
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        if let Ok(n) = std::io::Read::read(&mut s, &mut first) {
            assert!(
                !first[..n].starts_with(b"HTTP/"),
                "clear-text answer on the TLS port"
            );
        }
        assert_closed_by_server(&mut s, "clear text on the HTTPS port");
    }
    let after = https(&tls, Identity::Anonymous, "GET", "/health", b"");
    assert_eq!(after.status, 200, "{after:?}");
    assert_eq!(request(http_port, "GET", "/health", &[], b"").status, 200);
}

#[test]
fn client_certificates_follow_tls_auth_clients() {
    let tls = Tls::new();
    let (_kvd, _) = start(&tls, "yes");
    let signed = https(&tls, Identity::Signed, "GET", "/health", b"");
    assert_eq!(signed.status, 200, "{signed:?}");
    for who in [Identity::Anonymous, Identity::Stranger] {
        // Over TLS 1.3 the refusal may come only after the client sent its request.
        let refused = https_request(tls.port, tls.client_config(who), "GET", "/health", &[], b"");
        assert!(refused.is_err(), "{who:?} was served: {refused:?}");
    }
    let again = https(&tls, Identity::Signed, "GET", "/health", b"");
    assert_eq!(again.status, 200, "{again:?}");
}

#[test]
fn https_without_a_certificate_stops_kvd_at_start() {
    let tls = Tls::new();
    let args: Vec<String> = ["--http-tls-port", &tls.port.to_string()]
        .map(String::from)
        .to_vec();
    RawKvd::spawn(&args).assert_fails_to_start(
        "--http-tls-port without certificates",
        "http-tls-port: tls-cert-file must be set to use TLS",
    );
}
