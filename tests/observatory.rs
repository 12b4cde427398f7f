//! The headers grade against Mozilla's own HTTP Observatory (npm `@mdn/mdn-http-observatory`, its
//! CLI `src/scan.js`) on the same lab sites: every test must give the same result name and
//! modifier, and the same score and grade, except for the deliberate differences listed below (and
//! in `docs/scoring.md`).
//!
//! `.ci/run` installs the Observatory (`npm install --ignore-scripts`, with an empty HSTS preload
//! list) and names its directory in `VANTAGE_OBSERVATORY_DIR`. The Observatory resolves lab names
//! through `tests/observatory/resolve-lab-hosts.cjs` and trusts the lab CA through
//! `NODE_EXTRA_CA_CERTS`; nothing leaves the machine.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use vantage_tests::lab::{Lab, Posture};

/// Where Vantage departs from the Observatory on purpose: (site, test, why).
const DELIBERATE: &[(Posture, &str, &str)] = &[(
    Posture::ReflectedCors,
    "cross-origin-resource-sharing",
    "the Observatory's reflected-origin check reads the request's Origin from the wrong object and \
     never fires; Vantage sends a foreign Origin and scores a reflection with credentials -50",
)];

fn observatory_dir() -> PathBuf {
    let dir = std::env::var_os("VANTAGE_OBSERVATORY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from("/var/tmp/vantage-observatory/node_modules/@mdn/mdn-http-observatory")
        });
    assert!(
        dir.join("src/scan.js").is_file(),
        "Mozilla's HTTP Observatory is not installed at {} (bash .ci/run installs it; or set \
         VANTAGE_OBSERVATORY_DIR to a directory holding @mdn/mdn-http-observatory)",
        dir.display()
    );
    dir
}

/// What the Observatory's CLI says of a host: its per-test results, score and grade.
type Report = (BTreeMap<String, (String, i64)>, i64, String);

/// Runs the Observatory's CLI on `host`; `Err` with its message when it gives no grade.
async fn observatory(lab: &Lab, host: &str) -> Result<Report, String> {
    let dir = observatory_dir();
    let hook =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("observatory/resolve-lab-hosts.cjs");
    let mut command = std::process::Command::new("node");
    command
        .arg("--require")
        .arg(&hook)
        .arg(dir.join("src/scan.js"))
        .arg(host)
        .current_dir(&dir)
        .env("NODE_EXTRA_CA_CERTS", lab.ca_pem.path())
        .env("VANTAGE_LAB_HOSTS", lab.hosts())
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "the Observatory printed no report for {host}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    if !output.status.success() {
        return Err(report["error"].as_str().unwrap_or_default().to_owned());
    }
    let tests = report["tests"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, test)| {
            (
                name.clone(),
                (
                    test["result"].as_str().unwrap().to_owned(),
                    test["scoreModifier"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    Ok((
        tests,
        report["scan"]["score"].as_i64().unwrap(),
        report["scan"]["grade"].as_str().unwrap().to_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_grade_matches_mozillas_observatory_on_every_lab_site() {
    let postures: Vec<Posture> = Posture::ALL.into_iter().chain(Posture::VARIANTS).collect();
    let lab = Lab::start_with(&postures).await;
    let mut mismatches = Vec::new();
    for posture in postures {
        let host = posture.name();
        let (_, assessment) = lab.scan(host).await;
        let (theirs, their_score, their_grade) = match observatory(&lab, host).await {
            Ok(report) => report,
            Err(refusal) => {
                // Neither grades a site that does not answer.
                assert!(
                    assessment.grades.headers.is_none(),
                    "{host}: the Observatory refused ({refusal}) but Vantage graded it"
                );
                assert_eq!(posture, Posture::Unreachable, "{host}: {refusal}");
                continue;
            }
        };
        let ours = assessment
            .grades
            .headers
            .unwrap_or_else(|| panic!("{host}: Vantage gave no headers grade"));
        assert_eq!(ours.algorithm, vantage_rules::OBSERVATORY_ALGORITHM);
        assert_eq!(ours.tests.len(), theirs.len(), "{host}: the same ten tests");
        let mut differs = false;
        for test in &ours.tests {
            let (their_result, their_modifier) = theirs
                .get(&test.test)
                .unwrap_or_else(|| panic!("{host}: the Observatory has no {} test", test.test));
            let same = *their_result == test.result && *their_modifier == i64::from(test.modifier);
            let deliberate = DELIBERATE
                .iter()
                .any(|(p, t, _)| *p == posture && *t == test.test);
            match (same, deliberate) {
                (true, false) => {}
                (false, true) => differs = true,
                (true, true) => mismatches.push(format!(
                    "{host} {}: expected a deliberate difference, both say {their_result}",
                    test.test
                )),
                (false, false) => mismatches.push(format!(
                    "{host} {}: Vantage {} ({}), Observatory {their_result} ({their_modifier})",
                    test.test, test.result, test.modifier
                )),
            }
        }
        if !differs
            && (i64::from(ours.score), ours.grade.as_str()) != (their_score, their_grade.as_str())
        {
            mismatches.push(format!(
                "{host}: Vantage {} {}, Observatory {their_score} {their_grade}",
                ours.score, ours.grade
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
