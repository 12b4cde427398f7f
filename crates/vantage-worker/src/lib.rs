//! Scanner workers: take a scan job, run the probes against the addresses the SSRF guard vetted, and
//! report what they saw as scan commands (ScanStarted, ProbeObserved, ScanFinalizing, ScanCompleted or
//! ScanFailed).
//!
//! [`run_scan`] is the same whatever carries the commands: [`ScanEventSink`] is implemented in-process
//! ([`embedded`], for `vantage serve`'s default mode) and over NATS JetStream ([`nats`], for
//! `vantage worker`). A worker needs no database credentials; only the in-process sink writes through
//! the application services. [`live`] carries live events across `vantage serve` replicas over the
//! same NATS.

pub mod embedded;
pub mod feed;
pub mod live;
pub mod nats;
mod run;
mod scan_states;

pub use run::{RULESET_VERSION, ScanEventSink, ScanJob, Scanner, Submitted, WorkerError, run_scan};
