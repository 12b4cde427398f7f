//! Cipher suite enumeration with hand-built ClientHellos, so that suites no modern library will
//! speak (RC4, 3DES, export, NULL, anonymous) are seen too. For each protocol version the probe
//! offers every known suite ([`vantage_observations::cipher_suites::SUITES`]) the version may
//! carry; the suite the server picks is recorded, removed from the offer, and the server asked
//! again, until it refuses. The picks come out in the server's order; whether it enforces that
//! order is told by offering its first two picks the other way round. Only the ServerHello — and,
//! for (EC)DHE suites of TLS 1.2 and older, the ServerKeyExchange, for the group and the prime's
//! size — is read; no handshake is ever completed, so nothing is negotiated or verified.
//!
//! Beside the enumeration, [`protocol_facts`] asks the versions and suites it found for secure
//! renegotiation (RFC 5746), TLS compression and downgrade protection (TLS_FALLBACK_SCSV), one
//! hand-built hello each.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vantage_observations::cipher_suites::{KeyExchange, SUITES, suite};
use vantage_observations::tls::{AcceptedSuite, TlsProtocolFacts, TlsVersion, VersionSuites};

use crate::tls::{client_hello_record, with_u16_length};

/// The longest one offer may take (connect, hello, answer).
pub const OFFER_TIMEOUT: Duration = Duration::from_secs(5);
/// The most bytes read from one answer (a ServerHello, a certificate chain, a key exchange).
const MAX_ANSWER_BYTES: usize = 128 * 1024;

fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend(with_u16_length(data));
    out
}

/// Named groups offered: the curves first, then RFC 7919's finite-field groups.
const GROUPS: [u16; 7] = [0x001d, 0x0017, 0x0018, 0x0019, 0x001e, 0x0100, 0x0101];
/// Signature schemes offered (ECDSA, RSA-PSS, RSA PKCS#1, Ed25519, and SHA-1 for old servers).
const SIGNATURES: [u16; 12] = [
    0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0807, 0x0201, 0x0203,
];

/// The name of a TLS named group.
pub fn group_name(id: u16) -> String {
    match id {
        0x0017 => "secp256r1".into(),
        0x0018 => "secp384r1".into(),
        0x0019 => "secp521r1".into(),
        0x001d => "x25519".into(),
        0x001e => "x448".into(),
        0x0100 => "ffdhe2048".into(),
        0x0101 => "ffdhe3072".into(),
        0x0102 => "ffdhe4096".into(),
        0x0103 => "ffdhe6144".into(),
        0x0104 => "ffdhe8192".into(),
        other => format!("group {other:#06x}"),
    }
}

/// The prime size of an RFC 7919 group.
fn ffdhe_bits(id: u16) -> Option<u32> {
    match id {
        0x0100 => Some(2048),
        0x0101 => Some(3072),
        0x0102 => Some(4096),
        0x0103 => Some(6144),
        0x0104 => Some(8192),
        _ => None,
    }
}

/// A ClientHello for exactly `version`, offering `suites` in that order, with SNI (for names),
/// the usual groups and signature schemes, `renegotiation_info`, and — for TLS 1.3 —
/// `supported_versions` and an X25519 key share.
pub fn client_hello(version: TlsVersion, suites: &[u16], server_name: &str) -> Vec<u8> {
    client_hello_with(version, suites, server_name, false)
}

/// [`client_hello`], offering DEFLATE compression before none when `deflate`.
pub fn client_hello_with(
    version: TlsVersion,
    suites: &[u16],
    server_name: &str,
    deflate: bool,
) -> Vec<u8> {
    let tls13 = version == TlsVersion::Tls13;
    let mut body = if tls13 {
        TlsVersion::Tls12.wire().to_vec()
    } else {
        version.wire().to_vec()
    };
    body.extend_from_slice(&[0x56; 32]); // client random; nothing secret is negotiated on it
    if tls13 {
        body.push(32); // a legacy session id, as TLS 1.3 clients send for middleboxes
        body.extend_from_slice(&[0x5a; 32]);
    } else {
        body.push(0);
    }
    let suites: Vec<u8> = suites.iter().flat_map(|s| s.to_be_bytes()).collect();
    body.extend(with_u16_length(&suites));
    if deflate {
        body.extend_from_slice(&[2, 1, 0]); // compression: DEFLATE, then null
    } else {
        body.extend_from_slice(&[1, 0]); // compression: null only
    }
    let mut extensions = Vec::new();
    if server_name.parse::<std::net::IpAddr>().is_err() {
        let mut entry = vec![0u8]; // host_name
        entry.extend(with_u16_length(server_name.as_bytes()));
        extensions.extend(extension(0x0000, &with_u16_length(&entry)));
    }
    let groups: Vec<u8> = GROUPS.iter().flat_map(|g| g.to_be_bytes()).collect();
    extensions.extend(extension(0x000a, &with_u16_length(&groups)));
    extensions.extend(extension(0x000b, &[0x01, 0x00])); // ec_point_formats: uncompressed
    let signatures: Vec<u8> = SIGNATURES.iter().flat_map(|s| s.to_be_bytes()).collect();
    extensions.extend(extension(0x000d, &with_u16_length(&signatures)));
    extensions.extend(extension(0xff01, &[0x00])); // renegotiation_info, empty
    extensions.extend(extension(0x0012, &[])); // signed_certificate_timestamp, as browsers ask
    if tls13 {
        extensions.extend(extension(0x002b, &[0x02, 0x03, 0x04])); // supported_versions: 1.3
        let mut share = 0x001du16.to_be_bytes().to_vec();
        share.extend(with_u16_length(&[9u8; 32])); // any 32 bytes are an X25519 public key
        extensions.extend(extension(0x0033, &with_u16_length(&share)));
        extensions.extend(extension(0x002d, &[0x01, 0x01])); // psk_key_exchange_modes: psk_dhe_ke
    }
    body.extend(with_u16_length(&extensions));
    client_hello_record(&body)
}

/// What a ServerHello (or a TLS 1.3 HelloRetryRequest) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// The negotiated version: `supported_versions` when present, else the hello's own.
    pub version: [u8; 2],
    pub suite: u16,
    /// TLS 1.3: the group of the key share (or the one a HelloRetryRequest asks for).
    pub key_share_group: Option<u16>,
    /// The compression method chosen (0 none, 1 DEFLATE).
    pub compression: u8,
    /// The `renegotiation_info` extension was answered (RFC 5746).
    pub secure_renegotiation: bool,
    /// The random ends with RFC 8446's downgrade sentinel (`DOWNGRD` and 01 or 00): a TLS 1.3
    /// server answering an older version says so, and TLS 1.3 clients refuse the downgrade.
    pub downgrade_sentinel: bool,
    /// The signed certificate timestamps of the `signed_certificate_timestamp` extension, when
    /// the server answered it (RFC 6962 §3.3).
    pub scts: Option<u32>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// Parses a ServerHello's body (after the handshake header); `None` when it is not one.
pub fn parse_server_hello(body: &[u8]) -> Option<ServerHello> {
    let mut r = Reader(body);
    let legacy = r.take(2)?;
    // The random (a HelloRetryRequest's is a fixed value; it is read the same way).
    let random = r.take(32)?;
    let downgrade_sentinel = random[24..31] == *b"DOWNGRD" && random[31] <= 1;
    let session = usize::from(r.u8()?);
    r.take(session)?;
    let suite = r.u16()?;
    let compression = r.u8()?;
    let mut hello = ServerHello {
        version: [legacy[0], legacy[1]],
        suite,
        key_share_group: None,
        compression,
        secure_renegotiation: false,
        downgrade_sentinel,
        scts: None,
    };
    if r.0.is_empty() {
        return Some(hello);
    }
    let mut extensions = Reader(r.vec16()?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vec16()?;
        match kind {
            0x002b if data.len() == 2 => hello.version = [data[0], data[1]],
            0x0033 if data.len() >= 2 => {
                hello.key_share_group = Some(u16::from_be_bytes([data[0], data[1]]));
            }
            0xff01 => hello.secure_renegotiation = true,
            0x0012 => hello.scts = crate::tls::sct_count(data),
            _ => {}
        }
    }
    Some(hello)
}

/// The group and prime size a ServerKeyExchange of `key_exchange` announces: (named group, bits).
pub fn parse_server_key_exchange(
    body: &[u8],
    key_exchange: KeyExchange,
) -> Option<(Option<String>, Option<u32>)> {
    let mut r = Reader(body);
    match key_exchange {
        KeyExchange::Ecdhe | KeyExchange::EcdhAnon => {
            (r.u8()? == 3).then_some(())?; // named_curve
            let group = r.u16()?;
            Some((Some(group_name(group)), None))
        }
        KeyExchange::Dhe | KeyExchange::DhAnon => {
            let prime = r.vec16()?;
            let first = prime.iter().position(|b| *b != 0)?;
            let bits = (prime.len() - first) * 8 - prime[first].leading_zeros() as usize;
            Some((None, u32::try_from(bits).ok()))
        }
        KeyExchange::Rsa | KeyExchange::Tls13 => None,
    }
}

/// Splits complete handshake messages off the front of `buffer`: (type, body) each.
fn handshake_messages(buffer: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut messages = Vec::new();
    loop {
        if buffer.len() < 4 {
            break;
        }
        let length =
            usize::from(buffer[1]) << 16 | usize::from(buffer[2]) << 8 | usize::from(buffer[3]);
        if buffer.len() < 4 + length {
            break;
        }
        let body = buffer[4..4 + length].to_vec();
        messages.push((buffer[0], body));
        buffer.drain(..4 + length);
    }
    messages
}

/// What one offer found: the suite the server picked and its key exchange group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pick {
    suite: u16,
    group: Option<String>,
    dh_bits: Option<u32>,
}

/// What the server sent back, record by record.
enum Record {
    /// Handshake bytes (messages may span records).
    Handshake(Vec<u8>),
    /// An alert: its description.
    Alert(u8),
}

/// Reads one record; `None` on a close, a timeout of the caller, or what is not TLS.
async fn read_record(tcp: &mut TcpStream, read: &mut usize) -> Option<Record> {
    let mut header = [0u8; 5];
    tcp.read_exact(&mut header).await.ok()?;
    let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
    *read += 5 + length;
    if length > 16 * 1024 + 2048 || *read > MAX_ANSWER_BYTES {
        return None;
    }
    let mut fragment = vec![0u8; length];
    tcp.read_exact(&mut fragment).await.ok()?;
    match header[0] {
        0x16 => Some(Record::Handshake(fragment)),
        0x15 if fragment.len() == 2 => Some(Record::Alert(fragment[1])),
        _ => None,
    }
}

/// What the server answered a ClientHello with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Hello(ServerHello),
    /// An alert: its description (40 handshake_failure, 70 protocol_version, 86
    /// inappropriate_fallback, …).
    Alert(u8),
    /// A close, silence, or not TLS.
    Nothing,
}

/// Sends `hello` and reads the answer up to the ServerHello.
async fn ask(address: SocketAddr, hello: &[u8]) -> Answer {
    let attempt = async {
        let Ok(mut tcp) = TcpStream::connect(address).await else {
            return Answer::Nothing;
        };
        if tcp.write_all(hello).await.is_err() {
            return Answer::Nothing;
        }
        let mut buffer = Vec::new();
        let mut read = 0usize;
        loop {
            match read_record(&mut tcp, &mut read).await {
                Some(Record::Handshake(fragment)) => {
                    buffer.extend_from_slice(&fragment);
                    if let Some((kind, body)) = handshake_messages(&mut buffer).into_iter().next() {
                        return match (kind, parse_server_hello(&body)) {
                            (2, Some(hello)) => Answer::Hello(hello),
                            _ => Answer::Nothing,
                        };
                    }
                }
                Some(Record::Alert(description)) => return Answer::Alert(description),
                None => return Answer::Nothing,
            }
        }
    };
    tokio::time::timeout(OFFER_TIMEOUT, attempt)
        .await
        .unwrap_or(Answer::Nothing)
}

/// Offers `suites` for `version` once; `None` when the server refuses (an alert, a close, another
/// version, a suite it was not offered, silence).
async fn offer(
    address: SocketAddr,
    server_name: &str,
    version: TlsVersion,
    suites: &[u16],
) -> Option<Pick> {
    let attempt = async {
        let mut tcp = TcpStream::connect(address).await.ok()?;
        tcp.write_all(&client_hello(version, suites, server_name))
            .await
            .ok()?;
        let mut buffer = Vec::new();
        let mut read = 0usize;
        let mut pick: Option<(Pick, KeyExchange)> = None;
        'records: loop {
            let Some(Record::Handshake(fragment)) = read_record(&mut tcp, &mut read).await else {
                // An alert (a refusal), a close, or not TLS: whatever was picked stands.
                break 'records;
            };
            buffer.extend_from_slice(&fragment);
            for (kind, body) in handshake_messages(&mut buffer) {
                match (kind, &mut pick) {
                    (2, None) => {
                        let hello = parse_server_hello(&body)?;
                        if hello.version != version.wire() || !suites.contains(&hello.suite) {
                            return None;
                        }
                        let key_exchange = suite(hello.suite)?.key_exchange;
                        let group = hello.key_share_group;
                        let found = Pick {
                            suite: hello.suite,
                            group: group.map(group_name),
                            dh_bits: group.and_then(ffdhe_bits),
                        };
                        if matches!(key_exchange, KeyExchange::Rsa | KeyExchange::Tls13) {
                            return Some(found);
                        }
                        pick = Some((found, key_exchange));
                    }
                    (12, Some((found, key_exchange))) => {
                        if let Some((group, bits)) = parse_server_key_exchange(&body, *key_exchange)
                        {
                            found.group = group;
                            found.dh_bits = bits;
                        }
                        break 'records;
                    }
                    // ServerHelloDone before any key exchange: nothing more to learn.
                    (14, Some(_)) => break 'records,
                    _ => {}
                }
            }
        }
        pick.map(|(p, _)| p)
    };
    tokio::time::timeout(OFFER_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()
}

/// TLS_FALLBACK_SCSV (RFC 7507): "this is a retry at a lower version".
const FALLBACK_SCSV: u16 = 0x5600;
/// The alert a server that honours it sends.
const INAPPROPRIATE_FALLBACK: u8 = 86;

/// Secure renegotiation, compression, certificate transparency in the TLS extension and downgrade
/// protection, asked of the versions and suites the enumeration found (ALPN is the TLS probe's, over
/// a real handshake: TLS 1.3 encrypts it).
pub async fn protocol_facts(
    address: SocketAddr,
    server_name: &str,
    enumerated: &[VersionSuites],
) -> TlsProtocolFacts {
    let suites_of = |v: &VersionSuites| -> Vec<u16> { v.suites.iter().map(|s| s.id).collect() };
    let mut facts = TlsProtocolFacts::default();
    // The best version up to 1.2: renegotiation and compression do not exist in TLS 1.3.
    if let Some(best) = enumerated
        .iter()
        .filter(|v| v.version <= TlsVersion::Tls12)
        .max_by_key(|v| v.version)
    {
        let hello = client_hello_with(best.version, &suites_of(best), server_name, true);
        if let Answer::Hello(answer) = ask(address, &hello).await {
            facts.secure_renegotiation = Some(answer.secure_renegotiation);
            facts.compression = Some(answer.compression != 0);
            facts.extension_scts = Some(answer.scts.unwrap_or(0));
        }
    }
    // A retry one version below the best, marked as a fallback: a protected server refuses it, or
    // — a TLS 1.3 server — answers with RFC 8446's downgrade sentinel, which TLS 1.3 clients refuse.
    let mut versions: Vec<&VersionSuites> = enumerated.iter().collect();
    versions.sort_by_key(|v| v.version);
    if let [.., lower, _best] = versions.as_slice() {
        let mut offered = suites_of(lower);
        offered.push(FALLBACK_SCSV);
        let hello = client_hello(lower.version, &offered, server_name);
        facts.fallback_scsv = match ask(address, &hello).await {
            Answer::Alert(INAPPROPRIATE_FALLBACK) => Some(true),
            Answer::Hello(answer) => Some(answer.downgrade_sentinel),
            Answer::Alert(_) | Answer::Nothing => None,
        };
    }
    facts
}

/// The suites `version` may carry, in the order offered.
fn candidates(version: TlsVersion) -> Vec<u16> {
    SUITES
        .iter()
        .filter(|s| match version {
            TlsVersion::Tls13 => s.is_tls13(),
            TlsVersion::Tls12 => !s.is_tls13(),
            TlsVersion::Tls10 | TlsVersion::Tls11 => !s.is_tls13() && !s.tls12_only,
        })
        .map(|s| s.id)
        .collect()
}

/// Every suite `version` accepts at `address`, in the server's order; `None` when it accepts none.
pub async fn enumerate_version(
    address: SocketAddr,
    server_name: &str,
    version: TlsVersion,
) -> Option<VersionSuites> {
    let mut offered = candidates(version);
    let mut picks: Vec<Pick> = Vec::new();
    while !offered.is_empty() {
        let Some(pick) = offer(address, server_name, version, &offered).await else {
            break;
        };
        offered.retain(|id| *id != pick.suite);
        picks.push(pick);
    }
    let (first, second) = match picks.as_slice() {
        [] => return None,
        [first, second, ..] => (Some(first.suite), Some(second.suite)),
        [_] => (None, None),
    };
    let server_order = match (first, second) {
        (Some(first), Some(second)) => offer(address, server_name, version, &[second, first])
            .await
            .map(|pick| pick.suite == first),
        _ => None,
    };
    Some(VersionSuites {
        version,
        suites: picks
            .into_iter()
            .map(|pick| AcceptedSuite {
                id: pick.suite,
                name: suite(pick.suite)
                    .map_or_else(|| format!("{:#06x}", pick.suite), |s| s.name.to_owned()),
                group: pick.group,
                dh_bits: pick.dh_bits,
            })
            .collect(),
        server_order,
    })
}

/// The suites every protocol version accepts at `address`, oldest version first; versions that
/// accept none are left out.
pub async fn enumerate(address: SocketAddr, server_name: &str) -> Vec<VersionSuites> {
    let found = futures::future::join_all(
        TlsVersion::ALL.map(|version| enumerate_version(address, server_name, version)),
    )
    .await;
    found.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_parses_back_and_a_key_exchange_names_its_group() {
        // A TLS 1.3 ServerHello: legacy version 1.2, supported_versions 1.3, an X25519 key share.
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0x13, 0x01, 0x00]);
        let mut extensions = extension(0x002b, &[0x03, 0x04]);
        let mut share = 0x001du16.to_be_bytes().to_vec();
        share.extend(with_u16_length(&[1; 32]));
        extensions.extend(extension(0x0033, &share));
        body.extend(with_u16_length(&extensions));
        assert_eq!(
            parse_server_hello(&body),
            Some(ServerHello {
                version: [0x03, 0x04],
                suite: 0x1301,
                key_share_group: Some(0x001d),
                compression: 0,
                secure_renegotiation: false,
                downgrade_sentinel: false,
                scts: None,
            })
        );
        assert_eq!(parse_server_hello(&body[..20]), None);
        // Two timestamps in the signed_certificate_timestamp extension; a list cut short is none.
        let scts =
            with_u16_length(&[with_u16_length(&[1; 47]), with_u16_length(&[2; 47])].concat());
        let mut answered = body.clone();
        let extensions_at = 2 + 32 + 1 + 3;
        let mut more = extensions.clone();
        more.extend(extension(0x0012, &scts));
        answered.truncate(extensions_at);
        answered.extend(with_u16_length(&more));
        assert_eq!(parse_server_hello(&answered).unwrap().scts, Some(2));
        assert_eq!(crate::tls::sct_count(&scts[..scts.len() - 1]), None);
        // A server that chose DEFLATE (no server Debian ships still can: docs/scoring.md).
        let mut compressed = body.clone();
        compressed[2 + 32 + 1 + 2] = 1;
        assert_eq!(parse_server_hello(&compressed).unwrap().compression, 1);
        let mut downgraded = body.clone();
        downgraded[2 + 24..2 + 32].copy_from_slice(b"DOWNGRD\x01");
        assert!(parse_server_hello(&downgraded).unwrap().downgrade_sentinel);
        let ecdhe = [3, 0x00, 0x17, 65];
        assert_eq!(
            parse_server_key_exchange(&ecdhe, KeyExchange::Ecdhe),
            Some((Some("secp256r1".into()), None))
        );
        let mut dhe = with_u16_length(&[&[0x00, 0x7f][..], &[0xff; 127]].concat());
        dhe.extend_from_slice(&[0, 1, 2]);
        assert_eq!(
            parse_server_key_exchange(&dhe, KeyExchange::Dhe),
            Some((None, Some(1023)))
        );
    }

    #[test]
    fn hellos_offer_what_they_are_asked_to() {
        let hello = client_hello(TlsVersion::Tls12, &[0xc02f, 0x002f], "example.com");
        assert_eq!(&hello[..3], &[0x16, 0x03, 0x01]);
        assert_eq!(&hello[9..11], &[0x03, 0x03]);
        let suites_at = 11 + 32 + 1;
        assert_eq!(
            &hello[suites_at..suites_at + 6],
            &[0, 4, 0xc0, 0x2f, 0x00, 0x2f]
        );
        assert!(hello.windows(11).any(|w| w == b"example.com"));
        let hello13 = client_hello(TlsVersion::Tls13, &[0x1301], "127.0.0.1");
        assert!(
            !hello13.windows(9).any(|w| w == b"127.0.0.1"),
            "no SNI for an address"
        );
        assert!(
            hello13
                .windows(7)
                .any(|w| w == [0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04])
        );
    }

    #[test]
    fn legacy_versions_are_offered_only_suites_they_can_carry() {
        for id in candidates(TlsVersion::Tls10) {
            let s = suite(id).unwrap();
            assert!(!s.tls12_only && !s.is_tls13(), "{}", s.name);
        }
        assert_eq!(candidates(TlsVersion::Tls13).len(), 5);
        assert!(candidates(TlsVersion::Tls12).len() > candidates(TlsVersion::Tls10).len());
    }
}
