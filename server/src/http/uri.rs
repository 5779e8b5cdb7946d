//! Keys and query parameters from request URIs. Keys are binary-safe: the path segment
//! after `/kv/` is percent-decoded to bytes, never through UTF-8; so are query values.

use super::error::ApiError;
use bytes::Bytes;
use percent_encoding::percent_decode;

/// The key named by a `/kv/{key}` path (the raw path, still percent-encoded). Everything
/// after `/kv/` is the key, slashes included.
pub fn key_of(path: &str) -> Result<Bytes, ApiError> {
    let raw = path
        .strip_prefix("/kv/")
        .ok_or_else(|| ApiError::bad_request("the key goes in the path: /kv/{key}"))?;
    if raw.is_empty() {
        return Err(ApiError::bad_request("empty key: the path is /kv/{key}"));
    }
    Ok(Bytes::from(
        percent_decode(raw.as_bytes()).collect::<Vec<u8>>(),
    ))
}

/// The query string's parameters, decoded as HTML forms encode them (`+` is a space).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let decode = |s: &str| -> Vec<u8> {
        let plus_as_space = s.replace('+', " ");
        percent_decode(plus_as_space.as_bytes()).collect()
    };
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (
                String::from_utf8_lossy(&decode(name)).into_owned(),
                decode(value),
            )
        })
        .collect()
}

/// The last value of parameter `name`, if given.
pub fn param<'a>(pairs: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    pairs
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| &v[..])
}

/// Parameter `name` as a number, if given; 400 if it is not one.
pub fn number_param(pairs: &[(String, Vec<u8>)], name: &str) -> Result<Option<u64>, ApiError> {
    param(pairs, name)
        .map(|v| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("query parameter '{name}' must be a number"))
                })
        })
        .transpose()
}

/// `prefix` as a SCAN MATCH glob: its glob characters escaped, then `*`.
pub fn prefix_glob(prefix: &[u8]) -> Bytes {
    let mut glob = Vec::with_capacity(prefix.len() + 1);
    for &b in prefix {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            glob.push(b'\\');
        }
        glob.push(b);
    }
    glob.push(b'*');
    Bytes::from(glob)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::glob::glob_match;

    #[test]
    fn keys_are_percent_decoded_bytes() {
        assert_eq!(key_of("/kv/a%20b/c").unwrap(), Bytes::from_static(b"a b/c"));
        assert_eq!(
            key_of("/kv/%FF%00").unwrap(),
            Bytes::from_static(b"\xff\x00")
        );
        assert!(key_of("/kv/").is_err());
    }

    #[test]
    fn query_values_decode_and_prefixes_escape() {
        let q = query_pairs(Some("prefix=a%2Ab+c&limit=5&limit=7&flag"));
        assert_eq!(param(&q, "prefix"), Some(&b"a*b c"[..]));
        assert_eq!(number_param(&q, "limit").unwrap(), Some(7));
        assert_eq!(param(&q, "flag"), Some(&b""[..]));
        assert!(number_param(&query_pairs(Some("limit=x")), "limit").is_err());
        let g = prefix_glob(b"a*[");
        assert!(glob_match(&g, b"a*[zz", false));
        assert!(!glob_match(&g, b"abc", false));
    }
}
