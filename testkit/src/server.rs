//! [`MockCamber`]: the real `mock_camber::Application` in-process on port 0,
//! and its [`Builder`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mock_camber::{Application, Settings};
use serde_json::{json, Value};
use shared::retry::Schedule;

use crate::admin::Admin;
use crate::http::Http;
use crate::receiver::WebhookReceiver;
use crate::runner::{self, KitThread, OnStop};
use crate::tenant::Tenant;

/// The secret a [`MockCamber`] signs webhooks with unless
/// [`Builder::webhook_secret`] says otherwise; [`WebhookReceiver::start`]
/// verifies against it.
pub const WEBHOOK_SECRET: &str = "mock-camber-testkit-secret";

/// The real mock-camber, in this process, on a free loopback port with an
/// in-memory store: stages take no time, a failed webhook is retried after
/// 10 ms and 20 ms. Dropping it shuts it down (its port is closed once
/// `drop` returns).
///
/// It runs on a thread of its own with its own actix system, so it works
/// the same under `#[tokio::test]` and `#[actix_web::test]`.
///
/// ```
/// use mock_camber_testkit::MockCamber;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mock = MockCamber::start().await;
/// assert!(mock.uri().starts_with("http://127.0.0.1:"));
/// let tenant = mock.tenant();
/// assert!(tenant.list(None).await.unwrap().is_empty());
/// # }
/// ```
pub struct MockCamber {
    uri: String,
    port: u16,
    secrets: Vec<String>,
    open_keys: bool,
    admin_token: Option<String>,
    http: Http,
    // Last: dropped after the clients above.
    _thread: KitThread,
}

/// Sets up a [`MockCamber`] before it starts: stage time, seed, webhook
/// secrets, retry schedule, scenario rules, and any other setting of the
/// daemon through [`Builder::settings`].
///
/// ```
/// use std::time::Duration;
/// use mock_camber_testkit::MockCamber;
/// use serde_json::json;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mock = MockCamber::builder()
///     .stage_time(Duration::from_millis(5))
///     .seed(7)
///     .retry_schedule([Duration::from_millis(5)])
///     .rules(json!([{"match": {"/input/filename": "/hold/"}, "scenario": {"hold": true}}]))
///     .start()
///     .await;
/// let config = mock.admin().config().await.unwrap();
/// assert_eq!(config["stage_ms"], 5);
/// # }
/// ```
pub struct Builder {
    settings: Settings,
    rules: Option<Value>,
}

static TENANTS: AtomicU64 = AtomicU64::new(0);

impl MockCamber {
    /// Starts one with the defaults (see [`MockCamber`]).
    ///
    /// # Panics
    /// When it cannot start (see [`Builder::try_start`]).
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    pub fn builder() -> Builder {
        let mut settings = Settings::for_tests();
        settings.webhook_secrets = vec![WEBHOOK_SECRET.to_owned()];
        settings.retry_schedule =
            Schedule(vec![Duration::from_millis(10), Duration::from_millis(20)]);
        Builder {
            settings,
            rules: None,
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` when started with TLS).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The secrets webhooks are signed with, the current one first.
    pub fn webhook_secrets(&self) -> &[String] {
        &self.secrets
    }

    /// The admin API (`/_mock/…`).
    pub fn admin(&self) -> Admin {
        Admin::new(
            self.http.clone(),
            self.uri.clone(),
            self.admin_token.clone(),
        )
    }

    /// A client of a fresh tenant: a new API key, so its jobs are its own
    /// (no `reset` needed between tests sharing a mock).
    ///
    /// # Panics
    /// When the mock was started with [`Builder::api_key`]: only those keys
    /// are accepted then; use [`MockCamber::tenant_with_key`].
    pub fn tenant(&self) -> Tenant {
        assert!(
            self.open_keys,
            "this mock accepts only the API keys it was started with: use tenant_with_key"
        );
        let n = TENANTS.fetch_add(1, Ordering::Relaxed);
        self.tenant_with_key(&format!("testkit-tenant-{}-{n}", self.port))
    }

    /// A client using `key` as its API key.
    pub fn tenant_with_key(&self, key: &str) -> Tenant {
        Tenant::new(self.http.clone(), self.uri.clone(), key.to_owned())
    }

    /// A [`WebhookReceiver`] that verifies against this mock's secrets.
    pub async fn webhook_receiver(&self) -> WebhookReceiver {
        WebhookReceiver::start_with_secrets(self.secrets.clone()).await
    }
}

impl Builder {
    /// How long each of the three stages takes (default: no time).
    pub fn stage_time(mut self, each: Duration) -> Self {
        self.settings.stage_ms = each.as_millis().try_into().unwrap_or(u64::MAX);
        self
    }

    /// Seeds ids, outcomes and results: the same seed and submissions give
    /// the same ids.
    pub fn seed(mut self, seed: u64) -> Self {
        self.settings.seed = Some(seed);
        self
    }

    /// Signs webhooks with this secret (default [`WEBHOOK_SECRET`]).
    pub fn webhook_secret(self, secret: &str) -> Self {
        self.webhook_secrets([secret])
    }

    /// Several secrets, as during a rotation: the first is current.
    pub fn webhook_secrets<S: Into<String>>(
        mut self,
        secrets: impl IntoIterator<Item = S>,
    ) -> Self {
        self.settings.webhook_secrets = secrets.into_iter().map(Into::into).collect();
        self
    }

    /// The waits between webhook attempts (default 10 ms, 20 ms; jitter
    /// ±20 %). After the last one fails the delivery is dead.
    pub fn retry_schedule(mut self, waits: impl IntoIterator<Item = Duration>) -> Self {
        self.settings.retry_schedule = Schedule(waits.into_iter().collect());
        self
    }

    /// Scenario rules (the `rules` of `PUT /_mock/config`), set before
    /// `start` returns.
    pub fn rules(mut self, rules: Value) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Accept only this API key (repeat for more; `KEY=SECRET` gives its
    /// tenant a webhook secret of its own). Default: any key is a tenant.
    pub fn api_key(mut self, key: &str) -> Self {
        self.settings.api_keys.push(key.to_owned());
        self
    }

    /// Guard `/_mock/` with this token; [`MockCamber::admin`] sends it.
    pub fn admin_token(mut self, token: &str) -> Self {
        self.settings.admin_token = Some(token.to_owned());
        self
    }

    /// Bind this port instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.settings.port = port;
        self
    }

    /// Any other setting of the daemon (its command-line flags).
    pub fn settings(mut self, tweak: impl FnOnce(&mut Settings)) -> Self {
        tweak(&mut self.settings);
        self
    }

    /// # Panics
    /// When it cannot start (see [`Builder::try_start`]).
    pub async fn start(self) -> MockCamber {
        self.try_start()
            .await
            .unwrap_or_else(|e| panic!("mock-camber did not start: {e}"))
    }

    /// Starts it, or says why not (a port in use, a bad secret, rules the
    /// mock refuses).
    pub async fn try_start(self) -> Result<MockCamber, String> {
        let settings = self.settings;
        let secrets = settings.webhook_secrets.clone();
        let open_keys = settings.api_keys.iter().all(|k| k.trim().is_empty());
        let admin_token = settings.admin_token.clone();
        let ((uri, port), http, thread) = runner::spawn("mock-camber", move || async move {
            let app = Application::build(settings)
                .await
                .map_err(|e| e.to_string())?;
            let started = (app.address(), app.port());
            let handle = app.handle();
            let run = actix_rt::spawn(app.run_until_stopped());
            let on_stop: OnStop = Box::new(move || {
                Box::pin(async move {
                    // Not graceful: a test's pooled keep-alive connection
                    // would hold a graceful stop for seconds.
                    handle.stop(false).await;
                    let _ = run.await;
                })
            });
            Ok((started, on_stop))
        })
        .await?;
        let mock = MockCamber {
            uri,
            port,
            secrets,
            open_keys,
            admin_token,
            http,
            _thread: thread,
        };
        if let Some(rules) = self.rules {
            mock.admin()
                .set_config(&json!({ "rules": rules }))
                .await
                .map_err(|e| format!("the rules were refused: {e}"))?;
        }
        Ok(mock)
    }
}
