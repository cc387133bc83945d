//! Certificates for the directory, made at test time: the CA Kisee is told
//! to trust, the server certificate it signed, and an unrelated CA.

use crate::common::pki::Ca;

/// PEM texts for the directory's TLS.
pub(crate) struct DirectoryCerts {
    pub(crate) ca_pem: String,
    pub(crate) server_cert_pem: String,
    pub(crate) server_key_pem: String,
    /// A CA that signed nothing the directory presents.
    pub(crate) wrong_ca_pem: String,
}

impl DirectoryCerts {
    pub(crate) fn generate() -> Self {
        let ca = Ca::new("Kisee LDAP test CA");
        let wrong_ca = Ca::new("Kisee LDAP unrelated CA");
        let server = ca.leaf("localhost", None, &[]);
        DirectoryCerts {
            ca_pem: ca.pem(),
            server_cert_pem: server.cert_pem,
            server_key_pem: server.key_pem,
            wrong_ca_pem: wrong_ca.pem(),
        }
    }
}
