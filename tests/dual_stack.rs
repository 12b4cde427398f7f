//! IPv6 reachability and IPv4/IPv6 parity, on a dual-stack lab in a network namespace of the test's
//! own, where each site has an IPv4 and an IPv6 address: a site served the same on both families,
//! one whose IPv6 address serves another site's pages, one whose IPv6 address has no server, and one
//! with no IPv6 address at all — each scanned the three ways users type it, with one verdict. curl,
//! sent to each family's address, is the second opinion on what each family answers.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use vantage_domain::target::Profile;
use vantage_observations::Observation;
use vantage_observations::dual_stack::{DualStackObservation, FamilyAnswer};
use vantage_rules::Assessment;
use vantage_tests::lab::{Ipv6Serving, Lab, Posture};
use vantage_tests::netns::Netns;

const IPV6_RULES: [&str; 3] = [
    "dns.ipv6-missing",
    "http.ipv6-unreachable",
    "http.ipv6-mismatch",
];

/// The IPv6 rules' findings: (rule, asset).
fn ipv6_findings(assessment: &Assessment) -> BTreeSet<(String, String)> {
    assessment
        .findings
        .iter()
        .filter(|f| IPV6_RULES.contains(&f.rule_id.as_str()))
        .map(|f| (f.rule_id.clone(), f.asset.clone()))
        .collect()
}

fn expected(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(rule, asset)| ((*rule).to_owned(), (*asset).to_owned()))
        .collect()
}

/// What curl saw at `address` for `url`: the status and the headers (lower-case names), or its exit
/// code when nothing answered.
#[derive(Debug)]
struct CurlAnswer {
    status: Option<u16>,
    headers: Vec<(String, String)>,
    exit: i32,
}

impl CurlAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn curl(netns: &Netns, lab: &Lab, url: &str, address: SocketAddr) -> CurlAnswer {
    let parsed = url::Url::parse(url).unwrap();
    let host = parsed.host_str().unwrap().to_owned();
    let ip = match address.ip() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let mut command = netns.command("curl");
    command.args([
        "--silent",
        "--max-time",
        "5",
        "--output",
        "/dev/null",
        "--dump-header",
        "-",
        "--cacert",
        lab.ca_pem.path().to_str().unwrap(),
        "--resolve",
        &format!("{host}:{}:{ip}", address.port()),
        url,
    ]);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok());
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    CurlAnswer {
        status,
        headers,
        exit: out.status.code().unwrap_or(-1),
    }
}

/// Our answer for one family agrees with curl's at the same address: the status, and the values of
/// the headers that tell the sites apart.
async fn agrees_with_curl(netns: &Netns, lab: &Lab, url: &str, ours: &FamilyAnswer) {
    let theirs = curl(netns, lab, url, ours.address).await;
    assert_eq!(
        ours.status, theirs.status,
        "{url} at {}: {theirs:?}",
        ours.address
    );
    if ours.status.is_none() {
        assert_eq!(theirs.exit, 7, "curl could not connect either: {theirs:?}");
        return;
    }
    for header in [
        "location",
        "content-security-policy",
        "strict-transport-security",
        "x-frame-options",
    ] {
        assert_eq!(
            ours.headers.get(header).map(String::as_str),
            theirs.header(header),
            "{url} at {}: {header}",
            ours.address
        );
    }
}

#[test]
fn each_family_is_asked_and_the_answers_are_compared() {
    let netns = Netns::create();
    netns.run(async {
        let lab = Lab::start_dual_stack(
            &netns,
            &[
                (Posture::GoodHttps, Some(Ipv6Serving::Same)),
                (
                    Posture::WeakCsp,
                    Some(Ipv6Serving::Like(Posture::GoodHttps)),
                ),
                (
                    Posture::SecurityTxtBehindRedirect,
                    Some(Ipv6Serving::Nothing),
                ),
                (Posture::PlainHttp, None),
            ],
        )
        .await;
        let verdicts = [
            (Posture::GoodHttps, expected(&[])),
            (
                Posture::WeakCsp,
                expected(&[
                    ("http.ipv6-mismatch", "http://weak-csp.example/"),
                    ("http.ipv6-mismatch", "https://weak-csp.example/"),
                ]),
            ),
            (
                Posture::SecurityTxtBehindRedirect,
                expected(&[
                    ("http.ipv6-unreachable", "http://security-txt.example/"),
                    ("http.ipv6-unreachable", "https://security-txt.example/"),
                ]),
            ),
            (
                Posture::PlainHttp,
                expected(&[("dns.ipv6-missing", "plain-http.example")]),
            ),
        ];
        for (posture, want) in verdicts {
            let site = lab.site(posture).clone();
            let mut compared: Vec<DualStackObservation> = Vec::new();
            for typed in site.typings() {
                let (observations, assessment) = lab.scan_with(&typed, Profile::Quick).await;
                assert_eq!(ipv6_findings(&assessment), want, "{typed}");
                compared = observations
                    .into_iter()
                    .filter_map(|seen| match seen.observation {
                        Observation::DualStack(data) => Some(*data),
                        _ => None,
                    })
                    .collect();
            }
            // Each family's first address, on every open web port.
            let urls: Vec<&str> = compared.iter().map(|seen| seen.url.as_str()).collect();
            let name = posture.name();
            match site.ipv6 {
                None => assert!(compared.is_empty(), "{name}: nothing to compare"),
                Some(ipv6) => {
                    let origins = [format!("http://{name}/"), format!("https://{name}/")];
                    assert_eq!(urls, origins, "{name}");
                    for seen in &compared {
                        assert_eq!(seen.ipv4.address.ip(), IpAddr::V4(site.ip));
                        assert_eq!(seen.ipv6.address.ip(), IpAddr::V6(ipv6));
                        agrees_with_curl(&netns, &lab, &seen.url, &seen.ipv4).await;
                        agrees_with_curl(&netns, &lab, &seen.url, &seen.ipv6).await;
                    }
                }
            }
            match posture {
                Posture::GoodHttps => {
                    for seen in &compared {
                        assert_eq!(seen.ipv4.status, seen.ipv6.status, "{}", seen.url);
                        assert_eq!(seen.ipv4.headers, seen.ipv6.headers, "{}", seen.url);
                    }
                }
                Posture::WeakCsp => {
                    let https = &compared[1];
                    assert_eq!(
                        (https.ipv4.status, https.ipv6.status),
                        (Some(200), Some(200))
                    );
                    assert_ne!(
                        https.ipv4.headers.get("content-security-policy"),
                        https.ipv6.headers.get("content-security-policy")
                    );
                    // Port 80 sends each family to another site.
                    let http = &compared[0];
                    assert_eq!(
                        http.ipv4.headers.get("location").map(String::as_str),
                        Some("https://weak-csp.example/")
                    );
                    assert_eq!(
                        http.ipv6.headers.get("location").map(String::as_str),
                        Some("https://good-https.example/")
                    );
                }
                Posture::SecurityTxtBehindRedirect => {
                    for seen in &compared {
                        assert!(seen.ipv4.status.is_some(), "{}", seen.url);
                        assert_eq!(seen.ipv6.status, None, "{}", seen.url);
                        assert_eq!(
                            seen.ipv6.error.as_deref(),
                            Some("connection failed"),
                            "{}",
                            seen.url
                        );
                    }
                }
                _ => {}
            }
        }
        // The mismatch's evidence names what differs, in words.
        let (_, assessment) = lab
            .scan_with("https://weak-csp.example/", Profile::Quick)
            .await;
        let mismatch = assessment
            .findings
            .iter()
            .find(|f| f.rule_id == "http.ipv6-mismatch" && f.asset.starts_with("https://"))
            .unwrap();
        let differences = mismatch.evidence["differences"].as_array().unwrap();
        assert!(
            differences
                .iter()
                .any(|d| d == "content-security-policy differs"),
            "{differences:?}"
        );
    });
}
