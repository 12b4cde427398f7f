//! The read-model database: one connection pool over SQLite or PostgreSQL (sqlx's `Any` driver, so
//! every read model is written once in the SQL both understand), the declarative table definitions,
//! and [`Batch`], the write-back cache a projector applies a batch of events through.
//!
//! Every read-model table has the same shape: its key columns, a few indexed columns for queries, and
//! `doc`, the row's JSON document. Projectors read and write whole documents by key; queries filter on
//! the indexed columns and return documents. All SQL uses `$n` placeholders in order of appearance,
//! which both SQLite and PostgreSQL accept — except [`Batch`]'s multi-row statements, which number
//! their parameters as each backend binds them cheapest (`Backend::placeholder`).

use std::any::Any as StdAny;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Connection, Executor, Row};

use crate::ProjectionError;
use crate::parallel::map_on_cores;

/// Which database holds the read models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The `n`th (1-based, in order of appearance) parameter of a statement with many of them:
    /// `$n` on PostgreSQL, `?` on SQLite, whose driver looks every numbered parameter up by name in
    /// a list — quadratic in a statement's parameters, which made binding a multi-row upsert cost
    /// more than running it.
    fn placeholder(self, n: usize) -> String {
        match self {
            Self::Sqlite => "?".to_owned(),
            Self::Postgres => format!("${n}"),
        }
    }
}

/// A column's type: 64-bit integer or text (JSON documents are text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
}

/// One column of a read-model table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
}

pub(crate) const fn int(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Int,
    }
}

pub(crate) const fn text(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Text,
    }
}

/// A read-model table: `columns` start with the `key` primary-key columns; `doc` follows the columns.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub key: usize,
    pub indexes: &'static [&'static [&'static str]],
}

impl Table {
    /// The table's name with a suffix (`""` for the live table, `"__shadow"` during a rebuild).
    pub fn named(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.name)
    }

    fn create_sql(&self, suffix: &str) -> String {
        let mut columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let ty = match c.kind {
                    Kind::Int => "BIGINT",
                    Kind::Text => "TEXT",
                };
                format!("{} {ty} NOT NULL", c.name)
            })
            .collect();
        columns.push("doc TEXT NOT NULL".into());
        let key: Vec<&str> = self.columns[..self.key].iter().map(|c| c.name).collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))",
            self.named(suffix),
            columns.join(", "),
            key.join(", ")
        )
    }

    /// Index `i` of this table, named for the table it is on.
    fn index_sql(&self, i: usize, on_suffix: &str, name_suffix: &str) -> String {
        format!(
            "CREATE INDEX IF NOT EXISTS {}_{i}_idx{name_suffix} ON {} ({})",
            self.name,
            self.named(on_suffix),
            self.indexes[i].join(", ")
        )
    }

    fn key_where(&self, first_param: usize) -> String {
        self.columns[..self.key]
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} = ${}", c.name, first_param + i))
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

/// A value in a key or indexed column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cell {
    Int(i64),
    Text(String),
}

impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<u64> for Cell {
    fn from(v: u64) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

/// Binds cells to a query, in order.
pub(crate) fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    cells: &'q [Cell],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for cell in cells {
        query = match cell {
            Cell::Int(v) => query.bind(*v),
            Cell::Text(v) => query.bind(v.as_str()),
        };
    }
    query
}

/// A read-model document: a row of its table, identified by its key cells.
pub trait Doc: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const TABLE: &'static Table;
    /// The key cells, in the table's key-column order.
    fn key(&self) -> Vec<Cell>;
    /// The indexed (non-key) cells, in column order.
    fn columns(&self) -> Vec<Cell>;
}

/// The read-model database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReadDb {
    pool: AnyPool,
    backend: Backend,
    /// Answers kept until the scans projector moves (shared by the clones of this handle).
    pub(crate) cached: Arc<crate::query::Cached>,
}

impl ReadDb {
    /// Opens (creating if needed) the read models in a SQLite file.
    pub async fn open_sqlite(path: &Path) -> Result<Self, ProjectionError> {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            // A transaction SQLite rolled back on its own (after SQLITE_FULL or an I/O error) leaves
            // sqlx counting it open, and the next `BEGIN IMMEDIATE` on that connection would be
            // refused for ever: such a connection is closed instead of reused (the ping first lets
            // it finish a rollback it has queued).
            .before_acquire(|conn, _| {
                Box::pin(async move {
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA cache_size = -65536").await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Ok(Self {
            pool,
            backend: Backend::Sqlite,
            cached: Arc::default(),
        })
    }

    /// Connects to the read models in PostgreSQL, in `schema` if given (tests use one per run).
    pub async fn connect_postgres(
        url: &str,
        schema: Option<&str>,
        max_connections: u32,
    ) -> Result<Self, ProjectionError> {
        sqlx::any::install_default_drivers();
        let search_path = schema.map(|s| format!("SET search_path TO {s}"));
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    if let Some(sql) = search_path {
                        conn.execute(AssertSqlSafe(sql)).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            backend: Backend::Postgres,
            cached: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Creates the checkpoint table and the live tables of each projector if they do not exist.
    /// The shape of each projector's tables (their `CREATE` statements) is kept in `rm_shapes`; when
    /// it differs from this build's — or was never recorded — the projector's tables and checkpoints
    /// (`name`, `name` + `shadow_suffix`) are dropped, so it rebuilds them from the log.
    pub async fn migrate(
        &self,
        projectors: &[(&'static str, &'static [&'static Table])],
        shadow_suffix: &str,
    ) -> Result<(), ProjectionError> {
        // One transaction; on PostgreSQL under a lock, so replicas starting together on a fresh
        // database do not race each other's `CREATE … IF NOT EXISTS` (which PostgreSQL does not
        // make atomic against a concurrent one).
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            tx.execute("SELECT pg_advisory_xact_lock(7390283547101196289)")
                .await?;
        }
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_checkpoints (name TEXT NOT NULL PRIMARY KEY, \
             position BIGINT NOT NULL)",
        )
        .await?;
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_shapes (projector TEXT NOT NULL PRIMARY KEY, \
             shape TEXT NOT NULL)",
        )
        .await?;
        for (projector, tables) in projectors {
            let shape: String = tables
                .iter()
                .flat_map(|t| {
                    std::iter::once(t.create_sql(""))
                        .chain((0..t.indexes.len()).map(|i| t.index_sql(i, "", "")))
                })
                .collect::<Vec<_>>()
                .join(";\n");
            let recorded: Option<String> =
                sqlx::query_scalar("SELECT shape FROM rm_shapes WHERE projector = $1")
                    .bind(*projector)
                    .fetch_optional(&mut *tx)
                    .await?;
            if recorded.as_deref() != Some(shape.as_str()) {
                if recorded.is_some() {
                    tracing::warn!(
                        projector,
                        "read-model tables changed shape: dropping them to rebuild from the log"
                    );
                }
                for table in *tables {
                    for suffix in ["", shadow_suffix] {
                        tx.execute(AssertSqlSafe(format!(
                            "DROP TABLE IF EXISTS {}",
                            table.named(suffix)
                        )))
                        .await?;
                    }
                }
                sqlx::query("DELETE FROM rm_checkpoints WHERE name = $1 OR name = $2")
                    .bind(*projector)
                    .bind(format!("{projector}{shadow_suffix}"))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO rm_shapes (projector, shape) VALUES ($1, $2) \
                     ON CONFLICT (projector) DO UPDATE SET shape = excluded.shape",
                )
                .bind(*projector)
                .bind(&shape)
                .execute(&mut *tx)
                .await?;
            }
            for table in *tables {
                create_table(&mut tx, table, "").await?;
                for i in 0..table.indexes.len() {
                    tx.execute(AssertSqlSafe(table.index_sql(i, "", "")))
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), ProjectionError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The documents a query returns (its first column must be `doc`).
    pub async fn docs<D: DeserializeOwned>(
        &self,
        sql: &str,
        params: &[Cell],
    ) -> Result<Vec<D>, ProjectionError> {
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql.to_owned())), params)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(doc_of).collect()
    }

    /// The `(text, count)` rows of a grouped count (`SELECT <text column>, COUNT(*) … GROUP BY …`).
    pub async fn counts(
        &self,
        sql: &str,
        params: &[Cell],
    ) -> Result<Vec<(String, i64)>, ProjectionError> {
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql.to_owned())), params)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?)))
            .collect()
    }

    /// The one integer a query returns (0 if it returns no row or NULL).
    pub async fn scalar(&self, sql: &str, params: &[Cell]) -> Result<i64, ProjectionError> {
        let row = bind_all(sqlx::query(AssertSqlSafe(sql.to_owned())), params)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<i64>, _>(0))
            .transpose()?
            .flatten()
            .unwrap_or(0))
    }

    /// A document by key, from the live table.
    pub async fn get<D: Doc>(&self, key: &[Cell]) -> Result<Option<D>, ProjectionError> {
        debug_assert_eq!(key.len(), D::TABLE.key, "a whole key of {}", D::TABLE.name);
        let sql = format!(
            "SELECT doc FROM {} WHERE {}",
            D::TABLE.name,
            D::TABLE.key_where(1)
        );
        Ok(self.docs(&sql, key).await?.into_iter().next())
    }

    /// The cursor of a background job that follows the log (the webhook delivery engine), if it
    /// has saved one; kept beside the projectors' checkpoints, named `cursor:<job>`.
    pub async fn cursor(&self, job: &str) -> Result<Option<u64>, ProjectionError> {
        let row = bind_all(
            sqlx::query("SELECT position FROM rm_checkpoints WHERE name = $1"),
            &[format!("cursor:{job}").into()],
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?
            .map(|p| u64::try_from(p).unwrap_or(0)))
    }

    /// Saves the cursor of a background job (see [`ReadDb::cursor`]).
    pub async fn save_cursor(&self, job: &str, position: u64) -> Result<(), ProjectionError> {
        bind_all(
            sqlx::query(
                "INSERT INTO rm_checkpoints (name, position) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            ),
            &[format!("cursor:{job}").into(), position.into()],
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Seconds since this database, a PostgreSQL streaming replica, last replayed a transaction of
    /// its primary; `None` on a primary, on SQLite, and before the first replay.
    pub async fn replay_age_seconds(&self) -> Result<Option<f64>, ProjectionError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))::float8",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<f64>, _>(0)?)
    }

    /// A projector's checkpoint (0 if it never ran).
    pub async fn checkpoint(&self, name: &str) -> Result<u64, ProjectionError> {
        let position = self
            .scalar(
                "SELECT position FROM rm_checkpoints WHERE name = $1",
                &[name.into()],
            )
            .await?;
        Ok(u64::try_from(position).unwrap_or(0))
    }
}

pub(crate) async fn create_table(
    conn: &mut AnyConnection,
    table: &Table,
    suffix: &str,
) -> Result<(), ProjectionError> {
    conn.execute(AssertSqlSafe(table.create_sql(suffix)))
        .await?;
    Ok(())
}

pub(crate) fn doc_of<D: DeserializeOwned>(row: &AnyRow) -> Result<D, ProjectionError> {
    let text: String = row.try_get(0)?;
    serde_json::from_str(&text)
        .map_err(|e| ProjectionError::Corrupt(format!("read model doc: {e}")))
}

/// Builds the secondary indexes of shadow tables and swaps them in for the live ones, inside the
/// caller's transaction.
pub(crate) async fn swap_in_shadow(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &Table,
    shadow: &str,
) -> Result<(), ProjectionError> {
    conn.execute(AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {}",
        table.name
    )))
    .await?;
    conn.execute(AssertSqlSafe(format!(
        "ALTER TABLE {} RENAME TO {}",
        table.named(shadow),
        table.name
    )))
    .await?;
    for i in 0..table.indexes.len() {
        match backend {
            // Built on the shadow before the swap (see `index_shadow`); only renamed here.
            Backend::Postgres => {
                conn.execute(AssertSqlSafe(format!(
                    "ALTER INDEX {0}_{i}_idx{shadow} RENAME TO {0}_{i}_idx",
                    table.name
                )))
                .await?;
            }
            // SQLite cannot rename an index; readers are not blocked by the writer in WAL mode.
            Backend::Sqlite => {
                conn.execute(AssertSqlSafe(table.index_sql(i, "", "")))
                    .await?;
            }
        }
    }
    Ok(())
}

/// Builds a shadow table's secondary indexes before the swap (PostgreSQL only; see `swap_in_shadow`).
pub(crate) async fn index_shadow(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &Table,
    shadow: &str,
) -> Result<(), ProjectionError> {
    if backend == Backend::Postgres {
        for i in 0..table.indexes.len() {
            conn.execute(AssertSqlSafe(table.index_sql(i, shadow, shadow)))
                .await?;
        }
    }
    Ok(())
}

/// A document as a batch keeps it: typed, and turned into its row only when the batch is flushed
/// (a document changed by many events of one batch is serialised once).
trait CachedDoc: Send + Sync {
    fn as_any(&self) -> &dyn StdAny;
    fn as_any_mut(&mut self) -> &mut dyn StdAny;
    /// The row's cells (key, then indexed columns) and its JSON text.
    fn row(&self) -> Result<PendingRow, ProjectionError>;
}

impl<D: Doc> CachedDoc for D {
    fn as_any(&self) -> &dyn StdAny {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn StdAny {
        self
    }

    fn row(&self) -> Result<PendingRow, ProjectionError> {
        let mut cells = self.key();
        cells.extend(self.columns());
        let text = serde_json::to_string(self)
            .map_err(|e| ProjectionError::Corrupt(format!("serialising a document: {e}")))?;
        Ok((cells, text))
    }
}

/// What a batch must do with a cached row when it flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Nothing: the row is as the database has it.
    None,
    /// Insert or replace it with the cached document.
    Put,
    /// Delete it.
    Delete,
}

/// One cached row of a batch: its typed document (or its absence) and what must be written.
struct Slot {
    table: &'static Table,
    key: Vec<Cell>,
    doc: Option<Box<dyn CachedDoc>>,
    write: Write,
}

/// The write-back cache a projector applies one batch through, inside the batch's transaction.
///
/// Reads by key go to the database once per key and batch; changes stay in memory, as typed
/// documents, until [`flush`], which serialises each changed document once and writes each
/// table's rows with multi-row upserts. The last change of a key wins.
///
/// A rebuild lane applies a batch *detached*: outside any transaction, reading through a plain
/// connection while the lane's previous batch is still being written. It first looks in what that
/// previous batch carried over (every row it read or wrote, as it leaves them), so it never
/// reads a row the write in flight changes; every other row is as the database has it, because
/// only the lane writes its tables. Its changes are taken with `into_writes` and written by the
/// lane in the batch's own transaction. A detached batch refuses [`query`] and [`execute`], which
/// need every earlier write in the database: they fail with [`ProjectionError::Detached`], and the
/// lane applies the batch again in its transaction.
///
/// [`flush`]: Batch::flush
/// [`query`]: Batch::query
/// [`execute`]: Batch::execute
pub struct Batch<'c> {
    conn: &'c mut AnyConnection,
    backend: Backend,
    suffix: &'c str,
    slots: HashMap<SlotKey, Slot>,
    /// The rows the lane's previous batch left, for a detached batch (empty otherwise).
    carried: HashMap<SlotKey, Slot>,
    detached: bool,
}

/// A cached row's table and key.
type SlotKey = (&'static str, Vec<Cell>);

/// The rows a detached batch read or wrote, as it left them: handed to the lane's next batch, which
/// reads them before the database while this batch's write is in flight.
#[derive(Default)]
pub(crate) struct Carried(HashMap<SlotKey, Slot>);

/// A batch's changes, serialised: deleted keys, then each table's rows to upsert.
pub(crate) struct Writes {
    deletes: Vec<(&'static Table, Vec<Cell>)>,
    upserts: Vec<(&'static Table, Vec<PendingRow>)>,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("suffix", &self.suffix)
            .field("cached", &self.slots.len())
            .finish()
    }
}

/// A row waiting to be written: its cells and its document.
type PendingRow = (Vec<Cell>, String);

/// Documents a thread serialises at least, when a batch's are spread over the cores.
const ROWS_SERIALISED_PER_THREAD: usize = 64;

/// Rows per multi-row statement (well under both databases' bound-parameter limits).
const ROWS_PER_STATEMENT: usize = 256;

impl<'c> Batch<'c> {
    pub(crate) fn new(conn: &'c mut AnyConnection, backend: Backend, suffix: &'c str) -> Self {
        Self {
            conn,
            backend,
            suffix,
            slots: HashMap::new(),
            carried: HashMap::new(),
            detached: false,
        }
    }

    /// A batch applied outside its transaction, reading through `conn` and first in `carried`
    /// (see [`Batch`]).
    pub(crate) fn detached(
        conn: &'c mut AnyConnection,
        backend: Backend,
        suffix: &'c str,
        carried: Carried,
    ) -> Self {
        Self {
            carried: carried.0,
            detached: true,
            ..Self::new(conn, backend, suffix)
        }
    }

    /// Moves a row the previous batch left into this batch's cache; whether there was one.
    fn take_carried(&mut self, slot_key: &SlotKey) -> bool {
        match self.carried.remove_entry(slot_key) {
            Some((key, slot)) => {
                self.slots.insert(key, slot);
                true
            }
            None => false,
        }
    }

    /// The table's name in this batch (live or shadow).
    pub fn table(&self, table: &Table) -> String {
        table.named(self.suffix)
    }

    /// The slot of the document with `key`, read from the database on the first look.
    async fn slot<D: Doc>(&mut self, key: Vec<Cell>) -> Result<&mut Slot, ProjectionError> {
        debug_assert_eq!(key.len(), D::TABLE.key, "a whole key of {}", D::TABLE.name);
        let slot_key = (D::TABLE.name, key);
        if !self.slots.contains_key(&slot_key) && !self.take_carried(&slot_key) {
            let sql = format!(
                "SELECT doc FROM {} WHERE {}",
                D::TABLE.named(self.suffix),
                D::TABLE.key_where(1)
            );
            let row = bind_all(sqlx::query(AssertSqlSafe(sql)), &slot_key.1)
                .fetch_optional(&mut *self.conn)
                .await?;
            let doc: Option<D> = row.as_ref().map(doc_of).transpose()?;
            return Ok(self.cache_read(slot_key.1, doc));
        }
        Ok(self.slots.get_mut(&slot_key).expect("a cached slot"))
    }

    /// Caches `doc` (or its absence) as the database has it under `key`: nothing to write.
    fn cache_read<D: Doc>(&mut self, key: Vec<Cell>, doc: Option<D>) -> &mut Slot {
        let slot = Slot {
            table: D::TABLE,
            key: key.clone(),
            doc: doc.map(|d| Box::new(d) as Box<dyn CachedDoc>),
            write: Write::None,
        };
        self.slots
            .entry((D::TABLE.name, key))
            .insert_entry(slot)
            .into_mut()
    }

    /// Reads the documents with these keys that the batch does not hold yet, in as few queries as
    /// the statement size allows, so the [`get`](Batch::get)s that follow are answered from memory.
    pub async fn prefetch<D: Doc>(&mut self, keys: Vec<Vec<Cell>>) -> Result<(), ProjectionError> {
        let mut missing: Vec<Vec<Cell>> = Vec::with_capacity(keys.len());
        for key in keys {
            let slot_key = (D::TABLE.name, key);
            if !self.slots.contains_key(&slot_key) && !self.take_carried(&slot_key) {
                missing.push(slot_key.1);
            }
        }
        missing.sort();
        missing.dedup();
        let width = D::TABLE.key;
        let key_columns: Vec<&str> = D::TABLE.columns[..width].iter().map(|c| c.name).collect();
        for chunk in missing.chunks(ROWS_PER_STATEMENT) {
            let tuples: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let params: Vec<String> = (1..=width)
                        .map(|c| self.backend.placeholder(r * width + c))
                        .collect();
                    format!("({})", params.join(", "))
                })
                .collect();
            let sql = format!(
                "SELECT doc FROM {} WHERE ({}) IN (VALUES {})",
                D::TABLE.named(self.suffix),
                key_columns.join(", "),
                tuples.join(", ")
            );
            let cells: Vec<Cell> = chunk.iter().flatten().cloned().collect();
            let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), &cells)
                .fetch_all(&mut *self.conn)
                .await?;
            let mut found: HashMap<Vec<Cell>, D> = HashMap::with_capacity(rows.len());
            for row in &rows {
                let doc: D = doc_of(row)?;
                found.insert(doc.key(), doc);
            }
            for key in chunk {
                let doc = found.remove(key);
                self.cache_read(key.clone(), doc);
            }
        }
        Ok(())
    }

    /// The document with `key`, as the batch has it.
    pub async fn get<D: Doc>(&mut self, key: Vec<Cell>) -> Result<Option<D>, ProjectionError> {
        let slot = self.slot::<D>(key).await?;
        Ok(slot
            .doc
            .as_ref()
            .and_then(|d| d.as_any().downcast_ref::<D>())
            .cloned())
    }

    /// The document with `key` to change in place, made by `new` if there is none; either way it
    /// is written at the flush.
    pub async fn get_or_insert<D: Doc>(
        &mut self,
        key: Vec<Cell>,
        new: impl FnOnce() -> D,
    ) -> Result<&mut D, ProjectionError> {
        let slot = self.slot::<D>(key).await?;
        if slot.doc.is_none() {
            let doc = new();
            debug_assert_eq!(doc.key(), slot.key, "a new document of {}", D::TABLE.name);
            slot.doc = Some(Box::new(doc));
        }
        slot.write = Write::Put;
        slot.doc
            .as_mut()
            .and_then(|d| d.as_any_mut().downcast_mut::<D>())
            .ok_or_else(|| ProjectionError::Corrupt(format!("a {} of another type", D::TABLE.name)))
    }

    /// Stores `doc` (insert or replace).
    pub fn put<D: Doc>(&mut self, doc: D) {
        let key = doc.key();
        self.slots.insert(
            (D::TABLE.name, key.clone()),
            Slot {
                table: D::TABLE,
                key,
                doc: Some(Box::new(doc)),
                write: Write::Put,
            },
        );
    }

    /// Removes the document with `key`.
    pub fn delete<D: Doc>(&mut self, key: Vec<Cell>) {
        self.slots.insert(
            (D::TABLE.name, key.clone()),
            Slot {
                table: D::TABLE,
                key,
                doc: None,
                write: Write::Delete,
            },
        );
    }

    /// Documents by a query on this batch's tables (pending writes are flushed first). Name tables
    /// with [`Batch::table`], so the query reads the shadow tables during a rebuild.
    pub async fn query<D: DeserializeOwned>(
        &mut self,
        sql: &str,
        params: &[Cell],
    ) -> Result<Vec<D>, ProjectionError> {
        if self.detached {
            return Err(ProjectionError::Detached);
        }
        self.flush().await?;
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql.to_owned())), params)
            .fetch_all(&mut *self.conn)
            .await?;
        rows.iter().map(doc_of).collect()
    }

    /// Runs a statement on this batch's tables (pending writes are flushed first).
    pub async fn execute(&mut self, sql: &str, params: &[Cell]) -> Result<(), ProjectionError> {
        if self.detached {
            return Err(ProjectionError::Detached);
        }
        self.flush().await?;
        bind_all(sqlx::query(AssertSqlSafe(sql.to_owned())), params)
            .execute(&mut *self.conn)
            .await?;
        // Cached documents may be stale after an arbitrary statement.
        self.slots.clear();
        Ok(())
    }

    /// Writes every pending change.
    pub async fn flush(&mut self) -> Result<(), ProjectionError> {
        let writes = self.take_writes()?;
        writes.write(self.conn, self.backend, self.suffix).await
    }

    /// A detached batch's changes, and the rows it leaves for the lane's next batch.
    pub(crate) fn into_writes(mut self) -> Result<(Writes, Carried), ProjectionError> {
        let writes = self.take_writes()?;
        Ok((writes, Carried(self.slots)))
    }

    /// Serialises every pending change (on every core: [`map_on_cores`]), leaving each row as
    /// written.
    fn take_writes(&mut self) -> Result<Writes, ProjectionError> {
        let mut puts: Vec<(&'static Table, &dyn CachedDoc)> = Vec::new();
        let mut deletes: Vec<(&'static Table, Vec<Cell>)> = Vec::new();
        for slot in self.slots.values_mut() {
            match std::mem::replace(&mut slot.write, Write::None) {
                Write::Put => {
                    let slot: &Slot = slot;
                    if let Some(doc) = &slot.doc {
                        puts.push((slot.table, doc.as_ref()));
                    }
                }
                Write::Delete => deletes.push((slot.table, slot.key.clone())),
                Write::None => {}
            }
        }
        let rows = map_on_cores(&puts, ROWS_SERIALISED_PER_THREAD, |(_, doc)| doc.row());
        let mut upserts: HashMap<&'static str, (&'static Table, Vec<PendingRow>)> = HashMap::new();
        for ((table, _), row) in puts.iter().zip(rows) {
            upserts
                .entry(table.name)
                .or_insert_with(|| (table, Vec::new()))
                .1
                .push(row?);
        }
        let mut upserts: Vec<(&'static Table, Vec<PendingRow>)> = upserts.into_values().collect();
        upserts.sort_by_key(|(table, _)| table.name);
        Ok(Writes { deletes, upserts })
    }
}

impl Writes {
    /// Writes these changes to `suffix`'s tables through `conn`: the deletes, then each table's
    /// rows in multi-row upserts, tables in name order.
    pub(crate) async fn write(
        &self,
        conn: &mut AnyConnection,
        backend: Backend,
        suffix: &str,
    ) -> Result<(), ProjectionError> {
        for (table, key) in &self.deletes {
            let sql = format!(
                "DELETE FROM {} WHERE {}",
                table.named(suffix),
                table.key_where(1)
            );
            bind_all(sqlx::query(AssertSqlSafe(sql)), key)
                .execute(&mut *conn)
                .await?;
        }
        for (table, rows) in &self.upserts {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                upsert(conn, backend, suffix, table, chunk).await?;
            }
        }
        Ok(())
    }
}

async fn upsert(
    conn: &mut AnyConnection,
    backend: Backend,
    suffix: &str,
    table: &Table,
    rows: &[(Vec<Cell>, String)],
) -> Result<(), ProjectionError> {
    let width = table.columns.len() + 1;
    let mut sql = format!("INSERT INTO {} (", table.named(suffix));
    for column in table.columns {
        sql.push_str(column.name);
        sql.push_str(", ");
    }
    sql.push_str("doc) VALUES ");
    for (r, _) in rows.iter().enumerate() {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&backend.placeholder(r * width + c + 1));
        }
        sql.push(')');
    }
    let key: Vec<&str> = table.columns[..table.key].iter().map(|c| c.name).collect();
    sql.push_str(&format!(" ON CONFLICT ({}) DO UPDATE SET ", key.join(", ")));
    let updates: Vec<String> = table.columns[table.key..]
        .iter()
        .map(|c| c.name)
        .chain(["doc"])
        .map(|name| format!("{name} = excluded.{name}"))
        .collect();
    sql.push_str(&updates.join(", "));
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (cells, doc) in rows {
        debug_assert_eq!(cells.len(), table.columns.len(), "{}", table.name);
        for cell in cells {
            query = match cell {
                Cell::Int(v) => query.bind(*v),
                Cell::Text(v) => query.bind(v.as_str()),
            };
        }
        query = query.bind(doc.as_str());
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Begins a read-model transaction that takes the write lock at once on SQLite (so the checkpoint
/// fence and the batch's reads see one state).
pub(crate) async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, ProjectionError> {
    Ok(match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => pool.begin().await?,
    })
}

/// Begins a read-only snapshot transaction (for digests taken while projectors run).
pub(crate) async fn begin_snapshot(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, ProjectionError> {
    Ok(match backend {
        Backend::Sqlite => pool.begin_with("BEGIN DEFERRED").await?,
        Backend::Postgres => {
            pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?
        }
    })
}
