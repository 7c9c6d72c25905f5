//! TLS for the edge's port: rustls with the ring provider, a PEM certificate
//! chain and key, ALPN offering HTTP/2 then HTTP/1.1.
//!
//! The provider is passed explicitly rather than installed process-wide, so
//! the edge works whichever providers other crates compile into rustls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read a PEM certificate chain: {source}")]
    Certificate { path: PathBuf, source: pem::Error },
    #[error("{path}: holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path}: cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1): {source}")]
    Key { path: PathBuf, source: pem::Error },
    #[error("{cert} and {key} do not make a usable TLS identity: {source}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// A server configuration from PEM files: `cert` holds the chain, leaf first.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(std::iter::Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|source| TlsError::Certificate {
            path: cert.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        path: key.to_owned(),
        source,
    })?;
    let config_error = |source| TlsError::Config {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(config_error)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = server_config(&missing, &missing).unwrap_err().to_string();
        assert!(
            e.contains("missing.pem") && e.contains("certificate"),
            "{e}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        let e = server_config(&empty, &empty).unwrap_err().to_string();
        assert!(e.contains("empty.pem: holds no certificate"), "{e}");

        let identity = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, identity.cert.pem()).unwrap();
        let e = server_config(&cert, &cert).unwrap_err().to_string();
        assert!(e.contains("cert.pem: cannot read a PEM private key"), "{e}");

        let other = rcgen::generate_simple_self_signed(vec!["other".into()]).unwrap();
        let wrong_key = dir.path().join("wrong-key.pem");
        std::fs::write(&wrong_key, other.signing_key.serialize_pem()).unwrap();
        let e = server_config(&cert, &wrong_key).unwrap_err().to_string();
        assert!(e.contains("do not make a usable TLS identity"), "{e}");

        let key = dir.path().join("key.pem");
        std::fs::write(&key, identity.signing_key.serialize_pem()).unwrap();
        let config = server_config(&cert, &key).unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
