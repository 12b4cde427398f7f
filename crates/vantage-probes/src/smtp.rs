//! Mail transport security: an SMTP conversation with a domain's mail exchanger up to STARTTLS
//! (RFC 3207) and the TLS handshake behind it, then QUIT. No mail is ever sent (there is no MAIL
//! FROM); the exchanger's name passes the SSRF guard like any target. Replies are bounded (a line's
//! length, a reply's lines) and the whole conversation has one deadline, so a server that trickles
//! or floods cannot hold a scan.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use vantage_observations::mail::SmtpTlsObservation;

use crate::ssrf::SsrfGuard;
use crate::tls::{Handshake, TlsRoots, handshake_over, judge_chain};

/// The port mail exchangers listen on.
pub const SMTP_PORT: u16 = 25;
/// How long one whole conversation may take, greeting to QUIT.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take, within [`SMTP_TIMEOUT`].
pub const SMTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest reply line read, in bytes (RFC 5321 §4.5.3.1.5 allows 512).
const MAX_LINE: usize = 1000;
/// Most lines of one reply.
const MAX_REPLY_LINES: usize = 64;
/// Longest greeting kept in an observation, in characters.
const MAX_BANNER: usize = 200;
/// The name the scanner gives itself in EHLO.
const EHLO: &[u8] = b"EHLO vantage-scanner.invalid\r\n";

/// One mail exchanger of a domain, from its MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailExchanger {
    pub preference: u16,
    /// Lower case, without the trailing dot.
    pub name: String,
}

impl MailExchanger {
    /// Reads an MX record in presentation format (`10 mx.example.com.`); `None` for the null MX
    /// (`0 .`, RFC 7505: the domain accepts no mail) and for anything unreadable.
    pub fn parse(record: &str) -> Option<Self> {
        let (preference, name) = record.trim().split_once(char::is_whitespace)?;
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        Some(Self {
            preference: preference.parse().ok()?,
            name,
        })
    }
}

/// What the conversation with one exchanger showed, and the chain it presented (for DANE).
#[derive(Debug)]
pub struct StartTls {
    pub observation: SmtpTlsObservation,
    pub chain: Vec<CertificateDer<'static>>,
}

/// Reads one reply: its code and the text of each line.
async fn read_reply<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<(u16, Vec<String>), String> {
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let read = (&mut *reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| format!("reading the reply failed: {e}"))?;
        if read == 0 {
            return Err("the server closed the connection".into());
        }
        if !line.ends_with(b"\n") {
            return Err(format!("a reply line longer than {MAX_LINE} bytes"));
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let code = text
            .get(..3)
            .and_then(|code| code.parse::<u16>().ok())
            .filter(|code| (200..600).contains(code))
            .ok_or_else(|| "the server's answer is not an SMTP reply".to_owned())?;
        let last = text.as_bytes().get(3) != Some(&b'-');
        lines.push(text.get(4..).unwrap_or_default().to_owned());
        if last {
            return Ok((code, lines));
        }
        if lines.len() >= MAX_REPLY_LINES {
            return Err(format!("a reply of more than {MAX_REPLY_LINES} lines"));
        }
    }
}

async fn send(stream: &mut BufReader<TcpStream>, line: &[u8]) -> Result<(), String> {
    stream
        .get_mut()
        .write_all(line)
        .await
        .map_err(|e| format!("writing to the server failed: {e}"))
}

/// How far the conversation got.
#[derive(Default)]
struct Conversation {
    banner: Option<String>,
    starttls_offered: Option<bool>,
    handshake: Option<Handshake>,
}

async fn converse(
    address: SocketAddr,
    name: &ServerName<'static>,
    seen: &mut Conversation,
) -> Result<(), String> {
    // Many networks drop outbound port 25 silently: give up on the connection early rather than
    // spend the whole deadline on it.
    let tcp = tokio::time::timeout(SMTP_CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| {
            format!(
                "no answer to the connection within {} s (port 25 may be filtered on the way)",
                SMTP_CONNECT_TIMEOUT.as_secs()
            )
        })?
        .map_err(|_| "connection failed".to_owned())?;
    let mut stream = BufReader::new(tcp);
    let (code, greeting) = read_reply(&mut stream).await?;
    seen.banner = Some(
        greeting
            .first()
            .map(|line| line.chars().take(MAX_BANNER).collect())
            .unwrap_or_default(),
    );
    if code != 220 {
        return Err(format!("the server greeted with {code}, not 220"));
    }
    send(&mut stream, EHLO).await?;
    let (code, extensions) = read_reply(&mut stream).await?;
    if code != 250 {
        return Err(format!("the server answered EHLO with {code}"));
    }
    let offered = extensions.iter().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|keyword| keyword.eq_ignore_ascii_case("STARTTLS"))
    });
    seen.starttls_offered = Some(offered);
    if !offered {
        let _ = send(&mut stream, b"QUIT\r\n").await;
        return Ok(());
    }
    send(&mut stream, b"STARTTLS\r\n").await?;
    let (code, _) = read_reply(&mut stream).await?;
    if code != 220 {
        return Err(format!("the server answered STARTTLS with {code}"));
    }
    // Anything already sent before the handshake would be read as if it came over TLS (the
    // STARTTLS command injection of CVE-2011-0411): refuse it.
    if !stream.buffer().is_empty() {
        return Err("the server sent data before the TLS handshake".into());
    }
    let (mut tls, done) =
        handshake_over(stream.into_inner(), name, rustls::ALL_VERSIONS, &[]).await?;
    seen.handshake = Some(done);
    let _ = tls.write_all(b"QUIT\r\n").await;
    let _ = tls.shutdown().await;
    Ok(())
}

/// Talks to `exchanger` of `domain` on `port` (25 on the Internet): its greeting, whether EHLO
/// offers STARTTLS, and the TLS behind it, judged against `roots` for the exchanger's name.
pub async fn probe_starttls(
    guard: &SsrfGuard,
    roots: &TlsRoots,
    domain: &str,
    exchanger: &MailExchanger,
    port: u16,
) -> StartTls {
    let mut observation = SmtpTlsObservation {
        domain: domain.to_owned(),
        mx: exchanger.name.clone(),
        preference: exchanger.preference,
        address: None,
        banner: None,
        starttls_offered: None,
        handshake: false,
        protocol: None,
        cipher_suite: None,
        chain: vec![],
        trusted: None,
        hostname_match: None,
        verification_error: None,
        chain_facts: None,
        error: None,
    };
    let ended_early = |mut observation: SmtpTlsObservation, error: String| {
        observation.error = Some(error);
        StartTls {
            observation,
            chain: vec![],
        }
    };
    let vetted = guard
        .vet_host(&exchanger.name)
        .await
        .map_err(|refusal| refusal.to_string())
        .and_then(|addresses| {
            addresses
                .first()
                .copied()
                .ok_or_else(|| "the exchanger has no address".to_owned())
        });
    let address = match vetted {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(error) => return ended_early(observation, error),
    };
    observation.address = Some(address);
    let Ok(name) = ServerName::try_from(exchanger.name.clone()) else {
        return ended_early(observation, "not a valid TLS server name".into());
    };
    let mut seen = Conversation::default();
    let ended = tokio::time::timeout(SMTP_TIMEOUT, converse(address, &name, &mut seen)).await;
    observation.error = match ended {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error),
        Err(_) => Some(format!(
            "the conversation took longer than {} s",
            SMTP_TIMEOUT.as_secs()
        )),
    };
    observation.banner = seen.banner;
    observation.starttls_offered = seen.starttls_offered;
    let mut chain = Vec::new();
    if let Some(done) = seen.handshake {
        let verdict = judge_chain(&done.chain, &name, &exchanger.name, roots);
        observation.handshake = true;
        observation.protocol = Some(done.protocol);
        observation.cipher_suite = Some(done.cipher_suite);
        observation.chain = verdict.chain;
        observation.trusted = verdict.trusted;
        observation.hostname_match = verdict.hostname_match;
        observation.verification_error = verdict.verification_error;
        observation.chain_facts = verdict.facts;
        chain = done.chain;
    }
    StartTls { observation, chain }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn mx_records_are_read_and_the_null_mx_is_none() {
        assert_eq!(
            MailExchanger::parse("10 MX1.Example.com."),
            Some(MailExchanger {
                preference: 10,
                name: "mx1.example.com".into()
            })
        );
        assert_eq!(MailExchanger::parse("0 ."), None);
        assert_eq!(MailExchanger::parse("mx.example.com."), None);
        assert_eq!(MailExchanger::parse("70000 mx.example.com."), None);
    }

    async fn reply(bytes: &[u8]) -> Result<(u16, Vec<String>), String> {
        read_reply(&mut BufReader::new(bytes)).await
    }

    #[tokio::test]
    async fn replies_are_read_line_by_line_and_bounded() {
        assert_eq!(
            reply(b"250-mx.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n").await,
            Ok((
                250,
                vec![
                    "mx.example.com".into(),
                    "PIPELINING".into(),
                    "STARTTLS".into()
                ]
            ))
        );
        assert_eq!(reply(b"220\r\n").await, Ok((220, vec![String::new()])));
        assert!(reply(b"").await.unwrap_err().contains("closed"));
        assert!(
            reply(b"HTTP/1.1 400\r\n")
                .await
                .unwrap_err()
                .contains("not an SMTP")
        );
        assert!(
            reply(&[b'2'; 2000])
                .await
                .unwrap_err()
                .contains("longer than")
        );
        let flood = "250-x\r\n".repeat(100);
        assert!(
            reply(flood.as_bytes())
                .await
                .unwrap_err()
                .contains("more than")
        );
        assert!(
            reply(b"250-unfinished\r\n")
                .await
                .unwrap_err()
                .contains("closed")
        );
    }

    proptest! {
        #[test]
        fn any_bytes_give_a_reply_or_an_error_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let _ = runtime.block_on(reply(&bytes));
        }

        #[test]
        fn any_mx_text_parses_or_is_refused(text in "\\PC{0,40}") {
            if let Some(exchanger) = MailExchanger::parse(&text) {
                prop_assert!(!exchanger.name.is_empty());
                prop_assert!(!exchanger.name.ends_with('.'));
            }
        }
    }
}
