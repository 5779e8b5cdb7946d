//! The `tls-*` configuration parameters (Redis's names and meanings).

/// Whether clients must present a certificate signed by the configured CA
/// (`tls-auth-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthClients {
    /// A client without a valid certificate is refused (Redis's default).
    #[default]
    Yes,
    /// No certificate is asked for.
    No,
    /// A certificate is asked for and checked if given, but not required.
    Optional,
}

impl AuthClients {
    /// Parses `yes`, `no` or `optional` (any case).
    pub fn parse(v: &str) -> Result<AuthClients, String> {
        match v.to_ascii_lowercase().as_str() {
            "yes" => Ok(AuthClients::Yes),
            "no" => Ok(AuthClients::No),
            "optional" => Ok(AuthClients::Optional),
            _ => Err("argument(s) must be one of the following: no, yes, optional".into()),
        }
    }

    /// The value as CONFIG GET prints it.
    pub fn name(self) -> &'static str {
        match self {
            AuthClients::Yes => "yes",
            AuthClients::No => "no",
            AuthClients::Optional => "optional",
        }
    }
}

/// How long a TLS handshake may take before the connection is closed: a client that
/// connects and says nothing must not hold a `maxclients` slot for long.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// TLS settings. Paths are kept as given (empty = unset) so CONFIG GET prints them back.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// TLS port; 0 = no TLS listener (`tls-port`).
    pub port: u16,
    /// Server certificate chain, PEM (`tls-cert-file`).
    pub cert_file: String,
    /// Server private key, PEM (`tls-key-file`).
    pub key_file: String,
    /// Passphrase of an encrypted PKCS#8 `key_file` (`tls-key-file-pass`).
    pub key_file_pass: String,
    /// Certificate presented when kvd is the client, e.g. on the cluster bus
    /// (`tls-client-cert-file`); empty = `cert_file`.
    pub client_cert_file: String,
    /// Key of `client_cert_file` (`tls-client-key-file`); empty = `key_file`.
    pub client_key_file: String,
    /// Passphrase of an encrypted `client_key_file` (`tls-client-key-file-pass`).
    pub client_key_file_pass: String,
    /// CA certificates that sign client (and peer) certificates (`tls-ca-cert-file`).
    pub ca_cert_file: String,
    /// Directory of CA certificates, each a PEM file (`tls-ca-cert-dir`).
    pub ca_cert_dir: String,
    /// Client certificate policy (`tls-auth-clients`).
    pub auth_clients: AuthClients,
    /// Protocol versions, space-separated, e.g. `TLSv1.2 TLSv1.3`; empty = both
    /// (`tls-protocols`).
    pub protocols: String,
    /// TLS 1.3 cipher suites, colon-separated; empty = all rustls offers
    /// (`tls-ciphersuites`).
    pub ciphersuites: String,
    /// TLS 1.2 ciphers, colon-separated OpenSSL names; empty = all rustls offers
    /// (`tls-ciphers`).
    pub ciphers: String,
    /// Choose the cipher by the server's order, not the client's
    /// (`tls-prefer-server-ciphers`).
    pub prefer_server_ciphers: bool,
    /// kvd: handshake deadline in milliseconds (`tls-handshake-timeout-ms`).
    pub handshake_timeout_ms: u64,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            port: 0,
            cert_file: String::new(),
            key_file: String::new(),
            key_file_pass: String::new(),
            client_cert_file: String::new(),
            client_key_file: String::new(),
            client_key_file_pass: String::new(),
            ca_cert_file: String::new(),
            ca_cert_dir: String::new(),
            auth_clients: AuthClients::Yes,
            protocols: String::new(),
            ciphersuites: String::new(),
            ciphers: String::new(),
            prefer_server_ciphers: false,
            handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
        }
    }
}
