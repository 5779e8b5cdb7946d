//! A node's identity on disk: `<dir>/cluster/node.json` holds its id (chosen once at
//! random) and, once bootstrap made one, the cluster id (spec:
//! docs/format/cluster-layout.md). A damaged file stops the node: guessing a new id would
//! make it a stranger to its own cluster.

use crate::atomic_file::write_atomically;
use crate::NodeId;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// The contents of node.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Format of the file.
    pub format: u32,
    /// This node's id, as 40 hex digits.
    pub node_id: String,
    /// The cluster it belongs to, once bootstrap made one.
    pub cluster_id: Option<String>,
}

/// Where a node keeps its cluster files.
pub fn cluster_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("cluster")
}

impl Identity {
    /// Loads node.json, or makes a new identity (written before it is used).
    pub fn load_or_create(dir: &Path) -> io::Result<(Identity, NodeId)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("node.json");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let id: Identity = serde_json::from_slice(&bytes).map_err(|e| bad(&path, e))?;
                if id.format != 1 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: format {} is not supported (this kvd reads format 1; was it written by a newer kvd?)",
                            path.display(),
                            id.format
                        ),
                    ));
                }
                let node = NodeId::parse(&id.node_id)
                    .filter(|n| n.0 != 0 && id.format == 1)
                    .ok_or_else(|| bad(&path, "not a node id of format 1"))?;
                Ok((id, node))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let node = NodeId(rand::random::<u64>().max(1));
                let id = Identity {
                    format: 1,
                    node_id: node.to_string(),
                    cluster_id: None,
                };
                id.save(dir)?;
                Ok((id, node))
            }
            Err(e) => Err(e),
        }
    }

    /// Writes node.json atomically.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomically(&dir.join("node.json"), &bytes)
    }
}

fn bad(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} is damaged ({e}); restore it from a backup",
            path.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_survives_reopen_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, a) = Identity::load_or_create(dir.path()).unwrap();
        let (_, b) = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(a, b);
        std::fs::write(dir.path().join("node.json"), b"{garbage").unwrap();
        let e = Identity::load_or_create(dir.path()).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }
}
