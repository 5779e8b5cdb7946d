//! TLS for clients, and the pieces the cluster bus will reuse (docs/security.md, `## TLS`).
//!
//! `settings` holds the `tls-*` parameters, named as Redis names them; `suites` maps
//! protocol and cipher names onto rustls; `pem` reads certificates, keys and CA roots;
//! `configs` builds rustls server and client configurations (mutual TLS included);
//! `listener` accepts TLS clients on `tls-port` and hands them to `connection`.
//! rustls runs on the `ring` provider only (aws-lc-rs needs cmake and nasm to build).

pub mod configs;
pub mod listener;
pub mod pem;
pub mod settings;
pub mod suites;
#[cfg(any(test, feature = "test-certs"))]
pub mod test_certs;

pub use configs::{client_config, server_config};
pub use settings::{AuthClients, TlsSettings};
