//! Live fan-out across replicas over NATS JetStream: every `vantage serve` replica's SSE clients see
//! every committed event, whichever replica committed it, in log order.
//!
//! - **The relay** ([`run_relay`]; one at a time across replicas, under a lease) follows the log and
//!   publishes each committed event, public-safe ([`LiveEvent`]), to stream `<prefix>_live` on
//!   `<prefix>.live.<tenant>.<stream>` with the event id as `Nats-Msg-Id`. Up to [`RELAY_WINDOW`]
//!   publishes are in flight at once, each expecting the stream's last sequence to be the previous
//!   event's (`Nats-Expected-Last-Sequence`; nothing else publishes there): if one is lost, the
//!   server refuses every later one, so the stream holds events in log order with no gap, and a
//!   republished one is dropped as a duplicate. (Not the previous event's id, with
//!   `Nats-Expected-Last-Msg-Id`: a server keeps the last id in memory only, so a replica that has
//!   just caught up after a restart can refuse the next message as a mismatch and stop being current,
//!   as a cluster fault drill saw; the sequence is the stream's stored state.) Each
//!   message names the position of the event before it in the log. The relay resumes after the
//!   last event the stream holds. The log is the outbox: while NATS is down the
//!   relay stops and starts again, and nothing committed is lost — it is published after.
//! - **The feed** ([`run_feed`]; on every replica) reads the stream with an ordered consumer and
//!   hands each event to the replica's hub through a [`HubFeeder`], which fills from the log any gap
//!   a message's `previous` reveals, and, when the stream has been silent for [`IDLE_CHECK`] while
//!   the log's head moved on (NATS down, no relay), the events since — so a client never misses
//!   one, and none is published twice.

use std::future::IntoFuture;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use vantage_app::{HubFeeder, LiveEvent, Services};
use vantage_store::SubscriptionOptions;

use crate::nats::{NatsError, NatsTopology, nats};

/// How long the feed waits for a message before looking at the log's head itself.
pub const IDLE_CHECK: Duration = Duration::from_secs(3);

/// One committed event on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LiveMessage {
    tenant: String,
    /// The position of the event before this one in the log (0 for the first).
    previous: u64,
    event: LiveEvent,
}

/// Publishes the relay has in flight at most (awaiting their acknowledgements).
pub const RELAY_WINDOW: usize = 256;

/// The live stream's last sequence, and the log position of the last event it holds, if it holds
/// any.
async fn last_relayed(stream: &jetstream::stream::Stream) -> Result<(u64, Option<u64>), NatsError> {
    let info = stream.get_info().await.map_err(nats)?;
    let sequence = info.state.last_sequence;
    if info.state.messages == 0 {
        return Ok((sequence, None));
    }
    let last = stream.get_raw_message(sequence).await.map_err(nats)?;
    let message: LiveMessage = serde_json::from_slice(&last.payload).map_err(nats)?;
    Ok((sequence, Some(message.event.position)))
}

/// Publishes every committed event to the live stream, from after the last one it holds (or from
/// the log's head, for an empty stream), until `stop` fires. Returns an error when NATS or the log
/// fails; the caller runs it again.
pub async fn run_relay(
    services: Services,
    client: async_nats::Client,
    topology: NatsTopology,
    mut stop: watch::Receiver<bool>,
) -> Result<(), NatsError> {
    let js = jetstream::new(client);
    topology.ensure_streams(&js).await?;
    let stream = js.get_stream(topology.live_stream()).await.map_err(nats)?;
    let store = services.store().clone();
    let head = store.head_position().await.map_err(nats)?;
    let (mut last_sequence, last_position) = last_relayed(&stream).await?;
    let start = last_position.map_or(head, |position| position.min(head));
    tracing::info!(position = start, "relaying the log to NATS");
    let mut subscription =
        vantage_store::subscribe_all(store, start, SubscriptionOptions::default());
    let mut previous = start;
    let mut acks = futures::stream::FuturesOrdered::new();
    while !*stop.borrow() {
        tokio::select! {
            next = subscription.next(), if acks.len() < RELAY_WINDOW => {
                let recorded = next.map_err(nats)?;
                let event = services.live_event(&recorded).await.map_err(nats)?;
                let position = event.position;
                let subject = topology.live_subject(&event.tenant, &event.stream);
                let id = event.event_id.to_string();
                let message = LiveMessage { tenant: event.tenant.clone(), previous, event };
                let payload = serde_json::to_vec(&message).map_err(nats)?;
                let publish = jetstream::message::PublishMessage::build()
                    .payload(payload.into())
                    .message_id(&id)
                    .expected_last_sequence(last_sequence);
                let ack = js.send_publish(subject, publish).await.map_err(nats)?;
                acks.push_back(ack.into_future());
                last_sequence += 1;
                previous = position;
            }
            Some(ack) = acks.next(), if !acks.is_empty() => {
                ack.map_err(nats)?;
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

/// Feeds this replica's hub from the live stream until `stop` fires (see the module
/// documentation); NATS failures are logged and the stream read again from where it was.
pub async fn run_feed(
    services: Services,
    client: async_nats::Client,
    topology: NatsTopology,
    stop: watch::Receiver<bool>,
) -> Result<(), NatsError> {
    let js = jetstream::new(client);
    let mut feeder = HubFeeder::start(services).await.map_err(nats)?;
    // The stream sequence read last, to go on from after an interruption.
    let mut read_up_to: Option<u64> = None;
    let mut backoff = Duration::from_millis(200);
    while !*stop.borrow() {
        match follow(&js, &topology, &mut feeder, &mut read_up_to, stop.clone()).await {
            Ok(()) => return Ok(()),
            Err(error) => {
                tracing::warn!(%error, "the live feed lost NATS; the log fills in meanwhile");
                // NATS is away: keep this replica's clients fed from the log until it is back.
                let deadline = tokio::time::Instant::now() + backoff;
                while tokio::time::Instant::now() < deadline && !*stop.borrow() {
                    catch_up_with_log(&mut feeder).await;
                    let mut stop = stop.clone();
                    let _ = tokio::time::timeout(IDLE_CHECK.min(backoff), stop.changed()).await;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    Ok(())
}

/// Publishes what the log holds beyond the feeder's last position (logged, not fatal, on error).
async fn catch_up_with_log(feeder: &mut HubFeeder) {
    if let Err(error) = feeder.catch_up().await {
        tracing::warn!(%error, "cannot fill live events from the log");
    }
}

/// Reads the live stream with an ordered consumer from after `read_up_to` (or from new messages)
/// into `feeder`, until `stop` (`Ok`) or a NATS failure (`Err`).
async fn follow(
    js: &jetstream::Context,
    topology: &NatsTopology,
    feeder: &mut HubFeeder,
    read_up_to: &mut Option<u64>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), NatsError> {
    topology.ensure_streams(js).await?;
    let stream = js.get_stream(topology.live_stream()).await.map_err(nats)?;
    let info = stream.get_info().await.map_err(nats)?;
    let deliver_policy = match *read_up_to {
        // The stream was recreated behind what was read: read it all (positions dedupe).
        Some(sequence) if sequence > info.state.last_sequence => DeliverPolicy::All,
        Some(sequence) => DeliverPolicy::ByStartSequence {
            start_sequence: sequence + 1,
        },
        None => DeliverPolicy::New,
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: format!("{}.>", topology.live_prefix()),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(nats)?;
    let mut messages = consumer.messages().await.map_err(nats)?;
    loop {
        tokio::select! {
            next = tokio::time::timeout(IDLE_CHECK, messages.next()) => match next {
                Err(_idle) => catch_up_with_log(feeder).await,
                Ok(None) => return Err(NatsError("the live stream's consumer ended".into())),
                Ok(Some(message)) => {
                    let message = message.map_err(nats)?;
                    if let Ok(info) = message.info() {
                        *read_up_to = Some(info.stream_sequence);
                    }
                    match serde_json::from_slice::<LiveMessage>(&message.payload) {
                        Ok(LiveMessage { tenant, previous, mut event }) => {
                            event.tenant = tenant;
                            if let Err(error) = feeder.deliver(previous, event).await {
                                tracing::warn!(%error, "cannot fill a live gap from the log");
                            }
                        }
                        Err(error) => tracing::warn!(%error, "dropping an unreadable live message"),
                    }
                }
            },
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return Ok(());
                }
            }
        }
    }
}
