//! The reconciler: a job `processing` for longer than `--reconcile-after`
//! is polled on Camber (`GET /jobs/{camber_id}`), and a terminal answer is
//! applied with source `reconcile`. A lost webhook never strands a job.

use futures_util::future::join_all;
use serde_json::json;
use shared::JobFailure;

use crate::camber::{CamberClient, CamberError, RemoteState};
use crate::domain::{Outcome, Source};
use crate::lifecycle::Lifecycle;
use crate::metrics::inc;
use crate::store::{self, Finish, JobRecord, StoreError};

const BATCH: usize = 64;

pub struct Reconciler {
    pub lifecycle: Lifecycle,
    pub camber: CamberClient,
}

impl Reconciler {
    /// One round: polls the due jobs; returns how many it finished.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let again = self.lifecycle.reconcile_after.as_millis() as i64;
        let jobs = self
            .lifecycle
            .store
            .write(move |c| store::claim_due_reconciles(c, again, BATCH))
            .await?;
        let results = join_all(jobs.iter().map(|job| self.reconcile(job))).await;
        let mut finished = 0;
        for (job, r) in jobs.iter().zip(results) {
            match r {
                Ok(true) => finished += 1,
                Ok(false) => {}
                Err(e) => log::error!("job {}: reconcile failed: {e}", job.id),
            }
        }
        Ok(finished)
    }

    async fn reconcile(&self, job: &JobRecord) -> Result<bool, StoreError> {
        let Some(camber_id) = job.camber_job_id.clone() else {
            return Ok(false);
        };
        inc(&self.lifecycle.metrics.reconcile_polls);
        let outcome = match self.camber.job_state(&camber_id).await {
            Ok(RemoteState::Finished(outcome)) => outcome,
            Ok(RemoteState::Running) => return Ok(false),
            Err(CamberError::NotFound) => {
                log::warn!("job {}: Camber no longer knows {camber_id}", job.id);
                Outcome::Failed(JobFailure::new(
                    "CAMBER_JOB_LOST",
                    None,
                    json!({"reason": "Camber answered 404 for the job"}),
                ))
            }
            Err(e) => {
                log::info!("job {}: cannot poll Camber yet: {e}", job.id);
                return Ok(false);
            }
        };
        let done = self
            .lifecycle
            .finish(
                &job.id,
                Some(job),
                None,
                camber_id,
                outcome,
                Source::Reconcile,
            )
            .await?;
        let applied = matches!(done, Finish::Applied(_));
        if applied {
            inc(&self.lifecycle.metrics.reconcile_applied);
            log::info!("job {}: finished by the reconciler", job.id);
        }
        Ok(applied)
    }
}
