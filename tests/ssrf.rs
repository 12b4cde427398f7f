//! The SSRF guard with real resolution: names that resolve into non-public space are refused, against
//! a real DNS server on loopback. (Literal addresses and names are table-tested in the probes crate.)

use std::net::IpAddr;

use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::{A, AAAA};
use vantage_probes::ssrf::{AllowList, Refusal, ResolverChoice, SsrfGuard, SsrfPolicy};
use vantage_tests::dns::TestDns;

fn a(ip: &str) -> RData {
    RData::A(A(ip.parse().unwrap()))
}

fn aaaa(ip: &str) -> RData {
    RData::AAAA(AAAA(ip.parse().unwrap()))
}

async fn zone() -> TestDns {
    TestDns::start(vec![
        ("public.example", a("93.184.215.14")),
        (
            "public.example",
            aaaa("2606:2800:21f:cb07:6820:80da:af6b:8b2c"),
        ),
        ("intranet-app.example", a("10.20.30.40")),
        ("rebind.example", a("93.184.215.14")),
        ("rebind.example", a("192.168.0.10")),
        ("metadata.example", a("169.254.169.254")),
        ("v6-ula.example", aaaa("fd00::5")),
        ("v6-mapped.example", aaaa("::ffff:127.0.0.1")),
        ("loopback.example", a("127.0.0.1")),
        ("cgnat.example", a("100.64.1.1")),
        (
            "no-address.example",
            RData::TXT(hickory_proto::rr::rdata::TXT::new(vec![
                "v=spf1 -all".into(),
            ])),
        ),
    ])
    .await
}

fn guard(dns: &TestDns, allow: &str) -> SsrfGuard {
    SsrfGuard::new(
        SsrfPolicy::new(AllowList::parse(allow).unwrap()),
        ResolverChoice::Named(dns.address),
    )
    .unwrap()
}

#[tokio::test]
async fn names_resolving_to_private_space_are_refused() {
    let dns = zone().await;
    let guard = guard(&dns, "");
    for (host, fragment) in [
        ("intranet-app.example", "private"),
        ("rebind.example", "192.168.0.10"),
        ("metadata.example", "cloud metadata"),
        ("v6-ula.example", "unique-local"),
        ("v6-mapped.example", "loopback"),
        ("loopback.example", "loopback"),
        ("cgnat.example", "carrier-grade NAT"),
    ] {
        let refusal = guard.vet_host(host).await.expect_err(host);
        assert!(
            matches!(refusal, Refusal::Address { .. }),
            "{host}: {refusal:?}"
        );
        assert!(refusal.to_string().contains(fragment), "{host}: {refusal}");
    }
}

#[tokio::test]
async fn public_names_pass_with_exactly_the_addresses_checked() {
    let dns = zone().await;
    let guard = guard(&dns, "");
    let mut addresses = guard.vet_host("public.example").await.unwrap();
    addresses.sort();
    let expected: Vec<IpAddr> = vec![
        "93.184.215.14".parse().unwrap(),
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c".parse().unwrap(),
    ];
    assert_eq!(addresses, expected);
}

#[tokio::test]
async fn unresolvable_names_are_refused() {
    let dns = zone().await;
    let guard = guard(&dns, "");
    for host in ["missing.example", "no-address.example"] {
        assert!(
            matches!(
                guard.vet_host(host).await,
                Err(Refusal::Unresolvable { .. })
            ),
            "{host}"
        );
    }
}

#[tokio::test]
async fn a_lab_allow_list_admits_loopback_names_and_nothing_else() {
    let dns = zone().await;
    let guard = guard(&dns, "127.0.0.0/8");
    assert_eq!(
        guard.vet_host("loopback.example").await.unwrap(),
        vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
    );
    assert!(guard.vet_host("v6-mapped.example").await.is_ok());
    assert!(guard.vet_host("intranet-app.example").await.is_err());
    assert!(guard.vet_host("localhost").await.is_err());
}
