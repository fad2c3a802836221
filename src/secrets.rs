//! `DATABASE_SECRET_ID`: the database connection read once at start-up from
//! AWS Secrets Manager, through the AWS SDK's default credential chain.
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

use crate::env::{ConfigError, Source};

const VARIABLE: &str = "DATABASE_SECRET_ID";

/// RDS-style secret JSON (what RDS and Secrets Manager's rotation write).
/// `sslmode` and `sslrootcert` are our additions, for poolers that need TLS.
#[derive(Deserialize)]
struct RdsSecret {
    username: String,
    password: String,
    host: String,
    port: Option<serde_json::Value>,
    dbname: Option<String>,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// A value in a key=value connection string, quoted.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The connection string a secret holds: a URL or key=value string as it
/// is, or RDS-style JSON turned into key=value.
pub fn connection_string(secret: &str) -> Result<String, ConfigError> {
    let secret = secret.trim();
    if !secret.starts_with('{') {
        return Ok(secret.to_owned());
    }
    let rds: RdsSecret = serde_json::from_str(secret).map_err(|_| {
        ConfigError::new(
            VARIABLE,
            "the secret is JSON but not RDS-style (needs username, password, host; port and dbname optional)",
        )
    })?;
    let port = match &rds.port {
        None => "5432".to_owned(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::String(s)) if s.parse::<u16>().is_ok() => s.clone(),
        Some(_) => {
            return Err(ConfigError::new(
                VARIABLE,
                "the secret's port is not a port number",
            ))
        }
    };
    let mut parts = vec![
        format!("host={}", quoted(&rds.host)),
        format!("port={port}"),
        format!("user={}", quoted(&rds.username)),
        format!("password={}", quoted(&rds.password)),
    ];
    if let Some(dbname) = &rds.dbname {
        parts.push(format!("dbname={}", quoted(dbname)));
    }
    if let Some(mode) = &rds.sslmode {
        parts.push(format!("sslmode={}", quoted(mode)));
    }
    if let Some(root) = &rds.sslrootcert {
        parts.push(format!("sslrootcert={}", quoted(root)));
    }
    Ok(parts.join(" "))
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

/// The environment with `DATABASE_URL` filled in from the secret when
/// `DATABASE_SECRET_ID` stands in for it.
pub struct Resolved<'a> {
    base: &'a dyn Source,
    database_url: Option<String>,
    secret_id: Option<String>,
}

impl Resolved<'_> {
    /// The secret `DATABASE_URL` was read from, if it was.
    pub fn secret_id(&self) -> Option<&str> {
        self.secret_id.as_deref()
    }
}

impl Source for Resolved<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match (&self.database_url, name) {
            (Some(url), "DATABASE_URL") => Some(url.clone()),
            _ => self.base.get(name),
        }
    }
}

/// Reads the secret only when `DATABASE_URL` is unset and
/// `DATABASE_SECRET_ID` is set; otherwise fetches nothing.
pub async fn resolve(env: &dyn Source) -> Result<Resolved<'_>, ConfigError> {
    let (database_url, secret_id) = match (env.get("DATABASE_URL"), env.get(VARIABLE)) {
        (None, Some(secret_id)) => {
            let secret_id = secret_id.trim().to_owned();
            let url = connection_string(&fetch(&secret_id).await?)?;
            (Some(url), Some(secret_id))
        }
        _ => (None, None),
    };
    Ok(Resolved {
        base: env,
        database_url,
        secret_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_json_becomes_a_quoted_key_value_string() {
        let s = connection_string(
            r#"{"username":"app","password":"p'a ss\\","engine":"postgres","host":"db.example.com","port":6543,"dbname":"postgres","dbInstanceIdentifier":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            r#"host='db.example.com' port=6543 user='app' password='p\'a ss\\' dbname='postgres'"#
        );
        let parsed = crate::db::DbConfig::parse(&s, Default::default(), 1).unwrap();
        assert_eq!(parsed.password(), Some("p'a ss\\"));
    }

    #[test]
    fn urls_pass_through_and_bad_json_never_echoes() {
        assert_eq!(
            connection_string(" postgres://u:p@h/d ").unwrap(),
            "postgres://u:p@h/d"
        );
        let error = connection_string(r#"{"user":"u","password":"hunter2"}"#).unwrap_err();
        assert_eq!(error.variable, "DATABASE_SECRET_ID");
        assert!(!error.to_string().contains("hunter2"));
        let error =
            connection_string(r#"{"username":"u","password":"hunter2","host":"h","port":"x"}"#)
                .unwrap_err();
        assert!(!error.to_string().contains("hunter2"));
    }
}
