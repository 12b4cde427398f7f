//! Which DNS resolver the scanner uses: the system's (`/etc/resolv.conf`) or one named server, so
//! labs and tests can answer from their own DNS server on loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::dnssec::TrustAnchors;
use hickory_resolver::{ResolverBuilder, TokioResolver};

/// How long one DNS query may take before it is retried.
pub const DNS_QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// Where DNS questions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolverChoice {
    /// The system configuration (`/etc/resolv.conf`).
    System,
    /// One server, over UDP with TCP fallback.
    Named(SocketAddr),
}

impl ResolverChoice {
    /// `system`, or `IP:PORT` / `IP` (port 53).
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.eq_ignore_ascii_case("system") {
            return Ok(Self::System);
        }
        raw.parse::<SocketAddr>()
            .or_else(|_| {
                raw.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 53))
            })
            .map(Self::Named)
            .map_err(|_| format!("resolver {raw:?} must be 'system', an IP or IP:PORT"))
    }

    /// Builds the resolver: every A and AAAA answer, bounded timeouts, no search domains.
    pub fn build(self) -> Result<TokioResolver, String> {
        self.builder()?
            .build()
            .map_err(|e| format!("cannot build the DNS resolver: {e}"))
    }

    /// Builds a resolver like [`Self::build`]'s that also validates DNSSEC against `anchors`: it
    /// asks with the DO bit and marks every record with what validation proved.
    pub fn build_validating(self, anchors: Arc<TrustAnchors>) -> Result<TokioResolver, String> {
        self.builder()?
            .with_trust_anchor(anchors)
            .build()
            .map_err(|e| format!("cannot build the validating DNS resolver: {e}"))
    }

    fn builder(self) -> Result<ResolverBuilder<TokioRuntimeProvider>, String> {
        let mut builder = match self {
            Self::System => TokioResolver::builder_tokio()
                .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?,
            Self::Named(server) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                let name_server = NameServerConfig::new(server.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![name_server]),
                    TokioRuntimeProvider::default(),
                )
            }
        };
        let options = builder.options_mut();
        options.timeout = DNS_QUERY_TIMEOUT;
        options.attempts = 2;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        options.ndots = 0;
        Ok(builder)
    }
}
