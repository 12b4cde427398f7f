//! The HTTP probe against a real server on loopback: redirects followed by hand with every hop
//! vetted, a redirect into the metadata address refused (not fetched), loops cut, and nothing secret in
//! what is kept.

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use vantage_probes::http::{MAX_REDIRECTS, probe_url};
use vantage_probes::tls::TlsRoots;
use vantage_tests::lab_guard;

async fn site() -> std::net::SocketAddr {
    let redirect = |to: &'static str, status: StatusCode| {
        move || async move { (status, [(header::LOCATION, to)]) }
    };
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                let mut headers = HeaderMap::new();
                headers.insert(
                    "strict-transport-security",
                    "max-age=63072000".parse().unwrap(),
                );
                headers.insert(
                    "content-security-policy",
                    "default-src 'self'".parse().unwrap(),
                );
                headers.insert("x-powered-by", "PHP/8.1.2".parse().unwrap());
                headers.insert(
                    "x-internal-token",
                    "internal-token-value-9f8e".parse().unwrap(),
                );
                headers.insert(
                    header::SET_COOKIE,
                    "session=TOPSECRET123; HttpOnly; Secure; SameSite=Strict"
                        .parse()
                        .unwrap(),
                );
                (headers, "<html><body>hello</body></html>")
            }),
        )
        .route(
            "/start",
            get(redirect("/middle", StatusCode::MOVED_PERMANENTLY)),
        )
        .route("/middle", get(redirect("/", StatusCode::FOUND)))
        .route(
            "/to-metadata",
            get(redirect(
                "http://169.254.169.254/latest/meta-data/",
                StatusCode::FOUND,
            )),
        )
        .route("/loop", get(redirect("/loop", StatusCode::FOUND)));
    vantage_tests::serve_http(app).await
}

fn url(address: std::net::SocketAddr, path: &str) -> url::Url {
    url::Url::parse(&format!("http://{address}{path}")).unwrap()
}

#[tokio::test]
async fn follows_redirects_and_keeps_only_what_is_public() {
    let address = site().await;
    let guard = lab_guard();
    let seen = probe_url(
        &guard,
        &TlsRoots::web_pki(),
        url(address, "/start"),
        &[address.ip()],
    )
    .await;
    let statuses: Vec<u16> = seen.hops.iter().map(|h| h.status).collect();
    assert_eq!(statuses, [301, 302, 200]);
    assert_eq!(seen.status, Some(200));
    assert_eq!(seen.final_url.as_deref(), Some(url(address, "/").as_str()));
    assert_eq!(
        seen.headers["strict-transport-security"],
        "max-age=63072000"
    );
    assert_eq!(
        seen.headers["content-security-policy"],
        "default-src 'self'"
    );
    assert_eq!(seen.headers["x-powered-by"], "PHP/8.1.2");
    assert!(seen.header_names.contains(&"x-internal-token".to_owned()));
    assert!(!seen.headers.contains_key("x-internal-token"));
    assert_eq!(seen.cookies.len(), 1);
    let cookie = &seen.cookies[0];
    assert_eq!(cookie.name, "session");
    assert!(cookie.http_only && cookie.secure);
    assert_eq!(cookie.same_site.as_deref(), Some("Strict"));
    assert_eq!(
        seen.body_bytes,
        Some("<html><body>hello</body></html>".len())
    );
    let stored = serde_json::to_string(&seen).unwrap();
    for secret in ["TOPSECRET123", "internal-token-value-9f8e", "hello"] {
        assert!(
            !stored.contains(secret),
            "{secret} leaked into the observation"
        );
    }
}

#[tokio::test]
async fn a_redirect_into_the_metadata_address_is_recorded_not_fetched() {
    let address = site().await;
    let seen = probe_url(
        &lab_guard(),
        &TlsRoots::web_pki(),
        url(address, "/to-metadata"),
        &[address.ip()],
    )
    .await;
    assert_eq!(seen.hops.len(), 1, "only the first response was fetched");
    assert_eq!(seen.hops[0].status, 302);
    let refused = seen.refused_redirect.expect("the hop is refused");
    assert!(refused.url.starts_with("http://169.254.169.254/"));
    assert!(
        refused.reason.contains("cloud metadata"),
        "{}",
        refused.reason
    );
    assert_eq!(seen.status, None);
}

#[tokio::test]
async fn redirect_loops_are_cut() {
    let address = site().await;
    let seen = probe_url(
        &lab_guard(),
        &TlsRoots::web_pki(),
        url(address, "/loop"),
        &[address.ip()],
    )
    .await;
    assert_eq!(seen.hops.len(), MAX_REDIRECTS + 1);
    assert!(seen.error.unwrap().contains("redirects"));
}

#[tokio::test]
async fn nothing_listening_is_an_observation_not_a_failure() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let seen = probe_url(
        &lab_guard(),
        &TlsRoots::web_pki(),
        url(closed, "/"),
        &[closed.ip()],
    )
    .await;
    assert_eq!(seen.error.as_deref(), Some("connection failed"));
    assert!(seen.hops.is_empty());
}

/// An HTTP site that redirects to its HTTPS twin (same host name, test CA): the chain crosses to
/// HTTPS, is followed there, and ruleset 2 judges the HTTPS response's HSTS.
#[tokio::test]
async fn redirects_to_https_are_followed_and_hsts_is_judged() {
    let ca = vantage_tests::tls::TestCa::new();
    let https = vantage_tests::tls::serve_https(
        Router::new().route(
            "/",
            get(|| async { ([("strict-transport-security", "max-age=300")], "secure") }),
        ),
        ca.leaf(&["127.0.0.1"], None),
    )
    .await;
    let target = format!("https://127.0.0.1:{}/", https.port());
    let http = vantage_tests::serve_http(Router::new().route(
        "/",
        get(move || {
            let target = target.clone();
            async move { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, target)]) }
        }),
    ))
    .await;
    let seen = probe_url(
        &lab_guard(),
        &TlsRoots::web_pki(),
        url(http, "/"),
        &[http.ip()],
    )
    .await;
    let statuses: Vec<u16> = seen.hops.iter().map(|h| h.status).collect();
    assert_eq!(statuses, [301, 200], "{:?}", seen.error);
    assert!(seen.final_url.as_deref().unwrap().starts_with("https://"));
    assert_eq!(seen.headers["strict-transport-security"], "max-age=300");

    let observed = vantage_tests::observation(0, &seen.url, seen.clone());
    let rules = vantage_tests::rule_ids("2", &seen.url, &[observed]);
    assert!(
        rules.contains(&"http.hsts-short-max-age".to_owned()),
        "{rules:?}"
    );
    assert!(
        !rules.contains(&"http.https-not-enforced".to_owned()),
        "{rules:?}"
    );
    assert!(
        !rules.contains(&"http.hsts-missing".to_owned()),
        "{rules:?}"
    );
}

/// A server that answers CORS preflights by reflecting any Origin with credentials: the preflight is
/// recorded, the rule fires, and the headers grade loses its 50 points.
#[tokio::test]
async fn a_preflight_that_reflects_any_origin_is_caught() {
    let app = Router::new().route(
        "/",
        get(|| async { "hello" }).options(|headers: HeaderMap| async move {
            let origin = headers
                .get("origin")
                .and_then(|o| o.to_str().ok())
                .unwrap_or("")
                .to_owned();
            (
                StatusCode::NO_CONTENT,
                [
                    ("access-control-allow-origin", origin),
                    ("access-control-allow-credentials", "true".to_owned()),
                    ("access-control-allow-methods", "GET, POST".to_owned()),
                ],
            )
        }),
    );
    let address = vantage_tests::serve_http(app).await;
    let seen = probe_url(
        &lab_guard(),
        &TlsRoots::web_pki(),
        url(address, "/"),
        &[address.ip()],
    )
    .await;
    let preflight = seen.cors_preflight.clone().expect("a preflight was sent");
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.allow_origin.as_deref(),
        Some(vantage_probes::http::FOREIGN_ORIGIN)
    );
    assert_eq!(preflight.allow_credentials.as_deref(), Some("true"));
    assert!(vantage_rules::grade::reflects_origin_with_credentials(
        &seen
    ));
    let grade = vantage_rules::grade::grade_headers(&seen).unwrap();
    let cors = grade
        .tests
        .iter()
        .find(|t| t.test == "cross-origin-resource-sharing")
        .unwrap();
    assert_eq!(cors.modifier, -50);
    let observed = vantage_tests::observation(0, &seen.url, seen.clone());
    let rules = vantage_tests::rule_ids("2", &seen.url, &[observed]);
    assert!(
        rules.contains(&"http.cors-reflects-any-origin".to_owned()),
        "{rules:?}"
    );
}

/// Politeness: however many fetches a scan (or several) wants at once, at most
/// `REQUESTS_PER_HOST` are in flight to one address.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_to_one_host_are_capped() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (now, max) = (in_flight.clone(), peak.clone());
    let app = Router::new().fallback(move || {
        let (now, max) = (now.clone(), max.clone());
        async move {
            let current = now.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(current, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            "ok"
        }
    });
    let address = vantage_tests::serve_http(app).await;
    let origin = url(address, "/");
    let guard = lab_guard();
    let roots = TlsRoots::web_pki();
    // Two scans' worth of fetches at once: the exposure checks of two origins-to-be and ten pages.
    let ips = [address.ip()];
    let pages = (0..10).map(|i| probe_url(&guard, &roots, url(address, &format!("/p{i}")), &ips));
    let (_, _, pages) = tokio::join!(
        vantage_probes::exposure::probe_exposure(&guard, &roots, &origin, address),
        vantage_probes::exposure::probe_exposure(&guard, &roots, &origin, address),
        futures::future::join_all(pages),
    );
    assert!(pages.iter().all(|p| p.status == Some(200)));
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= vantage_probes::http::REQUESTS_PER_HOST,
        "{peak} requests at once"
    );
    assert!(peak > 1, "requests still run in parallel up to the cap");
}

/// A scan of a domain records its HSTS preload state from the bundled list, dated, whatever the
/// profile; a lab name is on no list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanned_domain_records_its_hsts_preload_state() {
    use vantage_observations::Observation;
    use vantage_tests::lab::{Lab, Posture};
    let lab = Lab::start_with(&[Posture::GoodHttps]).await;
    let name = lab.site(Posture::GoodHttps).name();
    let (observed, _) = lab.scan(name).await;
    let preload: Vec<_> = observed
        .iter()
        .filter_map(|o| match &o.observation {
            Observation::HstsPreload(state) => Some((o.asset.as_str(), state)),
            _ => None,
        })
        .collect();
    assert_eq!(preload.len(), 1, "one per scanned name");
    let (asset, state) = preload[0];
    assert_eq!(asset, name);
    assert_eq!(state.host, name);
    assert_eq!(state.list_date, vantage_probes::hsts_preload::LIST_DATE);
    assert!(!state.preloaded());
}

/// The `Alt-Svc` a site sends, as the analysis summary reads it, against curl's own reading of the
/// same responses (its alt-svc cache file, curl 7.88 as Debian ships it). curl keeps only the
/// protocols it can speak (`h1`, `h2`, `h3`), so Vantage's list is compared after the same filter.
/// Two differences, each asserted: curl stops reading a header at its first malformed alternative
/// (Vantage skips that one alternative, and reads on), and curl 7.88 reads no IPv6 address as an
/// alternative's host (RFC 7838 allows one; newer curl reads it too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternative_services_are_read_as_curl_reads_them() {
    use vantage_rules::alt_svc::{AlternativeService, DEFAULT_MAX_AGE_SECONDS};
    const CASES: [(&str, &str); 7] = [
        ("/h3", r#"h3=":443"; ma=3600, h3-29=":443"; ma=3600"#),
        (
            "/elsewhere",
            r#"h2="alt.localhost:9443"; persist=1, h3=":8443""#,
        ),
        ("/clear", "clear"),
        ("/bad-max-age", r#"h3=":443"; ma=oops"#),
        ("/quoted-commas", r#"h3=":443"; note="a, b; c", h2=":8443""#),
        ("/malformed-middle", r#"h3=":443", bad=:1, h2=":8443""#),
        ("/ipv6-host", r#"h3="[::1]:443""#),
    ];
    let mut app = Router::new();
    for (path, value) in CASES {
        app = app.route(
            path,
            get(move || async move { ([("alt-svc", value)], "hi") }),
        );
    }
    let ca = vantage_tests::tls::TestCa::new();
    let leaf = ca.leaf(&["localhost"], None);
    let roots = TlsRoots::with_extra(vec![leaf.0[1].clone()]);
    let address = vantage_tests::tls::serve_https(app, leaf).await;
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), ca.pem()).unwrap();

    let mut seen_by_vantage = Vec::new();
    let mut seen_by_curl = Vec::new();
    for (path, _) in CASES {
        let url = url::Url::parse(&format!("https://localhost:{}{path}", address.port())).unwrap();
        let page = probe_url(&lab_guard(), &roots, url.clone(), &[address.ip()]).await;
        assert_eq!(page.status, Some(200), "{:?}", page.error);
        let observed = vantage_tests::observation(0, url.as_str(), page);
        let analysis = vantage_rules::analysis::analyze(&[observed]);
        let services: Vec<AlternativeService> = analysis.paths[0]
            .alternative_services
            .iter()
            .filter(|s| ["h1", "h2", "h3"].contains(&s.protocol.as_str()))
            .cloned()
            .collect();
        seen_by_vantage.push(services);
        seen_by_curl.push(curl_alt_svc(&url, address, ca_file.path()));
    }

    let place = |s: &AlternativeService| {
        (
            s.protocol.clone(),
            s.host.clone().unwrap_or_else(|| "localhost".into()),
            s.port,
            s.persist,
        )
    };
    let by_vantage: Vec<Vec<_>> = seen_by_vantage
        .iter()
        .map(|services| services.iter().map(place).collect())
        .collect();
    let by_curl: Vec<Vec<_>> = seen_by_curl
        .iter()
        .map(|services| services.iter().map(|(place, _)| place.clone()).collect())
        .collect();
    let h = |protocol: &str, host: &str, port: u16, persist: bool| {
        (protocol.to_owned(), host.to_owned(), port, persist)
    };
    let agreed = [
        vec![h("h3", "localhost", 443, false)],
        vec![
            h("h2", "alt.localhost", 9443, true),
            h("h3", "localhost", 8443, false),
        ],
        vec![],
        vec![h("h3", "localhost", 443, false)],
        vec![
            h("h3", "localhost", 443, false),
            h("h2", "localhost", 8443, false),
        ],
    ];
    assert_eq!(by_vantage[..5], agreed, "Vantage");
    assert_eq!(by_curl[..5], agreed, "curl");
    assert_eq!(
        (&by_vantage[5], &by_curl[5]),
        (
            &vec![
                h("h3", "localhost", 443, false),
                h("h2", "localhost", 8443, false)
            ],
            &vec![h("h3", "localhost", 443, false)]
        ),
        "Vantage reads past the malformed alternative; curl stops there"
    );
    assert_eq!(
        (&by_vantage[6], &by_curl[6]),
        (&vec![h("h3", "[::1]", 443, false)], &vec![]),
        "curl 7.88 reads no IPv6 address as a host"
    );

    // How long each may be used: curl writes an expiry, Vantage the max-age it is computed from.
    let ages: Vec<u64> = seen_by_vantage[..2]
        .iter()
        .flatten()
        .map(|s| s.max_age_seconds)
        .collect();
    assert_eq!(
        ages,
        [3600, DEFAULT_MAX_AGE_SECONDS, DEFAULT_MAX_AGE_SECONDS]
    );
    let curl_ages: Vec<i64> = seen_by_curl[..2]
        .iter()
        .flatten()
        .map(|(_, seconds_left)| *seconds_left)
        .collect();
    for (vantage, curl) in ages.iter().zip(&curl_ages) {
        assert!(
            (*vantage as i64 - curl).abs() <= 5,
            "max-age {vantage} s, curl's expiry {curl} s away"
        );
    }
}

/// What curl cached from one response's `Alt-Svc`: per alternative, (protocol, host, port,
/// persist) and the seconds until its expiry.
fn curl_alt_svc(
    url: &url::Url,
    address: std::net::SocketAddr,
    ca_file: &std::path::Path,
) -> Vec<((String, String, u16, bool), i64)> {
    let cache = tempfile::NamedTempFile::new().unwrap();
    let output = std::process::Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--output",
            "/dev/null",
            "--cacert",
        ])
        .arg(ca_file)
        .arg("--resolve")
        .arg(format!("localhost:{}:{}", address.port(), address.ip()))
        .arg("--alt-svc")
        .arg(cache.path())
        .arg(url.as_str())
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "{}",
        vantage_tests::process::printed(&output)
    );
    let now = chrono::Utc::now().naive_utc();
    std::fs::read_to_string(cache.path())
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            // h1 localhost 443 h3 localhost 443 "20261207 12:56:56" 0 0
            let (places, rest) = line.split_once('"').unwrap();
            let (expiry, flags) = rest.split_once('"').unwrap();
            let fields: Vec<&str> = places.split_whitespace().collect();
            let expiry = chrono::NaiveDateTime::parse_from_str(expiry, "%Y%m%d %H:%M:%S").unwrap();
            let persist = flags.split_whitespace().next() == Some("1");
            (
                (
                    fields[3].to_owned(),
                    fields[4].to_owned(),
                    fields[5].parse().unwrap(),
                    persist,
                ),
                (expiry - now).num_seconds(),
            )
        })
        .collect()
}
