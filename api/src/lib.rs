//! The jobs API (api/openapi.yaml): stores jobs in SQLite, runs them on Camber
//! through its base URL and key only, and receives Camber's signed webhooks.

pub mod artifacts;
pub mod camber;
pub mod config;
pub mod domain;
pub mod error;
pub use shared::healthcheck;
pub mod lifecycle;
pub mod metrics;
pub mod middleware;
pub mod reconciler;
pub mod routes;
pub mod startup;
pub mod store;
pub mod submitter;
pub mod uploads;

pub use config::Settings;
pub use startup::Application;
