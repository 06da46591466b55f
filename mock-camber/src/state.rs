//! Shared application state: settings, store, engine handle, runtime config,
//! tenants, journal and metrics. Who may call what is in `auth`; the
//! runtime config and its rules in `scenario`.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use parking_lot::Mutex;
use rand::rngs::StdRng;

use crate::config::Settings;
use crate::console::stats::StatsCache;
use crate::engine::EngineHandle;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::scenario::RuntimeConfig;
use crate::store::Store;
use crate::tenant::Ids;
use crate::tenant::Tenants;
use crate::wait::Changes;

pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub engine: EngineHandle,
    pub metrics: Arc<Metrics>,
    pub journal: Journal,
    /// Bumped by every committed store batch and journal entry: what
    /// long-poll waits park on.
    pub changes: Changes,
    pub config: Mutex<RuntimeConfig>,
    pub last_seq: Arc<AtomicI64>,
    pub ids: Ids,
    pub tenants: Tenants,
    /// Draws for submit error injection; seeded, so a seeded run injects
    /// errors into the same submits.
    pub submit_rng: Mutex<StdRng>,
    /// The console's last overview, with the change counter it was read at:
    /// open console tabs woken by one change share one read.
    pub stats_cache: StatsCache,
    /// The receiver audits running (`audit/`).
    pub audits: crate::audit::Audits,
}
