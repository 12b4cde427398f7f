//! Ruleset 3's verdicts on the lab: every site scanned the three ways a user types it — a bare name,
//! an `http://` URL, an `https://` URL — through the real worker, probes and rules, gives one set of
//! findings and one grade, and the exact findings and overall grade each posture deserves.

use std::collections::BTreeSet;

use vantage_domain::scan::Observation;
use vantage_observations::classification::SiteKind;
use vantage_rules::Assessment;
use vantage_tests::lab::{Lab, LabSite, Posture};

/// The findings of an assessment as (rule, asset), sorted.
pub fn findings(assessment: &Assessment) -> BTreeSet<(String, String)> {
    assessment
        .findings
        .iter()
        .map(|f| (f.rule_id.clone(), f.asset.clone()))
        .collect()
}

/// A site's verdict: its findings as (rule, asset), its overall grade and score (none when it
/// could not be reached).
type Verdict = (
    BTreeSet<(String, String)>,
    Option<&'static str>,
    Option<u32>,
);

/// `findings` of `posture`'s site in this lab, where sites have IPv4 addresses only: ruleset 6
/// says so about each name.
fn v4_only(
    posture: Posture,
    mut findings: BTreeSet<(String, String)>,
) -> BTreeSet<(String, String)> {
    findings.insert(("dns.ipv6-missing".to_owned(), posture.name().to_owned()));
    findings
}

/// What each of the postures must get under ruleset 3. (The header variants are pinned by
/// the Observatory differential.)
fn expected(lab: &Lab, posture: Posture) -> Option<Verdict> {
    let set = |items: &[(&str, String)]| -> BTreeSet<(String, String)> {
        items
            .iter()
            .map(|(rule, asset)| ((*rule).to_owned(), asset.clone()))
            .collect()
    };
    let at = |base: &str, path: &str| format!("{base}{path}");
    let (findings, grade, score) = match posture {
        Posture::PlainHttp => {
            let page = "http://plain-http.example/";
            let cookie = |name: &str| format!("{page} cookie {name}");
            let mut findings = Vec::new();
            for name in ["PHPSESSID", "tracking"] {
                for rule in [
                    "cookies.httponly-missing",
                    "cookies.samesite-missing",
                    "cookies.secure-missing",
                ] {
                    findings.push((rule, cookie(name)));
                }
            }
            findings.push(("cookies.session-without-prefix", cookie("PHPSESSID")));
            findings.push((
                "exposure.security-txt-missing",
                at(page, ".well-known/security.txt"),
            ));
            for rule in [
                "http.clickjacking-unprotected",
                "http.csp-missing",
                "http.https-not-enforced",
                "http.no-https",
                "http.referrer-policy-missing",
                "http.version-disclosure",
                "http.x-content-type-options-missing",
            ] {
                findings.push((rule, page.to_owned()));
            }
            (set(&findings), "F", 24)
        }
        Posture::GoodHttps | Posture::SecurityTxtBehindRedirect => (BTreeSet::new(), "A+", 100),
        Posture::HstsExpiredCertificate => (
            set(&[(
                "tls.certificate-expired",
                lab.address(posture, 443).to_string(),
            )]),
            "T",
            24,
        ),
        Posture::WeakCsp => {
            let page = "https://weak-csp.example/".to_owned();
            (
                set(&[
                    ("csp.frame-ancestors-missing", page.clone()),
                    ("csp.script-unsafe-eval", page.clone()),
                    ("csp.script-unsafe-inline", page.clone()),
                    ("csp.wildcard-source", page),
                ]),
                "C",
                59,
            )
        }
        Posture::ExposedBehindRedirect => {
            let site = "https://exposed.example/";
            (
                set(&[
                    ("exposure.api-docs-public", at(site, "openapi.json")),
                    ("exposure.env-file", at(site, ".env")),
                    ("exposure.git-repository", at(site, ".git/HEAD")),
                    (
                        "exposure.security-txt-missing",
                        at(site, ".well-known/security.txt"),
                    ),
                    ("http.referrer-policy-missing", site.to_owned()),
                ]),
                "F",
                24,
            )
        }
        Posture::ReflectedCors => (
            set(&[(
                "http.cors-reflects-any-origin",
                "https://reflected-cors.example/".to_owned(),
            )]),
            "C",
            59,
        ),
        Posture::CookiePrefixes => {
            let cookie = |name: &str| format!("https://cookie-prefixes.example/ cookie {name}");
            (
                set(&[
                    ("cookies.httponly-missing", cookie("__Host-pref")),
                    ("cookies.prefix-violated", cookie("__Host-pref")),
                    ("cookies.prefix-violated", cookie("__Secure-theme")),
                    ("cookies.secure-missing", cookie("__Secure-theme")),
                    ("cookies.session-without-prefix", cookie("sessionid")),
                ]),
                "A-",
                87,
            )
        }
        Posture::MismatchedCertificate => (
            set(&[(
                "tls.hostname-mismatch",
                lab.address(posture, 443).to_string(),
            )]),
            "M",
            24,
        ),
        Posture::Unreachable => return Some((v4_only(posture, BTreeSet::new()), None, None)),
        Posture::ScriptsAndMetaPolicies
        | Posture::WeakHeaders
        | Posture::HttpFirstRedirect
        | Posture::OffHostRedirect
        | Posture::DuplicateReporting => return None,
    };
    Some((v4_only(posture, findings), Some(grade), Some(score)))
}

async fn site_verdicts(site: &LabSite, lab: &Lab) {
    let mut seen = Vec::new();
    for typed in site.typings() {
        // The standard profile: ruleset 4 also judges the enumerated cipher suites and protocol
        // facts, which must not depend on how the target was typed either.
        let (observations, assessment) = lab
            .scan_with(&typed, vantage_domain::target::Profile::Standard)
            .await;
        seen.push((typed, observations, assessment));
    }
    let (first, rest) = seen.split_first().unwrap();
    let fingerprints = |a: &Assessment| {
        a.findings
            .iter()
            .map(|f| f.fingerprint.clone())
            .collect::<Vec<_>>()
    };
    for (typed, _, assessment) in rest {
        assert_eq!(
            findings(assessment),
            findings(&first.2),
            "{typed} and {} give different findings",
            first.0
        );
        assert_eq!(fingerprints(assessment), fingerprints(&first.2));
        assert_eq!(assessment.grades, first.2.grades, "{typed}: grades differ");
        assert_eq!(
            assessment.overall, first.2.overall,
            "{typed}: overall differs"
        );
    }
    let Some((findings_expected, grade, score)) = expected(lab, site.posture) else {
        return;
    };
    let assessment = &first.2;
    assert_eq!(
        findings(assessment),
        findings_expected,
        "{}: findings (overall {:?})",
        site.name(),
        assessment.overall
    );
    assert_eq!(
        (
            assessment.overall.grade.as_deref(),
            assessment.overall.score
        ),
        (grade, score),
        "{}: overall {:?}, headers {:?}, TLS {:?}",
        site.name(),
        assessment.overall,
        assessment.grades.headers,
        assessment.grades.tls
    );
    assert_eq!(assessment.overall.method, vantage_rules::CAPPED_METHOD);
    // No grade is given only to a target that could not be reached, and then it says why.
    assert_eq!(
        assessment.overall.unreachable.is_some(),
        grade.is_none(),
        "{}: {:?}",
        site.name(),
        assessment.overall
    );
    if site.posture == Posture::ExposedBehindRedirect {
        // The API document behind the redirect is seen, so the target is classified as an API.
        let classification = first
            .1
            .iter()
            .find_map(|o| match &o.observation {
                Observation::Classification(c) => Some(c.clone()),
                _ => None,
            })
            .unwrap();
        assert!(classification.api_docs, "{classification:?}");
        assert_eq!(classification.kind, SiteKind::Api);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lab_site_gets_one_verdict_however_it_is_typed() {
    let postures: Vec<Posture> = Posture::ALL.into_iter().chain(Posture::VARIANTS).collect();
    let lab = Lab::start_with(&postures).await;
    for posture in postures {
        site_verdicts(lab.site(posture), &lab).await;
    }
}
