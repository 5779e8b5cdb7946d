//! kvd: a Redis-compatible server on kv-engine (docs/server.md, docs/commands.md).
//!
//! `connection` frames bytes and writes replies; `commands` holds one file per command
//! family and the command table; `keyspace` maps Redis keys onto the engine;
//! `shutdown` owns graceful stop; `server` starts and stops everything; `acl` holds users
//! and permissions; `tls` serves clients over TLS; `scripting` runs Lua scripts; `http` is
//! the HTTP front end.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

/// mimalloc instead of glibc malloc, for kvd and every binary that runs the server (the
/// test suite's kvd too): each command allocates and frees small buffers on whichever
/// worker thread runs it, where glibc malloc cost 7-14% more instructions per command and
/// kept about 30% more memory resident (docs/performance.md, "The server's hot path").
/// Called through [`allocator::Mimalloc`], which skips mimalloc's aligned entry points
/// when plain `mi_malloc` already aligns enough.
#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

mod allocator;

pub mod acl;
pub mod checkpoint_policy;
pub mod cli;
pub mod cluster_config;
pub mod cluster_mode;
pub mod cluster_start;
pub mod command_metrics;
pub mod commands;
pub mod compat_version;
pub mod config;
pub mod connection;
pub mod fd_limit;
pub mod http;
pub mod keyspace;
pub mod output_limits;
pub mod protocol;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod tls;
