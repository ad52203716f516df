//! TLS for `mqtts://`: the files ([`TlsFiles`]) and the rustls client configuration
//! read from them at start-up ([`TlsConfig`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Error, Result};

/// Files that configure TLS for `mqtts://`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file of the CA certificates to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain presented to the broker (mutual TLS); needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// True when no file is set.
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }
}

/// A TLS client configuration for rumqttc: rustls with the ring provider, TLS 1.2 and
/// 1.3, the server's certificate checked against the trusted roots and the URL's host.
#[derive(Clone)]
pub struct TlsConfig(Arc<rustls::ClientConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig { .. }")
    }
}

impl TlsConfig {
    /// Reads the files. Trusts the CA certificates of `ca_file`, or, without one, the
    /// operating system's (rustls-native-certs: `/etc/ssl/certs` on Debian, or
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR`). A file that cannot be read or holds no usable
    /// certificate or key is an error here, at start-up, not at each connection attempt.
    pub fn load(files: &TlsFiles) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        match &files.ca_file {
            Some(path) => {
                for cert in read_certs(path, "CA file")? {
                    roots.add(cert).map_err(|e| {
                        Error::Tls(format!(
                            "CA file {}: not a usable CA certificate: {e}",
                            path.display()
                        ))
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                    return Err(Error::Tls(format!(
                        "no CA certificates found in the system's store ({}); give a CA file \
                         (--mqtt-ca, mqtt.ca_file)",
                        if errors.is_empty() {
                            "it is empty".to_owned()
                        } else {
                            errors.join("; ")
                        }
                    )));
                }
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots);
        let config = match (&files.client_cert, &files.client_key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert, "client certificate")?;
                let key_der = read_key(key)?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    Error::Tls(format!(
                        "client certificate {} and key {}: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?
            }
            _ => {
                return Err(Error::Tls(
                    "a client certificate needs its key and a key its certificate \
                     (--mqtt-client-cert with --mqtt-client-key)"
                        .into(),
                ))
            }
        };
        Ok(Self(Arc::new(config)))
    }

    /// The configuration as rumqttc takes it.
    pub fn rumqttc(&self) -> rumqttc::TlsConfiguration {
        rumqttc::TlsConfiguration::Rustls(self.0.clone())
    }

    /// A TLS transport for `MqttOptions::set_transport` (v3 and v5 alike).
    pub fn transport(&self) -> rumqttc::Transport {
        rumqttc::Transport::tls_with_config(self.rumqttc())
    }
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Tls(format!("{what} {}: {e}", path.display())))
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let pem = read_pem(path, what)?;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("{what} {}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{what} {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    let pem = read_pem(path, "client key")?;
    rustls::pki_types::PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        Error::Tls(format!(
            "client key {}: no usable PEM private key: {e}",
            path.display()
        ))
    })
}
