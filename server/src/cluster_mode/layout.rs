//! CLUSTER LAYOUT: layout administration on the ring (docs/cluster.md, "Changing the
//! layout"). The node parses the subcommand; the cluster crate stages, plans and commits.
//!
//! ```text
//! CLUSTER LAYOUT SHOW
//! CLUSTER LAYOUT STATUS
//! CLUSTER LAYOUT ASSIGN <node> [ZONE <zone>] [CAPACITY <n>]
//! CLUSTER LAYOUT REMOVE <node>
//! CLUSTER LAYOUT REPLACE <node> <new-node>
//! CLUSTER LAYOUT REVERT
//! CLUSTER LAYOUT PLAN
//! CLUSTER LAYOUT APPLY <version>
//! ```

use super::ring_error;
use crate::protocol::Reply;
use bytes::Bytes;
use kv_cluster::ring::{LayoutRequest, Ring};
use std::sync::Arc;

/// Runs CLUSTER LAYOUT; replies with the report text.
pub async fn run(ring: &Arc<dyn Ring>, a: &[Bytes]) -> Reply {
    let request = match parse(&a[2..]) {
        Ok(r) => r,
        Err(why) => return Reply::error(why),
    };
    match ring.layout_admin(request).await {
        Ok(text) => Reply::Bulk(Bytes::from(text)),
        Err(e) => ring_error(&e),
    }
}

const USAGE: &str = "ERR syntax error: CLUSTER LAYOUT SHOW | STATUS | ASSIGN <node> [ZONE <zone>] [CAPACITY <n>] | REMOVE <node> | REPLACE <node> <new-node> | REVERT | PLAN | APPLY <version>";

fn text(arg: &Bytes) -> Result<String, String> {
    String::from_utf8(arg.to_vec()).map_err(|_| "ERR node names are text".to_string())
}

fn parse(a: &[Bytes]) -> Result<LayoutRequest, String> {
    let Some(sub) = a.first() else {
        return Err(USAGE.into());
    };
    let sub = String::from_utf8_lossy(sub).to_ascii_lowercase();
    let request = match (sub.as_str(), a.len()) {
        ("show", 1) => LayoutRequest::Show,
        ("status", 1) => LayoutRequest::Status,
        ("revert", 1) => LayoutRequest::Revert,
        ("plan", 1) => LayoutRequest::Plan,
        ("remove", 2) => LayoutRequest::Remove { node: text(&a[1])? },
        ("replace", 3) => LayoutRequest::Replace {
            node: text(&a[1])?,
            with: text(&a[2])?,
        },
        ("apply", 2) => {
            let version = std::str::from_utf8(&a[1])
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| "ERR the layout version must be a positive integer".to_string())?;
            LayoutRequest::Apply { version }
        }
        ("assign", n) if n >= 2 => {
            let (mut zone, mut capacity) = (None, None);
            let mut options = a[2..].chunks(2);
            for pair in &mut options {
                let [name, value] = pair else {
                    return Err(USAGE.into());
                };
                match String::from_utf8_lossy(name).to_ascii_lowercase().as_str() {
                    "zone" => zone = Some(text(value)?),
                    "capacity" => {
                        let c = std::str::from_utf8(value)
                            .ok()
                            .and_then(|v| v.parse::<u32>().ok())
                            .filter(|&c| c > 0)
                            .ok_or_else(|| {
                                "ERR capacity must be an integer from 1 to 4294967295".to_string()
                            })?;
                        capacity = Some(c);
                    }
                    _ => return Err(USAGE.into()),
                }
            }
            LayoutRequest::Assign {
                node: text(&a[1])?,
                zone,
                capacity,
            }
        }
        _ => return Err(USAGE.into()),
    };
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Bytes> {
        s.split_whitespace()
            .map(|w| Bytes::from(w.to_string()))
            .collect()
    }

    #[test]
    fn every_subcommand_parses_and_bad_ones_get_the_usage() {
        assert_eq!(parse(&args("show")), Ok(LayoutRequest::Show));
        assert_eq!(parse(&args("PLAN")), Ok(LayoutRequest::Plan));
        assert_eq!(parse(&args("status")), Ok(LayoutRequest::Status));
        assert_eq!(
            parse(&args("assign 10.0.0.4:17001 zone b capacity 2")),
            Ok(LayoutRequest::Assign {
                node: "10.0.0.4:17001".into(),
                zone: Some("b".into()),
                capacity: Some(2),
            })
        );
        assert_eq!(
            parse(&args("replace a b")),
            Ok(LayoutRequest::Replace {
                node: "a".into(),
                with: "b".into()
            })
        );
        assert_eq!(
            parse(&args("apply 7")),
            Ok(LayoutRequest::Apply { version: 7 })
        );
        for bad in [
            "",
            "show x",
            "status x",
            "assign",
            "assign n zone",
            "assign n capacity 0",
            "apply x",
            "remove",
            "frob",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?} parsed");
        }
    }
}
