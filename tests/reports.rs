//! What Vantage hands to people and tools outside it, end to end against the lab: the report in
//! every format (SARIF and the inventories checked against their official JSON Schemas, JUnit
//! against a JUnit XSD with `xmllint`, the HTML rendered in headless Chromium, the PDF read back
//! with `pdftotext`), the signed compliance package (checked by our verifier and its signature by
//! OpenSSL, then tampered with in every way the issue names), the trust badge, and the CI gate.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use vantage_reports::package;
use vantage_reports::signing::{PublicKey, SigningKey};
use vantage_tests::TestApp;
use vantage_tests::browser;
use vantage_tests::lab::{Lab, Posture};
use vantage_tests::process::vantage_binary;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn third_party(name: &str) -> Value {
    let path = repo_root().join("schemas/third-party").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Resolves the CycloneDX schema's references to its sibling files from the committed copies;
/// anything else is refused (no schema is ever fetched).
struct CommittedSchemas;

impl jsonschema::Retrieve for CommittedSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        match uri.as_str() {
            "http://cyclonedx.org/schema/spdx.schema.json" => Ok(third_party("spdx.schema.json")),
            "http://cyclonedx.org/schema/jsf-0.82.schema.json" => {
                Ok(third_party("jsf-0.82.schema.json"))
            }
            other => Err(format!("no committed copy of {other}").into()),
        }
    }
}

fn assert_valid(schema: &str, instance: &Value) {
    let validator = jsonschema::options()
        .with_retriever(CommittedSchemas)
        .build(&third_party(schema))
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{schema}: {errors:#?}");
}

fn assert_valid_junit(xml: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), xml).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(repo_root().join("schemas/third-party/junit-10.xsd"))
        .arg(file.path())
        .output()
        .expect("xmllint runs (Debian package libxml2-utils)");
    assert!(
        out.status.success(),
        "JUnit XML does not validate: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The text of a PDF as `pdftotext` reads it, whitespace collapsed.
fn pdf_text(pdf: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg(file.path())
        .arg("-")
        .output()
        .expect("pdftotext runs (Debian package poppler-utils)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `GET path` with the admin key: the status, content type and body.
async fn fetch(app: &TestApp, path: &str) -> (u16, String, Vec<u8>) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

async fn reports_show_the_verdict_in_every_format(app: TestApp, lab: Lab, label: &str) {
    let site = lab.site(Posture::PlainHttp).name();
    let first = app.completed_scan(site, "manual").await;
    let id = app.completed_scan(site, "manual").await;
    app.caught_up().await;

    // JSON: the data every other format shows.
    let (status, content_type, body) =
        fetch(&app, &format!("/api/v1/scans/{id}/report?format=json")).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let report: Value = serde_json::from_slice(&body).unwrap();
    let grade = report["overall"]["grade"].as_str().unwrap().to_owned();
    let findings = report["findings"].as_array().unwrap().clone();
    assert!(!findings.is_empty(), "the plain-HTTP site has findings");
    assert_eq!(report["diff"]["previous_scan_id"], first.as_str());
    assert_eq!(report["trend"].as_array().unwrap().len(), 2);
    let fingerprints: std::collections::BTreeSet<&str> = findings
        .iter()
        .map(|f| f["fingerprint"].as_str().unwrap())
        .collect();
    // OutScope's analysis summary: on the scan resource (folded from the log) and in the report
    // (from the read models), the same, from one derivation.
    let (status, content_type, body) = fetch(&app, &format!("/api/v1/scans/{id}")).await;
    let resource: Value = serde_json::from_slice(&body).unwrap();
    vantage_tests::contract::check(
        "GET",
        &format!("/api/v1/scans/{id}"),
        status,
        &content_type,
        &resource,
    )
    .unwrap();
    let analysis = &resource["analysis"];
    assert_eq!(analysis, &report["analysis"]);
    assert_eq!(analysis["reachable"], true);
    assert_eq!(analysis["speaks_http"], true);
    assert_eq!(analysis["analyzable"], true);
    let ports: Vec<(u64, bool)> = analysis["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["port"].as_u64().unwrap(),
                p["tcp_open"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        ports.contains(&(80, true)) && ports.contains(&(443, false)),
        "{ports:?}"
    );
    let root = analysis["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["url"] == format!("http://{site}/"))
        .unwrap_or_else(|| panic!("the root page is summarised: {analysis}"));
    assert_eq!(root["path"], "/");
    assert_eq!(root["status_code"], 200);
    assert!(
        root["content_type"]
            .as_str()
            .unwrap()
            .starts_with("text/html")
    );
    let ruleset = report["ruleset_version"].as_str().unwrap();
    let rules = vantage_rules::rule_catalog(ruleset).unwrap();

    // SARIF 2.1.0, valid against OASIS's schema: one result per finding, fingerprints carried.
    let (status, content_type, body) =
        fetch(&app, &format!("/api/v1/scans/{id}/report?format=sarif")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/sarif+json")
    );
    let sarif: Value = serde_json::from_slice(&body).unwrap();
    assert_valid("sarif-schema-2.1.0.json", &sarif);
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), findings.len());
    let carried: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|r| {
            r["partialFingerprints"]["vantageFingerprint/v1"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(carried, fingerprints);
    assert_eq!(
        sarif["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        rules.len()
    );

    // JUnit, valid against the XSD: a test case per rule, a failure per rule with a high finding.
    let (status, content_type, body) = fetch(
        &app,
        &format!("/api/v1/scans/{id}/report?format=junit&fail_on=high"),
    )
    .await;
    assert_eq!((status, content_type.as_str()), (200, "application/xml"));
    let junit = String::from_utf8(body).unwrap();
    assert_valid_junit(&junit);
    assert_eq!(junit.matches("<testcase ").count(), rules.len());
    let failing_rules: std::collections::BTreeSet<&str> = findings
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("high" | "critical")))
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        junit.matches("<failure ").count(),
        failing_rules.len(),
        "{junit}"
    );

    // HTML, rendered by Chromium: the grade and the findings count are in the rendered DOM.
    let (status, content_type, body) = fetch(&app, &format!("/api/v1/scans/{id}/report")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    let artifacts = browser::artifacts_dir();
    let page = artifacts.join(format!("report-{label}.html"));
    std::fs::write(&page, &body).unwrap();
    let url = format!("file://{}", page.display());
    let dom = browser::rendered_dom(&url);
    assert!(
        dom.contains(&format!(
            r#"data-grade="{grade}" title="Overall grade">{grade}</div>"#
        )),
        "the rendered page shows grade {grade}"
    );
    assert!(dom.contains(&format!(
        r#"<section id="findings" data-count="{}">"#,
        findings.len()
    )));
    assert_eq!(
        dom.matches(r#"<article class="finding""#).count(),
        findings.len()
    );
    assert!(dom.contains("<svg"), "the trend chart is drawn");
    assert!(
        dom.contains(r#"<section id="analysis">"#),
        "the analysis summary is shown"
    );
    browser::screenshot(
        &url,
        &artifacts.join(format!("report-{label}.png")),
        1200,
        2400,
    );

    // PDF: pdftotext reads the grade and every finding's title.
    let (status, content_type, body) =
        fetch(&app, &format!("/api/v1/scans/{id}/report?format=pdf")).await;
    assert_eq!((status, content_type.as_str()), (200, "application/pdf"));
    let text = pdf_text(&body);
    assert!(text.contains(&format!("Overall grade {grade}")), "{text}");
    for finding in &findings {
        let title = finding["title"].as_str().unwrap();
        assert!(text.contains(title), "the PDF lacks {title:?}: {text}");
    }

    // The technology inventory, valid against CycloneDX 1.5 and SPDX 2.3, naming what the site
    // disclosed with the evidence that named it.
    let (status, content_type, body) =
        fetch(&app, &format!("/api/v1/scans/{id}/sbom?format=cyclonedx")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/vnd.cyclonedx+json")
    );
    let bom: Value = serde_json::from_slice(&body).unwrap();
    assert_valid("bom-1.5.schema.json", &bom);
    let components = bom["components"].as_array().unwrap();
    for (name, version, header) in [
        ("Apache", "2.4.1", "server: Apache/2.4.1 (Unix)"),
        ("PHP", "5.6.40", "x-powered-by: PHP/5.6.40"),
    ] {
        let component = components
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} is in the inventory: {bom}"));
        assert_eq!(component["version"], version);
        let evidence = component["evidence"]["identity"]["methods"][0]["value"]
            .as_str()
            .unwrap();
        assert_eq!(evidence, format!("header {header}"));
    }
    let (status, content_type, body) =
        fetch(&app, &format!("/api/v1/scans/{id}/sbom?format=spdx")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/spdx+json")
    );
    let spdx: Value = serde_json::from_slice(&body).unwrap();
    assert_valid("spdx-schema.json", &spdx);
    assert!(
        spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "PHP" && p["versionInfo"] == "5.6.40")
    );

    // The compliance package: signed by the published key, and everything in it checks.
    let public = app.published_signing_key().await;
    let (status, content_type, archive) = fetch(
        &app,
        &format!("/api/v1/scans/{id}/compliance-package?framework=owasp-asvs"),
    )
    .await;
    assert_eq!((status, content_type.as_str()), (200, "application/gzip"));
    let verified = package::verify(&archive, Some(&public)).unwrap();
    assert_eq!(verified.manifest.frameworks, ["owasp-asvs"]);
    assert_eq!(
        verified.manifest.subject,
        package::Subject::Scan {
            scan_id: id.clone()
        }
    );
    assert_eq!(
        verified.findings,
        findings.len(),
        "recomputed from the events"
    );
    let (status, _, _) = fetch(
        &app,
        &format!("/api/v1/scans/{id}/compliance-package?framework=nope"),
    )
    .await;
    assert_eq!(status, 422);

    // The badge: 404 until the owner opts in, then the grade, rendered by Chromium; 404 again after.
    let badge_url = app.url(&format!("/badge/{site}.svg"));
    let anonymous = reqwest::Client::new();
    assert_eq!(
        anonymous.get(&badge_url).send().await.unwrap().status(),
        404
    );
    let set = |enabled: bool| {
        app.client
            .put(app.url(&format!("/api/v1/domains/{site}/badge")))
            .bearer_auth(&app.admin_key)
            .json(&json!({ "enabled": enabled }))
            .send()
    };
    let on = set(true).await.unwrap();
    assert_eq!(on.status(), 200);
    assert_eq!(
        on.json::<Value>().await.unwrap()["badge_url"],
        format!("/badge/{site}.svg")
    );
    app.caught_up().await;
    let badge = anonymous.get(&badge_url).send().await.unwrap();
    assert_eq!(badge.status(), 200);
    assert_eq!(badge.headers()["content-type"], "image/svg+xml");
    assert_eq!(badge.headers()["cache-control"], "public, max-age=300");
    let etag = badge.headers()["etag"].to_str().unwrap().to_owned();
    let svg = badge.text().await.unwrap();
    assert!(svg.contains(&format!(">{grade}</text></g></svg>")), "{svg}");
    let again = anonymous
        .get(&badge_url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let dom = browser::rendered_dom(&badge_url);
    assert!(
        dom.contains(r#"id="grade""#) && dom.contains(&format!(">{grade}</text>")),
        "Chromium renders the badge with grade {grade}: {dom}"
    );
    browser::screenshot(
        &badge_url,
        &artifacts.join(format!("badge-{label}.png")),
        200,
        40,
    );
    assert_eq!(set(false).await.unwrap().status(), 200);
    app.caught_up().await;
    assert_eq!(
        anonymous.get(&badge_url).send().await.unwrap().status(),
        404
    );
    let refused = app
        .client
        .put(app.url("/api/v1/domains/https:%2F%2Fx.example%2F/badge"))
        .bearer_auth(&app.admin_key)
        .json(&json!({ "enabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reports_show_the_verdict_in_every_format() {
    let lab = Lab::start_with(&[Posture::PlainHttp]).await;
    let t = vantage_tests::SqliteTestStore::new().await;
    let app = TestApp::spawn_on_lab(t.app_stores().await, &lab).await;
    reports_show_the_verdict_in_every_format(app, lab, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reports_show_the_verdict_in_every_format() {
    let lab = Lab::start_with(&[Posture::PlainHttp]).await;
    let t = vantage_tests::PgTestStore::new().await;
    let app = TestApp::spawn_on_lab(t.app_stores().await, &lab).await;
    reports_show_the_verdict_in_every_format(app, lab, "postgres").await;
    t.drop_schema().await;
}

// ---- the compliance package from the command line, and tampering --------------------------------

/// The files of a package, in archive order.
fn unpack(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    tar.entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

fn pack(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (name, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        archive
            .append_data(&mut header, name, bytes.as_slice())
            .unwrap();
    }
    archive.into_inner().unwrap().finish().unwrap()
}

fn file<'a>(files: &'a mut [(String, Vec<u8>)], name: &str) -> &'a mut Vec<u8> {
    &mut files.iter_mut().find(|(n, _)| n == name).unwrap().1
}

/// Rewrites the manifest's digests of the content files and signs it again with `key`: a package
/// whose files agree with its manifest, as someone holding the key could make it.
fn reseal(files: &mut [(String, Vec<u8>)], key: &SigningKey) {
    use sha2::Digest;
    let contents: Vec<(String, Vec<u8>)> = files.to_vec();
    let mut manifest: Value = serde_json::from_slice(file(files, package::MANIFEST)).unwrap();
    for entry in manifest["files"].as_array_mut().unwrap() {
        let bytes = &contents
            .iter()
            .find(|(n, _)| entry["path"] == n.as_str())
            .unwrap()
            .1;
        entry["sha256"] = json!(hex::encode(sha2::Sha256::digest(bytes)));
        entry["bytes"] = json!(bytes.len());
    }
    manifest["public_key_sha256"] = json!(key.public_key().fingerprint());
    let mut text = serde_json::to_vec_pretty(&manifest).unwrap();
    text.push(b'\n');
    *file(files, package::SIGNATURE) = key.sign(&text);
    *file(files, package::MANIFEST) = text;
    *file(files, package::PUBLIC_KEY) = key.public_key().to_pem().into_bytes();
}

fn first_problem(archive: &[u8], key: &PublicKey) -> String {
    package::verify(archive, Some(key))
        .expect_err("the package must not verify")
        .problems
        .remove(0)
}

fn vantage(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(vantage_binary())
        .args(args)
        .env("VANTAGE_LOG", "error")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_verify_package_and_every_tampering_is_named() {
    let lab = Lab::start_with(&[Posture::PlainHttp]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = vantage_store_sqlite::SqliteEventStore::open(&dir.path().join("vantage.db"))
        .await
        .unwrap();
    let services = vantage_app::Services::new(
        std::sync::Arc::new(store.clone()),
        std::sync::Arc::new(store),
        std::sync::Arc::new(vantage_app::SystemClock),
        lab.guard(),
    );
    let spec = vantage_domain::scan::ScanSpec {
        target: vantage_domain::target::ScanTarget::parse(lab.site(Posture::PlainHttp).name())
            .unwrap(),
        profile: vantage_domain::target::Profile::Quick,
        ..lab_spec()
    };
    let scan_id = vantage_tests::scan_directly(&services, spec, &lab.scanner()).await;
    let scan = scan_id.to_string();
    let output = dir.path().join("package.tar.gz");

    // Export from the data directory (no server running), then verify against the server's key.
    let out = vantage(&[
        "export".as_ref(),
        scan.as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
        "--framework".as_ref(),
        "pci-dss".as_ref(),
        "-o".as_ref(),
        output.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&format!("wrote {}", output.display()))
    );
    let key =
        SigningKey::from_pem(&std::fs::read_to_string(dir.path().join("signing-key.pem")).unwrap())
            .unwrap();
    let public = key.public_key();
    let public_pem = dir.path().join("public.pem");
    std::fs::write(&public_pem, public.to_pem()).unwrap();
    let verify = |path: &Path| {
        vantage(&[
            "verify-package".as_ref(),
            path.as_os_str(),
            "--public-key".as_ref(),
            public_pem.as_os_str(),
        ])
    };
    let out = verify(&output);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified"));

    // OpenSSL, an independent Ed25519 implementation, accepts the manifest's signature.
    let archive = std::fs::read(&output).unwrap();
    let files = unpack(&archive);
    let unpacked = tempfile::tempdir().unwrap();
    for (name, bytes) in &files {
        std::fs::write(unpacked.path().join(name), bytes).unwrap();
    }
    let openssl = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
        .arg(unpacked.path().join(package::PUBLIC_KEY))
        .arg("-in")
        .arg(unpacked.path().join(package::MANIFEST))
        .arg("-sigfile")
        .arg(unpacked.path().join(package::SIGNATURE))
        .output()
        .unwrap();
    assert!(
        openssl.status.success(),
        "openssl: {}{}",
        String::from_utf8_lossy(&openssl.stdout),
        String::from_utf8_lossy(&openssl.stderr)
    );
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "manifest.json",
            "manifest.sig",
            "signing-key.pem",
            "events.jsonl",
            "chain.jsonl",
            "findings.json",
            "coverage.json",
            "report.html"
        ]
    );
    let manifest: Value = serde_json::from_slice(&files[0].1).unwrap();
    assert_eq!(manifest["frameworks"], json!(["pci-dss"]));
    assert_follows_package_schemas(&files);

    // Flipping one byte of any file fails, naming that file (a byte is added to an empty one:
    // chain.jsonl is empty when no other stream wrote while the scan ran).
    for (index, (name, bytes)) in files.iter().enumerate() {
        let mut tampered = files.clone();
        let mut changed = bytes.clone();
        if changed.is_empty() {
            changed.push(b'\n');
        } else {
            let at = changed.len() / 2;
            changed[at] ^= 0x01;
        }
        tampered[index].1 = changed;
        let problem = first_problem(&pack(&tampered), &public);
        assert!(
            problem.contains(name.as_str()),
            "flipping a byte of {name}: {problem}"
        );
    }
    // …and the command says so with exit 1.
    let mut tampered = files.clone();
    file(&mut tampered, package::EVENTS)[10] ^= 0x01;
    let bad = dir.path().join("tampered.tar.gz");
    std::fs::write(&bad, pack(&tampered)).unwrap();
    let out = verify(&bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("events.jsonl"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Altering one event, even with every digest recomputed and the manifest signed again with the
    // server's own key, fails on that event.
    let mut altered = files.clone();
    let events = String::from_utf8(file(&mut altered, package::EVENTS).clone()).unwrap();
    let mut lines: Vec<String> = events.lines().map(str::to_owned).collect();
    let (line, event_id) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["event_type"] == "ProbeObserved" && l.contains("PHP/5.6.40"))
                .then(|| (i, v["event_id"].as_str().unwrap().to_owned()))
        })
        .expect("an observation of the X-Powered-By header");
    lines[line] = lines[line].replace("PHP/5.6.40", "PHP/8.3.0");
    *file(&mut altered, package::EVENTS) = (lines.join("\n") + "\n").into_bytes();
    reseal(&mut altered, &key);
    let problem = first_problem(&pack(&altered), &public);
    assert!(
        problem.contains(&format!("events.jsonl line {}", line + 1)) && problem.contains(&event_id),
        "{problem}"
    );

    // A package signed by another key fails against the expected key, naming the key file.
    let mut impostor = files.clone();
    let other = SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
    reseal(&mut impostor, &other);
    let consistent = package::verify(&pack(&impostor), None);
    assert!(consistent.is_ok(), "consistent in itself: {consistent:?}");
    let problem = first_problem(&pack(&impostor), &public);
    assert!(problem.starts_with("signing-key.pem:"), "{problem}");
    assert!(
        problem.contains(&other.public_key().fingerprint()),
        "{problem}"
    );
    let forged = dir.path().join("forged.tar.gz");
    std::fs::write(&forged, pack(&impostor)).unwrap();
    let out = verify(&forged);
    assert_eq!(out.status.code(), Some(1));

    // A domain over a period: every completed scan in it, each its own verified chain segment.
    let spec = vantage_domain::scan::ScanSpec {
        target: vantage_domain::target::ScanTarget::parse(lab.site(Posture::PlainHttp).name())
            .unwrap(),
        profile: vantage_domain::target::Profile::Quick,
        ..lab_spec()
    };
    vantage_tests::scan_directly(&services, spec, &lab.scanner()).await;
    let period = dir.path().join("period.tar.gz");
    let out = vantage(&[
        "export".as_ref(),
        "--domain".as_ref(),
        lab.site(Posture::PlainHttp).name().as_ref(),
        "--since".as_ref(),
        "2026-01-01".as_ref(),
        "--until".as_ref(),
        "2100-01-01T00:00:00Z".as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
        "-o".as_ref(),
        period.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified = package::verify(&std::fs::read(&period).unwrap(), Some(&public)).unwrap();
    assert_eq!(verified.manifest.segments.len(), 2);
    assert!(matches!(
        verified.manifest.subject,
        package::Subject::Domain { .. }
    ));
    assert_follows_package_schemas(&unpack(&std::fs::read(&period).unwrap()));
    let out = vantage(&[
        "export".as_ref(),
        "--domain".as_ref(),
        lab.site(Posture::PlainHttp).name().as_ref(),
        "--since".as_ref(),
        "2090-01-01".as_ref(),
        "--until".as_ref(),
        "2100-01-01".as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no completed scan"));

    // Bad input: one plain sentence and exit 1.
    let out = vantage(&["verify-package".as_ref(), "/nonexistent.tar.gz".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: cannot read"));
    let out = vantage(&[
        "export".as_ref(),
        "not-a-scan".as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a scan id"));
}

/// The committed `schemas/package/` files are the ones the package types generate.
#[test]
fn package_schemas_are_committed() {
    vantage_tests::assert_committed_schemas(
        &repo_root().join("schemas/package"),
        package::schemas(),
    );
}

/// Every file of a package that has a schema in `schemas/package/` follows it (line by line for
/// the JSON Lines files).
fn assert_follows_package_schemas(files: &[(String, Vec<u8>)]) {
    let schema = |name: &str| -> jsonschema::Validator {
        let path = repo_root().join("schemas/package").join(name);
        jsonschema::validator_for(
            &serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap(),
        )
        .unwrap()
    };
    for (file, name, lines) in [
        (package::MANIFEST, "manifest.schema.json", false),
        (package::FINDINGS, "findings.schema.json", false),
        (package::COVERAGE, "coverage.schema.json", false),
        (package::EVENTS, "events.jsonl.line.schema.json", true),
        (package::CHAIN, "chain.jsonl.line.schema.json", true),
    ] {
        let validator = schema(name);
        let bytes = &files.iter().find(|(n, _)| n == file).unwrap().1;
        let documents: Vec<Value> = if lines {
            bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect()
        } else {
            vec![serde_json::from_slice(bytes).unwrap()]
        };
        for document in documents {
            let errors: Vec<String> = validator
                .iter_errors(&document)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{file} against {name}: {errors:?}");
        }
    }
}

fn lab_spec() -> vantage_domain::scan::ScanSpec {
    vantage_tests::lab_spec(80, vec![80, 443])
}

// ---- the CI gate ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_and_fail_on_exit_by_the_findings() {
    let lab = Lab::start_with(&[Posture::PlainHttp, Posture::GoodHttps]).await;
    let t = vantage_tests::SqliteTestStore::new().await;
    let app = TestApp::spawn_on_lab(t.app_stores().await, &lab).await;
    let gate = |scan: String| {
        let (base, key) = (app.base.clone(), app.admin_key.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(vantage_binary())
                .args(["gate", &scan, "--server", &base, "--poll-seconds", "1"])
                .env("VANTAGE_API_KEY", key)
                .output()
                .unwrap()
        })
    };
    let bad = app
        .completed_scan(lab.site(Posture::PlainHttp).name(), "post_deploy")
        .await;
    let out = gate(bad).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("gate failed:"));
    let good = app
        .completed_scan(lab.site(Posture::GoodHttps).name(), "post_deploy")
        .await;
    let out = gate(good).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("gate passed:"));
    let manual = app
        .completed_scan(lab.site(Posture::GoodHttps).name(), "manual")
        .await;
    let out = gate(manual).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no release gate"));

    // `vantage scan --fail-on`: exit 3 with a finding at or above the threshold, SARIF on stdout.
    let scan = |target: &str, extra: &[&str]| {
        Command::new(vantage_binary())
            .args([
                "scan",
                target,
                "--profile",
                "quick",
                "--allow-cidr",
                "127.0.0.0/8",
            ])
            .args(["--resolver", &lab.dns.address.to_string()])
            .arg("--extra-ca")
            .arg(lab.ca_pem.path())
            .args(extra)
            .env("VANTAGE_LOG", "error")
            .output()
            .unwrap()
    };
    let site = lab.site(Posture::PlainHttp).name().to_owned();
    let out = scan(&site, &["--fail-on", "high", "--format", "sarif"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid("sarif-schema-2.1.0.json", &sarif);
    assert!(!sarif["runs"][0]["results"].as_array().unwrap().is_empty());
    let out = scan(&site, &["--format", "junit"]);
    assert_eq!(out.status.code(), Some(0), "no --fail-on, no failing exit");
    assert_valid_junit(&String::from_utf8(out.stdout).unwrap());
    let good = lab.site(Posture::GoodHttps).name().to_owned();
    let out = scan(&good, &["--fail-on", "high"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.stop().await;
}

// ---- no secret a site exposes leaves the scanner ----------------------------------------------

/// What the lab sites expose that must never be repeated: the values in an exposed `.env`, and a
/// session cookie's value (as `=value`, which no hash or id contains).
const SECRETS: [&str; 3] = ["lab-secret-value", "sk_lab_123", "=3f2a9c"];

fn assert_no_secret(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} contains {secret:?}");
    }
}

/// A site exposing a `.env` with credentials and setting a session cookie is scanned; none of
/// those values appears in any API answer (every report format, inventories, the compliance
/// package's files, observations, findings, the audit trail), in the stored log or read-model
/// files, or in `vantage scan`'s output and debug log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_a_site_exposes_reaches_any_output() {
    let lab = Lab::start_with(&[Posture::ExposedBehindRedirect, Posture::PlainHttp]).await;
    let t = vantage_tests::SqliteTestStore::new().await;
    let files = t.path().parent().unwrap().to_owned();
    let app = TestApp::spawn_on_lab(t.app_stores().await, &lab).await;
    let exposed = app
        .completed_scan(lab.site(Posture::ExposedBehindRedirect).name(), "manual")
        .await;
    let plain = app
        .completed_scan(lab.site(Posture::PlainHttp).name(), "manual")
        .await;
    app.caught_up().await;
    let findings = app
        .get_json(&format!("/api/v1/scans/{exposed}/findings"))
        .await;
    assert!(
        findings["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"].as_str().unwrap().contains("env")),
        "the exposed .env is a finding: {findings}"
    );
    for id in [&exposed, &plain] {
        for path in [
            format!("/api/v1/scans/{id}"),
            format!("/api/v1/scans/{id}/observations"),
            format!("/api/v1/scans/{id}/findings"),
            format!("/api/v1/scans/{id}/summary"),
            format!("/api/v1/scans/{id}/history"),
            format!("/api/v1/scans/{id}/report?format=html"),
            format!("/api/v1/scans/{id}/report?format=pdf"),
            format!("/api/v1/scans/{id}/report?format=json"),
            format!("/api/v1/scans/{id}/report?format=sarif"),
            format!("/api/v1/scans/{id}/report?format=junit"),
            format!("/api/v1/scans/{id}/sbom?format=cyclonedx"),
            format!("/api/v1/scans/{id}/sbom?format=spdx"),
            "/api/v1/audit/events?limit=100".to_owned(),
            "/api/v1/dashboard/command-center".to_owned(),
            "/api/v1/notifications".to_owned(),
        ] {
            let (status, _, body) = fetch(&app, &path).await;
            assert_eq!(status, 200, "{path}");
            assert_no_secret(&path, &body);
        }
        let (status, _, archive) =
            fetch(&app, &format!("/api/v1/scans/{id}/compliance-package")).await;
        assert_eq!(status, 200);
        for (name, bytes) in unpack(&archive) {
            assert_no_secret(&format!("package file {name}"), &bytes);
        }
    }
    // What is stored: the log and the read models, byte for byte (WAL files too).
    for entry in std::fs::read_dir(&files).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("vantage.db") || name.starts_with("readmodels.db") {
            assert_no_secret(
                &format!("stored file {name}"),
                &std::fs::read(&path).unwrap(),
            );
        }
    }
    app.stop().await;

    // `vantage scan`, with its debug log.
    let out = Command::new(vantage_binary())
        .args([
            "scan",
            lab.site(Posture::ExposedBehindRedirect).name(),
            "--profile",
            "quick",
        ])
        .args([
            "--allow-cidr",
            "127.0.0.0/8",
            "--resolver",
            &lab.dns.address.to_string(),
        ])
        .arg("--extra-ca")
        .arg(lab.ca_pem.path())
        .args(["--format", "json"])
        .env("VANTAGE_LOG", "debug")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"observations\""));
    assert_no_secret("vantage scan's output", &out.stdout);
    assert_no_secret("vantage scan's debug log", &out.stderr);
}
