//! The TLS probe: one handshake with everything offered, to see what the server negotiates and which
//! certificate chain it sends; one handshake per protocol version, to see which it accepts; then the
//! chain judged against the web PKI roots (plus any extra CAs a lab names) and the server name.
//!
//! The handshakes accept any certificate so that a broken one can still be observed; trust is decided
//! afterwards, by rustls's own WebPKI verifier, from the recorded chain.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use vantage_observations::tls::{CertificateSummary, ChainFacts, TlsObservation};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};
use x509_parser::public_key::PublicKey;

/// How long one handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most certificates of a chain described.
const MAX_CHAIN: usize = 5;

/// Accepts any chain, but keeps it (and whether an OCSP response was stapled) for judging
/// afterwards; with a `verifier`, also records whether WebPKI verification would have accepted it.
#[derive(Debug)]
struct Recorder {
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<(Vec<CertificateDer<'static>>, Vec<u8>)>>,
    verifier: Option<Arc<WebPkiServerVerifier>>,
    valid: CertificateVerdict,
}

impl Recorder {
    fn new(provider: Arc<CryptoProvider>, verifier: Option<Arc<WebPkiServerVerifier>>) -> Self {
        Self {
            provider,
            seen: Mutex::new(None),
            verifier,
            valid: CertificateVerdict::default(),
        }
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((chain, ocsp_response.to_vec()));
        }
        if let Some(verifier) = &self.verifier {
            let valid = verifier
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .is_ok();
            if let Ok(mut slot) = self.valid.lock() {
                *slot = Some(valid);
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Trust anchors: the web PKI, plus CAs a lab adds.
#[derive(Debug, Clone)]
pub struct TlsRoots {
    store: Arc<RootCertStore>,
}

impl Default for TlsRoots {
    fn default() -> Self {
        Self::web_pki()
    }
}

impl TlsRoots {
    pub fn web_pki() -> Self {
        Self::with_extra(vec![])
    }

    /// A client configuration that verifies servers against these roots (for requests that must
    /// reach only a genuine server, such as webhook deliveries; probes record instead).
    pub fn verifying_client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable!("the ring provider supports the default versions"))
            .with_root_certificates(self.store.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }

    pub fn with_extra(extra: Vec<CertificateDer<'static>>) -> Self {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for ca in extra {
            let _ = roots.add(ca);
        }
        Self {
            store: Arc::new(roots),
        }
    }

    /// The web PKI plus every certificate in the PEM files at `paths`.
    pub fn with_pem_files(paths: &[std::path::PathBuf]) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject;
        let mut extra = Vec::new();
        for path in paths {
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
            if certificates.is_empty() {
                return Err(format!("{} holds no certificate", path.display()));
            }
            extra.extend(certificates);
        }
        Ok(Self::with_extra(extra))
    }
}

/// Whether the certificate of the one connection made with a configuration was valid.
pub(crate) type CertificateVerdict = Arc<Mutex<Option<bool>>>;

/// A client configuration that completes handshakes whatever the certificate, recording whether it
/// was valid against `roots` (the TLS probe judges certificates in detail; the HTTP probe reads the
/// response behind them and notes the verdict). HTTP/1.1 only.
pub(crate) fn observing_client_config(roots: &TlsRoots) -> (ClientConfig, CertificateVerdict) {
    let provider = Arc::new(ring::default_provider());
    let verifier =
        WebPkiServerVerifier::builder_with_provider(roots.store.clone(), provider.clone())
            .build()
            .ok();
    let recorder = Arc::new(Recorder::new(provider.clone(), verifier));
    let valid = recorder.valid.clone();
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("the ring provider supports the default versions"))
        .dangerous()
        .with_custom_certificate_verifier(recorder)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (config, valid)
}

pub(crate) struct Handshake {
    pub protocol: String,
    pub cipher_suite: String,
    pub chain: Vec<CertificateDer<'static>>,
    /// The stapled OCSP response (empty when none was).
    pub ocsp_response: Vec<u8>,
    /// The application protocol the server chose, when any was offered.
    pub alpn: Option<String>,
}

/// What a web browser offers by ALPN.
const BROWSER_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

async fn handshake(
    address: SocketAddr,
    server_name: &ServerName<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Result<Handshake, String> {
    let attempt = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|_| "connection failed".to_owned())?;
        handshake_over(tcp, server_name, versions, alpn).await
    };
    let (_, done) = tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt)
        .await
        .map_err(|_| "handshake timed out".to_owned())??;
    Ok(done)
}

/// A TLS handshake over `stream` — a fresh TCP connection, or one a plaintext protocol upgraded
/// (SMTP's STARTTLS) — that accepts any certificate: the TLS stream, and what was negotiated and
/// presented. Unbounded in time: callers set the deadline.
pub(crate) async fn handshake_over<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    server_name: &ServerName<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Result<(tokio_rustls::client::TlsStream<S>, Handshake), String> {
    let provider = Arc::new(ring::default_provider());
    let recorder = Arc::new(Recorder::new(provider.clone(), None));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let stream = TlsConnector::from(Arc::new(config))
        .connect(server_name.clone(), stream)
        .await
        .map_err(|e| format!("handshake failed: {e}"))?;
    let (_, connection) = stream.get_ref();
    let protocol = connection
        .protocol_version()
        .map(|v| v.as_str().unwrap_or("unknown").to_owned())
        .unwrap_or_default();
    let cipher_suite = connection
        .negotiated_cipher_suite()
        .map(|s| s.suite().as_str().unwrap_or("unknown").to_owned())
        .unwrap_or_default();
    let alpn = connection
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let (chain, ocsp_response) = recorder
        .seen
        .lock()
        .ok()
        .and_then(|mut seen| seen.take())
        .unwrap_or_default();
    Ok((
        stream,
        Handshake {
            protocol,
            cipher_suite,
            chain,
            ocsp_response,
            alpn,
        },
    ))
}

/// The certificates `address` presents for `server_name` (whatever their validity), for checks that
/// compare the certificates themselves, as DANE does.
pub async fn presented_chain(
    address: SocketAddr,
    server_name: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|_| format!("{server_name} is not a server name"))?;
    let seen = handshake(address, &name, rustls::ALL_VERSIONS, &[]).await?;
    if seen.chain.is_empty() {
        return Err("the server presented no certificate".into());
    }
    Ok(seen.chain)
}

/// A protocol version rustls will not speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyVersion {
    Tls10,
    Tls11,
}

impl LegacyVersion {
    /// Every legacy version probed.
    pub const ALL: [Self; 2] = [Self::Tls10, Self::Tls11];

    fn wire(self) -> [u8; 2] {
        match self {
            Self::Tls10 => [0x03, 0x01],
            Self::Tls11 => [0x03, 0x02],
        }
    }
}

/// `bytes` after their length as two big-endian bytes (TLS's `opaque<0..2^16-1>`).
pub(crate) fn with_u16_length(bytes: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(bytes.len())
        .unwrap_or(u16::MAX)
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A minimal, standard ClientHello offering only `version`, with SNI (for names), the usual curves
/// and the cipher suites legacy servers speak.
pub fn legacy_client_hello(version: LegacyVersion, server_name: &str) -> Vec<u8> {
    let mut body = version.wire().to_vec();
    body.extend_from_slice(&[0x56; 32]); // client random; nothing secret is negotiated on it
    body.push(0); // no session id
    let suites: [u16; 10] = [
        0xc014, 0xc013, 0xc00a, 0xc009, 0x0039, 0x0033, 0x0035, 0x002f, 0x000a, 0x00ff,
    ];
    let suites: Vec<u8> = suites.iter().flat_map(|s| s.to_be_bytes()).collect();
    body.extend(with_u16_length(&suites));
    body.extend_from_slice(&[1, 0]); // compression: null only
    let mut extensions = Vec::new();
    if server_name.parse::<std::net::IpAddr>().is_err() {
        let mut entry = vec![0u8]; // host_name
        entry.extend(with_u16_length(server_name.as_bytes()));
        extensions.extend_from_slice(&[0x00, 0x00]);
        extensions.extend(with_u16_length(&with_u16_length(&entry)));
    }
    extensions.extend_from_slice(&[0x00, 0x0a]); // supported_groups: P-256, P-384, P-521
    extensions.extend(with_u16_length(&with_u16_length(&[
        0x00, 0x17, 0x00, 0x18, 0x00, 0x19,
    ])));
    extensions.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]); // ec_point_formats
    body.extend(with_u16_length(&extensions));
    client_hello_record(&body)
}

/// A ClientHello's body framed as a handshake message (type 1, 24-bit length) in a handshake
/// record (announced as TLS 1.0, as clients do for compatibility).
pub(crate) fn client_hello_record(body: &[u8]) -> Vec<u8> {
    let length = u32::try_from(body.len()).unwrap_or(0).to_be_bytes();
    let mut handshake = vec![0x01, length[1], length[2], length[3]];
    handshake.extend_from_slice(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(with_u16_length(&handshake));
    record
}

/// The fragment length a TLS record header announces (at most 16 KiB, the protocol's limit), when
/// it is a handshake record; `None` for anything else (an alert, not TLS at all).
pub fn handshake_record_length(header: &[u8; 5]) -> Option<usize> {
    (header[0] == 0x16)
        .then(|| usize::from(u16::from_be_bytes([header[3], header[4]])).min(16 * 1024))
}

/// Whether a handshake record's fragment is a ServerHello of `version`: handshake type 2, three
/// length bytes, then the server's version.
pub fn is_server_hello_of(fragment: &[u8], version: LegacyVersion) -> bool {
    fragment.len() >= 6 && fragment[0] == 0x02 && fragment[4..6] == version.wire()
}

/// Whether the server answers a ClientHello for `version` with a ServerHello of that version.
pub async fn legacy_version_accepted(
    address: SocketAddr,
    server_name: &str,
    version: LegacyVersion,
) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut tcp = TcpStream::connect(address).await.ok()?;
        tcp.write_all(&legacy_client_hello(version, server_name))
            .await
            .ok()?;
        let mut header = [0u8; 5];
        tcp.read_exact(&mut header).await.ok()?;
        let Some(length) = handshake_record_length(&header) else {
            return Some(false); // an alert, or something else entirely
        };
        let mut fragment = vec![0u8; length];
        tcp.read_exact(&mut fragment).await.ok()?;
        Some(is_server_hello_of(&fragment, version))
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ed25519",
        other => other,
    }
    .to_owned()
}

fn rfc3339(timestamp: i64) -> String {
    chrono::DateTime::from_timestamp(timestamp, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Describes one DER certificate (public facts only).
pub fn describe(der: &[u8]) -> Option<CertificateSummary> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                    GeneralName::IPAddress(bytes) => match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes)
                            .ok()
                            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
                        16 => <[u8; 16]>::try_from(*bytes)
                            .ok()
                            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
                        _ => None,
                    },
                    _ => None,
                })
                .take(50)
                .collect()
        })
        .unwrap_or_default();
    let (key_type, key_bits) = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => ("RSA".to_owned(), Some(rsa.key_size())),
        Ok(PublicKey::EC(ec)) => ("EC".to_owned(), Some(ec.key_size())),
        Ok(PublicKey::DSA(_)) => ("DSA".to_owned(), None),
        Ok(PublicKey::GostR3410(_) | PublicKey::GostR3410_2012(_)) => ("GOST".to_owned(), None),
        Ok(PublicKey::Unknown(_)) | Err(_) => {
            let oid = cert.public_key().algorithm.algorithm.to_id_string();
            (
                if oid == "1.3.101.112" {
                    "Ed25519".to_owned()
                } else {
                    oid
                },
                None,
            )
        }
    };
    let mut embedded_scts = 0u32;
    let mut must_staple = false;
    for extension in cert.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::SCT(list) => {
                embedded_scts = u32::try_from(list.len()).unwrap_or(u32::MAX);
            }
            // TLS Feature (RFC 7633): a SEQUENCE OF INTEGER; 5 is status_request.
            _ if extension.oid.to_id_string() == "1.3.6.1.5.5.7.1.24" => {
                must_staple = tls_features(extension.value).contains(&5);
            }
            _ => {}
        }
    }
    Some(CertificateSummary {
        embedded_scts: Some(embedded_scts),
        must_staple,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        self_signed: cert.subject() == cert.issuer(),
        sans,
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        days_left: (not_after - crate::unix_now()).div_euclid(86_400),
        key_type,
        key_bits,
        signature_algorithm: signature_name(&cert.signature_algorithm.algorithm.to_id_string()),
    })
}

/// The features a TLS Feature extension's value (DER `SEQUENCE OF INTEGER`) lists; nothing when it
/// is not one.
fn tls_features(der: &[u8]) -> Vec<u64> {
    let Some((&0x30, rest)) = der.split_first() else {
        return Vec::new();
    };
    let Some((&length, mut items)) = rest.split_first() else {
        return Vec::new();
    };
    if usize::from(length) != items.len() || length >= 0x80 {
        return Vec::new();
    }
    let mut features = Vec::new();
    while let [0x02, size, tail @ ..] = items {
        let size = usize::from(*size);
        if size == 0 || size > 8 || tail.len() < size {
            break;
        }
        features.push(
            tail[..size]
                .iter()
                .fold(0u64, |n, b| n << 8 | u64::from(*b)),
        );
        items = &tail[size..];
    }
    features
}

/// Whether `name` (a DNS name or IP literal) is covered by `sans` (one-label wildcards allowed).
pub fn covers(sans: &[String], name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    sans.iter().any(|san| {
        let san = san.to_ascii_lowercase();
        if let Some(suffix) = san.strip_prefix("*.") {
            name.split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix)
        } else {
            san == name
        }
    })
}

/// How much of a TLS server the probe learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsDepth {
    /// The protocol versions, the negotiated suite and the certificate chain.
    Versions,
    /// Those, and every cipher suite each version accepts ([`crate::tls_suites`]).
    Suites,
}

/// Probes TLS at `address` (vetted), presenting `server_name` (SNI and name checks).
pub async fn probe_tls(
    address: SocketAddr,
    server_name: &str,
    roots: &TlsRoots,
    depth: TlsDepth,
) -> TlsObservation {
    let mut seen = TlsObservation {
        address,
        server_name: server_name.to_owned(),
        handshake: false,
        error: None,
        protocol: None,
        cipher_suite: None,
        tls10: false,
        tls11: false,
        tls12: false,
        tls13: false,
        chain: vec![],
        trusted: None,
        hostname_match: None,
        verification_error: None,
        ocsp_stapled: false,
        ocsp_scts: None,
        cipher_suites: None,
        protocol_facts: None,
        chain_facts: None,
    };
    let Ok(name) = ServerName::try_from(server_name.to_owned()) else {
        seen.error = Some("not a valid TLS server name".into());
        return seen;
    };
    let only13 = [&rustls::version::TLS13];
    let only12 = [&rustls::version::TLS12];
    let (all, tls13, tls12, tls11, tls10) = tokio::join!(
        handshake(address, &name, rustls::ALL_VERSIONS, &[]),
        handshake(address, &name, &only13, &[]),
        handshake(address, &name, &only12, &[]),
        legacy_version_accepted(address, server_name, LegacyVersion::Tls11),
        legacy_version_accepted(address, server_name, LegacyVersion::Tls10),
    );
    seen.tls13 = tls13.is_ok();
    seen.tls12 = tls12.is_ok();
    seen.tls11 = tls11;
    seen.tls10 = tls10;
    // A server that answered with a TLS alert speaks TLS even when no version handshake worked (a
    // server of only RC4 or 3DES suites, which rustls cannot speak): enumerate it too.
    let answered_tls = all
        .as_ref()
        .err()
        .is_some_and(|error| error.contains("alert"));
    if depth == TlsDepth::Suites
        && (tls10 || tls11 || tls12.is_ok() || tls13.is_ok() || answered_tls)
    {
        let suites = crate::tls_suites::enumerate(address, server_name).await;
        // ALPN over a real handshake (TLS 1.3 encrypts the server's choice), apart from the
        // version handshakes so that a server refusing the offer does not hide its versions.
        let (mut facts, alpn) = tokio::join!(
            crate::tls_suites::protocol_facts(address, server_name, &suites),
            handshake(address, &name, rustls::ALL_VERSIONS, &BROWSER_ALPN),
        );
        facts.alpn = alpn.ok().and_then(|done| done.alpn);
        seen.cipher_suites = Some(suites);
        seen.protocol_facts = Some(facts);
    }
    let done = match all {
        Ok(done) => done,
        Err(error) => {
            seen.error = Some(error);
            return seen;
        }
    };
    seen.handshake = true;
    seen.protocol = Some(done.protocol);
    seen.cipher_suite = Some(done.cipher_suite);
    seen.ocsp_stapled = !done.ocsp_response.is_empty();
    seen.ocsp_scts = seen.ocsp_stapled.then(|| ocsp_scts(&done.ocsp_response));
    let verdict = judge_chain(&done.chain, &name, server_name, roots);
    seen.chain = verdict.chain;
    seen.chain_facts = verdict.facts;
    seen.trusted = verdict.trusted;
    seen.hostname_match = verdict.hostname_match;
    seen.verification_error = verdict.verification_error;
    seen
}

/// How many timestamps a `SignedCertificateTimestampList` holds (RFC 6962 §3.3: a 16-bit length,
/// then each timestamp behind a 16-bit length of its own); `None` when it is malformed.
pub(crate) fn sct_count(list: &[u8]) -> Option<u32> {
    let u16_at = |bytes: &[u8]| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *bytes.first()?,
            *bytes.get(1)?,
        ])))
    };
    let total = u16_at(list)?;
    let mut rest = list.get(2..2 + total)?;
    let mut count = 0u32;
    while !rest.is_empty() {
        let length = u16_at(rest)?;
        rest = rest.get(2 + length..)?;
        count += 1;
    }
    Some(count)
}

/// One DER element off the front of `der`: (tag, contents, what follows); `None` when malformed.
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let (length, rest) = rest.split_at(octets);
        (
            length.iter().fold(0usize, |n, b| n << 8 | usize::from(*b)),
            rest,
        )
    };
    if rest.len() < length {
        return None;
    }
    let (contents, rest) = rest.split_at(length);
    Some((tag, contents, rest))
}

/// RFC 6962's OCSP extension for a `SignedCertificateTimestampList`, 1.3.6.1.4.1.11129.2.4.5, as
/// the contents of its DER OBJECT IDENTIFIER.
const OCSP_SCT_LIST_OID: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x05];

/// The signed certificate timestamps of a stapled OCSP response: those of its SCT list extension
/// (RFC 6962 §3.3), found by walking the DER — the `BasicOCSPResponse` sits inside an OCTET STRING,
/// the extension in its single response; 0 when it has none, or it cannot be read.
pub(crate) fn ocsp_scts(response: &[u8]) -> u32 {
    fn walk(mut der: &[u8], depth: u8) -> Option<u32> {
        while let Some((tag, contents, rest)) = der_element(der) {
            der = rest;
            // An Extension: SEQUENCE { OID, critical BOOLEAN DEFAULT FALSE, OCTET STRING }, whose
            // value is the DER OCTET STRING of the list.
            if tag == 0x30
                && let Some((0x06, oid, mut value)) = der_element(contents)
                && oid == OCSP_SCT_LIST_OID
            {
                if let Some((0x01, _, after)) = der_element(value) {
                    value = after;
                }
                let (0x04, outer, _) = der_element(value)? else {
                    return None;
                };
                let (0x04, list, _) = der_element(outer)? else {
                    return None;
                };
                return sct_count(list);
            }
            let nested = tag & 0x20 != 0 || tag == 0x04;
            if nested
                && depth < 16
                && let Some(count) = walk(contents, depth + 1)
            {
                return Some(count);
            }
        }
        None
    }
    walk(response, 0).unwrap_or(0)
}

/// The value of a DER element (its tag and length stripped): trust anchors store a subject so.
fn der_contents(element: &[u8]) -> &[u8] {
    der_element(element).map_or(&[], |(_, contents, _)| contents)
}

/// How `chain` (as presented, leaf first) is built, judged by names: its order, whether the root
/// was sent, and whether the last certificate's issuer is missing from both the chain and `roots`.
/// `None` when a certificate cannot be read.
pub(crate) fn chain_facts(chain: &[CertificateDer<'_>], roots: &TlsRoots) -> Option<ChainFacts> {
    let parsed = chain
        .iter()
        .map(|der| X509Certificate::from_der(der).ok().map(|(_, cert)| cert))
        .collect::<Option<Vec<_>>>()?;
    let last = parsed.last()?;
    let issuer = last.issuer().as_raw();
    let self_signed = issuer == last.subject().as_raw();
    let anchored = roots.store.roots.iter().any(|anchor| {
        let subject = anchor.subject.as_ref();
        subject == issuer || subject == der_contents(issuer)
    });
    let issuer_fetchable = last.extensions().iter().any(|extension| {
        matches!(
            extension.parsed_extension(),
            ParsedExtension::AuthorityInfoAccess(access) if access
                .accessdescs
                .iter()
                .any(|d| d.access_method == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS)
        )
    });
    Some(ChainFacts {
        ordered: parsed
            .windows(2)
            .all(|pair| pair[0].issuer().as_raw() == pair[1].subject().as_raw()),
        root_sent: self_signed && parsed.len() > 1,
        incomplete: !self_signed
            && !anchored
            && !parsed.iter().any(|cert| cert.subject().as_raw() == issuer),
        issuer_fetchable,
    })
}

/// What a presented chain is worth for a server name: its certificates described, whether it leads
/// to a trusted root, whether it covers the name, and how it is built.
pub(crate) struct ChainVerdict {
    pub chain: Vec<CertificateSummary>,
    pub facts: Option<ChainFacts>,
    pub trusted: Option<bool>,
    pub hostname_match: Option<bool>,
    pub verification_error: Option<String>,
}

/// Judges `chain` (leaf first, as presented) for `server_name` against `roots`, with rustls's own
/// WebPKI verifier.
pub(crate) fn judge_chain(
    chain: &[CertificateDer<'static>],
    name: &ServerName<'static>,
    server_name: &str,
    roots: &TlsRoots,
) -> ChainVerdict {
    let mut seen = ChainVerdict {
        chain: chain
            .iter()
            .take(MAX_CHAIN)
            .filter_map(|c| describe(c))
            .collect(),
        facts: chain_facts(chain, roots),
        trusted: None,
        hostname_match: None,
        verification_error: None,
    };
    seen.hostname_match = seen
        .chain
        .first()
        .map(|leaf| covers(&leaf.sans, server_name));
    let Some((leaf, intermediates)) = chain.split_first() else {
        seen.verification_error = Some("no certificate was sent".into());
        seen.trusted = Some(false);
        return seen;
    };
    let provider = Arc::new(ring::default_provider());
    let verifier =
        WebPkiServerVerifier::builder_with_provider(roots.store.clone(), provider).build();
    let verdict = match verifier {
        Ok(verifier) => {
            verifier.verify_server_cert(leaf, intermediates, name, &[], UnixTime::now())
        }
        Err(error) => Err(rustls::Error::General(error.to_string())),
    };
    match verdict {
        Ok(_) => seen.trusted = Some(true),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => {
            // The chain is good; only the name is wrong.
            seen.trusted = Some(true);
            seen.hostname_match = Some(false);
            seen.verification_error = Some("the certificate is not valid for this name".into());
        }
        Err(error) => {
            seen.trusted = Some(false);
            seen.verification_error = Some(match error {
                rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. },
                ) => "the certificate has expired".to_owned(),
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                    "the certificate is not issued by a trusted authority".to_owned()
                }
                other => other.to_string(),
            });
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{covers, ocsp_scts, sct_count, tls_features};

    proptest! {
        /// Whatever a server staples or sends, reading timestamps out of it never panics, and a
        /// list is never counted longer than its bytes allow.
        #[test]
        fn any_bytes_are_read_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = ocsp_scts(&bytes);
            if let Some(count) = sct_count(&bytes) {
                prop_assert!(count as usize * 2 <= bytes.len());
            }
        }
    }

    #[test]
    fn an_sct_list_is_counted_and_a_short_one_refused() {
        let list = [0, 6, 0, 1, 9, 0, 1, 8];
        assert_eq!(sct_count(&list), Some(2));
        assert_eq!(sct_count(&list[..7]), None);
        assert_eq!(sct_count(&[0, 0]), Some(0));
        // An extension SEQUENCE { OID, OCTET STRING { OCTET STRING { list } } }, nested as in an
        // OCSP response.
        let oid = [&[0x06, 10][..], &super::OCSP_SCT_LIST_OID[..]].concat();
        let value = [&[0x04, 10, 0x04, 8][..], &list[..]].concat();
        let extension = [&[0x30, (oid.len() + value.len()) as u8][..], &oid, &value].concat();
        let wrapped = [&[0xa1, extension.len() as u8][..], &extension].concat();
        assert_eq!(ocsp_scts(&wrapped), 2);
        assert_eq!(ocsp_scts(&wrapped[..wrapped.len() - 1]), 0);
    }

    #[test]
    fn tls_features_are_read_from_their_der() {
        assert_eq!(tls_features(&[0x30, 0x03, 0x02, 0x01, 0x05]), [5]);
        assert_eq!(
            tls_features(&[0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x11]),
            [5, 17]
        );
        assert!(tls_features(&[0x30, 0x05, 0x02, 0x01]).is_empty());
        assert!(tls_features(&[0x04, 0x00]).is_empty());
        assert!(tls_features(&[]).is_empty());
    }

    #[test]
    fn names_and_wildcards() {
        let sans = vec!["shop.example".to_owned(), "*.cdn.example".to_owned()];
        assert!(covers(&sans, "shop.example"));
        assert!(covers(&sans, "SHOP.example."));
        assert!(covers(&sans, "img.cdn.example"));
        assert!(!covers(&sans, "cdn.example"));
        assert!(!covers(&sans, "a.img.cdn.example"));
        assert!(!covers(&sans, "other.example"));
    }
}
