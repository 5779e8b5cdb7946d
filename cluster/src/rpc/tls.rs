//! Mutual TLS on the bus (`--tls-cluster yes`): every node presents its certificate as
//! a server and as a client, and accepts only peers whose certificate the cluster CA
//! signed. rustls with the ring provider, as the RESP server uses. With TLS the HMAC
//! authentication still runs (it carries the cluster id check), and payloads gain the
//! integrity and confidentiality the MAC alone does not give.

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// PEM material for the bus.
#[derive(Clone)]
pub struct BusTls {
    /// This node's certificate chain (PEM), presented to clients and to servers; it must
    /// allow both server and client authentication.
    pub cert_pem: Vec<u8>,
    /// Its private key (PEM, unencrypted: the caller decrypts).
    pub key_pem: Vec<u8>,
    /// The CA (PEM) that signs every node's certificate.
    pub ca_pem: Vec<u8>,
    /// The name a node's certificate must carry; `None` checks the host of the bus
    /// address (an IP address needs an IP SAN).
    pub server_name: Option<String>,
}

impl std::fmt::Debug for BusTls {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl BusTls {
    /// The server side: our identity, client certificates required and checked.
    pub(crate) fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
    }

    /// The client side: our identity, the server checked against the CA.
    pub(crate) fn client(&self) -> ClientTlsConfig {
        let c = ClientTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .ca_certificate(Certificate::from_pem(&self.ca_pem));
        match &self.server_name {
            Some(name) => c.domain_name(name.clone()),
            None => c,
        }
    }
}
