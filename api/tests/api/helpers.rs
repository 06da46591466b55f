//! Test harness: the real mock-camber binary on a loopback port, the api
//! `Application` on port 0, one helper per request, and `wait_until`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use api::{Application, Settings};
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

/// Options of a mock-camber process (port 0 = any).
#[derive(Default)]
pub struct MockOptions {
    pub port: u16,
    pub stage_ms: u64,
    pub scenarios: Option<Value>,
    /// More mock-camber flags.
    pub extra: Vec<String>,
}

/// A running mock-camber process; killed on drop.
pub struct MockCamber {
    child: Child,
    pub port: u16,
    pub uri: String,
    _dir: TempDir,
    http: awc::Client,
}

impl MockCamber {
    pub fn start() -> Self {
        Self::start_with(MockOptions::default())
    }

    pub fn start_with(opts: MockOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(mock_binary());
        cmd.args(["--host", "127.0.0.1", "--port", &opts.port.to_string()])
            .args(["--db", ":memory:"])
            .args(["--webhook-secret", SECRET, "--api-key", API_KEY])
            .args(["--stage-ms", &opts.stage_ms.to_string()])
            .args(["--retry-schedule", "10ms,20ms,40ms"])
            .env_remove("WEBHOOK_SECRET")
            .env_remove("CAMBER_API_KEYS")
            // `:memory:` lives in a temporary directory: inside ours, so a
            // killed mock leaves nothing behind.
            .env("TMPDIR", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("MOCK_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        cmd.args(&opts.extra);
        if let Some(rules) = &opts.scenarios {
            let path = dir.path().join("scenarios.json");
            std::fs::write(&path, serde_json::to_vec(rules).unwrap()).unwrap();
            cmd.arg("--scenarios").arg(&path);
        }
        let mut child = cmd.spawn().expect("start mock-camber");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(addr) = line.trim().strip_prefix("listening on ") {
                        let _ = tx.send(addr.to_owned());
                        sent = true;
                    }
                }
                // keep draining so the mock never blocks on a full pipe
            }
        });
        let uri = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(uri) => uri,
            Err(_) => {
                let _ = child.kill();
                panic!("mock-camber did not print `listening on …`");
            }
        };
        let port = uri.rsplit(':').next().unwrap().parse().unwrap();
        MockCamber {
            child,
            port,
            uri,
            _dir: dir,
            http: client(),
        }
    }

    /// `GET /_mock/requests` (newest first).
    pub async fn requests(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/_mock/requests?limit=500", self.uri);
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page = get_json(&self.http, &url).await;
            all.extend(page["requests"].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(n) => cursor = Some(n.to_owned()),
                None => return all,
            }
        }
    }

    /// The submit requests (`POST /jobs`) the mock received.
    pub async fn submits(&self) -> Vec<Value> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| r["method"] == "POST" && r["path"] == "/jobs")
            .collect()
    }

    /// All Camber jobs the mock holds.
    pub async fn jobs(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/_mock/jobs?limit=500", self.uri);
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page = get_json(&self.http, &url).await;
            all.extend(page["jobs"].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(n) => cursor = Some(n.to_owned()),
                None => return all,
            }
        }
    }

    pub async fn deliveries(&self, camber_job_id: &str) -> Vec<Value> {
        let page = get_json(
            &self.http,
            &format!("{}/_mock/deliveries?job_id={camber_job_id}", self.uri),
        )
        .await;
        page["deliveries"].as_array().cloned().unwrap_or_default()
    }

    /// `POST /_mock/jobs/{id}/complete`: finishes a held job.
    pub async fn complete(&self, camber_job_id: &str) {
        let res = self
            .http
            .post(format!("{}/_mock/jobs/{camber_job_id}/complete", self.uri))
            .send_json(&json!({}))
            .await
            .unwrap();
        assert!(res.status().is_success(), "complete: {}", res.status());
    }

    /// `PUT /_mock/config` with scenario rules.
    pub async fn set_rules(&self, rules: Value) {
        self.put_config(json!({ "rules": rules })).await;
    }

    /// `PUT /_mock/config` with any fields.
    pub async fn put_config(&self, config: Value) {
        let res = self
            .http
            .put(format!("{}/_mock/config", self.uri))
            .send_json(&config)
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "PUT /_mock/config: {}",
            res.status()
        );
    }
}

impl Drop for MockCamber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

async fn get_json(http: &awc::Client, url: &str) -> Value {
    let mut res = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(res.status().is_success(), "GET {url}: {}", res.status());
    res.json::<Value>().limit(64 << 20).await.unwrap()
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

async fn reply<S>(res: Result<awc::ClientResponse<S>, awc::error::SendRequestError>) -> Reply
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
