//! The command pipeline under contention: commands racing on one aggregate's stream are decided again
//! on a version conflict, so none is lost and none is applied twice.

use std::sync::Arc;

use vantage_app::{CommandContext, Services, SystemClock};
use vantage_domain::scope::{Scope, Scopes};
use vantage_domain::tenant::TenantId;
use vantage_store::{EventStore, SideStore, StreamName};

async fn racing_commands_on_one_stream_all_land(
    events: Arc<dyn EventStore>,
    idempotency: Arc<dyn SideStore>,
) {
    const RACERS: usize = 16;
    let services = Services::new(
        events.clone(),
        idempotency,
        Arc::new(SystemClock),
        vantage_tests::offline_guard(),
    );
    let tenant = TenantId::parse("race").unwrap();
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let services = services.clone();
            let tenant = tenant.clone();
            tokio::spawn(async move {
                services
                    .issue_api_key(
                        &CommandContext::system(tenant),
                        &format!("key {i}"),
                        Scopes::new([Scope::ScanRead]).unwrap(),
                    )
                    .await
            })
        })
        .collect();
    let mut issued = Vec::new();
    let mut reported = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(accepted) => {
                issued.push(accepted.expect("the domain accepts every key").token.key_id)
            }
            Err(vantage_app::AppError::Contention(_)) => reported += 1,
            Err(other) => panic!("{other}"),
        }
    }
    let stream = events
        .read_stream(&StreamName::new("apikeys-race").unwrap())
        .await
        .unwrap();
    // The invariant: what was reported as accepted is in the log once; nothing else is.
    assert_eq!(stream.len(), issued.len());
    let versions: Vec<u64> = stream.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, (1..=stream.len() as u64).collect::<Vec<_>>());
    // And with jittered back-off, sixteen racers all get through.
    assert_eq!(reported, 0, "{reported} of {RACERS} commands gave up");
    for key_id in issued {
        let recorded = stream
            .iter()
            .filter(|e| e.payload.as_str().contains(&key_id.to_string()))
            .count();
        assert_eq!(recorded, 1, "key {key_id} recorded {recorded} times");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_racing_commands_on_one_stream_all_land() {
    let t = vantage_tests::SqliteTestStore::new().await;
    racing_commands_on_one_stream_all_land(Arc::new(t.store.clone()), Arc::new(t.store.clone()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_racing_commands_on_one_stream_all_land() {
    let t = vantage_tests::PgTestStore::new().await;
    racing_commands_on_one_stream_all_land(Arc::new(t.store.clone()), Arc::new(t.store.clone()))
        .await;
    t.drop_schema().await;
}
