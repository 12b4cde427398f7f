//! Cipher suite enumeration against real TLS servers of known configuration on loopback — OpenSSL's
//! `s_server` and GnuTLS's `gnutls-serv` (Debian's OpenSSL 3 has no RC4 or 3DES suites left;
//! GnuTLS can still be configured for both) — asserting the exact observation for each, and then
//! the differential: `testssl.sh` (Debian's package, its JSON output) run on the same server must
//! see the same protocols, the same suites under each and the same forward-secrecy verdict.
//!
//! `.ci/run` installs `openssl`, `gnutls-bin` and `testssl.sh`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use vantage_observations::cipher_suites::suite;
use vantage_observations::tls::{TlsObservation, TlsProtocolFacts, TlsVersion, VersionSuites};
use vantage_probes::tls::{TlsDepth, TlsRoots, probe_tls};
use vantage_tests::process::KilledOnDrop;

/// A TLS server process on loopback, killed when dropped.
struct LabServer {
    _process: KilledOnDrop,
    address: SocketAddr,
    _files: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An RSA 2048 key and a self-signed certificate for `lab.test` (RSA key exchange needs an RSA
/// key, which rcgen's ring backend cannot make).
fn rsa_identity(dir: &Path) {
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=lab.test", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
}

async fn wait_for(address: SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the lab server at {address} did not start");
}

/// `openssl s_server` with `args` (and the lab identity unless `-nocert` is among them).
async fn openssl(args: &[&str], dh_bits: Option<u32>) -> LabServer {
    let files = tempfile::tempdir().unwrap();
    rsa_identity(files.path());
    let port = free_port();
    let mut command = Command::new("openssl");
    command
        .args([
            "s_server",
            "-quiet",
            "-accept",
            &format!("127.0.0.1:{port}"),
        ])
        .args(args);
    if !args.contains(&"-nocert") {
        command
            .arg("-cert")
            .arg(files.path().join("cert.pem"))
            .arg("-key")
            .arg(files.path().join("key.pem"));
    }
    if let Some(bits) = dh_bits {
        let params = files.path().join("dh.pem");
        let made = Command::new("openssl")
            .args(["dhparam", "-out"])
            .arg(&params)
            .arg(bits.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(made.success());
        command.arg("-dhparam").arg(&params);
    }
    let child = command
        .stdin(Stdio::piped()) // s_server ends when its input closes
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is installed (bash .ci/run installs it)");
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for(address).await;
    LabServer {
        _process: KilledOnDrop(child),
        address,
        _files: files,
    }
}

/// `gnutls-serv` with the lab identity and `priority`.
async fn gnutls(priority: &str) -> LabServer {
    let files = tempfile::tempdir().unwrap();
    rsa_identity(files.path());
    let port = free_port();
    let child = Command::new("gnutls-serv")
        .args(["--quiet", "--echo", "-p", &port.to_string()])
        .arg(format!("--priority={priority}"))
        .arg(format!(
            "--x509certfile={}",
            files.path().join("cert.pem").display()
        ))
        .arg(format!(
            "--x509keyfile={}",
            files.path().join("key.pem").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gnutls-serv is installed (bash .ci/run installs gnutls-bin)");
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for(address).await;
    LabServer {
        _process: KilledOnDrop(child),
        address,
        _files: files,
    }
}

async fn enumerated(server: &LabServer) -> (TlsObservation, Vec<VersionSuites>) {
    let seen = probe_tls(
        server.address,
        "lab.test",
        &TlsRoots::web_pki(),
        TlsDepth::Suites,
    )
    .await;
    let suites = seen
        .cipher_suites
        .clone()
        .expect("the suites were enumerated");
    (seen, suites)
}

/// The grade ruleset 4 (`ssllabs-caps-2`) gives the server's protocols and suites, and the caps
/// that made it. The lab certificates are self-signed, which alone would grade T; the grade is
/// taken as if the certificate were trusted and matched, so that what it says is the suites'.
fn suites_grade(seen: &TlsObservation) -> (String, Vec<String>) {
    let mut trusted = seen.clone();
    trusted.trusted = Some(true);
    trusted.hostname_match = Some(true);
    let grade = vantage_rules::grade::grade_tls_with(
        &trusted,
        false,
        vantage_rules::grade::TlsMethod::Caps2,
    )
    .expect("a TLS server is graded");
    (grade.grade, grade.caps)
}

fn ids(suites: &VersionSuites) -> Vec<u16> {
    suites.suites.iter().map(|s| s.id).collect()
}

/// What testssl.sh says of a server: protocols offered, suites per protocol, forward secrecy.
#[derive(Debug, PartialEq)]
struct Verdict {
    protocols: BTreeSet<TlsVersion>,
    suites: BTreeMap<TlsVersion, BTreeSet<u16>>,
    forward_secrecy: bool,
}

fn testssl(address: SocketAddr) -> Verdict {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("testssl.json");
    let output = Command::new("testssl")
        .args([
            "--warnings",
            "off",
            "--quiet",
            "--color",
            "0",
            "-p",
            "-E",
            "-f",
        ])
        .arg("--jsonfile")
        .arg(&json)
        .arg(address.to_string())
        .output()
        .expect("testssl.sh is installed (bash .ci/run installs it)");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!(
            "testssl.sh wrote no JSON: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    let findings: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let mut verdict = Verdict {
        protocols: BTreeSet::new(),
        suites: BTreeMap::new(),
        forward_secrecy: false,
    };
    for finding in findings {
        let id = finding["id"].as_str().unwrap_or_default();
        let said = finding["finding"].as_str().unwrap_or_default();
        let version = |name: &str| match name {
            "TLS1" | "tls1" => Some(TlsVersion::Tls10),
            "TLS1_1" | "tls1_1" => Some(TlsVersion::Tls11),
            "TLS1_2" | "tls1_2" => Some(TlsVersion::Tls12),
            "TLS1_3" | "tls1_3" => Some(TlsVersion::Tls13),
            _ => None,
        };
        if let Some(v) = version(id)
            && said.starts_with("offered")
        {
            verdict.protocols.insert(v);
        }
        if let Some(rest) = id.strip_prefix("cipher-")
            && let Some((protocol, code)) = rest.rsplit_once("_x")
            && let Some(v) = version(protocol)
        {
            let code = u16::from_str_radix(code, 16).unwrap();
            verdict.suites.entry(v).or_default().insert(code);
        }
        if id == "PFS" || id == "FS" {
            verdict.forward_secrecy = said.starts_with("offered");
        }
    }
    verdict
}

/// Vantage's observation in testssl.sh's terms. Forward secrecy is counted as testssl.sh 3.0 counts
/// it: its check offers only (EC)DHE suites with strong ciphers (its `pfs_cipher_list` holds no RC4,
/// 3DES, NULL or anonymous suite), so a server whose only ECDHE suites are RC4 or 3DES has "no
/// forward secrecy" there. Vantage's own rules judge the key exchange alone (asserted per lab).
fn as_verdict(suites: &[VersionSuites]) -> Verdict {
    use vantage_observations::cipher_suites::BulkCipher;
    Verdict {
        protocols: suites.iter().map(|v| v.version).collect(),
        suites: suites
            .iter()
            .map(|v| (v.version, ids(v).into_iter().collect()))
            .collect(),
        forward_secrecy: suites
            .iter()
            .flat_map(|v| &v.suites)
            .filter_map(|s| suite(s.id))
            .any(|info| {
                info.forward_secret()
                    && !info.cipher.is_rc4()
                    && !matches!(info.cipher, BulkCipher::TripleDesCbc | BulkCipher::Null)
            }),
    }
}

/// Where testssl.sh is known to see less than Vantage, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Explained {
    Nothing,
    /// testssl.sh decides which protocols are offered with a ClientHello of common suites, none of
    /// them anonymous; a server that speaks TLS 1.0 and 1.1 only with anonymous suites is "not
    /// offered" there, and its suites under them are not listed. The versions only Vantage saw are
    /// confirmed with `openssl s_client` offering only anonymous suites, then left out of the
    /// comparison.
    AnonymousOnlyVersions,
}

/// `openssl s_client` completes a handshake with `version` offering only anonymous suites.
fn openssl_speaks_anonymous(address: SocketAddr, version: TlsVersion) -> bool {
    let flag = match version {
        TlsVersion::Tls10 => "-tls1",
        TlsVersion::Tls11 => "-tls1_1",
        TlsVersion::Tls12 => "-tls1_2",
        TlsVersion::Tls13 => "-tls1_3",
    };
    let output = Command::new("openssl")
        .args(["s_client", flag, "-cipher", "aNULL:@SECLEVEL=0", "-connect"])
        .arg(address.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).contains("Cipher is ")
        && !String::from_utf8_lossy(&output.stdout).contains("Cipher is (NONE)")
}

/// The differential: testssl.sh and Vantage see the same protocols, suites and forward secrecy,
/// but for what `explained` names.
fn same_as_testssl(server: &LabServer, suites: &[VersionSuites], explained: Explained) {
    let theirs = testssl(server.address);
    let mut ours = as_verdict(suites);
    if explained == Explained::AnonymousOnlyVersions {
        let only_ours: Vec<TlsVersion> = ours
            .protocols
            .difference(&theirs.protocols)
            .copied()
            .collect();
        assert!(
            !only_ours.is_empty(),
            "the explanation is still needed: {theirs:?}"
        );
        for version in only_ours {
            assert!(
                openssl_speaks_anonymous(server.address, version),
                "openssl s_client confirms {version:?} with anonymous suites"
            );
            ours.protocols.remove(&version);
            ours.suites.remove(&version);
        }
    }
    assert_eq!(
        ours, theirs,
        "Vantage (left) and testssl.sh (right) disagree on {}",
        server.address
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_key_exchange_only_has_no_forward_secrecy() {
    let server = openssl(
        &[
            "-no_tls1_3",
            "-serverpref",
            "-cipher",
            "AES128-GCM-SHA256:AES256-SHA",
        ],
        None,
    )
    .await;
    let (seen, suites) = enumerated(&server).await;
    assert_eq!(suites.len(), 1, "{suites:#?}");
    assert_eq!(suites[0].version, TlsVersion::Tls12);
    assert_eq!(ids(&suites[0]), [0x009c, 0x0035]);
    assert_eq!(suites[0].suites[0].name, "TLS_RSA_WITH_AES_128_GCM_SHA256");
    assert_eq!(suites[0].server_order, Some(true));
    assert!(
        suites[0]
            .suites
            .iter()
            .all(|s| s.group.is_none() && s.dh_bits.is_none())
    );
    assert_eq!(
        suites_grade(&seen),
        (
            "B".to_owned(),
            vec!["no cipher suite has forward secrecy: capped at B"]
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        )
    );
    same_as_testssl(&server, &suites, Explained::Nothing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_1_3_only_server_names_its_suites_and_group() {
    let server = openssl(&["-tls1_3", "-serverpref"], None).await;
    let (seen, suites) = enumerated(&server).await;
    assert!(seen.tls13 && !seen.tls12);
    assert_eq!(suites.len(), 1, "{suites:#?}");
    assert_eq!(suites[0].version, TlsVersion::Tls13);
    // OpenSSL's default TLS 1.3 order.
    assert_eq!(ids(&suites[0]), [0x1302, 0x1303, 0x1301]);
    assert_eq!(suites[0].server_order, Some(true));
    assert!(
        suites[0]
            .suites
            .iter()
            .all(|s| s.group.as_deref() == Some("x25519"))
    );
    assert_eq!(
        suites_grade(&seen),
        (
            "A".to_owned(),
            vec![].into_iter().map(str::to_owned).collect::<Vec<_>>()
        )
    );
    same_as_testssl(&server, &suites, Explained::Nothing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cbc_only_tls_1_0_server_is_enumerated_under_tls_1_0() {
    let server = openssl(
        &[
            "-tls1",
            "-serverpref",
            "-cipher",
            "ECDHE-RSA-AES256-SHA:AES128-SHA:@SECLEVEL=0",
        ],
        None,
    )
    .await;
    let (seen, suites) = enumerated(&server).await;
    assert!(seen.tls10 && !seen.tls12 && !seen.tls13);
    assert_eq!(suites.len(), 1, "{suites:#?}");
    assert_eq!(suites[0].version, TlsVersion::Tls10);
    assert_eq!(ids(&suites[0]), [0xc014, 0x002f]);
    assert_eq!(suites[0].suites[0].group.as_deref(), Some("x25519"));
    assert!(
        suites[0]
            .suites
            .iter()
            .all(|s| suite(s.id).unwrap().cipher.is_cbc())
    );
    assert_eq!(
        suites_grade(&seen),
        (
            "C".to_owned(),
            vec![
                "neither TLS 1.2 nor TLS 1.3 is supported: capped at C",
                "TLS 1.0 or 1.1 is accepted: capped at B"
            ]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
        )
    );
    same_as_testssl(&server, &suites, Explained::Nothing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1024_bit_dh_prime_is_measured() {
    let server = openssl(
        &[
            "-no_tls1_3",
            "-serverpref",
            "-cipher",
            "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
        ],
        Some(1024),
    )
    .await;
    let (seen, suites) = enumerated(&server).await;
    let tls12 = suites
        .iter()
        .find(|v| v.version == TlsVersion::Tls12)
        .expect("TLS 1.2");
    assert_eq!(ids(tls12), [0x009e]);
    assert_eq!(tls12.suites[0].dh_bits, Some(1024));
    assert_eq!(tls12.server_order, None, "one suite has no order");
    assert_eq!(
        suites_grade(&seen),
        (
            "B".to_owned(),
            vec!["a Diffie-Hellman prime under 2048 bits: capped at B"]
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        )
    );
    same_as_testssl(&server, &suites, Explained::Nothing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_suites_are_seen() {
    let server = openssl(
        &[
            "-nocert",
            "-no_tls1_3",
            "-serverpref",
            "-cipher",
            "aNULL:@SECLEVEL=0",
        ],
        None,
    )
    .await;
    let (seen, suites) = enumerated(&server).await;
    let all: Vec<u16> = suites.iter().flat_map(ids).collect();
    assert!(all.contains(&0xc018) && all.contains(&0x0034), "{all:x?}");
    assert!(
        all.iter().all(|id| suite(*id).unwrap().anonymous()),
        "only anonymous suites: {all:x?}"
    );
    assert_eq!(
        suites_grade(&seen),
        (
            "F".to_owned(),
            vec![
                "TLS 1.0 or 1.1 is accepted: capped at B",
                "export, anonymous, NULL or DES cipher suites are accepted: F",
                "no cipher suite has forward secrecy: capped at B",
                // With no certificate, OpenSSL picks 1024-bit DH parameters on its own.
                "a Diffie-Hellman prime under 2048 bits: capped at B"
            ]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
        )
    );
    same_as_testssl(&server, &suites, Explained::AnonymousOnlyVersions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rc4_and_3des_are_seen_where_rustls_cannot_connect() {
    let server = gnutls(
        "NONE:+VERS-TLS1.2:+VERS-TLS1.1:+VERS-TLS1.0:+3DES-CBC:+ARCFOUR-128:+RSA:+ECDHE-RSA:\
         +SHA1:+MD5:+COMP-NULL:+SIGN-ALL:+GROUP-ALL:+CTYPE-X509:%SERVER_PRECEDENCE",
    )
    .await;
    let (seen, suites) = enumerated(&server).await;
    assert!(!seen.handshake, "rustls speaks neither RC4 nor 3DES");
    let tls12 = suites
        .iter()
        .find(|v| v.version == TlsVersion::Tls12)
        .expect("TLS 1.2");
    let ids = ids(tls12);
    for wanted in [0xc012, 0x000a, 0xc011, 0x0005] {
        assert!(ids.contains(&wanted), "{wanted:#06x} in {ids:x?}");
    }
    assert!(
        ids.iter().all(|id| {
            let cipher = suite(*id).unwrap().cipher;
            cipher.is_rc4()
                || cipher == vantage_observations::cipher_suites::BulkCipher::TripleDesCbc
        }),
        "{ids:x?}"
    );
    assert!(
        tls12
            .suites
            .iter()
            .any(|s| suite(s.id).unwrap().forward_secret()),
        "ECDHE suites have forward secrecy, whatever their cipher"
    );
    assert_eq!(
        suites_grade(&seen),
        (
            "C".to_owned(),
            vec![
                "TLS 1.0 or 1.1 is accepted: capped at B",
                "RC4 is accepted: capped at C",
                "3DES is accepted with TLS 1.1 or newer: capped at C"
            ]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
        )
    );
    same_as_testssl(&server, &suites, Explained::Nothing);
}

/// What testssl.sh says of secure renegotiation, compression and TLS_FALLBACK_SCSV, in the
/// observation's terms; `None` where it did not judge.
fn testssl_protocol_facts(address: SocketAddr) -> (Option<bool>, Option<bool>, Option<bool>) {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("testssl.json");
    Command::new("testssl")
        .args([
            "--warnings",
            "off",
            "--quiet",
            "--color",
            "0",
            "-R",
            "-C",
            "-Z",
        ])
        .arg("--jsonfile")
        .arg(&json)
        .arg(address.to_string())
        .output()
        .expect("testssl.sh runs");
    let findings: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let said = |id: &str| {
        findings
            .iter()
            .find(|f| f["id"] == id)
            .and_then(|f| f["finding"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let renegotiation = match said("secure_renego") {
        s if s.starts_with("supported") => Some(true),
        s if s.contains("Not supported") || s.contains("VULNERABLE") => Some(false),
        _ => None,
    };
    let compression = match said("CRIME_TLS") {
        s if s.starts_with("not vulnerable") => Some(false),
        s if s.contains("VULNERABLE") => Some(true),
        _ => None,
    };
    // testssl.sh 3.0 checks the downgrade from TLS 1.2 and below only ("no protocol below TLS 1.2
    // offered" says it did not judge a TLS 1.2 + 1.3 server).
    let fallback = match said("fallback_SCSV") {
        s if s.starts_with("supported") => Some(true),
        s if s.contains("Downgrade attack prevention NOT supported") => Some(false),
        _ => None,
    };
    (renegotiation, compression, fallback)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_server_renegotiates_securely_compresses_nothing_and_refuses_downgrades() {
    let server = openssl(&["-serverpref", "-alpn", "http/1.1"], None).await;
    let (seen, _) = enumerated(&server).await;
    assert_eq!(suites_grade(&seen), ("A".to_owned(), vec![]));
    let facts = seen
        .protocol_facts
        .expect("recorded beside the enumeration");
    assert_eq!(
        facts,
        TlsProtocolFacts {
            secure_renegotiation: Some(true),
            compression: Some(false),
            fallback_scsv: Some(true),
            alpn: Some("http/1.1".into()),
            extension_scts: Some(0),
        }
    );
    assert_eq!((seen.ocsp_stapled, seen.ocsp_scts), (false, None));
    let (renegotiation, compression, fallback) = testssl_protocol_facts(server.address);
    assert_eq!(renegotiation, facts.secure_renegotiation);
    assert_eq!(compression, facts.compression);
    assert_eq!(
        fallback, None,
        "testssl.sh does not judge a TLS 1.3 → 1.2 downgrade; Vantage sees OpenSSL refuse it"
    );
}

/// What `openssl s_client` (allowing servers without RFC 5746, SSL Labs' and testssl.sh's own
/// fallback) prints of a handshake with `args`.
fn s_client(address: SocketAddr, args: &[&str]) -> String {
    let output = Command::new("openssl")
        .args(["s_client", "-legacy_server_connect", "-connect"])
        .arg(address.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    vantage_tests::process::printed(&output)
}

/// testssl.sh cannot judge this server: it asks through Debian's OpenSSL 3, which refuses to
/// connect to a server without secure renegotiation and speaks no TLS 1.0 or 1.1 at its default
/// security level, so testssl.sh says "OpenSSL handshake didn't succeed" and "no protocol below TLS
/// 1.2 offered". `openssl s_client` told to allow such servers is the second opinion instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_safe_renegotiation_is_seen() {
    let server = gnutls("NORMAL:%DISABLE_SAFE_RENEGOTIATION").await;
    let (seen, suites) = enumerated(&server).await;
    assert_eq!(suites_grade(&seen).0, "B", "TLS 1.0 and 1.1 are accepted");
    let facts = seen
        .protocol_facts
        .expect("recorded beside the enumeration");
    assert_eq!(facts.secure_renegotiation, Some(false));
    assert_eq!(facts.compression, Some(false));
    assert_eq!(
        facts.alpn, None,
        "gnutls-serv names no application protocol"
    );
    assert!(
        s_client(server.address, &["-tls1_2"]).contains("Secure Renegotiation IS NOT supported"),
        "openssl s_client agrees"
    );
    let (renegotiation, _, testssl_fallback) = testssl_protocol_facts(server.address);
    assert_eq!(
        (renegotiation, testssl_fallback),
        (None, None),
        "testssl.sh still cannot judge it (see above)"
    );
    // The downgrade: GnuTLS's NORMAL still speaks TLS 1.0 and 1.1 here; a TLS 1.2 ClientHello
    // marked as a fallback is refused by GnuTLS, as Vantage saw.
    assert!(suites.iter().any(|v| v.version < TlsVersion::Tls12));
    assert_eq!(facts.fallback_scsv, Some(true));
    let downgrade = s_client(
        server.address,
        &[
            "-tls1_2",
            "-fallback_scsv",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ],
    );
    assert!(downgrade.contains("inappropriate fallback"), "{downgrade}");
}

/// DER: `tag`, the length, `contents`.
fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match contents.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(contents);
    out
}

/// A `SignedCertificateTimestampList` of `count` timestamps (RFC 6962 §3.3), their logs and
/// signatures made up: only how they are delivered is judged here.
fn sct_list(count: u8) -> Vec<u8> {
    let mut list = Vec::new();
    for log in 1..=count {
        let mut sct = vec![0u8]; // v1
        sct.extend([log; 32]); // log id
        sct.extend(1_700_000_000_000u64.to_be_bytes());
        sct.extend([0, 0]); // no extensions
        sct.extend([4, 3, 0, 8]); // SHA-256, ECDSA, 8 bytes of signature
        sct.extend([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]);
        list.extend((sct.len() as u16).to_be_bytes());
        list.extend(sct);
    }
    let mut out = (list.len() as u16).to_be_bytes().to_vec();
    out.extend(list);
    out
}

/// A "good" OCSP response (RFC 6960) whose single response carries `list` in RFC 6962's
/// extension; its signature is made up (a stapled response is relayed, not judged, here).
fn ocsp_response(list: &[u8]) -> Vec<u8> {
    const SHA1: [u8; 5] = [0x2b, 0x0e, 0x03, 0x02, 0x1a];
    const SHA256_WITH_RSA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    const OCSP_BASIC: [u8; 9] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
    const SCT_LIST: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x05];
    let now = der(0x18, b"20261201000000Z");
    let cert_id = der(
        0x30,
        &[
            der(0x30, &[der(0x06, &SHA1), der(0x05, &[])].concat()),
            der(0x04, &[1; 20]),
            der(0x04, &[2; 20]),
            der(0x02, &[1]),
        ]
        .concat(),
    );
    let extension = der(
        0x30,
        &[der(0x06, &SCT_LIST), der(0x04, &der(0x04, list))].concat(),
    );
    let single = der(
        0x30,
        &[
            cert_id,
            der(0x80, &[]), // good
            now.clone(),
            der(0xa1, &der(0x30, &extension)),
        ]
        .concat(),
    );
    let tbs = der(
        0x30,
        &[der(0xa2, &der(0x04, &[2; 20])), now, der(0x30, &single)].concat(),
    );
    let algorithm = der(
        0x30,
        &[der(0x06, &SHA256_WITH_RSA), der(0x05, &[])].concat(),
    );
    let basic = der(0x30, &[tbs, algorithm, der(0x03, &[0, 1, 2, 3])].concat());
    let bytes = der(0x30, &[der(0x06, &OCSP_BASIC), der(0x04, &basic)].concat());
    der(0x30, &[der(0x0a, &[0]), der(0xa0, &bytes)].concat())
}

/// Certificate transparency delivered beside the certificate: OpenSSL's `s_server` sends two
/// timestamps in the TLS extension (`-serverinfo`, TLS 1.2) and staples an OCSP response carrying
/// three (`-status_file`). `openssl s_client -ct` is the second opinion: it counts five over TLS 1.2,
/// and the stapled three over TLS 1.3, which sends no TLS 1.2 extension.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_stapled_and_in_the_extension_are_counted() {
    let files = tempfile::tempdir().unwrap();
    let serverinfo = files.path().join("serverinfo.pem");
    let list = sct_list(2);
    let mut extension = 0x0012u16.to_be_bytes().to_vec();
    extension.extend((list.len() as u16).to_be_bytes());
    extension.extend(&list);
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(&extension);
    std::fs::write(
        &serverinfo,
        format!("-----BEGIN SERVERINFO FOR lab.test-----\n{body}\n-----END SERVERINFO FOR lab.test-----\n"),
    )
    .unwrap();
    let status = files.path().join("ocsp.der");
    std::fs::write(&status, ocsp_response(&sct_list(3))).unwrap();
    let server = openssl(
        &[
            "-serverinfo",
            serverinfo.to_str().unwrap(),
            "-status_file",
            status.to_str().unwrap(),
        ],
        None,
    )
    .await;
    let (seen, _) = enumerated(&server).await;
    assert!(seen.ocsp_stapled);
    assert_eq!(seen.ocsp_scts, Some(3));
    assert_eq!(
        seen.protocol_facts
            .as_ref()
            .and_then(|facts| facts.extension_scts),
        Some(2)
    );
    assert_eq!(seen.leaf().and_then(|leaf| leaf.embedded_scts), Some(0));
    let logs = files.path().join("ct_logs.cnf");
    std::fs::write(&logs, "enabled_logs = \n").unwrap();
    let ct = ["-ct", "-ctlogfile", logs.to_str().unwrap(), "-status"];
    let tls12 = s_client(server.address, &[&ct[..], &["-tls1_2"]].concat());
    assert!(tls12.contains("SCTs present (5)"), "{tls12}");
    let tls13 = s_client(server.address, &[&ct[..], &["-tls1_3"]].concat());
    assert!(tls13.contains("SCTs present (3)"), "{tls13}");
}
