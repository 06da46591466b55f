use std::io::Write;

use clap::Parser;
use mock_camber::config::{Cli, Command};
use mock_camber::Application;

/// mimalloc, not glibc's malloc: see the workspace's Cargo.toml.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Healthcheck { url }) => {
            std::process::exit(mock_camber::healthcheck::run(url))
        }
        Some(Command::Audit(args)) => std::process::exit(mock_camber::audit::cli::run(args).await),
        None => {}
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let app = match Application::build(cli.settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("mock-camber: {e}");
            std::process::exit(2);
        }
    };
    println!("listening on {}", app.address());
    std::io::stdout().flush()?;
    let stop = app.stopper();
    actix_rt::spawn(async move {
        wait_for_signal().await;
        log::info!("shutting down: finishing in-flight requests; pending webhooks stay queued");
        stop.stop().await;
    });
    app.run_until_stopped().await
}

/// SIGTERM or SIGINT: both shut down gracefully.
async fn wait_for_signal() {
    use actix_rt::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = actix_rt::signal::ctrl_c() => {}
    }
}
