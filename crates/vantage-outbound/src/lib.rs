//! What Vantage does on its own initiative, each under a lease so one process among the replicas
//! does it: [`webhooks`] delivers outbound events to webhooks (Standard Webhooks signatures,
//! [`signature`]), and [`scheduler`] starts the scans that schedules owe.
//!
//! Both read the log and the read models and act through the application services; neither knows
//! HTTP routes or SQL.

pub mod scheduler;
pub mod signature;
pub mod webhooks;

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use vantage_app::Services;
use vantage_probes::tls::TlsRoots;
use vantage_projections::ReadDb;
use vantage_projections::lease::run_exclusively;

/// How the outbound jobs run.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub retry: webhooks::RetryPolicy,
    /// The roots webhook endpoints' certificates are verified against.
    pub roots: TlsRoots,
    /// How often the scheduler looks for due schedules.
    pub scheduler_every: Duration,
}

/// Starts the webhook delivery engine and the scheduler, each under its lease, until `stop` fires.
pub fn spawn(
    services: Services,
    read: ReadDb,
    settings: OutboundSettings,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let deliveries = tokio::spawn(run_exclusively(
        read.clone(),
        webhooks::JOB,
        stop.clone(),
        {
            let (services, read, settings) = (services.clone(), read.clone(), settings.clone());
            move |stop| {
                webhooks::run_deliveries(
                    services.clone(),
                    read.clone(),
                    settings.retry.clone(),
                    settings.roots.clone(),
                    stop,
                )
            }
        },
    ));
    let scheduler = tokio::spawn(run_exclusively(read.clone(), scheduler::JOB, stop, {
        move |stop| {
            scheduler::run_scheduler(
                services.clone(),
                read.clone(),
                settings.scheduler_every,
                stop,
            )
        }
    }));
    vec![deliveries, scheduler]
}
