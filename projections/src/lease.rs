//! Leases: the right of one process among the replicas of a deployment to do one job — run a
//! projector, relay the log to NATS, deliver webhooks, start scheduled scans.
//!
//! On PostgreSQL a lease is a session advisory lock (`pg_try_advisory_lock`) on a dedicated
//! connection of the read-model database, keyed by the schema and the job's name, checked every few
//! seconds: when the holder dies its connection closes, the lock is released, and a process on
//! standby takes the job over within [`STANDBY_POLL`]. On SQLite — one file, one process — a lease
//! is always granted. A lease is an efficiency measure: every job that holds one is also safe if two
//! processes briefly both run it (fenced checkpoints, deterministic ids, deduplicated messages).

use std::future::Future;
use std::time::Duration;

use sqlx::Executor;
use tokio::sync::watch;

use crate::ProjectionError;
use crate::db::{Backend, ReadDb};

/// How often a process on standby tries to take a lease.
pub const STANDBY_POLL: Duration = Duration::from_secs(2);
/// How often a holder checks that its lease's connection is alive.
const CHECK_EVERY: Duration = Duration::from_secs(3);

/// The right to do one job; released when dropped.
#[derive(Debug)]
pub struct Lease {
    task: Option<tokio::task::JoinHandle<()>>,
    lost: watch::Receiver<bool>,
    /// Keeps `lost` open when nothing can lose the lease (SQLite).
    _never_lost: Option<watch::Sender<bool>>,
}

impl Lease {
    /// Takes the lease named `job` if no other process holds it.
    pub async fn acquire(db: &ReadDb, job: &str) -> Result<Option<Self>, ProjectionError> {
        if db.backend() == Backend::Sqlite {
            let (never_lost, lost) = watch::channel(false);
            return Ok(Some(Self {
                task: None,
                lost,
                _never_lost: Some(never_lost),
            }));
        }
        let mut conn = db.pool().acquire().await?.detach();
        // Advisory locks are database-wide: key them by schema too, or the jobs of two stores in
        // different schemas of one database would stand by for each other.
        let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&mut conn)
            .await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(lock_key(&schema, job))
            .fetch_one(&mut conn)
            .await?;
        if !got {
            return Ok(None);
        }
        let (tx, lost) = watch::channel(false);
        let task = tokio::spawn(async move {
            // The lock lives as long as this connection: keep it, and check it is still alive.
            loop {
                tokio::time::sleep(CHECK_EVERY).await;
                if conn.execute("SELECT 1").await.is_err() {
                    let _ = tx.send(true);
                    return;
                }
            }
        });
        Ok(Some(Self {
            task: Some(task),
            lost,
            _never_lost: None,
        }))
    }

    /// A stop signal that fires when `stop` fires or the lease is lost.
    pub fn watch(&self, mut stop: watch::Receiver<bool>) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        let mut lost = self.lost.clone();
        tokio::spawn(async move {
            loop {
                if *stop.borrow() || *lost.borrow() {
                    let _ = tx.send(true);
                    return;
                }
                tokio::select! {
                    r = stop.changed() => if r.is_err() { let _ = tx.send(true); return; },
                    r = lost.changed() => if r.is_err() { let _ = tx.send(true); return; },
                    () = tx.closed() => return,
                }
            }
        });
        rx
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Runs `job` whenever this process holds the lease named `name`, until `stop` fires: stands by
/// while another process holds it, and runs `job` again (after a pause that grows to 10 s) when it
/// fails. `job` is given a signal that fires on `stop` or when the lease is lost, and must return
/// then.
pub async fn run_exclusively<F, Fut, E>(
    db: ReadDb,
    name: &str,
    stop: watch::Receiver<bool>,
    mut job: F,
) where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut backoff = Duration::from_millis(200);
    while !*stop.borrow() {
        let lease = match Lease::acquire(&db, name).await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                sleep_or_stop(STANDBY_POLL, stop.clone()).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(job = name, %error, "cannot take the lease");
                sleep_or_stop(backoff, stop.clone()).await;
                continue;
            }
        };
        tracing::info!(job = name, "took the lease");
        let mut stopped = stop.clone();
        let outcome = tokio::select! {
            outcome = job(lease.watch(stop.clone())) => outcome,
            // A job slow to notice (busy with an unreachable server) is dropped at shutdown.
            _ = stopped.wait_for(|s| *s) => return,
        };
        match outcome {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(error) => {
                tracing::warn!(job = name, %error, "the leased job failed; restarting");
                sleep_or_stop(backoff, stop.clone()).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        drop(lease);
    }
}

/// Waits `duration` or until `stop` changes.
pub(crate) async fn sleep_or_stop(duration: Duration, mut stop: watch::Receiver<bool>) {
    let _ = tokio::time::timeout(duration, stop.changed()).await;
}

/// The advisory-lock key of `job` of the store in `schema` (stable across processes and builds).
fn lock_key(schema: &str, job: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("vantage-lease:{schema}:{job}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}
