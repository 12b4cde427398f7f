//! The TLS probe against real TLS servers on loopback with certificates from a test CA: a good
//! chain, an expired one, a name mismatch, a self-signed one, and a TLS-1.3-only server.

use vantage_probes::tls::{TlsDepth, TlsRoots, probe_tls};
use vantage_tests::tls::{TestCa, self_signed, tls_server};

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[tokio::test]
async fn a_good_chain_is_trusted_and_described() {
    let ca = TestCa::new();
    let address = tls_server(ca.leaf(&["shop.test"], None), BOTH).await;
    let roots = TlsRoots::with_extra(vec![ca.certificate.clone()]);
    let seen = probe_tls(address, "shop.test", &roots, TlsDepth::Versions).await;
    assert!(seen.handshake, "{:?}", seen.error);
    assert_eq!(seen.protocol.as_deref(), Some("TLSv1_3"));
    assert!(seen.cipher_suite.as_deref().unwrap().starts_with("TLS13_"));
    assert!(seen.tls12 && seen.tls13);
    assert_eq!(seen.trusted, Some(true), "{:?}", seen.verification_error);
    assert_eq!(seen.hostname_match, Some(true));
    let leaf = &seen.chain[0];
    assert_eq!(leaf.sans, ["shop.test"]);
    assert!(leaf.subject.contains("shop.test"));
    assert!(leaf.issuer.contains("Vantage Test CA"));
    assert_eq!(leaf.key_type, "EC");
    assert_eq!(leaf.key_bits, Some(256));
    assert_eq!(leaf.signature_algorithm, "ecdsa-with-SHA256");
    assert!(leaf.days_left > 0);
    assert!(!leaf.self_signed);
    assert_eq!(seen.chain.len(), 2);
    // Without the lab CA, the same chain is not trusted.
    let web_only = probe_tls(
        address,
        "shop.test",
        &TlsRoots::web_pki(),
        TlsDepth::Versions,
    )
    .await;
    assert_eq!(web_only.trusted, Some(false));
}

#[tokio::test]
async fn an_expired_certificate_is_not_trusted() {
    let ca = TestCa::new();
    let address = tls_server(ca.leaf(&["shop.test"], Some((2020, 2021))), BOTH).await;
    let seen = probe_tls(
        address,
        "shop.test",
        &TlsRoots::with_extra(vec![ca.certificate.clone()]),
        TlsDepth::Versions,
    )
    .await;
    assert!(
        seen.handshake,
        "the handshake still completes so the certificate can be seen"
    );
    assert_eq!(seen.trusted, Some(false));
    assert_eq!(
        seen.verification_error.as_deref(),
        Some("the certificate has expired")
    );
    assert!(seen.chain[0].days_left < 0);
    assert!(seen.chain[0].not_after.starts_with("2021-01-01"));
}

#[tokio::test]
async fn a_name_mismatch_is_told_apart_from_trust() {
    let ca = TestCa::new();
    let address = tls_server(ca.leaf(&["other.test"], None), BOTH).await;
    let seen = probe_tls(
        address,
        "shop.test",
        &TlsRoots::with_extra(vec![ca.certificate.clone()]),
        TlsDepth::Versions,
    )
    .await;
    assert_eq!(seen.trusted, Some(true));
    assert_eq!(seen.hostname_match, Some(false));
}

#[tokio::test]
async fn a_self_signed_certificate_is_not_trusted() {
    let address = tls_server(self_signed(&["shop.test"]), BOTH).await;
    let seen = probe_tls(
        address,
        "shop.test",
        &TlsRoots::web_pki(),
        TlsDepth::Versions,
    )
    .await;
    assert_eq!(seen.trusted, Some(false));
    assert_eq!(
        seen.verification_error.as_deref(),
        Some("the certificate is not issued by a trusted authority")
    );
    assert!(seen.chain[0].self_signed);
    assert_eq!(seen.hostname_match, Some(true));
}

#[tokio::test]
async fn accepted_versions_are_probed_one_by_one() {
    let ca = TestCa::new();
    let address = tls_server(ca.leaf(&["shop.test"], None), &[&rustls::version::TLS13]).await;
    let seen = probe_tls(
        address,
        "shop.test",
        &TlsRoots::with_extra(vec![ca.certificate.clone()]),
        TlsDepth::Versions,
    )
    .await;
    assert!(seen.tls13);
    assert!(!seen.tls12);
}

#[tokio::test]
async fn no_tls_at_all_is_an_observation() {
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = plain.local_addr().unwrap();
    drop(plain);
    let seen = probe_tls(
        address,
        "shop.test",
        &TlsRoots::web_pki(),
        TlsDepth::Versions,
    )
    .await;
    assert!(!seen.handshake);
    assert_eq!(seen.error.as_deref(), Some("connection failed"));
}

/// What ruleset 2 makes of the TLS observations above.
#[tokio::test]
async fn tls_findings_follow_the_observations() {
    let ca = TestCa::new();
    let roots = TlsRoots::with_extra(vec![ca.certificate.clone()]);
    let good = tls_server(ca.leaf(&["shop.test"], None), BOTH).await;
    let expired = tls_server(
        ca.leaf(&["shop.test"], Some((2020, 2021))),
        &[&rustls::version::TLS12],
    )
    .await;
    let mismatched = tls_server(ca.leaf(&["other.test"], None), BOTH).await;
    let rules_for = |seen: vantage_observations::tls::TlsObservation| {
        let observed = vantage_tests::observation(0, &seen.address.to_string(), seen.clone());
        vantage_tests::rule_ids("2", "https://shop.test/", &[observed])
    };
    let grade_of = |seen: &vantage_observations::tls::TlsObservation| {
        vantage_rules::grade::grade_tls(seen, false).unwrap().grade
    };
    assert_eq!(
        grade_of(&probe_tls(good, "shop.test", &roots, TlsDepth::Versions).await),
        "A"
    );
    assert_eq!(
        grade_of(&probe_tls(expired, "shop.test", &roots, TlsDepth::Versions).await),
        "T"
    );
    assert_eq!(
        grade_of(&probe_tls(mismatched, "shop.test", &roots, TlsDepth::Versions).await),
        "M"
    );
    assert_eq!(
        grade_of(&probe_tls(good, "shop.test", &TlsRoots::web_pki(), TlsDepth::Versions).await),
        "T"
    );
    assert!(rules_for(probe_tls(good, "shop.test", &roots, TlsDepth::Versions).await).is_empty());
    assert_eq!(
        rules_for(probe_tls(expired, "shop.test", &roots, TlsDepth::Versions).await),
        ["tls.certificate-expired", "tls.no-tls13"]
    );
    assert_eq!(
        rules_for(probe_tls(mismatched, "shop.test", &roots, TlsDepth::Versions).await),
        ["tls.hostname-mismatch"]
    );
    assert_eq!(
        rules_for(probe_tls(good, "shop.test", &TlsRoots::web_pki(), TlsDepth::Versions).await),
        ["tls.certificate-untrusted"]
    );
}

/// A TLS-1.0-only server (OpenSSL at security level 0, as old servers run): rustls cannot talk to
/// it, the hand-built ClientHello can, and only TLS 1.0 is reported.
#[tokio::test]
async fn a_tls_1_0_only_server_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
        .unwrap_or_else(|_| rcgen::KeyPair::generate().unwrap());
    let cert = rcgen::CertificateParams::new(vec!["legacy.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-tls1",
            "-quiet",
        ])
        .args(["-cipher", "DEFAULT:@SECLEVEL=0", "-cert"])
        .arg(dir.path().join("cert.pem"))
        .arg("-key")
        .arg(dir.path().join("key.pem"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl is installed by .ci/run");
    let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let seen = probe_tls(
        address,
        "legacy.test",
        &TlsRoots::web_pki(),
        TlsDepth::Versions,
    )
    .await;
    let _ = server.kill();
    let _ = server.wait();
    assert!(seen.tls10, "TLS 1.0 must be detected: {seen:?}");
    assert!(!seen.tls11 && !seen.tls12 && !seen.tls13, "{seen:?}");
    assert!(!seen.handshake, "rustls does not speak TLS 1.0");
    let grade = vantage_rules::grade::grade_tls(&seen, false).unwrap();
    assert_eq!(grade.grade, "C", "{:?}", grade.caps);
}

#[tokio::test]
async fn modern_servers_refuse_legacy_versions() {
    let ca = TestCa::new();
    let address = tls_server(ca.leaf(&["shop.test"], None), BOTH).await;
    let seen = probe_tls(
        address,
        "shop.test",
        &TlsRoots::with_extra(vec![ca.certificate.clone()]),
        TlsDepth::Versions,
    )
    .await;
    assert!(!seen.tls10 && !seen.tls11);
    assert!(seen.tls12 && seen.tls13);
}

#[tokio::test]
async fn ocsp_stapling_is_recorded() {
    let ca = TestCa::new();
    let roots = TlsRoots::with_extra(vec![ca.certificate.clone()]);
    let stapling = vantage_tests::tls::tls_server_stapling(
        ca.leaf(&["shop.test"], None),
        vec![0x30, 0x03, 0x0a, 0x01, 0x00],
    )
    .await;
    assert!(
        probe_tls(stapling, "shop.test", &roots, TlsDepth::Versions)
            .await
            .ocsp_stapled
    );
    let plain = tls_server(ca.leaf(&["shop.test"], None), BOTH).await;
    assert!(
        !probe_tls(plain, "shop.test", &roots, TlsDepth::Versions)
            .await
            .ocsp_stapled
    );
}

/// Certificate transparency and Must-Staple are read from the leaf; under ruleset 4 a Must-Staple
/// certificate served without a staple is a finding, and with one it is not.
#[tokio::test]
async fn embedded_scts_and_must_staple_are_read_from_the_leaf() {
    let ca = TestCa::new();
    let roots = TlsRoots::with_extra(vec![ca.certificate.clone()]);
    let extensions = || {
        vec![
            vantage_tests::tls::must_staple_extension(),
            vantage_tests::tls::sct_list_extension(2),
        ]
    };
    let unstapled = tls_server(ca.leaf_with(&["shop.test"], None, extensions()), BOTH).await;
    let seen = probe_tls(unstapled, "shop.test", &roots, TlsDepth::Versions).await;
    assert_eq!(seen.chain[0].embedded_scts, Some(2));
    assert!(seen.chain[0].must_staple);
    assert_eq!(
        seen.chain[1].embedded_scts,
        Some(0),
        "the CA certificate has none"
    );
    assert!(!seen.chain[1].must_staple);
    let rules = |seen: vantage_observations::tls::TlsObservation| {
        let observed = vantage_tests::observation(0, &seen.address.to_string(), seen);
        vantage_tests::rule_ids("4", "https://shop.test/", &[observed])
    };
    assert!(rules(seen).contains(&"tls.must-staple-not-stapled".to_owned()));
    let stapled = vantage_tests::tls::tls_server_stapling(
        ca.leaf_with(&["shop.test"], None, extensions()),
        vec![0x30, 0x03, 0x0a, 0x01, 0x00],
    )
    .await;
    let seen = probe_tls(stapled, "shop.test", &roots, TlsDepth::Versions).await;
    assert!(seen.ocsp_stapled && seen.chain[0].must_staple);
    assert!(!rules(seen).contains(&"tls.must-staple-not-stapled".to_owned()));
}

/// rustls ignores TLS_FALLBACK_SCSV, but as a TLS 1.3 server answering TLS 1.2 it writes RFC 8446's
/// downgrade sentinel into its random, which TLS 1.3 clients refuse: downgrade protection all the
/// same, and no `tls.no-fallback-scsv` finding.
#[tokio::test]
async fn a_tls_1_3_server_protects_downgrades_with_its_sentinel() {
    let ca = TestCa::new();
    let address = tls_server(ca.leaf(&["shop.test"], None), BOTH).await;
    let roots = TlsRoots::with_extra(vec![ca.certificate.clone()]);
    let seen = probe_tls(address, "shop.test", &roots, TlsDepth::Suites).await;
    let facts = seen
        .protocol_facts
        .clone()
        .expect("probed with the enumeration");
    assert_eq!(facts.fallback_scsv, Some(true));
    assert_eq!(facts.secure_renegotiation, Some(true));
    let observed = vantage_tests::observation(0, &seen.address.to_string(), seen);
    assert!(
        !vantage_tests::rule_ids("4", "https://shop.test/", &[observed])
            .contains(&"tls.no-fallback-scsv".to_owned())
    );
}

/// `openssl s_client`'s verify return code for `address`, trusting `ca_pem` only.
async fn openssl_verify_code(address: std::net::SocketAddr, name: &str, ca_pem: &str) -> String {
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), ca_pem).unwrap();
    let mut command = std::process::Command::new("openssl");
    command
        .args([
            "s_client",
            "-connect",
            &address.to_string(),
            "-servername",
            name,
        ])
        .arg("-CAfile")
        .arg(ca.path())
        .stdin(std::process::Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines()
        .find_map(|line| line.trim().strip_prefix("Verify return code: "))
        .unwrap_or("none")
        .to_owned()
}

#[tokio::test]
async fn how_a_chain_is_built_is_recorded_and_judged() {
    let root = TestCa::new();
    let intermediate = root.intermediate();
    let roots = TlsRoots::with_extra(vec![root.certificate.clone()]);
    let (full, key) = intermediate.leaf(&["chain.test"], None);
    let [leaf, middle] = [full[0].clone(), full[1].clone()];
    let key = || key.clone_key();
    // (chain sent, ordered, root sent, incomplete, trusted, OpenSSL's verify code, findings)
    type Case<'a> = (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        bool,
        bool,
        bool,
        bool,
        &'a str,
        &'a [&'a str],
    );
    let cases: [Case<'_>; 4] = [
        (
            vec![leaf.clone(), middle.clone()],
            true,
            false,
            false,
            true,
            "0 (ok)",
            &[],
        ),
        (
            vec![leaf.clone()],
            true,
            false,
            true,
            false,
            "21 (unable to verify the first certificate)",
            &["tls.chain-incomplete"],
        ),
        (
            vec![leaf.clone(), root.certificate.clone(), middle.clone()],
            false,
            false,
            false,
            true,
            "0 (ok)",
            &["tls.chain-misordered"],
        ),
        (
            vec![leaf.clone(), middle.clone(), root.certificate.clone()],
            true,
            true,
            false,
            true,
            "0 (ok)",
            &["tls.chain-root-sent"],
        ),
    ];
    for (sent, ordered, root_sent, incomplete, trusted, openssl, rules) in cases {
        let length = sent.len();
        let address = tls_server((sent, key()), BOTH).await;
        let seen = probe_tls(address, "chain.test", &roots, TlsDepth::Versions).await;
        let facts = seen.chain_facts.unwrap();
        assert_eq!(
            (
                facts.ordered,
                facts.root_sent,
                facts.incomplete,
                seen.trusted
            ),
            (ordered, root_sent, incomplete, Some(trusted)),
            "a chain of {length}: {seen:?}"
        );
        assert!(
            !facts.issuer_fetchable,
            "the lab's certificates carry no AIA"
        );
        // The second opinion on whether the chain is complete.
        assert_eq!(
            openssl_verify_code(address, "chain.test", root.pem()).await,
            openssl,
            "a chain of {length}"
        );
        let observed = vantage_tests::observation(0, &address.to_string(), seen);
        let chain_rules: Vec<String> =
            vantage_tests::rule_ids("5", "https://chain.test/", &[observed])
                .into_iter()
                .filter(|id| id.starts_with("tls.chain-"))
                .collect();
        assert_eq!(chain_rules, rules, "a chain of {length}");
    }
}
