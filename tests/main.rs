//! The one integration test binary. Modules only; support code lives in `support/`.
#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "tests fail loudly and make their own ids and times"
)]

mod api;
mod api_routes;
mod cli;
mod clock;
mod content_samples;
mod crash;
mod disk;
mod dnssec;
mod dual_stack;
mod event_schemas;
mod exposure_probe;
mod http_probe;
mod live;
mod live_replicas;
mod mail_tls;
mod nats;
mod observation_schemas;
mod observatory;
mod openapi;
mod pipeline;
mod projections;
mod projects;
mod race;
mod regressions;
mod reports;
mod schedules;
mod smuggling;
mod ssrf;
mod store_contract;
mod tenant_erasure;
mod tls_probe;
mod tls_suites;
mod ui;
mod verdict_replay;
mod verdicts;
mod webhooks;
mod worker;
