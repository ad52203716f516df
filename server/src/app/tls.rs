//! HTTPS for the API and console listener: the PEM files of `[http] tls_cert` and
//! `tls_key` as a rustls server configuration on the ring provider (the one the MQTT
//! client already uses), so the process needs no second crypto library.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::settings::HttpTls;
use crate::{Context, Error, Result};

/// The server configuration for `tls`, with HTTP/1.1 and HTTP/2 offered over ALPN.
pub(super) fn server_config(tls: &HttpTls) -> Result<Arc<rustls::ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| pem_error(&tls.cert, "certificate chain", e))?;
    if certs.is_empty() {
        return Err(Error::Failed(format!(
            "{} holds no PEM certificate (--http-tls-cert)",
            tls.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| pem_error(&tls.key, "private key", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "using {} with {} (does the key belong to the certificate?)",
                tls.cert.display(),
                tls.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn pem_error(path: &Path, what: &str, e: rustls::pki_types::pem::Error) -> Error {
    Error::Failed(format!("reading the HTTP {what} {}: {e}", path.display()))
}
