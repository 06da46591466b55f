//! Integration tests: the real server (in-process `Application` on port 0,
//! or the real binary) over loopback HTTP.

mod admin;
mod console;
mod console_events;
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
mod retention;
mod seed;
mod tenancy;
mod tls;
mod validation;
mod waits;
mod webhook_faults;
mod webhooks;
