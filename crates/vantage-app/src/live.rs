//! Live events: what was committed, as public-safe items, to subscribers of one stream (a scan) or of
//! a tenant's whole log — caught up from the log, then live, with no gap and no duplicate.
//!
//! **The hub** ([`LiveHub`]) fans events out in-process: a broadcast channel per stream and per
//! tenant that has subscribers, so a subscriber is woken only by events it wants. It is fed by a
//! feeder that only publishes events already readable from the log — the embedded
//! [`run_log_feeder`] follows the log itself; in distributed mode each replica's feeder reads the
//! NATS fan-out (`vantage_worker::live`), which a relay fills from the log.
//!
//! **A follower** ([`follow`]) subscribes to the hub *first*, then reads the log from the client's
//! position, then passes on live events after the last position it sent. Because the hub only
//! carries readable events, anything the subscription missed is in the log read, and anything both
//! hold is sent once (by position). A follower that falls behind the hub re-reads the log. A client
//! that reads too slowly is not buffered without bound: when its queue is full it gets one last item
//! saying so, and the stream ends — it reconnects with the last position it saw.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;
use vantage_domain::event::public_details;
use vantage_domain::ids::ScanId;
use vantage_domain::scan::ScanEvent;
use vantage_domain::tenant::TenantId;
use vantage_rules::SeverityCounts;
use vantage_store::{EventStore, RecordedEvent, StoreError, StreamName, SubscriptionOptions};

use crate::Services;
use crate::pipeline::AppError;
use crate::streams::Decode;

/// Events a hub channel holds for a subscriber that is behind (it re-reads the log beyond that).
pub const HUB_CAPACITY: usize = 1024;
/// Items queued for one client before it counts as too slow.
pub const CLIENT_QUEUE: usize = 512;
/// Events read from the log per batch while catching up.
const CATCH_UP_BATCH: usize = 500;

/// A scan's verdict at completion, as live subscribers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LiveVerdict {
    pub ruleset_version: String,
    pub findings: SeverityCounts,
    pub score: Option<u32>,
    pub grade: Option<String>,
}

/// One committed event, public-safe. (Its tenant routes it and is not part of what clients see;
/// transports carry it beside the event.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LiveEvent {
    /// The event's global log position: the SSE `id`, and where a client resumes.
    pub position: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub stream: String,
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    /// The payload as the audit trail shows it: credentials never, observations summarised.
    pub data: Value,
    /// On `ScanCompleted`: the scan's findings by severity, score and grade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<LiveVerdict>,
    #[serde(skip)]
    pub tenant: String,
}

/// What a follower hands its client.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveItem {
    Event(Arc<LiveEvent>),
    /// The client read too slowly and is cut off; it should reconnect from its last position.
    Overflow,
}

/// The scan events after which a scan's stream has nothing more to say.
const SCAN_ENDS: [&str; 4] = [
    "ScanCompleted",
    "ScanFailed",
    "ScanCancelled",
    "ScanDeleted",
];

/// What a client follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// One scan, until it ends.
    Scan { tenant: TenantId, scan_id: ScanId },
    /// A tenant's whole log; only these event types when `types` is given.
    Tenant {
        tenant: TenantId,
        types: Option<Vec<String>>,
    },
}

impl Follow {
    fn admits(&self, event: &LiveEvent) -> bool {
        match self {
            Self::Scan { tenant, .. } => event.tenant == tenant.as_str(),
            Self::Tenant { tenant, types } => {
                event.tenant == tenant.as_str()
                    && types.as_ref().is_none_or(|t| t.contains(&event.event_type))
            }
        }
    }

    fn ends_with(&self, event: &LiveEvent) -> bool {
        matches!(self, Self::Scan { .. }) && SCAN_ENDS.contains(&event.event_type.as_str())
    }
}

#[derive(Debug, Default)]
struct Channels {
    streams: HashMap<String, broadcast::Sender<Arc<LiveEvent>>>,
    tenants: HashMap<String, broadcast::Sender<Arc<LiveEvent>>>,
}

/// Where the hub got an event from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveSource {
    /// A fan-out transport (NATS, in distributed mode).
    Fanout,
    /// The log itself: the embedded feeder, or a gap the transport left.
    Log,
}

impl LiveSource {
    pub const ALL: [Self; 2] = [Self::Fanout, Self::Log];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fanout => "fanout",
            Self::Log => "log",
        }
    }
}

/// The in-process fan-out of live events (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct LiveHub {
    channels: Arc<Mutex<Channels>>,
    /// The highest position published (for readiness and metrics).
    published: Arc<watch::Sender<u64>>,
    /// Events published, by [`LiveSource`].
    counts: Arc<[std::sync::atomic::AtomicU64; 2]>,
}

impl LiveHub {
    /// Passes `event`, which came from `source`, to the subscribers of its stream and of its
    /// tenant. Only events already readable from the log may be published, in log order.
    pub fn publish(&self, event: Arc<LiveEvent>, source: LiveSource) {
        self.counts[source as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let position = event.position;
        if let Ok(mut channels) = self.channels.lock() {
            let send = |map: &mut HashMap<String, broadcast::Sender<Arc<LiveEvent>>>, key: &str| {
                if let Some(sender) = map.get(key)
                    && sender.send(event.clone()).is_err()
                {
                    // Nobody listens any more.
                    map.remove(key);
                }
            };
            send(&mut channels.streams, &event.stream);
            send(&mut channels.tenants, &event.tenant);
        }
        self.published.send_if_modified(|p| {
            let newer = position > *p;
            if newer {
                *p = position;
            }
            newer
        });
    }

    fn subscribe(&self, follow: &Follow) -> broadcast::Receiver<Arc<LiveEvent>> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (map, key) = match follow {
            Follow::Scan { scan_id, .. } => (
                &mut channels.streams,
                crate::scan_stream(*scan_id).to_string(),
            ),
            Follow::Tenant { tenant, .. } => (&mut channels.tenants, tenant.to_string()),
        };
        map.entry(key)
            .or_insert_with(|| broadcast::channel(HUB_CAPACITY).0)
            .subscribe()
    }

    /// The highest position published so far.
    pub fn published_up_to(&self) -> u64 {
        *self.published.borrow()
    }

    /// How many events were published from `source`.
    pub fn published_from(&self, source: LiveSource) -> u64 {
        self.counts[source as usize].load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Services {
    /// `recorded` as live subscribers see it (a completion carries its scan's verdict).
    pub async fn live_event(&self, recorded: &RecordedEvent) -> Result<LiveEvent, AppError> {
        let event = &recorded.event;
        let verdict = if event.event_type == "ScanCompleted" {
            self.completion_verdict(recorded).await?
        } else {
            None
        };
        Ok(LiveEvent {
            position: recorded.global_position,
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            stream: event.stream.clone(),
            recorded_at: event.recorded_at,
            actor: event.metadata.actor.clone(),
            data: public_details(&event.event_type, event.payload.as_str()),
            verdict,
            tenant: event.metadata.tenant.clone(),
        })
    }

    async fn completion_verdict(
        &self,
        recorded: &RecordedEvent,
    ) -> Result<Option<LiveVerdict>, AppError> {
        let event = &recorded.event;
        let ScanEvent::ScanCompleted(completed) = event.decode::<ScanEvent>()? else {
            return Ok(None);
        };
        let Some(scan_id) = crate::scan_of(&event.stream) else {
            return Ok(None);
        };
        let Ok(tenant) = TenantId::parse(&event.metadata.tenant) else {
            return Ok(None);
        };
        let assessed = self
            .assess_scan(&tenant, scan_id, &completed.ruleset_version)
            .await?;
        Ok(assessed.and_then(|(_, assessment)| {
            assessment.map(|a| LiveVerdict {
                ruleset_version: a.ruleset,
                findings: a.counts,
                score: a.overall.score,
                grade: a.overall.grade,
            })
        }))
    }
}

/// Publishes to a hub, in log order, the events a transport delivers — each with the position of the
/// event before it in the log — and fills from the log whatever the transport did not deliver: a
/// gap that an event's `previous` reveals, or, when the transport is silent, the log's head moving
/// on ([`HubFeeder::catch_up`]).
#[derive(Debug)]
pub struct HubFeeder {
    services: Services,
    last: u64,
}

impl HubFeeder {
    /// A feeder that publishes what is committed from now on.
    pub async fn start(services: Services) -> Result<Self, StoreError> {
        let last = services.store().head_position().await?;
        Ok(Self { services, last })
    }

    /// The last position published.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Publishes `event`, which follows `previous` in the log, after anything missing before it;
    /// ignores an event already published.
    pub async fn deliver(&mut self, previous: u64, event: LiveEvent) -> Result<(), AppError> {
        if event.position <= self.last {
            return Ok(());
        }
        if previous > self.last {
            self.catch_up_to(previous).await?;
        }
        self.last = event.position;
        self.services
            .live
            .publish(Arc::new(event), LiveSource::Fanout);
        Ok(())
    }

    /// Publishes from the log every event after the last published, up to the log's head.
    pub async fn catch_up(&mut self) -> Result<(), AppError> {
        let head = self.services.store().head_position().await?;
        self.catch_up_to(head).await
    }

    /// Publishes from the log every event after the last published, up to `position`.
    pub async fn catch_up_to(&mut self, position: u64) -> Result<(), AppError> {
        while self.last < position {
            let batch = self
                .services
                .store()
                .read_all(self.last, CATCH_UP_BATCH)
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            for recorded in batch {
                if recorded.global_position > position {
                    return Ok(());
                }
                let event = self.services.live_event(&recorded).await?;
                self.last = recorded.global_position;
                self.services.live.publish(Arc::new(event), LiveSource::Log);
            }
        }
        Ok(())
    }
}

/// Feeds `services`' hub from the log, from the head at start, until `stop` turns true (embedded
/// mode: the log is on this machine).
pub async fn run_log_feeder(
    services: Services,
    mut stop: watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let store = services.store().clone();
    let head = store.head_position().await?;
    let mut subscription =
        vantage_store::subscribe_all(store, head, SubscriptionOptions::default());
    while !*stop.borrow() {
        tokio::select! {
            next = subscription.next() => {
                let recorded = next?;
                match services.live_event(&recorded).await {
                    Ok(event) => services.live.publish(Arc::new(event), LiveSource::Log),
                    Err(error) => tracing::warn!(%error, position = recorded.global_position, "event not published live"),
                }
            }
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Follows `follow` for a client that has seen everything up to `after`: the log from there, then
/// live. The queue ends when a followed scan ends, when the client is too slow (after a last
/// [`LiveItem::Overflow`]), or when the client goes away.
pub fn follow(services: Services, follow: Follow, after: u64) -> mpsc::Receiver<LiveItem> {
    let (sender, queue) = mpsc::channel(CLIENT_QUEUE);
    tokio::spawn(async move {
        if let Err(error) = run_follower(&services, &follow, after, &sender).await {
            tracing::warn!(%error, "a live follower stopped");
        }
    });
    queue
}

/// What a send to the client queue did.
enum Sent {
    Sent,
    /// The followed scan ended, the client left, or it was too slow: stop.
    Stop,
}

async fn deliver(
    follow: &Follow,
    sender: &mpsc::Sender<LiveItem>,
    event: Arc<LiveEvent>,
    last: &mut u64,
) -> Sent {
    if event.position <= *last {
        return Sent::Sent;
    }
    *last = event.position;
    if !follow.admits(&event) {
        return Sent::Sent;
    }
    let ends = follow.ends_with(&event);
    if sender.capacity() <= 1 {
        // One slot is kept for saying why the stream stops.
        let _ = sender.try_send(LiveItem::Overflow);
        return Sent::Stop;
    }
    if sender.try_send(LiveItem::Event(event)).is_err() || ends {
        return Sent::Stop;
    }
    Sent::Sent
}

/// The followed events of the log after `after`.
async fn read_log(
    store: &Arc<dyn EventStore>,
    follow: &Follow,
    after: u64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    match follow {
        Follow::Scan { scan_id, .. } => {
            let stream: StreamName = crate::scan_stream(*scan_id);
            store.read_stream_after(&stream, after).await
        }
        Follow::Tenant { .. } => store.read_all(after, CATCH_UP_BATCH).await,
    }
}

async fn catch_up(
    services: &Services,
    follow: &Follow,
    sender: &mpsc::Sender<LiveItem>,
    last: &mut u64,
) -> Result<Sent, AppError> {
    loop {
        let batch = read_log(services.store(), follow, *last).await?;
        let complete = matches!(follow, Follow::Scan { .. }) || batch.len() < CATCH_UP_BATCH;
        let end = batch.last().map(|e| e.global_position);
        for recorded in batch {
            let event = Arc::new(services.live_event(&recorded).await?);
            if let Sent::Stop = deliver(follow, sender, event, last).await {
                return Ok(Sent::Stop);
            }
        }
        // Not every event read is delivered, but every one read is passed.
        if let Some(end) = end {
            *last = (*last).max(end);
        }
        if complete {
            return Ok(Sent::Sent);
        }
    }
}

async fn run_follower(
    services: &Services,
    follow: &Follow,
    after: u64,
    sender: &mpsc::Sender<LiveItem>,
) -> Result<(), AppError> {
    let mut live = services.live.subscribe(follow);
    let mut last = after;
    if let Sent::Stop = catch_up(services, follow, sender, &mut last).await? {
        return Ok(());
    }
    loop {
        tokio::select! {
            received = live.recv() => match received {
                Ok(event) => {
                    if let Sent::Stop = deliver(follow, sender, event, &mut last).await {
                        return Ok(());
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Behind the hub: what it dropped is in the log.
                    if let Sent::Stop = catch_up(services, follow, sender, &mut last).await? {
                        return Ok(());
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            () = sender.closed() => return Ok(()),
        }
    }
}
