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
    regrades_without_rescanning(&app, &scans, &expected).await;
    app.stop().await;
}

/// `?ruleset=` on the replayed scans: their own ruleset gives the stored verdict, ruleset 3 the new
/// one, from the same stored observations; an unknown ruleset is refused.
async fn regrades_without_rescanning(
    app: &vantage_tests::TestApp,
    scans: &[String],
    expected: &[Value],
) {
    let get = |path: String| {
        let request = app.client.get(app.url(&path)).bearer_auth(&app.admin_key);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    // The plain-HTTP-only site, typed as a name and completed with ruleset 2.
    let (index, _) = expected
        .iter()
        .enumerate()
        .find(|(_, v)| v["target"] == "plain-http.example" && v["ruleset_version"] == "2")
        .unwrap();
    let scan = &scans[index];
    let rules = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, stored) = get(format!("/api/v1/scans/{scan}/findings")).await;
    assert_eq!(status, 200);
    assert_eq!(stored["ruleset_version"], "2");
    let (_, same) = get(format!("/api/v1/scans/{scan}/findings?ruleset=2")).await;
    assert_eq!(
        same, stored,
        "regrading under its own ruleset changes nothing"
    );
    let (status, regraded) = get(format!("/api/v1/scans/{scan}/findings?ruleset=3")).await;
    assert_eq!(status, 200, "{regraded}");
    assert_eq!(regraded["ruleset_version"], "3");
    assert!(
        rules(&regraded).contains(&"http.no-https".to_owned()),
        "{regraded}"
    );
    assert!(!rules(&stored).contains(&"http.no-https".to_owned()));
    let (_, latest) = get(format!("/api/v1/scans/{scan}/findings?ruleset=latest")).await;
    assert_eq!(latest["ruleset_version"], vantage_rules::RULESET_VERSION);
    // Rulesets 4 and 5 add rules of observations this old scan has none of (cipher suites,
    // DNSSEC, mail); ruleset 6 also judges its DNS answers: the name has no IPv6 address.
    let mut latest_rules = rules(&latest);
    latest_rules.sort();
    let mut expected_rules = rules(&regraded);
    expected_rules.push("dns.ipv6-missing".to_owned());
    expected_rules.sort();
    assert_eq!(latest_rules, expected_rules, "{latest}");
    let (status, summary) = get(format!("/api/v1/scans/{scan}/summary?ruleset=3")).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["ruleset_version"], "3");
    assert_eq!(summary["completed_with_ruleset"], "2");
    assert_eq!(summary["grade"], "F");
    assert_eq!(summary["overall"]["method"], vantage_rules::CAPPED_METHOD);
    assert!(summary["diff"].is_null());
    let (_, stored_summary) = get(format!("/api/v1/scans/{scan}/summary")).await;
    assert_eq!(stored_summary["ruleset_version"], "2");
    assert_eq!(
        stored_summary["grade"],
        expected[index]["score"]
            .as_u64()
            .map(|s| vantage_rules::grade::letter(u32::try_from(s).unwrap()))
            .unwrap()
    );
    let (status, refused) = get(format!("/api/v1/scans/{scan}/findings?ruleset=9")).await;
    assert_eq!(status, 422);
    assert_eq!(refused["errors"][0]["field"], "ruleset");
    // The stored verdicts are untouched by regrading.
    let (_, again) = get(format!("/api/v1/scans/{scan}/findings")).await;
    assert_eq!(again, stored);
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
