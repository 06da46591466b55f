//! Counters behind `GET /metrics` (Prometheus text format).

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;

use shared::JobStatus;

/// Upper bounds (seconds) of the delivery latency histogram.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
pub struct Metrics {
    pub submits: AtomicU64,
    pub submits_replayed: AtomicU64,
    pub submits_rejected: AtomicU64,
    pub submit_errors_injected: AtomicU64,
    /// Jobs reaching each status, by `JobStatus` index.
    pub jobs_by_status: [AtomicU64; 5],
    pub active_jobs: AtomicI64,
    pub attempts_delivered: AtomicU64,
    pub attempts_http_error: AtomicU64,
    pub attempts_transport_error: AtomicU64,
    pub deliveries_dead: AtomicU64,
    pub queue_depth: AtomicI64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    /// Rows removed by retention: jobs, deliveries, attempts, idempotency.
    retention_removed: [AtomicU64; 4],
    /// Once a second, the counters the console turns into rates.
    history: Mutex<VecDeque<Sample>>,
}

/// The counters behind the console's rates, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    pub submits: u64,
    pub attempts: u64,
    pub failed_attempts: u64,
}

/// Samples kept: with the current counters, a minute of rates.
const HISTORY: usize = 60;

/// Per-second rates over the last minute, from [`Metrics::history`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Rates {
    /// Seconds the rates cover (less than 60 just after start).
    pub window_s: u64,
    pub submits_per_s: f64,
    pub webhooks_per_s: f64,
    pub webhook_failures_per_s: f64,
    /// Per second, oldest first: what the console draws.
    pub submits: Vec<u64>,
    pub webhooks: Vec<u64>,
    pub webhook_failures: Vec<u64>,
}

fn status_index(s: JobStatus) -> usize {
    JobStatus::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

impl Metrics {
    pub fn swept(&self, s: &crate::store::Swept) {
        for (c, n) in
            self.retention_removed
                .iter()
                .zip([s.jobs, s.deliveries, s.attempts, s.idempotency])
        {
            c.fetch_add(n as u64, Relaxed);
        }
    }

    pub fn sample(&self) -> Sample {
        let failed =
            self.attempts_http_error.load(Relaxed) + self.attempts_transport_error.load(Relaxed);
        Sample {
            submits: self.submits.load(Relaxed),
            attempts: self.attempts_delivered.load(Relaxed) + failed,
            failed_attempts: failed,
        }
    }

    /// Takes this second's sample (the sampler task calls it every second).
    pub fn record_sample(&self) {
        let s = self.sample();
        let mut h = self.history.lock();
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(s);
    }

    /// Rates over the samples kept, the current counters counting as now.
    pub fn rates(&self) -> Rates {
        let now = self.sample();
        let h = self.history.lock();
        let points: Vec<Sample> = h.iter().copied().chain([now]).collect();
        // The newest sample may be almost a second old: the last interval
        // is partial, so the window is counted in whole samples.
        let window_s = (points.len() - 1) as u64;
        let per_s = |f: fn(&Sample) -> u64| -> Vec<u64> {
            points
                .windows(2)
                .map(|w| f(&w[1]).saturating_sub(f(&w[0])))
                .collect()
        };
        let (submits, webhooks, webhook_failures) = (
            per_s(|s| s.submits),
            per_s(|s| s.attempts),
            per_s(|s| s.failed_attempts),
        );
        let rate = |v: &[u64]| match window_s {
            0 => 0.0,
            w => v.iter().sum::<u64>() as f64 / w as f64,
        };
        Rates {
            window_s,
            submits_per_s: rate(&submits),
            webhooks_per_s: rate(&webhooks),
            webhook_failures_per_s: rate(&webhook_failures),
            submits,
            webhooks,
            webhook_failures,
        }
    }

    pub fn job_entered(&self, s: JobStatus) {
        self.jobs_by_status[status_index(s)].fetch_add(1, Relaxed);
    }

    pub fn observe_latency(&self, secs: f64) {
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.latency_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add((secs * 1e6) as u64, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        self.render_totals(&mut out);
        self.render_jobs(&mut out);
        self.render_by_label(&mut out);
        self.render_queue(&mut out);
        out
    }

    /// The plain counters: submits and dead deliveries.
    fn render_totals(&self, out: &mut String) {
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            "mock_camber_submits_total",
            "Jobs created by POST /jobs.",
            self.submits.load(Relaxed),
        );
        counter(
            "mock_camber_submits_replayed_total",
            "Submits answered from an Idempotency-Key record.",
            self.submits_replayed.load(Relaxed),
        );
        counter(
            "mock_camber_submits_rejected_total",
            "Submits refused for bad input, auth or idempotency conflicts.",
            self.submits_rejected.load(Relaxed),
        );
        counter(
            "mock_camber_submit_errors_injected_total",
            "Submits answered 429/503 by --submit-error-rate.",
            self.submit_errors_injected.load(Relaxed),
        );
        counter(
            "mock_camber_deliveries_dead_total",
            "Deliveries that exhausted the retry schedule.",
            self.deliveries_dead.load(Relaxed),
        );
    }

    /// Jobs by status since start, and active now.
    fn render_jobs(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP mock_camber_jobs_total Jobs that entered each status since start.\n# TYPE mock_camber_jobs_total counter"
        );
        for s in JobStatus::ALL {
            let _ = writeln!(
                out,
                "mock_camber_jobs_total{{status=\"{}\"}} {}",
                s.as_str(),
                self.jobs_by_status[status_index(s)].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP mock_camber_active_jobs Jobs pending or running now.\n# TYPE mock_camber_active_jobs gauge\nmock_camber_active_jobs {}",
            self.active_jobs.load(Relaxed)
        );
    }

    /// Webhook attempts by outcome, rows removed by --retention by kind.
    fn render_by_label(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP mock_camber_webhook_attempts_total Webhook attempts by outcome.\n# TYPE mock_camber_webhook_attempts_total counter"
        );
        for (outcome, v) in [
            ("delivered", &self.attempts_delivered),
            ("http_error", &self.attempts_http_error),
            ("transport_error", &self.attempts_transport_error),
        ] {
            let _ = writeln!(
                out,
                "mock_camber_webhook_attempts_total{{outcome=\"{outcome}\"}} {}",
                v.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP mock_camber_retention_removed_total Rows removed by --retention.\n# TYPE mock_camber_retention_removed_total counter"
        );
        for (kind, v) in ["jobs", "deliveries", "attempts", "idempotency"]
            .iter()
            .zip(&self.retention_removed)
        {
            let _ = writeln!(
                out,
                "mock_camber_retention_removed_total{{kind=\"{kind}\"}} {}",
                v.load(Relaxed)
            );
        }
    }

    /// The webhook queue and the latency histogram of its attempts.
    fn render_queue(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP mock_camber_webhook_queue_depth Deliveries waiting to be sent or retried.\n# TYPE mock_camber_webhook_queue_depth gauge\nmock_camber_webhook_queue_depth {}",
            self.queue_depth.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP mock_camber_webhook_latency_seconds Time of one webhook attempt.\n# TYPE mock_camber_webhook_latency_seconds histogram"
        );
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "mock_camber_webhook_latency_seconds_bucket{{le=\"{le}\"}} {}",
                self.latency_buckets[i].load(Relaxed)
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(
            out,
            "mock_camber_webhook_latency_seconds_bucket{{le=\"+Inf\"}} {count}\nmock_camber_webhook_latency_seconds_sum {}\nmock_camber_webhook_latency_seconds_count {count}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6
        );
    }
}

/// Samples the counters every second for the console's rates; aborted with
/// the server.
pub fn spawn_sampler(metrics: std::sync::Arc<Metrics>) -> tokio::task::JoinHandle<()> {
    // The first sample is taken here, before the server takes a request,
    // so every submit falls after it and is counted in the rates (taken
    // in the task instead, it could come after the first submits on a
    // busy machine).
    metrics.record_sample();
    actix_rt::spawn(async move {
        let second = Duration::from_secs(1);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + second, second);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            metrics.record_sample();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_the_differences_between_samples_per_second() {
        let m = Metrics::default();
        assert_eq!(m.rates().window_s, 0);
        m.record_sample();
        m.submits.fetch_add(4, Relaxed);
        m.attempts_delivered.fetch_add(2, Relaxed);
        m.record_sample();
        m.submits.fetch_add(2, Relaxed);
        m.attempts_http_error.fetch_add(1, Relaxed);
        let r = m.rates();
        assert_eq!(r.window_s, 2);
        assert_eq!(r.submits, vec![4, 2]);
        assert_eq!(r.webhooks, vec![2, 1]);
        assert_eq!(r.webhook_failures, vec![0, 1]);
        assert!((r.submits_per_s - 3.0).abs() < 1e-9);
        for _ in 0..100 {
            m.record_sample();
        }
        assert_eq!(m.rates().window_s, 60, "a minute of samples is kept");
    }
}
