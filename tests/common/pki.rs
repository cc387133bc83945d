//! Certificates and keys made at test time: throw-away CAs, server leaves
//! they sign, and JWT signing keys.

use std::path::Path;
use std::process::Command;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
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
        let ca = Ca::new("Kisee test CA");
        let leaf = ca.leaf("localhost", None, &[]);
        Pki {
            ca_der: ca.der(),
            leaf_cert_pem: leaf.cert_pem,
            leaf_key_pem: leaf.key_pem,
        }
    }
}

/// A throw-away CA that keeps its key, to sign as many leaves as a test
/// needs under one trust anchor.
pub(crate) struct Ca {
    cert: Certificate,
    key: KeyPair,
}

/// A server certificate and its key.
pub(crate) struct Leaf {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    /// The certificate as a client sees it on the wire.
    pub(crate) der: Vec<u8>,
}

impl Ca {
    pub(crate) fn new(common_name: &str) -> Ca {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca { cert, key }
    }

    /// The CA certificate, DER, for a client's trust store.
    pub(crate) fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// The CA certificate, PEM.
    pub(crate) fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server leaf for `localhost`, `127.0.0.1` and any `extra_names`,
    /// with its own key (and `serial`, or a random serial number).
    pub(crate) fn leaf(
        &self,
        common_name: &str,
        serial: Option<u64>,
        extra_names: &[&str],
    ) -> Leaf {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("leaf key");
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        names.extend(extra_names.iter().map(|name| (*name).to_owned()));
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.serial_number = serial.map(SerialNumber::from);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

impl Leaf {
    /// Writes the certificate and key where the settings point.
    pub(crate) fn write(&self, cert_path: &Path, key_path: &Path) {
        std::fs::write(cert_path, &self.cert_pem).expect("write the certificate");
        std::fs::write(key_path, &self.key_pem).expect("write the key");
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
