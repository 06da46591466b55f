//! The api's command line and environment (docs/configuration.md): one
//! `Settings` struct, every flag with its env variable; flags win over env.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use shared::retry::Schedule;
use shared::retry::{self, Bare};

use clap::{Args, Parser, Subcommand};

/// The webhook secret both services use when none is configured. Fine on a
/// laptop, refused in staging and prod.
pub const DEV_WEBHOOK_SECRET: &str = "dev-webhook-secret";

#[derive(Parser, Clone)]
#[command(
    name = "api",
    version,
    // A later flag wins over an earlier one (scripts can append overrides).
    args_override_self = true,
    about = "The jobs API: stores jobs in SQLite, runs them on Camber, receives Camber's webhooks."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Subcommand, Clone, Debug)]
pub enum Command {
    /// Exit 0 when the URL answers 200, 1 otherwise (for container healthchecks).
    Healthcheck {
        /// The URL to GET.
        #[arg(long, default_value = "http://127.0.0.1:8000/readyz")]
        url: String,
    },
}

#[derive(Args, Clone)]
pub struct Settings {
    /// Address to bind.
    #[arg(long, env = "API_HOST", default_value = "127.0.0.1", global = true)]
    pub host: String,

    /// Port to bind; 0 picks a free one (the bound address is printed).
    #[arg(long, env = "API_PORT", default_value_t = 8000, global = true)]
    pub port: u16,

    /// Base URL of the Camber API (mock-camber or the real one).
    #[arg(
        long,
        env = "CAMBER_API_ENDPOINT",
        default_value = "http://127.0.0.1:9000",
        global = true
    )]
    pub camber_endpoint: String,

    /// Bearer key sent to Camber.
    #[arg(
        long,
        env = "CAMBER_API_KEY",
        default_value = "dev-key",
        hide_env_values = true,
        global = true
    )]
    pub camber_api_key: Secret,

    /// Camber app that runs our jobs (`app` of the submit body).
    #[arg(
        long,
        env = "CAMBER_APP_NAME",
        default_value = "mock-app",
        global = true
    )]
    pub camber_app: String,

    /// Shared secret of Camber's webhook signature (X-Webhook-Secret); the
    /// first is also the root of the upload URL signing key. Repeat it (or
    /// comma-separate the variable) during a rotation: a webhook verifying
    /// under any of them is accepted. The default is refused when
    /// SERVICE_ENV is staging or prod.
    #[arg(
        long = "webhook-secret",
        env = "WEBHOOK_SECRET",
        default_value = DEV_WEBHOOK_SECRET,
        value_delimiter = ',',
        hide_env_values = true,
        global = true
    )]
    pub webhook_secrets: Vec<Secret>,

    /// Public base URL of this service, used in upload URLs and as Camber's
    /// callback base; defaults to http://HOST:PORT as bound.
    #[arg(long, env = "PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// SQLite database file (created with its directory when missing).
    #[arg(
        long,
        env = "DATABASE_PATH",
        default_value = "./data/api.db",
        global = true
    )]
    pub db: PathBuf,

    /// Directory of the artifact store: <dir>/<job_id>/{input,result.json,manifest.json}.
    #[arg(
        long,
        env = "ARTIFACT_DIR",
        default_value = "./data/artifacts",
        global = true
    )]
    pub artifact_dir: PathBuf,

    /// A job `processing` for longer than this is polled on Camber by the reconciler.
    #[arg(long, env = "API_RECONCILE_AFTER", default_value = "30s", value_parser = parse_duration, global = true)]
    pub reconcile_after: Duration,

    /// Largest file_size_bytes a job may announce (and upload).
    #[arg(
        long,
        env = "API_MAX_FILE_BYTES",
        default_value_t = 26_214_400,
        global = true
    )]
    pub max_file_bytes: u64,

    /// dev, staging or prod; staging and prod refuse the default webhook secret.
    #[arg(long, env = "SERVICE_ENV", default_value = "dev", global = true)]
    pub service_env: String,

    /// Waits between submit attempts of a job Camber could not take; after
    /// the last one the job fails with CAMBER_UNAVAILABLE.
    #[arg(
        long,
        env = "API_SUBMIT_RETRY_SCHEDULE",
        default_value = "500ms,1s,2s,4s,8s,16s,30s,60s,60s,60s",
        value_parser = parse_schedule,
        global = true
    )]
    pub submit_retry_schedule: Schedule,

    /// How often the background submitter and reconciler look for work.
    #[arg(long, env = "API_WORKER_INTERVAL", default_value = "200ms", value_parser = parse_duration, global = true)]
    pub worker_interval: Duration,

    /// Timeout of one request to Camber (connect + response).
    #[arg(long, env = "CAMBER_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub camber_timeout: Duration,

    /// Deadline for a whole request body to arrive; larger bodies (an
    /// upload) get one more second per 64 KiB past the first MiB. A body
    /// still incomplete is answered 408 `REQUEST_TIMEOUT` and its
    /// connection closed.
    #[arg(long, env = "API_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration, global = true)]
    pub body_timeout: Duration,

    /// How long an upload_url stays valid.
    #[arg(long, env = "API_UPLOAD_URL_TTL", default_value = "1h", value_parser = parse_duration, global = true)]
    pub upload_url_ttl: Duration,

    /// PEM file of extra CA certificates trusted for an https Camber
    /// endpoint, besides the public roots (e.g. a mock-camber serving a
    /// self-signed or private-CA certificate).
    #[arg(long, env = "CAMBER_CA_CERT", global = true)]
    pub camber_ca_cert: Option<PathBuf>,
}

impl Settings {
    /// Settings from an argument list (no subcommand), as tests build them.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args).map(|cli| cli.settings)
    }

    /// Refuses configurations that must not run (the dev secret outside dev).
    pub fn check(&self) -> Result<(), String> {
        let env = self.service_env.to_ascii_lowercase();
        let strict = matches!(env.as_str(), "staging" | "prod" | "production");
        if strict && (self.webhook_secrets.iter()).any(|s| s.expose() == DEV_WEBHOOK_SECRET) {
            return Err(format!(
                "refusing to start: SERVICE_ENV={} needs a WEBHOOK_SECRET other than the development default",
                self.service_env
            ));
        }
        if self.webhook_secrets.is_empty()
            || (self.webhook_secrets.iter()).any(|s| s.expose().is_empty())
        {
            return Err(
                "refusing to start: WEBHOOK_SECRET is empty (or holds an empty entry: check for a stray comma)"
                    .to_owned(),
            );
        }
        for secret in &self.webhook_secrets {
            shared::signing::check_secret(secret.expose()).map_err(|e| {
                format!("refusing to start: --webhook-secret / WEBHOOK_SECRET: {e}")
            })?;
        }
        if self.submit_retry_schedule.is_empty() {
            return Err("the submit retry schedule needs at least one step".to_owned());
        }
        Ok(())
    }
}

// Secrets are redacted so that `{:?}` of the settings can be logged safely.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("camber_endpoint", &self.camber_endpoint)
            .field("camber_api_key", &self.camber_api_key)
            .field("camber_app", &self.camber_app)
            .field("webhook_secrets", &self.webhook_secrets)
            .field("public_url", &self.public_url)
            .field("db", &self.db)
            .field("artifact_dir", &self.artifact_dir)
            .field("reconcile_after", &self.reconcile_after)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("service_env", &self.service_env)
            .field("submit_retry_schedule", &self.submit_retry_schedule)
            .field("worker_interval", &self.worker_interval)
            .field("camber_timeout", &self.camber_timeout)
            .field("upload_url_ttl", &self.upload_url_ttl)
            .field("body_timeout", &self.body_timeout)
            .field("camber_ca_cert", &self.camber_ca_cert)
            .finish()
    }
}

/// A string that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The bytes that key an HMAC (see `shared::signing::verify_hex_any`).
impl AsRef<[u8]> for Secret {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// `250ms`, `2s`, `5m`, `1h`, or a bare number of seconds (api's documented
/// unit); the syntax is shared with mock-camber.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    retry::parse_duration(s, Bare::Secs)
}

/// `500ms,1s,2s` → a schedule of three waits.
pub fn parse_schedule(s: &str) -> Result<Schedule, String> {
    Schedule::parse(s, Bare::Secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("fast").is_err());
        // humantime's syntax (shared with mock-camber): days are a unit.
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(3 * 86_400)));
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn schedule_parses_comma_separated_steps() {
        assert_eq!(
            parse_schedule("10ms,20ms"),
            Ok(Schedule(vec![
                Duration::from_millis(10),
                Duration::from_millis(20)
            ]))
        );
    }

    #[test]
    fn defaults_match_the_spec_table() {
        let s = Settings::from_args(["api"]).unwrap();
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!(s.camber_endpoint, "http://127.0.0.1:9000");
        assert_eq!(s.camber_app, "mock-app");
        assert_eq!(s.reconcile_after, Duration::from_secs(30));
        assert_eq!(s.max_file_bytes, 26_214_400);
    }

    #[test]
    fn the_dev_secret_is_refused_in_staging_and_prod() {
        for env in ["staging", "prod"] {
            let s = Settings::from_args([
                "api",
                "--service-env",
                env,
                "--webhook-secret",
                DEV_WEBHOOK_SECRET,
            ])
            .unwrap();
            assert!(s.check().is_err(), "{env}");
        }
        let s = Settings::from_args(["api", "--service-env", "prod", "--webhook-secret", "s3cret"])
            .unwrap();
        assert!(s.check().is_ok());
        let s = Settings::from_args([
            "api",
            "--service-env",
            "prod",
            "--webhook-secret",
            "new,dev-webhook-secret",
        ])
        .unwrap();
        assert!(s.check().is_err(), "nor as an older secret");
    }

    #[test]
    fn webhook_secrets_repeat_or_comma_separate_and_none_may_be_empty() {
        let s = Settings::from_args(["api", "--webhook-secret", "new", "--webhook-secret", "old"])
            .unwrap();
        let shown: Vec<&str> = s.webhook_secrets.iter().map(Secret::expose).collect();
        assert_eq!(shown, ["new", "old"]);
        let s = Settings::from_args(["api", "--webhook-secret", "new,old"]).unwrap();
        assert_eq!(s.webhook_secrets.len(), 2);
        assert!(s.check().is_ok());
        for bad in ["", "new,", ",old"] {
            let s = Settings::from_args(["api", "--webhook-secret", bad]).unwrap();
            assert!(s.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let s = Settings::from_args([
            "api",
            "--camber-api-key",
            "key-123",
            "--webhook-secret",
            "hush-456",
        ])
        .unwrap();
        let text = format!("{s:?}");
        assert!(
            !text.contains("key-123") && !text.contains("hush-456"),
            "{text}"
        );
    }
}
