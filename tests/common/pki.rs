//! Certificates and keys made at test time: a throw-away CA, a server leaf
//! signed by it, and JWT signing keys.

use std::path::Path;
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

/// A CA and one server certificate for `localhost` and `127.0.0.1`.
pub(crate) struct Pki {
    /// The CA certificate, DER, for the clients' trust store.
    pub(crate) ca_der: Vec<u8>,
    /// The server's certificate, PEM.
    pub(crate) leaf_cert_pem: String,
    /// The server's private key, PKCS#8 PEM.
    pub(crate) leaf_key_pem: String,
}

impl Pki {
    pub(crate) fn generate() -> Self {
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Kisee test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("leaf key");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut leaf_params = CertificateParams::new(names).expect("leaf params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf certificate");

        Pki {
            ca_der: ca.der().to_vec(),
            leaf_cert_pem: leaf.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
        }
    }
}

/// A fresh P-256 key pair: (PKCS#8 private PEM, SPKI public PEM).
pub(crate) fn p256_key_pair() -> (String, String) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    (key.serialize_pem(), key.public_key_pem())
}

/// A secp256k1 private key (SEC1 PEM) written by the openssl command line.
pub(crate) fn write_secp256k1_key(path: &Path) {
    let status = Command::new("openssl")
        .args(["ecparam", "-name", "secp256k1", "-genkey", "-noout", "-out"])
        .arg(path)
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl ecparam failed: {status}");
}
