//! Connection settings read from `DATABASE_URL` (or the secret that stands
//! in for it), with libpq's meaning of `sslmode` and `sslrootcert`, which
//! tokio-postgres does not know: they are taken out of the string first
//! ([`super::connection_string`]) and TLS is set up here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::connection_string::{split_tls_params, TlsParams};
use crate::env::{ConfigError, Source};
use crate::failure::Failure;
use crate::outcome::Reason;
use crate::secrets_manager::SecretConnection;
use crate::tls::{SslMode, SslNegotiation};

/// How long a connection attempt outside a health evaluation (warm-up, CLI
/// commands) may take when the URL sets no `connect_timeout`.
pub(super) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection settings read from `DATABASE_URL`.
#[derive(Clone)]
pub struct DbConfig {
    pub(super) pg: tokio_postgres::Config,
    pub(super) ssl_mode: SslMode,
    /// Trust anchors for verify-ca / verify-full, read at start-up.
    pub(super) roots: Option<Arc<rustls::RootCertStore>>,
    pub(super) pool_max: usize,
    /// `PGSSLROOTCERT` and `DATABASE_CA_PEM`, kept to parse a rotated
    /// secret the same way.
    pub(super) env_tls: EnvTls,
    /// `DATABASE_SECRET_ID` when the connection came from that secret: it is
    /// read again after the database refuses the password.
    pub(super) secret_id: Option<String>,
}

impl std::fmt::Debug for DbConfig {
    // Hosts, users and passwords stay out of every Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("ssl_mode", &self.ssl_mode)
            .field("negotiation", &self.negotiation())
            .field("pool_max", &self.pool_max)
            .field("from_secret", &self.secret_id.is_some())
            .finish_non_exhaustive()
    }
}

/// TLS settings the environment gives rather than the URL: root
/// certificates in `PGSSLROOTCERT` (a file) or `DATABASE_CA_PEM` (the PEM
/// text itself, for platforms that give a process variables but no files),
/// and `PGSSLNEGOTIATION`.
#[derive(Clone, Default)]
pub struct EnvTls {
    file: Option<String>,
    pem: Option<Arc<rustls::RootCertStore>>,
    negotiation: Option<String>,
}

impl EnvTls {
    /// Reads `PGSSLROOTCERT`, `DATABASE_CA_PEM` and `PGSSLNEGOTIATION`; a
    /// `DATABASE_CA_PEM` that
    /// holds no certificate is an error whatever `sslmode` says.
    pub fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let pem = match env.get("DATABASE_CA_PEM") {
            None => None,
            Some(text) => Some(Arc::new(roots_from_pem_text(&text)?)),
        };
        Ok(Self {
            file: env.get("PGSSLROOTCERT"),
            pem,
            negotiation: env.get("PGSSLNEGOTIATION"),
        })
    }
}

/// `DATABASE_SECRET_ID`, when it stands in for an unset `DATABASE_URL`.
pub fn secret_in_place_of_url(env: &dyn Source) -> Option<String> {
    match (env.get("DATABASE_URL"), env.get("DATABASE_SECRET_ID")) {
        (None, Some(secret_id)) => Some(secret_id.trim().to_owned()),
        _ => None,
    }
}

impl DbConfig {
    /// Reads `DATABASE_URL` (and `PGSSLROOTCERT`, `DATABASE_CA_PEM`,
    /// `DATABASE_POOL_MAX`).
    pub fn from_source(env: &dyn Source) -> Result<Self, ConfigError> {
        let pool_max = pool_max(env)?;
        let env_tls = EnvTls::from_source(env)?;
        let Some(url) = env.get("DATABASE_URL") else {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "is required when an enabled component uses Postgres (or set DATABASE_SECRET_ID)",
            ));
        };
        Self::parse(&url, env_tls, pool_max)
    }

    /// As [`DbConfig::from_source`], reading the connection from Secrets
    /// Manager when `DATABASE_SECRET_ID` stands in for `DATABASE_URL`.
    pub async fn load(env: &dyn Source) -> Result<Self, ConfigError> {
        let Some(secret_id) = secret_in_place_of_url(env) else {
            return Self::from_source(env);
        };
        let secret = crate::secrets_manager::connection(&secret_id).await?;
        let mut config =
            Self::from_secret_connection(secret, EnvTls::from_source(env)?, pool_max(env)?)?;
        config.secret_id = Some(secret_id);
        Ok(config)
    }

    /// A secret's connection: its text parsed as `DATABASE_URL` is, or its
    /// RDS-style fields set one by one.
    fn from_secret_connection(
        secret: SecretConnection,
        env_tls: EnvTls,
        pool_max: usize,
    ) -> Result<Self, ConfigError> {
        let rds = match secret {
            SecretConnection::Text(text) => return Self::parse(&text, env_tls, pool_max),
            SecretConnection::Rds(rds) => rds,
        };
        let mut pg = tokio_postgres::Config::new();
        pg.host(&rds.host)
            .port(rds.port()?)
            .user(&rds.username)
            .password(&rds.password);
        if let Some(dbname) = &rds.dbname {
            pg.dbname(dbname);
        }
        let tls = TlsParams {
            sslmode: rds.sslmode,
            sslrootcert: rds.sslrootcert,
            sslnegotiation: None,
        };
        Self::checked(pg, tls, env_tls, pool_max)
    }

    /// The connection a (rotated) secret now holds, parsed with the same
    /// root certificates and pool size as at start-up. At run time, after a
    /// refused login: a secret that cannot be read or parsed is a failure
    /// of that login (`auth`), not a configuration error.
    pub(super) async fn reread(&self) -> Result<Self, Failure> {
        let Some(secret_id) = &self.secret_id else {
            return Ok(self.clone());
        };
        let fresh = async {
            let secret = crate::secrets_manager::connection(secret_id).await?;
            Self::from_secret_connection(secret, self.env_tls.clone(), self.pool_max)
        };
        let mut config = fresh
            .await
            .map_err(|e| Failure::new(Reason::Auth, e.to_string()))?;
        config.secret_id = Some(secret_id.clone());
        Ok(config)
    }

    /// Parses a URL or key=value connection string. `sslmode` and
    /// `sslrootcert` are taken out first: tokio-postgres knows neither the
    /// verify modes nor root certificates, and TLS is ours to set up.
    pub fn parse(raw: &str, env_tls: EnvTls, pool_max: usize) -> Result<Self, ConfigError> {
        let (rest, tls) = split_tls_params(raw.trim())?;
        let pg: tokio_postgres::Config = rest.parse().map_err(|e: tokio_postgres::Error| {
            // tokio-postgres' parse errors name an option, never its value.
            ConfigError::new(
                "DATABASE_URL",
                format!("not a valid Postgres URL or key=value string ({e})"),
            )
        })?;
        Self::checked(pg, tls, env_tls, pool_max)
    }

    /// The settings every connection needs, checked, with TLS set up from
    /// libpq's `sslmode` and `sslrootcert`.
    fn checked(
        mut pg: tokio_postgres::Config,
        tls: TlsParams,
        env_tls: EnvTls,
        pool_max: usize,
    ) -> Result<Self, ConfigError> {
        if pg.get_hosts().is_empty() {
            return Err(ConfigError::new("DATABASE_URL", "names no host"));
        }
        if pg.get_user().is_none() {
            return Err(ConfigError::new("DATABASE_URL", "names no user"));
        }
        if pg.get_options().is_some() {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "the `options` parameter is not supported: transaction poolers reject it",
            ));
        }
        // The name operators look for in pg_stat_activity, whatever the URL says.
        pg.application_name("meshhook-health");
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        let ssl_mode = match tls.sslmode.as_deref() {
            None => SslMode::Prefer,
            Some(v) => SslMode::parse(v).ok_or_else(|| {
                ConfigError::new(
                    "DATABASE_URL",
                    "sslmode must be one of disable, prefer, require, verify-ca, verify-full",
                )
            })?,
        };
        pg.ssl_mode(match ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let negotiation = negotiation(tls.sslnegotiation, &env_tls, ssl_mode)?;
        pg.ssl_negotiation(match negotiation {
            SslNegotiation::Postgres => tokio_postgres::config::SslNegotiation::Postgres,
            SslNegotiation::Direct => tokio_postgres::config::SslNegotiation::Direct,
        });
        let roots = match ssl_mode {
            SslMode::VerifyCa | SslMode::VerifyFull => Some(roots(tls.sslrootcert, &env_tls)?),
            _ => None,
        };
        Ok(Self {
            pg,
            ssl_mode,
            roots,
            pool_max,
            env_tls,
            secret_id: None,
        })
    }

    /// Whether the connection came from `DATABASE_SECRET_ID`.
    pub fn from_secret(&self) -> bool {
        self.secret_id.is_some()
    }

    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// libpq 17's `sslnegotiation`: TLS at once (with ALPN `postgresql`)
    /// or after an SSLRequest.
    pub fn negotiation(&self) -> SslNegotiation {
        match self.pg.get_ssl_negotiation() {
            tokio_postgres::config::SslNegotiation::Direct => SslNegotiation::Direct,
            _ => SslNegotiation::Postgres,
        }
    }

    pub(crate) fn password(&self) -> Option<&str> {
        self.pg
            .get_password()
            .and_then(|p| std::str::from_utf8(p).ok())
    }
}

/// libpq 17's `sslnegotiation`, from the connection string, else
/// `PGSSLNEGOTIATION`, else `postgres`. `direct` starts TLS at once, so
/// there is no plaintext to fall back to: like libpq, it is refused at
/// start-up unless `sslmode` is require, verify-ca or verify-full.
fn negotiation(
    written: Option<String>,
    env: &EnvTls,
    ssl_mode: SslMode,
) -> Result<SslNegotiation, ConfigError> {
    let (variable, value) = match (written, &env.negotiation) {
        (Some(value), _) => ("DATABASE_URL", value),
        (None, Some(value)) => ("PGSSLNEGOTIATION", value.clone()),
        (None, None) => return Ok(SslNegotiation::Postgres),
    };
    let negotiation = SslNegotiation::parse(value.trim())
        .ok_or_else(|| ConfigError::new(variable, "sslnegotiation must be postgres or direct"))?;
    if negotiation == SslNegotiation::Direct
        && matches!(ssl_mode, SslMode::Disable | SslMode::Prefer)
    {
        return Err(ConfigError::new(
            variable,
            format!(
                "sslnegotiation=direct needs sslmode=require, verify-ca or verify-full (sslmode is {}): \
                 it starts TLS at once, with nothing to fall back to",
                ssl_mode.name()
            ),
        ));
    }
    Ok(negotiation)
}

/// The trust anchors for verify-ca / verify-full, in libpq's order: the
/// URL's `sslrootcert`, then `PGSSLROOTCERT`, then `DATABASE_CA_PEM`.
fn roots(
    url_file: Option<String>,
    env: &EnvTls,
) -> Result<Arc<rustls::RootCertStore>, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let (variable, path) = match (url_file, &env.file, &env.pem) {
        (Some(p), _, _) => ("DATABASE_URL", p),
        (None, Some(p), _) => ("PGSSLROOTCERT", p.clone()),
        (None, None, Some(pem)) => return Ok(pem.clone()),
        (None, None, None) => {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "sslmode=verify-ca/verify-full needs a root certificate: sslrootcert (or PGSSLROOTCERT) naming a PEM file, or DATABASE_CA_PEM holding one",
            ))
        }
    };
    let unreadable = || ConfigError::new(variable, "sslrootcert is not a readable PEM file");
    let certs = CertificateDer::pem_file_iter(PathBuf::from(path))
        .map_err(|_| unreadable())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| unreadable())?;
    store(variable, "sslrootcert", certs).map(Arc::new)
}

/// `DATABASE_CA_PEM`: PEM text, with real line breaks or `\n` escapes (a
/// platform that keeps a variable on one line).
fn roots_from_pem_text(text: &str) -> Result<rustls::RootCertStore, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let text = text.replace("\\n", "\n");
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            ConfigError::new(
                "DATABASE_CA_PEM",
                "is not PEM text (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
            )
        })?;
    store("DATABASE_CA_PEM", "it", certs)
}

/// The certificates as trust anchors; none, or one that is not a CA, is an
/// error naming `variable` (`what` names the holder in the message).
fn store(
    variable: &'static str,
    what: &str,
    certs: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<rustls::RootCertStore, ConfigError> {
    let mut store = rustls::RootCertStore::empty();
    for cert in certs {
        store.add(cert).map_err(|_| {
            ConfigError::new(
                variable,
                format!("{what} holds a certificate that is not a valid CA"),
            )
        })?;
    }
    if store.is_empty() {
        return Err(ConfigError::new(
            variable,
            format!("{what} holds no certificate"),
        ));
    }
    Ok(store)
}

/// `DATABASE_POOL_MAX`.
fn pool_max(env: &dyn Source) -> Result<usize, ConfigError> {
    Ok(crate::env::number(env, "DATABASE_POOL_MAX", 1, 1, 100)? as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<DbConfig, ConfigError> {
        DbConfig::parse(raw, EnvTls::default(), 1)
    }

    #[test]
    fn sslnegotiation_direct_needs_a_mode_that_never_falls_back_to_plaintext() {
        use SslNegotiation::{Direct, Postgres};
        let negotiation = |raw: &str, env: Option<&str>| {
            let env_tls = EnvTls {
                negotiation: env.map(str::to_owned),
                ..EnvTls::default()
            };
            DbConfig::parse(raw, env_tls, 1).map(|c| c.negotiation())
        };
        let url = "postgres://u@db/x";
        assert_eq!(negotiation(url, None).unwrap(), Postgres);
        assert_eq!(
            negotiation(
                &format!("{url}?sslmode=require&sslnegotiation=direct"),
                None
            )
            .unwrap(),
            Direct
        );
        assert_eq!(
            negotiation(
                "host=db user=u sslmode=verify-ca sslrootcert=/nonexistent sslnegotiation=direct",
                None
            )
            .unwrap_err()
            .variable,
            "DATABASE_URL",
            "the root certificate is still required"
        );
        assert_eq!(
            negotiation(&format!("{url}?sslmode=require"), Some("direct")).unwrap(),
            Direct
        );
        assert_eq!(
            negotiation(
                &format!("{url}?sslmode=require&sslnegotiation=postgres"),
                Some("direct")
            )
            .unwrap(),
            Postgres,
            "the URL wins, as in libpq"
        );
        for (raw, env, variable) in [
            (format!("{url}?sslnegotiation=direct"), None, "DATABASE_URL"),
            (
                format!("{url}?sslmode=disable&sslnegotiation=direct"),
                None,
                "DATABASE_URL",
            ),
            (url.to_owned(), Some("direct"), "PGSSLNEGOTIATION"),
            (
                format!("{url}?sslmode=require&sslnegotiation=fast"),
                None,
                "DATABASE_URL",
            ),
            (
                format!("{url}?sslmode=require"),
                Some("DIRECT "),
                "PGSSLNEGOTIATION",
            ),
        ] {
            let error = negotiation(&raw, env).unwrap_err();
            assert_eq!(error.variable, variable, "{raw} {env:?}");
            assert!(error.to_string().contains("sslnegotiation"), "{error}");
        }
    }

    #[test]
    fn url_and_key_value_forms_keep_every_other_setting() {
        let url = parse("postgresql://app:p%40ss@db.example.com:6543/meshhook?sslmode=require&connect_timeout=3").unwrap();
        assert_eq!(url.ssl_mode(), SslMode::Require);
        assert_eq!(url.pg.get_ports(), [6543]);
        assert_eq!(url.pg.get_dbname(), Some("meshhook"));
        assert_eq!(url.password(), Some("p@ss"));
        assert_eq!(url.pg.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(url.pg.get_application_name(), Some("meshhook-health"));

        let kv = parse("host=db port=5432 user=app password='a b\\'c' dbname=x sslmode=disable")
            .unwrap();
        assert_eq!(kv.ssl_mode(), SslMode::Disable);
        assert_eq!(kv.password(), Some("a b'c"));
        assert_eq!(kv.pg.get_dbname(), Some("x"));
        assert_eq!(kv.pg.get_connect_timeout(), Some(&DEFAULT_CONNECT_TIMEOUT));
    }

    #[test]
    fn sslmode_defaults_to_prefer_like_libpq() {
        assert_eq!(
            parse("postgres://app@db/x").unwrap().ssl_mode(),
            SslMode::Prefer
        );
        assert_eq!(
            parse("host=db user=app").unwrap().ssl_mode(),
            SslMode::Prefer
        );
    }

    #[test]
    fn application_name_is_ours_whatever_the_url_says() {
        let config = parse("postgres://app@db/x?application_name=other").unwrap();
        assert_eq!(config.pg.get_application_name(), Some("meshhook-health"));
    }

    #[test]
    fn verify_modes_need_a_readable_root_certificate() {
        let error = parse("postgres://app@db/x?sslmode=verify-full").unwrap_err();
        assert!(error.problem.contains("sslrootcert"), "{error}");
        let error = DbConfig::parse(
            "postgres://app@db/x?sslmode=verify-ca",
            EnvTls {
                file: Some("/nonexistent.pem".into()),
                ..EnvTls::default()
            },
            1,
        )
        .unwrap_err();
        assert_eq!(error.variable, "PGSSLROOTCERT");
    }

    #[test]
    fn options_and_missing_user_are_refused() {
        assert!(parse("postgres://app@db/x?options=-c%20statement_timeout%3D1").is_err());
        assert!(parse("host=db dbname=x").is_err());
    }
}
