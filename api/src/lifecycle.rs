//! The two moves of a job that involve the outside world, shared by the
//! routes and the background loops:
//! - `submit`: one submit attempt to Camber and its bookkeeping;
//! - `finish`: Camber's final word (webhook or poll) packaged and applied.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shared::JobFailure;

use crate::artifacts::ArtifactStore;
use crate::camber::{CamberClient, CamberError};
use crate::domain::JobId;
use crate::domain::{Outcome, Source, Status};
use crate::metrics::{inc, Metrics};
use crate::store::{self, ArtifactMeta, Finish, JobRecord, Store, StoreError};
use shared::retry::{self, Schedule};

/// What the lifecycle needs besides a Camber client (which is per thread).
#[derive(Clone)]
pub struct Lifecycle {
    pub store: Store,
    pub artifacts: ArtifactStore,
    pub metrics: Arc<Metrics>,
    pub retry_schedule: Schedule,
    /// How long one submit may take before another round may retry it.
    pub submit_lease: Duration,
    pub reconcile_after: Duration,
    /// Camber's answers to our own submits, until they are committed.
    pub answers: Arc<Answers>,
}

/// The Camber id each of our submits was answered with, held from the
/// answer until `mark_submitted` has committed it. Camber may send a job's
/// webhook before that commit (at once, for a job that ends at submit): a
/// webhook naming the very id Camber answered our own submit with (under
/// our key, with our job id as `Idempotency-Key`) needs no second word
/// from Camber (`GET /jobs/{id}`) before it applies. Bounded by the submits
/// in flight.
#[derive(Default)]
pub struct Answers(parking_lot::Mutex<HashMap<JobId, String>>);

impl Answers {
    /// Holds `camber_job_id` as the answer for `id` until the guard drops.
    pub fn hold(&self, id: &JobId, camber_job_id: &str) -> Held<'_> {
        self.0.lock().insert(id.clone(), camber_job_id.to_owned());
        Held(self, id.clone())
    }

    /// Whether Camber answered our submit of `id` with `camber_job_id`.
    pub fn says(&self, id: &JobId, camber_job_id: &str) -> bool {
        self.0.lock().get(id).is_some_and(|c| c == camber_job_id)
    }
}

/// An answer held; dropping it lets the answer go.
pub struct Held<'a>(&'a Answers, JobId);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0 .0.lock().remove(&self.1);
    }
}

pub const CAMBER_UNAVAILABLE: &str = "CAMBER_UNAVAILABLE";
pub const CAMBER_REJECTED: &str = "CAMBER_REJECTED";
/// The `stage` of a failure to submit.
const SUBMIT_STAGE: &str = "SUBMIT";

impl Lifecycle {
    /// The longest a pending job legitimately waits for its next submit:
    /// the lease of a submit in flight, or the longest retry wait (its step
    /// with the most jitter, or a capped Retry-After). Stored due times
    /// further ahead are brought back to it (`store::bound_ahead`).
    pub fn longest_submit_wait(&self) -> Duration {
        let step = self
            .retry_schedule
            .0
            .iter()
            .max()
            .copied()
            .unwrap_or_default();
        self.submit_lease
            .max(step.mul_f64(1.2))
            .max(retry::RETRY_AFTER_CAP)
    }

    /// One submit attempt of a pending job (attempt number
    /// `job.submit_attempts + 1`). Returns the job's status afterwards.
    pub async fn submit(
        &self,
        camber: &CamberClient,
        job: &JobRecord,
    ) -> Result<Status, StoreError> {
        let attempt = job.submit_attempts + 1;
        let id = job.id.clone();
        // A 2xx we cannot read is retried too: the same Idempotency-Key
        // gets the same Camber job back, and the budget bounds it.
        let answer = match camber.submit(job).await {
            Err(CamberError::BadResponse(reason)) => Err(CamberError::Unavailable {
                reason,
                retry_after: None,
            }),
            other => other,
        };
        match answer {
            Ok(camber_id) => {
                inc(&self.metrics.submits_ok);
                let after = self.reconcile_after.as_millis() as i64;
                let _held = self.answers.hold(&id, &camber_id);
                let status = self
                    .store
                    .write(move |c| store::mark_submitted(c, &id, &camber_id, after))
                    .await?;
                Ok(status.unwrap_or(Status::Pending))
            }
            Err(CamberError::Unavailable {
                reason,
                retry_after,
            }) => {
                let Some(wait) =
                    self.retry_schedule
                        .next_wait(attempt, retry_after, retry::jitter_factor())
                else {
                    inc(&self.metrics.submits_gave_up);
                    log::warn!("job {id}: giving up after {attempt} submit attempts: {reason}");
                    let error = JobFailure::new(
                        CAMBER_UNAVAILABLE,
                        Some(SUBMIT_STAGE),
                        json!({"reason": reason, "attempts": attempt}),
                    );
                    self.store
                        .write(move |c| store::fail_pending(c, &id, attempt, &error))
                        .await?;
                    return Ok(Status::Failed);
                };
                inc(&self.metrics.submits_retry);
                log::info!("job {id}: Camber unavailable ({reason}); retry in {wait:?}");
                let next = store::now_ms() + wait.as_millis() as i64;
                self.store
                    .write(move |c| store::record_submit_failure(c, &id, attempt, next))
                    .await?;
                Ok(Status::Pending)
            }
            Err(e) => {
                inc(&self.metrics.submits_rejected);
                log::warn!("job {id}: Camber refused the submit: {e}");
                let (status, message) = match &e {
                    CamberError::Rejected { status, message } => (*status, message.clone()),
                    other => (0, other.to_string()),
                };
                let error = JobFailure::new(
                    CAMBER_REJECTED,
                    Some(SUBMIT_STAGE),
                    json!({"status": status, "reason": message}),
                );
                self.store
                    .write(move |c| store::fail_pending(c, &id, attempt, &error))
                    .await?;
                Ok(Status::Failed)
            }
        }
    }

    /// Applies Camber's final word to a job.
    ///
    /// Recovery order: the artifact files are written FIRST (atomically, by
    /// rename), the transition is committed SECOND. A crash in between
    /// leaves files next to a job that is still pending/processing; they are
    /// not listed (the job row records its artifacts only at the
    /// transition), and Camber's webhook retry or the reconciler rewrites
    /// them and commits. The files are not synced; the commit is: a
    /// committed job's files are derived from its row and rebuilt from it
    /// when a power loss took them (`ArtifactStore::read_derived`).
    ///
    /// `known` is the job as the caller just read it (`None`: no such job),
    /// with the artifacts packaged for it already when the caller could
    /// (see [`Self::read_for_finish`]). That snapshot only decides whether
    /// to write artifact files at all: whether the transition applies is
    /// decided once, by `store::finish_job` in its transaction.
    pub async fn finish(
        &self,
        id: &JobId,
        known: Option<&JobRecord>,
        packaged: Option<Vec<ArtifactMeta>>,
        camber_job_id: String,
        outcome: Outcome,
        source: Source,
    ) -> Result<Finish, StoreError> {
        if let Some(refused) = store::refuse_finish(known, &camber_job_id) {
            return Ok(refused);
        }
        let metas = match packaged {
            Some(metas) => metas,
            None => {
                let artifacts = self.artifacts.clone();
                let (pid, cid, out) = (id.clone(), camber_job_id.clone(), outcome.clone());
                tokio::task::spawn_blocking(move || package(&artifacts, &pid, &cid, &out))
                    .await
                    .map_err(|e| StoreError::Blocking(e.to_string()))??
            }
        };
        let id = id.clone();
        self.store
            .write(move |c| store::finish_job(c, &id, &camber_job_id, &outcome, &metas, source))
            .await
    }

    /// Reads the job a webhook names and, when Camber's word applies to it
    /// as it stands (not terminal, its Camber id recorded and the same),
    /// packages the artifacts in the same blocking call: one hop off the
    /// executor instead of two. A job without a Camber id yet gets none,
    /// unless our own submit was just answered with that id (`Answers`):
    /// otherwise the id must be confirmed with Camber first.
    pub async fn read_for_finish(
        &self,
        id: &JobId,
        camber_job_id: &str,
        outcome: &Outcome,
    ) -> Result<(Option<JobRecord>, Option<Vec<ArtifactMeta>>), StoreError> {
        let (artifacts, answers) = (self.artifacts.clone(), self.answers.clone());
        let (id, cid, outcome) = (id.clone(), camber_job_id.to_owned(), outcome.clone());
        self.store
            .read(move |c| {
                let job = store::get_job(c, &id)?;
                let ready = job.as_ref().is_some_and(|j| {
                    (j.camber_job_id.is_some() || answers.says(&id, &cid))
                        && store::refuse_finish(Some(j), &cid).is_none()
                });
                if !ready {
                    return Ok((job, None));
                }
                Ok((job, Some(package(&artifacts, &id, &cid, &outcome)?)))
            })
            .await
    }
}

/// Writes the outcome's artifact files (blocking), a full disk as
/// `StoreError::StorageFull`.
fn package(
    artifacts: &ArtifactStore,
    id: &JobId,
    camber_job_id: &str,
    outcome: &Outcome,
) -> Result<Vec<ArtifactMeta>, StoreError> {
    artifacts
        .package(id, camber_job_id, outcome)
        .map_err(|e| StoreError::artifacts("writing artifacts", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_held_until_its_guard_drops_and_only_for_its_own_id() {
        let answers = Answers::default();
        let (a, b) = (JobId::new(), JobId::new());
        {
            let _held = answers.hold(&a, "cmb_1");
            assert!(answers.says(&a, "cmb_1"));
            assert!(!answers.says(&a, "cmb_2"), "another Camber id");
            assert!(!answers.says(&b, "cmb_1"), "another job");
        }
        assert!(!answers.says(&a, "cmb_1"), "dropped once committed");
        assert!(answers.0.lock().is_empty());
    }
}
