//! The mail exchangers' STARTTLS against SMTP servers on loopback — port 25 of addresses of their
//! own, named in a lab DNS server — that offer STARTTLS with a good certificate, with one for
//! another name, not at all, with a broken handshake, and with plaintext injected before it. Each
//! observation is asserted exactly; `openssl s_client -starttls smtp` on the same servers is the
//! second opinion on the protocol and the certificate's verdict; and a standard scan of the domain
//! through the real worker gives one finding per weak exchanger.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;

use hickory_proto::rr::rdata::{A, MX};
use hickory_proto::rr::{Name, RData};
use vantage_domain::target::Profile;
use vantage_observations::Observation;
use vantage_observations::mail::SmtpTlsObservation;
use vantage_probes::smtp::{MailExchanger, SMTP_PORT, probe_starttls};
use vantage_probes::ssrf::{AllowList, ResolverChoice, SsrfGuard, SsrfPolicy};
use vantage_probes::tls::TlsRoots;
use vantage_tests::dns::TestDns;
use vantage_tests::lab::{bind_fresh_address, scan_with_scanner};
use vantage_tests::smtp::{StartTls, serve_smtp};
use vantage_tests::tls::{TestCa, https_config};

/// The lab's exchangers, by name, and what each does.
const EXCHANGERS: [&str; 5] = [
    "good.mail.test",
    "wrong-name.mail.test",
    "plain.mail.test",
    "broken.mail.test",
    "injected.mail.test",
];

struct MailLab {
    dns: TestDns,
    ca: TestCa,
    ca_pem: tempfile::NamedTempFile,
    addresses: Vec<Ipv4Addr>,
}

impl MailLab {
    async fn start() -> Self {
        let ca = TestCa::new();
        let config = |name: &str| https_config(ca.leaf(&[name], None));
        let mut addresses = Vec::new();
        for (name, starttls) in EXCHANGERS.iter().zip([
            StartTls::Working(config("good.mail.test")),
            StartTls::Working(config("someone-else.test")),
            StartTls::NotOffered,
            StartTls::Broken,
            StartTls::Injected(config("injected.mail.test")),
        ]) {
            let (ip, mut listeners) = bind_fresh_address(&[SMTP_PORT]).await;
            serve_smtp(listeners.remove(0), starttls);
            addresses.push(ip);
            let _ = name;
        }
        let mut zone: Vec<(&str, RData)> = EXCHANGERS
            .iter()
            .zip(&addresses)
            .map(|(name, ip)| (*name, RData::A(A(*ip))))
            .collect();
        // The domain itself: an address, and every exchanger (the scan talks to the first three by
        // preference).
        zone.push(("filtered.mail.test", RData::A(A(Ipv4Addr::LOCALHOST))));
        zone.push(("mail.test", RData::A(A(addresses[0]))));
        zone.push(("broken.test", RData::A(A(addresses[0]))));
        for (domain, preference, name) in [
            ("mail.test", 40, "broken.mail.test"),
            ("mail.test", 10, "good.mail.test"),
            ("mail.test", 30, "plain.mail.test"),
            ("mail.test", 20, "wrong-name.mail.test"),
            ("broken.test", 10, "broken.mail.test"),
        ] {
            let exchanger = Name::from_ascii(format!("{name}.")).unwrap();
            zone.push((domain, RData::MX(MX::new(preference, exchanger))));
        }
        let dns = TestDns::start(zone).await;
        let mut ca_pem = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut ca_pem, ca.pem().as_bytes()).unwrap();
        Self {
            dns,
            ca,
            ca_pem,
            addresses,
        }
    }

    fn guard(&self) -> SsrfGuard {
        SsrfGuard::new(
            SsrfPolicy::new(AllowList::parse("127.0.0.0/8").unwrap()),
            ResolverChoice::Named(self.dns.address),
        )
        .unwrap()
    }

    fn roots(&self) -> TlsRoots {
        TlsRoots::with_extra(vec![self.ca.certificate.clone()])
    }

    async fn talk(&self, name: &str) -> SmtpTlsObservation {
        self.talk_on(name, SMTP_PORT).await
    }

    async fn talk_on(&self, name: &str, port: u16) -> SmtpTlsObservation {
        let exchanger = MailExchanger {
            preference: 10,
            name: name.into(),
        };
        probe_starttls(&self.guard(), &self.roots(), "mail.test", &exchanger, port)
            .await
            .observation
    }

    fn address(&self, name: &str) -> SocketAddr {
        let at = EXCHANGERS.iter().position(|n| *n == name).unwrap();
        SocketAddr::new(IpAddr::V4(self.addresses[at]), SMTP_PORT)
    }

    /// `openssl s_client -starttls smtp` on `name`'s exchanger, verifying against the lab CA (on a
    /// blocking thread: the lab's servers run on this test's runtime).
    async fn s_client(&self, name: &str) -> String {
        let mut command = Command::new("openssl");
        command
            .args(["s_client", "-starttls", "smtp", "-brief", "-connect"])
            .arg(self.address(name).to_string())
            .args(["-servername", name, "-verify_hostname", name, "-CAfile"])
            .arg(self.ca_pem.path())
            .stdin(std::process::Stdio::null());
        let output = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        vantage_tests::process::printed(&output)
    }
}

#[tokio::test]
async fn starttls_is_seen_offered_working_missing_broken_or_injected() {
    let lab = MailLab::start().await;

    let good = lab.talk("good.mail.test").await;
    assert_eq!(
        (
            good.address,
            good.banner.as_deref(),
            good.starttls_offered,
            good.handshake,
            good.protocol.as_deref(),
            good.trusted,
            good.hostname_match,
            good.error.as_deref()
        ),
        (
            Some(lab.address("good.mail.test")),
            Some("mx.lab.test ESMTP lab"),
            Some(true),
            true,
            Some("TLSv1_3"),
            Some(true),
            Some(true),
            None
        )
    );
    assert_eq!(good.chain.len(), 2, "the leaf and the lab CA");
    assert_eq!(good.chain[0].sans, vec!["good.mail.test".to_owned()]);

    let wrong = lab.talk("wrong-name.mail.test").await;
    assert!(wrong.handshake);
    assert_eq!(
        (wrong.trusted, wrong.hostname_match),
        (Some(true), Some(false))
    );

    let plain = lab.talk("plain.mail.test").await;
    assert_eq!(
        (plain.starttls_offered, plain.handshake, plain.error),
        (Some(false), false, None)
    );

    let broken = lab.talk("broken.mail.test").await;
    assert_eq!(
        (broken.starttls_offered, broken.handshake),
        (Some(true), false)
    );
    assert!(broken.error.unwrap().contains("handshake failed"));

    let injected = lab.talk("injected.mail.test").await;
    assert_eq!(
        (injected.starttls_offered, injected.handshake),
        (Some(true), false)
    );
    assert!(
        injected
            .error
            .unwrap()
            .contains("sent data before the TLS handshake")
    );

    // A name nothing answers for is refused by the guard before any connection.
    let nowhere = lab.talk("nowhere.mail.test").await;
    assert_eq!((nowhere.address, nowhere.banner), (None, None));
    assert!(nowhere.error.is_some());

    // A filtered port 25 (connections hang): given up on after the connect timeout, not the
    // conversation's whole deadline.
    let tarpit = vantage_tests::tarpit::Tarpit::start();
    let filtered = lab
        .talk_on("filtered.mail.test", tarpit.address.port())
        .await;
    assert_eq!((filtered.banner, filtered.starttls_offered), (None, None));
    assert!(
        filtered
            .error
            .unwrap()
            .contains("no answer to the connection within 3 s")
    );

    // The second opinion, on the same servers.
    let report = lab.s_client("good.mail.test").await;
    assert!(report.contains("Protocol version: TLSv1.3"), "{report}");
    assert!(report.contains("Verification: OK"), "{report}");
    let report = lab.s_client("wrong-name.mail.test").await;
    assert!(!report.contains("Verification: OK"), "{report}");
    assert!(report.contains("hostname mismatch"), "{report}");
}

/// The mail findings of an assessment: (rule, exchanger), sorted.
fn mail_findings(assessment: &vantage_rules::Assessment) -> Vec<(String, String)> {
    let mut mail: Vec<(String, String)> = assessment
        .findings
        .iter()
        .filter(|f| {
            f.rule_id.starts_with("email.starttls") || f.rule_id == "email.mx-certificate-invalid"
        })
        .map(|f| {
            (
                f.rule_id.clone(),
                f.evidence["mx"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    mail.sort();
    mail
}

#[tokio::test]
async fn a_standard_scan_talks_to_the_exchangers_and_judges_each() {
    let lab = MailLab::start().await;
    let scanner = vantage_worker::Scanner::new(lab.guard(), lab.roots());
    let (observed, assessment) = scan_with_scanner(&scanner, "mail.test", Profile::Standard).await;
    let talked: Vec<&str> = observed
        .iter()
        .filter_map(|o| match &o.observation {
            Observation::SmtpTls(seen) => Some(seen.mx.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        talked,
        ["good.mail.test", "wrong-name.mail.test", "plain.mail.test"],
        "the first three exchangers of the MX answer, by preference"
    );
    assert_eq!(
        mail_findings(&assessment),
        [
            (
                "email.mx-certificate-invalid".to_owned(),
                "wrong-name.mail.test".to_owned()
            ),
            (
                "email.starttls-missing".to_owned(),
                "plain.mail.test".to_owned()
            ),
        ]
    );
    let (_, assessment) = scan_with_scanner(&scanner, "broken.test", Profile::Standard).await;
    assert_eq!(
        mail_findings(&assessment),
        [(
            "email.starttls-failed".to_owned(),
            "broken.mail.test".to_owned()
        )]
    );
    // A quick scan is about the web: no mail exchanger is talked to.
    let (observed, _) = scan_with_scanner(&scanner, "mail.test", Profile::Quick).await;
    assert!(
        !observed
            .iter()
            .any(|o| matches!(o.observation, Observation::SmtpTls(_)))
    );
}
