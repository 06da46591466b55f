//! mock-camber: a standalone mock of the Camber job API with durable, signed
//! webhooks, fault injection and an admin API.

pub mod auth;
pub mod clock;
pub mod config;
pub mod engine;
pub mod error;
pub use shared::healthcheck;
pub mod journal;
pub mod metrics;
pub mod middleware;
pub mod retention;
pub mod routes;
pub mod scenario;
pub mod startup;
pub mod state;
pub mod store;
pub mod tenant;
pub mod wait;

pub use config::Settings;
pub use startup::Application;
