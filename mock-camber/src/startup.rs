//! Builds the daemon from settings: store, engine, HTTP server on a bound
//! listener (port 0 in tests).

use std::net::TcpListener;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use parking_lot::Mutex;
use rand::SeedableRng;
use serde_json::Value;

use crate::config::{Settings, DEFAULT_WEBHOOK_SECRET};
use crate::engine::{Engine, EngineHandle, EngineSettings};
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::middleware::{journal_and_request_id, RequestIds};
use crate::scenario::{parse_rules, RuntimeConfig};
use crate::state::AppState;
use crate::store::{self, Store};
use crate::tenant::Ids;
use crate::tenant::Tenants;
use crate::wait::Changes;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database {path}: {source}")]
    Store {
        path: String,
        source: store::StoreError,
    },
    #[error("cannot bind {addr}: {source}{hint}")]
    Bind {
        hint: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("--scenarios {path}: {msg}")]
    Scenarios { path: String, msg: String },
    #[error("{0}")]
    Config(String),
}

/// Raises the open-file limit to the hard one (logging both) and returns
/// the connections one worker may hold: --max-connections, or what fits in
/// the limit. A connection holds up to three descriptors (its socket, the
/// copy kept to notice a client leaving, and one more while a wait is
/// parked); the reserve covers webhook sockets, the database's reader pool
/// (16) and writer (three files each) and the runtime.
fn connection_bound(settings: &Settings, workers: usize) -> usize {
    let reserve = settings.webhook_max_in_flight + 3 * 17 + 16 * workers as u64 + 64;
    shared::fdlimit::connections_per_worker(
        settings
            .max_connections
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        reserve,
        3,
        workers,
        "; or lower --webhook-max-in-flight",
    )
}

/// TLS handshakes one worker runs at once (they cost memory, not CPU,
/// while they wait for a client).
const MAX_HANDSHAKES_PER_WORKER: usize = 4096;

pub struct Application {
    /// The retention sweeper, stopped with the server.
    sweeper: Option<tokio::task::JoinHandle<()>>,
    /// The console's rate sampler, stopped with the server.
    sampler: tokio::task::JoinHandle<()>,
    changes: Changes,
    scheme: &'static str,
    host: String,
    port: u16,
    server: Server,
    engine: EngineHandle,
    store: Store,
}

impl Application {
    /// Must be called inside an actix system (the engine runs on it).
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        if settings.webhook_secrets.iter().any(|s| s.is_empty())
            || settings.webhook_secrets.is_empty()
        {
            return Err(StartupError::Config(
                "--webhook-secret / WEBHOOK_SECRET: a secret cannot be empty \
                 (check for a stray comma)"
                    .to_owned(),
            ));
        }
        check_secrets(&settings)?;
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => {
                let config = shared::tls::server_config(cert, "--tls-cert", key, "--tls-key")
                    .map_err(StartupError::Config)?;
                warn_if_expired(cert);
                Some(config)
            }
            _ => None,
        };
        let rules = match &settings.scenarios {
            None => Vec::new(),
            Some(path) => {
                let err = |msg: String| StartupError::Scenarios {
                    path: path.display().to_string(),
                    msg,
                };
                let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
                let v: Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
                parse_rules(v).map_err(err)?
            }
        };
        let db = describe_db(&settings.db);
        if settings.db != ":memory:" {
            // A directory as --db, or a file on the way: one line that says so.
            shared::paths::check_file(std::path::Path::new(&settings.db), "mock-camber.db")
                .map_err(|msg| {
                    StartupError::Config(format!("cannot open the database {}: {msg}", db.path))
                })?;
        }
        let store_err = |source| StartupError::Store {
            path: db.path.clone(),
            source,
        };
        let changes = Changes::new();
        let bump = changes.clone();
        let store = Store::open_notifying(
            &settings.db,
            Some(Box::new(move || bump.changed(&crate::store::take_notes()))),
        )
        .map_err(store_err)?;
        log::info!("database: {}{}", db.path, db.note);
        let last_seq = store.read_now(store::max_job_seq).map_err(store_err)?;
        let resume_jobs = store.read_now(store::active_jobs).map_err(store_err)?;
        let max_loaded = settings.max_loaded_deliveries as usize;
        let resume_deliveries = store
            .read_now(move |c| store::pending_page(c, None, max_loaded + 1))
            .map_err(store_err)?;
        let pending_total = store.read_now(store::count_pending).map_err(store_err)?;
        if !resume_jobs.is_empty() || pending_total > 0 {
            log::info!(
                "resuming {} unfinished job(s) and {pending_total} pending webhook(s)",
                resume_jobs.len(),
            );
        }
        let seed = settings.seed.unwrap_or_else(rand::random);
        let ids = Ids::new(seed);
        let metrics = Arc::new(Metrics::default());
        metrics
            .active_jobs
            .store(resume_jobs.len() as i64, Ordering::Relaxed);
        let last_seq_at_start = last_seq;
        let last_seq = Arc::new(AtomicI64::new(last_seq));
        let engine = Engine::start(
            store.clone(),
            metrics.clone(),
            EngineSettings {
                webhook_secrets: settings.webhook_secrets.clone(),
                tenant_secrets: crate::tenant::tenant_secrets(&settings.api_keys),
                retry_schedule: settings.retry_schedule.clone(),
                delivery_timeout: settings.delivery_timeout,
                ids,
                max_loaded_deliveries: max_loaded,
                max_in_flight: settings.webhook_max_in_flight as usize,
                max_per_destination: settings.webhook_max_per_destination as usize,
                policy: settings.webhook_policy.clone(),
            },
            last_seq.clone(),
            resume_jobs,
            resume_deliveries,
            pending_total,
        );
        warn_about(&settings);
        let addr = format!("{}:{}", settings.host, settings.port);
        let listener = TcpListener::bind(&addr).map_err(|source| StartupError::Bind {
            hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                " (another process holds the port: choose another with --port or \
                 MOCK_CAMBER_PORT, or --port 0 for any free one)"
            } else {
                ""
            },
            addr: addr.clone(),
            source,
        })?;
        shared::fdlimit::widen_backlog(&listener)?;
        let port = listener.local_addr()?.port();
        let workers = settings.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        });
        let max_connections = connection_bound(&settings, workers);
        let host = settings.host.clone();
        let tls_handshake_timeout = settings.tls_handshake_timeout;
        let sweeper = crate::retention::spawn(store.clone(), metrics.clone(), settings.retention);
        let sampler = crate::metrics::spawn_sampler(metrics.clone());
        let state = web::Data::new(AppState {
            journal: Journal::new(
                settings.journal_size,
                settings.journal_bytes as usize,
                changes.clone(),
            ),
            changes: changes.clone(),
            config: Mutex::new(RuntimeConfig {
                stage_ms: settings.stage_ms,
                failure_rate: settings.failure_rate,
                submit_error_rate: settings.submit_error_rate,
                latency_ms: 0,
                rules,
            }),
            tenants: Tenants::new(&settings.api_keys),
            // Seeded by where the id sequence stands, so a restart continues
            // rather than replays the injection pattern.
            submit_rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(
                seed ^ 0x5eed ^ (last_seq_at_start as u64).rotate_left(32),
            )),
            stats_cache: Default::default(),
            settings,
            store: store.clone(),
            engine: engine.clone(),
            metrics,
            last_seq,
            ids,
        });
        let request_ids = web::Data::new(RequestIds::new());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(request_ids.clone())
                .app_data(web::QueryConfig::default().error_handler(crate::routes::query_error))
                .configure(crate::routes::configure)
                .default_service(web::to(crate::routes::not_found))
                .wrap(from_fn(journal_and_request_id))
        })
        .on_connect(crate::wait::on_connect)
        // Stalled TLS handshakes (a client that never sends its hello) are
        // cut at the timeout, and up to this many may be under way per
        // worker before the worker stops accepting: actix's default of 256
        // let a few hundred idle sockets lock every client out.
        .max_connection_rate(MAX_HANDSHAKES_PER_WORKER)
        // Past this, a worker stops accepting until a connection closes,
        // rather than running out of descriptors (see connection_bound).
        .max_connections(max_connections)
        .tls_handshake_timeout(tls_handshake_timeout)
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(5);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config)?,
            None => server.listen(listener)?,
        }
        .run();
        Ok(Self {
            sweeper,
            sampler,
            changes,
            scheme,
            host,
            port,
            server,
            engine,
            store,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://HOST:PORT` (or `https://` with --tls-cert) as bound.
    pub fn address(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    /// The daemon's store (tests use it to inject storage faults).
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// What stops the server gracefully (see [`Stopper`]).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            changes: self.changes.clone(),
            handle: self.server.handle(),
        }
    }

    /// Serves until the server is stopped, then stops the engine and makes
    /// sure every queued write is committed. Pending deliveries stay in the
    /// store and resume at the next start.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(sweeper) = &self.sweeper {
            sweeper.abort();
        }
        self.sampler.abort();
        served?;
        self.engine.shutdown().await;
        if let Err(e) = self.store.write(|_| Ok(())).await {
            log::error!("final flush failed: {e}");
        }
        Ok(())
    }
}

/// Stops the server gracefully, first ending the console's event streams
/// (which would otherwise hold the stop for its whole timeout).
pub struct Stopper {
    changes: Changes,
    handle: ServerHandle,
}

impl Stopper {
    pub async fn stop(self) {
        self.changes.close();
        self.handle.stop(true).await;
    }
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

/// A `whsec_` secret that Standard Webhooks libraries cannot decode is
/// refused here, in one line naming the flag, rather than signing every
/// webhook with a key no receiver derives.
fn check_secrets(s: &Settings) -> Result<(), StartupError> {
    for secret in &s.webhook_secrets {
        shared::signing::check_secret(secret)
            .map_err(|e| StartupError::Config(format!("--webhook-secret / WEBHOOK_SECRET: {e}")))?;
    }
    let tenant = crate::tenant::tenant_secrets(&s.api_keys);
    for secret in tenant.values().flatten() {
        shared::signing::check_secret(secret).map_err(|e| {
            StartupError::Config(format!(
                "--api-key / CAMBER_API_KEYS (a tenant's KEY=SECRET): {e}"
            ))
        })?;
    }
    Ok(())
}

/// An expired certificate still starts the server (a test setup may want
/// exactly that), but every verifying client will refuse it: say so.
fn warn_if_expired(cert: &std::path::Path) {
    let Some(not_after) = shared::tls::leaf_not_after(cert) else {
        return;
    };
    if not_after < chrono::Utc::now().timestamp() {
        let when = chrono::DateTime::from_timestamp(not_after, 0)
            .map_or_else(|| not_after.to_string(), |t| t.to_rfc3339());
        log::warn!(
            "--tls-cert {}: the certificate expired at {when}; clients that verify it will refuse every connection",
            cert.display()
        );
    }
}

fn warn_about(s: &Settings) {
    if s.api_keys.iter().all(|k| k.trim().is_empty()) {
        log::warn!(
            "no --api-key configured: every non-empty bearer token is accepted as its own tenant"
        );
    }
    if s.webhook_secrets
        .iter()
        .any(|w| w == DEFAULT_WEBHOOK_SECRET)
    {
        log::warn!("using the default webhook secret; set --webhook-secret / WEBHOOK_SECRET");
    }
    if !s.is_loopback() && s.admin_token.is_none() {
        log::warn!(
            "bound to {} with no --admin-token: the admin API under /_mock/ is open to anyone who can reach it",
            s.host
        );
    }
}
