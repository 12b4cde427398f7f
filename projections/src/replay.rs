//! Content digests of read models, and `replay`: rebuild every projector from the log into a scratch
//! database and prove it equals the live one.
//!
//! A projector's digest covers every row of its tables: each row's cells are hashed (SHA-256, with
//! type tags and lengths) and the row hashes are summed, so the digest does not depend on the order a
//! database returns rows in (PostgreSQL and SQLite collate text differently) and a live PostgreSQL
//! database can be compared with a scratch SQLite one.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::watch;
use vantage_store::EventStore;

use crate::db::{Kind, ReadDb, Table, begin_snapshot};
use crate::runtime::{Progress, RunOptions, Until, run};
use crate::{ProjectionError, migrate, projector};

/// The digest of one projector's read models at one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProjectionDigest {
    pub projector: String,
    pub position: u64,
    pub rows: u64,
    pub digest: String,
}

/// Sum of 256-bit row hashes, as four wrapping 64-bit limbs (order-independent).
#[derive(Default)]
struct Accumulator {
    limbs: [u64; 4],
    rows: u64,
}

impl Accumulator {
    fn add(&mut self, hash: &[u8]) {
        let mut carry = 0u128;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(&hash[i * 8..i * 8 + 8]);
            let sum = u128::from(*limb) + u128::from(u64::from_be_bytes(word)) + carry;
            *limb = sum as u64;
            carry = sum >> 64;
        }
        self.rows += 1;
    }

    fn hex(&self) -> String {
        self.limbs.iter().map(|l| format!("{l:016x}")).collect()
    }
}

async fn table_digest(
    conn: &mut sqlx::AnyConnection,
    table: &Table,
    total: &mut Accumulator,
) -> Result<(), ProjectionError> {
    let columns: Vec<&str> = table
        .columns
        .iter()
        .map(|c| c.name)
        .chain(["doc"])
        .collect();
    let sql = format!("SELECT {} FROM {}", columns.join(", "), table.name);
    let rows = sqlx::query(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        let mut hasher = Sha256::new();
        hasher.update(table.name.as_bytes());
        for (i, column) in table.columns.iter().enumerate() {
            match column.kind {
                Kind::Int => {
                    hasher.update(b"i");
                    hasher.update(row.try_get::<i64, _>(i)?.to_be_bytes());
                }
                Kind::Text => {
                    let text: String = row.try_get(i)?;
                    hasher.update(b"t");
                    hasher.update((text.len() as u64).to_be_bytes());
                    hasher.update(text.as_bytes());
                }
            }
        }
        let doc: String = row.try_get(table.columns.len())?;
        hasher.update(b"d");
        hasher.update((doc.len() as u64).to_be_bytes());
        hasher.update(doc.as_bytes());
        total.add(&hasher.finalize());
    }
    Ok(())
}

/// The digest of `name`'s live read models and its checkpoint, read in one snapshot.
pub async fn digest(
    db: &ReadDb,
    name: &str,
    store: Arc<dyn EventStore>,
) -> Result<ProjectionDigest, ProjectionError> {
    let tables = projector(name, store)?.tables();
    let mut tx = begin_snapshot(db.pool(), db.backend()).await?;
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM rm_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    let mut total = Accumulator::default();
    for table in tables {
        table_digest(&mut tx, table, &mut total).await?;
    }
    tx.commit().await?;
    Ok(ProjectionDigest {
        projector: name.to_owned(),
        position: position.and_then(|p| u64::try_from(p).ok()).unwrap_or(0),
        rows: total.rows,
        digest: total.hex(),
    })
}

/// One projector's replay result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplayResult {
    pub live: ProjectionDigest,
    pub replayed: ProjectionDigest,
}

impl ReplayResult {
    pub fn matches(&self) -> bool {
        self.live.rows == self.replayed.rows && self.live.digest == self.replayed.digest
    }
}

/// Rebuilds every projector from the log into a scratch SQLite database in `scratch_dir`, each up to
/// the live checkpoint it is compared with, and returns both digests per projector.
pub async fn replay(
    store: Arc<dyn EventStore>,
    live: &ReadDb,
    scratch_dir: &Path,
    progress: Option<Progress>,
) -> Result<Vec<ReplayResult>, ProjectionError> {
    let scratch = ReadDb::open_sqlite(&scratch_dir.join("replay.db")).await?;
    migrate(&scratch).await?;
    let mut results = Vec::new();
    for name in crate::PROJECTORS {
        let live_digest = digest(live, name, store.clone()).await?;
        let mut fresh = projector(name, store.clone())?;
        let options = RunOptions {
            until: Until::Position(live_digest.position),
            progress: progress.clone(),
            ..RunOptions::default()
        };
        let (_stop_tx, stop) = watch::channel(false);
        run(fresh.as_mut(), store.clone(), &scratch, &options, stop).await?;
        let replayed = digest(&scratch, name, store.clone()).await?;
        results.push(ReplayResult {
            live: live_digest,
            replayed,
        });
    }
    scratch.pool().close().await;
    Ok(results)
}
