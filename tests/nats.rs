//! Distributed scanning over a real NATS JetStream: the core's bridge in this process and real
//! `vantage worker` processes. A worker killed mid-scan, a job that exhausts its deliveries, and a
//! cancellation that must reach the worker.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vantage_domain::ids::ScanId;
use vantage_store::{StoredEvent, StreamName};
use vantage_tests::tarpit::Tarpit;
use vantage_worker::nats::{NatsError, NatsTopology, run_bridge};

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// One test's set-up: its own subject prefix and streams, a SQLite store, the core's bridge.
struct Lab {
    prefix: String,
    topology: NatsTopology,
    client: async_nats::Client,
    services: vantage_app::Services,
    _store: vantage_tests::SqliteTestStore,
    stop: tokio::sync::oneshot::Sender<()>,
    bridge: tokio::task::JoinHandle<Result<(), NatsError>>,
    workers: Vec<(String, Child)>,
}

impl Lab {
    async fn start() -> Self {
        let prefix = format!("vt{}", &uuid::Uuid::now_v7().simple().to_string()[16..]);
        let topology = NatsTopology::new(&prefix).unwrap();
        let client = async_nats::connect(nats_url())
            .await
            .expect("NATS JetStream must be reachable at NATS_URL for these tests");
        let store = vantage_tests::SqliteTestStore::new().await;
        let services = vantage_tests::lab_services(store.store.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let bridge = tokio::spawn(run_bridge(
            services.clone(),
            client.clone(),
            topology.clone(),
            vantage_worker::feed::from_log_start(),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            prefix,
            topology,
            client,
            services,
            _store: store,
            stop,
            bridge,
            workers: Vec::new(),
        }
    }

    /// Starts a `vantage worker` process named `id` (2 s ack wait), given the server the way a
    /// cluster's nodes are: a comma-separated list (here the same server twice).
    fn worker(&mut self, id: &str, max_deliver: u32) {
        let child = Command::new(vantage_tests::process::vantage_binary())
            .args([
                "worker",
                "--nats-url",
                &format!("{0}, {0}", nats_url()),
                "--nats-prefix",
                &self.prefix,
            ])
            .args(["--worker-id", id, "--max-deliver", &max_deliver.to_string()])
            .args(["--ack-wait-seconds", "2", "--allow-cidr", "127.0.0.0/8"])
            .args(["--resolver", "127.0.0.1:9"])
            .env("VANTAGE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.workers.push((id.to_owned(), child));
    }

    fn kill(&mut self, id: &str) {
        let index = self.workers.iter().position(|(w, _)| w == id).unwrap();
        let (_, mut child) = self.workers.remove(index);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Requests a scan of `target_port` probing `ports`.
    async fn scan(&self, target_port: u16, ports: Vec<u16>) -> ScanId {
        let spec = vantage_tests::lab_spec(target_port, ports);
        self.services
            .start_scan(&context(), spec)
            .await
            .unwrap()
            .unwrap()
    }

    async fn events(&self, scan: ScanId) -> Vec<StoredEvent> {
        let stream = StreamName::new(format!("scan-{scan}")).unwrap();
        self.services.store().read_stream(&stream).await.unwrap()
    }

    /// Waits (at most `seconds`) for an event of `kind` and returns it.
    async fn wait_for(&self, scan: ScanId, kinds: &[&str], seconds: u64) -> StoredEvent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        loop {
            let events = self.events(scan).await;
            if let Some(event) = events
                .iter()
                .find(|e| kinds.contains(&e.event_type.as_str()))
            {
                return event.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {kinds:?} event: {:?}",
                events
                    .iter()
                    .map(|e| e.event_type.clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) {
        for (_, mut child) in self.workers {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.stop.send(());
        let _ = self.bridge.await;
        let js = async_nats::jetstream::new(self.client);
        self.topology.delete_streams(&js).await.unwrap();
    }
}

fn context() -> vantage_app::CommandContext {
    vantage_app::CommandContext::system(vantage_domain::tenant::TenantId::default_tenant())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_worker_s_scan_completes_once_on_the_other() {
    let mut lab = Lab::start().await;
    lab.worker("a", 5);
    lab.worker("b", 5);
    // A target whose scan takes a while: one port is a tarpit (3 s per attempt).
    let tarpit = Tarpit::start();
    let site = vantage_tests::serve_http(
        axum::Router::new().route("/", axum::routing::get(|| async { "ok" })),
    )
    .await;
    let scan = lab
        .scan(site.port(), vec![site.port(), tarpit.address.port()])
        .await;
    // Whoever started it is killed at once.
    let started = lab.wait_for(scan, &["ScanStarted"], 20).await;
    lab.kill(started.metadata.actor.trim_start_matches("worker:"));

    lab.wait_for(scan, &["ScanCompleted", "ScanFailed"], 40)
        .await;
    // Let any late duplicate arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let done = lab.events(scan).await;
    let count = |kind: &str| done.iter().filter(|e| e.event_type == kind).count();
    assert_eq!(count("ScanCompleted"), 1, "completed exactly once");
    assert_eq!(count("ScanFailed"), 0);
    let starters: HashSet<String> = done
        .iter()
        .filter(|e| e.event_type == "ScanStarted")
        .map(|e| e.metadata.actor.clone())
        .collect();
    assert_eq!(
        starters.len(),
        2,
        "the other worker took the job over: {starters:?}"
    );
    let observation_ids: Vec<String> = done
        .iter()
        .filter(|e| e.event_type == "ProbeObserved")
        .map(|e| {
            e.payload.to_value().unwrap()["observation_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let unique: HashSet<&String> = observation_ids.iter().collect();
    assert_eq!(
        unique.len(),
        observation_ids.len(),
        "an observation was recorded twice"
    );
    assert!(observation_ids.len() >= 3);
    lab.finish().await;
    drop(tarpit);
}

/// With `--max-deliver 2`, a job whose first worker dies is not run a second time: it is dead-lettered
/// and the scan fails with a reason, so nothing waits forever on a job that keeps killing workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_that_exhausts_its_deliveries_is_dead_lettered() {
    let mut lab = Lab::start().await;
    lab.worker("first", 2);
    let tarpit = Tarpit::start();
    let scan = lab
        .scan(tarpit.address.port(), vec![tarpit.address.port()])
        .await;
    lab.wait_for(scan, &["ScanStarted"], 20).await;
    lab.kill("first");
    lab.worker("second", 2);
    let failed = lab.wait_for(scan, &["ScanFailed"], 30).await;
    let reason = failed.payload.to_value().unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("no worker completed the scan"), "{reason}");
    assert_eq!(failed.metadata.actor, "worker:second");
    assert!(
        !lab.events(scan)
            .await
            .iter()
            .any(|e| e.event_type == "ScanCompleted")
    );
    lab.finish().await;
    drop(tarpit);
}

/// Cancelling a scan a NATS worker is running: the bridge broadcasts it, the worker stops its probes
/// and acknowledges the job, and nobody runs the scan again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_reaches_the_worker() {
    let mut lab = Lab::start().await;
    lab.worker("only", 5);
    let tarpit = Tarpit::start();
    let scan = lab
        .scan(tarpit.address.port(), vec![tarpit.address.port()])
        .await;
    lab.wait_for(scan, &["ScanStarted"], 20).await;
    lab.services
        .command_scan(
            &context(),
            scan,
            vantage_domain::scan::ScanCommand::Cancel { reason: None },
        )
        .await
        .unwrap()
        .unwrap();
    // Longer than the tarpit probe (3 s) and the ack wait (2 s): a worker that kept going, or a
    // redelivered job, would have shown by now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let seen: Vec<String> = lab
        .events(scan)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        seen,
        ["ScanRequested", "ScanStarted", "ScanCancelled"],
        "{seen:?}"
    );
    // What the worker sent: only its Begin. A worker that ignored the cancellation would also have
    // sent the tarpit's observation, Finalize and Complete (which the scan would refuse).
    let js = async_nats::jetstream::new(lab.client.clone());
    let mut results = js.get_stream(lab.topology.results_stream()).await.unwrap();
    assert_eq!(results.info().await.unwrap().state.messages, 1);
    lab.finish().await;
    drop(tarpit);
}

/// A scan that keeps content samples, run by a `vantage worker` process: the sample crosses NATS to
/// the bridge, which seals it before it is recorded; it opens through the application and its bytes
/// are nowhere in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_s_content_sample_is_sealed_by_the_core() {
    const MARKER: &str = "sampled-over-nats-7f3a";
    let mut lab = Lab::start().await;
    lab.worker("sampler", 5);
    let site = vantage_tests::serve_http(
        axum::Router::new().route("/", axum::routing::get(|| async { MARKER })),
    )
    .await;
    let spec = vantage_domain::scan::ScanSpec {
        content_sample: Some(vantage_domain::content::ContentSampling::new(7).unwrap()),
        ..vantage_tests::lab_spec(site.port(), vec![site.port()])
    };
    let scan = lab
        .services
        .start_scan(&context(), spec)
        .await
        .unwrap()
        .unwrap();
    lab.wait_for(scan, &["ScanCompleted"], 30).await;
    let events = lab.events(scan).await;
    assert!(
        events.iter().any(|e| e.event_type == "ContentSampleKept"),
        "the sample was recorded"
    );
    for event in &events {
        assert!(
            !event.payload.as_str().contains(MARKER),
            "{} holds the sample in the clear",
            event.event_type
        );
    }
    let tenant = vantage_domain::tenant::TenantId::default_tenant();
    let vantage_app::ContentRead::Samples(kept) =
        lab.services.content_samples(&tenant, scan).await.unwrap()
    else {
        panic!("the samples are readable");
    };
    assert!(kept.samples.iter().any(|s| s.sample == MARKER), "{kept:?}");
    lab.finish().await;
}
