//! The sequencer: moves committed events into the global order and extends the hash chain.
//!
//! Only rows whose transaction id is below `pg_snapshot_xmin(pg_current_snapshot())` are taken: every
//! transaction below that horizon has committed or aborted, so no event can later appear before the
//! ones ordered now. One process at a time holds the transaction-scoped advisory lock; the others skip.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};
use vantage_store::{StoreError, chain_hash};

use crate::backend;

/// Rows ordered per step.
const STEP_ROWS: i64 = 5000;
/// How often the sequencer looks even without a notification (covers lost notifications and
/// appends by processes that are not listening).
const SEQUENCER_POLL: Duration = Duration::from_millis(100);
/// Advisory lock namespace ("Vant" in ASCII); the second key is the schema's hash.
const LOCK_NAMESPACE: i32 = 0x5661_6e74;

/// One step: orders up to [`STEP_ROWS`] events. Returns (events ordered, head position).
pub(crate) async fn step(pool: &PgPool) -> Result<(u64, u64), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    // The transaction is always ended here, never dropped: a dropped sqlx transaction only queues its
    // ROLLBACK, and an idle pooled connection would keep holding the advisory lock.
    match order_batch(&mut tx).await {
        Ok(Some(ordered)) => {
            tx.commit().await.map_err(backend)?;
            Ok(ordered)
        }
        Ok(None) => {
            tx.rollback().await.map_err(backend)?;
            Ok((0, 0))
        }
        Err(error) => {
            let _ = tx.rollback().await;
            Err(error)
        }
    }
}

/// Inside the step's transaction: `None` if another process holds the lock or nothing is ready.
async fn order_batch(tx: &mut sqlx::PgConnection) -> Result<Option<(u64, u64)>, StoreError> {
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()))")
            .bind(LOCK_NAMESPACE)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
    if !locked {
        return Ok(None);
    }
    let (last_txid, last_row, last_position, last_hash): (String, i64, i64, String) =
        sqlx::query_as(
            "SELECT last_txid::text, last_row, last_position, last_hash FROM event_sequencer",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        // Ordered by the xid8 column itself. (A bare `ORDER BY txid` would bind to an output column
        // named `txid` first; had that been the text form, ids would sort as strings, "100000" before
        // "99999", and the cursor would move backwards.)
        "SELECT e.id, e.txid::text AS txid_text, e.content_hash FROM events e
         WHERE (e.txid, e.id) > (($1::text)::xid8, $2)
           AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY e.txid, e.id
         LIMIT $3",
    )
    .bind(&last_txid)
    .bind(last_row)
    .bind(STEP_ROWS)
    .fetch_all(&mut *tx)
    .await
    .map_err(backend)?;
    let Some((tail_row, tail_txid, _)) = rows.last().cloned() else {
        return Ok(None);
    };
    let mut positions = Vec::with_capacity(rows.len());
    let mut event_rows = Vec::with_capacity(rows.len());
    let mut prev_hashes = Vec::with_capacity(rows.len());
    let mut hashes = Vec::with_capacity(rows.len());
    let mut position = last_position;
    let mut prev_hash = last_hash;
    for (row, _, content_hash) in &rows {
        position += 1;
        let hash = chain_hash(
            &prev_hash,
            u64::try_from(position).unwrap_or(0),
            content_hash,
        );
        positions.push(position);
        event_rows.push(*row);
        prev_hashes.push(std::mem::replace(&mut prev_hash, hash.clone()));
        hashes.push(hash);
    }
    sqlx::query(
        "INSERT INTO event_log (global_position, event_row, prev_hash, hash)
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[])",
    )
    .bind(&positions)
    .bind(&event_rows)
    .bind(&prev_hashes)
    .bind(&hashes)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    sqlx::query(
        "UPDATE event_sequencer
         SET last_txid = ($1::text)::xid8, last_row = $2, last_position = $3, last_hash = $4",
    )
    .bind(&tail_txid)
    .bind(tail_row)
    .bind(position)
    .bind(&prev_hash)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    sqlx::query("SELECT pg_notify('vantage_sequenced', $1)")
        .bind(position.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    Ok(Some((
        rows.len() as u64,
        u64::try_from(position).unwrap_or(0),
    )))
}

/// Runs steps whenever an append is signalled (locally or by notification) and on a short poll.
pub(crate) async fn run(pool: PgPool, appended: Arc<Notify>, wake: watch::Sender<u64>) {
    loop {
        let _ = tokio::time::timeout(SEQUENCER_POLL, appended.notified()).await;
        loop {
            match step(&pool).await {
                Ok((0, _)) => break,
                Ok((_, head)) => {
                    wake.send_replace(head);
                }
                Err(error) => {
                    tracing::warn!(%error, "sequencer step failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// Forwards notifications: appends by any process wake the sequencer, orderings wake subscribers.
pub(crate) async fn listen(pool: PgPool, appended: Arc<Notify>, wake: watch::Sender<u64>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN; subscribers fall back to polling");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener
            .listen_all(["vantage_appended", "vantage_sequenced"])
            .await
        {
            tracing::warn!(%error, "LISTEN failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.recv().await {
                Ok(notification) if notification.channel() == "vantage_appended" => {
                    appended.notify_one();
                }
                Ok(notification) => {
                    if let Ok(head) = notification.payload().parse::<u64>() {
                        wake.send_if_modified(|current| {
                            let newer = head > *current;
                            if newer {
                                *current = head;
                            }
                            newer
                        });
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "LISTEN connection lost; reconnecting");
                    break;
                }
            }
        }
    }
}
