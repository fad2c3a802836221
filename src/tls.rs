//! TLS client set-up for Postgres and for HTTPS, with the `ring` provider.
//!
//! `ring` rather than `aws-lc-rs`: it builds with nothing but a C compiler
//! (also when cross-compiling to arm64 with cargo-lambda) and its start-up is
//! cheap. Root certificates for HTTPS come compiled in (`webpki-roots`), so no
//! file is read from the system trust store at cold start.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

impl SslMode {
    /// libpq's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// libpq 17's `sslnegotiation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslNegotiation {
    /// An SSLRequest first, TLS after the server's `S` (every server).
    Postgres,
    /// TLS at once, with ALPN `postgresql` (PostgreSQL 17 and later): one
    /// round trip fewer.
    Direct,
}

impl SslNegotiation {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "postgres" => Self::Postgres,
            "direct" => Self::Direct,
            _ => return None,
        })
    }

    /// libpq's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Direct => "direct",
        }
    }
}

/// The ALPN protocol PostgreSQL 17 requires of a direct TLS connection.
const POSTGRESQL_ALPN: &[u8] = b"postgresql";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    builder_with(provider())
}

fn builder_with(
    provider: Arc<CryptoProvider>,
) -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // Infallible: ring's default provider supports the default versions.
        .expect("ring supports TLS 1.2 and 1.3")
}

/// The provider for Postgres: P-256 first among the key-exchange groups.
/// PostgreSQL before 18 accepts only the curve `ssl_ecdh_curve` names,
/// `prime256v1` by default (Supabase's servers included); the client's
/// first key share, X25519 by default, would draw a HelloRetryRequest —
/// one round trip more on every new connection, seen in `strace` against
/// PostgreSQL 17. PostgreSQL 18 takes either.
fn postgres_provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .kx_groups
        .sort_by_key(|group| group.name() != rustls::NamedGroup::secp256r1);
    Arc::new(provider)
}

/// The client config for HTTPS calls (Supabase), trusting the public web PKI.
pub fn https_client_config() -> ClientConfig {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The HTTPS client of the process (Supabase probes, Secrets Manager).
pub fn https_client(version: &str) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(https_client_config())
        .no_proxy()
        // A redirect from a health route means a wrong URL: report it.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(format!("meshhook-health/{version}"))
        .connect_timeout(std::time::Duration::from_secs(10))
        .pool_idle_timeout(std::time::Duration::from_secs(55))
        .build()
}

/// The TLS connector for Postgres, with libpq's meaning of `sslmode`:
/// prefer/require encrypt without verifying; verify-ca checks the chain
/// against `roots`; verify-full also checks the host name.
///
/// With `sslnegotiation=direct` the handshake offers ALPN `postgresql`, as
/// libpq 17 does: PostgreSQL 17 refuses a direct TLS connection without it.
pub fn postgres_connector(
    mode: SslMode,
    negotiation: SslNegotiation,
    roots: Option<Arc<RootCertStore>>,
) -> MakeRustlsConnect {
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
        (SslMode::VerifyFull, Some(roots)) => webpki(roots),
        (SslMode::VerifyCa, Some(roots)) => Arc::new(IgnoreHostName(webpki(roots))),
        _ => Arc::new(EncryptOnly(provider())),
    };
    let mut config = builder_with(postgres_provider())
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    if negotiation == SslNegotiation::Direct {
        config.alpn_protocols = vec![POSTGRESQL_ALPN.to_vec()];
    }
    MakeRustlsConnect::new(config)
}

fn webpki(roots: Arc<RootCertStore>) -> Arc<WebPkiServerVerifier> {
    WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        // Infallible: the store is non-empty (checked when read) and holds no CRLs.
        .expect("verifier from a non-empty root store")
}

/// verify-ca: the chain must lead to a trusted root; the name may differ.
#[derive(Debug)]
struct IgnoreHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for IgnoreHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// prefer/require: encryption without authentication of the server, as libpq
/// does. Handshake signatures are still checked.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
