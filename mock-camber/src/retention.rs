//! The retention sweeper: every quarter of the window (between 100 ms and
//! a minute) it removes what finished before `now - window`, in batches of
//! [`BATCH`] jobs through the shared writer, so a submit waits behind one
//! small batch at most, never behind a whole sweep. `now` is
//! [`crate::clock::now`]: a forward jump of the system clock does not
//! sweep early.

use std::sync::Arc;
use std::time::Duration;

use shared::wire::rfc3339;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::store::{self, Store};

/// Jobs (and idempotency records) removed per write.
pub const BATCH: usize = 500;

/// Starts the sweeper on the current actix system; `None` when the window
/// is 0 (keep everything).
pub fn spawn(store: Store, metrics: Arc<Metrics>, window: Duration) -> Option<JoinHandle<()>> {
    // Anchor the steady clock at start (it is also what submits use for
    // the idempotency window).
    crate::clock::init();
    if window.is_zero() {
        return None;
    }
    let every = (window / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    Some(actix_rt::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let at = crate::clock::cutoff(crate::clock::now(), window);
            let (cutoff, cutoff_unix) = (rfc3339(at), at.timestamp());
            loop {
                let cutoff = cutoff.clone();
                match store
                    .write(move |c| store::sweep_batch(c, &cutoff, cutoff_unix, BATCH))
                    .await
                {
                    Ok(swept) => {
                        metrics.swept(&swept);
                        if swept.jobs < BATCH && swept.idempotency < BATCH {
                            break;
                        }
                    }
                    Err(e) => {
                        log::error!("retention sweep failed (retried at the next tick): {e}");
                        break;
                    }
                }
            }
        }
    }))
}
