//! DNSSEC validation and DANE against a real authoritative server: BIND (`named`, Debian's bind9)
//! serves a zone signed in the test with keys generated in the test (`dnssec-keygen`,
//! `dnssec-signzone`), whose key is the scanner's only trust anchor. The zone holds a correctly
//! signed name, a name whose signature has expired, an unsigned delegated child zone, and TLSA
//! records that match, and do not match, the certificate an HTTPS site on loopback presents.
//!
//! Each proof is asserted exactly, and then the differential: `delv` (BIND's validating lookup tool)
//! with the same trust anchor must reach the same verdict for every name. The TLSA data are
//! computed with the `openssl` recipe operators use, so Vantage's matching is checked against it.
//!
//! The zone also names a mail exchanger (an SMTP server on loopback, STARTTLS with a certificate
//! that signs itself) with a matching `_25._tcp` TLSA record, and one with a record for another key.
//!
//! `.ci/run` installs `bind9`, `bind9-utils` (the signer) and `bind9-dnsutils` (delv).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use vantage_observations::dns::DnsStatus;
use vantage_observations::dnssec::{DnssecObservation, DnssecProof};
use vantage_probes::dnssec::{DnssecValidator, TrustAnchorChoice, probe_dane, probe_dnssec};
use vantage_probes::ssrf::ResolverChoice;
use vantage_tests::process::{KilledOnDrop, vantage_binary};
use vantage_tests::tls::TestCa;

const ZONE: &str = "vantage.test";

/// The names of the lab and what serves them.
struct DnssecLab {
    _named: KilledOnDrop,
    /// Where `named` answers.
    server: SocketAddr,
    /// The HTTPS site every name of the zone points at (port 443).
    site: Ipv4Addr,
    /// The zone's key as a trust anchor file (`dnssec-keygen`'s `.key`).
    anchor: PathBuf,
    ca_pem: PathBuf,
    dir: tempfile::TempDir,
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A port of `ip` free for both UDP and TCP right now.
fn free_udp_and_tcp_port(ip: Ipv4Addr) -> SocketAddr {
    loop {
        let udp = std::net::UdpSocket::bind((ip, 0)).unwrap();
        let address = udp.local_addr().unwrap();
        if std::net::TcpListener::bind(address).is_ok() {
            return address;
        }
    }
}

/// `openssl … | openssl dgst -sha256` on a certificate file (PEM, or DER when named `.der`): the
/// hex SHA-256 of the certificate (`selector` 0)
/// or of its public key (1), as an operator computes a TLSA record's data.
fn tlsa_data(certificate: &Path, selector: u8) -> String {
    let input = match certificate.extension().and_then(|e| e.to_str()) {
        Some("der") => format!("-inform DER -in {}", certificate.display()),
        _ => format!("-in {}", certificate.display()),
    };
    let pipeline = match selector {
        0 => format!("openssl x509 {input} -outform DER"),
        _ => format!("openssl x509 {input} -noout -pubkey | openssl pkey -pubin -outform DER"),
    };
    let out =
        run(Command::new("sh").args(["-c", &format!("{pipeline} | openssl dgst -sha256 -r")]));
    out.split_whitespace().next().unwrap().to_owned()
}

impl DnssecLab {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        // The HTTPS site, on port 443 of an address of its own, with one certificate for every name.
        let ca = TestCa::new();
        let names = [
            "www.vantage.test",
            "mismatch.vantage.test",
            "expired.vantage.test",
            "ta.vantage.test",
            "www.unsigned.vantage.test",
        ];
        let (chain_pem, key_pem) = ca.leaf_pem(&names);
        let leaf = {
            use rustls::pki_types::pem::PemObject;
            let chain = rustls::pki_types::CertificateDer::pem_slice_iter(chain_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
            (chain, key)
        };
        std::fs::write(path("leaf.pem"), &chain_pem).unwrap();
        std::fs::write(path("ca.pem"), ca.pem()).unwrap();
        // The mail exchanger: STARTTLS with a certificate that signs itself, which only DANE
        // makes acceptable.
        let mx_leaf = vantage_tests::tls::self_signed(&["mx.vantage.test"]);
        std::fs::write(path("mx.der"), &mx_leaf.0[0]).unwrap();
        let (mx, mut mx_listener) = vantage_tests::lab::bind_fresh_address(&[25]).await;
        vantage_tests::smtp::serve_smtp(
            mx_listener.remove(0),
            vantage_tests::smtp::StartTls::Working(vantage_tests::tls::https_config(mx_leaf)),
        );
        let mx_key = tlsa_data(&path("mx.der"), 1);
        let (site, mut listeners) = vantage_tests::lab::bind_fresh_address(&[443]).await;
        let https = vantage_tests::tls::TlsListener::new(
            listeners.remove(0),
            vantage_tests::tls::https_config(leaf),
        );
        let page = axum::Router::new().route("/", axum::routing::get(|| async { "lab" }));
        tokio::spawn(async move { axum::serve(https, page).await });
        // The records: each name at the site; TLSA for the site's key (DANE-EE, `3 1 1`), for a key
        // it does not have, and for the CA it chains to (DANE-TA, `2 0 1`).
        let own_key = tlsa_data(&path("leaf.pem"), 1);
        let ca_cert = tlsa_data(&path("ca.pem"), 0);
        let key = run(Command::new("dnssec-keygen").current_dir(dir.path()).args([
            "-q",
            "-a",
            "ECDSAP256SHA256",
            "-f",
            "KSK",
            "-n",
            "ZONE",
            ZONE,
        ]))
        .trim()
        .to_owned();
        let zone = format!(
            "$TTL 300\n\
             @ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 300\n\
             @ IN NS ns.{ZONE}.\n\
             ns IN A 127.0.0.1\n\
             @ IN A {site}\n\
             @ IN MX 10 mx.{ZONE}.\n\
             mx IN A {mx}\n\
             _25._tcp.mx IN TLSA 3 1 1 {mx_key}\n\
             mail2 IN A {site}\n\
             mail2 IN MX 10 mx2.{ZONE}.\n\
             mx2 IN A {mx}\n\
             _25._tcp.mx2 IN TLSA 3 1 1 {}\n\
             www IN A {site}\n\
             _443._tcp.www IN TLSA 3 1 1 {own_key}\n\
             mismatch IN A {site}\n\
             _443._tcp.mismatch IN TLSA 3 1 1 {}\n\
             ta IN A {site}\n\
             _443._tcp.ta IN TLSA 2 0 1 {ca_cert}\n\
             expired IN A {site}\n\
             unsigned IN NS ns.{ZONE}.\n\
             $INCLUDE {key}.key\n",
            "ab".repeat(32),
            "cd".repeat(32)
        );
        std::fs::write(path("zone"), zone).unwrap();
        std::fs::write(
            path("unsigned.zone"),
            format!(
                "$TTL 300\n\
                 @ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 300\n\
                 @ IN NS ns.{ZONE}.\n\
                 www IN A {site}\n\
                 _443._tcp.www IN TLSA 3 1 1 {own_key}\n"
            ),
        )
        .unwrap();
        // Signed twice: valid for a month, and with a window that ended in 2020; the expired
        // window's signature of expired.vantage.test's address replaces the valid one.
        let sign = |out: &str, window: [&str; 2]| {
            run(Command::new("dnssec-signzone")
                .current_dir(dir.path())
                .args(["-P", "-q", "-z", "-O", "full", "-o", ZONE, "-f", out])
                .args(["-s", window[0], "-e", window[1], "zone"])
                .arg(format!("{key}.private")));
            std::fs::read_to_string(path(out)).unwrap()
        };
        let valid = sign("valid.signed", ["now-3600", "now+2592000"]);
        let old = sign("old.signed", ["20200101000000", "20200201000000"]);
        let expired_signature = |line: &&str| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 4
                && fields[0] == "expired.vantage.test."
                && fields[3] == "RRSIG"
                && fields[4] == "A"
        };
        let stale = old.lines().find(expired_signature).unwrap();
        let mut served: Vec<&str> = valid
            .lines()
            .filter(|line| !expired_signature(line))
            .collect();
        served.push(stale);
        std::fs::write(path("served.signed"), served.join("\n") + "\n").unwrap();
        // named, authoritative only, on a free port of 127.0.0.1 (named listens on interface
        // addresses only, so not on the lab's other loopback addresses).
        let ip = Ipv4Addr::LOCALHOST;
        let server = free_udp_and_tcp_port(ip);
        let dir_text = dir.path().display();
        std::fs::write(
            path("named.conf"),
            format!(
                "options {{ directory \"{dir_text}\"; listen-on port {} {{ {ip}; }}; \
                 listen-on-v6 {{ none; }}; pid-file none; session-keyfile none; \
                 recursion no; dnssec-validation no; }};\n\
                 controls {{ }};\n\
                 zone \"{ZONE}\" {{ type primary; file \"{dir_text}/served.signed\"; }};\n\
                 zone \"unsigned.{ZONE}\" {{ type primary; file \"{dir_text}/unsigned.zone\"; }};\n",
                server.port()
            ),
        )
        .unwrap();
        let named = Command::new("named")
            .args(["-g", "-c"])
            .arg(path("named.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(path("named.log")).unwrap())
            .spawn()
            .unwrap();
        let lab = Self {
            _named: KilledOnDrop(named),
            server,
            site,
            anchor: path(&format!("{key}.key")),
            ca_pem: path("ca.pem"),
            dir,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(server).await.is_ok() {
                return lab;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "named did not start: {}",
            std::fs::read_to_string(lab.dir.path().join("named.log")).unwrap_or_default()
        );
    }

    fn validator(&self) -> DnssecValidator {
        DnssecValidator::new(
            ResolverChoice::Named(self.server),
            &TrustAnchorChoice::File(self.anchor.clone()),
        )
        .unwrap()
    }

    /// delv's verdict on `name`'s addresses with the zone's key as its only trust anchor.
    fn delv(&self, name: &str) -> String {
        let key = std::fs::read_to_string(&self.anchor).unwrap();
        let record = key
            .lines()
            .find(|line| line.contains("DNSKEY"))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>();
        let at = record.iter().position(|f| *f == "DNSKEY").unwrap();
        let anchors = self.dir.path().join("anchors.conf");
        std::fs::write(
            &anchors,
            format!(
                "trust-anchors {{ {ZONE}. static-key {} {} {} \"{}\"; }};\n",
                record[at + 1],
                record[at + 2],
                record[at + 3],
                record[at + 4..].concat()
            ),
        )
        .unwrap();
        let output = Command::new("delv")
            .arg(format!("@{}", self.server.ip()))
            .args(["-p", &self.server.port().to_string()])
            .arg("-a")
            .arg(&anchors)
            .arg(format!("+root={ZONE}"))
            .args([name, "A"])
            .output()
            .unwrap();
        vantage_tests::process::printed(&output)
    }
}

/// What delv's report says, as a proof.
fn delv_proof(report: &str) -> DnssecProof {
    if report.contains("; fully validated") {
        DnssecProof::Secure
    } else if report.contains("; unsigned answer") {
        DnssecProof::Insecure
    } else if report.contains("no valid signature found") {
        DnssecProof::Bogus
    } else {
        DnssecProof::Indeterminate
    }
}

fn question<'a>(seen: &'a [DnssecObservation], record_type: &str) -> &'a DnssecObservation {
    seen.iter().find(|o| o.record_type == record_type).unwrap()
}

#[tokio::test]
async fn validation_proves_each_name_as_delv_does() {
    let lab = DnssecLab::start().await;
    let validator = lab.validator();
    let site = lab.site.to_string();
    let anchors = vec![format!("{ZONE}.")];

    let secure = probe_dnssec(&validator, "www.vantage.test").await;
    assert_eq!(
        question(&secure, "A"),
        &DnssecObservation {
            name: "www.vantage.test".into(),
            record_type: "A".into(),
            status: DnsStatus::Ok,
            proof: DnssecProof::Secure,
            reason: None,
            records: vec![site.clone()],
            truncated: false,
            trust_anchors: anchors.clone(),
        }
    );
    // A name without an IPv6 address or a mail exchanger: a signed denial (NSEC) is secure too.
    for record_type in ["AAAA", "MX"] {
        let seen = question(&secure, record_type);
        assert_eq!(
            (seen.status, seen.proof),
            (DnsStatus::NoRecords, DnssecProof::Secure),
            "{seen:?}"
        );
    }

    let expired = probe_dnssec(&validator, "expired.vantage.test").await;
    let seen = question(&expired, "A");
    assert_eq!(
        (seen.status, seen.proof),
        (DnsStatus::Error, DnssecProof::Bogus)
    );
    assert!(seen.records.is_empty());
    assert_eq!(
        seen.reason.as_deref(),
        Some("the signature over the A records expired at 2020-02-01T00:00:00Z"),
        "the reason delv gives too (asserted below)"
    );

    let unsigned = probe_dnssec(&validator, "www.unsigned.vantage.test").await;
    let seen = question(&unsigned, "A");
    assert_eq!(
        (seen.status, seen.proof, seen.records.clone()),
        (DnsStatus::Ok, DnssecProof::Insecure, vec![site.clone()])
    );

    let missing = probe_dnssec(&validator, "nothere.vantage.test").await;
    let seen = question(&missing, "A");
    assert_eq!(
        (seen.status, seen.proof),
        (DnsStatus::Nxdomain, DnssecProof::Secure)
    );

    // The differential: delv, with the same anchor, on the same server.
    for (name, ours) in [
        ("www.vantage.test", &secure),
        ("expired.vantage.test", &expired),
        ("www.unsigned.vantage.test", &unsigned),
    ] {
        let report = lab.delv(name);
        assert_eq!(
            delv_proof(&report),
            question(ours, "A").proof,
            "{name}: delv says\n{report}"
        );
    }
    let report = lab.delv("nothere.vantage.test");
    assert!(
        report.contains("negative response, fully validated") && report.contains("NXDOMAIN"),
        "delv on a name that does not exist:\n{report}"
    );
    let report = lab.delv("expired.vantage.test");
    assert!(report.contains("RRSIG has expired"), "{report}");
}

#[tokio::test]
async fn a_resolver_without_the_anchors_keys_is_indeterminate_never_bogus() {
    let lab = DnssecLab::start().await;
    // The root zone's keys, but a server that knows nothing of the root: validation cannot start,
    // which says nothing about the domain.
    let rooted =
        DnssecValidator::new(ResolverChoice::Named(lab.server), &TrustAnchorChoice::Root).unwrap();
    for seen in probe_dnssec(&rooted, "expired.vantage.test").await {
        assert_eq!(seen.proof, DnssecProof::Indeterminate, "{seen:?}");
        assert!(
            seen.reason.as_deref().unwrap().contains("trust anchor ."),
            "{seen:?}"
        );
        assert_eq!(seen.trust_anchors, vec![".".to_owned()]);
    }
    // A name no anchor covers is not asked at all.
    let validator = lab.validator();
    for seen in probe_dnssec(&validator, "example.org").await {
        assert_eq!(seen.proof, DnssecProof::Indeterminate, "{seen:?}");
        assert!(
            seen.reason
                .as_deref()
                .unwrap()
                .contains("no trust anchor covers")
        );
    }
    // A trust anchor file that holds no key is refused in one sentence.
    let empty = lab.dir.path().join("empty.key");
    std::fs::write(&empty, "; nothing\n").unwrap();
    let refused = DnssecValidator::new(
        ResolverChoice::Named(lab.server),
        &TrustAnchorChoice::File(empty),
    )
    .unwrap_err();
    assert!(refused.contains("holds no DNSKEY record"), "{refused}");
}

#[tokio::test]
async fn tlsa_records_are_matched_against_the_presented_chain() {
    let lab = DnssecLab::start().await;
    let validator = lab.validator();
    let address = SocketAddr::new(IpAddr::V4(lab.site), 443);

    let own = probe_dane(&validator, "www.vantage.test", address).await;
    assert_eq!(own.name, "_443._tcp.www.vantage.test");
    assert_eq!(
        (own.status, own.proof),
        (DnsStatus::Ok, DnssecProof::Secure)
    );
    assert_eq!(own.chain_length, Some(2));
    let [record] = own.records.as_slice() else {
        panic!("{own:?}")
    };
    assert_eq!(
        (record.usage, record.selector, record.matching_type),
        (3, 1, 1)
    );
    assert_eq!(record.data, tlsa_data(&lab.dir.path().join("leaf.pem"), 1));
    assert_eq!(record.matched_position, Some(0), "the server's own key");

    let anchor = probe_dane(&validator, "ta.vantage.test", address).await;
    assert_eq!(
        anchor.records[0].matched_position,
        Some(1),
        "the CA, second in the chain"
    );

    let other = probe_dane(&validator, "mismatch.vantage.test", address).await;
    assert_eq!(other.proof, DnssecProof::Secure);
    assert_eq!(other.records[0].matched_position, None);

    let unsigned = probe_dane(&validator, "www.unsigned.vantage.test", address).await;
    assert_eq!(unsigned.proof, DnssecProof::Insecure);
    assert_eq!(unsigned.records[0].matched_position, Some(0));

    // No TLSA records (the name does not exist, provably): nothing to compare, no handshake.
    let none = probe_dane(&validator, "expired.vantage.test", address).await;
    assert_eq!(
        (none.status, none.proof),
        (DnsStatus::Nxdomain, DnssecProof::Secure)
    );
    assert!(none.records.is_empty());
    assert_eq!((none.chain_length, none.error), (None, None));
}

/// `vantage scan` of `typed` through the lab's DNS and anchor; the rule ids of the DNSSEC and DANE
/// findings.
async fn scanned_rules(lab: &DnssecLab, typed: &str, profile: &str) -> Vec<String> {
    let args: Vec<String> = vec![
        "scan".into(),
        typed.into(),
        "--json".into(),
        "--profile".into(),
        profile.into(),
        "--allow-cidr".into(),
        "127.0.0.0/8".into(),
        "--resolver".into(),
        lab.server.to_string(),
        "--dnssec-trust-anchor".into(),
        lab.anchor.display().to_string(),
        "--extra-ca".into(),
        lab.ca_pem.display().to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new(vantage_binary())
            .args(&args)
            .env("VANTAGE_LOG", "error")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{typed}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ruleset_version"], vantage_rules::RULESET_VERSION);
    let mut rules: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap().to_owned())
        .filter(|id| {
            id.starts_with("dns.dnssec")
                || id.starts_with("tls.dane")
                || id.starts_with("email.starttls")
                || id == "email.mx-certificate-invalid"
        })
        .collect();
    rules.sort();
    rules
}

#[tokio::test]
async fn scans_report_dnssec_and_dane_findings_whatever_the_typing() {
    let lab = DnssecLab::start().await;
    let expected: [(&str, &[&str]); 5] = [
        ("www.vantage.test", &[]),
        ("ta.vantage.test", &[]),
        ("expired.vantage.test", &["dns.dnssec-bogus"]),
        ("mismatch.vantage.test", &["tls.dane-mismatch"]),
        (
            "www.unsigned.vantage.test",
            &["dns.dnssec-unsigned", "tls.dane-not-validated"],
        ),
    ];
    for (name, rules) in expected {
        for typed in [
            name.to_owned(),
            format!("http://{name}"),
            format!("https://{name}/"),
        ] {
            assert_eq!(scanned_rules(&lab, &typed, "quick").await, rules, "{typed}");
        }
    }
    // Mail (standard profile): the exchanger's self-signed certificate is what its secure TLSA
    // record names, so senders that use DANE accept it; the second domain's exchanger has a TLSA
    // record for another key, and no web PKI certificate to fall back on.
    assert_eq!(
        scanned_rules(&lab, "vantage.test", "standard").await,
        Vec::<String>::new()
    );
    assert_eq!(
        scanned_rules(&lab, "mail2.vantage.test", "standard").await,
        ["email.mx-certificate-invalid", "tls.dane-mismatch"]
    );
    // A bad trust anchor file is refused before anything is scanned, in one sentence.
    let output = Command::new(vantage_binary())
        .args(["scan", "www.vantage.test", "--dnssec-trust-anchor"])
        .arg(lab.dir.path().join("missing.key"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read the DNSSEC trust anchor file"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
