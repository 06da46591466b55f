//! `api` binary: parse the command line, then serve or run `healthcheck`.

use std::io::Write;

use api::config::{Cli, Command};
use api::Application;
use clap::Parser;

/// mimalloc, not glibc's malloc: see the workspace's Cargo.toml.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { url }) = &cli.command {
        return match api::healthcheck::run(url) {
            0 => std::process::ExitCode::SUCCESS,
            _ => std::process::ExitCode::FAILURE,
        };
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match actix_web::rt::System::new().block_on(serve(cli.settings)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Once, on stderr (the logger writes there too); 2 as for a
            // bad command line: nothing started.
            eprintln!("api: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn serve(settings: api::Settings) -> Result<(), Box<dyn std::error::Error>> {
    let app = Application::build(settings).await?;
    println!("listening on {}", app.address());
    std::io::stdout().flush()?;
    app.run_until_stopped().await?;
    Ok(())
}
