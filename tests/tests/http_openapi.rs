//! docs/http-api.yaml against a running kvd: every answer's status must be documented
//! for its path and method, a documented JSON body must parse and carry its schema's
//! required fields, the media type must be a documented one, and every documented
//! operation must be exercised here (a Rust stand-in for schemathesis).

use kv_tests::http::{request, start_kvd, HttpResponse};
use std::collections::BTreeSet;
use yaml_rust2::{Yaml, YamlLoader};

struct Spec {
    doc: Yaml,
}

impl Spec {
    fn load() -> Spec {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/http-api.yaml");
        let text = std::fs::read_to_string(path).expect("docs/http-api.yaml");
        let mut docs = YamlLoader::load_from_str(&text).expect("valid YAML");
        assert_eq!(docs.len(), 1);
        Spec {
            doc: docs.remove(0),
        }
    }

    /// `node`, or what its `$ref` points at (local references only).
    fn resolve<'a>(&'a self, node: &'a Yaml) -> &'a Yaml {
        let Some(reference) = node["$ref"].as_str() else {
            return node;
        };
        let path = reference.strip_prefix("#/").expect("local $ref");
        let target = path.split('/').fold(&self.doc, |n, part| &n[part]);
        assert!(!target.is_badvalue(), "dangling $ref {reference}");
        self.resolve(target)
    }

    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut ops = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_hash().expect("paths") {
            for (method, _) in item.as_hash().expect("path item") {
                let method = method.as_str().expect("method");
                if method != "parameters" {
                    ops.insert((path.as_str().expect("path").to_string(), method.to_string()));
                }
            }
        }
        ops
    }

    fn check(&self, template: &str, method: &str, resp: &HttpResponse) {
        let op = &self.doc["paths"][template][method];
        assert!(!op.is_badvalue(), "{method} {template} is not documented");
        let status = resp.status.to_string();
        let documented = &op["responses"][status.as_str()];
        assert!(
            !documented.is_badvalue(),
            "{method} {template} answered {status}, which docs/http-api.yaml does not list: {resp:?}"
        );
        let documented = self.resolve(documented);
        let content = &documented["content"];
        if content.is_badvalue() {
            assert!(resp.body.is_empty() || resp.status >= 400, "{resp:?}");
            return;
        }
        let media = resp
            .header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let by_type = &content[media.as_str()];
        assert!(
            !by_type.is_badvalue(),
            "{method} {template} {status}: content type {media} is not documented"
        );
        if media == "application/json" {
            let body = resp.json();
            let schema = self.resolve(&by_type["schema"]);
            for field in schema["required"].as_vec().into_iter().flatten() {
                let field = field.as_str().expect("field name");
                assert!(
                    body.get(field).is_some(),
                    "{method} {template} {status}: required field {field} missing in {body}"
                );
            }
        }
    }
}

#[test]
fn answers_match_the_openapi_document() {
    let spec = Spec::load();
    let (k, port) = start_kvd(&["--requirepass", "pw", "--http-max-body-bytes", "4096"]);
    kv_tests::http::add_acl_user(&k, "pw", "ro", "ro", &["~*", "+getwithetag", "+scan"]);
    let auth = ("authorization", "Bearer pw");
    let ro = ("authorization", "Basic cm86cm8="); // ro:ro
    let json = ("content-type", "application/json");
    let big = vec![b'x'; 5000];
    let mut exercised = BTreeSet::new();
    let mut call = |template: &str,
                    method: &str,
                    path: &str,
                    headers: &[(&str, &str)],
                    body: &[u8],
                    want: u16| {
        let resp = request(port, &method.to_ascii_uppercase(), path, headers, body);
        assert_eq!(resp.status, want, "{method} {path}: {resp:?}");
        spec.check(template, method, &resp);
        exercised.insert((template.to_string(), method.to_string()));
        resp
    };
    let kv = "/kv/{key}";
    let created = call(
        kv,
        "put",
        "/kv/doc",
        &[auth, json, ("if-none-match", "*")],
        br#"{"value":"v"}"#,
        201,
    );
    let tag = created.header("etag").expect("etag").to_string();
    call(
        kv,
        "put",
        "/kv/doc",
        &[auth, ("if-none-match", "*")],
        b"v",
        412,
    );
    call(
        kv,
        "put",
        "/kv/doc",
        &[auth, ("if-match", &tag)],
        b"v2",
        200,
    );
    call(kv, "put", "/kv/doc", &[auth, json], b"{", 400);
    call(kv, "put", "/kv/doc", &[auth], &big, 413);
    call(kv, "put", "/kv/doc", &[], b"v", 401);
    call(kv, "put", "/kv/doc", &[ro], b"v", 403);
    call(kv, "get", "/kv/doc", &[auth], b"", 200);
    call(
        kv,
        "get",
        "/kv/doc",
        &[auth, ("accept", "application/octet-stream")],
        b"",
        200,
    );
    let current = request(port, "GET", "/kv/doc", &[auth], b"");
    let current_tag = current.header("etag").expect("etag").to_string();
    call(
        kv,
        "get",
        "/kv/doc",
        &[ro, ("if-none-match", &current_tag)],
        b"",
        304,
    );
    call(kv, "get", "/kv/absent", &[auth], b"", 404);
    call(kv, "get", "/kv/doc?db=1000", &[auth], b"", 400);
    call(kv, "get", "/kv/doc", &[], b"", 401);
    call(
        kv,
        "delete",
        "/kv/doc",
        &[auth, ("if-match", &tag)],
        b"",
        412,
    );
    call(kv, "delete", "/kv/doc", &[ro], b"", 403);
    call(
        kv,
        "delete",
        "/kv/doc",
        &[auth, ("idempotency-key", "d1")],
        b"",
        204,
    );
    call(kv, "delete", "/kv/doc", &[auth], b"", 404);
    call("/kv", "get", "/kv?prefix=d&limit=5", &[ro], b"", 200);
    call("/kv", "get", "/kv?limit=0", &[auth], b"", 400);
    call("/kv", "get", "/kv", &[], b"", 401);
    call("/", "get", "/", &[], b"", 200);
    call("/health", "get", "/health", &[], b"", 200);
    call("/ready", "get", "/ready", &[], b"", 200);
    call("/metrics", "get", "/metrics", &[auth], b"", 200);
    call("/metrics", "get", "/metrics", &[], b"", 401);
    // A single node is in no cluster; tests/tests/http_health_metrics.rs checks the
    // cluster's answer against this document's ClusterNodes schema.
    call("/cluster/nodes", "get", "/cluster/nodes", &[auth], b"", 404);
    call("/cluster/nodes", "get", "/cluster/nodes", &[], b"", 401);
    let documented = spec.operations();
    assert_eq!(
        documented, exercised,
        "every documented operation is exercised"
    );
}
