//! `GET /kv?prefix=&cursor=&limit=`: keys page by page, through SCAN with MATCH on the
//! escaped prefix (docs/http-api.md). SCAN examines COUNT keys per call and returns those
//! that match, so this runs it again from the returned cursor, with the count still
//! missing, until `limit` keys are found or the scan ends, at most [`MAX_SCAN_CALLS`]
//! times; a page may therefore hold fewer than `limit` keys before the end.

use super::body::put_bytes;
use super::error::ApiError;
use super::session::{Peer, Session};
use super::uri::{number_param, param, prefix_glob, query_pairs};
use crate::protocol::Reply;
use crate::state::Shared;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::{Extension, Json};
use bytes::Bytes;
use std::sync::Arc;

/// Keys per page when `limit` is not given.
const DEFAULT_LIMIT: u64 = 100;
/// Largest page: bounds the reply and the time one request holds the keyspace.
const MAX_LIMIT: u64 = 1000;
/// SCAN calls per page at most, so a sparse prefix cannot make one request walk the
/// whole keyspace.
const MAX_SCAN_CALLS: usize = 16;

/// GET /kv
pub async fn list(
    State(srv): State<Arc<Shared>>,
    Extension(peer): Extension<Peer>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = query_pairs(uri.query());
    let limit = number_param(&query, "limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let mut cursor = number_param(&query, "cursor")?.unwrap_or(0);
    let glob = prefix_glob(param(&query, "prefix").unwrap_or_default());
    let db = number_param(&query, "db")?;
    let mut session = Session::open(&srv, peer, &headers).await?;
    session.select(db).await?;
    let mut keys: Vec<Bytes> = Vec::new();
    for _ in 0..MAX_SCAN_CALLS {
        let want = limit - keys.len() as u64;
        let args = vec![
            Bytes::from_static(b"SCAN"),
            Bytes::from(cursor.to_string()),
            Bytes::from_static(b"MATCH"),
            glob.clone(),
            Bytes::from_static(b"COUNT"),
            Bytes::from(want.to_string()),
        ];
        let (next, found) = scan_reply(session.run(args).await)?;
        keys.extend(found);
        cursor = next;
        if cursor == 0 || keys.len() as u64 >= limit {
            break;
        }
    }
    let items: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            let mut o = serde_json::Map::new();
            put_bytes(&mut o, "key", k);
            serde_json::Value::Object(o)
        })
        .collect();
    let next = (cursor != 0).then(|| cursor.to_string());
    Ok(Json(
        serde_json::json!({ "keys": items, "next_cursor": next }),
    ))
}

/// SCAN's reply: [next-cursor, [key, ...]].
fn scan_reply(reply: Reply) -> Result<(u64, Vec<Bytes>), ApiError> {
    if let Reply::Array(items) = &reply {
        if let [Reply::Bulk(cursor), Reply::Array(found)] = &items[..] {
            let next = std::str::from_utf8(cursor)
                .ok()
                .and_then(|c| c.parse::<u64>().ok());
            let keys: Option<Vec<Bytes>> = found
                .iter()
                .map(|k| match k {
                    Reply::Bulk(b) => Some(b.clone()),
                    _ => None,
                })
                .collect();
            if let (Some(next), Some(keys)) = (next, keys) {
                return Ok((next, keys));
            }
        }
    }
    Err(ApiError::from_reply(reply))
}
