//! Reading the caller's own state of the job (`state_url`, `state_pointer`)
//! so that "accepted but ignored" can be told from "applied".

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::engine::policy::Policy;

/// Most bytes of a state answer read.
const MAX_STATE_BYTES: usize = 64 * 1024;

/// Where the caller's state of the job is read.
#[derive(Debug, Clone)]
pub struct StateRead {
    /// A template: `{job_id}` = the caller's `metadata.job_id`.
    pub url: String,
    /// The JSON pointer of the status in its answer (`""` = the whole).
    pub pointer: String,
}

impl StateRead {
    /// The value at the pointer, as text, or why it could not be read.
    pub async fn read(
        &self,
        client: &awc::Client,
        policy: &Policy,
        timeout: Duration,
        caller_job_id: &str,
    ) -> Result<String, String> {
        let url = self.url.replace("{job_id}", caller_job_id);
        crate::engine::literal_refused(policy, &url)?;
        let get = async {
            // Not back to the pool (see `runner::send`).
            let get = client.get(&url).force_close();
            let mut resp = get.send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.next().await {
                bytes.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
                if bytes.len() > MAX_STATE_BYTES {
                    return Err(format!("the answer is over {MAX_STATE_BYTES} bytes"));
                }
            }
            if !status.is_success() {
                return Err(format!("GET state_url answered {status}"));
            }
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("the state_url answer is not JSON: {e}"))?;
            match v.pointer(&self.pointer) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Ok(other.to_string()),
                None => Err(format!("nothing at `{}` in the answer", self.pointer)),
            }
        };
        tokio::time::timeout(timeout, get)
            .await
            .unwrap_or_else(|_| Err(format!("timed out after {} ms", timeout.as_millis())))
    }
}
