//! Ruleset 1 over observations built from the probes' own types.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use uuid::Uuid;
use vantage_domain::ids::ObservationId;
use vantage_domain::scan::ProbeObserved;
use vantage_observations::Observation;
use vantage_observations::dns::{DnsObservation, DnsStatus};
use vantage_observations::http::{CookieSummary, HttpHop, HttpObservation, RefusedRedirect};
use vantage_observations::tcp::{PortState, TcpObservation};

use crate::{Finding, MAX_EVIDENCE_BYTES, ScanFacts, evaluate};

pub(crate) fn observed(n: u128, asset: &str, data: impl Into<Observation>) -> ProbeObserved {
    ProbeObserved {
        observation_id: ObservationId(Uuid::from_u128(n)),
        asset: asset.to_owned(),
        observation: data.into(),
    }
}

pub(crate) fn page(headers: &[(&str, &str)], cookies: Vec<CookieSummary>) -> HttpObservation {
    let url = "http://shop.example/";
    HttpObservation {
        url: url.into(),
        hops: vec![HttpHop {
            url: url.into(),
            address: "93.184.215.14:80".parse().unwrap(),
            status: 200,
            location: None,
            set_cookies: vec![],
            certificate_valid: None,
        }],
        final_url: Some(url.into()),
        status: Some(200),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        header_names: headers.iter().map(|(k, _)| (*k).to_owned()).collect(),
        cookies,
        body_bytes: Some(120),
        html: None,
        cors_preflight: None,
        elapsed_ms: 12,
        refused_redirect: None,
        error: None,
    }
}

fn cookie(secure: bool, http_only: bool, same_site: Option<&str>) -> CookieSummary {
    CookieSummary {
        name: "session".into(),
        secure,
        http_only,
        same_site: same_site.map(str::to_owned),
        path: Some("/".into()),
        domain: None,
        persistent: false,
    }
}

fn dns(name: &str, record_type: &str, status: DnsStatus, records: &[&str]) -> DnsObservation {
    DnsObservation {
        name: name.into(),
        record_type: record_type.into(),
        status,
        records: records.iter().map(|r| (*r).to_owned()).collect(),
        truncated: false,
    }
}

fn run(observations: &[ProbeObserved]) -> Vec<Finding> {
    evaluate(
        "1",
        &ScanFacts {
            tenant: "acme",
            target: "http://shop.example/",
            observations,
        },
    )
    .unwrap()
}

fn rule_ids(findings: &[Finding]) -> BTreeSet<&str> {
    findings.iter().map(|f| f.rule_id.as_str()).collect()
}

#[test]
fn an_unhardened_page_fires_every_header_and_cookie_rule() {
    let observations = [observed(
        1,
        "http://shop.example/",
        page(
            &[
                ("content-type", "text/html; charset=utf-8"),
                ("server", "nginx/1.18.0"),
            ],
            vec![cookie(false, false, None)],
        ),
    )];
    let findings = run(&observations);
    assert_eq!(
        rule_ids(&findings),
        BTreeSet::from([
            "cookies.httponly-missing",
            "cookies.samesite-missing",
            "cookies.secure-missing",
            "http.clickjacking-unprotected",
            "http.csp-missing",
            "http.https-not-enforced",
            "http.referrer-policy-missing",
            "http.version-disclosure",
            "http.x-content-type-options-missing",
        ])
    );
    let disclosure = findings
        .iter()
        .find(|f| f.rule_id == "http.version-disclosure")
        .unwrap();
    assert_eq!(disclosure.evidence["server"], "nginx/1.18.0");
    assert!(!disclosure.recommended_fix.steps.is_empty());
    assert!(
        disclosure
            .compliance
            .contains(&"OWASP-ASVS-4.0.3:V14.3.3".to_owned())
    );
}

#[test]
fn a_hardened_page_only_misses_https() {
    let observations = [observed(
        1,
        "http://shop.example/",
        page(
            &[
                ("content-type", "text/html"),
                (
                    "content-security-policy",
                    "default-src 'self'; frame-ancestors 'none'",
                ),
                ("x-content-type-options", "nosniff"),
                ("referrer-policy", "no-referrer"),
                ("server", "nginx"),
            ],
            vec![cookie(true, true, Some("Lax"))],
        ),
    )];
    assert_eq!(
        rule_ids(&run(&observations)),
        BTreeSet::from(["http.https-not-enforced"])
    );
}

#[test]
fn a_redirect_into_private_space_is_high() {
    let mut redirecting = page(&[], vec![]);
    redirecting.status = None;
    redirecting.final_url = None;
    redirecting.refused_redirect = Some(RefusedRedirect {
        url: "http://169.254.169.254/latest/meta-data/".into(),
        reason: "169.254.169.254 resolves to 169.254.169.254, which is the cloud metadata address"
            .into(),
    });
    let findings = run(&[observed(1, "http://shop.example/go", redirecting)]);
    assert_eq!(
        rule_ids(&findings),
        BTreeSet::from(["http.redirect-to-private-address"])
    );
    assert_eq!(findings[0].severity, crate::Severity::High);
}

#[test]
fn mail_policy_and_caa_rules() {
    let weak = [
        observed(
            1,
            "a",
            dns(
                "shop.example",
                "TXT",
                DnsStatus::Ok,
                &["google-site-verification=x"],
            ),
        ),
        observed(
            2,
            "b",
            dns(
                "_dmarc.shop.example",
                "TXT",
                DnsStatus::Ok,
                &["v=DMARC1; p=none; rua=mailto:d@shop.example"],
            ),
        ),
        observed(
            3,
            "c",
            dns("shop.example", "CAA", DnsStatus::NoRecords, &[]),
        ),
    ];
    assert_eq!(
        rule_ids(&run(&weak)),
        BTreeSet::from([
            "dns.caa-missing",
            "email.dmarc-not-enforced",
            "email.spf-missing"
        ])
    );
    let open_spf = [
        observed(
            1,
            "a",
            dns("shop.example", "TXT", DnsStatus::Ok, &["v=spf1 a mx +all"]),
        ),
        observed(
            2,
            "b",
            dns("_dmarc.shop.example", "TXT", DnsStatus::Nxdomain, &[]),
        ),
    ];
    assert_eq!(
        rule_ids(&run(&open_spf)),
        BTreeSet::from(["email.dmarc-missing", "email.spf-allows-all"])
    );
    let strong = [
        observed(
            1,
            "a",
            dns(
                "shop.example",
                "TXT",
                DnsStatus::Ok,
                &["v=spf1 include:_spf.mail.example -all"],
            ),
        ),
        observed(
            2,
            "b",
            dns(
                "_dmarc.shop.example",
                "TXT",
                DnsStatus::Ok,
                &["v=DMARC1; p=reject"],
            ),
        ),
        observed(
            3,
            "c",
            dns(
                "shop.example",
                "CAA",
                DnsStatus::Ok,
                &["0 issue \"letsencrypt.org\""],
            ),
        ),
        // A resolver failure is not evidence of absence.
        observed(4, "d", dns("other.example", "TXT", DnsStatus::Error, &[])),
    ];
    assert!(run(&strong).is_empty());
}

#[test]
fn risky_open_ports_are_high_and_web_ports_are_not() {
    let tcp = |n, port, state| {
        observed(
            n,
            &format!("93.184.215.14:{port}"),
            TcpObservation {
                address: format!("93.184.215.14:{port}").parse().unwrap(),
                port,
                state,
                latency_ms: Some(3),
            },
        )
    };
    let findings = run(&[
        tcp(1, 6379, PortState::Open),
        tcp(2, 443, PortState::Open),
        tcp(3, 5432, PortState::Closed),
    ]);
    assert_eq!(
        rule_ids(&findings),
        BTreeSet::from(["exposure.risky-service"])
    );
    assert_eq!(findings[0].evidence["service"], "redis");
}

#[test]
fn fingerprints_are_stable_and_scoped() {
    let a = crate::fingerprint(
        "acme",
        "http://shop.example/",
        "http.csp-missing",
        "http://shop.example/",
    );
    let b = crate::fingerprint(
        "acme",
        "http://shop.example/",
        "http.csp-missing",
        "http://shop.example/",
    );
    let other_tenant = crate::fingerprint(
        "globex",
        "http://shop.example/",
        "http.csp-missing",
        "http://shop.example/",
    );
    assert_eq!(a, b);
    assert_ne!(a, other_tenant);
    assert_eq!(a.len(), 64);
    // A triage fingerprint accepts it.
    assert!(vantage_domain::triage::Fingerprint::parse(&a).is_ok());
}

#[test]
fn evidence_is_capped() {
    let long = "x".repeat(4000);
    let findings = run(&[observed(
        1,
        "http://shop.example/",
        page(&[("server", &format!("nginx/1.0 {long}"))], vec![]),
    )]);
    for finding in findings {
        assert!(
            finding.evidence.to_string().len() <= MAX_EVIDENCE_BYTES,
            "{}",
            finding.rule_id
        );
    }
}

#[test]
fn rulesets_are_versioned() {
    let facts = ScanFacts {
        tenant: "acme",
        target: "x",
        observations: &[],
    };
    assert_eq!(evaluate("0", &facts).unwrap(), vec![]);
    assert!(evaluate("99", &facts).is_err());
}

proptest! {
    /// Same observations in any order: byte-identical findings.
    #[test]
    fn evaluation_is_deterministic(seed in any::<u64>(), xcto in any::<bool>(), spf_ok in any::<bool>()) {
        let mut headers = vec![("content-type", "text/html")];
        if xcto { headers.push(("x-content-type-options", "nosniff")); }
        let spf = if spf_ok { "v=spf1 -all" } else { "v=spf1 +all" };
        let mut observations = vec![
            observed(1, "http://shop.example/", page(&headers, vec![cookie(false, true, None)])),
            observed(2, "a", dns("shop.example", "TXT", DnsStatus::Ok, &[spf])),
            observed(3, "b", dns("shop.example", "CAA", DnsStatus::NoRecords, &[])),
        ];
        let first = serde_json::to_string(&run(&observations)).unwrap();
        let rotate = usize::try_from(seed % 3).unwrap();
        observations.rotate_left(rotate);
        let again = serde_json::to_string(&run(&observations)).unwrap();
        prop_assert_eq!(first, again);
    }
}

mod grading {
    use super::*;
    use crate::grade::{grade_headers, letter};
    use vantage_observations::http::FOREIGN_ORIGIN;

    fn graded(observation: &HttpObservation) -> crate::grade::HeaderGrade {
        grade_headers(observation).unwrap()
    }

    fn result(grade: &crate::grade::HeaderGrade, test: &str) -> (String, i32) {
        let t = grade.tests.iter().find(|t| t.test == test).unwrap();
        (t.result.clone(), t.modifier)
    }

    fn https(headers: &[(&str, &str)], cookies: Vec<CookieSummary>) -> HttpObservation {
        let mut page = page(headers, cookies);
        page.url = "https://shop.example/".into();
        page.final_url = Some("https://shop.example/".into());
        page
    }

    #[test]
    fn an_unhardened_http_page_fails() {
        let grade = graded(&page(&[("content-type", "text/html")], vec![]));
        assert_eq!(
            result(&grade, "content-security-policy"),
            ("csp-not-implemented".into(), -25)
        );
        assert_eq!(
            result(&grade, "redirection"),
            ("redirection-missing".into(), -20)
        );
        assert_eq!(
            result(&grade, "strict-transport-security"),
            ("hsts-not-implemented-no-https".into(), -20)
        );
        assert_eq!(
            result(&grade, "x-frame-options"),
            ("x-frame-options-not-implemented".into(), -20)
        );
        assert_eq!(
            result(&grade, "x-content-type-options"),
            ("x-content-type-options-not-implemented".into(), -5)
        );
        assert_eq!(grade.score, 10);
        assert_eq!(grade.grade, "F");
        assert_eq!(grade.algorithm, crate::grade::HEADERS_ALGORITHM);
    }

    #[test]
    fn a_fully_hardened_https_page_earns_its_bonuses() {
        let grade = graded(&https(
            &[
                ("content-type", "text/html"),
                (
                    "content-security-policy",
                    "default-src 'none'; frame-ancestors 'none'",
                ),
                (
                    "strict-transport-security",
                    "max-age=31536000; includeSubDomains",
                ),
                ("x-content-type-options", "nosniff"),
                ("referrer-policy", "no-referrer"),
            ],
            vec![cookie(true, true, Some("Strict"))],
        ));
        assert_eq!(result(&grade, "content-security-policy").1, 10);
        assert_eq!(
            result(&grade, "x-frame-options"),
            ("x-frame-options-implemented-via-csp".into(), 5)
        );
        assert_eq!(result(&grade, "cookies").1, 5);
        assert_eq!(result(&grade, "referrer-policy").1, 5);
        assert_eq!(grade.score, 125);
        assert_eq!(grade.grade, "A+");
    }

    #[test]
    fn bonuses_only_count_from_ninety() {
        // -5 (nosniff missing) -10 (short HSTS) = 85 before bonuses: the +10 CSP bonus is not added.
        let grade = graded(&https(
            &[
                ("content-security-policy", "default-src 'none'"),
                ("strict-transport-security", "max-age=600"),
                ("x-frame-options", "DENY"),
            ],
            vec![],
        ));
        assert_eq!(result(&grade, "content-security-policy").1, 10);
        assert_eq!(grade.score, 85);
        assert_eq!(grade.grade, "A-");
    }

    #[test]
    fn a_reflected_origin_with_credentials_costs_fifty() {
        let hardened = [
            ("content-type", "text/html"),
            (
                "content-security-policy",
                "default-src 'none'; frame-ancestors 'none'",
            ),
            ("strict-transport-security", "max-age=31536000"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
        ];
        let mut with_reflection = hardened.to_vec();
        with_reflection.push(("access-control-allow-origin", FOREIGN_ORIGIN));
        with_reflection.push(("access-control-allow-credentials", "true"));
        let reflected = graded(&https(&with_reflection, vec![]));
        assert_eq!(
            result(&reflected, "cross-origin-resource-sharing"),
            (
                "cross-origin-resource-sharing-implemented-with-universal-access".into(),
                -50
            )
        );
        // 100 - 50 is below 90, so the bonuses no longer count: 50, a C, instead of 120.
        assert_eq!(reflected.score, 50);
        assert_eq!(reflected.grade, "C");
        let mut public = hardened.to_vec();
        public.push(("access-control-allow-origin", "*"));
        let public = graded(&https(&public, vec![]));
        assert_eq!(result(&public, "cross-origin-resource-sharing").1, 0);
        assert_eq!(public.score, 120);
    }

    #[test]
    fn unsafe_inline_and_session_cookies_cost_what_the_table_says() {
        let grade = graded(&https(
            &[(
                "content-security-policy",
                "script-src 'self' 'unsafe-inline'",
            )],
            vec![cookie(true, false, None)],
        ));
        assert_eq!(result(&grade, "content-security-policy").1, -20);
        assert_eq!(
            result(&grade, "cookies"),
            ("cookies-session-without-httponly-flag".into(), -30)
        );
    }

    #[test]
    fn the_chart() {
        for (score, grade) in [
            (135, "A+"),
            (100, "A+"),
            (99, "A"),
            (90, "A"),
            (89, "A-"),
            (85, "A-"),
            (84, "B+"),
            (70, "B"),
            (65, "B-"),
            (60, "C+"),
            (50, "C"),
            (45, "C-"),
            (40, "D+"),
            (30, "D"),
            (25, "D-"),
            (24, "F"),
            (0, "F"),
        ] {
            assert_eq!(letter(score), grade, "{score}");
        }
    }
}

/// A trusted TLS 1.2 + 1.3 server's observation, without an enumeration.
pub(crate) fn tls_grading_fixture() -> vantage_observations::tls::TlsObservation {
    tls_grading::tls()
}

mod tls_grading {
    use vantage_observations::tls::{
        AcceptedSuite, CertificateSummary, TlsObservation, TlsVersion, VersionSuites,
    };

    use crate::grade::{TLS_ALGORITHM, TLS_SUITES_ALGORITHM, TlsMethod, grade_tls, grade_tls_with};

    pub(super) fn tls() -> TlsObservation {
        TlsObservation {
            address: "93.184.215.14:443".parse().unwrap(),
            server_name: "shop.example".into(),
            handshake: true,
            error: None,
            protocol: Some("TLSv1_3".into()),
            cipher_suite: Some("TLS13_AES_256_GCM_SHA384".into()),
            tls10: false,
            tls11: false,
            tls12: true,
            tls13: true,
            chain: vec![CertificateSummary {
                subject: "CN=shop.example".into(),
                issuer: "CN=Some CA".into(),
                sans: vec!["shop.example".into()],
                not_before: "2026-01-01T00:00:00Z".into(),
                not_after: "2027-01-01T00:00:00Z".into(),
                days_left: 100,
                key_type: "RSA".into(),
                key_bits: Some(2048),
                signature_algorithm: "sha256WithRSAEncryption".into(),
                self_signed: false,
                embedded_scts: Some(2),
                must_staple: false,
            }],
            trusted: Some(true),
            hostname_match: Some(true),
            verification_error: None,
            ocsp_stapled: false,
            ocsp_scts: None,
            cipher_suites: None,
            protocol_facts: None,
            chain_facts: None,
        }
    }

    fn graded(seen: &TlsObservation, hsts: bool) -> (String, usize) {
        let grade = grade_tls(seen, hsts).unwrap();
        assert_eq!(grade.algorithm, TLS_ALGORITHM);
        (grade.grade, grade.caps.len())
    }

    #[test]
    fn caps_follow_the_rating_guide() {
        assert_eq!(graded(&tls(), true), ("A+".into(), 0));
        assert_eq!(graded(&tls(), false), ("A".into(), 0), "A+ needs HSTS");
        let mut untrusted = tls();
        untrusted.trusted = Some(false);
        assert_eq!(graded(&untrusted, true).0, "T");
        let mut mismatch = tls();
        mismatch.hostname_match = Some(false);
        assert_eq!(graded(&mismatch, true).0, "M");
        let mut legacy = tls();
        legacy.tls10 = true;
        assert_eq!(graded(&legacy, true), ("B".into(), 1));
        let mut short_key = tls();
        short_key.chain[0].key_bits = Some(1024);
        assert_eq!(graded(&short_key, true).0, "B");
        short_key.chain[0].key_bits = Some(512);
        assert_eq!(graded(&short_key, true).0, "F");
        let mut no_fs = tls();
        no_fs.protocol = Some("TLSv1_2".into());
        no_fs.cipher_suite = Some("TLS_RSA_WITH_AES_128_GCM_SHA256".into());
        no_fs.tls13 = false;
        assert_eq!(graded(&no_fs, true).0, "B");
        let mut only_legacy = tls();
        only_legacy.handshake = false;
        only_legacy.tls12 = false;
        only_legacy.tls13 = false;
        only_legacy.tls10 = true;
        only_legacy.chain.clear();
        only_legacy.trusted = None;
        only_legacy.hostname_match = None;
        assert_eq!(graded(&only_legacy, true), ("C".into(), 2));
        let mut nothing = tls();
        nothing.handshake = false;
        assert!(grade_tls(&nothing, true).is_none());
    }

    /// `tls()` with an enumeration: under each version, these suites.
    fn enumerated(versions: &[(TlsVersion, &[u16])], dh_bits: Option<u32>) -> TlsObservation {
        let mut seen = tls();
        seen.cipher_suites = Some(
            versions
                .iter()
                .map(|(version, ids)| VersionSuites {
                    version: *version,
                    suites: ids
                        .iter()
                        .map(|id| AcceptedSuite {
                            id: *id,
                            name: vantage_observations::cipher_suites::suite(*id)
                                .unwrap()
                                .name
                                .into(),
                            group: None,
                            dh_bits,
                        })
                        .collect(),
                    server_order: None,
                })
                .collect(),
        );
        seen
    }

    fn graded2(seen: &TlsObservation) -> (String, Vec<String>) {
        let grade = grade_tls_with(seen, true, TlsMethod::Caps2).unwrap();
        assert_eq!(grade.algorithm, TLS_SUITES_ALGORITHM);
        (grade.grade, grade.caps)
    }

    #[test]
    fn caps_2_judges_every_enumerated_suite() {
        use TlsVersion::{Tls10, Tls12, Tls13};
        let modern = enumerated(
            &[(Tls13, &[0x1302, 0x1301]), (Tls12, &[0xc030, 0xc02f])],
            None,
        );
        assert_eq!(graded2(&modern), ("A+".into(), vec![]));
        // The negotiated suite was forward-secret, but one accepted suite set is not.
        let no_fs = enumerated(&[(Tls12, &[0x009c, 0x0035])], None);
        let (grade, caps) = graded2(&no_fs);
        assert_eq!(grade, "B", "{caps:?}");
        assert_eq!(
            graded(&no_fs, true).0,
            "A+",
            "caps-1 judges the negotiated suite only"
        );
        let rc4 = enumerated(&[(Tls13, &[0x1301]), (Tls12, &[0xc02f, 0x0005])], None);
        assert_eq!(graded2(&rc4).0, "C");
        let triple_des = enumerated(&[(Tls12, &[0xc02f, 0x000a])], None);
        assert_eq!(graded2(&triple_des).0, "C");
        let triple_des_tls10_only = enumerated(&[(Tls12, &[0xc02f]), (Tls10, &[0x000a])], None);
        assert_eq!(
            graded2(&triple_des_tls10_only).0,
            "B",
            "3DES caps only with TLS 1.1+; TLS 1.0 caps B"
        );
        for weak in [0x0003, 0x0034, 0x0002, 0x0009] {
            let insecure = enumerated(&[(Tls12, &[0xc02f, weak])], None);
            assert_eq!(graded2(&insecure).0, "F", "{weak:#06x}");
        }
        assert_eq!(
            graded2(&enumerated(&[(Tls12, &[0x009e])], Some(1024))).0,
            "B"
        );
        assert_eq!(
            graded2(&enumerated(&[(Tls12, &[0x009e])], Some(768))).0,
            "F"
        );
        assert_eq!(
            graded2(&enumerated(&[(Tls12, &[0x009e])], Some(2048))).0,
            "A+"
        );
        // A server only the enumeration could speak to is graded.
        let mut rc4_only = enumerated(&[(Tls12, &[0x0005])], None);
        rc4_only.handshake = false;
        rc4_only.tls12 = false;
        rc4_only.tls13 = false;
        assert_eq!(graded2(&rc4_only).0, "C");
        assert!(
            grade_tls(&rc4_only, true).is_none(),
            "caps-1 does not see it"
        );
        // Without an enumeration, caps-2 is caps-1.
        assert_eq!(graded2(&tls()).0, graded(&tls(), true).0);
    }
}

mod ruleset_4 {
    use vantage_observations::tls::{AcceptedSuite, TlsVersion, VersionSuites};

    use super::{observed, tls_grading_fixture};

    /// The `tls.*` rules ruleset 4 fires on one TLS observation, sorted.
    fn tls_rule_ids(seen: vantage_observations::tls::TlsObservation) -> Vec<String> {
        rule_ids_where(&[observed(1, "93.184.215.14:443", seen)], |id| {
            id.starts_with("tls.")
        })
    }

    /// The rules ruleset 4 fires on `observations` of `shop.example` whose ids `keep`, sorted.
    fn rule_ids_where(
        observations: &[vantage_domain::scan::ProbeObserved],
        keep: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let facts = crate::ScanFacts {
            tenant: "default",
            target: "shop.example",
            observations,
        };
        let mut ids: Vec<String> = crate::evaluate("4", &facts)
            .unwrap()
            .into_iter()
            .map(|f| f.rule_id)
            .filter(|id| keep(id))
            .collect();
        ids.sort();
        ids
    }

    /// Per version: (suite, DH prime bits).
    type Offered<'a> = &'a [(TlsVersion, &'a [(u16, Option<u32>)])];

    fn rules(suites: Offered<'_>) -> Vec<String> {
        let mut seen = tls_grading_fixture();
        seen.cipher_suites = Some(
            suites
                .iter()
                .map(|(version, ids)| VersionSuites {
                    version: *version,
                    suites: ids
                        .iter()
                        .map(|(id, bits)| AcceptedSuite {
                            id: *id,
                            name: String::new(),
                            group: None,
                            dh_bits: *bits,
                        })
                        .collect(),
                    server_order: None,
                })
                .collect(),
        );
        tls_rule_ids(seen)
    }

    #[test]
    fn each_weakness_is_one_rule() {
        use TlsVersion::{Tls10, Tls12, Tls13};
        assert!(rules(&[(Tls13, &[(0x1301, None)]), (Tls12, &[(0xc02f, None)])]).is_empty());
        assert_eq!(
            rules(&[(Tls12, &[(0x009c, None)])]),
            ["tls.no-forward-secrecy"]
        );
        assert_eq!(
            rules(&[(Tls12, &[(0xc02f, None), (0x0005, None), (0x000a, None)])]),
            ["tls.3des", "tls.rc4"]
        );
        assert_eq!(
            rules(&[(Tls12, &[(0xc02f, None), (0xc018, None)])]),
            ["tls.insecure-cipher-suites"]
        );
        assert_eq!(rules(&[(Tls12, &[(0x009e, Some(1024))])]), ["tls.weak-dh"]);
        assert_eq!(
            rules(&[(Tls12, &[(0xc02f, None)]), (Tls10, &[(0xc013, None)])]),
            ["tls.cbc-in-tls1.0"],
            "the legacy-protocol rule (ruleset 2) reads the version probe, not the enumeration"
        );
    }

    fn protocol_rules(facts: vantage_observations::tls::TlsProtocolFacts) -> Vec<String> {
        let mut seen = tls_grading_fixture();
        seen.protocol_facts = Some(facts);
        tls_rule_ids(seen)
    }

    #[test]
    fn must_staple_without_a_staple_is_a_finding() {
        let run = |must_staple: bool, stapled: bool| {
            let mut seen = tls_grading_fixture();
            seen.chain[0].must_staple = must_staple;
            seen.ocsp_stapled = stapled;
            tls_rule_ids(seen).contains(&"tls.must-staple-not-stapled".to_owned())
        };
        assert!(run(true, false));
        assert!(!run(true, true));
        assert!(!run(false, false));
    }

    /// The `hsts.*` preload rules ruleset 4 fires for a host whose HTTPS page sends `hsts`.
    fn preload_rules(preloaded_entry: Option<&str>, hsts: Option<&str>) -> Vec<String> {
        let headers: Vec<(&str, &str)> = hsts
            .map(|value| ("strict-transport-security", value))
            .into_iter()
            .collect();
        let mut https = super::page(&headers, vec![]);
        https.url = "https://shop.example/".into();
        https.final_url = Some("https://shop.example/".into());
        https.hops[0].url = "https://shop.example/".into();
        let preload = vantage_observations::HstsPreloadObservation {
            host: "shop.example".into(),
            list_date: "2025-01-01".into(),
            entry: preloaded_entry.map(str::to_owned),
            include_subdomains: preloaded_entry.map(|_| true),
        };
        rule_ids_where(
            &[
                observed(1, "shop.example", preload),
                observed(2, "https://shop.example/", https),
            ],
            |id| id.contains("preload"),
        )
    }

    #[test]
    fn the_preload_state_is_judged_against_the_header() {
        let ready = "max-age=63072000; includeSubDomains; preload";
        assert!(preload_rules(Some("shop.example"), Some(ready)).is_empty());
        assert_eq!(
            preload_rules(None, Some(ready)),
            ["hsts.preload-requested-not-listed"]
        );
        for weak in [
            None,
            Some("max-age=86400; includeSubDomains; preload"),
            Some("max-age=63072000; preload"),
            Some("max-age=63072000; includeSubDomains"),
        ] {
            assert_eq!(
                preload_rules(Some("shop.example"), weak),
                ["hsts.preloaded-header-below-requirements"],
                "{weak:?}"
            );
            assert!(
                preload_rules(None, weak).is_empty(),
                "not listed, not asking: {weak:?}"
            );
        }
        // Covered by a parent's entry only: the host's own header is not held to the list's rules.
        assert!(preload_rules(Some("example"), None).is_empty());
    }

    #[test]
    fn protocol_facts_are_judged_when_known() {
        use vantage_observations::tls::TlsProtocolFacts;
        let good = TlsProtocolFacts {
            secure_renegotiation: Some(true),
            compression: Some(false),
            fallback_scsv: Some(true),
            alpn: Some("h2".into()),
            extension_scts: Some(2),
        };
        assert!(protocol_rules(good.clone()).is_empty());
        assert!(
            protocol_rules(TlsProtocolFacts::default()).is_empty(),
            "unknown is not bad"
        );
        let bad = TlsProtocolFacts {
            secure_renegotiation: Some(false),
            compression: Some(true),
            fallback_scsv: Some(false),
            alpn: None,
            extension_scts: Some(0),
        };
        assert_eq!(
            protocol_rules(bad),
            [
                "tls.compression",
                "tls.insecure-renegotiation",
                "tls.no-fallback-scsv"
            ]
        );
    }
}

#[test]
fn the_catalog_names_every_rule_once_and_ruleset_2_extends_1() {
    let one = crate::rule_catalog("1").unwrap();
    let two = crate::rule_catalog("2").unwrap();
    let mut ids: Vec<&str> = two.iter().map(|r| r.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), two.len(), "rule ids are unique");
    assert!(one.iter().all(|r| two.contains(r)));
    assert!(two.len() > one.len());
    assert!(crate::rule_catalog("9").is_err());
}

#[test]
fn ruleset_3_keeps_every_rule_of_2_at_the_same_or_a_newer_version() {
    let two = crate::rule_catalog("2").unwrap();
    let three = crate::rule_catalog("3").unwrap();
    let mut ids: Vec<&str> = three.iter().map(|r| r.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), three.len(), "rule ids are unique");
    for old in &two {
        let new = three
            .iter()
            .find(|r| r.id == old.id)
            .unwrap_or_else(|| panic!("{} was dropped", old.id));
        assert!(new.version >= old.version, "{}", old.id);
        if new.version == old.version {
            assert_eq!(new, old, "{} changed without a new version", old.id);
        }
    }
    for added in [
        "http.no-https",
        "csp.script-unsafe-inline",
        "cookies.prefix-violated",
    ] {
        assert!(three.iter().any(|r| r.id == added), "{added}");
    }
}

#[test]
fn every_named_compliance_id_of_a_rule_is_a_control_of_a_framework() {
    use crate::compliance::{ControlBasis, FRAMEWORKS};
    for rule in crate::rule_catalog(crate::RULESET_VERSION).unwrap() {
        for id in &rule.compliance {
            let (prefix, control) = id.split_once(':').unwrap();
            if prefix.starts_with("NIST-SP-800-177") {
                continue; // e-mail guidance, not one of the reported frameworks
            }
            let known = FRAMEWORKS.iter().any(|f| {
                f.prefix == prefix
                    && f.controls
                        .iter()
                        .any(|c| c.id == control && c.basis == ControlBasis::Named)
            });
            assert!(known, "{} names {id}, which no framework lists", rule.id);
        }
    }
}

const CSP_RULE: &str = "http.csp-missing";

#[test]
fn coverage_fails_the_controls_a_finding_names_and_passes_the_rest() {
    use crate::compliance::{ControlStatus, coverage, framework};
    let observations = vec![observed(
        1,
        "http://shop.example/",
        page(&[("content-type", "text/html")], vec![]),
    )];
    let findings = evaluate(
        "2",
        &ScanFacts {
            tenant: "acme",
            target: "shop.example",
            observations: &observations,
        },
    )
    .unwrap();
    let csp = findings.iter().find(|f| f.rule_id == CSP_RULE).unwrap();
    let asvs = coverage(framework("owasp-asvs").unwrap(), "2", &findings).unwrap();
    let v14_4_3 = asvs
        .controls
        .iter()
        .find(|c| c.control == "V14.4.3")
        .unwrap();
    assert_eq!(v14_4_3.status, ControlStatus::Fail);
    assert_eq!(v14_4_3.failing, vec![csp.fingerprint.clone()]);
    let clean = coverage(framework("owasp-asvs").unwrap(), "2", &[]).unwrap();
    assert_eq!(clean.failed, 0);
    assert_eq!(clean.percent, 100);
    assert!(
        clean
            .controls
            .iter()
            .all(|c| c.status == ControlStatus::Pass)
    );
    let none = coverage(framework("pci-dss").unwrap(), "0", &[]).unwrap();
    assert_eq!(none.not_tested, 3);
}

mod ruleset_3 {
    use super::*;

    /// An HTTPS HTML page sending `headers`, as ruleset 3 sees a site.
    fn https_page(headers: &[(&str, &str)]) -> HttpObservation {
        let mut page = page(headers, vec![]);
        page.url = "https://shop.example/".into();
        page.final_url = Some("https://shop.example/".into());
        page.hops[0].url = page.url.clone();
        page.hops[0].certificate_valid = Some(true);
        page
    }

    fn csp_rules(policy: &str, header: &str) -> BTreeSet<String> {
        let observations = [observed(
            1,
            "https://shop.example/",
            https_page(&[("content-type", "text/html"), (header, policy)]),
        )];
        let facts = ScanFacts {
            tenant: "acme",
            target: "https://shop.example/",
            observations: &observations,
        };
        crate::assess("3", &facts)
            .unwrap()
            .findings
            .into_iter()
            .map(|f| f.rule_id)
            .filter(|id| id.starts_with("csp."))
            .collect()
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn csp_weaknesses_are_each_their_own_finding() {
        let csp = "content-security-policy";
        assert_eq!(
            csp_rules(
                "default-src 'self'; object-src 'none'; frame-ancestors 'none'",
                csp
            ),
            set(&[]),
            "a strict allow-list policy"
        );
        assert_eq!(
            csp_rules("default-src * 'unsafe-inline' 'unsafe-eval'", csp),
            set(&[
                "csp.script-unsafe-inline",
                "csp.script-unsafe-eval",
                "csp.wildcard-source",
                "csp.frame-ancestors-missing",
            ])
        );
        assert_eq!(
            csp_rules(
                "script-src 'nonce-abc123' 'unsafe-inline'; object-src 'none'; frame-ancestors 'self'",
                csp
            ),
            set(&["csp.unsafe-inline-ignored", "csp.base-uri-missing"]),
            "'unsafe-inline' beside a nonce is harmless; a nonce needs base-uri"
        );
        assert_eq!(
            csp_rules(
                "script-src https: data:; frame-ancestors 'none'; base-uri 'self'",
                csp
            ),
            set(&["csp.scheme-source", "csp.object-src-missing"])
        );
        assert_eq!(
            csp_rules("img-src 'self'; frame-ancestors 'none'", csp),
            set(&["csp.object-src-missing"]),
            "no script-src or default-src: plugins are unrestricted"
        );
        assert_eq!(
            csp_rules("default-src 'self'", "content-security-policy-report-only"),
            set(&["csp.report-only"])
        );
    }

    #[test]
    fn fingerprints_do_not_depend_on_how_the_target_was_typed() {
        let observations = [observed(
            1,
            "https://shop.example/",
            https_page(&[("content-type", "text/html")]),
        )];
        let fingerprints = |target: &str| {
            let facts = ScanFacts {
                tenant: "acme",
                target,
                observations: &observations,
            };
            crate::assess("3", &facts)
                .unwrap()
                .findings
                .into_iter()
                .map(|f| f.fingerprint)
                .collect::<Vec<_>>()
        };
        let by_name = fingerprints("shop.example");
        assert!(!by_name.is_empty());
        assert_eq!(by_name, fingerprints("https://shop.example/"));
        assert_eq!(by_name, fingerprints("http://shop.example/"));
    }

    proptest! {
        /// Whatever a server sends, grading and the rules never panic and the score stays in range.
        #[test]
        fn any_headers_grade_without_panicking(
            csp in "\\PC{0,120}",
            hsts in "\\PC{0,40}",
            referrer in "\\PC{0,40}",
            frame in "\\PC{0,20}",
            same_site in proptest::option::of("\\PC{0,10}"),
            cookie_name in "[_A-Za-z-]{1,20}",
            cookie_domain in proptest::option::of("[a-z.]{0,20}"),
        ) {
            let mut page = https_page(&[
                ("content-type", "text/html"),
                ("content-security-policy", &csp),
                ("strict-transport-security", &hsts),
                ("referrer-policy", &referrer),
                ("x-frame-options", &frame),
            ]);
            let cookie = CookieSummary {
                name: cookie_name,
                secure: false,
                http_only: false,
                same_site,
                path: None,
                domain: cookie_domain,
                persistent: false,
            };
            page.hops[0].set_cookies = vec![cookie.clone()];
            page.cookies = vec![cookie];
            page.html = Some(vantage_observations::http::HtmlSummary {
                meta_csp: vec![csp.clone()],
                ..Default::default()
            });
            let observations = [observed(1, "https://shop.example/", page)];
            let facts = ScanFacts { tenant: "acme", target: "shop.example", observations: &observations };
            let assessment = crate::assess("3", &facts).unwrap();
            let headers = assessment.grades.headers.unwrap();
            prop_assert_eq!(headers.tests.len(), 10);
            prop_assert!(assessment.overall.score.is_some_and(|s| s <= 100));
        }
    }
}
