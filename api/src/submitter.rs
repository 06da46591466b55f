//! The background submitter: takes pending jobs whose next attempt is due
//! (Camber was down, answered 5xx/429, or the process died before its inline
//! submit) and submits them again. Every attempt carries the job id as
//! `Idempotency-Key`, so a retry never creates a second Camber job.

use futures_util::future::join_all;

use crate::camber::CamberClient;
use crate::lifecycle::Lifecycle;
use crate::store::{self, StoreError};

/// Jobs taken per round.
const BATCH: usize = 64;

pub struct Submitter {
    pub lifecycle: Lifecycle,
    pub camber: CamberClient,
}

impl Submitter {
    /// One round: claims the due jobs and submits them concurrently.
    /// Returns how many were attempted.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let lease = self.lifecycle.submit_lease.as_millis() as i64;
        let max_ahead = self.lifecycle.longest_submit_wait().as_millis() as i64;
        let jobs = self
            .lifecycle
            .store
            .write(move |c| store::claim_due_submits(c, lease, max_ahead, BATCH))
            .await?;
        let n = jobs.len();
        let results = join_all(
            jobs.iter()
                .map(|job| self.lifecycle.submit(&self.camber, job)),
        )
        .await;
        for (job, r) in jobs.iter().zip(results) {
            if let Err(e) = r {
                log::error!("job {}: submit bookkeeping failed: {e}", job.id);
            }
        }
        Ok(n)
    }
}
