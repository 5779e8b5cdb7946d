//! Reads PEM files: certificate chains, private keys and CA roots. Every error names the
//! parameter and the path, because these are read at start and an operator must see at
//! once which file is wrong.

use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

fn describe(e: pem::Error) -> String {
    match e {
        pem::Error::Io(e) => format!("cannot read: {e}"),
        pem::Error::NoItemsFound => "no PEM item of the expected kind found".into(),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// The certificates of a PEM file, leaf first. `param` names the setting in errors.
pub fn cert_chain(param: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{param} {path}: {}", describe(e)))?;
    if certs.is_empty() {
        return Err(format!("{param} {path}: no certificate found"));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1). Encrypted keys are refused
/// with a message saying how to decrypt them: rustls reads only plain keys.
pub fn private_key(param: &str, path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{param} {path}: cannot read: {e}"))?;
    if text.windows(b"ENCRYPTED".len()).any(|w| w == b"ENCRYPTED") {
        return Err(format!(
            "{param} {path}: the key is encrypted; kvd reads only unencrypted keys \
             (decrypt it with `openssl pkey -in {path} -out key.pem` and protect the file \
             with its permissions)"
        ));
    }
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| format!("{param} {path}: {}", describe(e)))
}

/// CA roots from `tls-ca-cert-file` and every PEM file in `tls-ca-cert-dir` (either may be
/// empty, not both).
pub fn roots(ca_file: &str, ca_dir: &str) -> Result<RootCertStore, String> {
    let mut files: Vec<(&str, String)> = Vec::new();
    if !ca_file.is_empty() {
        files.push(("tls-ca-cert-file", ca_file.to_string()));
    }
    if !ca_dir.is_empty() {
        let entries = std::fs::read_dir(ca_dir)
            .map_err(|e| format!("tls-ca-cert-dir {ca_dir}: cannot read: {e}"))?;
        let mut paths: Vec<String> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        paths.sort();
        files.extend(paths.into_iter().map(|p| ("tls-ca-cert-dir", p)));
    }
    let mut store = RootCertStore::empty();
    for (param, path) in &files {
        // A CA directory (OpenSSL's c_rehash layout) may hold files that are not
        // certificates; only an explicit CA file must be one.
        let certs = match cert_chain(param, path) {
            Ok(c) => c,
            Err(_) if *param == "tls-ca-cert-dir" => continue,
            Err(e) => return Err(e),
        };
        for c in certs {
            store
                .add(c)
                .map_err(|e| format!("{param} {path}: not a usable CA certificate: {e}"))?;
        }
    }
    if store.is_empty() {
        let what = if ca_file.is_empty() && ca_dir.is_empty() {
            "neither is set".to_string()
        } else {
            format!("no CA certificate found in {}", [ca_file, ca_dir].join(" "))
        };
        return Err(format!(
            "tls-ca-cert-file or tls-ca-cert-dir must name CA certificates: {what}"
        ));
    }
    Ok(store)
}
