//! The response headers a site sends, as the header grade, every ruleset and the analysis summary
//! read them: the CSP, HSTS, Referrer-Policy, CORS, cookie-related and `Alt-Svc` parsers. Input:
//! `name: value` lines. Grading returns a grade or nothing, never panics, and a grade's letter is
//! its score's; the summary reads at most its bound of alternative services.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use vantage_domain::ids::ObservationId;
use vantage_domain::scan::ProbeObserved;
use vantage_observations::Observation;
use vantage_observations::http::HttpObservation;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut header_names = Vec::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        header_names.push(name.clone());
        headers
            .entry(name)
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(value.trim());
            })
            .or_insert_with(|| value.trim().to_owned());
    }
    let http = HttpObservation {
        url: "https://example.com/".into(),
        hops: Vec::new(),
        final_url: Some("https://example.com/".into()),
        status: Some(200),
        headers,
        header_names,
        cookies: Vec::new(),
        body_bytes: Some(0),
        html: None,
        cors_preflight: None,
        elapsed_ms: 0,
        refused_redirect: None,
        error: None,
    };
    if let Some(grade) = vantage_rules::grade::grade_headers(&http) {
        assert_eq!(grade.grade, vantage_rules::grade::letter(grade.score));
    }
    let observations = [ProbeObserved {
        observation_id: ObservationId(Default::default()),
        asset: "https://example.com/".into(),
        observation: Observation::Http(Box::new(http)),
    }];
    let facts = vantage_rules::ScanFacts {
        tenant: "fuzz",
        target: "https://example.com/",
        observations: &observations,
    };
    let analysis = vantage_rules::analysis::analyze(&observations);
    for path in &analysis.paths {
        assert!(path.alternative_services.len() <= vantage_rules::alt_svc::MAX_ALTERNATIVES);
    }
    for ruleset in vantage_rules::RULESETS {
        let _ = vantage_rules::assess(ruleset, &facts);
    }
});
