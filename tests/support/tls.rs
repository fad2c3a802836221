//! Certificates made at test time: a CA, a server certificate it signs, and
//! an unrelated CA (for "wrong CA" and for bundles whose first certificate is
//! not the issuer, like Supabase's 2021 + 2025 roots).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

pub struct Pki {
    pub ca_pem: String,
    pub other_ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

impl Pki {
    /// A server certificate valid for `names` only.
    pub fn new(names: &[&str]) -> Pki {
        let issuer = ca("meshhook-health test CA");
        let other = ca("unrelated test CA");
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let cert = params.signed_by(&key, &issuer).unwrap();
        Pki {
            ca_pem: issuer.pem(),
            other_ca_pem: other.pem(),
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
        }
    }
}
