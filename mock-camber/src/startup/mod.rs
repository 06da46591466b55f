//! Builds the daemon from settings: store, engine, HTTP server on a bound
//! listener (port 0 in tests). What it checks first is in `checks`, the
//! store it opens and what the engine resumes in `resume`.

mod checks;
mod resume;

use std::net::TcpListener;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use parking_lot::Mutex;
use rand::SeedableRng;

use crate::config::Settings;
use crate::engine::EngineHandle;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::middleware::{journal_and_request_id, RequestIds};
use crate::scenario::RuntimeConfig;
use crate::state::AppState;
use crate::store::{self, Store};
use crate::tenant::Ids;
use crate::tenant::Tenants;
use crate::wait::Changes;
use checks::{check_settings, load_rules, tls_config, warn_about};
use resume::{open_store, start_engine};

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
        check_settings(&settings)?;
        let tls = tls_config(&settings)?;
        let rules = load_rules(&settings)?;
        let changes = Changes::new();
        let (store, resumed) = open_store(&settings, &changes)?;
        let seed = settings.seed.unwrap_or_else(rand::random);
        let ids = Ids::new(seed);
        let metrics = Arc::new(Metrics::default());
        metrics
            .active_jobs
            .store(resumed.jobs.len() as i64, Ordering::Relaxed);
        let last_seq_at_start = resumed.last_seq;
        let last_seq = Arc::new(AtomicI64::new(resumed.last_seq));
        let engine = start_engine(&settings, &store, &metrics, ids, last_seq.clone(), resumed);
        warn_about(&settings);
        let (listener, port) = bind(&settings)?;
        let workers = settings.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        });
        let limits = Limits {
            max_connections: connection_bound(&settings, workers),
            tls_handshake_timeout: settings.tls_handshake_timeout,
            workers,
        };
        let host = settings.host.clone();
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
            audits: Default::default(),
            settings,
            store: store.clone(),
            engine: engine.clone(),
            metrics,
            last_seq,
            ids,
        });
        // Scenario audits a stop left waiting for their delivery wait again.
        crate::routes::audits::resume_after_delivery(&state).map_err(|source| {
            StartupError::Store {
                path: state.settings.db.clone(),
                source,
            }
        })?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = serve(state, listener, tls, &limits)?;
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

/// How many connections and handshakes the server takes on.
struct Limits {
    max_connections: usize,
    tls_handshake_timeout: std::time::Duration,
    workers: usize,
}

/// The listener on --host and --port (port 0: any free one), its backlog
/// widened, and the port it got.
fn bind(settings: &Settings) -> Result<(TcpListener, u16), StartupError> {
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
    Ok((listener, port))
}

/// The HTTP server on `listener` (with TLS when configured), running.
fn serve(
    state: web::Data<AppState>,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
    limits: &Limits,
) -> Result<Server, StartupError> {
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
    .max_connections(limits.max_connections)
    .tls_handshake_timeout(limits.tls_handshake_timeout)
    .workers(limits.workers)
    .disable_signals()
    .shutdown_timeout(5);
    Ok(match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    }
    .run())
}
