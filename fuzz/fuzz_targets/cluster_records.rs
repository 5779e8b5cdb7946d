//! What a cluster node decodes from its disk and from its peers: records (values,
//! tombstones, siblings, request records, transaction locks and markers), hints, and
//! the gossip envelope that every UDP packet from anywhere goes through.
//!
//! Input: a selector byte (record, hint or gossip packet), then the bytes. Checked: no
//! panic; a record or hint that decodes encodes back to bytes that decode to the same
//! thing; a gossip packet opens to a message inside it, and any message sealed under a
//! secret opens to itself with that secret and is refused without it.
#![no_main]

use bytes::Bytes;
use kv_cluster::gossip::frame::GossipKey;
use kv_cluster::hints::{decode_hint, encode_hint};
use kv_cluster::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => record(rest),
        1 => hint(rest),
        _ => gossip(rest),
    }
});

fn record(bytes: &[u8]) {
    let Some(record) = Record::decode(&Bytes::copy_from_slice(bytes)) else {
        return;
    };
    let again = Record::decode(&Bytes::from(record.encode()));
    assert_eq!(again.as_ref(), Some(&record), "a record's own encoding");
}

fn hint(bytes: &[u8]) {
    let Some((stored_at, item)) = decode_hint(&Bytes::copy_from_slice(bytes)) else {
        return;
    };
    let again = decode_hint(&Bytes::from(encode_hint(stored_at, &item)));
    assert_eq!(again, Some((stored_at, item)), "a hint's own encoding");
}

fn gossip(packet: &[u8]) {
    let open = GossipKey::new(None, None);
    let sealed = GossipKey::new(Some(b"secret"), Some("cluster".into()));
    for key in [&open, &sealed] {
        if let Ok(message) = key.open(packet) {
            assert!(
                message.len() < packet.len(),
                "a message larger than its packet"
            );
        }
    }
    let mut out = Vec::new();
    sealed.seal(packet, &mut out);
    assert_eq!(sealed.open(&out), Ok(packet), "a sealed message opens");
    assert!(
        open.open(&out).is_err(),
        "a MAC accepted by a node without the secret"
    );
    let other = GossipKey::new(Some(b"another"), Some("cluster".into()));
    assert!(
        other.open(&out).is_err(),
        "a packet accepted under another secret"
    );
}
