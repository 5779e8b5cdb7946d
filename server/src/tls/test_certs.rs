//! Test fixtures: a CA, a server certificate (valid as a client too, like a cluster node's)
//! and client certificates, generated with rcgen into a directory. Used by this module's
//! unit tests and, through the `test-certs` feature, by the end-to-end tests.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// Passphrase of [`TestCerts::server_key_encrypted`].
pub const KEY_PASS: &str = "kvd test passphrase";

/// PEM files written by [`TestCerts::generate`].
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA certificate that signed `server_*` and `client_*`.
    pub ca: PathBuf,
    /// Server certificate for `localhost` and `127.0.0.1`.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// The same key as encrypted PKCS#8 (PBKDF2-SHA256, AES-256-CBC) under [`KEY_PASS`].
    pub server_key_encrypted: PathBuf,
    /// A client certificate signed by the CA.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// A client certificate signed by another CA, which the server must refuse.
    pub stranger_cert: PathBuf,
    /// Its key.
    pub stranger_key: PathBuf,
}

fn authority(name: &str) -> Result<(Certificate, KeyPair), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok((p.self_signed(&key)?, key))
}

fn leaf(
    names: &[&str],
    usages: Vec<ExtendedKeyUsagePurpose>,
    issuer: &(Certificate, KeyPair),
) -> Result<(Certificate, KeyPair), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = usages;
    Ok((p.signed_by(&key, &issuer.0, &issuer.1)?, key))
}

impl TestCerts {
    /// Generates fresh certificates into `dir` (ECDSA P-256 keys, PKCS#8 PEM).
    pub fn generate(dir: &Path) -> Result<TestCerts, String> {
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        let e = |e: rcgen::Error| format!("rcgen: {e}");
        let ca = authority("kvd test CA").map_err(e)?;
        let other_ca = authority("some other CA").map_err(e)?;
        let server = leaf(
            &["localhost", "127.0.0.1"],
            vec![ServerAuth, ClientAuth],
            &ca,
        )
        .map_err(e)?;
        let client = leaf(&["kvd test client"], vec![ClientAuth], &ca).map_err(e)?;
        let stranger = leaf(&["stranger"], vec![ClientAuth], &other_ca).map_err(e)?;
        let write = |name: &str, text: String| -> Result<PathBuf, String> {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        };
        Ok(TestCerts {
            ca: write("ca.crt", ca.0.pem())?,
            server_cert: write("server.crt", server.0.pem())?,
            server_key: write("server.key", server.1.serialize_pem())?,
            server_key_encrypted: write(
                "server.key.enc",
                encrypt_pkcs8(&server.1.serialize_der(), KEY_PASS)?,
            )?,
            client_cert: write("client.crt", client.0.pem())?,
            client_key: write("client.key", client.1.serialize_pem())?,
            stranger_cert: write("stranger.crt", stranger.0.pem())?,
            stranger_key: write("stranger.key", stranger.1.serialize_pem())?,
        })
    }
}

/// PEM of `der` (PKCS#8) encrypted under `pass`, as `openssl pkcs8 -topk8 -v2 aes-256-cbc`
/// writes it. Salt and IV are fixed: a fixture needs no randomness.
fn encrypt_pkcs8(der: &[u8], pass: &str) -> Result<String, String> {
    use pkcs8::{pkcs5::pbes2, LineEnding, PrivateKeyInfo};
    let e = |e: pkcs8::Error| format!("pkcs8: {e}");
    let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, b"kvd test salt", &[7; 16])
        .map_err(|e| format!("pkcs5: {e}"))?;
    let doc = PrivateKeyInfo::try_from(der)
        .map_err(e)?
        .encrypt_with_params(params, pass)
        .map_err(e)?;
    let pem = doc
        .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .map_err(|e| format!("pem: {e}"))?;
    Ok(pem.to_string())
}
