//! RESP: request framing ([`parser`]) and reply encoding ([`reply`]).

pub mod parser;
pub mod reply;

pub use parser::{Limits, Parsed, ProtocolError, RequestParser};
pub use reply::{Reply, Version};
