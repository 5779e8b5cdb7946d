//! Errors of the HTTP API: a JSON body `{"code", "message"}` with a stable code and the
//! status that fits (docs/http-api.md, "Errors"). Command errors keep their Redis text
//! as the message; their first word picks the status.

use super::etag;
use crate::protocol::Reply;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`not_found`, `precondition_failed`, ...).
    pub code: &'static str,
    /// What happened, for a person.
    pub message: String,
    /// The key's current version, sent as `ETag` (412 answers).
    pub etag: Option<u64>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            etag: None,
        }
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404: no such key.
    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such key")
    }

    /// 412: a precondition (`If-Match`, `If-None-Match: *`) does not hold; `current` is
    /// the key's version (`None`: the key does not exist).
    pub fn precondition_failed(current: Option<u64>) -> ApiError {
        let message = match current {
            Some(v) => format!("the key's version is {v}"),
            None => "the key does not exist".to_string(),
        };
        ApiError {
            etag: current,
            ..ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                message,
            )
        }
    }

    /// 413: the body is larger than `http-max-body-bytes`.
    pub fn too_large(limit: u64) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds http-max-body-bytes ({limit} bytes)"),
        )
    }

    /// 503: the server cannot serve now (shutting down, full, storage failing).
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// The status and code for a command's error reply (its full Redis text).
    pub fn from_command(text: &str) -> ApiError {
        let word = text.split(' ').next().unwrap_or_default();
        let (status, code) = match word {
            "NOAUTH" | "WRONGPASS" => (StatusCode::UNAUTHORIZED, "unauthorized"),
            "NOPERM" => (StatusCode::FORBIDDEN, "forbidden"),
            "WRONGTYPE" => (StatusCode::CONFLICT, "wrong_type"),
            // Writes suspended after a disk error; the cluster without quorum.
            "MISCONF" | "CLUSTERDOWN" | "TRYAGAIN" | "TIMEOUT" | "PARTIAL" => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            "ERR"
                if text.starts_with("ERR storage error")
                    || text.starts_with("ERR cluster storage error")
                    || text.starts_with("ERR max number of clients") =>
            {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            "ERR" if text.contains("is not available in cluster mode") => {
                (StatusCode::NOT_IMPLEMENTED, "not_implemented")
            }
            "ERR" if text.starts_with("ERR internal error") => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            "ERR" => (StatusCode::BAD_REQUEST, "bad_request"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, text)
    }
}

impl ApiError {
    /// The error for a reply a request did not expect: a command error, or (a bug) a
    /// reply of another shape.
    pub fn from_reply(reply: Reply) -> ApiError {
        match reply {
            Reply::Error(e) => ApiError::from_command(&e),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("unexpected reply {other:?}"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code, "message": self.message });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(v) = self.etag {
            headers.insert(header::ETAG, etag::header_value(v));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"kvd\", Bearer realm=\"kvd\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_errors_map_to_statuses() {
        let status = |t: &str| ApiError::from_command(t).status;
        assert_eq!(status("NOAUTH Authentication required."), 401);
        assert_eq!(status("NOPERM this user has no permissions"), 403);
        assert_eq!(status("WRONGTYPE Operation against a key"), 409);
        assert_eq!(status("MISCONF Errors writing to disk"), 503);
        assert_eq!(status("CLUSTERDOWN the cluster has no layout yet"), 503);
        assert_eq!(status("ERR storage error: io"), 503);
        assert_eq!(status("ERR invalid expire time in 'set' command"), 400);
        assert_eq!(status("ERR internal error"), 500);
        assert_eq!(
            status("ERR 'setifmatch' is not available in cluster mode yet"),
            501
        );
    }
}
