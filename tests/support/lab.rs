//! A lab of web sites on loopback, one per security posture, reachable by name the way users type
//! them: each site has a loopback address of its own (in 127.64.0.0/10), serves plain HTTP on port
//! 80 and/or HTTPS on port 443 with a certificate from the lab's test CA, and is named in the lab's
//! DNS server (with SPF, DMARC and CAA records, so the mail and DNS rules stay quiet and each site's
//! findings are about its web posture).
//!
//! Real ports 80 and 443 are what a name or a scheme-only URL means, and what Mozilla's HTTP
//! Observatory scans, so the lab binds them: the test process must be allowed to (root, as in CI, or
//! `sysctl net.ipv4.ip_unprivileged_port_start=0`). Every address is loopback; nothing leaves the
//! machine.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hickory_proto::rr::rdata::{A, AAAA, CAA, TXT};
use hickory_proto::rr::{Name, RData};

use crate::dns::TestDns;
use crate::tls::TestCa;

/// One security posture, and the site that has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Posture {
    /// Plain HTTP only (nothing on 443), `Server` and `X-Powered-By` disclose versions, cookies
    /// without Secure or HttpOnly, no security header at all.
    PlainHttp,
    /// Port 80 redirects to HTTPS on the same host; HTTPS sends every security header (A+).
    GoodHttps,
    /// Good headers and HSTS, but served over an expired certificate.
    HstsExpiredCertificate,
    /// HTTPS with `default-src * 'unsafe-inline' 'unsafe-eval'`.
    WeakCsp,
    /// Port 80 answers `301 → https://same-host/…`; HTTPS exposes `/.git/HEAD`, `/.env` and
    /// `/openapi.json`, and its root is a JSON API.
    ExposedBehindRedirect,
    /// Port 80 answers `301 → https://same-host/…`; HTTPS serves a valid security.txt.
    SecurityTxtBehindRedirect,
    /// HTTPS that reflects any Origin with `Access-Control-Allow-Credentials: true`.
    ReflectedCors,
    /// HTTPS setting `__Host-` and `__Secure-` cookies (one of each breaking its prefix's rules) and
    /// an unprefixed session cookie.
    CookiePrefixes,
    /// Good headers over a certificate (from the lab CA) for another name.
    MismatchedCertificate,
    /// A name with an address where nothing listens.
    Unreachable,
    // Header variants: sites that exercise more of the Observatory's tests, for the differential
    // test against it (their findings are not pinned one by one).
    /// Scripts of every kind (relative, external with and without SRI, protocol-relative), and the
    /// policies in `<meta>` only: a CSP and `unsafe-url` referrer.
    ScriptsAndMetaPolicies,
    /// A short HSTS, invalid X-Content-Type-Options and CORP, ALLOW-FROM framing,
    /// `no-referrer-when-downgrade`, a report-only CSP, a cookie without Secure.
    WeakHeaders,
    /// Port 80 redirects to HTTP first; HSTS sent twice; an anti-CSRF cookie without SameSite and
    /// a session cookie with an invalid SameSite.
    HttpFirstRedirect,
    /// Port 80 redirects to HTTPS on another host of the site (`www.`); a nonce-based CSP with
    /// `'strict-dynamic'` and inline styles.
    OffHostRedirect,
    /// A CSP with a repeated report-uri.
    DuplicateReporting,
}

impl Posture {
    pub const ALL: [Posture; 10] = [
        Self::PlainHttp,
        Self::GoodHttps,
        Self::HstsExpiredCertificate,
        Self::WeakCsp,
        Self::ExposedBehindRedirect,
        Self::SecurityTxtBehindRedirect,
        Self::ReflectedCors,
        Self::CookiePrefixes,
        Self::MismatchedCertificate,
        Self::Unreachable,
    ];

    /// The header variants (see above).
    pub const VARIANTS: [Posture; 5] = [
        Self::ScriptsAndMetaPolicies,
        Self::WeakHeaders,
        Self::HttpFirstRedirect,
        Self::OffHostRedirect,
        Self::DuplicateReporting,
    ];

    /// The site's name. Each is its own registrable domain, so no two lab sites are "same site".
    pub fn name(self) -> &'static str {
        match self {
            Self::PlainHttp => "plain-http.example",
            Self::GoodHttps => "good-https.example",
            Self::HstsExpiredCertificate => "hsts-expired.example",
            Self::WeakCsp => "weak-csp.example",
            Self::ExposedBehindRedirect => "exposed.example",
            Self::SecurityTxtBehindRedirect => "security-txt.example",
            Self::ReflectedCors => "reflected-cors.example",
            Self::CookiePrefixes => "cookie-prefixes.example",
            Self::MismatchedCertificate => "mismatched.example",
            Self::Unreachable => "unreachable.example",
            Self::ScriptsAndMetaPolicies => "scripts.example",
            Self::WeakHeaders => "weak-headers.example",
            Self::HttpFirstRedirect => "http-first.example",
            Self::OffHostRedirect => "offhost.example",
            Self::DuplicateReporting => "duplicate-reporting.example",
        }
    }

    /// Other names of the site (same address, same certificate).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Self::OffHostRedirect => &["www.offhost.example"],
            _ => &[],
        }
    }

    fn serves_https(self) -> bool {
        !matches!(self, Self::PlainHttp | Self::Unreachable)
    }

    /// The ports its servers listen on.
    fn ports(self) -> &'static [u16] {
        match self {
            Self::Unreachable => &[],
            Self::PlainHttp => &[80],
            _ => &[80, 443],
        }
    }
}

/// The headers of a well-configured HTTPS page.
const GOOD_HEADERS: [(&str, &str); 7] = [
    (
        "content-security-policy",
        "default-src 'none'; img-src 'self'; style-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
];

const PAGE: &str =
    "<!doctype html><html><head><title>lab</title></head><body><p>lab site</p></body></html>";

fn html(headers: &[(&str, &str)], cookies: &[&str]) -> Response {
    let mut map = HeaderMap::new();
    map.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    for (name, value) in headers {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    for cookie in cookies {
        map.append(header::SET_COOKIE, HeaderValue::from_str(cookie).unwrap());
    }
    (map, PAGE).into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "not found",
    )
        .into_response()
}

/// Port 80 of a site that lives on HTTPS: every request is sent to the same path there.
fn redirect_to_https(name: &'static str) -> Router {
    Router::new().fallback(move |uri: Uri| async move {
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, format!("https://{name}{path}"))],
        )
    })
}

/// What the site answers on `scheme` (`http` on port 80, `https` on 443).
fn redirect(to: &'static str) -> Response {
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, to)]).into_response()
}

fn router(posture: Posture, https: bool) -> Router {
    let name = posture.name();
    match (posture, https) {
        (Posture::HttpFirstRedirect, false) => {
            return Router::new().fallback(|uri: Uri| async move {
                if uri.path() == "/step" {
                    redirect("https://http-first.example/")
                } else {
                    redirect("http://http-first.example/step")
                }
            });
        }
        (Posture::OffHostRedirect, false) => {
            return Router::new().fallback(|| async { redirect("https://www.offhost.example/") });
        }
        _ => {}
    }
    if posture.serves_https() && !https {
        return redirect_to_https(name);
    }
    Router::new().fallback(
        move |method: Method, uri: Uri, request_headers: HeaderMap| async move {
            respond(posture, &method, uri.path(), &request_headers)
        },
    )
}

fn respond(posture: Posture, method: &Method, path: &str, request: &HeaderMap) -> Response {
    match posture {
        Posture::PlainHttp => match path {
            "/" => html(
                &[
                    ("server", "Apache/2.4.1 (Unix)"),
                    ("x-powered-by", "PHP/5.6.40"),
                ],
                &["PHPSESSID=3f2a9c; path=/", "tracking=on; path=/"],
            ),
            _ => not_found(),
        },
        Posture::GoodHttps => match path {
            "/" => html(
                &GOOD_HEADERS,
                &["__Host-session=lab; Path=/; Secure; HttpOnly; SameSite=Strict"],
            ),
            "/.well-known/security.txt" => security_txt(),
            _ => not_found(),
        },
        Posture::HstsExpiredCertificate => match path {
            "/" => html(&GOOD_HEADERS, &[]),
            "/.well-known/security.txt" => security_txt(),
            _ => not_found(),
        },
        Posture::WeakCsp => match path {
            "/" => {
                let mut headers = GOOD_HEADERS;
                headers[0].1 = "default-src * 'unsafe-inline' 'unsafe-eval'";
                html(&headers, &[])
            }
            "/.well-known/security.txt" => security_txt(),
            _ => not_found(),
        },
        Posture::ExposedBehindRedirect => {
            let json = |body: &'static str| {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                        (
                            header::STRICT_TRANSPORT_SECURITY,
                            "max-age=63072000; includeSubDomains",
                        ),
                    ],
                    body,
                )
                    .into_response()
            };
            match path {
                "/" => json(r#"{"status":"ok"}"#),
                "/openapi.json" => json(
                    r#"{"openapi":"3.1.0","info":{"title":"Lab API","version":"1"},"paths":{}}"#,
                ),
                "/.git/HEAD" => (
                    [(header::CONTENT_TYPE, "text/plain")],
                    "ref: refs/heads/main\n",
                )
                    .into_response(),
                "/.env" => (
                    [(header::CONTENT_TYPE, "text/plain")],
                    "APP_ENV=production\nDB_PASSWORD=lab-secret-value\nSTRIPE_API_KEY=sk_lab_123\n",
                )
                    .into_response(),
                _ => not_found(),
            }
        }
        Posture::SecurityTxtBehindRedirect => match path {
            "/" => html(&GOOD_HEADERS, &[]),
            "/.well-known/security.txt" => security_txt(),
            _ => not_found(),
        },
        Posture::ReflectedCors => {
            let origin = request
                .get(header::ORIGIN)
                .and_then(|o| o.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let mut response = match (method, path) {
                (&Method::OPTIONS, _) => StatusCode::NO_CONTENT.into_response(),
                (_, "/") => html(&GOOD_HEADERS, &[]),
                (_, "/.well-known/security.txt") => security_txt(),
                _ => not_found(),
            };
            if !origin.is_empty() {
                let headers = response.headers_mut();
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_str(&origin).unwrap(),
                );
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            response
        }
        Posture::ScriptsAndMetaPolicies => match path {
            "/" => {
                let page = r#"<!doctype html><html><head>
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self' https://cdn.other.example">
<meta name="referrer" content="unsafe-url">
<script src="/app.js"></script>
<script src="https://cdn.other.example/lib.js" integrity="sha384-abc" crossorigin="anonymous"></script>
<script src="https://cdn.other.example/plain.js"></script>
<script src="//cdn.other.example/relative.js"></script>
<script>inline();</script>
</head><body>scripts</body></html>"#;
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                for (name, value) in &GOOD_HEADERS[1..] {
                    headers.insert(
                        HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        HeaderValue::from_str(value).unwrap(),
                    );
                }
                (headers, page).into_response()
            }
            _ => not_found(),
        },
        Posture::WeakHeaders => match path {
            "/" => html(
                &[
                    ("strict-transport-security", "max-age=300"),
                    ("x-content-type-options", "nosniffing"),
                    ("x-frame-options", "ALLOW-FROM https://partner.example"),
                    ("referrer-policy", "no-referrer-when-downgrade"),
                    ("cross-origin-resource-policy", "same-planet"),
                    ("content-security-policy-report-only", "default-src 'self'"),
                ],
                &["prefs=compact; Path=/; SameSite=Lax"],
            ),
            _ => not_found(),
        },
        Posture::HttpFirstRedirect => match path {
            "/" => {
                let mut response = html(
                    &GOOD_HEADERS[..1],
                    &[
                        "csrftoken=abc; Path=/; Secure",
                        "sessid=1; Path=/; Secure; HttpOnly; SameSite=Sometimes",
                    ],
                );
                let headers = response.headers_mut();
                headers.append(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static("max-age=63072000"),
                );
                headers.append(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static("max-age=31536000"),
                );
                response
            }
            _ => not_found(),
        },
        Posture::OffHostRedirect => match path {
            "/" => html(
                &[
                    (
                        "content-security-policy",
                        "script-src 'nonce-r4nd0m' 'strict-dynamic' 'unsafe-inline' https: 'self'; object-src 'none'; style-src 'self' 'unsafe-inline'; base-uri 'self'",
                    ),
                    ("strict-transport-security", "max-age=63072000"),
                    ("x-content-type-options", "nosniff"),
                    ("referrer-policy", "same-origin"),
                ],
                &[],
            ),
            _ => not_found(),
        },
        Posture::DuplicateReporting => match path {
            "/" => {
                let mut headers = GOOD_HEADERS;
                headers[0].1 = "default-src 'none'; report-uri /csp-a; report-uri /csp-b";
                html(&headers, &[])
            }
            _ => not_found(),
        },
        Posture::MismatchedCertificate => match path {
            "/" => html(&GOOD_HEADERS, &[]),
            "/.well-known/security.txt" => security_txt(),
            _ => not_found(),
        },
        Posture::Unreachable => not_found(),
        Posture::CookiePrefixes => match path {
            "/" => html(
                &GOOD_HEADERS,
                &[
                    "__Host-id=1; Path=/; Secure; HttpOnly; SameSite=Lax",
                    "__Host-pref=1; Path=/app; Secure; SameSite=Lax",
                    "__Secure-theme=dark; HttpOnly; SameSite=Lax",
                    "sessionid=2; Path=/; Secure; HttpOnly; SameSite=Lax",
                ],
            ),
            "/.well-known/security.txt" => security_txt(),
            _ => not_found(),
        },
    }
}

fn security_txt() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Contact: mailto:security@lab.example\nExpires: 2099-12-31T23:59:59Z\n",
    )
        .into_response()
}

/// One running site.
#[derive(Debug, Clone)]
pub struct LabSite {
    pub posture: Posture,
    pub ip: Ipv4Addr,
    /// Its IPv6 address, in a dual-stack lab.
    pub ipv6: Option<Ipv6Addr>,
}

impl LabSite {
    pub fn name(&self) -> &'static str {
        self.posture.name()
    }

    /// The three ways a user types this site: a bare name, an `http://` URL and an `https://` URL.
    pub fn typings(&self) -> [String; 3] {
        let name = self.name();
        [
            name.to_owned(),
            format!("http://{name}/"),
            format!("https://{name}/"),
        ]
    }
}

/// The lab: its DNS server, its CA and its sites.
pub struct Lab {
    pub dns: TestDns,
    pub ca: TestCa,
    pub sites: Vec<LabSite>,
    /// The CA certificate as a PEM file, for tools that take one (`--extra-ca`,
    /// `NODE_EXTRA_CA_CERTS`).
    pub ca_pem: tempfile::NamedTempFile,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab").field("sites", &self.sites).finish()
    }
}

/// What a lab site serves at an IPv6 address of its own (a lab in a network namespace, where each
/// site can have one: [`Lab::start_dual_stack`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Serving {
    /// What it serves over IPv4.
    Same,
    /// Another posture's pages and headers, under the site's own names and certificate (a site
    /// whose AAAA record points at another server).
    Like(Posture),
    /// Nothing: no server listens at the address.
    Nothing,
}

/// The prefix of the lab sites' IPv6 addresses: unique local addresses, which exist only in the
/// test's network namespace.
pub const LAB_IPV6_PREFIX: &str = "fd00:7661:6e74::";

/// Serves `content`'s pages on `listeners` (port 80's first, then 443's) as the site of `posture`:
/// its names, in a certificate from `ca`.
fn serve(
    posture: Posture,
    content: Posture,
    mut listeners: Vec<tokio::net::TcpListener>,
    ca: &TestCa,
) {
    if !listeners.is_empty() {
        let http = listeners.remove(0);
        tokio::spawn(async move { axum::serve(http, router(content, false)).await });
    }
    if let Some(https) = listeners.pop() {
        let validity = (posture == Posture::HstsExpiredCertificate).then_some((2020, 2021));
        let names: Vec<&str> = if posture == Posture::MismatchedCertificate {
            vec!["someone-else.example"]
        } else {
            std::iter::once(posture.name())
                .chain(posture.aliases().iter().copied())
                .collect()
        };
        // The leaf alone: the lab CA is the scanner's trust anchor, and a server that also
        // sent it would send a root.
        let (mut chain, key) = ca.leaf(&names, validity);
        chain.truncate(1);
        let leaf = (chain, key);
        let tls = crate::tls::TlsListener::new(https, crate::tls::https_config(leaf));
        tokio::spawn(async move { axum::serve(tls, router(content, true)).await });
    }
}

/// Binds `port` on a fresh random address of 127.64.0.0/10 (retrying on a collision with another
/// test process), then the other ports on the same address.
pub async fn bind_fresh_address(ports: &[u16]) -> (Ipv4Addr, Vec<tokio::net::TcpListener>) {
    for _ in 0..64 {
        let random = uuid::Uuid::now_v7();
        let bytes = &random.as_bytes()[10..13];
        let ip = Ipv4Addr::new(127, 64 | (bytes[0] & 0x3f), bytes[1], bytes[2].max(1));
        let mut listeners = Vec::new();
        for port in ports {
            match tokio::net::TcpListener::bind((ip, *port)).await {
                Ok(listener) => listeners.push(listener),
                Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => panic!(
                    "the lab binds port {port} on loopback and was refused: run the tests as root \
                     or with `sysctl net.ipv4.ip_unprivileged_port_start=0`"
                ),
                Err(_) => break,
            }
        }
        if listeners.len() == ports.len() {
            return (ip, listeners);
        }
    }
    panic!("no free loopback address for a lab site after 64 tries");
}

impl Lab {
    /// Starts every posture's site.
    pub async fn start() -> Self {
        Self::start_with(&Posture::ALL).await
    }

    /// Starts the sites of `postures`.
    pub async fn start_with(postures: &[Posture]) -> Self {
        let sites: Vec<(Posture, Option<Ipv6Serving>)> =
            postures.iter().map(|posture| (*posture, None)).collect();
        Self::start_sites(None, &sites).await
    }

    /// Starts the sites of `sites` inside `netns` (the caller runs in it), each that names an
    /// [`Ipv6Serving`] also with an IPv6 address of its own ([`LAB_IPV6_PREFIX`] and its position,
    /// from 1) published as its AAAA record.
    pub async fn start_dual_stack(
        netns: &crate::netns::Netns,
        sites: &[(Posture, Option<Ipv6Serving>)],
    ) -> Self {
        Self::start_sites(Some(netns), sites).await
    }

    async fn start_sites(
        netns: Option<&crate::netns::Netns>,
        postures: &[(Posture, Option<Ipv6Serving>)],
    ) -> Self {
        let ca = TestCa::new();
        let mut sites = Vec::new();
        let mut zone: Vec<(String, RData)> = Vec::new();
        for (position, &(posture, ipv6_serving)) in postures.iter().enumerate() {
            let (ip, listeners) = bind_fresh_address(posture.ports()).await;
            serve(posture, posture, listeners, &ca);
            let ipv6 = match (netns, ipv6_serving) {
                (Some(netns), Some(serving)) => {
                    let ipv6: Ipv6Addr = format!("{LAB_IPV6_PREFIX}{}", position + 1)
                        .parse()
                        .unwrap();
                    netns.add_address(&format!("{ipv6}/128"));
                    let content = match serving {
                        Ipv6Serving::Same => Some(posture),
                        Ipv6Serving::Like(other) => Some(other),
                        Ipv6Serving::Nothing => None,
                    };
                    if let Some(content) = content {
                        let mut listeners = Vec::new();
                        for port in posture.ports() {
                            listeners
                                .push(tokio::net::TcpListener::bind((ipv6, *port)).await.unwrap());
                        }
                        serve(posture, content, listeners, &ca);
                    }
                    Some(ipv6)
                }
                (None, Some(_)) => panic!("IPv6 lab sites need a network namespace of their own"),
                (_, None) => None,
            };
            let name = posture.name();
            for alias in posture.aliases() {
                zone.push(((*alias).to_owned(), RData::A(A(ip))));
            }
            zone.push((name.to_owned(), RData::A(A(ip))));
            if let Some(ipv6) = ipv6 {
                zone.push((name.to_owned(), RData::AAAA(AAAA(ipv6))));
            }
            zone.push((
                name.to_owned(),
                RData::TXT(TXT::new(vec!["v=spf1 -all".into()])),
            ));
            zone.push((
                format!("_dmarc.{name}"),
                RData::TXT(TXT::new(vec!["v=DMARC1; p=reject".into()])),
            ));
            zone.push((
                name.to_owned(),
                RData::CAA(CAA::new_issue(
                    false,
                    Some(Name::from_ascii("letsencrypt.org.").unwrap()),
                    vec![],
                )),
            ));
            sites.push(LabSite { posture, ip, ipv6 });
        }
        let dns = TestDns::start(zone.iter().map(|(n, d)| (n.as_str(), d.clone())).collect()).await;
        let mut ca_pem = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut ca_pem, ca.pem().as_bytes()).unwrap();
        Self {
            dns,
            ca,
            sites,
            ca_pem,
        }
    }

    pub fn site(&self, posture: Posture) -> &LabSite {
        self.sites
            .iter()
            .find(|s| s.posture == posture)
            .expect("the lab runs this posture's site")
    }

    /// The SSRF guard a lab scans with: loopback explicitly allowed, names resolved by the lab DNS.
    pub fn guard(&self) -> vantage_probes::ssrf::SsrfGuard {
        vantage_probes::ssrf::SsrfGuard::new(
            vantage_probes::ssrf::SsrfPolicy::new(
                vantage_probes::ssrf::AllowList::parse(&format!(
                    "127.0.0.0/8,{LAB_IPV6_PREFIX}/48"
                ))
                .unwrap(),
            ),
            vantage_probes::ssrf::ResolverChoice::Named(self.dns.address),
        )
        .unwrap()
    }

    /// Trust anchors: the web PKI and the lab CA.
    pub fn tls_roots(&self) -> vantage_probes::tls::TlsRoots {
        vantage_probes::tls::TlsRoots::with_extra(vec![self.ca.certificate.clone()])
    }

    /// A scanner for the lab.
    pub fn scanner(&self) -> vantage_worker::Scanner {
        vantage_worker::Scanner::new(self.guard(), self.tls_roots())
    }

    /// Names and addresses of every site, `name=ip` joined by commas (for a resolver hook).
    pub fn hosts(&self) -> String {
        self.sites
            .iter()
            .flat_map(|s| {
                std::iter::once(s.name())
                    .chain(s.posture.aliases().iter().copied())
                    .map(|name| format!("{name}={}", IpAddr::V4(s.ip)))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Where a site's port listens.
    pub fn address(&self, posture: Posture, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.site(posture).ip), port)
    }
}

impl Lab {
    /// Scans `typed` (a name or URL of a lab site, default ports and paths, quick profile) through
    /// the real worker into a scratch store; returns what was observed, in log order, and its
    /// assessment under the current ruleset.
    pub async fn scan(
        &self,
        typed: &str,
    ) -> (
        Vec<vantage_domain::scan::ProbeObserved>,
        vantage_rules::Assessment,
    ) {
        self.scan_with(typed, vantage_domain::target::Profile::Quick)
            .await
    }

    /// [`Lab::scan`] with `profile` (standard and deep also enumerate TLS cipher suites).
    pub async fn scan_with(
        &self,
        typed: &str,
        profile: vantage_domain::target::Profile,
    ) -> (
        Vec<vantage_domain::scan::ProbeObserved>,
        vantage_rules::Assessment,
    ) {
        scan_with_scanner(&self.scanner(), typed, profile).await
    }
}

/// Scans `typed` (default ports and paths) with `scanner` through the real worker into a scratch
/// store; returns what was observed, in log order, and its assessment under the current ruleset.
pub async fn scan_with_scanner(
    scanner: &vantage_worker::Scanner,
    typed: &str,
    profile: vantage_domain::target::Profile,
) -> (
    Vec<vantage_domain::scan::ProbeObserved>,
    vantage_rules::Assessment,
) {
    use vantage_domain::DomainEvent;
    use vantage_domain::scan::{ScanEvent, ScanSpec};
    use vantage_domain::target::{Paths, Ports, ScanTarget, Trigger, VantagePoint};
    let t = crate::SqliteTestStore::new().await;
    let services = vantage_app::Services::new(
        Arc::new(t.store.clone()),
        Arc::new(t.store.clone()),
        Arc::new(vantage_app::SystemClock),
        scanner.guard.clone(),
    );
    let tenant = vantage_domain::tenant::TenantId::default_tenant();
    let spec = ScanSpec {
        target: ScanTarget::parse(typed).unwrap(),
        ports: Ports::default(),
        paths: Paths::default(),
        profile,
        trigger: Trigger::Manual,
        vantage_point: VantagePoint::default(),
        content_sample: None,
        project: Default::default(),
    };
    let scan_id = crate::scan_directly(&services, spec.clone(), scanner).await;
    let observations: Vec<_> = services
        .store()
        .read_stream(&vantage_app::scan_stream(scan_id))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| {
            match ScanEvent::decode(&e.event_type, e.schema_version, e.payload.as_str()).unwrap() {
                ScanEvent::ProbeObserved(o) => Some(o),
                _ => None,
            }
        })
        .collect();
    let facts = vantage_rules::ScanFacts {
        tenant: tenant.as_str(),
        target: spec.target.as_str(),
        observations: &observations,
    };
    let assessment = vantage_rules::assess(vantage_rules::RULESET_VERSION, &facts).unwrap();
    (observations, assessment)
}
