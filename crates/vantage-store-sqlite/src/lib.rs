//! The embedded event store: the [`EventStore`] contract on one SQLite file (WAL), through sqlx.
//!
//! SQLite admits one writer at a time, so appends go through a single-connection writer pool and assign
//! gapless global positions and chain hashes inside their own transaction; reads use a separate pool of
//! reader connections that WAL lets run beside the writer. Nothing here knows domain types.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Sqlite};
use tokio::sync::watch;
use uuid::Uuid;
use vantage_store::{
    AppendOutcome, EventMetadata, EventStore, ExpectedVersion, GENESIS_HASH, IDEMPOTENCY_TTL,
    IdempotencyBegin, IdempotencyRow, IdempotencyStore, JsonPayload, NewEvent, RecordedEvent,
    SecretStore, StoreError, StoredEvent, StoredResponse, StreamName, chain_hash, decide_begin,
};

/// Rows per INSERT statement (17 columns each stays far below SQLite's 32,766 bind parameters).
const INSERT_CHUNK: usize = 500;

/// Events a stream read asks SQLite for at once.
const STREAM_PAGE: usize = 1000;

/// Which events a [`SqliteEventStore::read_page`] reads.
#[derive(Debug, Clone, Copy)]
enum Selection<'a> {
    /// The whole log, after a global position.
    All,
    /// One stream, after a stream version.
    StreamFromVersion(&'a StreamName),
    /// One stream, after a global position.
    StreamAfterPosition(&'a StreamName),
}

/// The events of one [`SqliteEventStore::read_page`], and whether it filled the page (more may
/// follow), which is judged against the page it asked for last: a page asked for again in halves
/// is full at half the size.
struct Page {
    events: Vec<RecordedEvent>,
    more: bool,
}

/// The columns of `events`, in insert and select order.
macro_rules! columns {
    () => {
        "global_position, event_id, stream, stream_version, event_type, schema_version, \
         occurred_at, recorded_at, tenant, actor, request_id, correlation_id, causation_id, \
         payload, content_hash, prev_hash, hash"
    };
}

/// Events as SQLite hands them over: every row a query selects, as one JSON text (`json_group_array`
/// of `json_array`s of [`columns!`]), so a page of events crosses from sqlx's SQLite thread as one
/// value instead of 17 copied values per row — which is what bounded `read_all`'s rate
/// (BENCHMARKS.md, "SQLite `read_all`: one value per page"). `$rest` is the inner query's `WHERE`, order
/// and limit; the aggregate keeps the inner query's order (SQLite does not flatten an ordered
/// subquery into an aggregate), and [`decode_page`] checks it.
macro_rules! page_query {
    ($rest:literal) => {
        concat!(
            "SELECT json_group_array(json_array(",
            columns!(),
            ")) FROM (SELECT ",
            columns!(),
            " FROM events ",
            $rest,
            ")"
        )
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
/// A string or blob larger than SQLite's bound on one value.
const SQLITE_TOOBIG: i64 = 18;

/// SQLite's primary result code of a database error (the low byte of its extended code).
fn primary_code(error: &sqlx::Error) -> Option<i64> {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .and_then(|code| code.parse::<i64>().ok())
        .map(|code| code & 0xff)
}

fn backend(error: sqlx::Error) -> StoreError {
    match primary_code(&error) {
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
            .connect_with(options.read_only(true))
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

    /// At most `limit` events of `selection` after `from` (a stream version or a global position,
    /// as the selection says), in log order, as one [`page_query!`]. A page whose text would pass
    /// SQLite's bound on one value (1 GB) is asked for again in halves.
    async fn read_page(
        &self,
        selection: Selection<'_>,
        from: u64,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let mut limit = limit.max(1);
        loop {
            let query = match selection {
                Selection::All => sqlx::query_scalar(page_query!(
                    "WHERE global_position > ? ORDER BY global_position LIMIT ?"
                )),
                Selection::StreamFromVersion(stream) => sqlx::query_scalar(page_query!(
                    "WHERE stream = ? AND stream_version > ? ORDER BY stream_version LIMIT ?"
                ))
                .bind(stream.as_str()),
                Selection::StreamAfterPosition(stream) => sqlx::query_scalar(page_query!(
                    "WHERE stream = ? AND global_position > ? ORDER BY global_position LIMIT ?"
                ))
                .bind(stream.as_str()),
            };
            let page: Result<String, _> = query
                .bind(to_i64(from)?)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_one(&self.reader)
                .await;
            match page {
                Ok(page) => {
                    let events = decode_page(&page)?;
                    let more = events.len() == limit;
                    return Ok(Page { events, more });
                }
                Err(error) if primary_code(&error) == Some(SQLITE_TOOBIG) && limit > 1 => {
                    limit /= 2;
                }
                Err(error) => return Err(backend(error)),
            }
        }
    }

    /// Every event of a stream `selection` after `from`, a page of [`STREAM_PAGE`] at a time.
    async fn read_every_page(
        &self,
        selection: Selection<'_>,
        mut from: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = Vec::new();
        loop {
            let page = self.read_page(selection, from, STREAM_PAGE).await?;
            if let Some(last) = page.events.last() {
                from = match selection {
                    Selection::StreamFromVersion(_) => last.event.stream_version,
                    Selection::All | Selection::StreamAfterPosition(_) => last.global_position,
                };
            }
            events.extend(page.events);
            if !page.more {
                return Ok(events);
            }
        }
    }

    /// The pool that writes; read models in the same file share it.
    pub fn writer_pool(&self) -> &SqlitePool {
        &self.writer
    }
}

/// One row of `events` as [`page_query!`] encodes it: the columns of [`columns!`], in order. Ids and
/// times are borrowed from the page when they hold no escapes (they never do).
#[derive(serde::Deserialize)]
struct EventRow<'a> {
    global_position: i64,
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    stream: String,
    stream_version: i64,
    event_type: String,
    schema_version: i64,
    #[serde(borrow)]
    occurred_at: Cow<'a, str>,
    #[serde(borrow)]
    recorded_at: Cow<'a, str>,
    tenant: String,
    actor: String,
    request_id: Option<String>,
    #[serde(borrow)]
    correlation_id: Cow<'a, str>,
    #[serde(borrow)]
    causation_id: Option<Cow<'a, str>>,
    payload: String,
    content_hash: String,
    prev_hash: String,
    hash: String,
}

impl EventRow<'_> {
    fn into_recorded(self) -> Result<RecordedEvent, StoreError> {
        let position = self.global_position;
        let corrupt = |reason: String| StoreError::Corrupt {
            location: format!("global position {position}"),
            reason,
        };
        let uuid = |text: &str| Uuid::try_parse(text).map_err(|e| corrupt(e.to_string()));
        let time = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| corrupt(e.to_string()))
        };
        let unsigned = |value: i64| u64::try_from(value).map_err(|e| corrupt(e.to_string()));
        Ok(RecordedEvent {
            global_position: unsigned(position)?,
            prev_hash: self.prev_hash,
            hash: self.hash,
            event: StoredEvent {
                event_id: uuid(&self.event_id)?,
                stream: self.stream,
                stream_version: unsigned(self.stream_version)?,
                event_type: self.event_type,
                schema_version: u32::try_from(self.schema_version)
                    .map_err(|e| corrupt(e.to_string()))?,
                occurred_at: time(&self.occurred_at)?,
                recorded_at: time(&self.recorded_at)?,
                metadata: EventMetadata {
                    tenant: self.tenant,
                    actor: self.actor,
                    request_id: self.request_id,
                    correlation_id: uuid(&self.correlation_id)?,
                    causation_id: self.causation_id.as_deref().map(uuid).transpose()?,
                },
                payload: JsonPayload::from_text(self.payload)
                    .map_err(|e| corrupt(e.to_string()))?,
                content_hash: self.content_hash,
            },
        })
    }
}

/// Decodes the JSON text of a [`page_query!`]; its events must come in log order.
fn decode_page(page: &str) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows: Vec<EventRow<'_>> = serde_json::from_str(page).map_err(|e| StoreError::Corrupt {
        location: "a page of events".into(),
        reason: e.to_string(),
    })?;
    let events = rows
        .into_iter()
        .map(EventRow::into_recorded)
        .collect::<Result<Vec<_>, _>>()?;
    if !events.is_sorted_by(|a, b| a.global_position < b.global_position) {
        return Err(StoreError::Corrupt {
            location: "a page of events".into(),
            reason: "events out of log order".into(),
        });
    }
    Ok(events)
}

/// The multi-row INSERT of `rows` into `table` (`events`, or a copy of it with the same columns),
/// exactly as an append writes them. Public so that the store benchmark can insert the rows an
/// append wrote into a copy of the table, beside the store, with the same statement.
pub fn insert_events(table: &str, rows: &[RecordedEvent]) -> QueryBuilder<Sqlite> {
    let mut insert = QueryBuilder::new(format!(
        concat!("INSERT INTO {} (", columns!(), ") "),
        table
    ));
    insert.push_values(rows, |mut values, row| {
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
    insert
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
            let mut insert = insert_events("events", chunk);
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
        let events = self
            .read_every_page(Selection::StreamFromVersion(stream), version)
            .await?;
        Ok(events.into_iter().map(|e| e.event).collect())
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.read_page(Selection::All, after, limit).await?.events)
    }

    async fn read_stream_after(
        &self,
        stream: &StreamName,
        after: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_every_page(Selection::StreamAfterPosition(stream), after)
            .await
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
