//! Command line and environment (docs/configuration.md): every flag has its
//! env variable, flags win over env.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use shared::retry::{parse_duration, Bare, Schedule};

pub const DEFAULT_WEBHOOK_SECRET: &str = "dev-webhook-secret";

#[derive(Debug, Parser)]
#[command(
    name = "mock-camber",
    version,
    about = "A standalone mock of the Camber job API: submit, poll, list, cancel, logs, \
             and HMAC-signed webhooks delivered durably with retries.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Exit 0 when the URL answers 200, 1 otherwise (for container healthchecks).
    Healthcheck {
        /// The URL to probe.
        #[arg(long, default_value = "http://127.0.0.1:9000/readyz")]
        url: String,
    },
    /// Audit a job's webhook receiver on a running mock
    /// (docs/receiver-audit.md): start the audit, wait for its report,
    /// print it; exit 1 on any failed case, 2 when it could not run.
    Audit(crate::audit::cli::AuditArgs),
}

#[derive(Clone, Args)]
pub struct Settings {
    /// Address to bind. Bound to a non-loopback address with no --admin-token,
    /// the daemon warns that its admin API is open.
    #[arg(long, env = "MOCK_CAMBER_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to bind; 0 picks a free one. The bound address is printed as
    /// `listening on http://HOST:PORT`.
    #[arg(long, env = "MOCK_CAMBER_PORT", default_value_t = 9000)]
    pub port: u16,

    /// API key accepted as `Authorization: Bearer <key>`; repeat for several
    /// tenants. `KEY=SECRET` gives that tenant a webhook secret of its own
    /// (its webhooks are signed with it, not --webhook-secret), so tenants
    /// of a shared mock cannot sign for each other. None = every non-empty
    /// token is accepted as its own tenant.
    #[arg(long = "api-key", env = "CAMBER_API_KEYS", value_delimiter = ',')]
    pub api_keys: Vec<String>,

    /// Secret for webhook signatures (X-Webhook-Secret hex HMAC and Standard
    /// Webhooks; a `whsec_` secret is base64-decoded for the latter).
    /// Repeat it (or comma-separate the variable) to rotate: the first is
    /// current and keys X-Webhook-Secret; webhook-signature carries one
    /// entry per secret, so receivers on an older one still verify.
    #[arg(
        long = "webhook-secret",
        env = "WEBHOOK_SECRET",
        default_value = DEFAULT_WEBHOOK_SECRET,
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhook_secrets: Vec<String>,

    /// Serve HTTPS with this PEM certificate (chain); needs --tls-key.
    #[arg(long, env = "MOCK_CAMBER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "MOCK_CAMBER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// With --tls-cert: a connection that has not finished its TLS handshake
    /// within this is closed. Handshakes in progress never hold back other
    /// connections (up to 4,096 per worker at once).
    #[arg(long, env = "MOCK_CAMBER_TLS_HANDSHAKE_TIMEOUT", default_value = "2s", value_parser = parse_millis)]
    pub tls_handshake_timeout: Duration,

    /// Callback URL for jobs submitted without `webhook.url`. None = such
    /// jobs run and are pollable but send no webhook.
    #[arg(long, env = "MOCK_CAMBER_WEBHOOK_URL")]
    pub webhook_url: Option<String>,

    /// SQLite database file (WAL). `:memory:` keeps everything in a
    /// temporary file removed at exit.
    #[arg(long, env = "MOCK_CAMBER_DB", default_value = "./data/mock-camber.db")]
    pub db: String,

    /// Duration of each simulated stage (FETCH, OCR, NORMALIZE) in ms; 0 =
    /// as fast as the machine allows; at most a day (86400000).
    #[arg(long, env = "MOCK_CAMBER_STAGE_MS", default_value_t = 25,
          value_parser = clap::value_parser!(u64).range(..=crate::scenario::MAX_SCENARIO_MS))]
    pub stage_ms: u64,

    /// Seed for ids, outcomes and results: the same seed and the same
    /// submissions give the same ids, outcomes and results. Default: random.
    #[arg(long, env = "MOCK_CAMBER_SEED")]
    pub seed: Option<u64>,

    /// Fraction (0..1) of jobs without a scenario that fail with a random
    /// simulator error.
    #[arg(long, env = "MOCK_CAMBER_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub failure_rate: f64,

    /// Fraction (0..1) of submits answered 503 or 429 with Retry-After,
    /// creating nothing.
    #[arg(long, env = "MOCK_CAMBER_SUBMIT_ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub submit_error_rate: f64,

    /// Waits between webhook attempts (comma separated, e.g. 500ms,1s,2m);
    /// ±20 % jitter. After the last one fails the delivery is `dead`.
    #[arg(
        long,
        env = "MOCK_CAMBER_RETRY_SCHEDULE",
        default_value = "500ms,1s,2s,4s,8s,16s,32s,60s",
        value_parser = parse_schedule
    )]
    pub retry_schedule: Schedule,

    /// Time limit of one webhook attempt (connect + response).
    #[arg(long, env = "MOCK_CAMBER_DELIVERY_TIMEOUT", default_value = "5s", value_parser = parse_millis)]
    pub delivery_timeout: Duration,

    /// Finished jobs older than this (by their end) are deleted with their
    /// deliveries, attempts and idempotency records; running or held jobs
    /// and pending webhooks never are. 0 = keep everything.
    #[arg(long, env = "MOCK_CAMBER_RETENTION", default_value = "7d", value_parser = parse_millis)]
    pub retention: Duration,

    /// Most pending webhook deliveries held in memory; the others wait in
    /// SQLite and are paged in by due time, so a dead receiver with a
    /// million queued webhooks costs disk, not RAM.
    #[arg(
        long,
        env = "MOCK_CAMBER_MAX_LOADED_DELIVERIES",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..),
    )]
    pub max_loaded_deliveries: u64,

    /// Most webhook attempts in flight at once, over all receivers.
    #[arg(
        long,
        env = "MOCK_CAMBER_WEBHOOK_MAX_IN_FLIGHT",
        default_value_t = 256,
        value_parser = clap::value_parser!(u64).range(1..),
    )]
    pub webhook_max_in_flight: u64,

    /// Most webhook attempts in flight to one destination (the scheme, host
    /// and port of `webhook.url`). Past it, that destination's due webhooks
    /// wait their turn in the outbox, and free slots go round-robin across
    /// destinations, so a receiver that hangs holds at most this many.
    #[arg(
        long,
        env = "MOCK_CAMBER_WEBHOOK_MAX_PER_DESTINATION",
        default_value_t = 16,
        value_parser = clap::value_parser!(u64).range(1..),
    )]
    pub webhook_max_per_destination: u64,

    #[command(flatten)]
    pub webhook_policy: crate::engine::policy::Policy,

    /// Token guarding /_mock/ (as `Authorization: Bearer <token>`). None =
    /// admin API open.
    #[arg(long, env = "MOCK_CAMBER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Largest accepted request body in bytes; larger → 413.
    #[arg(long, env = "MOCK_CAMBER_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: usize,

    /// Deadline for a whole request body to arrive (larger bodies get one
    /// more second per 64 KiB past the first MiB); a body still incomplete
    /// is answered 408 `REQUEST_TIMEOUT` and its connection closed.
    #[arg(long, env = "MOCK_CAMBER_BODY_TIMEOUT", default_value = "30s", value_parser = parse_millis)]
    pub body_timeout: Duration,

    /// JSON file with scenario rules (a list, or `{"rules": [...]}`) loaded
    /// at start.
    #[arg(long, env = "MOCK_CAMBER_SCENARIOS")]
    pub scenarios: Option<PathBuf>,

    /// HTTP worker threads. Default: one per CPU.
    #[arg(long, env = "MOCK_CAMBER_WORKERS")]
    pub workers: Option<usize>,

    /// Most client connections one worker holds open; past it the listener
    /// stops accepting until one closes (idle ones close after 5 s). Default:
    /// what fits in the open-file limit (raised to the hard limit at start)
    /// after a reserve for webhooks and the database, at most 25,000.
    #[arg(long, env = "MOCK_CAMBER_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,

    /// Most API requests kept in the in-memory request journal.
    #[arg(long, env = "MOCK_CAMBER_JOURNAL_SIZE", default_value_t = 10_000)]
    pub journal_size: usize,

    /// Most memory the request journal holds (bytes, roughly); the oldest
    /// entries go first. Each body is kept raw, at most 16 KiB of it.
    #[arg(long, env = "MOCK_CAMBER_JOURNAL_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub journal_bytes: u64,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("`{s}` is not between 0 and 1"))
    }
}

/// `250ms`, `2s`, `1m`, `1h`, or bare milliseconds (as the README has
/// always said for this binary; api's bare numbers are seconds).
fn parse_millis(s: &str) -> Result<Duration, String> {
    parse_duration(s, Bare::Millis)
}

fn parse_schedule(s: &str) -> Result<Schedule, String> {
    Schedule::parse(s, Bare::Millis)
}

// Secrets are redacted, so `{:?}` of the settings can be logged safely.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |set: bool| if set { "***" } else { "(none)" };
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "api_keys",
                &format_args!("{} key(s), redacted", self.api_keys.len()),
            )
            .field(
                "webhook_secrets",
                &format_args!("{} secret(s), redacted", self.webhook_secrets.len()),
            )
            .field("webhook_url", &self.webhook_url)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("tls_handshake_timeout", &self.tls_handshake_timeout)
            .field("db", &self.db)
            .field("stage_ms", &self.stage_ms)
            .field("seed", &self.seed)
            .field("failure_rate", &self.failure_rate)
            .field("submit_error_rate", &self.submit_error_rate)
            .field("retry_schedule", &self.retry_schedule)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("retention", &self.retention)
            .field("max_loaded_deliveries", &self.max_loaded_deliveries)
            .field("webhook_max_in_flight", &self.webhook_max_in_flight)
            .field(
                "webhook_max_per_destination",
                &self.webhook_max_per_destination,
            )
            .field("webhook_policy", &self.webhook_policy)
            .field(
                "admin_token",
                &format_args!("{}", redacted(self.admin_token.is_some())),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_timeout", &self.body_timeout)
            .field("scenarios", &self.scenarios)
            .field("workers", &self.workers)
            .field("max_connections", &self.max_connections)
            .field("journal_size", &self.journal_size)
            .field("journal_bytes", &self.journal_bytes)
            .finish()
    }
}

impl Settings {
    /// Settings for tests: port 0, in-memory store, fast stages, short retries.
    pub fn for_tests() -> Self {
        let cli = Cli::parse_from([
            "mock-camber",
            "--port",
            "0",
            "--db",
            ":memory:",
            "--stage-ms",
            "0",
            "--retry-schedule",
            "10ms,20ms",
            "--delivery-timeout",
            "2s",
            "--workers",
            "1",
        ]);
        cli.settings
    }

    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_millis("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_millis("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_millis("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_millis("15"), Ok(Duration::from_millis(15)));
        assert!(parse_millis("fast").is_err());
        // humantime's syntax: days are a unit now, parsecs still are not.
        assert_eq!(parse_millis("3d"), Ok(Duration::from_secs(3 * 86_400)));
        assert!(parse_millis("3 parsecs").is_err());
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let cli = Cli::parse_from([
            "mock-camber",
            "--api-key",
            "tenant-key-0123456789",
            "--webhook-secret",
            "whsec-very-secret-value",
            "--admin-token",
            "admin-token-value",
        ]);
        let shown = format!("{:?}", cli.settings);
        for secret in [
            "tenant-key-0123456789",
            "whsec-very-secret-value",
            "admin-token-value",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("1 key(s), redacted"), "{shown}");
        assert!(
            shown.contains("stage_ms: 25"),
            "other fields still show: {shown}"
        );
    }

    #[test]
    fn default_schedule_is_the_specs() {
        let cli = Cli::parse_from(["mock-camber"]);
        let ms: Vec<u128> = cli
            .settings
            .retry_schedule
            .0
            .iter()
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000]);
        assert_eq!(cli.settings.port, 9000);
        assert_eq!(cli.settings.stage_ms, 25);
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        assert!(Cli::try_parse_from(["mock-camber", "--failure-rate", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["mock-camber", "--failure-rate", "0.25"]).is_ok());
    }

    #[test]
    fn webhook_allow_and_deny_repeat_or_comma_separate_and_refuse_what_they_cannot_read() {
        let cli = Cli::parse_from([
            "mock-camber",
            "--webhook-deny",
            "127.0.0.0/8,::1",
            "--webhook-deny",
            "169.254.0.0/16",
            "--webhook-allow",
            "hooks.example",
        ]);
        let p = &cli.settings.webhook_policy;
        assert_eq!(p.deny.len(), 3);
        assert_eq!(p.deny[2].to_string(), "169.254.0.0/16");
        assert_eq!(p.allow.len(), 1);
        assert!(Cli::parse_from(["mock-camber"])
            .settings
            .webhook_policy
            .is_open());
        // Deny takes ranges only; a name is refused at start.
        assert!(Cli::try_parse_from(["mock-camber", "--webhook-deny", "evil.example"]).is_err());
        assert!(Cli::try_parse_from(["mock-camber", "--webhook-deny", "10.0.0.0/40"]).is_err());
    }

    #[test]
    fn api_keys_repeat() {
        let cli = Cli::parse_from(["mock-camber", "--api-key", "a", "--api-key", "b"]);
        assert_eq!(cli.settings.api_keys, ["a", "b"]);
    }

    #[test]
    fn webhook_secrets_repeat_or_comma_separate_and_the_first_is_current() {
        let cli = Cli::parse_from(["mock-camber"]);
        assert_eq!(cli.settings.webhook_secrets, [DEFAULT_WEBHOOK_SECRET]);
        let cli = Cli::parse_from([
            "mock-camber",
            "--webhook-secret",
            "new",
            "--webhook-secret",
            "old",
        ]);
        assert_eq!(cli.settings.webhook_secrets, ["new", "old"]);
        let cli = Cli::parse_from(["mock-camber", "--webhook-secret", "new,old"]);
        assert_eq!(cli.settings.webhook_secrets, ["new", "old"]);
    }
}
