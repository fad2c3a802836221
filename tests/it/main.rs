//! The integration tests, one binary (one build of `support`): each module
//! is one area — behaviour, faults, the database's readings, Supabase, the
//! CLI and scripts, the template, the docs. The container image and the
//! arm64 package have their own targets (`make test-image`,
//! `make verify-package`): they need podman, qemu and release builds.

#[path = "../support/mod.rs"]
mod support;

mod app;
mod cli;
mod database;
mod deploy;
mod docs;
mod faults;
mod first_deploy;
mod floods;
mod health;
mod hostile;
mod lambda_events;
mod leaks;
mod live_logs;
mod make;
mod metrics;
mod monitors;
mod openapi;
mod partitions;
mod pooler;
mod postgres_tls;
mod prometheus;
mod queue;
mod realtime;
mod runs;
mod secrets;
mod secrets_manager;
mod supabase;
mod template;
mod tenancy;
