//! What start-up refuses or warns about before anything runs: webhook
//! secrets, the TLS certificate, the --scenarios file, an open admin API.

use serde_json::Value;

use super::StartupError;
use crate::config::{Settings, DEFAULT_WEBHOOK_SECRET};
use crate::scenario::{parse_rules, CompiledRule};

/// What is refused before anything starts: an empty webhook secret, and
/// secrets Standard Webhooks libraries cannot decode.
pub(super) fn check_settings(settings: &Settings) -> Result<(), StartupError> {
    if settings.webhook_secrets.iter().any(|s| s.is_empty()) || settings.webhook_secrets.is_empty()
    {
        return Err(StartupError::Config(
            "--webhook-secret / WEBHOOK_SECRET: a secret cannot be empty \
             (check for a stray comma)"
                .to_owned(),
        ));
    }
    check_secrets(settings)
}

/// The TLS server config with --tls-cert and --tls-key (warning of an
/// expired certificate), else none.
pub(super) fn tls_config(
    settings: &Settings,
) -> Result<Option<rustls::ServerConfig>, StartupError> {
    Ok(match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => {
            let config = shared::tls::server_config(cert, "--tls-cert", key, "--tls-key")
                .map_err(StartupError::Config)?;
            warn_if_expired(cert);
            Some(config)
        }
        _ => None,
    })
}

/// The scenario rules of --scenarios (none without it).
pub(super) fn load_rules(settings: &Settings) -> Result<Vec<CompiledRule>, StartupError> {
    Ok(match &settings.scenarios {
        None => Vec::new(),
        Some(path) => {
            let err = |msg: String| StartupError::Scenarios {
                path: path.display().to_string(),
                msg,
            };
            let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
            parse_rules(v).map_err(err)?
        }
    })
}

/// A `whsec_` secret that Standard Webhooks libraries cannot decode is
/// refused here, in one line naming the flag, rather than signing every
/// webhook with a key no receiver derives.
fn check_secrets(s: &Settings) -> Result<(), StartupError> {
    for secret in &s.webhook_secrets {
        shared::signing::check_secret(secret)
            .map_err(|e| StartupError::Config(format!("--webhook-secret / WEBHOOK_SECRET: {e}")))?;
    }
    let tenant = crate::tenant::tenant_secrets(&s.api_keys);
    for secret in tenant.values().flatten() {
        shared::signing::check_secret(secret).map_err(|e| {
            StartupError::Config(format!(
                "--api-key / CAMBER_API_KEYS (a tenant's KEY=SECRET): {e}"
            ))
        })?;
    }
    Ok(())
}

/// An expired certificate still starts the server (a test setup may want
/// exactly that), but every verifying client will refuse it: say so.
fn warn_if_expired(cert: &std::path::Path) {
    let Some(not_after) = shared::tls::leaf_not_after(cert) else {
        return;
    };
    if not_after < chrono::Utc::now().timestamp() {
        let when = chrono::DateTime::from_timestamp(not_after, 0)
            .map_or_else(|| not_after.to_string(), |t| t.to_rfc3339());
        log::warn!(
            "--tls-cert {}: the certificate expired at {when}; clients that verify it will refuse every connection",
            cert.display()
        );
    }
}

pub(super) fn warn_about(s: &Settings) {
    if s.api_keys.iter().all(|k| k.trim().is_empty()) {
        log::warn!(
            "no --api-key configured: every non-empty bearer token is accepted as its own tenant"
        );
    }
    if s.webhook_secrets
        .iter()
        .any(|w| w == DEFAULT_WEBHOOK_SECRET)
    {
        log::warn!("using the default webhook secret; set --webhook-secret / WEBHOOK_SECRET");
    }
    if !s.is_loopback() && s.admin_token.is_none() {
        log::warn!(
            "bound to {} with no --admin-token: the admin API under /_mock/ is open to anyone who can reach it",
            s.host
        );
    }
}
