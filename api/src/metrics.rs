//! Counters for `/metrics` (Prometheus text format). Jobs by status come
//! from the database at scrape time; everything else is counted here.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub jobs_created: AtomicU64,
    pub submits_ok: AtomicU64,
    pub submits_retry: AtomicU64,
    pub submits_rejected: AtomicU64,
    pub submits_gave_up: AtomicU64,
    pub webhooks_applied: AtomicU64,
    pub webhooks_duplicate: AtomicU64,
    pub webhooks_unauthorized: AtomicU64,
    pub webhooks_rejected: AtomicU64,
    pub reconcile_polls: AtomicU64,
    pub reconcile_applied: AtomicU64,
    pub uploads: AtomicU64,
    pub signatures: SignatureWatch,
}

/// Webhooks refused for their signature: a wrong `WEBHOOK_SECRET` must not
/// go unnoticed while the reconciler quietly finishes the jobs.
#[derive(Default)]
pub struct SignatureWatch {
    /// Refused since the last webhook whose signature verified.
    in_a_row: AtomicU64,
    /// Refusals not logged because of the rate limit.
    unlogged: AtomicU64,
    last_warning_ms: AtomicI64,
}

/// At most one warning per this many ms (with the count of the others).
const SIGNATURE_WARNING_EVERY_MS: i64 = 30_000;

/// From this many refusals in a row `/readyz` says so.
pub const REFUSED_IN_A_ROW_WARNING: u64 = 3;

impl SignatureWatch {
    /// A webhook refused for its signature (`missing`: it had none). Logs a
    /// warning at most every 30 s (true when it did); the secret itself is
    /// never logged.
    pub fn refused(&self, missing: bool, now_ms: i64) -> bool {
        let in_a_row = self.in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms - last >= SIGNATURE_WARNING_EVERY_MS;
        if !due
            || self
                .last_warning_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
        let what = if missing {
            "had no X-Webhook-Secret header"
        } else {
            "has an X-Webhook-Secret that does not verify with this api's WEBHOOK_SECRET"
        };
        log::warn!(
            "refused a Camber webhook (401): it {what}. {in_a_row} refused in a row \
             ({unlogged} more not logged since the last warning). Camber and this api \
             must share one webhook secret; until they do, jobs finish only through \
             the reconciler (API_RECONCILE_AFTER later)."
        );
        true
    }

    /// A webhook whose signature verified.
    pub fn accepted(&self) {
        self.in_a_row.store(0, Ordering::Relaxed);
    }

    pub fn refused_in_a_row(&self) -> u64 {
        self.in_a_row.load(Ordering::Relaxed)
    }
}

/// Milliseconds on a monotonic clock (since the first call, plus 1: 0
/// means "never"), for measuring intervals that a wall-clock step must not
/// stretch or shrink.
pub fn monotonic_ms() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as i64
        + 1
}

pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn render(&self, jobs_by_status: &[(String, u64)]) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);

        out.push_str("# HELP api_jobs Jobs in the database by status.\n# TYPE api_jobs gauge\n");
        for status in crate::domain::Status::ALL {
            let n = jobs_by_status
                .iter()
                .find(|(s, _)| s == status.as_str())
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "api_jobs{{status=\"{}\"}} {n}", status.as_str());
        }
        let _ = writeln!(out, "# HELP api_jobs_created_total Jobs accepted by POST /jobs.\n# TYPE api_jobs_created_total counter\napi_jobs_created_total {}", get(&self.jobs_created));

        out.push_str("# HELP api_camber_submits_total Submit attempts to Camber by outcome.\n# TYPE api_camber_submits_total counter\n");
        for (label, c) in [
            ("ok", &self.submits_ok),
            ("retry", &self.submits_retry),
            ("rejected", &self.submits_rejected),
            ("gave_up", &self.submits_gave_up),
        ] {
            let _ = writeln!(
                out,
                "api_camber_submits_total{{outcome=\"{label}\"}} {}",
                get(c)
            );
        }

        out.push_str("# HELP api_webhooks_total Camber webhooks received by outcome.\n# TYPE api_webhooks_total counter\n");
        for (label, c) in [
            ("applied", &self.webhooks_applied),
            ("duplicate", &self.webhooks_duplicate),
            ("unauthorized", &self.webhooks_unauthorized),
            ("rejected", &self.webhooks_rejected),
        ] {
            let _ = writeln!(out, "api_webhooks_total{{outcome=\"{label}\"}} {}", get(c));
        }

        let _ = writeln!(out, "# HELP api_webhooks_refused_in_a_row Webhooks refused for their signature since the last one that verified (a wrong WEBHOOK_SECRET shows here).\n# TYPE api_webhooks_refused_in_a_row gauge\napi_webhooks_refused_in_a_row {}", self.signatures.refused_in_a_row());
        let _ = writeln!(out, "# HELP api_reconcile_polls_total Polls of Camber for jobs stuck in processing.\n# TYPE api_reconcile_polls_total counter\napi_reconcile_polls_total {}", get(&self.reconcile_polls));
        let _ = writeln!(out, "# HELP api_reconcile_applied_total Jobs finished by the reconciler.\n# TYPE api_reconcile_applied_total counter\napi_reconcile_applied_total {}", get(&self.reconcile_applied));
        let _ = writeln!(out, "# HELP api_uploads_total Inputs stored through upload URLs.\n# TYPE api_uploads_total counter\napi_uploads_total {}", get(&self.uploads));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_signatures_warn_at_most_every_30s_and_a_verified_one_resets_the_run() {
        let w = SignatureWatch::default();
        assert!(w.refused(false, 1_000), "the first refusal is logged");
        assert!(!w.refused(true, 2_000), "then the rate limit holds");
        assert!(!w.refused(false, 30_999));
        assert_eq!(w.unlogged.load(Ordering::Relaxed), 2);
        assert!(w.refused(false, 31_000), "30 s later it warns again");
        assert_eq!(
            w.unlogged.load(Ordering::Relaxed),
            0,
            "counted in that warning"
        );
        assert_eq!(w.refused_in_a_row(), 4);
        w.accepted();
        assert_eq!(w.refused_in_a_row(), 0);
    }
}
