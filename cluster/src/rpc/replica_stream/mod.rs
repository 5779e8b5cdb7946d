//! The replica stream: Write and Read as frames on one long-lived gRPC stream per peer
//! (docs/cluster-protocol.md, "The replica stream").
//!
//! A unary call opens an HTTP/2 stream with its own headers, credentials and trailers,
//! and the server spawns a task for it; measured on loopback, that costs about twice the
//! CPU of a frame on a stream that is already open (docs/performance.md, "The replica
//! stream"). A stream is authenticated once, when it opens, exactly as a unary call is;
//! each frame carries an id and its answer comes back with that id, in any order, so
//! slow and fast requests share the stream without waiting for each other.
//!
//! The client side is [`StreamSlot`] (open.rs); the server side is [`serve`] (serve.rs).
//! The same frames also travel without HTTP/2, on a replica link
//! (rpc/replica_link/), which the slot dials first.
//! A frame's error travels as the gRPC status the unary call would have ended with, so
//! callers see the same [`crate::replica_api::ReplicaError`] either way.

// Frames end in tonic's `Status`, by value, as the unary calls do (rpc/server.rs).
#![allow(clippy::result_large_err)]

mod open;
mod serve;

pub use open::Carrier;
pub(crate) use open::{OpenStream, Pending, StreamSlot, FRAMES_QUEUED};
pub(crate) use serve::{read_frames, serve, ReplyStream};

use super::pb;
use super::LAYOUT_VERSION_HEADER;
use tonic::Status;

/// What a frame's request was, for the latency metrics and error messages.
pub(crate) type FrameRequest = pb::replica_frame::Request;
/// A frame's answer.
pub(crate) type FrameReply = pb::replica_frame_reply::Reply;

/// The status `s` as a frame's error (the layout version a stale-layout refusal carries
/// in its metadata travels in a field).
pub(crate) fn error_to_pb(s: &Status) -> pb::FrameError {
    let layout_version = s
        .metadata()
        .get(LAYOUT_VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pb::FrameError {
        code: s.code() as i32,
        message: s.message().to_string(),
        layout_version,
    }
}

/// A frame's error back as the status the unary call would have returned.
pub(crate) fn error_from_pb(e: pb::FrameError) -> Status {
    let mut md = tonic::metadata::MetadataMap::new();
    if e.layout_version != 0 {
        if let Ok(v) = e.layout_version.to_string().parse() {
            md.insert(LAYOUT_VERSION_HEADER, v);
        }
    }
    Status::with_metadata(tonic::Code::from_i32(e.code), e.message, md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_error_keeps_code_message_and_layout_version() {
        let mut md = tonic::metadata::MetadataMap::new();
        md.insert(LAYOUT_VERSION_HEADER, "42".parse().unwrap());
        let stale = Status::with_metadata(tonic::Code::Aborted, "stale layout", md);
        let back = error_from_pb(error_to_pb(&stale));
        assert_eq!(back.code(), tonic::Code::Aborted);
        assert_eq!(back.message(), "stale layout");
        assert_eq!(
            back.metadata().get(LAYOUT_VERSION_HEADER).unwrap(),
            "42",
            "the refusing replica's version survives the frame"
        );
        let busy = error_from_pb(error_to_pb(&Status::resource_exhausted("busy")));
        assert_eq!(busy.code(), tonic::Code::ResourceExhausted);
        assert!(busy.metadata().get(LAYOUT_VERSION_HEADER).is_none());
    }
}
