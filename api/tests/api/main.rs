//! api integration tests: the real api over loopback, against the real
//! mock-camber run in-process by mock-camber-testkit (a dev-dependency:
//! the api reaches it only over HTTP). One test (`process.rs`, secrets at
//! trace level) runs the mock-camber binary: `cargo build --workspace --bins`.

mod audit;
mod camber_client;
mod concurrency;
mod helpers;
mod hostile;
mod jobs;
mod process;
mod reconciler;
mod routes;
mod submitter;
mod tls;
mod uploads;
mod validation;
mod webhooks;
