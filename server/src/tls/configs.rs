//! Builds rustls configurations from [`TlsSettings`]: the server side for `tls-port` (and
//! later the cluster bus, which always requires peer certificates, as Redis's does) and
//! the client side a node will use to dial its peers (mutual TLS).

use super::settings::{AuthClients, TlsSettings};
use super::{pem, suites};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use std::sync::Arc;

/// The ring provider restricted to the configured suites, and the configured versions.
fn provider(
    s: &TlsSettings,
) -> Result<(Arc<CryptoProvider>, Vec<&'static SupportedProtocolVersion>), String> {
    let versions = suites::protocols(&s.protocols).map_err(|e| format!("tls-protocols: {e}"))?;
    let mut cipher_suites =
        suites::tls13_suites(&s.ciphersuites).map_err(|e| format!("tls-ciphersuites: {e}"))?;
    cipher_suites
        .extend(suites::tls12_suites(&s.ciphers).map_err(|e| format!("tls-ciphers: {e}"))?);
    let provider = CryptoProvider {
        cipher_suites,
        ..rustls::crypto::ring::default_provider()
    };
    Ok((Arc::new(provider), versions))
}

fn required<'a>(param: &str, v: &'a str) -> Result<&'a str, String> {
    if v.is_empty() {
        Err(format!("{param} must be set to use TLS"))
    } else {
        Ok(v)
    }
}

/// Server configuration with the given client-certificate policy: `s.auth_clients` for
/// clients, [`AuthClients::Yes`] for cluster peers. Reads every file now, so a bad file
/// is reported at start, never at the first connection.
pub fn server_config(s: &TlsSettings, auth: AuthClients) -> Result<Arc<ServerConfig>, String> {
    let cert_file = required("tls-cert-file", &s.cert_file)?;
    let key_file = required("tls-key-file", &s.key_file)?;
    let chain = pem::cert_chain("tls-cert-file", cert_file)?;
    let key = pem::private_key(
        "tls-key-file",
        key_file,
        "tls-key-file-pass",
        &s.key_file_pass,
    )?;
    let (provider, versions) = provider(s)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls-protocols/tls-ciphers: {e}"))?;
    let builder = if auth == AuthClients::No {
        builder.with_no_client_auth()
    } else {
        let roots = pem::roots(&s.ca_cert_file, &s.ca_cert_dir).map_err(|e| {
            format!("{e} (needed to check client certificates unless tls-auth-clients is no)")
        })?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if auth == AuthClients::Optional {
            verifier.allow_unauthenticated()
        } else {
            verifier
        };
        builder.with_client_cert_verifier(
            verifier
                .build()
                .map_err(|e| format!("cannot build the client certificate verifier: {e}"))?,
        )
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "tls-cert-file {cert_file} and tls-key-file {key_file} do not form a usable pair: {e}"
        )
    })?;
    config.ignore_client_order = s.prefer_server_ciphers;
    Ok(Arc::new(config))
}

/// Client configuration for dialing a peer: trusts the configured CA and presents
/// `tls-client-cert-file` (else `tls-cert-file`).
pub fn client_config(s: &TlsSettings) -> Result<Arc<ClientConfig>, String> {
    let (cert_param, cert_file) = if s.client_cert_file.is_empty() {
        ("tls-cert-file", required("tls-cert-file", &s.cert_file)?)
    } else {
        ("tls-client-cert-file", s.client_cert_file.as_str())
    };
    let (key_param, key_file, pass_param, pass) = if s.client_key_file.is_empty() {
        let key_file = required("tls-key-file", &s.key_file)?;
        (
            "tls-key-file",
            key_file,
            "tls-key-file-pass",
            &s.key_file_pass,
        )
    } else {
        let key_file = s.client_key_file.as_str();
        let pass = &s.client_key_file_pass;
        (
            "tls-client-key-file",
            key_file,
            "tls-client-key-file-pass",
            pass,
        )
    };
    let chain = pem::cert_chain(cert_param, cert_file)?;
    let key = pem::private_key(key_param, key_file, pass_param, pass)?;
    let roots = pem::roots(&s.ca_cert_file, &s.ca_cert_dir)?;
    let (provider, versions) = provider(s)?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls-protocols/tls-ciphers: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            format!("{cert_param} {cert_file} and {key_param} {key_file} do not form a usable pair: {e}")
        })?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_certs::TestCerts;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    fn settings(certs: &TestCerts) -> TlsSettings {
        let path = |p: &std::path::Path| p.display().to_string();
        TlsSettings {
            port: 1,
            cert_file: path(&certs.server_cert),
            key_file: path(&certs.server_key),
            ca_cert_file: path(&certs.ca),
            ..TlsSettings::default()
        }
    }

    /// A client that trusts the test CA and presents `cert`/`key` if given.
    fn client(
        certs: &TestCerts,
        identity: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Arc<ClientConfig> {
        let mut s = settings(certs);
        match identity {
            Some((cert, key)) => {
                s.client_cert_file = cert.display().to_string();
                s.client_key_file = key.display().to_string();
                client_config(&s).unwrap()
            }
            None => Arc::new(
                ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(pem::roots(&s.ca_cert_file, "").unwrap())
                .with_no_client_auth(),
            ),
        }
    }

    /// Runs a handshake over an in-memory pipe and sends 4 bytes; returns whether the
    /// server got them and how many certificates the client presented.
    async fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
    ) -> Result<usize, String> {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let serve = async {
            let mut s = TlsAcceptor::from(server)
                .accept(a)
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            assert_eq!(&buf, b"ping");
            Ok(s.get_ref().1.peer_certificates().map_or(0, |c| c.len()))
        };
        let dial = async {
            let name = ServerName::try_from("localhost").unwrap();
            let mut c = TlsConnector::from(client).connect(name, b).await.ok()?;
            c.write_all(b"ping").await.ok()?;
            c.flush().await.ok()?;
            Some(c) // kept open until the server side is done
        };
        let (served, _client) = tokio::join!(serve, dial);
        served
    }

    #[tokio::test]
    async fn mutual_tls_between_server_and_client_configs() {
        let dir = tempfile::tempdir().unwrap();
        let certs = TestCerts::generate(dir.path()).unwrap();
        let s = settings(&certs);
        let required = server_config(&s, AuthClients::Yes).unwrap();
        let optional = server_config(&s, AuthClients::Optional).unwrap();
        let none = server_config(&s, AuthClients::No).unwrap();
        // A node dialing a peer presents tls-cert-file when no client cert is set.
        let node = client_config(&s).unwrap();
        assert_eq!(handshake(required.clone(), node).await, Ok(1));
        let signed = client(&certs, Some((&certs.client_cert, &certs.client_key)));
        assert_eq!(handshake(required.clone(), signed.clone()).await, Ok(1));
        assert_eq!(handshake(optional.clone(), signed).await, Ok(1));
        let anonymous = client(&certs, None);
        let refused = handshake(required.clone(), anonymous.clone())
            .await
            .unwrap_err();
        assert!(refused.contains("certificate"), "{refused}");
        assert_eq!(handshake(optional, anonymous.clone()).await, Ok(0));
        assert_eq!(handshake(none, anonymous.clone()).await, Ok(0));
        // The same key, encrypted, with its passphrase (tls-key-file-pass).
        let mut locked = s.clone();
        locked.key_file = certs.server_key_encrypted.display().to_string();
        locked.key_file_pass = crate::tls::test_certs::KEY_PASS.into();
        let unlocked = server_config(&locked, AuthClients::No).unwrap();
        assert_eq!(handshake(unlocked, anonymous).await, Ok(0));
        let stranger = client(&certs, Some((&certs.stranger_cert, &certs.stranger_key)));
        assert!(handshake(required, stranger).await.is_err());
    }

    #[tokio::test]
    async fn protocol_and_suite_settings_restrict_the_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let certs = TestCerts::generate(dir.path()).unwrap();
        let mut s = settings(&certs);
        s.auth_clients = AuthClients::No;
        s.protocols = "TLSv1.2".into();
        s.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256".into();
        let tls12_only = server_config(&s, AuthClients::No).unwrap();
        assert_eq!(
            handshake(tls12_only.clone(), client(&certs, None)).await,
            Ok(0)
        );
        s.protocols = "TLSv1.3".into();
        let tls13_client = client_config(&s).unwrap();
        assert!(handshake(tls12_only, tls13_client).await.is_err());
        // Over TLS 1.2, only RSA ciphers allowed and an ECDSA certificate: no common suite.
        s.protocols = "TLSv1.2".into();
        s.ciphers = "ECDHE-RSA-AES128-GCM-SHA256".into();
        let rsa_only = server_config(&s, AuthClients::No).unwrap();
        assert!(handshake(rsa_only, client(&certs, None)).await.is_err());
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let certs = TestCerts::generate(dir.path()).unwrap();
        let good = settings(&certs);
        let err = |f: &dyn Fn(&mut TlsSettings)| {
            let mut s = good.clone();
            f(&mut s);
            server_config(&s, s.auth_clients).unwrap_err()
        };
        let e = err(&|s| s.cert_file = "/nonexistent/server.crt".into());
        assert!(
            e.starts_with("tls-cert-file /nonexistent/server.crt: cannot read"),
            "{e}"
        );
        let e = err(&|s| s.key_file = s.ca_cert_file.clone());
        assert!(
            e.starts_with("tls-key-file ") && e.contains("no PEM item"),
            "{e}"
        );
        let e = err(&|s| s.key_file = certs.client_key.display().to_string());
        assert!(e.contains("do not form a usable pair"), "{e}");
        let e = err(&|s| s.cert_file = String::new());
        assert_eq!(e, "tls-cert-file must be set to use TLS");
        let e = err(&|s| s.ca_cert_file = String::new());
        assert!(
            e.contains("tls-ca-cert-file or tls-ca-cert-dir") && e.contains("tls-auth-clients"),
            "{e}"
        );
        let e = err(&|s| s.ca_cert_file = s.key_file.clone());
        assert!(e.starts_with("tls-ca-cert-file "), "{e}");
        let encrypted = certs.server_key_encrypted.display().to_string();
        let e = err(&|s| s.key_file = encrypted.clone());
        assert!(
            e.contains("the key is encrypted and tls-key-file-pass is not set"),
            "{e}"
        );
        let e = err(&|s| {
            s.key_file = encrypted.clone();
            s.key_file_pass = "wrong".into();
        });
        assert!(e.contains("cannot decrypt with tls-key-file-pass"), "{e}");
        let legacy = dir.path().join("legacy.key");
        std::fs::write(
            &legacy,
            "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n",
        )
        .unwrap();
        let e = err(&|s| s.key_file = legacy.display().to_string());
        assert!(e.contains("openssl pkcs8 -topk8"), "{e}");
        // A CA directory works in place of a CA file, and skips files that are not certs.
        let cadir = dir.path().join("cas");
        std::fs::create_dir(&cadir).unwrap();
        std::fs::copy(&certs.ca, cadir.join("ca.pem")).unwrap();
        std::fs::write(cadir.join("README"), "not a certificate").unwrap();
        let mut s = good.clone();
        s.ca_cert_file = String::new();
        s.ca_cert_dir = cadir.display().to_string();
        assert!(server_config(&s, AuthClients::Yes).is_ok());
        std::fs::remove_file(cadir.join("ca.pem")).unwrap();
        let e = server_config(&s, AuthClients::Yes).unwrap_err();
        assert!(e.contains("no CA certificate found"), "{e}");
    }
}
