//! A test certificate authority and TLS servers on loopback, for the TLS probe's tests.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA that exists only for the duration of a test.
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    pub certificate: CertificateDer<'static>,
    pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A leaf certificate chain and its key.
pub type Leaf = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

impl TestCa {
    pub fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Vantage Test CA");
        let signed = params.self_signed(&key).unwrap();
        Self {
            certificate: signed.der().clone(),
            pem: signed.pem(),
            params,
            key,
        }
    }

    /// The CA certificate in PEM, for tools that read a CA file.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A leaf for `names`, valid from `not_before` to `not_after` (years), issued by this CA.
    pub fn leaf(&self, names: &[&str], validity: Option<(i32, i32)>) -> Leaf {
        self.leaf_with(names, validity, Vec::new())
    }

    /// [`TestCa::leaf`] carrying `extensions` besides the usual ones.
    pub fn leaf_with(
        &self,
        names: &[&str],
        validity: Option<(i32, i32)>,
        extensions: Vec<rcgen::CustomExtension>,
    ) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.custom_extensions = extensions;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            names.first().copied().unwrap_or("leaf"),
        );
        if let Some((from, to)) = validity {
            params.not_before = rcgen::date_time_ymd(from, 1, 1);
            params.not_after = rcgen::date_time_ymd(to, 1, 1);
        }
        let issuer = Issuer::from_params(&self.params, &self.key);
        let certificate = params.signed_by(&key, &issuer).unwrap();
        (
            vec![certificate.der().clone(), self.certificate.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

impl TestCa {
    /// An intermediate CA issued by this one: its leaves chain through it ([`TestCa::leaf`] returns
    /// the leaf and the intermediate).
    pub fn intermediate(&self) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Vantage Test Intermediate");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let signed = params.signed_by(&key, &issuer).unwrap();
        TestCa {
            certificate: signed.der().clone(),
            pem: signed.pem(),
            params,
            key,
        }
    }
}

/// The TLS Feature extension with `status_request` (OCSP Must-Staple, RFC 7633).
pub fn must_staple_extension() -> rcgen::CustomExtension {
    rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 24],
        vec![0x30, 0x03, 0x02, 0x01, 0x05],
    )
}

/// An embedded SCT list (RFC 6962 §3.3) of `count` timestamps from made-up logs: well-formed,
/// never verified by anything that reads it here.
pub fn sct_list_extension(count: u8) -> rcgen::CustomExtension {
    let mut list = Vec::new();
    for n in 0..count {
        let mut sct = vec![0u8]; // v1
        sct.extend_from_slice(&[n; 32]); // log id
        sct.extend_from_slice(&1_700_000_000_000u64.to_be_bytes()); // timestamp, ms
        sct.extend_from_slice(&[0, 0]); // no extensions
        sct.extend_from_slice(&[4, 3, 0, 8]); // SHA-256 / ECDSA, 8 bytes of signature
        sct.extend_from_slice(&[0x5a; 8]);
        list.extend_from_slice(&u16::try_from(sct.len()).unwrap().to_be_bytes());
        list.extend(sct);
    }
    let mut tls = u16::try_from(list.len()).unwrap().to_be_bytes().to_vec();
    tls.extend(list);
    // The extension's value is an OCTET STRING holding the TLS-encoded list.
    let mut der = vec![0x04, u8::try_from(tls.len()).unwrap()];
    der.extend(tls);
    rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2], der)
}

impl TestCa {
    /// A leaf for `names` as PEM files hold it: (its chain, leaf first; its PKCS#8 key), for
    /// programs that read certificate files (`vantage serve --tls-cert --tls-key`).
    pub fn leaf_pem(&self, names: &[&str]) -> (String, String) {
        let (chain, key) = self.leaf(names, None);
        let pem = |tag: &str, der: &[u8]| {
            use base64::Engine;
            let body = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            format!(
                "-----BEGIN {tag}-----\n{}\n-----END {tag}-----\n",
                lines.join("\n")
            )
        };
        let chain = chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
        (chain, pem("PRIVATE KEY", key.secret_der()))
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A certificate that signs itself, for `names`.
pub fn self_signed(names: &[&str]) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    let certificate = params.self_signed(&key).unwrap();
    (
        vec![certificate.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// Serves TLS with `leaf` on a loopback port, speaking only `versions`; completes handshakes and
/// closes. Returns the address.
pub async fn tls_server(
    leaf: Leaf,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.0, leaf.1)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    address
}

/// A TLS listener for `axum::serve`: HTTPS sites on loopback for the probes' tests. Handshakes run
/// concurrently (one task each), so a client that opens a connection and never finishes its
/// handshake (the TCP probe, a legacy ClientHello) cannot hold up the others.
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.local)
            .finish()
    }
}

impl TlsListener {
    /// TLS with `config` on an already bound `listener`.
    pub fn new(listener: tokio::net::TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        let local = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (sender, ready) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(tcp),
                    );
                    if let Ok(Ok(tls)) = handshake.await {
                        let _ = sender.send((tls, peer)).await;
                    }
                });
            }
        });
        Self { ready, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop never ends while the runtime lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// An HTTPS server's TLS configuration: `leaf`, the default protocol versions, HTTP/1.1.
pub fn https_config(leaf: Leaf) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.0, leaf.1)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Serves `router` over HTTPS with `leaf` on a loopback port.
pub async fn serve_https(router: axum::Router, leaf: Leaf) -> SocketAddr {
    serve_https_on(std::net::Ipv4Addr::LOCALHOST, router, leaf).await
}

/// Serves `router` over HTTPS with `leaf` on `ip` (any 127.0.0.0/8 address), port chosen by the system.
pub async fn serve_https_on(
    ip: std::net::Ipv4Addr,
    router: axum::Router,
    leaf: Leaf,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    let tls = TlsListener::new(listener, https_config(leaf));
    tokio::spawn(async move { axum::serve(tls, router).await });
    address
}

/// Like [`tls_server`], stapling `ocsp` (any bytes; the probe records that a response was stapled).
pub async fn tls_server_stapling(leaf: Leaf, ocsp: Vec<u8>) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert_with_ocsp(leaf.0, leaf.1, ocsp)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    address
}
