//! Key versions as HTTP entity tags (RFC 9110, section 8.8.3): the version of a key is
//! the engine sequence number of its last write (docs/versions-and-locks.md), sent as a
//! strong ETag `"<version>"`. Preconditions (`If-Match`, `If-None-Match`) are parsed
//! here; what they do is up to the command they pick.

use axum::http::{HeaderMap, HeaderValue};

/// The `ETag` header value of `version`.
pub fn header_value(version: u64) -> HeaderValue {
    // Digits and quotes are always a valid header value.
    HeaderValue::try_from(format!("\"{version}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// An `If-Match` / `If-None-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `*`: any current version.
    Any,
    /// A list of entity tags; each is a version, or `None` for a tag that names no
    /// version kvd ever gives out (not a number, or 0), which matches nothing.
    Tags(Vec<Tag>),
}

/// One entity tag of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// `W/` prefix.
    pub weak: bool,
    /// The version it names, if any.
    pub version: Option<u64>,
}

/// Reads header `name` as a condition; `Ok(None)` if absent, `Err` with the reason if
/// it is not a valid entity-tag list.
pub fn condition(headers: &HeaderMap, name: &str) -> Result<Option<Condition>, String> {
    let mut tags = Vec::new();
    let mut any = false;
    for value in headers.get_all(name) {
        let text = value
            .to_str()
            .map_err(|_| format!("{name} must be ASCII entity tags"))?;
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                any = true;
                continue;
            }
            let (weak, quoted) = match item.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, item),
            };
            let inner = quoted
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .ok_or_else(|| format!("{name}: entity tags are quoted, like \"42\" or *"))?;
            let version = inner.parse::<u64>().ok().filter(|v| *v > 0);
            tags.push(Tag { weak, version });
        }
    }
    Ok(match (any, tags.is_empty()) {
        (false, true) => None,
        (true, true) => Some(Condition::Any),
        (true, false) => return Err(format!("{name}: * cannot be combined with entity tags")),
        (false, false) => Some(Condition::Tags(tags)),
    })
}

impl Condition {
    /// Weak comparison (If-None-Match): true if a tag names `version`.
    pub fn matches_weakly(&self, version: u64) -> bool {
        match self {
            Condition::Any => true,
            Condition::Tags(tags) => tags.iter().any(|t| t.version == Some(version)),
        }
    }

    /// The one version a strong comparison (If-Match) can match, for commands that
    /// compare with a single version: `Ok(None)` if no tag can ever match (weak tags
    /// never match strongly), `Err` for a list of several versions.
    pub fn single_strong(&self) -> Result<Option<u64>, String> {
        let Condition::Tags(tags) = self else {
            return Ok(None);
        };
        let strong: Vec<u64> = tags
            .iter()
            .filter(|t| !t.weak)
            .filter_map(|t| t.version)
            .collect();
        match strong[..] {
            [] => Ok(None),
            [v] => Ok(Some(v)),
            _ => Err("If-Match with several entity tags is not supported; send one".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &'static str, v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn parses_star_lists_and_weak_tags() {
        let h = headers("if-match", "*");
        assert_eq!(condition(&h, "if-match"), Ok(Some(Condition::Any)));
        let h = headers("if-none-match", "\"5\", W/\"7\", \"x\"");
        let c = condition(&h, "if-none-match").unwrap().unwrap();
        assert!(c.matches_weakly(5) && c.matches_weakly(7) && !c.matches_weakly(6));
        assert!(c.single_strong().is_ok_and(|v| v == Some(5)));
        assert_eq!(condition(&HeaderMap::new(), "if-match"), Ok(None));
        assert!(condition(&headers("if-match", "5"), "if-match").is_err());
        assert!(condition(&headers("if-match", "*, \"5\""), "if-match").is_err());
        let zero = condition(&headers("if-match", "\"0\""), "if-match")
            .unwrap()
            .unwrap();
        assert_eq!(zero.single_strong(), Ok(None));
        let two = condition(&headers("if-match", "\"1\",\"2\""), "if-match")
            .unwrap()
            .unwrap();
        assert!(two.single_strong().is_err());
        assert_eq!(header_value(42), "\"42\"");
    }
}
