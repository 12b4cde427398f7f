//! Scans run by the in-process workers, end to end: a request over HTTP, probes against real servers
//! on loopback (allow-listed explicitly), observations in the log, the scan completed.

use std::time::Duration;

use serde_json::{Value, json};
use vantage_store::StreamName;
use vantage_tests::TestApp;

/// A scanner trusting only the web PKI, with the services' guard.
fn scanner_for(services: &vantage_app::Services) -> vantage_worker::Scanner {
    vantage_worker::Scanner::new(
        services.guard.clone(),
        vantage_probes::tls::TlsRoots::web_pki(),
    )
}

async fn a_scan_runs_to_completion_with_tcp_observations(app: TestApp) {
    let site = vantage_tests::serve_http(axum::Router::new().route(
        "/",
        axum::routing::get(|| async { ([("server", "lab/1.0")], "hello") }),
    ))
    .await;
    let open = site.port();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let created: Value = app
        .client
        .post(app.url("/api/v1/scans"))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "target": format!("http://127.0.0.1:{open}/"), "ports": [open, closed] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let done = app.wait_for_scan(id, &["completed", "failed"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    // The API returns the grades, each with its algorithm version.
    assert_eq!(done["ruleset_version"], vantage_rules::RULESET_VERSION);
    assert_eq!(
        done["grades"]["headers"]["algorithm"],
        vantage_rules::OBSERVATORY_ALGORITHM
    );
    assert_eq!(done["grades"]["headers"]["grade"], "F");
    assert!(
        done["grades"]["tls"].is_null(),
        "this plain HTTP target speaks no TLS"
    );
    // Two TCP ports, a TLS handshake tried on the open one (it speaks none), one HTTP fetch, the
    // nine exposure checks of the origin, one classification.
    assert_eq!(done["observation_count"], 14);

    let events = app
        .services
        .store()
        .read_stream(&StreamName::new(format!("scan-{id}")).unwrap())
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types[..2], ["ScanRequested", "ScanStarted"]);
    assert_eq!(
        types[types.len() - 2..],
        ["ScanFinalizing", "ScanCompleted"]
    );
    assert!(
        types[2..types.len() - 2]
            .iter()
            .all(|t| *t == "ProbeObserved")
    );
    assert_eq!(types.len(), 18);
    assert!(events[1].metadata.actor.starts_with("worker:embedded-"));
    let completed = events.last().unwrap().payload.to_value().unwrap();
    assert_eq!(completed["ruleset_version"], vantage_rules::RULESET_VERSION);
    let observed: Vec<Value> = events
        .iter()
        .filter(|e| e.event_type == "ProbeObserved")
        .map(|e| e.payload.to_value().unwrap())
        .collect();
    let classified: Vec<&Value> = observed
        .iter()
        .filter(|o| o["probe"] == "classification")
        .collect();
    assert_eq!(classified.len(), 1);
    // A plain-text page without cookies, forms or API documents.
    assert_eq!(classified[0]["data"]["kind"], "unknown");
    assert_eq!(classified[0]["data"]["auth"], "none");
    assert_eq!(classified[0]["data"]["api_docs"], false);
    let http: Vec<&Value> = observed.iter().filter(|o| o["probe"] == "http").collect();
    assert_eq!(http.len(), 1);
    assert_eq!(http[0]["data"]["status"], 200);
    assert_eq!(http[0]["data"]["headers"]["server"], "lab/1.0");
    let mut states: Vec<(u64, String)> = observed
        .iter()
        .filter(|o| o["probe"] == "tcp")
        .map(|observed| {
            (
                observed["data"]["port"].as_u64().unwrap(),
                observed["data"]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    states.sort();
    let mut expected = vec![
        (u64::from(open), "open".to_owned()),
        (u64::from(closed), "closed".to_owned()),
    ];
    expected.sort();
    assert_eq!(states, expected);
    app.stop().await;
}

/// A scan whose only probe hangs (a tarpit) is cancelled: the worker returns at once, long before the
/// probe's own 3 s timeout, and nothing more is recorded.
async fn cancelling_stops_a_scan_whose_probes_hang<S>(store: S)
where
    S: vantage_store::EventStore + vantage_store::SideStore + Clone,
{
    use vantage_worker::{ScanJob, run_scan};
    let tarpit = vantage_tests::tarpit::Tarpit::start();
    let services = vantage_tests::lab_services(store);
    let tenant = vantage_domain::tenant::TenantId::default_tenant();
    let context = vantage_app::CommandContext::system(tenant.clone());
    let spec = vantage_tests::lab_spec(tarpit.address.port(), vec![tarpit.address.port()]);
    let scan_id = services
        .start_scan(&context, spec.clone())
        .await
        .unwrap()
        .unwrap();
    let job = ScanJob {
        scan_id,
        tenant,
        spec,
    };
    let sink = vantage_worker::embedded::PipelineSink::new(services.clone(), "w-test");
    let (cancel, cancelled) = tokio::sync::watch::channel(false);
    let scanner = vantage_worker::Scanner::new(
        services.guard.clone(),
        vantage_probes::tls::TlsRoots::web_pki(),
    );
    let worker =
        tokio::spawn(async move { run_scan(&job, "w-test", &scanner, &sink, cancelled).await });
    // Let the worker begin and get stuck in the tarpit.
    let stream = StreamName::new(format!("scan-{scan_id}")).unwrap();
    while services.store().read_stream(&stream).await.unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    services
        .command_scan(
            &context,
            scan_id,
            vantage_domain::scan::ScanCommand::Cancel {
                reason: Some("test".into()),
            },
        )
        .await
        .unwrap()
        .unwrap();
    cancel.send(true).unwrap();
    tokio::time::timeout(Duration::from_millis(1500), worker)
        .await
        .expect("the worker must stop at once, not when the hanging probe times out")
        .unwrap()
        .unwrap();
    let types: Vec<String> = services
        .store()
        .read_stream(&stream)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types, ["ScanRequested", "ScanStarted", "ScanCancelled"]);
    drop(tarpit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cancelling_stops_a_scan_whose_probes_hang() {
    let t = vantage_tests::SqliteTestStore::new().await;
    cancelling_stops_a_scan_whose_probes_hang(t.store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cancelling_stops_a_scan_whose_probes_hang() {
    let t = vantage_tests::PgTestStore::new().await;
    cancelling_stops_a_scan_whose_probes_hang(t.store.clone()).await;
    t.drop_schema().await;
}

vantage_tests::app_test_per_store!(spawn_lab; a_scan_runs_to_completion_with_tcp_observations);

/// Scans requested while no worker ran (a restart) are run when the workers start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_pick_up_scans_requested_before_they_started() {
    let t = vantage_tests::SqliteTestStore::new().await;
    let app = TestApp::spawn(t.app_stores().await).await;
    // The app serves reads and runs no workers. The scan is requested through services that allow
    // loopback, and nothing runs it until a worker pool starts on the same store.
    let site = vantage_tests::serve_http(
        axum::Router::new().route("/", axum::routing::get(|| async { "ok" })),
    )
    .await;
    let port = site.port();
    let lab_services = vantage_tests::lab_services(t.store.clone());
    let context =
        vantage_app::CommandContext::system(vantage_domain::tenant::TenantId::default_tenant());
    let spec = vantage_tests::lab_spec(port, vec![port]);
    let id = lab_services
        .start_scan(&context, spec)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.wait_for_scan(&id.to_string(), &["queued"]).await["status"],
        "queued"
    );
    // Now a worker pool starts and finds the queued scan in the log.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let pool = vantage_worker::embedded::EmbeddedWorkers::new(lab_services, 2);
    let workers = tokio::spawn(pool.run(async {
        let _ = stopped.await;
    }));
    let done = app
        .wait_for_scan(&id.to_string(), &["completed", "failed"])
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["observation_count"], 13,
        "one TCP, one TLS, one HTTP, nine exposure and one classification observation"
    );
    let _ = stop.send(());
    workers.await.unwrap().unwrap();
    app.stop().await;
}

/// The DNS probe against a real DNS server on loopback: every record type of SPEC §6, the mail-policy
/// names, CAA found at the closest ancestor, and NXDOMAIN told apart from "no records".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_observations_cover_addresses_mail_policy_and_caa() {
    use hickory_proto::rr::rdata::{A, CAA, MX, NS, TXT};
    use hickory_proto::rr::{Name, RData};
    let name = |n: &str| Name::from_ascii(n).unwrap();
    let dns = vantage_tests::dns::TestDns::start(vec![
        ("www.shop.example", RData::A(A([127, 0, 0, 1].into()))),
        (
            "www.shop.example",
            RData::TXT(TXT::new(vec![
                "v=spf1 include:_spf.mail.example -all".into(),
            ])),
        ),
        (
            "www.shop.example",
            RData::MX(MX::new(10, name("mx1.mail.example."))),
        ),
        ("www.shop.example", RData::NS(NS(name("ns1.shop.example.")))),
        (
            "_dmarc.www.shop.example",
            RData::TXT(TXT::new(vec![
                "v=DMARC1; p=reject; rua=mailto:d@shop.example".into(),
            ])),
        ),
        (
            "_smtp._tls.www.shop.example",
            RData::TXT(TXT::new(vec![
                "v=TLSRPTv1; rua=mailto:t@shop.example".into(),
            ])),
        ),
        (
            "shop.example",
            RData::CAA(CAA::new_issue(
                false,
                Some(name("letsencrypt.org.")),
                vec![],
            )),
        ),
    ])
    .await;
    let t = vantage_tests::SqliteTestStore::new().await;
    let services = vantage_tests::lab_services_with_dns(t.store.clone(), dns.address);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut spec = vantage_tests::lab_spec(closed, vec![closed]);
    spec.target = vantage_domain::target::ScanTarget::parse("https://www.shop.example/").unwrap();
    let scan_id = vantage_tests::scan_directly(&services, spec, &scanner_for(&services)).await;

    let events = services
        .store()
        .read_stream(&StreamName::new(format!("scan-{scan_id}")).unwrap())
        .await
        .unwrap();
    assert_eq!(events.last().unwrap().event_type, "ScanCompleted");
    let dns_seen: std::collections::BTreeMap<String, Value> = events
        .iter()
        .filter(|e| e.event_type == "ProbeObserved")
        .map(|e| e.payload.to_value().unwrap())
        .filter(|o| o["probe"] == "dns")
        .map(|o| (o["asset"].as_str().unwrap().to_owned(), o["data"].clone()))
        .collect();
    let records = |asset: &str| -> Vec<String> {
        let data = &dns_seen[asset];
        data["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(records("www.shop.example A"), ["127.0.0.1"]);
    assert_eq!(records("www.shop.example MX"), ["10 mx1.mail.example."]);
    assert_eq!(records("www.shop.example NS"), ["ns1.shop.example."]);
    assert!(records("www.shop.example TXT")[0].starts_with("v=spf1 include:_spf.mail.example"));
    assert!(records("_dmarc.www.shop.example TXT")[0].starts_with("v=DMARC1; p=reject"));
    assert!(records("_smtp._tls.www.shop.example TXT")[0].starts_with("v=TLSRPTv1"));
    // CAA is found at the closest ancestor that has it.
    assert_eq!(dns_seen["shop.example CAA"]["status"], "ok");
    assert!(records("shop.example CAA")[0].contains("letsencrypt.org"));
    // A known name without the type asked is "no records"; an unknown name is NXDOMAIN.
    assert_eq!(dns_seen["www.shop.example AAAA"]["status"], "no_records");
    assert_eq!(
        dns_seen["_mta-sts.www.shop.example TXT"]["status"],
        "nxdomain"
    );
    // And the TCP probe ran on the address the guard vetted.
    let tcp: Vec<Value> = events
        .iter()
        .map(|e| e.payload.to_value().unwrap())
        .filter(|o| o["probe"] == "tcp")
        .collect();
    assert_eq!(tcp.len(), 1);
    assert_eq!(tcp[0]["data"]["state"], "closed");
}

/// A server that accepts connections and never says a word: every probe times out on its own, and
/// the scan still completes, with what it saw, well inside its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_does_not_stall_the_scan() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection); // accepted, never answered, never closed
        }
    });
    let t = vantage_tests::SqliteTestStore::new().await;
    let services = vantage_tests::lab_services(t.store.clone());
    let tenant = vantage_domain::tenant::TenantId::default_tenant();
    let mut spec = vantage_tests::lab_spec(port, vec![port]);
    spec.profile = vantage_domain::target::Profile::Quick;
    let started = std::time::Instant::now();
    let scanner = scanner_for(&services);
    // The quick profile's deadline is 30 s; the probes' own timeouts end it sooner.
    let scan_id = tokio::time::timeout(
        Duration::from_secs(30),
        vantage_tests::scan_directly(&services, spec, &scanner),
    )
    .await
    .expect("the scan must end within its deadline");
    let view = services.scan(&tenant, scan_id).await.unwrap().unwrap();
    assert_eq!(view.status, vantage_domain::scan::ScanStatus::Completed);
    let events = services
        .store()
        .read_stream(&StreamName::new(format!("scan-{scan_id}")).unwrap())
        .await
        .unwrap();
    let http: Vec<Value> = events
        .iter()
        .filter(|e| e.event_type == "ProbeObserved")
        .map(|e| e.payload.to_value().unwrap())
        .filter(|o| o["probe"] == "http")
        .collect();
    // Either this fetch waited out its own timeout, or the host had already stopped answering.
    let error = http[0]["data"]["error"].as_str().unwrap();
    assert!(
        error == "timeout" || error == "skipped: the host stopped answering",
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    silent.abort();
}

/// MTA-STS advertised in DNS: the policy is fetched over HTTPS from the mta-sts host (vetted like any
/// other) and a policy in testing mode becomes a finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mta_sts_policies_are_fetched_and_judged() {
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::{A, TXT};
    let ca = vantage_tests::tls::TestCa::new();
    let policy = vantage_tests::tls::serve_https(
        axum::Router::new().route(
            "/.well-known/mta-sts.txt",
            axum::routing::get(|| async {
                "version: STSv1\nmode: testing\nmx: mx1.shop.example\nmax_age: 86400\n"
            }),
        ),
        ca.leaf(&["mta-sts.shop.example"], None),
    )
    .await;
    let dns = vantage_tests::dns::TestDns::start(vec![
        ("shop.example", RData::A(A([127, 0, 0, 1].into()))),
        (
            "_mta-sts.shop.example",
            RData::TXT(TXT::new(vec!["v=STSv1; id=20261123".into()])),
        ),
        ("mta-sts.shop.example", RData::A(A([127, 0, 0, 1].into()))),
    ])
    .await;
    let t = vantage_tests::SqliteTestStore::new().await;
    let services = vantage_tests::lab_services_with_dns(t.store.clone(), dns.address);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut spec = vantage_tests::lab_spec(closed, vec![closed]);
    spec.target = vantage_domain::target::ScanTarget::parse("shop.example").unwrap();
    let mut scanner = scanner_for(&services);
    scanner.mta_sts_port = policy.port();
    let scan_id = vantage_tests::scan_directly(&services, spec.clone(), &scanner).await;

    let observations: Vec<vantage_domain::scan::ProbeObserved> = services
        .store()
        .read_stream(&StreamName::new(format!("scan-{scan_id}")).unwrap())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "ProbeObserved")
        .map(|e| serde_json::from_str(e.payload.as_str()).unwrap())
        .collect();
    let policy_seen = observations
        .iter()
        .find(|o| o.asset == "https://mta-sts.shop.example/.well-known/mta-sts.txt")
        .expect("the policy was fetched");
    let vantage_domain::scan::Observation::MtaSts(policy) = &policy_seen.observation else {
        panic!("an MTA-STS observation: {policy_seen:?}");
    };
    assert_eq!(policy.mode.as_deref(), Some("testing"));
    assert_eq!(policy.max_age, Some(86400));
    assert_eq!(policy.mx[0], "mx1.shop.example");
    let rules = vantage_tests::rule_ids("2", spec.target.as_str(), &observations);
    assert!(
        rules.contains(&"email.mta-sts-not-enforced".to_owned()),
        "{rules:?}"
    );
    assert!(!rules.contains(&"email.mta-sts-policy-unavailable".to_owned()));
}

/// A feed resumed from the scans projection runs exactly the scans that have not ended — the one
/// the projection knows unfinished, then one requested after its checkpoint — and hears a cancel;
/// the log before the checkpoint is not read.
async fn a_feed_resumed_from_the_scans_projection_runs_only_unfinished_scans<S>(
    store: S,
    read: vantage_projections::ReadDb,
    settle: impl AsyncFn(),
) where
    S: vantage_store::EventStore + vantage_store::SideStore + Clone,
{
    use vantage_domain::scan::{Scan, ScanCommand};
    use vantage_worker::ScanJob;
    use vantage_worker::feed::{Dispatch, Resume, ScanFeed};
    let services = vantage_tests::lab_services(store.clone());
    let events: std::sync::Arc<dyn vantage_store::EventStore> = std::sync::Arc::new(store);
    let context =
        vantage_app::CommandContext::system(vantage_domain::tenant::TenantId::default_tenant());
    let spec = vantage_tests::lab_spec(9, vec![9]);
    let request = async || {
        services
            .start_scan(&context, spec.clone())
            .await
            .unwrap()
            .unwrap()
    };
    let done = request().await;
    for command in [
        ScanCommand::Begin {
            worker_id: "w".into(),
        },
        ScanCommand::Finalize,
        ScanCommand::Complete {
            ruleset_version: vantage_worker::RULESET_VERSION.into(),
        },
    ] {
        services
            .pipeline
            .execute::<Scan>(&vantage_app::scan_stream(done), &context, command)
            .await
            .unwrap()
            .unwrap();
    }
    let waiting = request().await;
    settle().await;
    vantage_projections::catch_up(events.clone(), &read)
        .await
        .unwrap();
    let checkpoint = events.head_position().await.unwrap();
    let later = request().await;
    settle().await;

    let (position, unfinished) = read.unfinished_scans().await.unwrap();
    assert_eq!(position, checkpoint, "the projection's checkpoint");
    let ids: Vec<_> = unfinished.iter().map(|scan| scan.scan_id).collect();
    assert_eq!(ids, vec![waiting], "only the scan that had not ended");
    let job = |scan_id| ScanJob {
        scan_id,
        tenant: context.tenant.clone(),
        spec: spec.clone(),
    };
    let resume = Resume {
        position,
        unfinished: unfinished
            .into_iter()
            .map(|scan| (scan.requested_position, job(scan.scan_id)))
            .collect(),
    };
    // The log before the checkpoint is not read: told of no unfinished scan, a feed names only the
    // scan requested after it.
    let told_nothing = Resume {
        position,
        unfinished: Vec::new(),
    };
    let mut blind = ScanFeed::start(events.clone(), told_nothing).await.unwrap();
    assert_eq!(blind.next().await.unwrap(), Dispatch::Run(job(later)));
    let mut feed = ScanFeed::start(events.clone(), resume).await.unwrap();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("the feed answers")
            .unwrap()
    };
    assert_eq!(next().await, Dispatch::Run(job(waiting)));
    assert_eq!(next().await, Dispatch::Run(job(later)));
    services
        .command_scan(&context, waiting, ScanCommand::Cancel { reason: None })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next().await, Dispatch::Stop(waiting));
    assert_ne!(done, waiting);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_feed_resumed_from_the_scans_projection_runs_only_unfinished_scans() {
    let t = vantage_tests::SqliteTestStore::new().await;
    let read = t.app_stores().await.read;
    a_feed_resumed_from_the_scans_projection_runs_only_unfinished_scans(
        t.store.clone(),
        read,
        async || {},
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_feed_resumed_from_the_scans_projection_runs_only_unfinished_scans() {
    let t = vantage_tests::PgTestStore::new().await;
    let read = t.app_stores().await.read;
    let store = t.store.clone();
    a_feed_resumed_from_the_scans_projection_runs_only_unfinished_scans(
        t.store.clone(),
        read,
        async || vantage_tests::settle(&store).await,
    )
    .await;
    t.drop_schema().await;
}
