//! One scan, start to end.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::future::join_all;
use tokio::sync::watch;
use uuid::Uuid;
use vantage_app::PlainSample;
use vantage_domain::DomainError;
use vantage_domain::content::{MAX_SAMPLE_BYTES, looks_secret};
use vantage_domain::ids::{ObservationId, ScanId};
use vantage_domain::scan::{
    MAX_OBSERVATIONS_PER_COMMAND, Observation, ProbeObserved, ScanCommand, ScanSpec,
};
use vantage_domain::target::Profile;
use vantage_domain::tenant::TenantId;
use vantage_observations::dns::DnsObservation;
use vantage_observations::http::HttpObservation;
use vantage_observations::tcp::PortState;
use vantage_probes::classify::classify;
use vantage_probes::dns::probe_dns;
use vantage_probes::dnssec::{DnssecValidator, lookup_tlsa, probe_dane, probe_dnssec};
use vantage_probes::dual_stack::probe_dual_stack;
use vantage_probes::exposure::probe_exposure;
use vantage_probes::http::probe_page;
use vantage_probes::mta_sts::probe_mta_sts;
use vantage_probes::smtp::{MailExchanger, SMTP_PORT, probe_starttls};
use vantage_probes::ssrf::SsrfGuard;
use vantage_probes::tcp::probe_port;
use vantage_probes::tls::{TlsDepth, TlsRoots, probe_tls};

/// The ruleset recorded on completion: findings of the scan are derived with exactly these rules.
pub use vantage_rules::RULESET_VERSION;

/// Connection attempts in flight per scan.
const PROBES_PER_SCAN: usize = 8;
/// How long one TCP connection attempt may take.
const TCP_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a whole scan may take, by profile; at the deadline it completes with what it saw.
pub fn scan_deadline(profile: Profile) -> Duration {
    match profile {
        Profile::Quick => Duration::from_secs(30),
        Profile::Standard => Duration::from_secs(60),
        Profile::Deep => Duration::from_secs(180),
    }
}

/// How deep the TLS probe goes, by profile: a quick scan learns the versions and the chain, the
/// others also enumerate every accepted cipher suite.
pub fn tls_depth(profile: Profile) -> TlsDepth {
    match profile {
        Profile::Quick => TlsDepth::Versions,
        Profile::Standard | Profile::Deep => TlsDepth::Suites,
    }
}

/// What a worker scans with: the SSRF guard (and its resolver), the TLS trust anchors, and the
/// DNSSEC validator.
#[derive(Debug, Clone)]
pub struct Scanner {
    pub guard: SsrfGuard,
    pub tls_roots: TlsRoots,
    /// Validates DNSSEC and looks up TLSA records; without one, neither is observed.
    pub dnssec: Option<DnssecValidator>,
    /// Where MTA-STS policies are fetched: 443 on the Internet; labs serve them elsewhere.
    pub mta_sts_port: u16,
}

impl Scanner {
    /// A scanner for the Internet: MTA-STS policies on port 443, no DNSSEC validation until
    /// [`Self::with_dnssec`].
    pub fn new(guard: SsrfGuard, tls_roots: TlsRoots) -> Self {
        Self {
            guard,
            tls_roots,
            dnssec: None,
            mta_sts_port: 443,
        }
    }

    /// Validates DNSSEC (and DANE) with `validator`.
    pub fn with_dnssec(mut self, validator: DnssecValidator) -> Self {
        self.dnssec = Some(validator);
        self
    }
}

/// A scan to run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScanJob {
    pub scan_id: ScanId,
    pub tenant: TenantId,
    pub spec: ScanSpec,
}

/// What became of a submitted command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    Accepted,
    /// The scan refused it (cancelled, already ended, deleted): stop working on it.
    Refused(DomainError),
}

/// A transport failure carrying worker commands.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot submit worker events: {0}")]
    Sink(String),
}

/// Where a worker's commands go.
#[async_trait]
pub trait ScanEventSink: Send + Sync {
    async fn submit(&self, job: &ScanJob, command: ScanCommand) -> Result<Submitted, WorkerError>;

    /// Hands over a content sample of a scan that asked for them, in the clear, to whatever seals
    /// and records it.
    async fn keep_sample(&self, job: &ScanJob, sample: PlainSample) -> Result<(), WorkerError>;
}

/// The same observation always gets the same id, so a redelivered job cannot record it twice.
fn observation_id(scan: ScanId, key: &str) -> ObservationId {
    ObservationId(Uuid::new_v5(&scan.as_uuid(), key.as_bytes()))
}

/// Runs `job`: begin, vet the target again (DNS may have changed since it was accepted), probe, and
/// finish. `cancelled` flips to true when the scan is cancelled; probing stops at once.
pub async fn run_scan(
    job: &ScanJob,
    worker_id: &str,
    scanner: &Scanner,
    sink: &dyn ScanEventSink,
    mut cancelled: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let guard = &scanner.guard;
    let begin = ScanCommand::Begin {
        worker_id: worker_id.to_owned(),
    };
    if let Submitted::Refused(reason) = sink.submit(job, begin).await? {
        tracing::info!(scan = %job.scan_id, %reason, "not starting scan");
        return Ok(());
    }
    let addresses = match guard.vet_host(job.spec.target.host()).await {
        Ok(addresses) => addresses,
        Err(refusal) => {
            let fail = ScanCommand::Fail {
                reason: format!("target refused at scan time: {refusal}"),
            };
            sink.submit(job, fail).await?;
            return Ok(());
        }
    };
    let probing = probe_all(job, scanner, &addresses, sink);
    let deadline = scan_deadline(job.spec.profile);
    tokio::select! {
        finished = tokio::time::timeout(deadline, probing) => match finished {
            Ok(Ok(ProbeOutcome::Done)) => {}
            Ok(Ok(ProbeOutcome::Refused)) => return Ok(()),
            Ok(Err(error)) => return Err(error),
            Err(_) => tracing::warn!(scan = %job.scan_id, "scan deadline reached; completing with what was seen"),
        },
        _ = cancelled.wait_for(|c| *c) => {
            tracing::info!(scan = %job.scan_id, "cancelled; probes stopped");
            return Ok(());
        }
    }
    for command in [
        ScanCommand::Finalize,
        ScanCommand::Complete {
            ruleset_version: RULESET_VERSION.to_owned(),
        },
    ] {
        if let Submitted::Refused(reason) = sink.submit(job, command).await? {
            tracing::info!(scan = %job.scan_id, %reason, "scan ended elsewhere");
            return Ok(());
        }
    }
    Ok(())
}

enum ProbeOutcome {
    Done,
    Refused,
}

/// Records what one probe saw (`(asset, observation)` pairs), in commands of at most
/// [`MAX_OBSERVATIONS_PER_COMMAND`]; `false` when the scan refused them (it ended meanwhile).
async fn observe(
    job: &ScanJob,
    sink: &dyn ScanEventSink,
    seen: impl IntoIterator<Item = (String, Observation)>,
) -> Result<bool, WorkerError> {
    let observed: Vec<ProbeObserved> = seen
        .into_iter()
        .map(|(asset, observation)| {
            let key = format!("{}|{asset}", observation.kind().as_str());
            ProbeObserved {
                observation_id: observation_id(job.scan_id, &key),
                asset,
                observation,
            }
        })
        .collect();
    for batch in observed.chunks(MAX_OBSERVATIONS_PER_COMMAND) {
        let command = ScanCommand::Observe(batch.to_vec());
        if let Submitted::Refused(reason) = sink.submit(job, command).await? {
            tracing::info!(scan = %job.scan_id, %reason, "observations refused; stopping");
            return Ok(false);
        }
    }
    Ok(true)
}

/// Most mail exchangers of a domain talked to, lowest preference first.
const MAX_EXCHANGERS: usize = 3;

/// The mail exchangers the DNS probe's MX answer names, lowest preference first (the null MX
/// names none).
fn mail_exchangers(answers: &[DnsObservation]) -> Vec<MailExchanger> {
    let mut exchangers: Vec<MailExchanger> = answers
        .iter()
        .filter(|seen| seen.record_type == "MX")
        .flat_map(|seen| seen.records.iter())
        .filter_map(|record| MailExchanger::parse(record))
        .collect();
    exchangers.sort_by(|a, b| (a.preference, &a.name).cmp(&(b.preference, &b.name)));
    exchangers.dedup_by(|a, b| a.name == b.name);
    exchangers.truncate(MAX_EXCHANGERS);
    exchangers
}

/// Each exchanger's STARTTLS and, when the scanner validates DNSSEC, its TLSA records compared with
/// the chain it presented after STARTTLS; the exchangers concurrently.
async fn probe_mail(
    scanner: &Scanner,
    domain: &str,
    exchangers: &[MailExchanger],
) -> Vec<(String, Observation)> {
    let talks = exchangers.iter().map(|exchanger| async move {
        let talk = probe_starttls(
            &scanner.guard,
            &scanner.tls_roots,
            domain,
            exchanger,
            SMTP_PORT,
        )
        .await;
        let mut seen = Vec::new();
        let Some(address) = talk.observation.address else {
            seen.push((
                exchanger.name.clone(),
                Observation::SmtpTls(talk.observation),
            ));
            return seen;
        };
        if let Some(validator) = &scanner.dnssec {
            let answer = lookup_tlsa(validator, &exchanger.name, SMTP_PORT).await;
            let chain = if talk.observation.handshake {
                Ok(talk.chain.as_slice())
            } else {
                Err(talk
                    .observation
                    .error
                    .clone()
                    .unwrap_or_else(|| "no TLS handshake".to_owned()))
            };
            let dane = answer.compared_with(address, Some(chain));
            seen.push((
                format!("{} {}", dane.name, dane.address),
                Observation::Dane(dane),
            ));
        }
        seen.insert(
            0,
            (
                format!("{} {address}", exchanger.name),
                Observation::SmtpTls(talk.observation),
            ),
        );
        seen
    });
    join_all(talks).await.into_iter().flatten().collect()
}

/// The ports a web server is looked for on, besides the typed URL's own.
const WEB_PORTS: [u16; 4] = [80, 443, 8080, 8443];

/// DNS (when the target is a name), validated too when the scanner validates DNSSEC, with the
/// MTA-STS policy it advertises and the name's HSTS preload state; then the web
/// ([`probe_web`]) and — standard and deep profiles — the mail exchangers' STARTTLS at the same
/// time, so a network that drops outbound port 25 does not delay the web probes; the mail
/// observations are recorded after the web's.
async fn probe_all(
    job: &ScanJob,
    scanner: &Scanner,
    addresses: &[IpAddr],
    sink: &dyn ScanEventSink,
) -> Result<ProbeOutcome, WorkerError> {
    let guard = &scanner.guard;
    let roots = &scanner.tls_roots;
    let host = job.spec.target.host();
    let named = host.parse::<IpAddr>().is_err();
    let mut exchangers = Vec::new();
    if named {
        let (answers, validated) = tokio::join!(probe_dns(guard.resolver(), host), async {
            match &scanner.dnssec {
                Some(validator) => probe_dnssec(validator, host).await,
                None => Vec::new(),
            }
        });
        let advertises_mta_sts = answers.iter().any(|seen| {
            seen.name.starts_with("_mta-sts.")
                && seen
                    .records
                    .iter()
                    .any(|r| r.to_ascii_lowercase().starts_with("v=stsv1"))
        });
        // The mail exchangers' transport (standard and deep profiles: the quick one is the web).
        if job.spec.profile != Profile::Quick {
            exchangers = mail_exchangers(&answers);
        }
        let answers = answers.into_iter().map(|seen| {
            let asset = format!("{} {}", seen.name, seen.record_type);
            (asset, Observation::Dns(seen))
        });
        let validated = validated.into_iter().map(|seen| {
            let asset = format!("{} {}", seen.name, seen.record_type);
            (asset, Observation::Dnssec(seen))
        });
        if !observe(job, sink, answers.chain(validated)).await? {
            return Ok(ProbeOutcome::Refused);
        }
        // No traffic: the bundled copy of Chromium's preload list.
        let preload = vantage_probes::hsts_preload::preload_state(host);
        if !observe(
            job,
            sink,
            [(preload.host.clone(), Observation::HstsPreload(preload))],
        )
        .await?
        {
            return Ok(ProbeOutcome::Refused);
        }
        if advertises_mta_sts {
            let seen = probe_mta_sts(guard, roots, host, scanner.mta_sts_port).await;
            let asset = seen.policy_url.clone();
            if !observe(job, sink, [(asset, Observation::MtaSts(seen))]).await? {
                return Ok(ProbeOutcome::Refused);
            }
        }
    }
    let (web, mail) = tokio::join!(
        probe_web(job, scanner, addresses, sink),
        probe_mail(scanner, host, &exchangers)
    );
    if let ProbeOutcome::Refused = web? {
        return Ok(ProbeOutcome::Refused);
    }
    if !observe(job, sink, mail).await? {
        return Ok(ProbeOutcome::Refused);
    }
    Ok(ProbeOutcome::Done)
}

/// TCP on every scanned port of the first vetted address of each family; TLS on every open port,
/// and DANE on every TLS port of a name; then, on every open web port — over HTTPS where the port
/// speaks TLS and HTTP where it does not, whatever scheme was typed — the pages, the exposure checks
/// and, for a name with addresses of both families, its start page over each; and the
/// classification of what was seen.
async fn probe_web(
    job: &ScanJob,
    scanner: &Scanner,
    addresses: &[IpAddr],
    sink: &dyn ScanEventSink,
) -> Result<ProbeOutcome, WorkerError> {
    let guard = &scanner.guard;
    let roots = &scanner.tls_roots;
    let host = job.spec.target.host();
    let named = host.parse::<IpAddr>().is_err();
    let ports = scanned_ports(&job.spec);
    let families = first_of_each_family(addresses);
    let targets: Vec<SocketAddr> = families
        .iter()
        .flat_map(|ip| ports.iter().map(|port| SocketAddr::new(*ip, *port)))
        .collect();
    let connections: Vec<_> = futures::stream::iter(targets)
        .map(|address| probe_port(address, TCP_TIMEOUT))
        .buffered(PROBES_PER_SCAN)
        .collect()
        .await;
    let mut open: Vec<u16> = Vec::new();
    for seen in &connections {
        if seen.state == PortState::Open && !open.contains(&seen.port) {
            open.push(seen.port);
        }
    }
    let connections = connections
        .into_iter()
        .map(|seen| (seen.address.to_string(), Observation::Tcp(seen)));
    if !observe(job, sink, connections).await? {
        return Ok(ProbeOutcome::Refused);
    }
    let tls_targets: Vec<SocketAddr> = ports
        .iter()
        .filter(|port| open.contains(port))
        .flat_map(|port| families.iter().map(|ip| SocketAddr::new(*ip, *port)))
        .collect();
    let handshakes: Vec<_> = futures::stream::iter(tls_targets)
        .map(|address| probe_tls(address, host, roots, tls_depth(job.spec.profile)))
        .buffered(PROBES_PER_SCAN)
        .collect()
        .await;
    let mut speaks_tls: Vec<u16> = Vec::new();
    for seen in &handshakes {
        if seen.speaks_tls() && !speaks_tls.contains(&seen.address.port()) {
            speaks_tls.push(seen.address.port());
        }
    }
    // DANE: the TLSA records of every TLS service of a named host, against what it presents.
    let dane: Vec<_> = match (&scanner.dnssec, named) {
        (Some(validator), true) => {
            let services: Vec<SocketAddr> = handshakes
                .iter()
                .filter(|seen| seen.speaks_tls())
                .map(|seen| seen.address)
                .collect();
            futures::stream::iter(services)
                .map(|address| probe_dane(validator, host, address))
                .buffered(PROBES_PER_SCAN)
                .collect()
                .await
        }
        _ => Vec::new(),
    };
    let handshakes = handshakes
        .into_iter()
        .map(|seen| (seen.address.to_string(), Observation::Tls(seen)))
        .chain(dane.into_iter().map(|seen| {
            (
                format!("{} {}", seen.name, seen.address),
                Observation::Dane(seen),
            )
        }));
    if !observe(job, sink, handshakes).await? {
        return Ok(ProbeOutcome::Refused);
    }
    let origins = web_origins(&job.spec, &open, &speaks_tls);
    let urls: Vec<url::Url> = origins
        .iter()
        .flat_map(|origin| {
            start_paths(&job.spec)
                .into_iter()
                .filter_map(move |path| origin.join(&path).ok())
        })
        .collect();
    // The exposure checks and the page fetches are independent: run them at the same time, so a slow
    // target costs one timeout, not two. Observations are then recorded in a fixed order.
    let exposure = futures::stream::iter(origins.clone())
        .map(|origin| async move {
            match addresses.first() {
                Some(ip) => {
                    let port = origin.port_or_known_default().unwrap_or(80);
                    probe_exposure(guard, roots, &origin, SocketAddr::new(*ip, port)).await
                }
                None => Vec::new(),
            }
        })
        .buffered(PROBES_PER_SCAN)
        .collect::<Vec<_>>();
    let sample_bytes = if job.spec.content_sample.is_some() {
        MAX_SAMPLE_BYTES
    } else {
        0
    };
    let pages = futures::stream::iter(urls)
        .map(|url| probe_page(guard, roots, url, addresses, sample_bytes))
        .buffered(PROBES_PER_SCAN)
        .collect::<Vec<_>>();
    // A name with addresses of both families: each origin's start page over each.
    let both_families = match families.as_slice() {
        [ipv4 @ IpAddr::V4(_), ipv6 @ IpAddr::V6(_)] if named => Some((*ipv4, *ipv6)),
        _ => None,
    };
    let start_path = start_paths(&job.spec)
        .into_iter()
        .next()
        .unwrap_or_else(|| "/".to_owned());
    let start_pages: Vec<(url::Url, IpAddr, IpAddr)> = both_families
        .map(|(ipv4, ipv6)| {
            origins
                .iter()
                .filter_map(|origin| origin.join(&start_path).ok())
                .map(|url| (url, ipv4, ipv6))
                .collect()
        })
        .unwrap_or_default();
    let dual_stack = futures::stream::iter(start_pages)
        .map(|(url, ipv4, ipv6)| async move { probe_dual_stack(&url, ipv4, ipv6, roots).await })
        .buffered(PROBES_PER_SCAN)
        .collect::<Vec<_>>();
    let (exposures, pages, dual_stack) = tokio::join!(exposure, pages, dual_stack);
    let (pages, samples): (Vec<_>, Vec<_>) = pages.into_iter().unzip();
    let exposures: Vec<_> = exposures.into_iter().flatten().collect();
    let exposed = exposures
        .iter()
        .map(|seen| (seen.url.clone(), Observation::Exposure(seen.clone())));
    if !observe(job, sink, exposed).await? {
        return Ok(ProbeOutcome::Refused);
    }
    let fetched = pages
        .iter()
        .map(|seen| (seen.url.clone(), Observation::from(seen.clone())));
    if !observe(job, sink, fetched).await? {
        return Ok(ProbeOutcome::Refused);
    }
    let compared = dual_stack
        .into_iter()
        .map(|seen| (seen.url.clone(), Observation::from(seen)));
    if !observe(job, sink, compared).await? {
        return Ok(ProbeOutcome::Refused);
    }
    for (page, sample) in pages.iter().zip(samples) {
        if let Some(sample) = sample
            && !serves_secrets(page)
        {
            let sample = PlainSample {
                url: page.url.clone(),
                status_code: sample.status_code,
                content_type: sample.content_type,
                body_bytes: sample.body_bytes,
                sample: sample.bytes,
            };
            sink.keep_sample(job, sample).await?;
        }
    }
    if !pages.is_empty() {
        let classification = classify(&pages, &exposures);
        let asset = job.spec.target.to_string();
        let classified = [(asset, Observation::Classification(classification))];
        if !observe(job, sink, classified).await? {
            return Ok(ProbeOutcome::Refused);
        }
    }
    Ok(ProbeOutcome::Done)
}

/// Whether the page asked for, or the one its redirects ended on, looks like it serves secrets: such
/// a response is never sampled.
fn serves_secrets(page: &HttpObservation) -> bool {
    std::iter::once(&page.url)
        .chain(page.final_url.as_ref())
        .any(|url| url::Url::parse(url).map_or(true, |url| looks_secret(url.path())))
}

fn first_of_each_family(addresses: &[IpAddr]) -> Vec<IpAddr> {
    [true, false]
        .into_iter()
        .filter_map(|v4| addresses.iter().find(|ip| ip.is_ipv4() == v4).copied())
        .collect()
}

/// The typed URL's explicit port, if it has one.
fn url_port(spec: &ScanSpec) -> Option<u16> {
    url::Url::parse(spec.target.as_str()).ok()?.port()
}

/// The scanned ports: the requested ones and the typed URL's own port.
fn scanned_ports(spec: &ScanSpec) -> Vec<u16> {
    let mut ports = spec.ports.as_slice().to_vec();
    ports.extend(url_port(spec));
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Where web pages are fetched: every open web port (the usual ones and the typed URL's own), over
/// HTTPS where it speaks TLS and HTTP where it does not — so a name, an `http://` URL and an
/// `https://` URL of one site are looked at alike.
fn web_origins(spec: &ScanSpec, open: &[u16], speaks_tls: &[u16]) -> Vec<url::Url> {
    let host = spec.target.host();
    let host = if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let web = |port: &u16| WEB_PORTS.contains(port) || url_port(spec) == Some(*port);
    let mut ports: Vec<u16> = open.iter().copied().filter(web).collect();
    ports.sort_unstable();
    ports
        .into_iter()
        .filter_map(|port| {
            let scheme = if speaks_tls.contains(&port) {
                "https"
            } else {
                "http"
            };
            url::Url::parse(&format!("{scheme}://{host}:{port}/")).ok()
        })
        .collect()
}

/// The paths fetched on every web origin: the typed URL's own path first (the page a user typed),
/// then the requested paths.
fn start_paths(spec: &ScanSpec) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    if let Ok(url) = url::Url::parse(spec.target.as_str()) {
        let mut typed = url.path().to_owned();
        if let Some(query) = url.query() {
            typed = format!("{typed}?{query}");
        }
        paths.push(typed);
    }
    for path in spec.paths.as_slice() {
        if !paths.contains(path) {
            paths.push(path.clone());
        }
    }
    paths
}
