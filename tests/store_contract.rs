//! The event store contract, run against SQLite and against a real PostgreSQL (and against KurrentDB
//! when `VANTAGE_TEST_KURRENTDB_URL` names a server): conflicts, atomicity,
//! ordering under concurrent writers, catch-up-then-live subscriptions, the hash chain, idempotency keys.
//! Plus what only one backend can show: PostgreSQL's in-flight transactions never let an event appear
//! below a position a reader passed; tampering with a stored row is caught by `verify_chain`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use vantage_store::{
    EventStore, ExpectedVersion, IdempotencyBegin, IdempotencyStore, RecordedEvent, StoreError,
    StoredResponse, StreamName, SubscriptionOptions, subscribe_all, verify_chain,
};
use vantage_tests::{PgTestStore, SqliteTestStore, events, shared};

fn stream(name: &str) -> StreamName {
    StreamName::new(format!("{name}-{}", uuid::Uuid::now_v7().simple())).unwrap()
}

/// Reads exactly `count` events from position `after` through a subscription, failing after 30 s.
async fn read_n(store: &Arc<dyn EventStore>, after: u64, count: usize) -> Vec<RecordedEvent> {
    let mut subscription = subscribe_all(store.clone(), after, SubscriptionOptions::default());
    let mut out = Vec::with_capacity(count);
    tokio::time::timeout(Duration::from_secs(30), async {
        while out.len() < count {
            out.push(subscription.next().await.expect("subscription read"));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {count} events arrived", out.len()));
    out
}

async fn appends_and_reads_back(store: Arc<dyn EventStore>) {
    let s = stream("scan");
    let written = events(0, 3);
    let outcome = store
        .append(&s, ExpectedVersion::NoStream, written.clone())
        .await
        .unwrap();
    assert_eq!(outcome.stream_version, 3);
    let read = store.read_stream(&s).await.unwrap();
    assert_eq!(read.len(), 3);
    for (i, (stored, new)) in read.iter().zip(&written).enumerate() {
        assert_eq!(stored.stream_version, i as u64 + 1);
        assert_eq!(stored.event_id, new.event_id);
        assert_eq!(stored.payload, new.payload);
        assert_eq!(stored.metadata, new.metadata);
        assert_eq!(stored.occurred_at, vantage_store_time(new.occurred_at));
    }
    let all = read_n(&store, 0, 3).await;
    assert_eq!(
        all.iter().map(|e| e.event.event_id).collect::<Vec<_>>(),
        written.iter().map(|e| e.event_id).collect::<Vec<_>>()
    );
    assert_eq!(store.head_position().await.unwrap(), 3);
    let more = store
        .append(&s, ExpectedVersion::Exact(3), events(3, 2))
        .await
        .unwrap();
    assert_eq!(more.stream_version, 5);
    // From a version: only what was appended after it, by version; nothing past the end.
    let tail = store.read_stream_from(&s, 3).await.unwrap();
    assert_eq!(
        tail.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [4, 5]
    );
    assert!(store.read_stream_from(&s, 5).await.unwrap().is_empty());
    assert_eq!(store.read_stream_from(&s, 0).await.unwrap().len(), 5);
}

/// One stream's globally ordered events after a position, without reading the others: exactly
/// what `read_all` holds of that stream.
async fn a_stream_is_read_by_position(store: Arc<dyn EventStore>) {
    let (a, b) = (stream("scan"), stream("scan"));
    store
        .append(&a, ExpectedVersion::NoStream, events(0, 2))
        .await
        .unwrap();
    store
        .append(&b, ExpectedVersion::NoStream, events(2, 3))
        .await
        .unwrap();
    store
        .append(&a, ExpectedVersion::Exact(2), events(5, 2))
        .await
        .unwrap();
    let all = read_n(&store, 0, 7).await;
    let of_a: Vec<&RecordedEvent> = all
        .iter()
        .filter(|e| e.event.stream == a.as_str())
        .collect();
    let read = store.read_stream_after(&a, 0).await.unwrap();
    assert_eq!(read.len(), 4);
    for (read, expected) in read.iter().zip(&of_a) {
        assert_eq!(read, *expected);
    }
    let after = of_a[1].global_position;
    let later = store.read_stream_after(&a, after).await.unwrap();
    assert_eq!(
        later.iter().map(|e| e.global_position).collect::<Vec<_>>(),
        of_a[2..]
            .iter()
            .map(|e| e.global_position)
            .collect::<Vec<_>>()
    );
    assert!(
        store
            .read_stream_after(&stream("none"), 0)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A payload whose text needs escaping wherever it is carried as a JSON string: quotes,
/// backslashes, escaped control characters and NUL, escaped and raw non-ASCII, a number with an
/// exponent, and whitespace between tokens — all of which must come back byte for byte, since the
/// text is what the chain hashes.
const AWKWARD_PAYLOAD: &str = r#"{"q":"say \"hi\"","b":"back\\slash","c":"tab\there\nnew\u0000nul","u":"é 😀 \u00e9 \ud83d\ude00","n":1.50e3,"sp" : [ 1 , 2 ]}"#;

/// A stream longer than a store's read page comes back whole and in order, from its start, from a
/// version and after a position, with every payload's text exactly as written.
async fn long_streams_and_awkward_payloads_read_back_exactly(store: Arc<dyn EventStore>) {
    let s = stream("scan");
    let mut written = Vec::new();
    for chunk in 0..5u64 {
        let mut batch = events(written.len(), 500);
        for event in batch.iter_mut().step_by(97) {
            event.payload = vantage_store::JsonPayload::from_text(AWKWARD_PAYLOAD.into()).unwrap();
        }
        let expected = match chunk {
            0 => ExpectedVersion::NoStream,
            _ => ExpectedVersion::Exact(chunk * 500),
        };
        store.append(&s, expected, batch.clone()).await.unwrap();
        written.extend(batch);
    }
    let read = store.read_stream(&s).await.unwrap();
    assert_eq!(read.len(), 2500);
    for (i, (stored, new)) in read.iter().zip(&written).enumerate() {
        assert_eq!(stored.stream_version, i as u64 + 1);
        assert_eq!(stored.event_id, new.event_id);
        assert_eq!(stored.payload.as_str(), new.payload.as_str());
    }
    assert!(
        read.iter()
            .filter(|e| e.payload.as_str() == AWKWARD_PAYLOAD)
            .count()
            > 20
    );
    let from = store.read_stream_from(&s, 1200).await.unwrap();
    assert_eq!(
        from.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        (1201..=2500).collect::<Vec<u64>>()
    );
    let all = read_n(&store, 0, 2500).await;
    let after = store
        .read_stream_after(&s, all[1099].global_position)
        .await
        .unwrap();
    assert_eq!(after.len(), 1400);
    for (read, expected) in after.iter().zip(&all[1100..]) {
        assert_eq!(read, expected);
    }
    let page = store.read_all(all[9].global_position, 7).await.unwrap();
    assert_eq!(page, all[10..17]);
}

fn vantage_store_time(t: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

async fn conflicts_are_typed_and_write_nothing(store: Arc<dyn EventStore>) {
    let s = stream("scan");
    store
        .append(&s, ExpectedVersion::NoStream, events(0, 2))
        .await
        .unwrap();
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(1),
        ExpectedVersion::Exact(3),
    ] {
        let error = store
            .append(&s, expected, events(10, 3))
            .await
            .expect_err("stale version must be refused");
        assert!(
            matches!(&error, StoreError::Conflict { actual: 2, .. }),
            "{error:?}"
        );
    }
    assert_eq!(store.read_stream(&s).await.unwrap().len(), 2);
    let empty = store.append(&s, ExpectedVersion::Any, vec![]).await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))));
    read_n(&store, 0, 2).await;
    // Give a (wrongly) appended event time to show up, then check it did not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.read_all(2, 10).await.unwrap().is_empty());
}

async fn concurrent_appends_to_one_stream_are_all_or_nothing(store: Arc<dyn EventStore>) {
    let s = stream("race");
    let racers: Vec<_> = (0..8)
        .map(|racer| {
            let store = store.clone();
            let s = s.clone();
            tokio::spawn(async move {
                store
                    .append(&s, ExpectedVersion::NoStream, events(racer * 1000, 50))
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(outcome) => {
                winners += 1;
                assert_eq!(outcome.stream_version, 50);
            }
            Err(error) => assert!(error.is_conflict(), "{error:?}"),
        }
    }
    assert_eq!(winners, 1, "exactly one of the racing appends wins");
    let stored = store.read_stream(&s).await.unwrap();
    assert_eq!(stored.len(), 50);
    let n = |event: &vantage_store::StoredEvent| event.payload.to_value().unwrap()["n"].as_u64();
    let first = n(&stored[0]).unwrap();
    for (i, event) in stored.iter().enumerate() {
        assert_eq!(
            n(event).unwrap(),
            first + i as u64,
            "events of two appends interleaved"
        );
    }
}

async fn concurrent_writers_produce_a_gapless_order_seen_live(store: Arc<dyn EventStore>) {
    const WRITERS: usize = 8;
    const COMMANDS: usize = 25;
    const PER_COMMAND: usize = 4;
    let total = WRITERS * COMMANDS * PER_COMMAND;
    // The reader runs while the writers write: it must never meet a gap or a reordering.
    let reader = {
        let store = store.clone();
        tokio::spawn(async move { read_n(&store, 0, total).await })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for c in 0..COMMANDS {
                    // Half the writers share streams, so conflicts and retries happen too.
                    let s = StreamName::new(format!("w-{}-{c}", w % 4)).unwrap();
                    loop {
                        match store
                            .append(
                                &s,
                                ExpectedVersion::Any,
                                events(w * 10_000 + c * 10, PER_COMMAND),
                            )
                            .await
                        {
                            Ok(_) => break,
                            Err(error) if error.is_conflict() => continue,
                            Err(error) => panic!("{error}"),
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let seen = reader.await.unwrap();
    let positions: Vec<u64> = seen.iter().map(|e| e.global_position).collect();
    assert_eq!(positions, (1..=total as u64).collect::<Vec<_>>());
    let ids: HashSet<_> = seen.iter().map(|e| e.event.event_id).collect();
    assert_eq!(ids.len(), total, "an event was delivered twice");
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for event in &seen {
        let last = versions.entry(event.event.stream.as_str()).or_insert(0);
        assert_eq!(
            event.event.stream_version,
            *last + 1,
            "stream order differs from global order"
        );
        *last = event.event.stream_version;
    }
    let report = verify_chain(store.as_ref(), |_| {}).await.unwrap();
    assert_eq!(report.first_break, None);
    assert_eq!(report.events_checked, total as u64);
}

async fn subscription_catches_up_then_goes_live(store: Arc<dyn EventStore>) {
    for i in 0..10 {
        store
            .append(&stream("s"), ExpectedVersion::NoStream, events(i * 10, 10))
            .await
            .unwrap();
    }
    let mut subscription = subscribe_all(
        store.clone(),
        40,
        SubscriptionOptions {
            batch_size: 7,
            poll_interval: Duration::from_secs(5),
        },
    );
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while seen.len() < 60 {
            seen.push(subscription.next().await.unwrap().global_position);
        }
    })
    .await
    .expect("history arrives");
    assert_eq!(seen, (41..=100).collect::<Vec<_>>());
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..5 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                store
                    .append(&stream("live"), ExpectedVersion::NoStream, events(i, 3))
                    .await
                    .unwrap();
            }
        })
    };
    // Live events arrive by wake-up, well before the 5 s poll interval.
    let live = tokio::time::timeout(Duration::from_secs(4), async {
        let mut live = Vec::new();
        while live.len() < 15 {
            live.push(subscription.next().await.unwrap().global_position);
        }
        live
    })
    .await
    .expect("live events are pushed, not polled");
    writer.await.unwrap();
    assert_eq!(live, (101..=115).collect::<Vec<_>>());
    assert_eq!(subscription.position(), 115);
}

async fn the_chain_verifies_and_links_every_event(store: Arc<dyn EventStore>) {
    for i in 0..5 {
        store
            .append(&stream("c"), ExpectedVersion::NoStream, events(i, 4))
            .await
            .unwrap();
    }
    let all = read_n(&store, 0, 20).await;
    assert_eq!(all[0].prev_hash, vantage_store::GENESIS_HASH);
    for pair in all.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    let report = verify_chain(store.as_ref(), |_| {}).await.unwrap();
    assert_eq!(report.first_break, None);
    assert_eq!(report.events_checked, 20);
    assert_eq!(report.head_hash, all[19].hash);
}

async fn idempotency_keys_replay_the_first_response<S: IdempotencyStore>(store: &S) {
    let now = Utc::now();
    let begin = |key: &'static str, hash: &'static str, at| store.begin("default", key, hash, at);
    assert_eq!(
        begin("k1", "h1", now).await.unwrap(),
        IdempotencyBegin::Started
    );
    assert_eq!(
        begin("k1", "h1", now).await.unwrap(),
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        begin("k1", "h2", now).await.unwrap(),
        IdempotencyBegin::Mismatch
    );
    let response = StoredResponse {
        status: 202,
        body: json!({"id": "x"}).to_string(),
        location: Some("/api/v1/scans/x".into()),
    };
    store.complete("default", "k1", &response).await.unwrap();
    assert_eq!(
        begin("k1", "h1", now).await.unwrap(),
        IdempotencyBegin::Replay(response.clone())
    );
    // Another tenant's key of the same name is another key.
    assert_eq!(
        store.begin("other", "k1", "h1", now).await.unwrap(),
        IdempotencyBegin::Started
    );
    // After 24 hours the key is new again.
    let later = now + chrono::TimeDelta::hours(25);
    assert_eq!(
        begin("k1", "h9", later).await.unwrap(),
        IdempotencyBegin::Started
    );
    // A released claim can be taken again; a claim whose request died is taken over after a minute.
    assert_eq!(
        begin("k2", "h", now).await.unwrap(),
        IdempotencyBegin::Started
    );
    store.release("default", "k2").await.unwrap();
    assert_eq!(
        begin("k2", "h", now).await.unwrap(),
        IdempotencyBegin::Started
    );
    let stale = now + chrono::TimeDelta::seconds(61);
    assert_eq!(
        begin("k2", "h", stale).await.unwrap(),
        IdempotencyBegin::Started
    );
}

/// A KurrentDB store in a namespace of its own, on the server `VANTAGE_TEST_KURRENTDB_URL` names
/// (`kurrentdb://127.0.0.1:2113?tls=false`).
async fn kurrentdb_store() -> Arc<dyn EventStore> {
    use vantage_store_kurrentdb::{KurrentEventStore, KurrentStoreOptions};
    let url = std::env::var("VANTAGE_TEST_KURRENTDB_URL")
        .expect("VANTAGE_TEST_KURRENTDB_URL names the KurrentDB server to test against");
    let options = KurrentStoreOptions {
        namespace: format!("vt{}", uuid::Uuid::now_v7().simple()),
        ..KurrentStoreOptions::new(url)
    };
    shared(
        KurrentEventStore::connect(options)
            .await
            .expect("KurrentDB answers"),
    )
}

macro_rules! contract {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let t = vantage_tests::SqliteTestStore::new().await;
                super::$name(vantage_tests::shared(t.store.clone())).await;
            })+

            #[tokio::test]
            async fn idempotency_keys() {
                let t = vantage_tests::SqliteTestStore::new().await;
                super::idempotency_keys_replay_the_first_response(&t.store).await;
            }
        }
        /// Against a live KurrentDB server (none can be installed on the CI machines; README).
        mod kurrentdb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[ignore = "needs a KurrentDB server named by VANTAGE_TEST_KURRENTDB_URL"]
            async fn $name() {
                super::$name(super::kurrentdb_store().await).await;
            })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let t = vantage_tests::PgTestStore::new().await;
                super::$name(vantage_tests::shared(t.store.clone())).await;
                t.drop_schema().await;
            })+

            #[tokio::test]
            async fn idempotency_keys() {
                let t = vantage_tests::PgTestStore::new().await;
                super::idempotency_keys_replay_the_first_response(&t.store).await;
                t.drop_schema().await;
            }
        }
    };
}

contract!(
    appends_and_reads_back,
    a_stream_is_read_by_position,
    long_streams_and_awkward_payloads_read_back_exactly,
    conflicts_are_typed_and_write_nothing,
    concurrent_appends_to_one_stream_are_all_or_nothing,
    concurrent_writers_produce_a_gapless_order_seen_live,
    subscription_catches_up_then_goes_live,
    the_chain_verifies_and_links_every_event,
);

/// Inserts one event row directly, as a writer would, optionally with an explicit transaction id.
async fn insert_raw(
    connection: &mut sqlx::PgConnection,
    stream: &str,
    txid: Option<u64>,
) -> vantage_store::StoredEvent {
    let event = events(0, 1)
        .remove(0)
        .into_stored(&StreamName::new(stream).unwrap(), 1, Utc::now())
        .unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, stream, stream_version, event_type, schema_version,
             occurred_at, recorded_at, tenant, actor, request_id, correlation_id, causation_id,
             payload, content_hash, txid)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::json, $14,
                 COALESCE(($15::text)::xid8, pg_current_xact_id()))",
    )
    .bind(event.event_id)
    .bind(&event.stream)
    .bind(1i64)
    .bind(&event.event_type)
    .bind(1i32)
    .bind(event.occurred_at)
    .bind(event.recorded_at)
    .bind(&event.metadata.tenant)
    .bind(&event.metadata.actor)
    .bind(&event.metadata.request_id)
    .bind(event.metadata.correlation_id)
    .bind(event.metadata.causation_id)
    .bind(event.payload.as_str())
    .bind(&event.content_hash)
    .bind(txid.map(|t| t.to_string()))
    .execute(connection)
    .await
    .unwrap();
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_orders_transaction_ids_as_numbers_not_text() {
    // Transaction ids 10 and 9, inserted in that order: as text "10" sorts before "9". Both are far
    // below any live transaction, so the sequencer may order them at once.
    let t = PgTestStore::new().await;
    let mut connection = t.store.pool().acquire().await.unwrap();
    let ten = insert_raw(&mut connection, "xid-ten", Some(10)).await;
    let nine = insert_raw(&mut connection, "xid-nine", Some(9)).await;
    drop(connection);
    let store = shared(t.store.clone());
    store
        .append(&stream("after"), ExpectedVersion::NoStream, events(5, 1))
        .await
        .unwrap();
    let seen = read_n(&store, 0, 3).await;
    assert_eq!(
        seen[0].event.event_id, nine.event_id,
        "xid 9 precedes xid 10"
    );
    assert_eq!(seen[1].event.event_id, ten.event_id);
    // Nothing is ordered twice, and the sequencer keeps going.
    store
        .append(&stream("later"), ExpectedVersion::NoStream, events(6, 1))
        .await
        .unwrap();
    assert_eq!(read_n(&store, 3, 1).await[0].global_position, 4);
    assert_eq!(
        verify_chain(store.as_ref(), |_| {})
            .await
            .unwrap()
            .first_break,
        None
    );
    t.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_never_orders_an_event_past_an_in_flight_transaction() {
    let t = PgTestStore::new().await;
    let store = shared(t.store.clone());
    // A slow writer: its transaction starts (and takes its xid) first and commits last.
    let mut slow = t.store.pool().begin().await.unwrap();
    let slow_event = insert_raw(&mut slow, "slow", None).await;
    // A fast writer commits meanwhile.
    store
        .append(&stream("fast"), ExpectedVersion::NoStream, events(1, 2))
        .await
        .unwrap();
    t.store.sequence_now().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store.read_all(0, 10).await.unwrap().is_empty(),
        "events were ordered while an older transaction was still in flight"
    );
    slow.commit().await.unwrap();
    let seen = read_n(&store, 0, 3).await;
    assert_eq!(
        seen[0].event.event_id, slow_event.event_id,
        "the older transaction comes first"
    );
    assert_eq!(
        seen.iter().map(|e| e.global_position).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    t.drop_schema().await;
}

#[tokio::test]
async fn sqlite_tampering_is_caught_and_names_the_event() {
    let t = SqliteTestStore::new().await;
    let store = shared(t.store.clone());
    for i in 0..3 {
        store
            .append(&stream("t"), ExpectedVersion::NoStream, events(i * 3, 3))
            .await
            .unwrap();
    }
    let victim = store.read_all(4, 1).await.unwrap().remove(0);
    let pool = t.store.writer_pool();
    let refused = sqlx::query("UPDATE events SET payload = '{}' WHERE global_position = 5")
        .execute(pool)
        .await;
    assert!(
        refused.is_err(),
        "the append-only trigger must refuse updates"
    );
    sqlx::query("DROP TRIGGER events_are_append_only_update")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET payload = '{\"n\":999}' WHERE global_position = 5")
        .execute(pool)
        .await
        .unwrap();
    let report = verify_chain(store.as_ref(), |_| {}).await.unwrap();
    let found = report.first_break.expect("tampering must be detected");
    assert_eq!(found.global_position, 5);
    assert_eq!(found.event_id, victim.event.event_id.to_string());
    assert_eq!(report.events_checked, 4);
}

#[tokio::test]
async fn postgres_tampering_is_caught_and_names_the_event() {
    let t = PgTestStore::new().await;
    let store = shared(t.store.clone());
    for i in 0..3 {
        store
            .append(&stream("t"), ExpectedVersion::NoStream, events(i * 3, 3))
            .await
            .unwrap();
    }
    let victim = read_n(&store, 0, 9).await.remove(6);
    let pool = t.store.pool();
    let refused = sqlx::query("UPDATE events SET actor = 'mallory'")
        .execute(pool)
        .await;
    assert!(
        refused.is_err(),
        "the append-only trigger must refuse updates"
    );
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_are_append_only")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE events SET actor = 'mallory' WHERE event_id = $1")
        .bind(victim.event.event_id)
        .execute(pool)
        .await
        .unwrap();
    let report = verify_chain(store.as_ref(), |_| {}).await.unwrap();
    let found = report.first_break.expect("tampering must be detected");
    assert_eq!(found.global_position, 7);
    assert_eq!(found.event_id, victim.event.event_id.to_string());
    t.drop_schema().await;
}
