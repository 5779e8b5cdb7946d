//! The HTTP API's /kv routes against a real kvd: JSON and raw values, binary keys, TTLs,
//! ETags and preconditions, idempotency keys, listing by prefix, and that HTTP and RESP
//! see the same store.

use kv_tests::http::{etag_version, expect_statuses, get, request, start_kvd};
use redis::Commands;

const JSON: (&str, &str) = ("content-type", "application/json");

#[test]
fn put_get_delete_with_json_and_raw_bodies() {
    let (_k, port) = start_kvd(&[]);
    let put = request(
        port,
        "PUT",
        "/kv/greeting",
        &[JSON],
        br#"{"value":"hello"}"#,
    );
    assert_eq!(put.status, 200, "{put:?}");
    let version = put.json()["version"].as_u64().expect("version");
    assert_eq!(etag_version(&put), version);

    let got = get(port, "/kv/greeting");
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["value"], "hello");
    assert_eq!(got.json()["key"], "greeting");
    assert_eq!(got.json()["version"].as_u64(), Some(version));
    assert_eq!(etag_version(&got), version);

    // Binary key and value, raw both ways.
    let raw_value = [0u8, 255, 10, 13, 0x80];
    let put = request(
        port,
        "PUT",
        "/kv/bin%00%FF%2Fkey",
        &[("content-type", "application/octet-stream")],
        &raw_value,
    );
    assert_eq!(put.status, 200, "{put:?}");
    let raw = request(
        port,
        "GET",
        "/kv/bin%00%FF%2Fkey",
        &[("accept", "application/octet-stream")],
        b"",
    );
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("application/octet-stream"));
    assert_eq!(raw.body, raw_value);
    let as_json = get(port, "/kv/bin%00%FF%2Fkey").json();
    assert_eq!(as_json["key_base64"], "YmluAP8va2V5");
    assert_eq!(as_json["value_base64"], "AP8KDYA=");

    assert_eq!(
        request(port, "DELETE", "/kv/greeting", &[], b"").status,
        204
    );
    let gone = get(port, "/kv/greeting");
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["code"], "not_found");
    assert_eq!(
        request(port, "DELETE", "/kv/greeting", &[], b"").status,
        404
    );
}

#[test]
fn http_and_resp_share_keys_and_versions() {
    let (k, port) = start_kvd(&[]);
    let mut c = k.client();
    let _: () = c.set("from-resp", "r").unwrap();
    let got = get(port, "/kv/from-resp");
    assert_eq!(got.json()["value"], "r");
    let (version, value): (u64, String) = redis::cmd("GETWITHETAG")
        .arg("from-resp")
        .query(&mut c)
        .unwrap();
    assert_eq!((etag_version(&got), value.as_str()), (version, "r"));

    let put = request(port, "PUT", "/kv/from-http", &[], b"h");
    assert_eq!(put.status, 200);
    let v: String = c.get("from-http").unwrap();
    assert_eq!(v, "h");

    // Another database through ?db=.
    assert_eq!(request(port, "PUT", "/kv/k?db=3", &[], b"in3").status, 200);
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let v: String = c.get("k").unwrap();
    assert_eq!(v, "in3");
    assert_eq!(get(port, "/kv/k").status, 404);
}

#[test]
fn ttl_from_json_or_query_sets_an_expiry() {
    let (k, port) = start_kvd(&[]);
    let mut c = k.client();
    let put = request(
        port,
        "PUT",
        "/kv/t1",
        &[JSON],
        br#"{"value":"v","ttl_ms":100000}"#,
    );
    assert_eq!(put.status, 200, "{put:?}");
    let pttl: i64 = c.pttl("t1").unwrap();
    assert!(pttl > 0 && pttl <= 100_000, "pttl {pttl}");
    assert_eq!(
        request(port, "PUT", "/kv/t2?ttl_ms=200000", &[], b"v").status,
        200
    );
    let pttl: i64 = c.pttl("t2").unwrap();
    assert!(pttl > 100_000 && pttl <= 200_000, "pttl {pttl}");
    let zero = request(
        port,
        "PUT",
        "/kv/t3",
        &[JSON],
        br#"{"value":"v","ttl_ms":0}"#,
    );
    assert_eq!(zero.status, 400);
    assert!(zero.json()["message"]
        .as_str()
        .unwrap()
        .contains("invalid expire time"));
}

#[test]
fn etags_make_writes_conditional() {
    let (_k, port) = start_kvd(&[]);
    // If-None-Match: * creates only.
    let created = request(port, "PUT", "/kv/doc", &[("if-none-match", "*")], b"v1");
    assert_eq!(created.status, 201, "{created:?}");
    let v1 = etag_version(&created);
    let again = request(port, "PUT", "/kv/doc", &[("if-none-match", "*")], b"other");
    assert_eq!(again.status, 412);
    assert_eq!(etag_version(&again), v1);
    assert_eq!(again.json()["code"], "precondition_failed");

    // If-Match with the current version writes; with an old one, 412 and the current ETag.
    let tag1 = format!("\"{v1}\"");
    let updated = request(port, "PUT", "/kv/doc", &[("if-match", &tag1)], b"v2");
    assert_eq!(updated.status, 200, "{updated:?}");
    let v2 = etag_version(&updated);
    assert!(v2 > v1);
    let stale = request(port, "PUT", "/kv/doc", &[("if-match", &tag1)], b"lost");
    assert_eq!(stale.status, 412);
    assert_eq!(etag_version(&stale), v2);
    assert_eq!(get(port, "/kv/doc").json()["value"], "v2");
    for never in ["W/\"1\"", "\"0\"", "\"abc\""] {
        let r = request(port, "PUT", "/kv/doc", &[("if-match", never)], b"lost");
        assert_eq!((r.status, etag_version(&r)), (412, v2), "If-Match {never}");
    }

    // GET with If-None-Match: 304 while unchanged.
    let tag2 = format!("\"{v2}\"");
    let not_modified = request(port, "GET", "/kv/doc", &[("if-none-match", &tag2)], b"");
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(etag_version(&not_modified), v2);
    expect_statuses(
        port,
        &[
            ("GET", "/kv/doc", &[("if-none-match", &tag1)], 200),
            // If-Match: * needs the key.
            ("PUT", "/kv/missing", &[("if-match", "*")], 412),
        ],
    );
    // On a missing key any If-Match fails, with no ETag.
    let missing = request(port, "PUT", "/kv/missing", &[("if-match", "\"5\"")], b"x");
    assert_eq!(missing.status, 412);
    assert_eq!(missing.header("etag"), None);
    assert_eq!(get(port, "/kv/missing").status, 404);

    expect_statuses(
        port,
        &[
            ("DELETE", "/kv/doc", &[("if-match", &tag1)], 412),
            ("DELETE", "/kv/doc", &[("if-match", &tag2)], 204),
            ("DELETE", "/kv/doc", &[("if-match", "*")], 412),
        ],
    );
}

#[test]
fn an_idempotency_key_applies_a_write_once() {
    let (k, port) = start_kvd(&[]);
    let key = ("idempotency-key", "req-1");
    let first = request(port, "PUT", "/kv/once", &[key], b"first");
    assert_eq!(first.status, 200, "{first:?}");
    let retry = request(port, "PUT", "/kv/once", &[key], b"second");
    assert_eq!(retry.status, 200, "{retry:?}");
    assert_eq!(etag_version(&retry), etag_version(&first));
    assert_eq!(get(port, "/kv/once").json()["value"], "first");
    let mut c = k.client();
    let info: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    assert_eq!(
        kv_tests::info_field(&info, "idempotent_replays").as_deref(),
        Some("1")
    );
    // A delete under a new key runs; its retry replays the first answer.
    let del = ("idempotency-key", "req-2");
    assert_eq!(request(port, "DELETE", "/kv/once", &[del], b"").status, 204);
    assert_eq!(request(port, "DELETE", "/kv/once", &[del], b"").status, 204);
}

#[test]
fn listing_pages_through_a_prefix() {
    let (k, port) = start_kvd(&[]);
    let mut c = k.client();
    for i in 0..25 {
        let _: () = c.set(format!("p:{i}"), i).unwrap();
    }
    for i in 0..5 {
        let _: () = c.set(format!("q:{i}"), i).unwrap();
    }
    let _: () = c.set("a*b", 1).unwrap();
    let _: () = c.set("axb", 1).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let path = match &cursor {
            Some(cur) => format!("/kv?prefix=p%3A&limit=10&cursor={cur}"),
            None => "/kv?prefix=p%3A&limit=10".to_string(),
        };
        let page = get(port, &path);
        assert_eq!(page.status, 200, "{page:?}");
        let body = page.json();
        let keys = body["keys"].as_array().expect("keys");
        assert!(keys.len() <= 10, "page of {}", keys.len());
        for k in keys {
            let name = k["key"].as_str().expect("key").to_string();
            assert!(name.starts_with("p:"), "{name}");
            seen.insert(name);
        }
        cursor = body["next_cursor"].as_str().map(String::from);
        if cursor.is_none() {
            break;
        }
    }
    assert!(cursor.is_none(), "listing did not end");
    assert_eq!(seen.len(), 25);
    let star = get(port, "/kv?prefix=a*").json();
    assert_eq!(star["keys"], serde_json::json!([{ "key": "a*b" }]));
}
