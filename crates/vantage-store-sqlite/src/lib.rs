//! The embedded event store: the [`EventStore`] contract on one SQLite file (WAL), through sqlx.
//!
//! SQLite admits one writer at a time, so appends go through a single-connection writer pool and assign
//! gapless global positions and chain hashes inside their own transaction; reads use a separate pool of
//! reader connections that WAL lets run beside the writer. Nothing here knows domain types.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite};
use tokio::sync::watch;
use uuid::Uuid;
use vantage_store::{
    AppendOutcome, EventMetadata, EventStore, ExpectedVersion, GENESIS_HASH, IDEMPOTENCY_TTL,
    IdempotencyBegin, IdempotencyRow, IdempotencyStore, JsonPayload, NewEvent, RecordedEvent,
    SecretStore, StoreError, StoredEvent, StoredResponse, StreamName, chain_hash, decide_begin,
};

/// Rows per INSERT statement (17 columns each stays far below SQLite's 32,766 bind parameters).
const INSERT_CHUNK: usize = 500;

/// The columns of `events`, in insert and select order.
macro_rules! columns {
    () => {
        "global_position, event_id, stream, stream_version, event_type, schema_version, \
         occurred_at, recorded_at, tenant, actor, request_id, correlation_id, causation_id, \
         payload, content_hash, prev_hash, hash"
    };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The SQLite event store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteEventStore {
    writer: SqlitePool,
    reader: SqlitePool,
    wake: watch::Sender<u64>,
    /// The directory of the database file, whose filesystem `ping` checks.
    dir: PathBuf,
}

/// SQLite's primary result codes for a write the disk refused (the low byte of an extended code).
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;

fn backend(error: sqlx::Error) -> StoreError {
    let primary = error
        .as_database_error()
        .and_then(|db| db.code())
        .and_then(|code| code.parse::<i64>().ok())
        .map(|code| code & 0xff);
    match primary {
        Some(SQLITE_FULL) => {
            StoreError::Unwritable("the disk holding the event log is full".into())
        }
        Some(SQLITE_READONLY) => {
            StoreError::Unwritable("the event log's database file is read-only".into())
        }
        Some(SQLITE_IOERR) => StoreError::Unwritable(format!(
            "the disk holding the event log failed a write ({error})"
        )),
        _ => StoreError::backend(error),
    }
}

/// Free space below which the store reports itself unable to write: 64 MiB, or a twentieth of a
/// smaller filesystem. SQLite needs room for its write-ahead log and checkpoints, so stopping to
/// accept writes before the disk is completely full keeps the last commands from failing half-way.
fn free_space_floor(filesystem_bytes: u64) -> u64 {
    (64 << 20).min(filesystem_bytes / 20)
}

fn filesystem_of(dir: &Path) -> Result<rustix::fs::StatVfs, StoreError> {
    rustix::fs::statvfs(dir).map_err(|e| {
        StoreError::Backend(format!(
            "cannot inspect the filesystem of {}: {e}",
            dir.display()
        ))
    })
}

fn refuse_read_only(stat: &rustix::fs::StatVfs) -> Result<(), StoreError> {
    if stat.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        return Err(StoreError::Unwritable(
            "the filesystem holding the event log is mounted read-only".into(),
        ));
    }
    Ok(())
}

/// Whether the filesystem holding `dir` can take writes: mounted read-write, with more than
/// [`free_space_floor`] free.
fn check_writable(dir: &Path) -> Result<(), StoreError> {
    let stat = filesystem_of(dir)?;
    refuse_read_only(&stat)?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    let floor = free_space_floor(stat.f_blocks.saturating_mul(stat.f_frsize));
    if free < floor {
        return Err(StoreError::Unwritable(format!(
            "the disk holding the event log has {} KiB free, less than the {} KiB it keeps in reserve",
            free >> 10,
            floor >> 10
        )));
    }
    Ok(())
}

fn time_text(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl SqliteEventStore {
    /// Opens (creating if needed) the database file at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // SQLite would open a read-only file read-only and fail later, less clearly.
        refuse_read_only(&filesystem_of(&dir)?)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a power loss may lose the last commits but never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // After SQLITE_FULL or an I/O error SQLite may roll a transaction back on its own; the
            // ROLLBACK sqlx then sends fails, and sqlx, still counting the transaction open, would
            // run the next append as a savepoint nested in it. Such a connection is closed instead
            // of reused (the ping first lets the connection finish a rollback it has queued).
            .before_acquire(|conn, _| {
                Box::pin(async move {
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(backend)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {}: {e}", path.display())))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            // Rows cross from sqlx's SQLite thread in batches; the default (50) costs a thread
            // hand-off every few rows on long reads.
            .connect_with(options.read_only(true).row_buffer_size(2048))
            .await
            .map_err(backend)?;
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(global_position), 0) FROM events")
            .fetch_one(&reader)
            .await
            .map_err(backend)?;
        let (wake, _) = watch::channel(u64::try_from(head).unwrap_or(0));
        Ok(Self {
            writer,
            reader,
            wake,
            dir,
        })
    }

    /// The pool that writes; read models in the same file share it.
    pub fn writer_pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// A pool of read-only connections.
    pub fn reader_pool(&self) -> &SqlitePool {
        &self.reader
    }
}

/// Column positions of [`columns!`], so rows are decoded without name look-ups.
mod col {
    pub const GLOBAL_POSITION: usize = 0;
    pub const EVENT_ID: usize = 1;
    pub const STREAM: usize = 2;
    pub const STREAM_VERSION: usize = 3;
    pub const EVENT_TYPE: usize = 4;
    pub const SCHEMA_VERSION: usize = 5;
    pub const OCCURRED_AT: usize = 6;
    pub const RECORDED_AT: usize = 7;
    pub const TENANT: usize = 8;
    pub const ACTOR: usize = 9;
    pub const REQUEST_ID: usize = 10;
    pub const CORRELATION_ID: usize = 11;
    pub const CAUSATION_ID: usize = 12;
    pub const PAYLOAD: usize = 13;
    pub const CONTENT_HASH: usize = 14;
    pub const PREV_HASH: usize = 15;
    pub const HASH: usize = 16;
}

fn decode_stored(row: &SqliteRow) -> Result<StoredEvent, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        location: format!(
            "global position {}",
            row.try_get::<i64, _>(col::GLOBAL_POSITION).unwrap_or(-1)
        ),
        reason,
    };
    let text = |column: usize| -> Result<String, StoreError> {
        row.try_get::<String, _>(column)
            .map_err(|e| corrupt(e.to_string()))
    };
    let int = |column: usize| -> Result<i64, StoreError> {
        row.try_get::<i64, _>(column)
            .map_err(|e| corrupt(e.to_string()))
    };
    let uuid = |column: usize| -> Result<Option<Uuid>, StoreError> {
        let raw: Option<&str> = row.try_get(column).map_err(|e| corrupt(e.to_string()))?;
        raw.map(Uuid::try_parse)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))
    };
    let required_uuid = |column: usize| -> Result<Uuid, StoreError> {
        uuid(column)?.ok_or_else(|| corrupt("missing id".into()))
    };
    let time = |column: usize| -> Result<DateTime<Utc>, StoreError> {
        let raw: &str = row.try_get(column).map_err(|e| corrupt(e.to_string()))?;
        DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| corrupt(e.to_string()))
    };
    Ok(StoredEvent {
        event_id: required_uuid(col::EVENT_ID)?,
        stream: text(col::STREAM)?,
        stream_version: u64::try_from(int(col::STREAM_VERSION)?)
            .map_err(|e| corrupt(e.to_string()))?,
        event_type: text(col::EVENT_TYPE)?,
        schema_version: u32::try_from(int(col::SCHEMA_VERSION)?)
            .map_err(|e| corrupt(e.to_string()))?,
        occurred_at: time(col::OCCURRED_AT)?,
        recorded_at: time(col::RECORDED_AT)?,
        metadata: EventMetadata {
            tenant: text(col::TENANT)?,
            actor: text(col::ACTOR)?,
            request_id: row
                .try_get(col::REQUEST_ID)
                .map_err(|e| corrupt(e.to_string()))?,
            correlation_id: required_uuid(col::CORRELATION_ID)?,
            causation_id: uuid(col::CAUSATION_ID)?,
        },
        payload: JsonPayload::from_text(text(col::PAYLOAD)?).map_err(|e| corrupt(e.to_string()))?,
        content_hash: text(col::CONTENT_HASH)?,
    })
}

fn decode_recorded(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let corrupt = |e: sqlx::Error| StoreError::Corrupt {
        location: "event row".into(),
        reason: e.to_string(),
    };
    let position: i64 = row.try_get(col::GLOBAL_POSITION).map_err(corrupt)?;
    Ok(RecordedEvent {
        global_position: u64::try_from(position).unwrap_or(0),
        prev_hash: row.try_get(col::PREV_HASH).map_err(corrupt)?,
        hash: row.try_get(col::HASH).map_err(corrupt)?,
        event: decode_stored(row)?,
    })
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{value} is out of range")))
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Invalid(
                "an append needs at least one event".into(),
            ));
        }
        #[allow(
            clippy::disallowed_methods,
            reason = "the store stamps recorded_at when it writes"
        )]
        let recorded_at = Utc::now();
        // Serialising and hashing happen before the single writer connection is taken whenever the
        // stream version is known in advance, so concurrent appenders prepare in parallel.
        let base_version = match expected {
            ExpectedVersion::NoStream => Some(0),
            ExpectedVersion::Exact(version) => Some(version),
            ExpectedVersion::Any => None,
        };
        let prepare = |base: u64, events: Vec<NewEvent>| {
            events
                .into_iter()
                .enumerate()
                .map(|(offset, event)| {
                    event.into_stored(stream, base + offset as u64 + 1, recorded_at)
                })
                .collect::<Result<Vec<StoredEvent>, StoreError>>()
        };
        let (mut prepared, mut pending) = match base_version {
            Some(base) => (prepare(base, events)?, Vec::new()),
            None => (Vec::new(), events),
        };
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let current: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream = ?",
        )
        .bind(stream.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        let current = u64::try_from(current).unwrap_or(0);
        if !expected.admits(current) {
            // End the transaction now rather than leave a queued ROLLBACK on the writer connection.
            tx.rollback().await.map_err(backend)?;
            return Err(StoreError::Conflict {
                stream: stream.to_string(),
                expected: expected.to_string(),
                actual: current,
            });
        }
        if base_version.is_none() {
            prepared = prepare(current, std::mem::take(&mut pending))?;
        }
        let tail: Option<(i64, String)> = sqlx::query_as(
            "SELECT global_position, hash FROM events ORDER BY global_position DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let (mut position, mut prev_hash) = match tail {
            Some((position, hash)) => (u64::try_from(position).unwrap_or(0), hash),
            None => (0, GENESIS_HASH.to_owned()),
        };
        let first_position = position + 1;
        let mut rows = Vec::with_capacity(prepared.len());
        for stored in prepared {
            position += 1;
            let hash = chain_hash(&prev_hash, position, &stored.content_hash);
            rows.push(RecordedEvent {
                global_position: position,
                prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                hash,
                event: stored,
            });
        }
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut insert: QueryBuilder<Sqlite> =
                QueryBuilder::new(concat!("INSERT INTO events (", columns!(), ") "));
            insert.push_values(chunk, |mut values, row| {
                let e = &row.event;
                values
                    .push_bind(row.global_position as i64)
                    .push_bind(e.event_id.to_string())
                    .push_bind(e.stream.as_str())
                    .push_bind(e.stream_version as i64)
                    .push_bind(e.event_type.as_str())
                    .push_bind(i64::from(e.schema_version))
                    .push_bind(time_text(&e.occurred_at))
                    .push_bind(time_text(&e.recorded_at))
                    .push_bind(e.metadata.tenant.as_str())
                    .push_bind(e.metadata.actor.as_str())
                    .push_bind(e.metadata.request_id.as_deref())
                    .push_bind(e.metadata.correlation_id.to_string())
                    .push_bind(e.metadata.causation_id.map(|id| id.to_string()))
                    .push_bind(e.payload.as_str())
                    .push_bind(e.content_hash.as_str())
                    .push_bind(row.prev_hash.as_str())
                    .push_bind(row.hash.as_str());
            });
            insert.build().execute(&mut *tx).await.map_err(|error| {
                if let Some(db) = error.as_database_error()
                    && db.is_unique_violation()
                {
                    return StoreError::Conflict {
                        stream: stream.to_string(),
                        expected: expected.to_string(),
                        actual: current,
                    };
                }
                backend(error)
            })?;
        }
        tx.commit().await.map_err(backend)?;
        let stream_version = rows.last().map_or(current, |r| r.event.stream_version);
        self.wake.send_replace(position);
        Ok(AppendOutcome {
            stream_version,
            first_position: Some(first_position),
        })
    }

    async fn read_stream_from(
        &self,
        stream: &StreamName,
        version: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM events WHERE stream = ? AND stream_version > ? ORDER BY stream_version"
        ))
        .bind(stream.as_str())
        .bind(to_i64(version)?)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(decode_stored).collect()
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM events WHERE global_position > ? ORDER BY global_position LIMIT ?"
        ))
        .bind(to_i64(after)?)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(decode_recorded).collect()
    }

    async fn read_stream_after(
        &self,
        stream: &StreamName,
        after: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM events WHERE stream = ? AND global_position > ? ORDER BY global_position"
        ))
        .bind(stream.as_str())
        .bind(to_i64(after)?)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(decode_recorded).collect()
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(global_position), 0) FROM events")
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(head).unwrap_or(0))
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Answers, and can write: its filesystem is writable and not (nearly) full.
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(backend)?;
        check_writable(&self.dir)
    }
}

#[async_trait]
impl IdempotencyStore for SqliteEventStore {
    async fn begin(
        &self,
        tenant: &str,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyBegin, StoreError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM idempotency_keys WHERE tenant = ? AND key = ? AND claimed_at < ?")
            .bind(tenant)
            .bind(key)
            .bind(time_text(&(now - IDEMPOTENCY_TTL)))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let row: Option<(String, Option<i64>, Option<String>, Option<String>, String)> =
            sqlx::query_as(
                "SELECT request_hash, response_status, response_body, response_location, claimed_at \
                 FROM idempotency_keys WHERE tenant = ? AND key = ?",
            )
            .bind(tenant)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let row = row.map(
            |(request_hash, status, body, location, claimed_at)| IdempotencyRow {
                request_hash,
                response_status: status,
                response_body: body,
                response_location: location,
                // An unreadable claim time counts as "just claimed": never take a claim over by mistake.
                claimed_at: DateTime::parse_from_rfc3339(&claimed_at)
                    .map_or(now, |t| t.with_timezone(&Utc)),
            },
        );
        let decision = decide_begin(row, request_hash, now);
        if decision == IdempotencyBegin::Started {
            sqlx::query(
                "INSERT INTO idempotency_keys (tenant, key, request_hash, claimed_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (tenant, key) DO UPDATE SET claimed_at = excluded.claimed_at",
            )
            .bind(tenant)
            .bind(key)
            .bind(request_hash)
            .bind(time_text(&now))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(decision)
    }

    async fn complete(
        &self,
        tenant: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_keys SET response_status = ?, response_body = ?, response_location = ? \
             WHERE tenant = ? AND key = ?",
        )
        .bind(i64::from(response.status))
        .bind(&response.body)
        .bind(&response.location)
        .bind(tenant)
        .bind(key)
        .execute(&self.writer)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn release(&self, tenant: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE tenant = ? AND key = ? AND response_status IS NULL",
        )
        .bind(tenant)
        .bind(key)
        .execute(&self.writer)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn forget_tenant(&self, tenant: &str) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE tenant = ?")
            .bind(tenant)
            .execute(&self.writer)
            .await
            .map(|done| done.rows_affected())
            .map_err(backend)
    }
}

#[async_trait]
impl SecretStore for SqliteEventStore {
    async fn put_secret(&self, tenant: &str, owner: &str, sealed: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sealed_secrets (owner, tenant, sealed) VALUES (?, ?, ?) \
             ON CONFLICT (owner) DO UPDATE SET tenant = excluded.tenant, sealed = excluded.sealed",
        )
        .bind(owner)
        .bind(tenant)
        .bind(sealed)
        .execute(&self.writer)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn secret(&self, tenant: &str, owner: &str) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE owner = ? AND tenant = ?")
            .bind(owner)
            .bind(tenant)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)
    }

    async fn delete_secret(&self, tenant: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sealed_secrets WHERE owner = ? AND tenant = ?")
            .bind(owner)
            .bind(tenant)
            .execute(&self.writer)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    async fn put_secret_if_absent(
        &self,
        tenant: &str,
        owner: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO sealed_secrets (owner, tenant, sealed) VALUES (?, ?, ?) \
             ON CONFLICT (owner) DO NOTHING",
        )
        .bind(owner)
        .bind(tenant)
        .bind(sealed)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let kept: Vec<u8> =
            sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE owner = ? AND tenant = ?")
                .bind(owner)
                .bind(tenant)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?
                .ok_or_else(|| {
                    StoreError::Invalid(format!("secret {owner} belongs to another tenant"))
                })?;
        tx.commit().await.map_err(backend)?;
        Ok(kept)
    }

    async fn erase_tenant(&self, tenant: &str, tombstone: &str) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let forgotten = sqlx::query("DELETE FROM sealed_secrets WHERE tenant = ?")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        sqlx::query(
            "INSERT INTO sealed_secrets (owner, tenant, sealed) VALUES (?, ?, ?) \
             ON CONFLICT (owner) DO UPDATE SET tenant = excluded.tenant, sealed = excluded.sealed",
        )
        .bind(tombstone)
        .bind(tenant)
        .bind(Vec::<u8>::new())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(forgotten)
    }
}

#[cfg(test)]
mod tests {
    use super::free_space_floor;

    #[test]
    fn the_reserve_is_64_mib_or_a_twentieth_of_a_small_disk() {
        assert_eq!(free_space_floor(100 << 30), 64 << 20);
        assert_eq!(free_space_floor(16 << 20), (16 << 20) / 20);
        assert_eq!(free_space_floor(0), 0);
    }
}
