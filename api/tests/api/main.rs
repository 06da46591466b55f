//! api integration tests: the real api over loopback, against the real
//! mock-camber binary (run `cargo build -p mock-camber` first).

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
