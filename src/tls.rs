//! The rustls server configuration: certificate chain, private key, TLS 1.2
//! and 1.3, ALPN for HTTP/2 and HTTP/1.1, and session resumption.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::settings::TlsSettings;

/// Builds the server configuration from the files `settings` name. The
/// error names the settings key and file at fault.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let chain = read_chain(&settings.certificate)?;
    let key = read_key(&settings.private_key)?;
    let versions = &[&rustls::version::TLS13, &rustls::version::TLS12];
    let mut config = ServerConfig::builder_with_protocol_versions(versions)
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("server.tls: the certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
        .map_err(|e| format!("server.tls: cannot make a session ticketer: {e}"))?;
    Ok(Arc::new(config))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| {
            format!(
                "server.tls.certificate: cannot read {}: {e}",
                path.display()
            )
        })?
        .collect();
    let chain = chain.map_err(|e| format!("server.tls.certificate: {}: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "server.tls.certificate: no certificate in {}",
            path.display()
        ));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        format!(
            "server.tls.private_key: no usable private key in {}: {e}",
            path.display()
        )
    })
}
