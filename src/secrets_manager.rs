//! `DATABASE_SECRET_ID`: the database connection read from AWS Secrets
//! Manager through the AWS SDK's default credential chain — at start-up,
//! and again (at most once a minute) after the database refuses the login,
//! so that a rotated password is picked up.
//!
//! Nothing here runs unless that variable is set and `DATABASE_URL` is not:
//! the SDK is neither configured nor loaded otherwise, so a function that
//! takes its URL from the environment pays nothing for it at cold start.
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER` (or `AWS_ENDPOINT_URL`) redirects the
//! calls, as everywhere in the AWS SDKs.

use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde::Deserialize;

use crate::env::ConfigError;

const VARIABLE: &str = "DATABASE_SECRET_ID";

/// RDS-style secret JSON (what RDS and Secrets Manager's rotation write).
/// `sslmode` and `sslrootcert` are our additions, for poolers that need TLS.
#[derive(Deserialize)]
pub struct RdsSecret {
    pub username: String,
    pub password: String,
    pub host: String,
    port: Option<serde_json::Value>,
    pub dbname: Option<String>,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
}

impl RdsSecret {
    /// The port: a number or a numeric string, 5432 when absent.
    pub fn port(&self) -> Result<u16, ConfigError> {
        let invalid = || ConfigError::new(VARIABLE, "the secret's port is not a port number");
        match &self.port {
            None => Ok(5432),
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(invalid),
            Some(serde_json::Value::String(s)) => s.parse().map_err(|_| invalid()),
            Some(_) => Err(invalid()),
        }
    }
}

/// What a secret holds: a connection string (URL or key=value) as it is,
/// or RDS-style JSON, read into its fields — never turned into text.
pub enum SecretConnection {
    Text(String),
    Rds(RdsSecret),
}

impl SecretConnection {
    /// Reads a secret's string; JSON that is not RDS-style is refused
    /// without echoing it.
    pub fn parse(secret: &str) -> Result<Self, ConfigError> {
        let secret = secret.trim();
        if !secret.starts_with('{') {
            return Ok(Self::Text(secret.to_owned()));
        }
        let rds: RdsSecret = serde_json::from_str(secret).map_err(|_| {
            ConfigError::new(
                VARIABLE,
                "the secret is JSON but not RDS-style (needs username, password, host; port and dbname optional)",
            )
        })?;
        rds.port()?;
        Ok(Self::Rds(rds))
    }
}

/// Carries the SDK's HTTP requests over a client of the same kind as the
/// Supabase check's (`tls::https_client`: reqwest, rustls + ring): the SDK's
/// own HTTPS client would add a second HTTP stack, HTTP/2 and a system
/// trust-store read to the binary.
#[derive(Clone, Debug)]
struct ReqwestConnector(reqwest::Client);

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.0.clone();
        HttpConnectorFuture::new(async move {
            let method = reqwest::Method::from_bytes(request.method().as_bytes())
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            let mut outgoing = client.request(method, request.uri());
            for (name, value) in request.headers() {
                outgoing = outgoing.header(name, value);
            }
            // Secrets Manager requests are small JSON documents, in memory.
            let body = request.body().bytes().unwrap_or_default().to_vec();
            let response = outgoing.body(body).send().await.map_err(|e| {
                if e.is_timeout() {
                    ConnectorError::timeout(e.into())
                } else {
                    ConnectorError::io(e.into())
                }
            })?;
            let status = StatusCode::try_from(response.status().as_u16())
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            let headers = response.headers().clone();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| ConnectorError::io(e.into()))?;
            // A body the SDK sees as a stream: an in-memory body would be
            // printed, secret and all, by the SDK's TRACE events.
            let body = SdkBody::from_body_1_x(http_body_util::Full::new(bytes));
            let mut answer = HttpResponse::new(status, body);
            for (name, value) in &headers {
                if let Ok(value) = value.to_str() {
                    answer
                        .headers_mut()
                        .append(name.as_str().to_owned(), value.to_owned());
                }
            }
            Ok(answer)
        })
    }
}

/// Reads the secret's string. Errors name the variable and the service's
/// error code, never the secret.
pub async fn fetch(secret_id: &str) -> Result<String, ConfigError> {
    let client = crate::tls::https_client(env!("CARGO_PKG_VERSION")).map_err(|_| {
        ConfigError::new(
            VARIABLE,
            "cannot build the HTTPS client for Secrets Manager",
        )
    })?;
    let connector = SharedHttpConnector::new(ReqwestConnector(client));
    let http = http_client_fn(move |_settings, _components| connector.clone());
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            let code = e
                .code()
                .unwrap_or("no error code; check credentials, region and network");
            ConfigError::new(
                VARIABLE,
                format!("cannot read the secret from Secrets Manager ({code})"),
            )
        })?;
    output.secret_string().map(str::to_owned).ok_or_else(|| {
        ConfigError::new(
            VARIABLE,
            "the secret has no string value (binary secrets are not supported)",
        )
    })
}

/// Reads and parses the secret `secret_id`.
pub async fn connection(secret_id: &str) -> Result<SecretConnection, ConfigError> {
    SecretConnection::parse(&fetch(secret_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_json_is_read_into_its_fields_and_the_text_passes_through() {
        let secret = SecretConnection::parse(
            r#"{"username":"app","password":"p'a ss\\","engine":"postgres","host":"db.example.com","port":6543,"dbname":"postgres","dbInstanceIdentifier":"x"}"#,
        )
        .unwrap();
        let SecretConnection::Rds(rds) = secret else {
            panic!("RDS-style JSON")
        };
        assert_eq!(rds.password, "p'a ss\\");
        assert_eq!(
            (rds.host.as_str(), rds.port().unwrap()),
            ("db.example.com", 6543)
        );
        assert_eq!(rds.dbname.as_deref(), Some("postgres"));
        let SecretConnection::Text(url) = SecretConnection::parse(" postgres://u:p@h/d ").unwrap()
        else {
            panic!("a URL")
        };
        assert_eq!(url, "postgres://u:p@h/d");
    }

    #[test]
    fn bad_json_never_echoes() {
        for secret in [
            r#"{"user":"u","password":"hunter2"}"#,
            r#"{"username":"u","password":"hunter2","host":"h","port":"x"}"#,
            r#"{"username":"u","password":"hunter2","host":"h","port":70000}"#,
        ] {
            let error = SecretConnection::parse(secret).err().unwrap();
            assert_eq!(error.variable, "DATABASE_SECRET_ID");
            assert!(!error.to_string().contains("hunter2"));
        }
    }
}
