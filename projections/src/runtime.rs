//! The projector runtime: runs a [`Projector`] from its checkpoint over the global log, in batches,
//! each batch's table writes and checkpoint committed in one transaction.
//!
//! **Exactly-once effect.** A batch's transaction first moves the checkpoint with
//! `UPDATE … SET position = new WHERE name = … AND position = old`. If another runner (another
//! process, or a rebuild that swapped tables in) moved it, no row matches, the transaction is rolled
//! back and the runner starts again from the stored checkpoint. So a batch's effects are committed
//! exactly when the checkpoint passes it, whatever crashes or races happen.
//!
//! **One runner per projector.** On PostgreSQL a runner holds a session advisory lock per projector
//! (`pg_try_advisory_lock`) on a dedicated connection while it runs; other processes wait on standby
//! and take over when the connection dies. The fence above makes the lock an efficiency measure, not a
//! correctness one. On SQLite, a single file, the fence alone suffices.
//!
//! **Rebuild.** [`rebuild`] projects from zero into `<table>__shadow` tables with checkpoint
//! `<name>__shadow` (so it resumes where it stopped), and when caught up swaps them for the live
//! tables in one transaction: queries answer from the old tables throughout.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use sqlx::{AssertSqlSafe, Executor};
use tokio::sync::{mpsc, watch};
use vantage_store::{EventStore, RecordedEvent};

use crate::ProjectionError;
use crate::db::{
    Backend, Batch, Carried, ReadDb, Table, Writes, begin_write, create_table, index_shadow,
    swap_in_shadow,
};
use crate::lease::{Lease, sleep_or_stop};

/// Events read and applied per transaction by a live projector.
pub const BATCH_SIZE: usize = 1000;
/// Events read and applied per transaction by a rebuild, which nobody waits on batch by batch:
/// larger batches mean fewer transactions and more of each batch's documents read once
/// (BENCHMARKS.md, "Rebuild and SQLite reads").
pub const REBUILD_BATCH_SIZE: usize = 10_000;
/// Suffix of the tables and checkpoint a rebuild writes.
pub const SHADOW: &str = "__shadow";

/// A projector: turns events into rows of its tables.
#[async_trait]
pub trait Projector: Send + 'static {
    /// Its stable name (checkpoint, lock, metrics label).
    fn name(&self) -> &'static str;
    /// The tables it owns (and rebuilds).
    fn tables(&self) -> &'static [&'static Table];
    /// Applies `events`, in order, through `batch`. Must depend on nothing but the events and what
    /// the batch reads.
    async fn apply(
        &mut self,
        events: &[RecordedEvent],
        batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError>;
    /// Forgets in-memory state after a batch was rolled back.
    fn reset(&mut self) {}
}

/// How far one projector has got.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ProjectorStatus {
    pub name: String,
    pub position: u64,
    /// Head of the log when last looked at.
    pub head: u64,
    /// Events behind the head.
    pub lag_events: u64,
    /// How long ago the oldest event not yet applied was recorded (0 when caught up).
    pub lag_seconds: f64,
    /// Whether this process is the one running it (false on standby).
    pub active: bool,
    pub last_error: Option<String>,
}

/// The status of every projector this process runs, for `/ready` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard(Arc<Mutex<BTreeMap<String, ProjectorStatus>>>);

impl StatusBoard {
    pub fn snapshot(&self) -> Vec<ProjectorStatus> {
        self.0
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut ProjectorStatus)) {
        if let Ok(mut map) = self.0.lock() {
            let status = map
                .entry(name.to_owned())
                .or_insert_with(|| ProjectorStatus {
                    name: name.to_owned(),
                    ..ProjectorStatus::default()
                });
            change(status);
        }
    }
}

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Never: follow the log live.
    Forever,
    /// When the log's head (as of each look) is reached.
    CaughtUp,
    /// When exactly this position is reached (the log must have it).
    Position(u64),
}

/// Options of one run.
#[derive(Clone)]
pub struct RunOptions {
    pub until: Until,
    /// `""` for live tables, [`SHADOW`] for a rebuild.
    pub suffix: &'static str,
    pub batch_size: usize,
    pub board: StatusBoard,
    /// Called after every committed batch with (position, head).
    pub progress: Option<Progress>,
    /// Test hook: fail the transaction of the batch that would move the checkpoint past this
    /// position, after its writes and before its commit (a crash mid-batch).
    pub fail_before_commit_past: Option<u64>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("until", &self.until)
            .field("suffix", &self.suffix)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            until: Until::Forever,
            suffix: "",
            batch_size: BATCH_SIZE,
            board: StatusBoard::default(),
            progress: None,
            fail_before_commit_past: None,
        }
    }
}

fn checkpoint_name(projector: &str, suffix: &str) -> String {
    format!("{projector}{suffix}")
}

async fn load_checkpoint(db: &ReadDb, name: &str) -> Result<u64, ProjectionError> {
    sqlx::query(
        "INSERT INTO rm_checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(db.pool())
    .await?;
    db.checkpoint(name).await
}

/// Reads ahead: batches of events after `from`, one batch in flight while the previous is applied.
fn read_ahead(
    store: Arc<dyn EventStore>,
    from: u64,
    batch_size: usize,
) -> (
    mpsc::Receiver<Result<Vec<RecordedEvent>, ProjectionError>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(2);
    let task = tokio::spawn(async move {
        let mut wakeups = store.wakeups();
        let mut after = from;
        loop {
            match store.read_all(after, batch_size).await {
                Ok(events) if events.is_empty() => {
                    // Caught up: say so with an empty batch, then wait for news (or poll).
                    if tx.send(Ok(Vec::new())).await.is_err() {
                        return;
                    }
                    let _ =
                        tokio::time::timeout(Duration::from_millis(500), wakeups.changed()).await;
                }
                Ok(events) => {
                    after = events.last().map_or(after, |e| e.global_position);
                    if tx.send(Ok(events)).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let _ = tx.send(Err(error.into())).await;
                    return;
                }
            }
        }
    });
    (rx, task)
}

/// Runs `projector` over the log from its checkpoint until `options.until`, or until `stop` fires.
/// Returns the checkpoint reached.
pub async fn run(
    projector: &mut dyn Projector,
    store: Arc<dyn EventStore>,
    db: &ReadDb,
    options: &RunOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<u64, ProjectionError> {
    let name = checkpoint_name(projector.name(), options.suffix);
    let board = options.board.clone();
    'restart: loop {
        projector.reset();
        let mut position = load_checkpoint(db, &name).await?;
        let (mut batches, reader) = read_ahead(store.clone(), position, options.batch_size);
        let _abort_reader = AbortOnDrop(reader);
        loop {
            if *stop.borrow() {
                return Ok(position);
            }
            if let Until::Position(target) = options.until
                && position >= target
            {
                return Ok(position);
            }
            let next = tokio::select! {
                next = batches.recv() => next,
                _ = stop.changed() => continue,
            };
            let Some(next) = next else {
                return Err(ProjectionError::Corrupt("the log reader stopped".into()));
            };
            let mut events = next?;
            if events.is_empty() {
                let head = store.head_position().await?;
                board.update(&name, |s| {
                    s.position = position;
                    s.head = head;
                    s.lag_events = head.saturating_sub(position);
                    s.lag_seconds = 0.0;
                    s.active = true;
                });
                if options.until == Until::CaughtUp && position >= head {
                    return Ok(position);
                }
                continue;
            }
            if let Until::Position(target) = options.until {
                events.retain(|e| e.global_position <= target);
            }
            let oldest = events[0].event.recorded_at;
            let last = events.last().map_or(position, |e| e.global_position);
            match apply_batch(projector, db, &name, options, position, last, &events).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(projector = %name, "checkpoint moved by another runner; restarting");
                    continue 'restart;
                }
                Err(error) => {
                    board.update(&name, |s| s.last_error = Some(error.to_string()));
                    return Err(error);
                }
            }
            position = last;
            let head = store.head_position().await.unwrap_or(last);
            #[allow(
                clippy::disallowed_methods,
                reason = "lag is wall-clock time by definition and feeds no read model"
            )]
            let lag_seconds = if head > position {
                (Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0
            } else {
                0.0
            };
            board.update(&name, |s| {
                s.position = position;
                s.head = head;
                s.lag_events = head.saturating_sub(position);
                s.lag_seconds = lag_seconds;
                s.active = true;
                s.last_error = None;
            });
            if let Some(progress) = &options.progress {
                progress(position, head);
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Applies one batch in one transaction. `Ok(false)`: the fence failed (nothing was written).
async fn apply_batch(
    projector: &mut dyn Projector,
    db: &ReadDb,
    checkpoint: &str,
    options: &RunOptions,
    from: u64,
    to: u64,
    events: &[RecordedEvent],
) -> Result<bool, ProjectionError> {
    let mut tx = begin_write(db.pool(), db.backend()).await?;
    if !fence(&mut tx, checkpoint, from, to).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    let result = async {
        let mut batch = Batch::new(&mut tx, db.backend(), options.suffix);
        projector.apply(events, &mut batch).await?;
        batch.flush().await
    }
    .await;
    if let Err(error) = result {
        tx.rollback().await?;
        projector.reset();
        return Err(error);
    }
    if options.fail_before_commit_past.is_some_and(|p| to > p) {
        tx.rollback().await?;
        projector.reset();
        return Err(ProjectionError::Injected);
    }
    tx.commit().await?;
    Ok(true)
}

/// Writes a detached batch's changes to the shadow tables in one transaction that also moves the
/// checkpoint, as [`apply_batch`] does for a batch applied inside it. `Ok(false)`: the fence failed
/// (nothing was written).
async fn write_batch(
    db: &ReadDb,
    checkpoint: &str,
    from: u64,
    to: u64,
    writes: &Writes,
) -> Result<bool, ProjectionError> {
    let mut tx = begin_write(db.pool(), db.backend()).await?;
    if !fence(&mut tx, checkpoint, from, to).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    writes.write(&mut tx, db.backend(), SHADOW).await?;
    tx.commit().await?;
    Ok(true)
}

/// Moves `checkpoint` from `from` to `to` inside a batch's transaction: whether it was at `from`
/// (if not, another runner moved it, and the batch must write nothing).
async fn fence(
    conn: &mut sqlx::AnyConnection,
    checkpoint: &str,
    from: u64,
    to: u64,
) -> Result<bool, ProjectionError> {
    let moved =
        sqlx::query("UPDATE rm_checkpoints SET position = $1 WHERE name = $2 AND position = $3")
            .bind(i64::try_from(to).unwrap_or(i64::MAX))
            .bind(checkpoint)
            .bind(i64::try_from(from).unwrap_or(i64::MAX))
            .execute(&mut *conn)
            .await?
            .rows_affected();
    Ok(moved == 1)
}

/// Runs `projector` live for as long as this process should, taking over from other processes on
/// PostgreSQL when they stop (see the module documentation). Errors are logged and retried.
pub async fn run_live(
    mut projector: Box<dyn Projector>,
    store: Arc<dyn EventStore>,
    db: ReadDb,
    board: StatusBoard,
    stop: watch::Receiver<bool>,
) {
    let name = projector.name();
    let options = RunOptions {
        board: board.clone(),
        ..RunOptions::default()
    };
    let mut backoff = Duration::from_millis(200);
    while !*stop.borrow() {
        let lock = match Lease::acquire(&db, &format!("projector:{name}")).await {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                board.update(name, |s| s.active = false);
                sleep_or_stop(Duration::from_secs(2), stop.clone()).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(projector = name, %error, "cannot take the projector lease");
                sleep_or_stop(backoff, stop.clone()).await;
                continue;
            }
        };
        let watchdog = lock.watch(stop.clone());
        let result = run(projector.as_mut(), store.clone(), &db, &options, watchdog).await;
        match result {
            Ok(_) => backoff = Duration::from_millis(200),
            Err(error) => {
                tracing::warn!(projector = name, %error, "projector failed; restarting");
                board.update(name, |s| s.last_error = Some(error.to_string()));
                sleep_or_stop(backoff, stop.clone()).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        drop(lock);
    }
}

/// Progress of a rebuild: (position, head).
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// How a rebuild runs.
#[derive(Clone, Default)]
pub struct RebuildOptions {
    /// Drop a half-done rebuild and start from zero instead of resuming it.
    pub restart: bool,
    pub progress: Option<Progress>,
    /// Stop once the shadow tables reach this position, without swapping (resume later).
    pub pause_at: Option<u64>,
    /// Events read and applied per batch; [`REBUILD_BATCH_SIZE`] if `None`.
    pub batch_size: Option<usize>,
}

impl std::fmt::Debug for RebuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RebuildOptions")
            .field("restart", &self.restart)
            .field("pause_at", &self.pause_at)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// Rebuilds `projector`'s tables from zero into shadow tables and swaps them in. Resumes a rebuild
/// that stopped unless `restart`. Returns the position the swapped-in tables are at (or, paused, the
/// shadow tables' position).
pub async fn rebuild(
    projector: &mut dyn Projector,
    store: Arc<dyn EventStore>,
    db: &ReadDb,
    rebuild_options: RebuildOptions,
) -> Result<u64, ProjectionError> {
    let RebuildOptions {
        restart,
        progress,
        pause_at,
        batch_size,
    } = rebuild_options;
    let name = projector.name();
    let shadow_checkpoint = checkpoint_name(name, SHADOW);
    prepare_shadow(projector, db, restart).await?;
    let started = Instant::now();
    let options = RunOptions {
        until: pause_at.map_or(Until::CaughtUp, Until::Position),
        suffix: SHADOW,
        batch_size: batch_size.unwrap_or(REBUILD_BATCH_SIZE).max(1),
        progress,
        ..RunOptions::default()
    };
    let (_stop_tx, stop) = watch::channel(false);
    loop {
        let reached = run(projector, store.clone(), db, &options, stop.clone()).await?;
        if pause_at.is_some() {
            return Ok(reached);
        }
        let mut tx = begin_write(db.pool(), db.backend()).await?;
        let live = db_position(&mut tx, name).await?;
        if reached < live {
            // The live projector moved on meanwhile: catch up to it first.
            tx.rollback().await?;
            continue;
        }
        for table in projector.tables() {
            index_shadow(&mut tx, db.backend(), table, SHADOW).await?;
            swap_in_shadow(&mut tx, db.backend(), table, SHADOW).await?;
        }
        sqlx::query(
            "INSERT INTO rm_checkpoints (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        )
        .bind(name)
        .bind(i64::try_from(reached).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM rm_checkpoints WHERE name = $1")
            .bind(&shadow_checkpoint)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            projector = name,
            position = reached,
            seconds = started.elapsed().as_secs_f64(),
            "rebuilt and swapped in"
        );
        return Ok(reached);
    }
}

/// Creates `projector`'s shadow tables (dropping a half-done rebuild first with `restart`).
async fn prepare_shadow(
    projector: &dyn Projector,
    db: &ReadDb,
    restart: bool,
) -> Result<(), ProjectionError> {
    let mut conn = db.pool().acquire().await?;
    if restart {
        for table in projector.tables() {
            conn.execute(AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS {}",
                table.named(SHADOW)
            )))
            .await?;
        }
        sqlx::query("DELETE FROM rm_checkpoints WHERE name = $1")
            .bind(checkpoint_name(projector.name(), SHADOW))
            .execute(&mut *conn)
            .await?;
    }
    for table in projector.tables() {
        create_table(&mut conn, table, SHADOW).await?;
    }
    Ok(())
}

/// Rebuilds every one of `projectors` with one read of the log: each batch is read once and handed
/// to every projector's lane, which applies it to that projector's shadow tables in the projector's
/// own fenced transaction (a projector whose shadow checkpoint is already past a batch skips it, so
/// a resumed rebuild works). Then each is finished as by [`rebuild`]: a last catch-up and the
/// atomic swap. Returns the positions swapped in, in `projectors` order.
///
/// Projectors own disjoint tables and checkpoints, so their lanes are independent and run side by
/// side; each lane also applies its next batch while its previous one is written (`run_lane`).
/// Writes take turns on SQLite, which has one writer (a transaction waiting for its lock would only
/// sleep in the busy handler); on PostgreSQL each lane writes on its own connection.
pub async fn rebuild_all(
    projectors: Vec<Box<dyn Projector>>,
    store: Arc<dyn EventStore>,
    db: &ReadDb,
    rebuild_options: RebuildOptions,
) -> Result<Vec<u64>, ProjectionError> {
    let RebuildOptions {
        restart,
        progress,
        batch_size,
        ..
    } = rebuild_options;
    let mut starts = Vec::with_capacity(projectors.len());
    for projector in &projectors {
        prepare_shadow(projector.as_ref(), db, restart).await?;
        starts.push(load_checkpoint(db, &checkpoint_name(projector.name(), SHADOW)).await?);
    }
    let from = starts.iter().copied().min().unwrap_or(0);
    let writers = match db.backend() {
        Backend::Postgres => projectors.len().max(1),
        Backend::Sqlite => 1,
    };
    let shared = Arc::new(LaneShared {
        writers: Arc::new(tokio::sync::Semaphore::new(writers)),
        positions: starts.iter().map(|p| AtomicU64::new(*p)).collect(),
        head: AtomicU64::new(0),
        reported: Mutex::new(from),
        progress,
    });
    let mut lanes = tokio::task::JoinSet::new();
    let mut feeds = Vec::with_capacity(projectors.len());
    for (index, projector) in projectors.into_iter().enumerate() {
        let (feed, batches) = mpsc::channel::<Arc<Vec<RecordedEvent>>>(2);
        feeds.push(feed);
        lanes.spawn(run_lane(
            projector,
            index,
            db.clone(),
            shared.clone(),
            batches,
        ));
    }
    let batch_size = batch_size.unwrap_or(REBUILD_BATCH_SIZE).max(1);
    let (mut batches, reader) = read_ahead(store.clone(), from, batch_size);
    let _abort_reader = AbortOnDrop(reader);
    let mut read_up_to = from;
    // Feeds every lane until the log is read to its head; stops early if a lane has ended (failed).
    let fed: Result<(), ProjectionError> = async {
        'feed: loop {
            let Some(next) = batches.recv().await else {
                return Err(ProjectionError::Corrupt("the log reader stopped".into()));
            };
            let events = next?;
            let head = store.head_position().await?;
            shared.head.store(head, Ordering::Release);
            if events.is_empty() {
                if read_up_to >= head {
                    return Ok(());
                }
                continue;
            }
            read_up_to = events.last().map_or(read_up_to, |e| e.global_position);
            let events = Arc::new(events);
            for feed in &feeds {
                if feed.send(events.clone()).await.is_err() {
                    break 'feed Ok(());
                }
            }
        }
    }
    .await;
    drop(feeds);
    let mut finished: Vec<Option<Box<dyn Projector>>> = Vec::new();
    finished.resize_with(shared.positions.len(), || None);
    while let Some(lane) = lanes.join_next().await {
        let (index, projector) = match lane {
            Ok(done) => done?,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => return Err(ProjectionError::Corrupt(format!("a rebuild lane: {error}"))),
        };
        finished[index] = Some(projector);
    }
    fed?;
    let mut swapped = Vec::with_capacity(finished.len());
    for projector in finished {
        let mut projector =
            projector.ok_or_else(|| ProjectionError::Corrupt("a rebuild lane vanished".into()))?;
        // Resumes from the shadow checkpoint just reached: only what was appended meanwhile is read.
        swapped.push(
            rebuild(
                projector.as_mut(),
                store.clone(),
                db,
                RebuildOptions::default(),
            )
            .await?,
        );
    }
    Ok(swapped)
}

/// One projector's lane of [`rebuild_all`]: applies each batch it is handed to the projector's
/// shadow tables, pipelined. A batch is applied detached (see [`Batch`]), reading what the previous
/// batch carried over before the database, while the previous batch's write is in flight; once
/// that write committed, this batch's write starts in its own fenced transaction and the lane
/// applies the next batch. A batch that needs its transaction (a delete by column) is applied
/// again inside it, after the projector forgot its in-memory state. Returns the projector, with
/// its index, once the feed ends and the last write committed.
async fn run_lane(
    mut projector: Box<dyn Projector>,
    index: usize,
    db: ReadDb,
    shared: Arc<LaneShared>,
    mut batches: mpsc::Receiver<Arc<Vec<RecordedEvent>>>,
) -> Result<(usize, Box<dyn Projector>), ProjectionError> {
    projector.reset();
    let name = checkpoint_name(projector.name(), SHADOW);
    // What `apply_batch` reads of the options: the shadow tables.
    let options = RunOptions {
        suffix: SHADOW,
        ..RunOptions::default()
    };
    // Applied up to here; committed up to `shared.positions[index]`.
    let mut position = shared.positions[index].load(Ordering::Acquire);
    let mut carried = Carried::default();
    let mut writing: Option<Writing> = None;
    while let Some(events) = batches.recv().await {
        let last = events.last().map_or(position, |e| e.global_position);
        if position >= last {
            continue;
        }
        let events = &events[events.partition_point(|e| e.global_position <= position)..];
        let detached = {
            let mut conn = db.pool().acquire().await?;
            let carried = std::mem::take(&mut carried);
            let mut batch = Batch::detached(&mut conn, db.backend(), SHADOW, carried);
            match projector.apply(events, &mut batch).await {
                Ok(()) => Some(batch.into_writes()?),
                Err(ProjectionError::Detached) => None,
                Err(error) => return Err(error),
            }
        };
        if let Some(previous) = writing.take() {
            previous.committed(&shared, index, &name).await?;
        }
        let turn =
            shared.writers.clone().acquire_owned().await.map_err(|_| {
                ProjectionError::Corrupt("the rebuild's writer turns closed".into())
            })?;
        match detached {
            Some((writes, kept)) => {
                carried = kept;
                let (db, name, from) = (db.clone(), name.clone(), position);
                writing = Some(Writing {
                    to: last,
                    task: tokio::spawn(async move {
                        let _turn = turn;
                        write_batch(&db, &name, from, last, &writes).await
                    }),
                });
            }
            None => {
                projector.reset();
                let applied = apply_batch(
                    projector.as_mut(),
                    &db,
                    &name,
                    &options,
                    position,
                    last,
                    events,
                )
                .await?;
                drop(turn);
                Writing::fenced(applied, &name)?;
                shared.positions[index].store(last, Ordering::Release);
                shared.report();
            }
        }
        position = last;
    }
    if let Some(last) = writing.take() {
        last.committed(&shared, index, &name).await?;
    }
    Ok((index, projector))
}

/// A lane's batch being written: the position its transaction moves the checkpoint to.
struct Writing {
    to: u64,
    task: tokio::task::JoinHandle<Result<bool, ProjectionError>>,
}

impl Writing {
    /// Waits for the write to commit, then records the lane's new position.
    async fn committed(
        self,
        shared: &LaneShared,
        index: usize,
        checkpoint: &str,
    ) -> Result<(), ProjectionError> {
        let fenced = match self.task.await {
            Ok(fenced) => fenced?,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => {
                return Err(ProjectionError::Corrupt(format!(
                    "a rebuild write of {checkpoint}: {error}"
                )));
            }
        };
        Self::fenced(fenced, checkpoint)?;
        shared.positions[index].store(self.to, Ordering::Release);
        shared.report();
        Ok(())
    }

    /// A batch whose fence failed means another rebuild of the projector moves its checkpoint.
    fn fenced(fenced: bool, checkpoint: &str) -> Result<(), ProjectionError> {
        if fenced {
            Ok(())
        } else {
            Err(ProjectionError::Corrupt(format!(
                "another rebuild of {checkpoint} is running"
            )))
        }
    }
}

/// What [`rebuild_all`]'s lanes share: the writer turns, each lane's committed position, and the
/// progress reported so far (the slowest lane's position, never going back).
struct LaneShared {
    writers: Arc<tokio::sync::Semaphore>,
    positions: Vec<AtomicU64>,
    head: AtomicU64,
    reported: Mutex<u64>,
    progress: Option<Progress>,
}

impl LaneShared {
    /// Reports the slowest lane's position if it moved.
    fn report(&self) {
        let Some(progress) = &self.progress else {
            return;
        };
        let slowest = self
            .positions
            .iter()
            .map(|p| p.load(Ordering::Acquire))
            .min()
            .unwrap_or(0);
        let Ok(mut reported) = self.reported.lock() else {
            return;
        };
        if slowest > *reported {
            *reported = slowest;
            progress(slowest, self.head.load(Ordering::Acquire).max(slowest));
        }
    }
}

async fn db_position(conn: &mut sqlx::AnyConnection, name: &str) -> Result<u64, ProjectionError> {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM rm_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(position.and_then(|p| u64::try_from(p).ok()).unwrap_or(0))
}
