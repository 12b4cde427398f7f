//! What Vantage does on its own initiative, each under a lease so one process among the replicas
//! does it: [`webhooks`] delivers outbound events to webhooks (Standard Webhooks signatures,
//! [`signature`]), and [`scheduler`] starts the scans that schedules owe.
//!
//! Both read the log and the read models and act through the application services; neither knows
//! HTTP routes or SQL.

pub mod scheduler;
pub mod signature;
pub mod webhooks;
