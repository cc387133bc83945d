//! A test CA that keeps its key, so that one test can issue a second server
//! certificate under the same trust anchor (the harness's CA is thrown away
//! once its one leaf is signed).

use std::path::Path;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};

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
    pub(crate) fn generate() -> Ca {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Kisee operations test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca { cert, key }
    }

    /// The CA certificate, DER, for a client's trust store.
    pub(crate) fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A leaf for `localhost`, `127.0.0.1` and any `extra_names`, with its
    /// own key and this serial number.
    pub(crate) fn leaf(&self, serial: u64, extra_names: &[&str]) -> Leaf {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("leaf key");
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        names.extend(extra_names.iter().map(|name| (*name).to_owned()));
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("kisee leaf {serial}"));
        params.serial_number = Some(SerialNumber::from(serial));
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
