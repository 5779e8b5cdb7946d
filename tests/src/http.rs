//! A small blocking HTTP/1.1 client for the HTTP API tests: hyper's client connection on
//! a tokio runtime of its own, one request per connection, with a deadline.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::time::Duration;

/// How long one request may take before the test fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One answer.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends one request to `127.0.0.1:port` and reads the whole answer.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let body = Bytes::copy_from_slice(body);
    block_on_request(method, path, async move {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("connect to HTTP port {port}: {e}"));
        let io = hyper_util::rt::TokioIo::new(stream);
        exchange(io, port, method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

/// Runs one request's future on a runtime of its own, failing the test past
/// [`REQUEST_TIMEOUT`].
pub fn block_on_request<T>(method: &str, path: &str, f: impl std::future::Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        tokio::time::timeout(REQUEST_TIMEOUT, f)
            .await
            .unwrap_or_else(|_| panic!("{method} {path} took longer than {REQUEST_TIMEOUT:?}"))
    })
}

/// One HTTP/1.1 request and its whole answer over a connected `io` (TCP or TLS), or
/// what went wrong (a TLS peer may refuse only once the request is sent).
pub async fn exchange<I>(
    io: I,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<HttpResponse, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", format!("127.0.0.1:{port}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(body)).expect("request");
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{method} {path}: response body: {e}"))?
        .to_bytes()
        .to_vec();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// GET `path`.
pub fn get(port: u16, path: &str) -> HttpResponse {
    request(port, "GET", path, &[], b"")
}

/// Starts kvd with the HTTP API on a free port; returns the server and that port.
pub fn start_kvd(extra: &[&str]) -> (crate::Kvd, u16) {
    let port = crate::free_port();
    let port_arg = port.to_string();
    let mut args = vec!["--http-port", port_arg.as_str()];
    args.extend_from_slice(extra);
    (crate::Kvd::start(&args), port)
}

/// Starts an `n`-node cluster ([`crate::cluster::Cluster::start`]) with an HTTP port on
/// every node and `extra` flags; returns it and the HTTP ports, in node order.
pub fn start_cluster(n: usize, extra: &[&str]) -> (crate::cluster::Cluster, Vec<u16>) {
    let http: Vec<u16> = (0..n).map(|_| crate::free_port()).collect();
    let cluster = crate::cluster::Cluster::start_per_node(n, |i| {
        let mut args = vec!["--http-port".to_string(), http[i].to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    });
    (cluster, http)
}

/// The `ETag` of a response as a version number.
pub fn etag_version(resp: &HttpResponse) -> u64 {
    let tag = resp.header("etag").expect("an ETag header");
    tag.trim_matches('"')
        .parse()
        .unwrap_or_else(|_| panic!("ETag {tag} is not a quoted version"))
}

/// Adds ACL user `user` with password `pass` and `rules` (e.g. `~*`, `+getwithetag`)
/// over RESP, authenticating first with the default user's `admin_pass`.
pub fn add_acl_user(k: &crate::Kvd, admin_pass: &str, user: &str, pass: &str, rules: &[&str]) {
    let mut raw = k.raw();
    assert_eq!(raw.cmd(&[b"AUTH", admin_pass.as_bytes()]), "+OK\r\n");
    let pass = format!(">{pass}");
    let mut args: Vec<&[u8]> = vec![b"ACL", b"SETUSER", user.as_bytes(), b"on", pass.as_bytes()];
    args.extend(rules.iter().map(|r| r.as_bytes()));
    assert_eq!(raw.cmd(&args), "+OK\r\n");
}

/// Request headers as `(name, value)` pairs.
pub type Headers<'a> = &'a [(&'a str, &'a str)];

/// Sends each `(method, path, headers)` with an empty body and checks its status.
pub fn expect_statuses(port: u16, cases: &[(&str, &str, Headers<'_>, u16)]) {
    for (method, path, headers, want) in cases {
        let r = request(port, method, path, headers, b"");
        assert_eq!(r.status, *want, "{method} {path} {headers:?}: {r:?}");
    }
}
