//! Bad input to the HTTP API gets a JSON error with the right status and never hurts the
//! server: malformed requests, oversized bodies, garbage on the socket; and requests
//! authenticate with the same password and ACL users as RESP.

use kv_tests::http::{get, request, start_kvd, HttpResponse};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn assert_error(r: &HttpResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{r:?}");
    let body = r.json();
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[test]
fn malformed_requests_get_400_and_unknown_paths_404() {
    let (_k, port) = start_kvd(&[]);
    let json = ("content-type", "application/json");
    for body in [
        &b"{"[..],
        br#"{"value":1}"#,
        br#"{"value":"a","value_base64":"YQ=="}"#,
        br#"{"value":"a","extra":1}"#,
        br#"{"value_base64":"***"}"#,
    ] {
        assert_error(
            &request(port, "PUT", "/kv/k", &[json], body),
            400,
            "bad_request",
        );
    }
    let long_id = "i".repeat(300);
    let bad_headers: [&[(&str, &str)]; 5] = [
        &[("if-match", "5")],
        &[("if-match", "\"1\""), ("if-none-match", "*")],
        &[("if-none-match", "\"1\"")],
        &[("authorization", "Digest abc")],
        &[("idempotency-key", &long_id)],
    ];
    for headers in bad_headers {
        let r = request(port, "PUT", "/kv/k", headers, b"v");
        assert_error(&r, 400, "bad_request");
    }
    assert_error(&get(port, "/kv?limit=0"), 400, "bad_request");
    assert_error(&get(port, "/kv?limit=abc"), 400, "bad_request");
    assert_error(&get(port, "/kv?cursor=notanumber"), 400, "bad_request");
    assert_error(&get(port, "/kv/k?db=99"), 400, "bad_request");
    assert_error(&get(port, "/nowhere"), 404, "no_route");
    assert_error(
        &request(port, "POST", "/kv/k", &[], b"v"),
        405,
        "method_not_allowed",
    );
}

#[test]
fn bodies_past_the_limit_get_413() {
    let (_k, port) = start_kvd(&["--http-max-body-bytes", "1024"]);
    assert_eq!(
        request(port, "PUT", "/kv/small", &[], &[b'x'; 1000]).status,
        200
    );
    assert_error(
        &request(port, "PUT", "/kv/big", &[], &[b'x'; 2000]),
        413,
        "payload_too_large",
    );
    assert_eq!(get(port, "/kv/big").status, 404);
}

/// Sends raw bytes and returns what the server answered before closing (or a timeout).
fn raw_exchange(port: u16, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write); // nothing more comes: answer now
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn garbage_and_oversized_headers_do_not_hurt_the_server() {
    let (mut k, port) = start_kvd(&[]);
    let answer = raw_exchange(port, b"\x00\x01\x02 NOT HTTP\r\n\r\n");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    let mut huge = b"GET /kv/k HTTP/1.1\r\nhost: x\r\nx-big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1 << 20));
    huge.extend_from_slice(b"\r\n\r\n");
    let answer = raw_exchange(port, &huge);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    let truncated = raw_exchange(
        port,
        b"PUT /kv/k HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nshort",
    );
    assert!(!truncated.contains("200 OK"), "{truncated}");
    assert_eq!(get(port, "/health").status, 200);
    assert_eq!(get(port, "/kv/k").status, 404);
    assert!(k.is_running());
}

#[test]
fn authentication_uses_the_resp_password_and_acl_users() {
    let (k, port) = start_kvd(&["--requirepass", "s3cret"]);
    let anonymous = get(port, "/kv/k");
    assert_error(&anonymous, 401, "unauthorized");
    assert!(anonymous.header("www-authenticate").is_some());
    assert_error(
        &request(
            port,
            "GET",
            "/kv/k",
            &[("authorization", "Bearer wrong")],
            b"",
        ),
        401,
        "unauthorized",
    );
    let bearer = ("authorization", "Bearer s3cret");
    assert_eq!(request(port, "PUT", "/kv/k", &[bearer], b"v").status, 200);
    // Basic default:s3cret
    let basic = ("authorization", "Basic ZGVmYXVsdDpzM2NyZXQ=");
    assert_eq!(request(port, "GET", "/kv/k", &[basic], b"").status, 200);

    kv_tests::http::add_acl_user(&k, "s3cret", "reader", "pw", &["~*", "+getwithetag"]);
    // Basic reader:pw
    let reader = ("authorization", "Basic cmVhZGVyOnB3");
    assert_eq!(request(port, "GET", "/kv/k", &[reader], b"").status, 200);
    assert_error(
        &request(port, "PUT", "/kv/k", &[reader], b"w"),
        403,
        "forbidden",
    );
    let mut raw = k.raw();
    assert_eq!(raw.cmd(&[b"AUTH", b"s3cret"]), "+OK\r\n");
    let log = raw.cmd(&[b"ACL", b"LOG"]);
    assert!(log.contains("reader"), "{log}");

    assert_error(&get(port, "/metrics"), 401, "unauthorized");
    assert_eq!(request(port, "GET", "/metrics", &[bearer], b"").status, 200);
    assert_eq!(get(port, "/health").status, 200);
    assert_eq!(get(port, "/ready").status, 200);
}
