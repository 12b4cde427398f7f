//! The read side of Vantage: the projector runtime and every read model of SPEC §5, on SQLite or
//! PostgreSQL.
//!
//! Projectors ([`scans::ScansProjector`], [`audit::AuditProjector`],
//! [`webhooks::WebhooksProjector`], [`schedules::SchedulesProjector`],
//! [`badges::BadgesProjector`]) turn the global event log into
//! tables of JSON documents ([`model`]); [`runtime`] runs them from their checkpoints in batches with
//! an exactly-once effect, rebuilds them into shadow tables, and reports their lag; [`query`] answers
//! every read (including `as_of` time travel) from those tables by index lookups; [`reporting`] gathers what reports and compliance
//! packages are made of; [`replay`] proves a
//! rebuild from the log equals the live read models. [`lease`] gives one process among replicas the
//! right to do a job (a projector, the NATS relay, webhook delivery, schedules).
//!
//! This crate reads the log only through the [`vantage_store::EventStore`] trait and knows no HTTP.

pub mod audit;
pub mod badges;
mod cache;
pub mod db;
pub mod lease;
pub mod model;
mod parallel;
pub mod query;
pub mod replay;
pub mod reporting;
pub mod runtime;
pub mod scans;
pub mod schedules;
pub mod webhooks;

use std::sync::Arc;

use tokio::sync::watch;
use vantage_store::{EventStore, StoreError};

pub use db::{Backend, ReadDb};
pub use runtime::{ProjectorStatus, StatusBoard};

/// Why a projection or query failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("event log: {0}")]
    Store(#[from] StoreError),
    #[error("read-model database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("an event does not decode: {0}")]
    Event(#[from] vantage_domain::UpcastError),
    #[error("{0}")]
    Corrupt(String),
    #[error("no projector is named {0:?} (known: scans, audit, webhooks, schedules, badges)")]
    UnknownProjector(String),
    #[error("{0}")]
    BadInput(String),
    #[error("failure injected by a test")]
    Injected,
    /// A rebuild lane's detached batch asked for a query or statement that needs the batch's
    /// transaction; the lane applies the batch again inside it (never returned by this crate's API).
    #[error("a detached batch needs its transaction")]
    Detached,
}

/// The names of every projector, in the order they run.
pub const PROJECTORS: &[&str] = &["scans", "audit", "webhooks", "schedules", "badges"];

/// A fresh projector by name.
pub fn projector(
    name: &str,
    store: Arc<dyn EventStore>,
) -> Result<Box<dyn runtime::Projector>, ProjectionError> {
    match name {
        "scans" => Ok(Box::new(scans::ScansProjector::new(store))),
        "audit" => Ok(Box::new(audit::AuditProjector)),
        "webhooks" => Ok(Box::new(webhooks::WebhooksProjector)),
        "schedules" => Ok(Box::new(schedules::SchedulesProjector)),
        "badges" => Ok(Box::new(badges::BadgesProjector)),
        other => Err(ProjectionError::UnknownProjector(other.to_owned())),
    }
}

/// A fresh instance of every projector, in [`PROJECTORS`] order.
pub fn projectors(store: Arc<dyn EventStore>) -> Vec<Box<dyn runtime::Projector>> {
    PROJECTORS
        .iter()
        .map(|name| projector(name, store.clone()).expect("every listed projector exists"))
        .collect()
}

/// Every read-model table.
pub fn all_tables() -> Vec<&'static db::Table> {
    tables_by_projector()
        .into_iter()
        .flat_map(|(_, tables)| tables.iter().copied())
        .collect()
}

/// Each projector's name with the tables it writes.
fn tables_by_projector() -> [(&'static str, &'static [&'static db::Table]); 5] {
    [
        ("scans", scans::TABLES),
        ("audit", audit::TABLES),
        ("webhooks", webhooks::TABLES),
        ("schedules", schedules::TABLES),
        ("badges", badges::TABLES),
    ]
}

/// Creates every read-model table that does not exist yet; a projector whose tables changed shape
/// since they were made (a new column or index in a new release) has them dropped and rebuilt from
/// the log.
pub async fn migrate(db: &ReadDb) -> Result<(), ProjectionError> {
    db.migrate(&tables_by_projector(), runtime::SHADOW).await
}

/// Brings every projector up to the log's head once, for commands that read the read models while
/// no server may be running (`vantage export`). Safe beside live projectors: each batch commits only
/// if its checkpoint did not move meanwhile.
pub async fn catch_up(store: Arc<dyn EventStore>, db: &ReadDb) -> Result<(), ProjectionError> {
    let (_stop, stopped) = watch::channel(false);
    let options = runtime::RunOptions {
        until: runtime::Until::CaughtUp,
        ..runtime::RunOptions::default()
    };
    for mut projector in projectors(store.clone()) {
        runtime::run(
            projector.as_mut(),
            store.clone(),
            db,
            &options,
            stopped.clone(),
        )
        .await?;
    }
    Ok(())
}

/// Starts every projector live in the background; they stop when `stop` turns true.
pub fn start(
    store: Arc<dyn EventStore>,
    db: ReadDb,
    board: StatusBoard,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    projectors(store.clone())
        .into_iter()
        .map(|projector| {
            tokio::spawn(runtime::run_live(
                projector,
                store.clone(),
                db.clone(),
                board.clone(),
                stop.clone(),
            ))
        })
        .collect()
}
