//! Request bodies: read up to `http-max-body-bytes` (413 past it, however the body is
//! framed), and the value of a PUT, as JSON or raw bytes. In JSON, a byte string field
//! `x` is `"x": "<text>"` when it is UTF-8 and `"x_base64": "<base64>"` otherwise, so
//! every value and key round-trips.

use super::error::ApiError;
use axum::body::Body;
use axum::http::{header, HeaderMap};
use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Deserialize;

/// How long a client may take to send a body: one that trickles in holds a connection
/// and up to `http-max-body-bytes` of memory meanwhile.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads the whole body, refusing one larger than `limit` bytes without reading it all.
pub async fn read_limited(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    let Ok(collected) = tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await else {
        return Err(ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            ),
        ));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(e) => Err(ApiError::bad_request(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

/// What a PUT writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewValue {
    /// The bytes.
    pub value: Bytes,
    /// Time to live in milliseconds, if any.
    pub ttl_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPut {
    value: Option<String>,
    value_base64: Option<String>,
    ttl_ms: Option<u64>,
}

/// True if the request says its body is JSON.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || m.ends_with("+json")
        })
}

/// The value of a PUT: a JSON body `{"value"|"value_base64", "ttl_ms"?}` when the
/// Content-Type is JSON, else the raw body with `ttl_ms` from the query string.
pub fn new_value(
    headers: &HeaderMap,
    body: Bytes,
    query_ttl: Option<u64>,
) -> Result<NewValue, ApiError> {
    if !is_json(headers) {
        return Ok(NewValue {
            value: body,
            ttl_ms: query_ttl,
        });
    }
    let parsed: JsonPut = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let value = match (parsed.value, parsed.value_base64) {
        (Some(v), None) => Bytes::from(v),
        (None, Some(b)) => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|e| ApiError::bad_request(format!("value_base64 is not base64: {e}")))?,
        ),
        _ => {
            return Err(ApiError::bad_request(
                "the JSON body needs exactly one of \"value\" and \"value_base64\"",
            ))
        }
    };
    Ok(NewValue {
        value,
        ttl_ms: parsed.ttl_ms.or(query_ttl),
    })
}

/// Puts byte string `bytes` into a JSON object as `name` (UTF-8) or `name_base64`.
pub fn put_bytes(
    object: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    bytes: &[u8],
) {
    match std::str::from_utf8(bytes) {
        Ok(text) => object.insert(name.to_string(), text.into()),
        Err(_) => object.insert(
            format!("{name}_base64"),
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into(),
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        h
    }

    #[test]
    fn json_and_raw_values() {
        let v = new_value(
            &json_headers(),
            Bytes::from_static(br#"{"value":"x","ttl_ms":5}"#),
            None,
        )
        .unwrap();
        assert_eq!((v.value, v.ttl_ms), (Bytes::from_static(b"x"), Some(5)));
        let v = new_value(
            &json_headers(),
            Bytes::from_static(br#"{"value_base64":"/w=="}"#),
            None,
        )
        .unwrap();
        assert_eq!(v.value, Bytes::from_static(b"\xff"));
        for bad in [
            &br#"{"value":1}"#[..],
            br#"{}"#,
            br#"{"value":"a","x":1}"#,
            b"nope",
        ] {
            assert!(new_value(&json_headers(), Bytes::copy_from_slice(bad), None).is_err());
        }
        let raw = new_value(&HeaderMap::new(), Bytes::from_static(b"{raw"), Some(9)).unwrap();
        assert_eq!(
            (raw.value, raw.ttl_ms),
            (Bytes::from_static(b"{raw"), Some(9))
        );
        let mut o = serde_json::Map::new();
        put_bytes(&mut o, "key", b"\xff");
        put_bytes(&mut o, "value", b"ok");
        assert_eq!(
            serde_json::Value::Object(o),
            serde_json::json!({"key_base64": "/w==", "value": "ok"})
        );
    }
}
