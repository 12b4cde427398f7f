//! `vantage-bench webhooks`: webhook delivery throughput to a receiver on loopback.
//!
//! The real application runs with the delivery engine as `vantage serve` runs it (its lease, its
//! cursor, the SSRF guard at every attempt, Standard Webhooks signatures, every attempt recorded as
//! `WebhookDeliveryAttempted`). `--webhooks` webhooks subscribe to `scan.completed`; once the engine
//! is delivering (a test delivery arrived), `--scans` completed scans are appended and the clock
//! runs until the receiver has answered every delivery and every attempt is in the log. The
//! baseline, in the same run, is the same number of plain HTTP POSTs of a like body to the same
//! receiver at the same concurrency, from a client that signs and records nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::json;
use vantage_store::EventStore;
use vantage_tests::TestApp;
use vantage_tests::history::{self, SiteState};

use crate::Backend;

#[derive(Debug, clap::Args)]
pub struct WebhookBenchArgs {
    /// Which stores to measure.
    #[arg(long, value_enum, num_args = 1.., default_values = ["sqlite", "postgres"])]
    backend: Vec<Backend>,
    /// Webhooks subscribed to `scan.completed`.
    #[arg(long, default_value_t = 4)]
    webhooks: usize,
    /// Completed scans appended (each delivered to every webhook).
    #[arg(long, default_value_t = 2_500)]
    scans: usize,
    /// Attempts in flight at once (the engine's bound, and the baseline client's).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

/// A receiver on 127.0.0.1 that answers 204 to every POST and counts them; its port.
async fn receiver() -> anyhow::Result<(u16, Arc<AtomicUsize>)> {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |_body: axum::body::Bytes| {
            seen.fetch_add(1, Ordering::Relaxed);
            async { axum::http::StatusCode::NO_CONTENT }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((port, count))
}

/// Waits (at most `limit`) until `check` holds.
async fn until<F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + limit;
    while !check().await? {
        if Instant::now() > deadline {
            bail!("timed out: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Delivery attempts recorded in the log for `webhooks`.
async fn recorded_attempts(store: &dyn EventStore, webhooks: &[String]) -> anyhow::Result<usize> {
    let mut attempts = 0;
    for id in webhooks {
        let stream = vantage_store::StreamName::new(format!("webhook-{id}"))?;
        attempts += store
            .read_stream_after(&stream, 0)
            .await?
            .iter()
            .filter(|e| e.event.event_type == "WebhookDeliveryAttempted")
            .count();
    }
    Ok(attempts)
}

pub async fn run(args: WebhookBenchArgs) -> anyhow::Result<()> {
    if args.webhooks == 0 || args.scans == 0 || args.concurrency == 0 {
        bail!("give at least one webhook, one scan and a concurrency of one");
    }
    println!(
        "| store | webhooks | deliveries | concurrency | append (s) | all delivered and recorded (s) | deliveries/s | baseline plain POSTs/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for backend in &args.backend {
        let sqlite = vantage_tests::SqliteTestStore::new().await;
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(vantage_tests::PgTestStore::new().await),
        };
        let stores = match &pg {
            None => sqlite.app_stores().await,
            Some(pg) => pg.app_stores().await,
        };
        let mut app = TestApp::spawn_loopback(stores).await;
        app.start_outbound(
            vantage_outbound::webhooks::RetryPolicy {
                concurrency: args.concurrency,
                ..Default::default()
            },
            Duration::from_secs(60),
        );
        let (port, received) = receiver().await?;
        let mut webhooks = Vec::new();
        for _ in 0..args.webhooks {
            let created: serde_json::Value = app
                .client
                .post(app.url("/api/v1/webhooks"))
                .bearer_auth(&app.admin_key)
                .json(&json!({
                    "url": format!("http://hooks.example.net:{port}/hook"),
                    "event_filter": ["scan.completed"],
                }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            webhooks.push(created["id"].as_str().context("a webhook id")?.to_owned());
        }
        // The engine is delivering once a test delivery arrives.
        let tested = app
            .client
            .post(app.url(&format!("/api/v1/webhooks/{}/test", webhooks[0])))
            .bearer_auth(&app.admin_key)
            .send()
            .await?;
        if !tested.status().is_success() {
            bail!("the test delivery was refused: {}", tested.status());
        }
        until("the engine delivers", Duration::from_secs(60), || async {
            Ok(received.load(Ordering::Relaxed) == 1)
        })
        .await?;
        let store = app.stores.events.clone();
        until("the test is recorded", Duration::from_secs(60), || async {
            Ok(recorded_attempts(store.as_ref(), &webhooks).await? == 1)
        })
        .await?;

        let expected = args.scans * args.webhooks;
        let started = Instant::now();
        for n in 0..args.scans {
            history::append_completed_scan(
                store.as_ref(),
                "default",
                &format!("hooks{}.example.com", n % 100),
                &SiteState::default(),
            )
            .await;
        }
        let append_seconds = started.elapsed().as_secs_f64();
        until(
            "every delivery arrives",
            Duration::from_secs(3600),
            || async { Ok(received.load(Ordering::Relaxed) > expected) },
        )
        .await?;
        until(
            "every attempt is recorded",
            Duration::from_secs(600),
            || async { Ok(recorded_attempts(store.as_ref(), &webhooks).await? > expected) },
        )
        .await?;
        let seconds = started.elapsed().as_secs_f64();

        // The baseline: plain POSTs of a like body to the same receiver.
        let body = serde_json::to_vec(&json!({
            "type": "scan.completed",
            "timestamp": "2026-12-05T10:00:00.000000Z",
            "data": { "scan_id": uuid::Uuid::nil(), "target": "hooks1.example.com", "status": "completed",
                      "grade": "A", "score": 100, "findings": { "critical": 0, "high": 0, "medium": 0, "low": 1, "info": 2 } },
        }))?;
        let client = vantage_tests::http_client();
        let url = format!("http://127.0.0.1:{port}/hook");
        let baseline_started = Instant::now();
        let sent: Vec<bool> = futures::stream::iter(0..expected)
            .map(|_| {
                let request = client.post(&url).body(body.clone()).send();
                async move { request.await.is_ok_and(|r| r.status().is_success()) }
            })
            .buffer_unordered(args.concurrency)
            .collect()
            .await;
        let baseline_seconds = baseline_started.elapsed().as_secs_f64();
        if sent.iter().any(|ok| !ok) {
            bail!("a baseline POST failed");
        }
        println!(
            "| {backend:?} | {} | {expected} | {} | {append_seconds:.1} | {seconds:.1} | {:.0} | {:.0} |",
            args.webhooks,
            args.concurrency,
            expected as f64 / seconds,
            expected as f64 / baseline_seconds,
        );
        app.stop().await;
        if let Some(pg) = pg {
            pg.drop_schema().await;
        }
    }
    Ok(())
}
