//! `mock-camber audit --mock URL --job ID`: the audit for a pipeline. It
//! starts the audit over the admin API, waits for the report, prints it
//! and exits 1 on any failed case (2 when the audit could not run).

use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};

use crate::wait::MAX_WAIT_MS;

#[derive(Clone, Args)]
pub struct AuditArgs {
    /// The mock's base URL.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    pub mock: String,
    /// The Camber job id (`cmb_…`) whose receiver to audit.
    #[arg(long)]
    pub job: String,
    /// The mock's admin token, if it has one.
    #[arg(long, env = "MOCK_CAMBER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Where to read the caller's state of the job (`{job_id}` = its
    /// `metadata.job_id`).
    #[arg(long)]
    pub state_url: Option<String>,
    /// The JSON pointer of the status in the `--state-url` answer.
    #[arg(long)]
    pub state_pointer: Option<String>,
    /// How long to wait for the report, in seconds.
    #[arg(long, default_value_t = 300)]
    pub wait_secs: u64,
}

impl std::fmt::Debug for AuditArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditArgs")
            .field("mock", &self.mock)
            .field("job", &self.job)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "(redacted)"),
            )
            .finish_non_exhaustive()
    }
}

/// Runs the audit; the process's exit code.
pub async fn run(args: &AuditArgs) -> i32 {
    match audit(args).await {
        Ok(report) => {
            print!("{}", render(&report));
            i32::from(report["failed"].as_array().is_some_and(|f| !f.is_empty()))
        }
        Err(e) => {
            eprintln!("mock-camber audit: {e}");
            2
        }
    }
}

async fn audit(args: &AuditArgs) -> Result<Value, String> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let base = args.mock.trim_end_matches('/');
    let auth = |r: awc::ClientRequest| match &args.admin_token {
        Some(t) => r.insert_header(("Authorization", format!("Bearer {t}"))),
        None => r,
    };
    let mut body = json!({});
    if let Some(u) = &args.state_url {
        body["state_url"] = json!(u);
    }
    if let Some(p) = &args.state_pointer {
        body["state_pointer"] = json!(p);
    }
    let started = call(
        auth(client.post(format!("{base}/_mock/jobs/{}/audit", args.job))),
        Some(body),
    )
    .await?;
    let id = started["id"]
        .as_str()
        .ok_or("no audit id in the answer")?
        .to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait_secs);
    // The mock's long-poll: answered the moment the report is done, a
    // wait of at most a minute at a time.
    loop {
        let left = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .min(Duration::from_millis(MAX_WAIT_MS));
        let url = format!("{base}/_mock/audits/{id}?wait_ms={}", left.as_millis());
        let get = auth(client.get(url)).timeout(left + Duration::from_secs(30));
        let (status, report) = send(get, None).await?;
        match status.as_u16() {
            200 if report["state"] == "done" => return Ok(report),
            200 | 408 if tokio::time::Instant::now() < deadline => continue,
            200 | 408 => {
                return Err(format!(
                    "audit {id} was not done within {} s",
                    args.wait_secs
                ))
            }
            _ => return Err(error_text(status, &report)),
        }
    }
}

/// One request; its JSON answer when 2xx, else the error's message.
async fn call(r: awc::ClientRequest, body: Option<Value>) -> Result<Value, String> {
    let (status, v) = send(r, body).await?;
    if !status.is_success() {
        return Err(error_text(status, &v));
    }
    Ok(v)
}

fn error_text(status: awc::http::StatusCode, v: &Value) -> String {
    let msg = v["error"]["message"].as_str().unwrap_or("");
    format!("{status}: {msg}")
}

/// One request: its status and JSON answer (null when not JSON).
async fn send(
    r: awc::ClientRequest,
    body: Option<Value>,
) -> Result<(awc::http::StatusCode, Value), String> {
    let sent = match body {
        Some(b) => r.send_json(&b).await,
        None => r.send().await,
    };
    let mut resp = sent.map_err(|e| format!("the mock did not answer: {e}"))?;
    let bytes = resp
        .body()
        .limit(16 << 20)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        resp.status(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// The report in words: a line per case, then the summary.
pub fn render(report: &Value) -> String {
    let mut out = format!(
        "audit {} of job {}\n",
        report["id"].as_str().unwrap_or(""),
        report["job_id"].as_str().unwrap_or("")
    );
    for c in report["cases"].as_array().into_iter().flatten() {
        let verdict = c["verdict"].as_str().unwrap_or("").to_uppercase();
        let (name, reason) = (
            c["name"].as_str().unwrap_or(""),
            c["reason"].as_str().unwrap_or(""),
        );
        out.push_str(&format!("{verdict:<5} {name}: {reason}\n"));
    }
    let s = &report["summary"];
    out.push_str(&format!(
        "{} pass, {} fail, {} info; failed: {}\n",
        s["pass"], s["fail"], s["info"], report["failed"]
    ));
    out
}
