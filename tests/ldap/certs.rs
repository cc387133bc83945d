//! Certificates for the directory, made at test time: the CA Kisee is told
//! to trust, the server certificate it signed, and an unrelated CA.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

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
        let (ca, ca_key) = certificate_authority("Kisee LDAP test CA");
        let (wrong_ca, _) = certificate_authority("Kisee LDAP unrelated CA");

        let server_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("server key");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = params
            .signed_by(&server_key, &ca, &ca_key)
            .expect("server certificate");

        DirectoryCerts {
            ca_pem: ca.pem(),
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            wrong_ca_pem: wrong_ca.pem(),
        }
    }
}

fn certificate_authority(name: &str) -> (Certificate, KeyPair) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert, key)
}
