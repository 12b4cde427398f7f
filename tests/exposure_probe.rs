//! The exposure probe against a deliberately leaky site on loopback, and the findings ruleset 2
//! derives from it: what is exposed is reported, what it contained is not.

use axum::Router;
use axum::routing::get;
use vantage_domain::scan::ProbeObserved;
use vantage_observations::exposure::{ExposureCheck, ExposureObservation};
use vantage_probes::exposure::probe_exposure;
use vantage_probes::tls::TlsRoots;
use vantage_rules::{ScanFacts, assess};
use vantage_tests::lab_guard;

/// The checks as a worker records them.
fn observed(seen: &[ExposureObservation]) -> Vec<ProbeObserved> {
    seen.iter()
        .enumerate()
        .map(|(i, o)| vantage_tests::observation(i as u128, &o.url, o.clone()))
        .collect()
}

async fn leaky_site() -> std::net::SocketAddr {
    let app = Router::new()
        .route("/", get(|| async { ([("content-type", "text/html")], "<html><head><title>Index of /</title></head></html>") }))
        .route("/.git/HEAD", get(|| async { "ref: refs/heads/main\n" }))
        .route(
            "/.env",
            get(|| async { "APP_ENV=production\nDB_PASSWORD=hunter2-do-not-leak\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI\n" }),
        )
        .route("/server-status", get(|| async { "<html><h1>Apache Server Status for shop</h1></html>" }))
        .route("/openapi.json", get(|| async { r#"{"openapi":"3.1.0","info":{"title":"shop"}}"# }))
        .route("/robots.txt", get(|| async { "User-agent: *\nDisallow: /admin\n" }));
    vantage_tests::serve_http(app).await
}

#[tokio::test]
async fn every_exposure_is_observed_and_becomes_a_finding() {
    let address = leaky_site().await;
    let origin = url::Url::parse(&format!("http://{address}/")).unwrap();
    let seen = probe_exposure(&lab_guard(), &TlsRoots::web_pki(), &origin, address).await;
    let found = |check: ExposureCheck| seen.iter().find(|o| o.check == check).unwrap();
    for check in [
        ExposureCheck::GitHead,
        ExposureCheck::EnvFile,
        ExposureCheck::ServerStatus,
        ExposureCheck::DirectoryListing,
        ExposureCheck::OpenApi,
        ExposureCheck::RobotsTxt,
    ] {
        assert!(found(check).found, "{check:?} not detected");
    }
    for check in [
        ExposureCheck::SecurityTxt,
        ExposureCheck::Swagger,
        ExposureCheck::ApiDocsPage,
    ] {
        assert!(!found(check).found, "{check:?} detected on a 404");
        assert_eq!(found(check).status, Some(404));
    }
    let vantage_observations::exposure::ExposureDetails::EnvFile { variables, secrets } =
        &found(ExposureCheck::EnvFile).details
    else {
        panic!("the .env file is described");
    };
    assert_eq!(*variables, 3);
    let kinds: Vec<&str> = secrets.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["password", "aws_secret_key"]);
    assert_eq!(
        serde_json::to_value(&found(ExposureCheck::RobotsTxt).details).unwrap()["disallow"][0],
        "/admin"
    );

    let observations = observed(&seen);
    let facts = ScanFacts {
        tenant: "acme",
        target: origin.as_str(),
        observations: &observations,
    };
    let findings = assess("2", &facts).unwrap().findings;
    let mut rules: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            "exposure.api-docs-public",
            "exposure.directory-listing",
            "exposure.env-file",
            "exposure.git-repository",
            "exposure.security-txt-missing",
            "exposure.server-status",
        ]
    );
    assert!(
        assess("1", &facts).unwrap().findings.is_empty(),
        "ruleset 1 has no exposure rules"
    );
    let everything = format!(
        "{}{}",
        serde_json::to_string(&seen).unwrap(),
        serde_json::to_string(&findings).unwrap()
    );
    for secret in ["hunter2-do-not-leak", "wJalrXUtnFEMI"] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}

#[tokio::test]
async fn security_txt_expiry_is_judged() {
    let site = |body: &'static str| {
        vantage_tests::serve_http(Router::new().route(
            "/.well-known/security.txt",
            get(move || async move { body }),
        ))
    };
    let run = |address: std::net::SocketAddr| async move {
        let origin = url::Url::parse(&format!("http://{address}/")).unwrap();
        let seen = probe_exposure(&lab_guard(), &TlsRoots::web_pki(), &origin, address).await;
        let observations = observed(&seen);
        vantage_tests::rule_ids("2", origin.as_str(), &observations)
    };
    let current =
        site("Contact: mailto:security@shop.example\nExpires: 2999-01-01T00:00:00Z\n").await;
    let expired =
        site("Contact: mailto:security@shop.example\nExpires: 2020-01-01T00:00:00Z\n").await;
    let no_expiry = site("Contact: mailto:security@shop.example\n").await;
    assert!(
        !run(current)
            .await
            .contains(&"exposure.security-txt-invalid".to_owned())
    );
    assert!(
        run(expired)
            .await
            .contains(&"exposure.security-txt-invalid".to_owned())
    );
    assert!(
        run(no_expiry)
            .await
            .contains(&"exposure.security-txt-invalid".to_owned())
    );
    assert!(
        !run(current)
            .await
            .contains(&"exposure.security-txt-missing".to_owned())
    );
}

/// Checks follow a redirect that stays on the site (up to three hops) and judge where it ends; a
/// redirect to another site is recorded and not followed.
#[tokio::test]
async fn redirects_are_followed_on_the_site_and_recorded_off_it() {
    use axum::http::{StatusCode, header};
    let moved =
        |to: &'static str| move || async move { (StatusCode::FOUND, [(header::LOCATION, to)]) };
    let app = Router::new()
        .route("/.git/HEAD", get(moved("/repo/.git/HEAD")))
        .route("/repo/.git/HEAD", get(moved("/deeper/.git/HEAD")))
        .route(
            "/deeper/.git/HEAD",
            get(|| async { "ref: refs/heads/main\n" }),
        )
        .route("/.env", get(moved("http://elsewhere.example/.env")))
        .route("/server-status", get(moved("/a")))
        .route("/a", get(moved("/b")))
        .route("/b", get(moved("/c")))
        .route("/c", get(moved("/d")))
        .route(
            "/d",
            get(|| async { "<html><h1>Apache Server Status for shop</h1></html>" }),
        );
    let address = vantage_tests::serve_http(app).await;
    let origin = url::Url::parse(&format!("http://{address}/")).unwrap();
    let seen = probe_exposure(&lab_guard(), &TlsRoots::web_pki(), &origin, address).await;
    let check = |check: ExposureCheck| seen.iter().find(|o| o.check == check).unwrap();

    let git = check(ExposureCheck::GitHead);
    assert!(git.found, "{git:?}");
    assert_eq!(git.status, Some(200));
    assert_eq!(git.redirects.len(), 2);
    assert_eq!(
        git.final_url.as_deref(),
        Some(format!("http://{address}/deeper/.git/HEAD").as_str())
    );
    assert!(git.not_followed.is_none());

    let env = check(ExposureCheck::EnvFile);
    assert!(!env.found);
    assert_eq!(
        env.status,
        Some(302),
        "the redirect itself is what was judged"
    );
    let off = env
        .not_followed
        .as_ref()
        .expect("the off-site redirect is recorded");
    assert_eq!(off.url, "http://elsewhere.example/.env");
    assert!(off.reason.contains("leaves the site"), "{}", off.reason);
    assert!(env.redirects.is_empty());

    // Four hops are more than a check follows: the third redirect is where it stops.
    let status = check(ExposureCheck::ServerStatus);
    assert!(!status.found);
    assert_eq!(status.status, Some(302));
    assert_eq!(
        status.redirects.len(),
        vantage_observations::exposure::MAX_EXPOSURE_REDIRECTS
    );

    // Ruleset 3 names the response it judged.
    let observations = observed(&seen);
    let facts = ScanFacts {
        tenant: "acme",
        target: origin.as_str(),
        observations: &observations,
    };
    let findings = assess("3", &facts).unwrap().findings;
    let git_finding = findings
        .iter()
        .find(|f| f.rule_id == "exposure.git-repository")
        .unwrap();
    assert_eq!(
        git_finding.asset,
        format!("http://{address}/deeper/.git/HEAD")
    );
    assert!(!findings.iter().any(|f| f.rule_id == "exposure.env-file"));
}
