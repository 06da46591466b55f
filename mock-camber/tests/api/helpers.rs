//! Test harness: the real `Application` on port 0 (or the real binary), an
//! awc client with one helper per request, and a webhook receiver that
//! records every call into a channel and answers with statuses the test sets.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use mock_camber::{Application, Settings};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub const SECRET: &str = "test-webhook-secret";

/// Polls `check` every 10 ms until it yields a value or `secs` pass.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

pub struct Response {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Value,
    pub text: String,
}

/// A client of one mock-camber instance.
#[derive(Clone)]
pub struct Client {
    pub address: String,
    pub key: String,
    http: awc::Client,
}

impl Client {
    pub fn new(address: &str, key: &str) -> Self {
        Self {
            address: address.to_owned(),
            key: key.to_owned(),
            http: awc::Client::builder()
                .timeout(Duration::from_secs(10))
                .finish(),
        }
    }

    pub fn with_key(&self, key: &str) -> Self {
        Self::new(&self.address, key)
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Response {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{}", self.address, path));
        if !self.key.is_empty() {
            req = req.insert_header(("Authorization", format!("Bearer {}", self.key)));
        }
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let mut res = match body {
            Some(b) => req
                .insert_header(("Content-Type", "application/json"))
                .send_body(b)
                .await
                .expect("request"),
            None => req.send().await.expect("request"),
        };
        let bytes = res.body().limit(64 << 20).await.expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Response {
            status: res.status().as_u16(),
            headers: res
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn submit(&self, body: Value) -> Response {
        self.submit_with(body, &[]).await
    }

    pub async fn submit_with(&self, body: Value, headers: &[(&str, &str)]) -> Response {
        self.send(
            "POST",
            "/jobs",
            headers,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// Submits and returns the new job's id, asserting 201.
    pub async fn create(&self, body: Value) -> String {
        let r = self.submit(body).await;
        assert_eq!(r.status, 201, "submit failed: {}", r.text);
        r.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send("GET", path, &[], None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.send("POST", path, &[], Some(body.to_string().into_bytes()))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Response {
        self.send("PUT", path, &[], Some(body.to_string().into_bytes()))
            .await
    }

    pub async fn job(&self, id: &str) -> Value {
        let r = self.get(&format!("/jobs/{id}")).await;
        assert_eq!(r.status, 200, "GET job: {}", r.text);
        r.body
    }

    /// Waits until the job has `status`: the mock's own long-poll
    /// (`wait_for` + `wait_ms`) where it offers one, polling otherwise.
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        if !["running", "completed", "failed"].contains(&status) {
            return wait_for(&format!("job {id} to be {status}"), 20, || async {
                let j = self.job(id).await;
                (j["status"] == status).then_some(j)
            })
            .await;
        }
        self.long_poll(
            &format!("job {id} to be {status}"),
            &format!("/jobs/{id}?wait_for={status}"),
            |body| Some(body.clone()),
        )
        .await
    }

    /// Waits (long-poll on the admin API) until the job has a delivery in
    /// `state`.
    pub async fn wait_delivery(&self, job_id: &str, state: &str) -> Value {
        self.long_poll(
            &format!("delivery of {job_id} to be {state}"),
            &format!("/_mock/deliveries?job_id={job_id}&state={state}"),
            |body| body["deliveries"].get(0).cloned(),
        )
        .await
    }

    /// GETs `path` with `wait_ms` until it answers 200 (20 s in all, each
    /// request shorter than the client's own timeout), then picks the value.
    async fn long_poll(
        &self,
        what: &str,
        path: &str,
        pick: impl Fn(&Value) -> Option<Value>,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.get(&format!("{path}&wait_ms=5000")).await;
            match r.status {
                200 => return pick(&r.body).unwrap_or_else(|| panic!("{what}: {}", r.text)),
                408 if Instant::now() < deadline => continue,
                _ => panic!("timed out waiting for {what}: {} {}", r.status, r.text),
            }
        }
    }

    /// The request journal, newest first.
    pub async fn journal(&self) -> Vec<Value> {
        let r = self.get("/_mock/requests?limit=500").await;
        assert_eq!(r.status, 200, "journal: {}", r.text);
        r.body["requests"].as_array().unwrap().clone()
    }
}

/// The daemon in-process on port 0.
pub struct TestApp {
    pub client: Client,
    pub handle: actix_web::dev::ServerHandle,
    /// The daemon's own store, for injecting storage faults.
    pub store: mock_camber::store::Store,
}

pub fn test_settings() -> Settings {
    let mut s = Settings::for_tests();
    s.webhook_secrets = vec![SECRET.into()];
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    tweak(&mut settings);
    let key = settings.api_keys.first().cloned().unwrap_or("key-a".into());
    let app = Application::build(settings).await.expect("build app");
    let address = app.address();
    let handle = app.handle();
    let store = app.store();
    actix_rt::spawn(app.run_until_stopped());
    TestApp {
        client: Client::new(&address, &key),
        handle,
        store,
    }
}

/// A job body that sends its webhook to `url`.
pub fn job_to(url: &str) -> Value {
    json!({
        "app": "rythmiq-worker",
        "input": {"filename": "invoice.pdf"},
        "metadata": {"job_id": "job-1"},
        "webhook": {"url": url}
    })
}

/// One webhook call as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }
}

#[derive(Clone)]
struct ReceiverState {
    tx: mpsc::UnboundedSender<Received>,
    /// Statuses to answer, in order; when empty, `fallback`.
    script: Arc<Mutex<VecDeque<u16>>>,
    fallback: Arc<Mutex<u16>>,
    /// `Retry-After` seconds sent with 429/503 answers.
    retry_after: Arc<Mutex<Option<u64>>>,
}

/// A webhook receiver on port 0 that records every call.
pub struct Receiver {
    pub url: String,
    rx: mpsc::UnboundedReceiver<Received>,
    state: ReceiverState,
    handle: actix_web::dev::ServerHandle,
}

async fn receive(req: HttpRequest, body: Bytes, st: web::Data<ReceiverState>) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let _ = st.tx.send(Received { headers, body });
    let status = st.script.lock().pop_front().unwrap_or(*st.fallback.lock());
    let mut res = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if let Some(secs) = *st.retry_after.lock() {
        if status == 429 || status == 503 {
            res.insert_header(("Retry-After", secs.to_string()));
        }
    }
    res.body(format!("receiver said {status}"))
}

impl Receiver {
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = ReceiverState {
            tx,
            script: Arc::new(Mutex::new(VecDeque::new())),
            fallback: Arc::new(Mutex::new(200)),
            retry_after: Arc::new(Mutex::new(None)),
        };
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            rx,
            state,
            handle,
        }
    }

    /// Answer these statuses to the next calls, then the fallback.
    pub fn script(&self, statuses: &[u16]) {
        self.state.script.lock().extend(statuses);
    }

    pub fn retry_after(&self, secs: u64) {
        *self.state.retry_after.lock() = Some(secs);
    }

    pub fn always(&self, status: u16) {
        *self.state.fallback.lock() = status;
    }

    /// The next webhook, or a panic after 20 s.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(20), self.rx.recv())
            .await
            .expect("timed out waiting for a webhook")
            .expect("receiver closed")
    }

    /// A webhook already received, without waiting.
    pub fn try_next(&mut self) -> Option<Received> {
        self.rx.try_recv().ok()
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

// ---------------------------------------------------------------- binary

/// The real `mock-camber` binary, killed (SIGKILL) when dropped.
pub struct MockProcess {
    pub child: Child,
    pub address: String,
    /// The process's TMPDIR (where `:memory:` lives): removed with it even
    /// after a SIGKILL.
    _tmp: tempfile::TempDir,
}

impl MockProcess {
    pub fn start(args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mock-camber"))
            .args(args)
            .env("RUST_LOG", "error")
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mock-camber");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Self {
            child,
            address,
            _tmp: tmp,
        }
    }

    pub fn client(&self, key: &str) -> Client {
        Client::new(&self.address, key)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
