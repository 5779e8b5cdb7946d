//! The `http-*` parameters: flags, config-file directives and CONFIG GET names of the
//! HTTP front end (docs/http-api.md). Fixed at start: the listener is bound then.

use crate::config::{num, parse_memory, Param};

/// How the HTTP front end listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// TCP port of the HTTP API on every `bind` address; 0 = no HTTP (`http-port`).
    pub port: u16,
    /// TCP port of HTTPS on every `bind` address, with the `tls-*` certificate
    /// parameters of the RESP TLS port; 0 = no HTTPS (`http-tls-port`). Beside
    /// `port` as Redis's `tls-port` is beside `port`: either, both or neither.
    pub tls_port: u16,
    /// Largest request body accepted; larger ones get 413 (`http-max-body-bytes`).
    pub max_body_bytes: u64,
}

/// Default body limit: 16 MiB, far above typical values but small enough that a few
/// hundred concurrent uploads cannot exhaust memory.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 << 20;

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            port: 0,
            tls_port: 0,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// The `http-*` parameters (see [`crate::config::param`]).
pub static HTTP_PARAMS: &[Param] = &[
    Param {
        name: "http-port",
        mutable: false,
        get: |c| c.http.port.to_string(),
        set: |c, v| {
            c.http.port = num(v)?;
            Ok(())
        },
    },
    Param {
        name: "http-tls-port",
        mutable: false,
        get: |c| c.http.tls_port.to_string(),
        set: |c, v| {
            c.http.tls_port = num(v)?;
            Ok(())
        },
    },
    Param {
        name: "http-max-body-bytes",
        mutable: false,
        get: |c| c.http.max_body_bytes.to_string(),
        set: |c, v| {
            let n = parse_memory(v)?;
            if n == 0 {
                return Err("argument must be a memory value of at least 1".into());
            }
            c.http.max_body_bytes = n;
            Ok(())
        },
    },
];

/// The `--http-*` flags (flattened into [`crate::config::Cli`]).
#[derive(clap::Args, Debug, Default)]
pub struct HttpFlags {
    /// Port of the HTTP API (REST /kv, /health, /ready, /metrics) on every --bind
    /// address; 0 = off [default: 0].
    #[arg(long = "http-port")]
    pub http_port: Option<String>,
    /// Port of the HTTP API over TLS (HTTPS) on every --bind address, with the
    /// certificates of --tls-cert-file, --tls-key-file, --tls-ca-cert-file and client
    /// certificates as --tls-auth-clients says; 0 = off [default: 0].
    #[arg(long = "http-tls-port")]
    pub http_tls_port: Option<String>,
    /// Largest HTTP request body, e.g. 16mb; larger ones get 413 [default: 16mb].
    #[arg(long = "http-max-body-bytes")]
    pub http_max_body_bytes: Option<String>,
}

impl HttpFlags {
    /// The flags given, as (parameter, value) pairs.
    pub fn settings(self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("http-port", self.http_port),
            ("http-tls-port", self.http_tls_port),
            ("http-max-body-bytes", self.http_max_body_bytes),
        ]
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Cli, Config};
    use clap::Parser;

    #[test]
    fn off_by_default_and_set_by_file_or_flag() {
        let mut c = Config::default();
        assert_eq!(c.http.port, 0);
        c.apply_file_text("http-port 8000\nhttp-max-body-bytes 1mb\n")
            .unwrap();
        assert_eq!((c.http.port, c.http.max_body_bytes), (8000, 1 << 20));
        assert!(c.apply("http-max-body-bytes", "0").is_err());
        let c = Cli::try_parse_from(["kvd", "--http-port", "8001"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(c.http.port, 8001);
        let c = Cli::try_parse_from(["kvd", "--http-tls-port", "8443"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!((c.http.port, c.http.tls_port), (0, 8443));
    }
}
