//! Builds the running service from `Settings`: binds the listener (port 0
//! works), opens the store, starts the HTTP server and the background
//! thread (submitter + reconciler).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tokio::sync::{oneshot, watch};

use crate::artifacts::ArtifactStore;
use crate::camber::{CamberClient, CamberConfig};
use crate::config::Settings;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::middleware;
use crate::reconciler::Reconciler;
use crate::routes::{self, AppState};
use crate::store::{Store, StoreError};
use crate::submitter::Submitter;
use crate::uploads::UploadSigner;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Config(String),
    #[error("cannot bind {addr}: {source}{hint}")]
    Bind {
        hint: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Store { path: String, source: StoreError },
    #[error("cannot {what} {path}: {msg}")]
    Path {
        what: &'static str,
        path: String,
        msg: String,
    },
    #[error("the database {path}: {source}")]
    Db { path: String, source: StoreError },
    #[error("cannot prepare the artifact directory {path}: {source}")]
    Artifacts {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub struct Application {
    host: String,
    port: u16,
    public_url: String,
    server: Server,
    /// Dropping it stops the background loops (with the server future, or
    /// with the Application if it never ran).
    background_stop: watch::Sender<bool>,
    /// Resolves (with an error: the sender is dropped) once the background
    /// thread has ended, its loops stopped and its last round finished.
    background_done: oneshot::Receiver<()>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        settings.check().map_err(StartupError::Config)?;

        let (listener, host, port, public_url) = bind(&settings)?;
        let (store, artifacts) = open_storage(&settings).await?;
        let lifecycle = Lifecycle {
            store,
            artifacts,
            metrics: Arc::new(Metrics::default()),
            retry_schedule: settings.submit_retry_schedule.clone(),
            submit_lease: settings.camber_timeout * 2 + Duration::from_secs(5),
            reconcile_after: settings.reconcile_after,
            answers: Arc::default(),
        };
        let tls =
            shared::tls::client_config(settings.camber_ca_cert.as_deref(), "--camber-ca-cert")
                .map_err(StartupError::Config)?;
        let camber = Arc::new(CamberConfig {
            tls: Arc::new(tls),
            endpoint: settings.camber_endpoint.trim_end_matches('/').to_owned(),
            api_key: settings.camber_api_key.clone(),
            app: settings.camber_app.clone(),
            callback_url: format!("{public_url}/internal/webhooks/camber"),
            timeout: settings.camber_timeout,
        });
        let state = web::Data::new(AppState {
            lifecycle: lifecycle.clone(),
            public_url: public_url.clone(),
            max_file_bytes: settings.max_file_bytes,
            webhook_secrets: settings.webhook_secrets.clone(),
            uploads: UploadSigner::new(settings.webhook_secrets[0].expose()),
            upload_ttl: settings.upload_url_ttl,
        });

        let body_timeout = routes::BodyTimeout(settings.body_timeout);
        let worker_camber = camber.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(middleware::request_id))
                .wrap(middleware::access_log())
                .app_data(state.clone())
                .app_data(body_timeout)
                // awc::Client is !Send: one per worker.
                .app_data(web::Data::new(CamberClient::new(worker_camber.clone())))
                .configure(routes::configure)
        })
        // Past this, a worker stops accepting until a connection closes,
        // rather than running out of descriptors.
        .max_connections(connection_bound())
        .listen(listener)?
        .shutdown_timeout(30)
        .run();

        let (background_stop, stop_rx) = watch::channel(false);
        let (done_tx, background_done) = oneshot::channel();
        start_background(
            lifecycle,
            camber,
            settings.worker_interval,
            stop_rx,
            done_tx,
        )?;

        log::info!(
            "api on {} → Camber at {} (app {})",
            host_port(&host, port),
            settings.camber_endpoint,
            settings.camber_app,
        );
        Ok(Self {
            host,
            port,
            public_url,
            server,
            background_stop,
            background_done,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://HOST:PORT` as bound.
    pub fn address(&self) -> String {
        format!("http://{}", host_port(&self.host, self.port))
    }

    /// Stops the server (gracefully or not) from outside, e.g. in tests.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Serves until SIGTERM/SIGINT or `handle().stop(..)` (in-flight
    /// requests finish), then stops the background loops and waits for
    /// them: when this returns, this instance submits and polls nothing
    /// more, so a new instance on the same database is the only submitter.
    /// A round in flight finishes first (at most about `--camber-timeout`).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stop = self.background_stop;
        let result = self.server.await;
        let _ = stop.send(true);
        // Err(RecvError) is the signal: the thread dropped the sender.
        let _ = self.background_done.await;
        log::debug!("background loops stopped");
        result
    }
}

/// Binds `--host:--port` (port 0: any free one) and names the public URL
/// Camber calls back. Returns the listener, host, bound port and URL.
fn bind(settings: &Settings) -> Result<(TcpListener, String, u16, String), StartupError> {
    let addr = format!("{}:{}", settings.host, settings.port);
    let listener = TcpListener::bind(&addr).map_err(|source| StartupError::Bind {
        hint: if source.kind() == std::io::ErrorKind::AddrInUse {
            " (another process holds the port: choose another with --port or API_PORT, \
             or --port 0 for any free one)"
        } else {
            ""
        },
        addr: addr.clone(),
        source,
    })?;
    shared::fdlimit::widen_backlog(&listener)?;
    let port = listener.local_addr()?.port();
    let host = settings.host.clone();
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", host_port(&host, port)))
        .trim_end_matches('/')
        .to_owned();
    if settings.public_url.is_none() && matches!(host.as_str(), "0.0.0.0" | "::" | "[::]") {
        log::warn!(
            "no PUBLIC_URL: Camber will be told to call back {public_url}, which it cannot reach; set PUBLIC_URL"
        );
    }
    Ok((listener, host, port, public_url))
}

/// Opens the database (migrated, pending jobs of an earlier run released)
/// and the artifact directory, each named in one line when it cannot be.
async fn open_storage(settings: &Settings) -> Result<(Store, ArtifactStore), StartupError> {
    let (db_path, db_note) = shared::paths::describe(&settings.db);
    let (art_path, art_note) = shared::paths::describe_dir(&settings.artifact_dir);
    // Before anything is created: a directory as --db, or a file on the
    // way, is named in one line instead of SQLite's or the OS's words.
    shared::paths::check_file(&settings.db, "api.db").map_err(|msg| StartupError::Path {
        what: "open the database",
        path: db_path.clone(),
        msg,
    })?;
    shared::paths::check_dir(&settings.artifact_dir).map_err(|msg| StartupError::Path {
        what: "prepare the artifact directory",
        path: art_path.clone(),
        msg,
    })?;
    let store = Store::open(&settings.db).map_err(|source| StartupError::Store {
        path: db_path.clone(),
        source,
    })?;
    log::info!("database: {db_path}{db_note}");
    let resumed = store
        .write(crate::store::release_pending)
        .await
        .map_err(|source| StartupError::Db {
            path: db_path.clone(),
            source,
        })?;
    if resumed > 0 {
        log::info!("{resumed} pending job(s) from an earlier run will be submitted again");
    }
    let artifacts =
        ArtifactStore::new(&settings.artifact_dir).map_err(|source| StartupError::Artifacts {
            path: art_path.clone(),
            source,
        })?;
    log::info!("artifacts: {art_path}{art_note}");
    Ok((store, artifacts))
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The submitter and reconciler run on their own thread with their own
/// actix System (their awc client is !Send), until `stop` fires or its
/// sender is dropped. `done` is dropped when the thread ends (a panic
/// included).
fn start_background(
    lifecycle: Lifecycle,
    camber: Arc<CamberConfig>,
    interval: Duration,
    stop: watch::Receiver<bool>,
    done: oneshot::Sender<()>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("api-background".into())
        .spawn(move || {
            let _done = done;
            actix_rt::System::new().block_on(async move {
                let submitter = Submitter {
                    lifecycle: lifecycle.clone(),
                    camber: CamberClient::new(camber.clone()),
                };
                let reconciler = Reconciler {
                    lifecycle,
                    camber: CamberClient::new(camber),
                };
                futures_util::future::join(
                    run_loop("submitter", interval, stop.clone(), || submitter.run_once()),
                    run_loop("reconciler", interval, stop, || reconciler.run_once()),
                )
                .await;
            });
        })?;
    Ok(())
}

async fn run_loop<F, Fut>(
    name: &str,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, StoreError>>,
{
    loop {
        if *stop.borrow() {
            break;
        }
        let busy = match round().await {
            Ok(n) => n > 0,
            Err(e) => {
                log::error!("{name}: {e}");
                false
            }
        };
        // A round that found work goes again at once; an idle one waits.
        if busy {
            continue;
        }
        tokio::select! {
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
            _ = tokio::time::sleep(interval) => {}
        }
    }
    log::debug!("{name} stopped");
}

/// Raises the open-file limit to the hard one (logging both) and returns
/// the connections one worker may hold within it. A connection holds its
/// socket and, while it serves a download, the file; the reserve covers
/// the Camber clients' connection pools (100 each, one per worker and one
/// for the background submitter), the database (32 readers and the writer,
/// three files each) and the runtime.
fn connection_bound() -> usize {
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let reserve = 100 * (workers as u64 + 1) + 3 * 33 + 16 * workers as u64 + 64;
    shared::fdlimit::connections_per_worker(None, reserve, 2, workers, "")
}
