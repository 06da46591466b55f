//! The stage runner: the engine's running jobs, each with the timer of its
//! current stage, its progress flushed in batches, and its end committed
//! together with its webhook delivery before anyone can see the job
//! finished (a failed terminal write is retried). What a stage's end or a
//! control action does to a job is `jobs::job::Job`'s own business; this
//! file only drives it. A job whose stages take no time and that nothing
//! holds never comes here: the submit runs it to its end
//! (`Job::run_at_once`) and the engine only sends its webhook.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use shared::wire::rfc3339;
use shared::{JobStatus, WebhookError};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Command, Control, Due, Engine};
use crate::jobs::job::{Action, Caller, Ending, Job, Step};
use crate::store::{self, DeliveryRow, Progress, ProgressWrite};

/// Longest wait between two tries of a job's terminal write.
const FINAL_RETRY_MAX: Duration = Duration::from_secs(5);

/// A job the engine runs, with the runner's state of it.
pub(super) struct Running {
    pub(super) job: Job,
    /// When the current stage ends, if it is timed.
    due: Option<Instant>,
    finishing: bool,
    waiting: Vec<oneshot::Sender<Control>>,
    /// The terminal write (final progress and the webhook's delivery),
    /// kept until it commits: a failed write (disk full, read-only file)
    /// is retried with backoff, so the job never stays `running` in the
    /// store while the engine has forgotten it.
    final_write: Option<(ProgressWrite, Option<DeliveryRow>)>,
    final_failures: u32,
}

/// The runner's state: running jobs, and those whose progress is not yet
/// written. Progress is flushed as one write when the command queue runs
/// dry (or every `FLUSH_EVERY` commands under sustained load), so a job
/// that moves through several stages between two flushes costs one row
/// update, and one that finishes costs none.
#[derive(Default)]
pub(super) struct Stages {
    pub(super) jobs: HashMap<String, Running>,
    dirty: HashSet<String>,
    pub(super) since_flush: usize,
}

impl Stages {
    pub(super) fn clear(&mut self) {
        self.jobs.clear();
        self.dirty.clear();
    }
}

impl Engine {
    pub(super) fn start_job(&mut self, mut job: Job) {
        if job.status == JobStatus::Pending {
            job.begin();
            self.metrics.job_entered(JobStatus::Running);
            self.stages.dirty.insert(job.id.clone());
        }
        let id = job.id.clone();
        let running = Running {
            job,
            due: None,
            finishing: false,
            waiting: Vec::new(),
            final_write: None,
            final_failures: 0,
        };
        self.stages.jobs.insert(id.clone(), running);
        self.schedule_stage(&id);
    }

    /// (Re)sets the timer of the job's current stage; none when held.
    fn schedule_stage(&mut self, id: &str) {
        let Some(job) = self.stages.jobs.get_mut(id) else {
            return;
        };
        if let Some(at) = job.due.take() {
            self.timers.remove(at, Due::Stage(id.to_owned()));
        }
        if job.job.plan.hold || job.finishing {
            return;
        }
        let at = Instant::now() + Duration::from_millis(job.job.plan.stage_ms);
        job.due = Some(at);
        self.timers.insert(at, Due::Stage(id.to_owned()));
    }

    pub(super) fn stage_due(&mut self, id: &str) {
        if let Some(job) = self.stages.jobs.get_mut(id) {
            job.due = None;
            if !job.finishing {
                self.apply(id, Action::Advance, &Caller::StageTimer, None);
            }
        }
    }

    /// A control request: applied to a running job the caller may touch,
    /// else answered `NotActive`.
    pub(super) fn control(
        &mut self,
        id: &str,
        caller: &Caller,
        action: Action,
        reply: oneshot::Sender<Control>,
    ) {
        match self.stages.jobs.get(id) {
            Some(j) if !j.finishing && caller.may_touch(&j.job.tenant) => {
                self.apply(id, action, caller, Some(reply))
            }
            _ => {
                let _ = reply.send(Control::NotActive);
            }
        }
    }

    /// Applies `action` (a stage's end is `Advance`): the job fails,
    /// finishes, or starts its next stage.
    fn apply(
        &mut self,
        id: &str,
        action: Action,
        caller: &Caller,
        reply: Option<oneshot::Sender<Control>>,
    ) {
        let Some(running) = self.stages.jobs.get_mut(id) else {
            return;
        };
        if let Step::End(status, err) = running.job.control(action, caller) {
            self.finish(id, status, err, reply);
            return;
        }
        match reply {
            None => {
                self.stages.dirty.insert(id.to_owned());
            }
            Some(reply) => {
                let progress = running.job.progress(&rfc3339(Utc::now()));
                self.persist_now(progress, reply);
            }
        }
        self.schedule_stage(id);
    }

    pub(super) fn flush_progress(&mut self) {
        self.stages.since_flush = 0;
        if self.stages.dirty.is_empty() {
            return;
        }
        let now = rfc3339(Utc::now());
        let Stages { jobs, dirty, .. } = &mut self.stages;
        let mut batch: Vec<ProgressWrite> = Vec::with_capacity(dirty.len());
        for id in dirty.drain() {
            match jobs.get_mut(&id) {
                Some(j) if !j.finishing => batch.extend(write_of(j.job.progress(&now))),
                _ => {}
            }
        }
        self.store.write_bg("job progress", move |c| {
            batch.iter().try_for_each(|p| store::update_job(c, p))
        });
    }

    /// Writes a running job's progress now; `reply` hears once it committed
    /// (an admin call answers with what a poll will then see).
    fn persist_now(&mut self, progress: Progress, reply: oneshot::Sender<Control>) {
        self.stages.dirty.remove(&progress.id);
        let (tx, id) = (self.tx.clone(), progress.id.clone());
        let Some(progress) = write_of(progress) else {
            return;
        };
        self.store.write_then(
            move |c| store::update_job(c, &progress),
            move |_| {
                let _ = tx.send(Command::Committed {
                    id,
                    finished: None,
                    reply: Some(reply),
                });
            },
        );
    }

    /// Moves a job to a terminal status: the status and its webhook event
    /// are committed together before anyone can see the job finished.
    fn finish(
        &mut self,
        id: &str,
        status: JobStatus,
        error: Option<WebhookError>,
        reply: Option<oneshot::Sender<Control>>,
    ) {
        let Some(running) = self.stages.jobs.get_mut(id) else {
            return;
        };
        if let Some(at) = running.due.take() {
            self.timers.remove(at, Due::Stage(id.to_owned()));
        }
        running.finishing = true;
        running.waiting.extend(reply);
        // The final update below supersedes any progress not yet written.
        self.stages.dirty.remove(id);
        let Ending {
            progress, delivery, ..
        } = running.job.ending(status, error, &self.settings.ids);
        running.final_write = write_of(progress).map(|p| (p, delivery));
        // Remember the status for metrics when the commit lands.
        running.job.status = status;
        self.write_final(id);
    }

    /// (Re)issues a finishing job's terminal write.
    pub(super) fn write_final(&mut self, id: &str) {
        let Some((progress, delivery)) =
            self.stages.jobs.get(id).and_then(|j| j.final_write.clone())
        else {
            return;
        };
        let (tx, id) = (self.tx.clone(), id.to_owned());
        // Shared with the write, which may run twice and is dropped before
        // `then` runs.
        let delivery = delivery.map(Arc::new);
        let written = delivery.clone();
        self.store.write_then(
            move |c| {
                store::update_job(c, &progress)?;
                if let Some(d) = &written {
                    store::insert_delivery(c, d)?;
                }
                Ok(())
            },
            move |res| {
                let finished = res
                    .map(|()| delivery.map(Arc::unwrap_or_clone))
                    .map_err(|e| e.to_string());
                let _ = tx.send(Command::Committed {
                    id,
                    finished: Some(finished),
                    reply: None,
                });
            },
        );
    }

    pub(super) fn finished(&mut self, id: &str, outcome: Result<Option<DeliveryRow>, String>) {
        if let Err(e) = &outcome {
            // Not committed (disk full, read-only database…): keep the job
            // and write its end again, 100 ms doubling up to 5 s, until it
            // commits. Waiting admin calls answer then.
            let Some(job) = self.stages.jobs.get_mut(id) else {
                return;
            };
            job.final_failures += 1;
            let wait = Duration::from_millis(100 << job.final_failures.min(6)).min(FINAL_RETRY_MAX);
            if job.final_failures == 1 || job.final_failures % 20 == 0 {
                log::error!(
                    "could not record the end of job {id} ({} tries): {e}; retrying every {wait:?} at most",
                    job.final_failures
                );
            }
            self.timers
                .insert(Instant::now() + wait, Due::FinalWrite(id.to_owned()));
            return;
        }
        let Some(job) = self.stages.jobs.remove(id) else {
            return;
        };
        if job.final_failures > 0 {
            log::info!(
                "recorded the end of job {id} after {} failed tries",
                job.final_failures
            );
        }
        self.metrics.active_jobs.fetch_sub(1, Relaxed);
        match outcome {
            Ok(delivery) => {
                self.metrics.job_entered(job.job.status);
                if let Some(row) = delivery {
                    self.enqueue_delivery(&row);
                }
            }
            Err(_) => unreachable!("handled above"),
        }
        for w in job.waiting {
            let _ = w.send(Control::Done);
        }
    }
}

/// A progress change as the writer stores it, rendered here (on the
/// engine's thread, not the writer's). It cannot fail in practice (plain
/// values to JSON); if it did, the change is logged and not written.
fn write_of(p: Progress) -> Option<ProgressWrite> {
    let id = p.id.clone();
    ProgressWrite::try_from(p)
        .map_err(|e| log::error!("job {id}: its progress could not be rendered: {e}"))
        .ok()
}
