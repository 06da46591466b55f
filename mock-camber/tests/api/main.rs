//! Integration tests: the real server (in-process `Application` on port 0,
//! or the real binary) over loopback HTTP.

mod admin;
mod admin_config;
mod audit;
mod audit_http10;
mod audit_wait;
mod console;
mod console_events;
mod console_lists;
mod delivery_limits;
mod destinations;
mod faults;
mod fdlimit;
mod helpers;
mod hostile;
mod idempotency;
mod jobs;
mod openapi;
mod outbox;
mod process;
mod receivers;
mod restart;
mod restart_memory;
mod retention;
mod seed;
mod tenancy;
mod tls;
mod validation;
mod waits;
mod webhook_faults;
mod webhook_retries;
mod webhooks;
