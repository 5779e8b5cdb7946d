//! Writes seed inputs for every fuzz target into `fuzz/corpus/<target>/` (or
//! `OUT_DIR/<target>/`), from real
//! files: it builds small data directories with the engine (tables with and without
//! LZ4, several blocks, a bloom filter, tombstones, a range delete, a second keyspace,
//! a WAL with a record spanning blocks, a MANIFEST with several edits) and copies their
//! files, plus hand-written RESP requests. Run it, then minimise (`cargo fuzz cmin`):
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus [OUT_DIR]
//! ```

use kv_engine::{Compression, Db, Options, WriteBatch};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let corpus = match std::env::args_os().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"),
    };
    for (tag, compression) in [("lz4", Compression::Lz4), ("raw", Compression::None)] {
        let tmp = tempfile::tempdir()?;
        let db = build_db(tmp.path(), compression)?;
        // Copied while open: closing would flush the WAL's batches into a table.
        copy_seeds(tmp.path(), tag, &corpus)?;
        db.close()?;
    }
    write_resp_seeds(&corpus.join("resp_parser"))?;
    write_cluster_seeds(&corpus.join("cluster_records"))?;
    println!("seeds written under {}", corpus.display());
    Ok(())
}

/// A data directory with two tables on disk (one compacted to L1), and a WAL holding
/// batches not yet flushed; returned open.
fn build_db(dir: &Path, compression: Compression) -> kv_engine::Result<Db> {
    let db = Db::open(
        dir,
        Options {
            compression,
            block_size: 256,
            ..Options::default()
        },
    )?;
    let strings = db.keyspace("strings")?;
    let default = kv_engine::Keyspace::DEFAULT;
    for i in 0..40u32 {
        let key = format!("user:{i:04}");
        db.put(
            strings,
            key.as_bytes(),
            format!("value-{i}-{}", "x".repeat(i as usize)).as_bytes(),
        )?;
    }
    db.delete(strings, b"user:0003")?;
    db.delete_range(strings, b"user:0010", b"user:0015")?;
    db.put(default, b"counter", b"42")?;
    db.compact_range(strings, None, None)?;
    for i in 0..10u32 {
        db.put(strings, format!("late:{i}").as_bytes(), b"v")?;
    }
    db.flush()?;
    let mut batch = WriteBatch::new();
    batch
        .put(strings, b"batch:a", b"1")
        .delete(strings, b"batch:b")
        .delete_range(default, b"a", b"b");
    db.write(batch)?;
    // Larger than a 32 KiB WAL block: a First/Middle/Last record.
    db.put(default, b"big", &vec![b'b'; 33 * 1024])?;
    db.sync_wal()?;
    Ok(db)
}

/// Copies each file of `dir` to the targets that read its kind; kvtool_inspect seeds
/// carry their mode byte (see that target) and include the whole directory packed.
fn copy_seeds(dir: &Path, tag: &str, corpus: &Path) -> std::io::Result<()> {
    let mut packed = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let bytes = std::fs::read(dir.join(&name))?;
        let (target, mode) = if name.ends_with(".log") {
            ("wal_reader", 0u8)
        } else if name.ends_with(".sst") {
            ("sst_reader", 1)
        } else if name.starts_with("MANIFEST-") {
            ("manifest", 2)
        } else {
            if name == "CURRENT" {
                pack(&mut packed, &name, &bytes);
            }
            continue;
        };
        if bytes.is_empty() {
            continue;
        }
        pack(&mut packed, &name, &bytes);
        write(&corpus.join(target), &format!("{tag}-{name}"), &bytes)?;
        let mut moded = vec![mode];
        moded.extend_from_slice(&bytes);
        write(
            &corpus.join("kvtool_inspect"),
            &format!("{tag}-{name}"),
            &moded,
        )?;
    }
    packed.insert(0, 3 | 4); // a directory, as JSON
    write(
        &corpus.join("kvtool_inspect"),
        &format!("{tag}-dir"),
        &packed,
    )
}

/// Appends one file in kvtool_inspect's packed-directory format.
fn pack(out: &mut Vec<u8>, name: &str, bytes: &[u8]) {
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// RESP requests a client sends, behind resp_parser's flags and split-seed bytes.
fn write_resp_seeds(dir: &Path) -> std::io::Result<()> {
    let seeds: [(&str, u8, &[u8]); 8] = [
        ("set", 0, b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"),
        (
            "pipeline",
            2,
            b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n",
        ),
        ("inline", 0, b"SET \"a b\\x41\\n\" 'it\\'s' plain\r\n"),
        ("empty", 4, b"*0\r\n*-1\r\n\r\n"),
        ("unauth", 1, b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n"),
        ("binary", 0, b"*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\x00\xff\r\n"),
        ("huge-claim", 2, b"*1\r\n$536870912\r\nabc"),
        ("errors", 0, b"*1\r\n+foo\r\n"),
    ];
    for (name, flags, stream) in seeds {
        let mut bytes = vec![flags, 0x5a];
        bytes.extend_from_slice(stream);
        write(dir, name, &bytes)?;
    }
    Ok(())
}

/// Records of every kind, a hint, and gossip packets with and without a MAC, behind
/// cluster_records' selector byte (0 record, 1 hint, 2 gossip packet).
fn write_cluster_seeds(dir: &Path) -> std::io::Result<()> {
    use bytes::Bytes;
    use kv_cluster::dvv::{Siblings, SiblingsWrite};
    use kv_cluster::gossip::frame::GossipKey;
    use kv_cluster::replica_api::{ItemKey, WriteItem};
    use kv_cluster::txn_lock::{Intent, TxnLock, TxnMarker};
    use kv_cluster::{Body, NodeId, Record, RequestRecord, Version};
    let version = |ts: u64| Version {
        ts: ts << 16,
        node: NodeId(7),
    };
    let key = |k: &'static str| ItemKey {
        db: 3,
        key: Bytes::from_static(k.as_bytes()),
    };
    let string = Record::string(version(1), Bytes::from_static(b"value"), Some(1 << 40));
    let mut siblings = Siblings::default();
    for (actor, value) in [(1, "a"), (2, "b")] {
        let write = SiblingsWrite {
            context: Default::default(),
            value: Some(Bytes::from_static(value.as_bytes())),
        };
        siblings.accept(&write, NodeId(actor), 5);
    }
    let mut with_requests = string.clone();
    with_requests.requests.push(RequestRecord {
        id: Bytes::from_static(b"request-1"),
        expire_at: 1 << 41,
        written_at: version(1),
        reply: Bytes::from_static(b"+OK\r\n"),
    });
    let mut locked = string.clone();
    locked.txn.lock = Some(Box::new(TxnLock {
        txn: version(2),
        primary: key("primary"),
        expires_at: 1 << 41,
        intent: Intent::Write {
            body: Body::Tombstone,
            expire_at: None,
        },
    }));
    locked.txn.markers.push(TxnMarker {
        txn: version(1),
        secondaries: vec![key("second"), key("third")],
    });
    let records = [
        ("string", string.clone()),
        ("tombstone", Record::tombstone(version(2))),
        (
            "siblings",
            Record {
                body: Body::Siblings(siblings),
                ..Record::tombstone(version(3))
            },
        ),
        ("requests", with_requests),
        ("txn", locked),
    ];
    for (name, record) in records {
        let mut bytes = vec![0];
        bytes.extend(record.encode());
        write(dir, &format!("record-{name}"), &bytes)?;
    }
    let item = WriteItem {
        key: key("hinted"),
        record: string,
    };
    let mut hint = vec![1];
    hint.extend(kv_cluster::hints::encode_hint(1 << 40, &item));
    write(dir, "hint", &hint)?;
    for (name, secret) in [("plain", None), ("mac", Some(b"secret".as_slice()))] {
        let mut packet = Vec::new();
        GossipKey::new(secret, Some("cluster".into())).seal(b"chitchat message", &mut packet);
        let mut bytes = vec![2];
        bytes.extend(packet);
        write(dir, &format!("gossip-{name}"), &bytes)?;
    }
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}
