//! The bus protocol's version (docs/cluster-protocol.md, "Versions"). Compatible
//! changes (new fields, which proto3 peers ignore; new RPCs, which older peers answer
//! `UNIMPLEMENTED`) raise [`BUS_VERSION`]; a change older peers cannot work with raises
//! [`MIN_BUS_VERSION`] too, and a truly different protocol gets a new package name
//! (`kvd.cluster.v2`), which older peers answer `UNIMPLEMENTED` on every call. Peers
//! exchange both numbers in `Hello`, and each refuses a peer it cannot work with, with
//! an error that says which side to upgrade.

/// This build's bus protocol: 1 = the first; 2 = layout tags on replica requests
/// (rpc/layout_tag.rs); 3 = writes stored but not counted by a catching-up replica
/// (rpc/not_counted.rs).
pub const BUS_VERSION: u32 = 3;

/// The oldest peer version this build works with: version 1 peers send untagged
/// requests, which are served (rpc/layout_tag.rs).
pub const MIN_BUS_VERSION: u32 = 1;

/// Whether this node can work with a peer that speaks `peer_version` and needs at least
/// `peer_min` (both 0 from a build older than these fields: version 1).
pub fn check_peer(peer_version: u32, peer_min: u32) -> Result<(), String> {
    let peer_version = peer_version.max(1);
    if peer_min > BUS_VERSION {
        return Err(format!(
            "kvd bus protocol: the peer needs version {peer_min} or newer and this node speaks {MIN_BUS_VERSION} to {BUS_VERSION}: upgrade this node (docs/operations.md, \"Rolling upgrade\")"
        ));
    }
    if peer_version < MIN_BUS_VERSION {
        return Err(format!(
            "kvd bus protocol: the peer speaks version {peer_version} and this node needs {MIN_BUS_VERSION} or newer: upgrade the peer (docs/operations.md, \"Rolling upgrade\")"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_and_equal_peers_work_a_peer_that_needs_a_future_version_is_refused() {
        assert_eq!(check_peer(0, 0), Ok(()), "a build from before versions");
        assert_eq!(check_peer(1, 1), Ok(()));
        assert_eq!(check_peer(BUS_VERSION, MIN_BUS_VERSION), Ok(()));
        assert_eq!(
            check_peer(BUS_VERSION + 5, BUS_VERSION),
            Ok(()),
            "a newer peer that still works with this version"
        );
        let e = check_peer(BUS_VERSION + 1, BUS_VERSION + 1).unwrap_err();
        assert!(e.contains("upgrade this node"), "{e}");
    }
}
