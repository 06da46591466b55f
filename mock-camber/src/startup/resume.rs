//! Opening the store at start-up, and resuming what it holds: unfinished
//! jobs and pending webhooks handed to the engine.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use super::StartupError;
use crate::config::Settings;
use crate::engine::{Engine, EngineHandle, EngineSettings};
use crate::metrics::Metrics;
use crate::store::{self, Store};
use crate::tenant::Ids;
use crate::wait::Changes;

/// What the store holds at start that the engine resumes.
pub(super) struct Resumed {
    pub(super) last_seq: i64,
    pub(super) jobs: Vec<store::JobRow>,
    deliveries: Vec<store::DeliveryRow>,
    pending_total: i64,
}

/// Opens the store (its commit hook wakes the waits through `changes`),
/// says which database it is, and reads what the engine resumes.
pub(super) fn open_store(
    settings: &Settings,
    changes: &Changes,
) -> Result<(Store, Resumed), StartupError> {
    let db = describe_db(&settings.db);
    if settings.db != ":memory:" {
        // A directory as --db, or a file on the way: one line that says so.
        shared::paths::check_file(std::path::Path::new(&settings.db), "mock-camber.db").map_err(
            |msg| StartupError::Config(format!("cannot open the database {}: {msg}", db.path)),
        )?;
    }
    let store_err = |source| StartupError::Store {
        path: db.path.clone(),
        source,
    };
    let bump = changes.clone();
    let store = Store::open_notifying(
        &settings.db,
        Some(Box::new(move || bump.changed(&crate::store::take_notes()))),
    )
    .map_err(store_err)?;
    log::info!("database: {}{}", db.path, db.note);
    let last_seq = store.read_now(store::max_job_seq).map_err(store_err)?;
    let jobs = store.read_now(store::active_jobs).map_err(store_err)?;
    let max_loaded = settings.max_loaded_deliveries as usize;
    let deliveries = store
        .read_now(move |c| store::pending_page(c, None, max_loaded + 1))
        .map_err(store_err)?;
    let pending_total = store.read_now(store::count_pending).map_err(store_err)?;
    if !jobs.is_empty() || pending_total > 0 {
        log::info!(
            "resuming {} unfinished job(s) and {pending_total} pending webhook(s)",
            jobs.len(),
        );
    }
    let resumed = Resumed {
        last_seq,
        jobs,
        deliveries,
        pending_total,
    };
    Ok((store, resumed))
}

/// Starts the engine task with what the store held.
pub(super) fn start_engine(
    settings: &Settings,
    store: &Store,
    metrics: &Arc<Metrics>,
    ids: Ids,
    last_seq: Arc<AtomicI64>,
    resumed: Resumed,
) -> EngineHandle {
    Engine::start(
        store.clone(),
        metrics.clone(),
        EngineSettings {
            webhook_secrets: settings.webhook_secrets.clone(),
            tenant_secrets: crate::tenant::tenant_secrets(&settings.api_keys),
            retry_schedule: settings.retry_schedule.clone(),
            delivery_timeout: settings.delivery_timeout,
            ids,
            max_loaded_deliveries: settings.max_loaded_deliveries as usize,
            max_in_flight: settings.webhook_max_in_flight as usize,
            max_per_destination: settings.webhook_max_per_destination as usize,
            policy: settings.webhook_policy.clone(),
        },
        last_seq,
        resumed.jobs,
        resumed.deliveries,
        resumed.pending_total,
    )
}

/// The database as the start-up line shows it: an absolute path, and
/// whether this start creates the file or its directory (a typo in `--db`
/// otherwise gives an empty store without a word).
struct DbDescription {
    path: String,
    note: &'static str,
}

fn describe_db(db: &str) -> DbDescription {
    if db == ":memory:" {
        return DbDescription {
            path: db.to_owned(),
            note: " (a temporary file, removed at exit)",
        };
    }
    let (path, note) = shared::paths::describe(std::path::Path::new(db));
    DbDescription { path, note }
}
