//! [`WebhookReceiver`]: an HTTP server on a free loopback port that records
//! and verifies every webhook, answering with the statuses a test sets.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use parking_lot::Mutex;
use shared::{headers, signing, WebhookBody};
use tokio::sync::watch;

use crate::runner::{self, KitThread, OnStop};
use crate::server::WEBHOOK_SECRET;

/// A webhook as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The body, parsed.
    pub body: WebhookBody,
    /// The body's exact bytes (what the signatures cover).
    pub raw: Bytes,
    /// Every header, names in lowercase.
    pub headers: BTreeMap<String, String>,
    /// `X-Camber-Attempt`: 1 for the first attempt.
    pub attempt: u32,
    /// `X-Webhook-Secret` (hex HMAC of the body) verified.
    pub verified_hex: bool,
    /// The Standard Webhooks `webhook-signature` verified.
    pub verified_standard: bool,
    /// What the receiver answered.
    pub answered: u16,
}

impl Delivery {
    /// Both signatures verified against the receiver's secrets.
    pub fn verified(&self) -> bool {
        self.verified_hex && self.verified_standard
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

struct State {
    secrets: Vec<String>,
    /// Statuses still to answer, in order; the last one repeats.
    script: Mutex<VecDeque<u16>>,
    received: Mutex<Vec<Delivery>>,
    /// Calls whose body was not a webhook body (answered 400).
    unreadable: Mutex<Vec<String>>,
    count: watch::Sender<usize>,
}

/// Records every webhook sent to [`url`](WebhookReceiver::url) and checks
/// both signatures against the mock's secret; answers 200 unless told
/// otherwise with [`respond_with`](WebhookReceiver::respond_with). Runs on
/// a thread of its own (any async runtime will do); dropped = stopped.
///
/// ```
/// use std::time::Duration;
/// use mock_camber_testkit::{MockCamber, WebhookReceiver};
/// use serde_json::json;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mock_camber_testkit::Error> {
/// let mock = MockCamber::start().await;
/// let hooks = WebhookReceiver::start().await;
/// hooks.respond_with([500, 200]);
/// let job = mock.tenant()
///     .submit(&json!({"app": "ocr", "input": {}, "webhook": {"url": hooks.url()}}))
///     .await?;
/// let calls = hooks.wait_for(2, Duration::from_secs(10)).await;
/// assert_eq!((calls[0].answered, calls[1].attempt), (500, 2));
/// assert!(calls[1].verified());
/// assert_eq!(calls[1].body.camber_job_id, job.id);
/// # Ok(())
/// # }
/// ```
pub struct WebhookReceiver {
    url: String,
    state: Arc<State>,
    count: watch::Receiver<usize>,
    _thread: KitThread,
}

async fn receive(req: HttpRequest, body: Bytes, st: web::Data<Arc<State>>) -> HttpResponse {
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let parsed = match serde_json::from_slice::<WebhookBody>(&body) {
        Ok(parsed) => parsed,
        Err(e) => {
            st.unreadable.lock().push(format!(
                "{e}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
            return HttpResponse::BadRequest().body("not a webhook body");
        }
    };
    let header = |name: &str| headers.get(name).map_or("", String::as_str);
    let verified_hex = signing::verify_hex_any(
        &st.secrets.iter().map(|s| s.as_bytes()).collect::<Vec<_>>(),
        &body,
        header(headers::WEBHOOK_SECRET),
    );
    let verified_standard = header(headers::STD_WEBHOOK_TIMESTAMP)
        .parse::<i64>()
        .is_ok_and(|ts| {
            st.secrets.iter().any(|s| {
                signing::verify_standard(
                    s,
                    header(headers::STD_WEBHOOK_ID),
                    ts,
                    &body,
                    header(headers::STD_WEBHOOK_SIGNATURE),
                )
            })
        });
    let answered = {
        let mut script = st.script.lock();
        if script.len() > 1 {
            script.pop_front().unwrap_or(200)
        } else {
            script.front().copied().unwrap_or(200)
        }
    };
    let attempt = header(headers::ATTEMPT).parse().unwrap_or(0);
    let mut received = st.received.lock();
    received.push(Delivery {
        body: parsed,
        raw: body,
        headers,
        attempt,
        verified_hex,
        verified_standard,
        answered,
    });
    st.count.send_replace(received.len());
    drop(received);
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(answered)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
    )
    .body(format!("testkit receiver answered {answered}"))
}

impl WebhookReceiver {
    /// Starts one that verifies against [`WEBHOOK_SECRET`], the secret of
    /// a [`MockCamber`](crate::MockCamber) started without
    /// [`webhook_secret`](crate::Builder::webhook_secret).
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> Self {
        Self::start_with_secrets(vec![WEBHOOK_SECRET.to_owned()]).await
    }

    /// Starts one that verifies against any of `secrets`.
    pub async fn start_with_secrets(secrets: Vec<String>) -> Self {
        let (count_tx, count) = watch::channel(0);
        let state = Arc::new(State {
            secrets,
            script: Mutex::new(VecDeque::new()),
            received: Mutex::new(Vec::new()),
            unreadable: Mutex::new(Vec::new()),
            count: count_tx,
        });
        let data = web::Data::new(state.clone());
        let (port, _http, thread) = runner::spawn("webhook-receiver", move || async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .app_data(web::PayloadConfig::new(16 << 20))
                    .default_service(web::to(receive))
            })
            .workers(1)
            .disable_signals()
            .bind("127.0.0.1:0")
            .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
            let port = server.addrs()[0].port();
            let server = server.run();
            let handle = server.handle();
            actix_rt::spawn(server);
            let on_stop: OnStop =
                Box::new(move || Box::pin(async move { handle.stop(false).await }));
            Ok((port, on_stop))
        })
        .await
        .unwrap_or_else(|e| panic!("the webhook receiver did not start: {e}"));
        Self {
            url: format!("http://127.0.0.1:{port}/webhook"),
            state,
            count,
            _thread: thread,
        }
    }

    /// Where to send webhooks (`webhook.url` of a submit).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answer the next calls with these statuses in order; the last one
    /// then answers every call after them (`[500, 200]`: one failure, then
    /// success). Replaces what was set before.
    pub fn respond_with(&self, statuses: impl IntoIterator<Item = u16>) {
        let mut script = self.state.script.lock();
        script.clear();
        script.extend(statuses);
    }

    /// Every webhook received so far, in order of arrival.
    pub fn received(&self) -> Vec<Delivery> {
        self.state.received.lock().clone()
    }

    /// Waits until at least `n` webhooks have arrived (woken by each one,
    /// no polling) and returns all received so far.
    ///
    /// # Panics
    /// When fewer than `n` arrived within `timeout`, saying what did.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        let mut count = self.count.clone();
        let arrived = tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await;
        if !matches!(arrived, Ok(Ok(_))) {
            let got = self.received();
            panic!(
                "expected {n} webhook(s) at {} within {timeout:?}, got {}: {:#?}; unreadable: {:?}",
                self.url,
                got.len(),
                got.iter()
                    .map(|d| (d.attempt, d.answered, &d.body.camber_job_id))
                    .collect::<Vec<_>>(),
                self.state.unreadable.lock()
            );
        }
        self.received()
    }
}
