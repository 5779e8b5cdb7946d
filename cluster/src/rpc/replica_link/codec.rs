//! A link's frames on the wire: a 4-byte big-endian length, then a protobuf message of
//! that many bytes; length 0 is a heartbeat. Lengths above the bound are refused before
//! anything is allocated for them (tokio-util's length-delimited codec checks the
//! header first), and the connection is closed.

use bytes::{BufMut, BytesMut};
use prost::Message;
use std::io;
use std::marker::PhantomData;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// Decodes frames of `In` and encodes frames of `Out`; `None` is a heartbeat.
pub(super) struct FrameCodec<In, Out> {
    lengths: LengthDelimitedCodec,
    max_bytes: usize,
    kinds: PhantomData<fn(Out) -> In>,
}

impl<In, Out> FrameCodec<In, Out> {
    /// Frames of at most `max_bytes`, either way.
    pub(super) fn new(max_bytes: usize) -> Self {
        FrameCodec {
            lengths: LengthDelimitedCodec::builder()
                .length_field_length(4)
                .max_frame_length(max_bytes)
                .new_codec(),
            max_bytes,
            kinds: PhantomData,
        }
    }
}

impl<In: Message + Default, Out> Decoder for FrameCodec<In, Out> {
    type Item = Option<In>;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Option<In>>> {
        let Some(frame) = self.lengths.decode(src)? else {
            return Ok(None);
        };
        if frame.is_empty() {
            return Ok(Some(None));
        }
        In::decode(frame.freeze())
            .map(|m| Some(Some(m)))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl<In, Out: Message> Encoder<Option<Out>> for FrameCodec<In, Out> {
    type Error = io::Error;

    fn encode(&mut self, item: Option<Out>, dst: &mut BytesMut) -> io::Result<()> {
        let len = item.as_ref().map_or(0, Message::encoded_len);
        if len > self.max_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a frame of {len} bytes, above {}", self.max_bytes),
            ));
        }
        let len32 =
            u32::try_from(len).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        dst.reserve(4 + len);
        dst.put_u32(len32);
        if let Some(m) = item {
            // Cannot fail: the space was reserved above.
            m.encode(dst)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        Ok(())
    }
}

/// One message with its length, for the handshake (written before the codec takes the
/// connection).
pub(super) fn encode_one(m: &impl Message, dst: &mut Vec<u8>) {
    let len = m.encoded_len();
    dst.reserve(4 + len);
    // Handshake messages are a few hundred bytes: far below u32::MAX.
    dst.extend_from_slice(&(len as u32).to_be_bytes());
    m.encode_raw(dst);
}

/// Reads one length-prefixed message of at most `max_bytes` (the handshake).
pub(super) async fn read_one<M: Message + Default>(
    io: &mut (impl tokio::io::AsyncRead + Unpin),
    max_bytes: usize,
) -> io::Result<M> {
    use tokio::io::AsyncReadExt;
    let len = io.read_u32().await? as usize;
    if len > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a handshake message of {len} bytes, above {max_bytes}"),
        ));
    }
    let mut buf = vec![0; len];
    io.read_exact(&mut buf).await?;
    M::decode(&buf[..]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::pb;

    type Both = FrameCodec<pb::ReplicaFrame, pb::ReplicaFrame>;

    fn read_frame(id: u64) -> pb::ReplicaFrame {
        pb::ReplicaFrame {
            id,
            request: Some(pb::replica_frame::Request::Read(pb::ReadRequest {
                keys: vec![pb::ItemKey {
                    db: 3,
                    key: bytes::Bytes::from_static(b"key"),
                }],
                layout_version: 9,
            })),
        }
    }

    #[test]
    fn frames_and_heartbeats_come_back_as_sent_even_byte_by_byte() {
        let mut codec = Both::new(1 << 20);
        let mut wire = BytesMut::new();
        codec.encode(Some(read_frame(1)), &mut wire).unwrap();
        codec.encode(None, &mut wire).unwrap();
        codec.encode(Some(read_frame(2)), &mut wire).unwrap();
        let mut got = Vec::new();
        let mut src = BytesMut::new();
        for b in wire {
            src.put_u8(b);
            while let Some(f) = codec.decode(&mut src).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![Some(read_frame(1)), None, Some(read_frame(2))]);
    }

    #[test]
    fn a_length_above_the_bound_is_refused_before_its_bytes_arrive() {
        let mut codec = Both::new(100);
        let mut src = BytesMut::from(&(1u32 << 30).to_be_bytes()[..]);
        assert!(codec.decode(&mut src).is_err());
        assert!(
            src.capacity() < 1 << 20,
            "nothing allocated for the claimed length"
        );
        let big = pb::ReplicaFrame {
            id: 1,
            request: Some(pb::replica_frame::Request::Read(pb::ReadRequest {
                keys: vec![pb::ItemKey::default(); 100],
                layout_version: 0,
            })),
        };
        assert!(codec.encode(Some(big), &mut BytesMut::new()).is_err());
    }

    #[test]
    fn a_frame_that_is_not_protobuf_is_an_error() {
        let mut codec = Both::new(100);
        let mut src = BytesMut::new();
        src.put_u32(3);
        src.put_slice(b"\xff\xff\xff");
        assert!(codec.decode(&mut src).is_err());
    }

    #[tokio::test]
    async fn a_handshake_message_round_trips_and_a_long_one_is_refused() {
        let hello = pb::LinkHello {
            node: "5".into(),
            cluster_id: "c".into(),
            ts_ms: 42,
            mac: bytes::Bytes::from_static(&[1; 32]),
        };
        let mut wire = Vec::new();
        encode_one(&hello, &mut wire);
        let back: pb::LinkHello = read_one(&mut &wire[..], 4096).await.unwrap();
        assert_eq!(back, hello);
        assert!(read_one::<pb::LinkHello>(&mut &wire[..], 10).await.is_err());
    }
}
