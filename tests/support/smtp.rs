//! A mail exchanger for tests: a small SMTP server on loopback that greets, answers EHLO (offering
//! STARTTLS or not), upgrades with rustls, and says goodbye — enough of RFC 5321 and RFC 3207 for
//! the STARTTLS probe, never a mail delivered.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the server answers STARTTLS.
#[derive(Debug, Clone)]
pub enum StartTls {
    /// EHLO does not list STARTTLS.
    NotOffered,
    /// Listed, and the TLS handshake uses this configuration.
    Working(Arc<rustls::ServerConfig>),
    /// Listed, answered 220, then plain text where the server's half of the handshake should be.
    Broken,
    /// Listed, and the 220 answer arrives with more plaintext right behind it (what an attacker
    /// injects before the handshake).
    Injected(Arc<rustls::ServerConfig>),
}

/// Serves SMTP on `listener` until the test ends.
pub fn serve_smtp(listener: TcpListener, starttls: StartTls) -> SocketAddr {
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let starttls = starttls.clone();
            tokio::spawn(async move {
                let _ = session(tcp, starttls).await;
            });
        }
    });
    address
}

async fn session(tcp: tokio::net::TcpStream, starttls: StartTls) -> std::io::Result<()> {
    let mut stream = BufReader::new(tcp);
    stream
        .get_mut()
        .write_all(b"220 mx.lab.test ESMTP lab\r\n")
        .await?;
    let offered = !matches!(starttls, StartTls::NotOffered);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim().to_ascii_uppercase();
        let out = stream.get_mut();
        if command.starts_with("EHLO") {
            let tls = if offered { "250-STARTTLS\r\n" } else { "" };
            out.write_all(
                format!("250-mx.lab.test\r\n250-PIPELINING\r\n{tls}250 8BITMIME\r\n").as_bytes(),
            )
            .await?;
        } else if command == "STARTTLS" && offered {
            match &starttls {
                StartTls::Working(config) => {
                    out.write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
                    let tls = tokio_rustls::TlsAcceptor::from(config.clone())
                        .accept(stream.into_inner())
                        .await?;
                    return after_tls(tls).await;
                }
                StartTls::Broken => {
                    out.write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
                    // Waits for the ClientHello, then answers in plain text.
                    let mut hello = [0u8; 512];
                    let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut hello).await?;
                    stream.get_mut().write_all(b"this is not TLS\r\n").await?;
                    return Ok(());
                }
                StartTls::Injected(config) => {
                    out.write_all(b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n")
                        .await?;
                    let tls = tokio_rustls::TlsAcceptor::from(config.clone())
                        .accept(stream.into_inner())
                        .await?;
                    return after_tls(tls).await;
                }
                StartTls::NotOffered => unreachable!("not offered"),
            }
        } else if command == "QUIT" {
            out.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            out.write_all(b"502 5.5.2 Command not recognized\r\n")
                .await?;
        }
    }
}

async fn after_tls<S: AsyncRead + AsyncWrite + Unpin>(tls: S) -> std::io::Result<()> {
    let mut stream = BufReader::new(tls);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        if line.trim().eq_ignore_ascii_case("QUIT") {
            stream.get_mut().write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        }
        stream.get_mut().write_all(b"250 2.0.0 OK\r\n").await?;
    }
}
