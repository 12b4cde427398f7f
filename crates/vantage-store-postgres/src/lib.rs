//! The distributed event store: the [`EventStore`] contract on PostgreSQL, through sqlx.
//!
//! Writers append concurrently (one multi-row `INSERT … SELECT FROM UNNEST` per command, no lock beyond
//! the stream's unique key). Global order is assigned after commit by a sequencer that any process may
//! run but only one runs at a time (a transaction-scoped advisory lock): it orders rows by
//! (transaction id, row id) and takes only rows whose transaction is older than
//! `pg_snapshot_xmin(pg_current_snapshot())`, i.e. older than every transaction still in flight. A late
//! committer therefore can never slip an event below a position a reader has passed. LISTEN/NOTIFY wakes
//! the sequencer (`vantage_appended`) and subscribers (`vantage_sequenced`); both also poll.

mod sequencer;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Row};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;
use vantage_store::{
    AppendOutcome, EventMetadata, EventStore, ExpectedVersion, IDEMPOTENCY_TTL, IdempotencyBegin,
    IdempotencyRow, IdempotencyStore, JsonPayload, NewEvent, RecordedEvent, SecretStore,
    StoreError, StoredEvent, StoredResponse, StreamName, decide_begin,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// How many times an `ExpectedVersion::Any` append is retried when a concurrent writer took its version.
const ANY_VERSION_RETRIES: usize = 16;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    pub url: String,
    /// A schema to use instead of the connection's default (tests use one per run).
    pub schema: Option<String>,
    pub max_connections: u32,
}

impl PgStoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: None,
            max_connections: 16,
        }
    }
}

/// Aborts the background tasks when the last clone of the store goes away.
#[derive(Debug)]
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The PostgreSQL event store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgEventStore {
    pool: PgPool,
    wake: watch::Sender<u64>,
    appended: Arc<Notify>,
    _tasks: Arc<Tasks>,
}

pub(crate) fn backend(error: sqlx::Error) -> StoreError {
    match error
        .as_database_error()
        .and_then(|db| db.code())
        .as_deref()
    {
        // disk_full, and read_only_sql_transaction (a standby, or default_transaction_read_only).
        Some("53100") => StoreError::Unwritable("PostgreSQL's disk is full".into()),
        Some("25006") => StoreError::Unwritable("the PostgreSQL server is read-only".into()),
        _ => StoreError::backend(error),
    }
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{value} is out of range")))
}

impl PgEventStore {
    /// Connects, brings the schema up to date and starts the sequencer and listener tasks.
    pub async fn connect(options: PgStoreOptions) -> Result<Self, StoreError> {
        let mut connect: PgConnectOptions = options
            .url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid database URL: {e}")))?;
        connect = connect.log_statements(tracing::log::LevelFilter::Trace);
        if let Some(schema) = &options.schema {
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(4))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect)
            .await
            .map_err(backend)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating the database: {e}")))?;
        let head: i64 = sqlx::query_scalar("SELECT last_position FROM event_sequencer")
            .fetch_one(&pool)
            .await
            .map_err(backend)?;
        let (wake, _) = watch::channel(u64::try_from(head).unwrap_or(0));
        let appended = Arc::new(Notify::new());
        let tasks = vec![
            tokio::spawn(sequencer::run(pool.clone(), appended.clone(), wake.clone())),
            tokio::spawn(sequencer::listen(
                pool.clone(),
                appended.clone(),
                wake.clone(),
            )),
        ];
        Ok(Self {
            pool,
            wake,
            appended,
            _tasks: Arc::new(Tasks(tasks)),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Orders whatever committed events are waiting, now, instead of waiting for the sequencer task.
    /// Returns how many were ordered (0 if another process holds the sequencer lock).
    pub async fn sequence_now(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let (ordered, head) = sequencer::step(&self.pool).await?;
            if ordered == 0 {
                return Ok(total);
            }
            total += ordered;
            self.wake.send_replace(head);
        }
    }

    async fn try_append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Every path ends the transaction explicitly: a dropped sqlx transaction only *queues* its
        // ROLLBACK until the connection is next used, and an idle connection that is still in a
        // transaction with an xid would hold back the sequencer's horizon.
        let current = match insert_events(&mut tx, stream, expected, events).await {
            Ok(current) => current,
            Err(error) => {
                let _ = tx.rollback().await;
                return Err(error);
            }
        };
        tx.commit().await.map_err(|error| {
            if error
                .as_database_error()
                .is_some_and(|db| db.is_unique_violation())
            {
                conflict(stream, expected, current + 1)
            } else {
                backend(error)
            }
        })?;
        self.appended.notify_one();
        Ok(AppendOutcome {
            stream_version: current + events.len() as u64,
            first_position: None,
        })
    }
}

fn conflict(stream: &StreamName, expected: ExpectedVersion, actual: u64) -> StoreError {
    StoreError::Conflict {
        stream: stream.to_string(),
        expected: expected.to_string(),
        actual,
    }
}

/// Checks the stream's version and inserts the events in one statement. Returns the version found.
async fn insert_events(
    tx: &mut sqlx::PgConnection,
    stream: &StreamName,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<u64, StoreError> {
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream = $1")
            .bind(stream.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
    let current = u64::try_from(current).unwrap_or(0);
    if !expected.admits(current) {
        return Err(conflict(stream, expected, current));
    }
    #[allow(
        clippy::disallowed_methods,
        reason = "the store stamps recorded_at when it writes"
    )]
    let recorded_at = Utc::now();
    let mut columns = EventColumns::default();
    for (offset, event) in events.iter().enumerate() {
        let stored = event
            .clone()
            .into_stored(stream, current + offset as u64 + 1, recorded_at)?;
        columns.push(stored)?;
    }
    let inserted = columns.insert_into(&mut *tx, "events").await;
    match inserted {
        Ok(_) => Ok(current),
        Err(error)
            if error
                .as_database_error()
                .is_some_and(|db| db.is_unique_violation()) =>
        {
            Err(conflict(stream, expected, current + 1))
        }
        Err(error) => Err(backend(error)),
    }
}

/// An append's events as the column arrays of its one multi-row `INSERT … SELECT FROM UNNEST`.
/// Public so that the store benchmark can insert the rows an append wrote into a copy of the table,
/// beside the store, with the same statement.
#[derive(Debug, Default)]
pub struct EventColumns {
    event_id: Vec<Uuid>,
    stream: Vec<String>,
    stream_version: Vec<i64>,
    event_type: Vec<String>,
    schema_version: Vec<i32>,
    occurred_at: Vec<DateTime<Utc>>,
    recorded_at: Vec<DateTime<Utc>>,
    tenant: Vec<String>,
    actor: Vec<String>,
    request_id: Vec<Option<String>>,
    correlation_id: Vec<Uuid>,
    causation_id: Vec<Option<Uuid>>,
    payload: Vec<String>,
    content_hash: Vec<String>,
}

impl EventColumns {
    /// Adds one event's row.
    pub fn push(&mut self, e: StoredEvent) -> Result<(), StoreError> {
        self.event_id.push(e.event_id);
        self.stream.push(e.stream);
        self.stream_version.push(to_i64(e.stream_version)?);
        self.event_type.push(e.event_type);
        self.schema_version.push(
            i32::try_from(e.schema_version)
                .map_err(|_| StoreError::Invalid("schema version out of range".into()))?,
        );
        self.occurred_at.push(e.occurred_at);
        self.recorded_at.push(e.recorded_at);
        self.tenant.push(e.metadata.tenant);
        self.actor.push(e.metadata.actor);
        self.request_id.push(e.metadata.request_id);
        self.correlation_id.push(e.metadata.correlation_id);
        self.causation_id.push(e.metadata.causation_id);
        self.payload.push(e.payload.as_str().to_owned());
        self.content_hash.push(e.content_hash);
        Ok(())
    }

    /// Inserts the rows into `table` (`events`, or a copy of it with the same columns) in one
    /// statement, exactly as an append writes them, and wakes the sequencer.
    pub async fn insert_into(
        &self,
        conn: &mut sqlx::PgConnection,
        table: &str,
    ) -> Result<(), sqlx::Error> {
        let sql = format!(
            "WITH inserted AS (
                INSERT INTO {table} (event_id, stream, stream_version, event_type, schema_version,
                    occurred_at, recorded_at, tenant, actor, request_id, correlation_id,
                    causation_id, payload, content_hash)
                SELECT event_id, stream, stream_version, event_type, schema_version, occurred_at,
                    recorded_at, tenant, actor, request_id, correlation_id, causation_id,
                    payload::json, content_hash
                FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::text[], $5::int4[],
                    $6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[], $10::text[],
                    $11::uuid[], $12::uuid[], $13::text[], $14::text[])
                    AS u(event_id, stream, stream_version, event_type, schema_version,
                         occurred_at, recorded_at, tenant, actor, request_id, correlation_id,
                         causation_id, payload, content_hash)
                RETURNING 1)
             SELECT count(*) AS n, pg_notify('vantage_appended', '') FROM inserted"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&self.event_id)
            .bind(&self.stream)
            .bind(&self.stream_version)
            .bind(&self.event_type)
            .bind(&self.schema_version)
            .bind(&self.occurred_at)
            .bind(&self.recorded_at)
            .bind(&self.tenant)
            .bind(&self.actor)
            .bind(&self.request_id)
            .bind(&self.correlation_id)
            .bind(&self.causation_id)
            .bind(&self.payload)
            .bind(&self.content_hash)
            .fetch_one(conn)
            .await
            .map(|_| ())
    }
}

/// An event's columns, in the order [`decode_stored`] reads them by position (no name look-ups).
macro_rules! event_columns {
    () => {
        "e.event_id, e.stream, e.stream_version, e.event_type, e.schema_version, e.occurred_at, \
         e.recorded_at, e.tenant, e.actor, e.request_id, e.correlation_id, e.causation_id, \
         e.payload::text AS payload, e.content_hash"
    };
}

/// A recorded event's columns: the log's ([`decode_recorded`]), then [`event_columns!`].
macro_rules! recorded_columns {
    () => {
        concat!("l.global_position, l.prev_hash, l.hash, ", event_columns!())
    };
}

/// Column positions of [`event_columns!`], from the first of them.
mod col {
    pub const EVENT_ID: usize = 0;
    pub const STREAM: usize = 1;
    pub const STREAM_VERSION: usize = 2;
    pub const EVENT_TYPE: usize = 3;
    pub const SCHEMA_VERSION: usize = 4;
    pub const OCCURRED_AT: usize = 5;
    pub const RECORDED_AT: usize = 6;
    pub const TENANT: usize = 7;
    pub const ACTOR: usize = 8;
    pub const REQUEST_ID: usize = 9;
    pub const CORRELATION_ID: usize = 10;
    pub const CAUSATION_ID: usize = 11;
    pub const PAYLOAD: usize = 12;
    pub const CONTENT_HASH: usize = 13;
    /// The log's columns before them in a [`recorded_columns!`] row.
    pub const LOG_COLUMNS: usize = 3;
}

fn decode_recorded(row: &sqlx::postgres::PgRow) -> Result<RecordedEvent, StoreError> {
    let get = |e: sqlx::Error| StoreError::Corrupt {
        location: "event_log row".into(),
        reason: e.to_string(),
    };
    Ok(RecordedEvent {
        global_position: u64::try_from(row.try_get::<i64, _>(0).map_err(get)?).unwrap_or(0),
        prev_hash: row.try_get(1).map_err(get)?,
        hash: row.try_get(2).map_err(get)?,
        event: decode_event(row, col::LOG_COLUMNS)?,
    })
}

fn decode_stored(row: &PgRow) -> Result<StoredEvent, StoreError> {
    decode_event(row, 0)
}

/// The [`event_columns!`] of `row`, the first of them at position `first`.
fn decode_event(row: &PgRow, first: usize) -> Result<StoredEvent, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt {
        location: format!(
            "event row {}",
            row.try_get::<Uuid, _>(first + col::EVENT_ID)
                .map_or_else(|_| "?".into(), |id| id.to_string())
        ),
        reason: e,
    };
    let get = |e: sqlx::Error| corrupt(e.to_string());
    let at = |column: usize| first + column;
    let payload = JsonPayload::from_text(row.try_get(at(col::PAYLOAD)).map_err(get)?)
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(StoredEvent {
        event_id: row.try_get(at(col::EVENT_ID)).map_err(get)?,
        stream: row.try_get(at(col::STREAM)).map_err(get)?,
        stream_version: u64::try_from(
            row.try_get::<i64, _>(at(col::STREAM_VERSION))
                .map_err(get)?,
        )
        .map_err(|e| corrupt(e.to_string()))?,
        event_type: row.try_get(at(col::EVENT_TYPE)).map_err(get)?,
        schema_version: u32::try_from(
            row.try_get::<i32, _>(at(col::SCHEMA_VERSION))
                .map_err(get)?,
        )
        .map_err(|e| corrupt(e.to_string()))?,
        occurred_at: row.try_get(at(col::OCCURRED_AT)).map_err(get)?,
        recorded_at: row.try_get(at(col::RECORDED_AT)).map_err(get)?,
        metadata: EventMetadata {
            tenant: row.try_get(at(col::TENANT)).map_err(get)?,
            actor: row.try_get(at(col::ACTOR)).map_err(get)?,
            request_id: row.try_get(at(col::REQUEST_ID)).map_err(get)?,
            correlation_id: row.try_get(at(col::CORRELATION_ID)).map_err(get)?,
            causation_id: row.try_get(at(col::CAUSATION_ID)).map_err(get)?,
        },
        payload,
        content_hash: row.try_get(at(col::CONTENT_HASH)).map_err(get)?,
    })
}

#[async_trait]
impl EventStore for PgEventStore {
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
        let mut attempt = 0;
        loop {
            match self.try_append(stream, expected, &events).await {
                Err(error)
                    if error.is_conflict()
                        && expected == ExpectedVersion::Any
                        && attempt < ANY_VERSION_RETRIES =>
                {
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn read_stream_from(
        &self,
        stream: &StreamName,
        version: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events e WHERE e.stream = $1 AND e.stream_version > $2 ORDER BY e.stream_version"
        ))
        .bind(stream.as_str())
        .bind(to_i64(version)?)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(decode_stored).collect()
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            recorded_columns!(),
            " FROM event_log l JOIN events e ON e.id = l.event_row \
              WHERE l.global_position > $1 ORDER BY l.global_position LIMIT $2"
        ))
        .bind(to_i64(after)?)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
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
            recorded_columns!(),
            " FROM events e JOIN event_log l ON l.event_row = e.id \
              WHERE e.stream = $1 AND l.global_position > $2 ORDER BY l.global_position"
        ))
        .bind(stream.as_str())
        .bind(to_i64(after)?)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(decode_recorded).collect()
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT last_position FROM event_sequencer")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(head).unwrap_or(0))
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
    }
}

#[async_trait]
impl IdempotencyStore for PgEventStore {
    async fn begin(
        &self,
        tenant: &str,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<IdempotencyBegin, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE tenant = $1 AND key = $2 AND claimed_at < $3",
        )
        .bind(tenant)
        .bind(key)
        .bind(now - IDEMPOTENCY_TTL)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        // Claim first: of two concurrent requests with one key exactly one inserts.
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (tenant, key, request_hash, claimed_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, key) DO NOTHING",
        )
        .bind(tenant)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected()
            == 1;
        if claimed {
            tx.commit().await.map_err(backend)?;
            return Ok(IdempotencyBegin::Started);
        }
        let row: Option<(
            String,
            Option<i32>,
            Option<String>,
            Option<String>,
            DateTime<Utc>,
        )> = sqlx::query_as(
            "SELECT request_hash, response_status, response_body, response_location, claimed_at
                 FROM idempotency_keys WHERE tenant = $1 AND key = $2 FOR UPDATE",
        )
        .bind(tenant)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let row = row.map(
            |(request_hash, status, body, location, claimed_at)| IdempotencyRow {
                request_hash,
                response_status: status.map(i64::from),
                response_body: body,
                response_location: location,
                claimed_at,
            },
        );
        let decision = decide_begin(row, request_hash, now);
        if decision == IdempotencyBegin::Started {
            // A stale claim (its request died): take it over.
            sqlx::query(
                "UPDATE idempotency_keys SET claimed_at = $3 WHERE tenant = $1 AND key = $2",
            )
            .bind(tenant)
            .bind(key)
            .bind(now)
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
            "UPDATE idempotency_keys SET response_status = $3, response_body = $4,
                    response_location = $5
             WHERE tenant = $1 AND key = $2",
        )
        .bind(tenant)
        .bind(key)
        .bind(i32::from(response.status))
        .bind(&response.body)
        .bind(&response.location)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn release(&self, tenant: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys
             WHERE tenant = $1 AND key = $2 AND response_status IS NULL",
        )
        .bind(tenant)
        .bind(key)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn forget_tenant(&self, tenant: &str) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE tenant = $1")
            .bind(tenant)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(backend)
    }
}

#[async_trait]
impl SecretStore for PgEventStore {
    async fn put_secret(&self, tenant: &str, owner: &str, sealed: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sealed_secrets (owner, tenant, sealed) VALUES ($1, $2, $3) \
             ON CONFLICT (owner) DO UPDATE SET tenant = excluded.tenant, sealed = excluded.sealed",
        )
        .bind(owner)
        .bind(tenant)
        .bind(sealed)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn secret(&self, tenant: &str, owner: &str) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE owner = $1 AND tenant = $2")
            .bind(owner)
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn delete_secret(&self, tenant: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sealed_secrets WHERE owner = $1 AND tenant = $2")
            .bind(owner)
            .bind(tenant)
            .execute(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO sealed_secrets (owner, tenant, sealed) VALUES ($1, $2, $3) \
             ON CONFLICT (owner) DO NOTHING",
        )
        .bind(owner)
        .bind(tenant)
        .bind(sealed)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let kept: Vec<u8> = sqlx::query_scalar(
            "SELECT sealed FROM sealed_secrets WHERE owner = $1 AND tenant = $2",
        )
        .bind(owner)
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        .ok_or_else(|| StoreError::Invalid(format!("secret {owner} belongs to another tenant")))?;
        tx.commit().await.map_err(backend)?;
        Ok(kept)
    }

    async fn erase_tenant(&self, tenant: &str, tombstone: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let forgotten = sqlx::query("DELETE FROM sealed_secrets WHERE tenant = $1")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        sqlx::query(
            "INSERT INTO sealed_secrets (owner, tenant, sealed) VALUES ($1, $2, $3) \
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
