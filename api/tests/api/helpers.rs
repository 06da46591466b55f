//! Test harness: the real mock-camber in-process (mock-camber-testkit, on
//! port 0), the api `Application` on port 0, one helper per request, and
//! `wait_until`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use api::{Application, Settings};
pub use mock_camber_testkit::{Builder, MockCamber};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const SECRET: &str = "test-webhook-secret";
pub const API_KEY: &str = "test-key";
pub const APP_NAME: &str = "rythmiq-worker";

/// Polls `check` until it yields `Some`, or panics with `what` after `timeout`.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The mock-camber binary, for the tests that need it as a process of its
/// own (`process.rs`: its logs at trace level).
pub fn mock_binary() -> PathBuf {
    // target/debug/deps/api-… → target/debug/mock-camber
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug");
    let bin = dir.join(format!("mock-camber{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p mock-camber` first",
        bin.display()
    );
    bin
}

/// The real mock-camber in-process (mock-camber-testkit) on a free port,
/// set up as the api expects: its webhook secret, its API key, stages that
/// take no time, webhook retries after 10, 20 and 40 ms.
pub async fn start_mock() -> MockCamber {
    start_mock_with(|mock| mock).await
}

/// [`start_mock`] with more settings (port, stage time, flags).
pub async fn start_mock_with(tweak: impl FnOnce(Builder) -> Builder) -> MockCamber {
    let ms = Duration::from_millis;
    tweak(
        MockCamber::builder()
            .webhook_secret(SECRET)
            .api_key(API_KEY)
            .retry_schedule([ms(10), ms(20), ms(40)]),
    )
    .start()
    .await
}

/// What the tests read from the mock's admin API, as JSON.
pub trait MockExt {
    /// `GET /_mock/requests` (newest first).
    async fn requests(&self) -> Vec<Value>;
    /// The submit requests (`POST /jobs`) the mock received.
    async fn submits(&self) -> Vec<Value>;
    /// All Camber jobs the mock holds.
    async fn jobs(&self) -> Vec<Value>;
    async fn deliveries(&self, camber_job_id: &str) -> Vec<Value>;
    /// `POST /_mock/jobs/{id}/complete`: finishes a held job.
    async fn complete(&self, camber_job_id: &str);
    /// `PUT /_mock/config` with scenario rules.
    async fn set_rules(&self, rules: Value);
    /// `PUT /_mock/config` with any fields.
    async fn put_config(&self, config: Value);
}

impl MockExt for MockCamber {
    async fn requests(&self) -> Vec<Value> {
        all_pages(self, "/_mock/requests", "requests").await
    }

    async fn submits(&self) -> Vec<Value> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| r["method"] == "POST" && r["path"] == "/jobs")
            .collect()
    }

    async fn jobs(&self) -> Vec<Value> {
        all_pages(self, "/_mock/jobs", "jobs").await
    }

    async fn deliveries(&self, camber_job_id: &str) -> Vec<Value> {
        let path = format!("/_mock/deliveries?job_id={camber_job_id}");
        let page = self.admin().get(&path).await.expect("GET deliveries");
        page["deliveries"].as_array().cloned().unwrap_or_default()
    }

    async fn complete(&self, camber_job_id: &str) {
        let done = self.admin().complete(camber_job_id, None).await;
        assert!(done.is_ok(), "complete: {done:?}");
    }

    async fn set_rules(&self, rules: Value) {
        self.put_config(json!({ "rules": rules })).await;
    }

    async fn put_config(&self, config: Value) {
        let put = self.admin().set_config(&config).await;
        assert!(put.is_ok(), "PUT /_mock/config: {put:?}");
    }
}

async fn all_pages(mock: &MockCamber, path: &str, key: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!("{path}?limit=500&cursor={cursor}");
        let page = mock.admin().get(&url).await.expect(path);
        all.extend(page[key].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(n) => cursor = n.to_owned(),
            None => return all,
        }
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

/// The api under test, on port 0, with its own database and artifact dir.
pub struct TestApp {
    pub address: String,
    pub dir: TempDir,
    pub http: awc::Client,
    handle: actix_web::dev::ServerHandle,
    /// `run_until_stopped`: ends once the server and the background loops
    /// have stopped.
    stopped: actix_rt::task::JoinHandle<std::io::Result<()>>,
}

#[derive(Default)]
pub struct AppOptions {
    pub camber_uri: String,
    pub extra: Vec<String>,
    /// Reuse this directory (database + artifacts), as a restart does.
    pub dir: Option<TempDir>,
}

pub async fn spawn_app(camber_uri: &str) -> TestApp {
    spawn_app_with(AppOptions {
        camber_uri: camber_uri.to_owned(),
        ..AppOptions::default()
    })
    .await
}

pub async fn spawn_app_with(opts: AppOptions) -> TestApp {
    let dir = opts.dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
    let db = dir.path().join("api.db");
    let artifacts = dir.path().join("artifacts");
    let mut args: Vec<String> = vec![
        "api".into(),
        "--port".into(),
        "0".into(),
        "--camber-endpoint".into(),
        opts.camber_uri.clone(),
        "--camber-api-key".into(),
        API_KEY.into(),
        "--camber-app".into(),
        APP_NAME.into(),
        "--webhook-secret".into(),
        SECRET.into(),
        "--db".into(),
        db.display().to_string(),
        "--artifact-dir".into(),
        artifacts.display().to_string(),
        "--submit-retry-schedule".into(),
        "20ms,20ms,20ms".into(),
        "--worker-interval".into(),
        "10ms".into(),
        "--camber-timeout".into(),
        "5s".into(),
    ];
    args.extend(opts.extra);
    let settings = Settings::from_args(args).expect("test settings parse");
    let app = Application::build(settings).await.expect("api starts");
    let address = app.address();
    let handle = app.handle();
    let stopped = actix_rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        dir,
        http: client(),
        handle,
        stopped,
    }
}

pub fn job_body(filename: &str) -> Value {
    json!({
        "portal_schema_name": "invoice",
        "filename": filename,
        "mime_type": "application/pdf",
        "file_size_bytes": 1000
    })
}

/// Status and JSON body (Null when the body is not JSON).
pub type Reply = (u16, Value);

pub async fn reply<S>(res: Result<awc::ClientResponse<S>, awc::error::SendRequestError>) -> Reply
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>
        + Unpin,
{
    let mut res = res.expect("request reaches the api");
    let status = res.status().as_u16();
    let bytes = res.body().limit(64 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

impl TestApp {
    /// Stops this instance (server and background loops, as a process
    /// exit would) and starts a new one on the same database and artifact
    /// directory.
    pub async fn restart(self, opts: AppOptions) -> TestApp {
        let dir = self.stop().await;
        spawn_app_with(AppOptions {
            dir: Some(dir),
            ..opts
        })
        .await
    }

    /// Stops this instance gracefully; returns once `run_until_stopped`
    /// has returned. Its directory (database + artifacts) is kept.
    pub async fn stop(self) -> TempDir {
        self.handle.stop(true).await;
        self.stopped
            .await
            .expect("the api task ends")
            .expect("the api stops cleanly");
        self.dir
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("api.db")
    }

    pub fn artifact_dir(&self) -> PathBuf {
        self.dir.path().join("artifacts")
    }

    pub async fn post_job(&self, body: &Value) -> Reply {
        reply(
            self.http
                .post(format!("{}/jobs", self.address))
                .send_json(body)
                .await,
        )
        .await
    }

    pub async fn post_job_raw(&self, body: &'static [u8]) -> Reply {
        reply(
            self.http
                .post(format!("{}/jobs", self.address))
                .insert_header(("content-type", "application/json"))
                .send_body(body)
                .await,
        )
        .await
    }

    /// Creates a job and returns its id (asserting 201).
    pub async fn create_job(&self, filename: &str) -> String {
        let (status, body) = self.post_job(&job_body(filename)).await;
        assert_eq!(status, 201, "{body}");
        body["job_id"].as_str().unwrap().to_owned()
    }

    pub async fn get_job(&self, id: &str) -> Reply {
        reply(
            self.http
                .get(format!("{}/jobs/{id}", self.address))
                .send()
                .await,
        )
        .await
    }

    pub async fn get(&self, path_and_query: &str) -> Reply {
        reply(
            self.http
                .get(format!("{}{path_and_query}", self.address))
                .send()
                .await,
        )
        .await
    }

    pub async fn get_raw(&self, path: &str) -> (u16, Vec<u8>) {
        let mut res = self
            .http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.body().limit(64 << 20).await.unwrap().to_vec())
    }

    /// Posts a webhook body with the given `X-Webhook-Secret` (none when None).
    pub async fn post_webhook(&self, body: Vec<u8>, signature: Option<String>) -> Reply {
        let mut req = self
            .http
            .post(format!("{}/internal/webhooks/camber", self.address))
            .insert_header(("content-type", "application/json"));
        if let Some(sig) = signature {
            req = req.insert_header((shared::headers::WEBHOOK_SECRET, sig));
        }
        reply(req.send_body(body).await).await
    }

    /// Posts a correctly signed webhook body.
    pub async fn post_signed_webhook(&self, body: Vec<u8>) -> Reply {
        let sig = shared::signing::sign_hex(SECRET.as_bytes(), &body);
        self.post_webhook(body, Some(sig)).await
    }

    pub async fn put_url(&self, url: &str, bytes: Vec<u8>) -> Reply {
        reply(self.http.put(url).send_body(bytes).await).await
    }

    /// Polls `GET /jobs/{id}` until its status is `status`.
    pub async fn wait_for_status(&self, id: &str, status: &str, timeout: Duration) -> Value {
        wait_until(timeout, &format!("job {id} to be {status}"), || async {
            let (code, body) = self.get_job(id).await;
            (code == 200 && body["status"] == status).then_some(body)
        })
        .await
    }
}

/// The `to` of each event, in order.
pub fn event_path(job: &Value) -> Vec<String> {
    job["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap().to_owned())
        .collect()
}

pub fn event_sources(job: &Value) -> Vec<String> {
    job["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap().to_owned())
        .collect()
}
