//! Counters for `/metrics` (Prometheus text format). Jobs by status come
//! from the database at scrape time; everything else is counted here.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

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

        let _ = writeln!(out, "# HELP api_reconcile_polls_total Polls of Camber for jobs stuck in processing.\n# TYPE api_reconcile_polls_total counter\napi_reconcile_polls_total {}", get(&self.reconcile_polls));
        let _ = writeln!(out, "# HELP api_reconcile_applied_total Jobs finished by the reconciler.\n# TYPE api_reconcile_applied_total counter\napi_reconcile_applied_total {}", get(&self.reconcile_applied));
        let _ = writeln!(out, "# HELP api_uploads_total Inputs stored through upload URLs.\n# TYPE api_uploads_total counter\napi_uploads_total {}", get(&self.uploads));
        out
    }
}
