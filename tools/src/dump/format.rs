//! The dump format (spec: docs/kvtool-dump.md): one JSON object per line, one line per
//! key, fields always in this order:
//!
//! ```text
//! {"db":N,"key":BYTES,"value":BYTES,"type":"string","expire_at_ms":MS|null,"version":SEQ}
//! {"db":N,"key":BYTES,"value":BYTES,"type":"string"|"tombstone","expire_at_ms":MS|null,"version":"MS.LOGICAL@NODE"}
//! BYTES := JSON string whose characters U+0000..U+00FF are the bytes, one per byte:
//!          printable ASCII as itself (`"` and `\` escaped), every other byte \u00XX
//! ```
//! A dump is plain ASCII, so it survives any tool that handles text, and the same bytes
//! always give the same line. Readers take any JSON spelling of those characters
//! (`\u0041` or `A`, field order free); a character above U+00FF is an error.
//!
//! The second form is a cluster node's directory: `version` is the cluster-wide version
//! (hybrid-logical-clock milliseconds, logical counter, coordinator node id in hex, as
//! kv-cluster's `Version` displays it), the same on every replica of the key, and deleted
//! keys appear as `"type":"tombstone"` with an empty value.

use kv_cluster::{NodeId, Version};
use kv_keyspace::ValueType;
use serde::Deserialize;
use std::fmt::Write;

/// One key of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Logical database (SELECT n).
    pub db: u32,
    /// The Redis key.
    pub key: Vec<u8>,
    /// The value (for strings: the string).
    pub value: Vec<u8>,
    /// The Redis type; `None` for a tombstone (a deleted key, in cluster dumps only).
    pub ty: Option<ValueType>,
    /// Absolute expiry, Unix milliseconds.
    pub expire_at_ms: Option<i64>,
    /// The key's version in the dumped directory; `None` when a hand-written line has none.
    /// Load ignores it: the loading kvd assigns its own.
    pub version: Option<DumpVersion>,
}

/// What `version` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpVersion {
    /// A single-node directory: the engine sequence number of the key's last write.
    Sequence(u64),
    /// A cluster node's directory: the replicated record's version, equal on every
    /// replica that holds the same write.
    Cluster(Version),
}

/// Spelling of a tombstone's `type`.
pub const TOMBSTONE_TYPE: &str = "tombstone";

/// `"string"`, ... or `"tombstone"`.
pub fn type_name(ty: Option<ValueType>) -> &'static str {
    ty.map_or(TOMBSTONE_TYPE, ValueType::name)
}

/// The fields as JSON gives them, before the byte strings are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    db: u32,
    key: String,
    value: String,
    #[serde(rename = "type")]
    ty: String,
    expire_at_ms: Option<i64>,
    #[serde(default)]
    version: Option<serde_json::Value>,
}

impl Record {
    /// Appends the record's line, with its `\n`, to `out`.
    pub fn write_line(&self, out: &mut String) {
        let _ = write!(out, "{{\"db\":{},\"key\":", self.db);
        push_bytes(out, &self.key);
        out.push_str(",\"value\":");
        push_bytes(out, &self.value);
        let _ = write!(
            out,
            ",\"type\":\"{}\",\"expire_at_ms\":",
            type_name(self.ty)
        );
        push_number(out, self.expire_at_ms);
        out.push_str(",\"version\":");
        match self.version {
            Some(DumpVersion::Sequence(seq)) => push_number(out, Some(seq)),
            Some(DumpVersion::Cluster(v)) => {
                let _ = write!(out, "\"{v}\"");
            }
            None => push_number::<u64>(out, None),
        }
        out.push_str("}\n");
    }

    /// Parses one line (without its `\n`); `Err` says what is wrong with it.
    pub fn parse_line(line: &str) -> Result<Record, String> {
        let raw: RawRecord = serde_json::from_str(line).map_err(|e| {
            // The position is within this one line: say "column", not "line 1 column".
            let column = format!(" at column {}", e.column());
            e.to_string()
                .replace(&format!(" at line 1 column {}", e.column()), &column)
        })?;
        let ty = match raw.ty.as_str() {
            TOMBSTONE_TYPE => None,
            name => Some(type_named(name).ok_or_else(|| format!("unknown type {name:?}"))?),
        };
        let version = match raw.version {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => Some(DumpVersion::Sequence(
                n.as_u64()
                    .ok_or("version must be a sequence number or a cluster version")?,
            )),
            Some(serde_json::Value::String(s)) => Some(DumpVersion::Cluster(
                parse_cluster_version(&s)
                    .ok_or_else(|| format!("version {s:?} is not MS.LOGICAL@NODE"))?,
            )),
            Some(_) => return Err("version must be a sequence number or a cluster version".into()),
        };
        if raw.expire_at_ms.is_some_and(|ms| ms <= 0) {
            return Err("expire_at_ms must be a positive Unix time in milliseconds".into());
        }
        if ty.is_none() && !raw.value.is_empty() {
            return Err("a tombstone has no value".into());
        }
        Ok(Record {
            db: raw.db,
            key: bytes_of(&raw.key).map_err(|e| format!("key: {e}"))?,
            value: bytes_of(&raw.value).map_err(|e| format!("value: {e}"))?,
            ty,
            expire_at_ms: raw.expire_at_ms,
            version,
        })
    }
}

/// Reads `MS.LOGICAL@NODE` (NODE in hex), the way kv-cluster's `Version` displays.
pub fn parse_cluster_version(s: &str) -> Option<Version> {
    let (clock, node) = s.split_once('@')?;
    let (ms, logical) = clock.split_once('.')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(ms) || !digits(logical) || node.is_empty() || node.len() > 16 {
        return None;
    }
    let ms: u64 = ms.parse().ok().filter(|&m: &u64| m < 1 << 48)?;
    let logical: u64 = logical.parse().ok().filter(|&l: &u64| l <= 0xffff)?;
    Some(Version {
        ts: ms << 16 | logical,
        node: NodeId(u64::from_str_radix(node, 16).ok()?),
    })
}

/// The type whose TYPE name is `name`.
fn type_named(name: &str) -> Option<ValueType> {
    (1..=u8::MAX)
        .map_while(ValueType::from_u8)
        .find(|t| t.name() == name)
}

fn push_number<T: std::fmt::Display>(out: &mut String, n: Option<T>) {
    match n {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
}

/// Appends `bytes` as a quoted JSON string, one character per byte.
pub fn push_bytes(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
    }
    out.push('"');
}

/// The bytes a decoded JSON string stands for: each character is one byte.
pub fn bytes_of(text: &str) -> Result<Vec<u8>, String> {
    text.chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| {
                format!("character {c:?} is not a byte (dump strings hold U+0000..U+00FF only)")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &[u8], value: &[u8], expire_at_ms: Option<i64>) -> Record {
        Record {
            db: 3,
            key: key.to_vec(),
            value: value.to_vec(),
            ty: Some(ValueType::String),
            expire_at_ms,
            version: Some(DumpVersion::Sequence(42)),
        }
    }

    #[test]
    fn every_byte_value_round_trips_as_ascii() {
        let all: Vec<u8> = (0..=255u8).collect();
        let r = record(&all, &all, Some(1_700_000_000_000));
        let mut line = String::new();
        r.write_line(&mut line);
        assert!(line
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) || b == b'\n'));
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(Record::parse_line(line.trim_end()), Ok(r));
    }

    #[test]
    fn the_line_is_exactly_as_documented() {
        let mut line = String::new();
        record(b"user:1", b"a\"b\\c\n\xe9", None).write_line(&mut line);
        assert_eq!(
            line,
            "{\"db\":3,\"key\":\"user:1\",\"value\":\"a\\\"b\\\\c\\u000a\\u00e9\",\
             \"type\":\"string\",\"expire_at_ms\":null,\"version\":42}\n"
        );
    }

    #[test]
    fn cluster_versions_and_tombstones_round_trip() {
        let version = Version {
            ts: 1_764_683_000_123 << 16 | 7,
            node: NodeId(0x91c3_86a4_369a_0d01),
        };
        let live = Record {
            version: Some(DumpVersion::Cluster(version)),
            ..record(b"k", b"v", None)
        };
        let dead = Record {
            ty: None,
            value: Vec::new(),
            ..live.clone()
        };
        let mut text = String::new();
        live.write_line(&mut text);
        dead.write_line(&mut text);
        assert_eq!(
            text,
            "{\"db\":3,\"key\":\"k\",\"value\":\"v\",\"type\":\"string\",\"expire_at_ms\":null,\
             \"version\":\"1764683000123.7@91c386a4369a0d01\"}\n\
             {\"db\":3,\"key\":\"k\",\"value\":\"\",\"type\":\"tombstone\",\"expire_at_ms\":null,\
             \"version\":\"1764683000123.7@91c386a4369a0d01\"}\n"
        );
        let back: Vec<Record> = text
            .lines()
            .map(|l| Record::parse_line(l).unwrap())
            .collect();
        assert_eq!(back, vec![live, dead]);
        assert_eq!(version.to_string(), "1764683000123.7@91c386a4369a0d01");
        for bad in ["1.2", "1@a", "x.1@a", "1.70000@a", "1.1@", "1.1@xyz"] {
            assert_eq!(parse_cluster_version(bad), None, "{bad}");
        }
        assert!(Record::parse_line(
            r#"{"db":0,"key":"k","value":"v","type":"tombstone","expire_at_ms":null}"#
        )
        .is_err());
    }

    #[test]
    fn readers_take_any_json_spelling_but_only_bytes() {
        let r = Record::parse_line(
            r#"{"type":"string","value":"\u0041é","key":"k","db":0,"expire_at_ms":null}"#,
        )
        .unwrap();
        assert_eq!((r.value, r.version), (b"A\xe9".to_vec(), None));
        for bad in [
            r#"{"db":0,"key":"€","value":"","type":"string","expire_at_ms":null}"#,
            r#"{"db":0,"key":"k","value":"","type":"blob","expire_at_ms":null}"#,
            r#"{"db":0,"key":"k","value":"","type":"string","expire_at_ms":0}"#,
            r#"{"db":-1,"key":"k","value":"","type":"string","expire_at_ms":null}"#,
            r#"{"db":0,"key":"k","value":"","type":"string","expire_at_ms":null,"ttl":1}"#,
            r#"{"db":0,"key":"k","type":"string","expire_at_ms":null}"#,
            r#"{"db":0,"key":"k","value":"","type":"string","#,
        ] {
            assert!(Record::parse_line(bad).is_err(), "{bad}");
        }
    }
}
