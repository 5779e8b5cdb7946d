//! `GET`, `PUT` and `DELETE /kv/{key}` (docs/http-api.md): each request picks the kvd
//! command that already implements it (GETWITHETAG, SET ... WITHETAG, SETIFMATCH, DEL,
//! DELIFMATCH, IDEMPOTENT) and runs it through the RESP path; this file only maps HTTP
//! headers to arguments and replies to statuses.

use super::body::{new_value, put_bytes, read_limited, NewValue};
use super::error::ApiError;
use super::etag::{self, Condition};
use super::session::{Peer, Session};
use super::uri::{key_of, number_param, param, query_pairs};
use crate::protocol::{Reply, Version};
use crate::state::Shared;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use std::sync::Arc;

/// Longest accepted `Idempotency-Key` (IDEMPOTENT's request id limit).
const MAX_IDEMPOTENCY_KEY: usize = 256;

/// A request on one key, with its session open and database selected.
struct KeyRequest {
    session: Session,
    key: Bytes,
    query: Vec<(String, Vec<u8>)>,
}

async fn open(
    srv: &Arc<Shared>,
    peer: Peer,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<KeyRequest, ApiError> {
    let key = key_of(uri.path())?;
    let query = query_pairs(uri.query());
    let db = number_param(&query, "db")?;
    let mut session = Session::open(srv, peer, headers).await?;
    session.consistency(param(&query, "consistency"))?;
    session.select(db).await?;
    Ok(KeyRequest {
        session,
        key,
        query,
    })
}

fn word(w: &'static str) -> Bytes {
    Bytes::from_static(w.as_bytes())
}

/// A version in a reply (resolved, or an integer from a replayed IDEMPOTENT reply);
/// `None` for 0 (no such key) and anything else.
fn version_of(reply: &Reply) -> Option<u64> {
    match reply {
        Reply::Version(Version::Committed(v)) => Some(*v),
        Reply::Int(n) if *n > 0 => Some(*n as u64),
        _ => None,
    }
}

/// The key's value and version, or `None` if it does not exist.
async fn read(req: &mut KeyRequest) -> Result<Option<(Bytes, u64)>, ApiError> {
    let reply = req
        .session
        .run(vec![word("GETWITHETAG"), req.key.clone()])
        .await;
    match reply {
        Reply::Nil => Ok(None),
        Reply::Array(ref items) => match (items.first().and_then(version_of), items.get(1)) {
            (Some(v), Some(Reply::Bulk(value))) => Ok(Some((value.clone(), v))),
            _ => Err(ApiError::from_reply(reply)),
        },
        other => Err(ApiError::from_reply(other)),
    }
}

/// 412 with the key's current version, read now.
async fn precondition_failed(req: &mut KeyRequest) -> ApiError {
    match read(req).await {
        Ok(current) => ApiError::precondition_failed(current.map(|(_, v)| v)),
        Err(e) => e,
    }
}

fn wants_raw(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/octet-stream"))
}

/// GET /kv/{key}
pub async fn get(
    State(srv): State<Arc<Shared>>,
    Extension(peer): Extension<Peer>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let if_none_match =
        etag::condition(&headers, "if-none-match").map_err(ApiError::bad_request)?;
    let mut req = open(&srv, peer, &uri, &headers).await?;
    let Some((value, version)) = read(&mut req).await? else {
        return Err(ApiError::not_found());
    };
    let tag = [(header::ETAG, etag::header_value(version))];
    if if_none_match.is_some_and(|c| c.matches_weakly(version)) {
        return Ok((StatusCode::NOT_MODIFIED, tag).into_response());
    }
    if wants_raw(&headers) {
        let kind = (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        return Ok((tag, [kind], value).into_response());
    }
    let mut object = serde_json::Map::new();
    put_bytes(&mut object, "key", &req.key);
    put_bytes(&mut object, "value", &value);
    object.insert("version".into(), version.into());
    Ok((tag, Json(serde_json::Value::Object(object))).into_response())
}

/// `IDEMPOTENT <id>` in front of a write when the request carries `Idempotency-Key`.
fn idempotent(headers: &HeaderMap, mut args: Vec<Bytes>) -> Result<Vec<Bytes>, ApiError> {
    let Some(id) = headers.get("idempotency-key") else {
        return Ok(args);
    };
    let id = id.as_bytes();
    if id.is_empty() || id.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 256 bytes",
        ));
    }
    args.splice(0..0, [word("IDEMPOTENT"), Bytes::copy_from_slice(id)]);
    Ok(args)
}

/// The write preconditions of a request: at most one of If-Match and If-None-Match: *.
fn write_condition(headers: &HeaderMap) -> Result<WriteCondition, ApiError> {
    let if_match = etag::condition(headers, "if-match").map_err(ApiError::bad_request)?;
    let if_none = etag::condition(headers, "if-none-match").map_err(ApiError::bad_request)?;
    match (if_match, if_none) {
        (None, None) => Ok(WriteCondition::None),
        (Some(Condition::Any), None) => Ok(WriteCondition::Exists),
        (Some(c), None) => Ok(match c.single_strong().map_err(ApiError::bad_request)? {
            Some(v) => WriteCondition::Version(v),
            None => WriteCondition::Impossible,
        }),
        (None, Some(Condition::Any)) => Ok(WriteCondition::Absent),
        (None, Some(_)) => Err(ApiError::bad_request(
            "on writes, If-None-Match only takes * (create only)",
        )),
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "If-Match and If-None-Match cannot be combined",
        )),
    }
}

/// What a write requires of the key's current state.
enum WriteCondition {
    None,
    /// If-Match: * (the key exists).
    Exists,
    /// If-None-Match: * (the key does not exist).
    Absent,
    /// If-Match: "<version>".
    Version(u64),
    /// If-Match with tags that name no version (weak, 0, not numbers): never holds.
    Impossible,
}

/// The command a PUT runs.
fn put_command(key: &Bytes, new: &NewValue, cond: &WriteCondition) -> Vec<Bytes> {
    let mut args = match cond {
        WriteCondition::Version(v) => vec![
            word("SETIFMATCH"),
            key.clone(),
            new.value.clone(),
            Bytes::from(v.to_string()),
        ],
        _ => vec![word("SET"), key.clone(), new.value.clone()],
    };
    match cond {
        WriteCondition::Exists => args.push(word("XX")),
        WriteCondition::Absent => args.push(word("NX")),
        _ => {}
    }
    if let Some(ttl) = new.ttl_ms {
        args.extend([word("PX"), Bytes::from(ttl.to_string())]);
    }
    if !matches!(cond, WriteCondition::Version(_)) {
        args.push(word("WITHETAG"));
    }
    args
}

fn written(status: StatusCode, version: u64) -> Response {
    let tag = [(header::ETAG, etag::header_value(version))];
    (status, tag, Json(serde_json::json!({ "version": version }))).into_response()
}

/// PUT /kv/{key}
pub async fn put(
    State(srv): State<Arc<Shared>>,
    Extension(peer): Extension<Peer>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let cond = write_condition(&headers)?;
    let limit = srv.config.read().http.max_body_bytes;
    let body = read_limited(&headers, body, limit).await?;
    let mut req = open(&srv, peer, &uri, &headers).await?;
    let new = new_value(&headers, body, number_param(&req.query, "ttl_ms")?)?;
    if matches!(cond, WriteCondition::Impossible) {
        return Err(precondition_failed(&mut req).await);
    }
    let args = idempotent(&headers, put_command(&req.key, &new, &cond))?;
    let reply = req.session.run(args).await;
    match (&cond, reply) {
        // SETIFMATCH: [new-version, nil] | [current-version, current-value]
        (WriteCondition::Version(_), Reply::Array(items)) => {
            let version = items.first().and_then(version_of);
            match (version, items.get(1)) {
                (Some(v), Some(Reply::Nil)) => Ok(written(StatusCode::OK, v)),
                (current, _) => Err(ApiError::precondition_failed(current)),
            }
        }
        (_, reply @ Reply::Version(_)) | (_, reply @ Reply::Int(_)) => {
            let v = version_of(&reply).ok_or_else(|| ApiError::from_reply(reply))?;
            let status = match cond {
                WriteCondition::Absent => StatusCode::CREATED,
                _ => StatusCode::OK,
            };
            Ok(written(status, v))
        }
        // NX or XX did not hold.
        (WriteCondition::Absent | WriteCondition::Exists, Reply::Nil) => {
            Err(precondition_failed(&mut req).await)
        }
        (_, other) => Err(ApiError::from_reply(other)),
    }
}

/// DELETE /kv/{key}
pub async fn delete(
    State(srv): State<Arc<Shared>>,
    Extension(peer): Extension<Peer>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cond = write_condition(&headers)?;
    let mut req = open(&srv, peer, &uri, &headers).await?;
    let args = match cond {
        WriteCondition::None | WriteCondition::Exists => vec![word("DEL"), req.key.clone()],
        WriteCondition::Version(v) => vec![
            word("DELIFMATCH"),
            req.key.clone(),
            Bytes::from(v.to_string()),
        ],
        WriteCondition::Absent => {
            return Err(ApiError::bad_request(
                "If-None-Match: * makes no sense on DELETE",
            ))
        }
        WriteCondition::Impossible => return Err(precondition_failed(&mut req).await),
    };
    let args = idempotent(&headers, args)?;
    match req.session.run(args).await {
        Reply::Int(1) => Ok(StatusCode::NO_CONTENT.into_response()),
        Reply::Int(0) if matches!(cond, WriteCondition::Exists) => {
            Err(ApiError::precondition_failed(None))
        }
        Reply::Int(0) => Err(ApiError::not_found()),
        // DELIFMATCH: [1, 0] deleted | [0, current-version] (0 = absent)
        Reply::Array(items) => match (items.first(), items.get(1)) {
            (Some(Reply::Int(1)), _) => Ok(StatusCode::NO_CONTENT.into_response()),
            (_, current) => Err(ApiError::precondition_failed(current.and_then(version_of))),
        },
        other => Err(ApiError::from_reply(other)),
    }
}
