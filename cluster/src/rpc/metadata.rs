//! Bus credentials in gRPC metadata (HTTP/2 headers), both directions.

use super::auth::{Credentials, MAC_LEN};
use crate::NodeId;
use tonic::metadata::{MetadataMap, MetadataValue};

const NODE: &str = "kvd-node";
const CLUSTER: &str = "kvd-cluster";
const TS: &str = "kvd-ts";
const MAC: &str = "kvd-mac";
const METHOD: &str = "kvd-method";
const REPLY_MAC: &str = "kvd-reply-mac";

fn insert(map: &mut MetadataMap, key: &'static str, value: &str) {
    // Only hex digits, decimal digits and cluster ids (checked to be visible ASCII when
    // made) go here; a value a header cannot hold is left out and the peer refuses the
    // request as malformed, which names the problem.
    if let Ok(v) = MetadataValue::try_from(value) {
        map.insert(key, v);
    }
}

/// Puts a request's credentials (signed for `method`) into its metadata. The method
/// travels too, so the server can check the MAC before it decodes the body, and then
/// that the body is for the method signed.
pub(crate) fn write_credentials(map: &mut MetadataMap, method: &str, c: &Credentials) {
    insert(map, METHOD, method);
    insert(map, NODE, &c.node.to_string());
    if let Some(id) = &c.cluster_id {
        insert(map, CLUSTER, id);
    }
    insert(map, TS, &c.ts_ms.to_string());
    if let Some(mac) = &c.mac {
        insert(map, MAC, &hex(mac));
    }
}

/// Reads a request's method and credentials; an error names what is missing or
/// malformed.
pub(crate) fn read_credentials(map: &MetadataMap) -> Result<(String, Credentials), String> {
    let get = |k: &str| -> Result<Option<&str>, String> {
        map.get(k)
            .map(|v| v.to_str().map_err(|_| format!("{k} is not text")))
            .transpose()
    };
    let method = get(METHOD)?
        .ok_or_else(|| format!("missing {METHOD}"))?
        .to_string();
    let node = get(NODE)?
        .and_then(NodeId::parse)
        .ok_or_else(|| format!("missing or malformed {NODE}"))?;
    let cluster_id = get(CLUSTER)?.map(str::to_owned);
    let ts_ms = get(TS)?
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| format!("missing or malformed {TS}"))?;
    let mac = match get(MAC)? {
        None => None,
        Some(h) => Some(unhex(h).ok_or_else(|| format!("malformed {MAC}"))?),
    };
    Ok((
        method,
        Credentials {
            node,
            cluster_id,
            ts_ms,
            mac,
        },
    ))
}

/// Puts a reply MAC into a response's metadata.
pub(crate) fn write_reply_mac(map: &mut MetadataMap, mac: &[u8; MAC_LEN]) {
    insert(map, REPLY_MAC, &hex(mac));
}

/// Reads a reply MAC (`None` if absent or malformed; the caller refuses either).
pub(crate) fn read_reply_mac(map: &MetadataMap) -> Option<[u8; MAC_LEN]> {
    map.get(REPLY_MAC)?.to_str().ok().and_then(unhex)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; MAC_LEN]> {
    if s.len() != 2 * MAC_LEN {
        return None;
    }
    let mut out = [0u8; MAC_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_through_metadata() {
        let c = Credentials {
            node: NodeId(42),
            cluster_id: Some("c-1".into()),
            ts_ms: 123,
            mac: Some([0xab; MAC_LEN]),
        };
        let mut map = MetadataMap::new();
        write_credentials(&mut map, "Read", &c);
        assert_eq!(read_credentials(&map), Ok(("Read".to_string(), c)));
        let mut bare = MetadataMap::new();
        assert!(read_credentials(&bare).is_err());
        bare.insert(METHOD, MetadataValue::from_static("Read"));
        bare.insert(NODE, MetadataValue::from_static("nope"));
        assert!(read_credentials(&bare).unwrap_err().contains(NODE));
    }

    #[test]
    fn unhex_refuses_bad_input() {
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"g".repeat(64)), None);
        assert_eq!(unhex(&"0f".repeat(32)), Some([0x0f; MAC_LEN]));
    }
}
