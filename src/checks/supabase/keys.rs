//! The key the gateway probes send: a publishable (or legacy anon) key,
//! never one that bypasses row-level security.

use reqwest::header::HeaderValue;
use reqwest::RequestBuilder;

use crate::env::ConfigError;
use crate::failure::Failure;
use crate::outcome::Reason;

/// `SUPABASE_ANON_KEY`, trimmed: a key a header can carry and that is not
/// a secret one.
pub(super) fn publishable_key(raw: &str) -> Result<&str, ConfigError> {
    let key = raw.trim();
    if key.chars().any(|c| c.is_ascii_control() || !c.is_ascii()) {
        return Err(ConfigError::new(
            "SUPABASE_ANON_KEY",
            "contains characters a header cannot carry",
        ));
    }
    refuse_secret_key(key)?;
    Ok(key)
}

/// A key that bypasses row-level security has no place in a public
/// function, and the probes need no privilege: a secret key (`sb_secret_…`)
/// or a legacy JWT whose `role` claim is `service_role` is refused. The
/// message never repeats the key.
fn refuse_secret_key(key: &str) -> Result<(), ConfigError> {
    let refused = |what: &str| {
        Err(ConfigError::new(
            "SUPABASE_ANON_KEY",
            format!(
                "is {what}, which bypasses row-level security; use the project's publishable key \
                 (sb_publishable_…) or legacy anon key (Project Settings → API Keys)"
            ),
        ))
    };
    if key.starts_with("sb_secret_") {
        return refused("a secret key (sb_secret_…)");
    }
    if jwt_role(key).as_deref() == Some("service_role") {
        return refused("a service_role key");
    }
    Ok(())
}

/// `request` with the project's key: in `apikey`, and also as a bearer
/// token when it is a legacy JWT (newer `sb_…` keys go only in `apikey`).
pub(super) fn with_key(request: RequestBuilder, key: &str) -> Result<RequestBuilder, Failure> {
    let mut apikey = HeaderValue::from_str(key).map_err(|_| {
        Failure::new(
            Reason::NotConfigured,
            "API key is not a valid header value",
        )
    })?;
    // Sensitive values are left out of every Debug output (and so of traces).
    apikey.set_sensitive(true);
    let request = request.header("apikey", apikey);
    Ok(if is_jwt_shaped(key) {
        request.bearer_auth(key)
    } else {
        request
    })
}

/// Legacy Supabase keys are JWTs (three base64url parts) and also go in
/// `Authorization`; newer `sb_…` keys go only in `apikey`.
pub(super) fn is_jwt_shaped(key: &str) -> bool {
    let parts: Vec<&str> = key.split('.').collect();
    !key.starts_with("sb_")
        && parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The `role` claim of a JWT-shaped key (its signature is not checked:
/// this only reads what the key claims to be).
pub(super) fn jwt_role(key: &str) -> Option<String> {
    use base64::Engine;
    if !is_jwt_shaped(key) {
        return None;
    }
    let payload = key.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("role")?.as_str().map(str::to_owned)
}

