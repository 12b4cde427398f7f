//! Released rulesets never change: a log written by an older release (`tests/fixtures`, rulesets 1
//! and 2 over the observation shapes of that release) replays, on SQLite and on PostgreSQL, to
//! byte-identical findings, grades and scores.

use serde_json::value::RawValue;
use serde_json::{Value, json};
use vantage_store::{
    EventMetadata, EventStore, ExpectedVersion, JsonPayload, NewEvent, StreamName,
};

const LOG: &str = include_str!("fixtures/ruleset-1-2-log.jsonl");
const VERDICTS: &str = include_str!("fixtures/ruleset-1-2-verdicts.json");

/// One line of the fixture log (a `RecordedEvent` as JSON), read without `flatten` so the payload
/// keeps its exact text.
#[derive(serde::Deserialize)]
struct LogLine {
    event_id: uuid::Uuid,
    stream: String,
    stream_version: u64,
    event_type: String,
    schema_version: u32,
    occurred_at: chrono::DateTime<chrono::Utc>,
    tenant: String,
    actor: String,
    request_id: Option<String>,
    correlation_id: uuid::Uuid,
    causation_id: Option<uuid::Uuid>,
    payload: Box<RawValue>,
}

/// Appends every event of the fixture log, in its order, to `store`; returns the scan ids.
async fn load(store: &dyn EventStore) -> Vec<String> {
    let mut scans = Vec::new();
    for line in LOG.lines() {
        let event: LogLine = serde_json::from_str(line).unwrap();
        if event.event_type == "ScanRequested" {
            scans.push(event.stream.trim_start_matches("scan-").to_owned());
        }
        let stream = StreamName::new(event.stream).unwrap();
        store
            .append(
                &stream,
                ExpectedVersion::Exact(event.stream_version - 1),
                vec![NewEvent {
                    event_id: event.event_id,
                    event_type: event.event_type,
                    schema_version: event.schema_version,
                    occurred_at: event.occurred_at,
                    payload: JsonPayload::from_text(event.payload.get().to_owned()).unwrap(),
                    metadata: EventMetadata {
                        tenant: event.tenant,
                        actor: event.actor,
                        request_id: event.request_id,
                        correlation_id: event.correlation_id,
                        causation_id: event.causation_id,
                    },
                }],
            )
            .await
            .unwrap();
    }
    scans
}

/// What the read side holds for `scan`, in the fixture's form.
async fn verdict(read: &vantage_projections::ReadDb, scan: &str) -> Value {
    let doc = read.scan("default", scan).await.unwrap().unwrap();
    let findings: Vec<_> = read
        .findings("default", scan, &Default::default(), None)
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|f| f.finding.finding)
        .collect();
    json!({
        "scan_id": scan,
        "target": doc.spec.target,
        "ruleset_version": doc.ruleset_version,
        "grades": doc.grades,
        "score": doc.score,
        "counts": doc.findings,
        "findings": findings,
    })
}

async fn replays_to_identical_verdicts(stores: vantage_tests::AppStores) {
    let scans = load(stores.events.as_ref()).await;
    let app = vantage_tests::TestApp::spawn(stores.clone()).await;
    app.caught_up().await;
    let expected: Vec<Value> = serde_json::from_str(VERDICTS).unwrap();
    assert_eq!(scans.len(), expected.len());
    assert!(
        expected.iter().any(|v| v["ruleset_version"] == "1")
            && expected.iter().any(|v| v["ruleset_version"] == "2"),
        "the fixture holds scans of both released rulesets"
    );
    for (scan, expected) in scans.iter().zip(&expected) {
        let replayed = verdict(&stores.read, scan).await;
        // Byte-identical: compare the serialised text, not just the values.
        assert_eq!(
            serde_json::to_string(&replayed).unwrap(),
            serde_json::to_string(expected).unwrap(),
            "scan {scan} of {} (ruleset {}) replays to a different verdict",
            expected["target"],
            expected["ruleset_version"],
        );
        // The overall grade of a released ruleset is the grade chart's letter of its score.
        let overall = stores
            .read
            .scan("default", scan)
            .await
            .unwrap()
            .unwrap()
            .overall
            .unwrap();
        let score = u32::try_from(expected["score"].as_u64().unwrap()).unwrap();
        assert_eq!(overall.method, vantage_rules::PENALTY_METHOD);
        assert_eq!(
            overall.grade.as_deref(),
            Some(vantage_rules::grade::letter(score))
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ruleset_1_and_2_log_replays_to_identical_verdicts_on_sqlite() {
    let t = vantage_tests::SqliteTestStore::new().await;
    replays_to_identical_verdicts(t.app_stores().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ruleset_1_and_2_log_replays_to_identical_verdicts_on_postgres() {
    let t = vantage_tests::PgTestStore::new().await;
    replays_to_identical_verdicts(t.app_stores().await).await;
    t.drop_schema().await;
}
