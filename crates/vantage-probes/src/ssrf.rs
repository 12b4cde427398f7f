//! The SSRF guard: Vantage looks at the public internet only.
//!
//! A target is refused when its name is one that never means a public host (`localhost`, `*.local`,
//! `*.internal`, …, or a single label), or when *any* address it resolves to is not public: loopback,
//! private (RFC 1918), CGNAT, link-local (including the cloud metadata address 169.254.169.254),
//! unique-local, multicast, unspecified, documentation, benchmarking or otherwise reserved, and the
//! IPv4-mapped, NAT64 and 6to4 IPv6 forms of those. The guard returns the addresses it checked, and
//! callers connect to exactly those (there is no second resolution, hence no DNS-rebinding window).
//!
//! Labs and tests pass an explicit CIDR allow-list (`--allow-cidr 127.0.0.0/8`); there is no switch that
//! turns the guard off.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

pub use crate::resolve::ResolverChoice;

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Unspecified,
    Loopback,
    Private,
    SharedCgnat,
    LinkLocal,
    CloudMetadata,
    UniqueLocal,
    SiteLocal,
    Multicast,
    Broadcast,
    Documentation,
    Benchmarking,
    Reserved,
}

impl AddressClass {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Unspecified => "an unspecified address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private (RFC 1918) address",
            Self::SharedCgnat => "a carrier-grade NAT (RFC 6598) address",
            Self::LinkLocal => "a link-local address",
            Self::CloudMetadata => "the cloud metadata address",
            Self::UniqueLocal => "a unique-local IPv6 address",
            Self::SiteLocal => "a site-local IPv6 address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Documentation => "a documentation address",
            Self::Benchmarking => "a benchmarking address",
            Self::Reserved => "a reserved address",
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

/// The class of a non-public IPv4 address, or `None` if it is public.
pub fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    use AddressClass as C;
    let table: [([u8; 4], u32, AddressClass); 17] = [
        ([0, 0, 0, 0], 8, C::Unspecified),
        ([10, 0, 0, 0], 8, C::Private),
        ([100, 64, 0, 0], 10, C::SharedCgnat),
        ([127, 0, 0, 0], 8, C::Loopback),
        ([169, 254, 169, 254], 32, C::CloudMetadata),
        ([169, 254, 0, 0], 16, C::LinkLocal),
        ([172, 16, 0, 0], 12, C::Private),
        ([192, 0, 0, 0], 24, C::Reserved),
        ([192, 0, 2, 0], 24, C::Documentation),
        ([192, 88, 99, 0], 24, C::Reserved),
        ([192, 168, 0, 0], 16, C::Private),
        ([198, 18, 0, 0], 15, C::Benchmarking),
        ([198, 51, 100, 0], 24, C::Documentation),
        ([203, 0, 113, 0], 24, C::Documentation),
        ([224, 0, 0, 0], 4, C::Multicast),
        ([255, 255, 255, 255], 32, C::Broadcast),
        ([240, 0, 0, 0], 4, C::Reserved),
    ];
    table
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, class)| *class)
}

/// The class of a non-public IPv6 address, or `None` if it is public. Addresses that embed an IPv4
/// address (IPv4-mapped, IPv4-compatible, NAT64, 6to4) are judged by the embedded address too.
pub fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    use AddressClass as C;
    if ip.is_unspecified() {
        return Some(C::Unspecified);
    }
    if ip.is_loopback() {
        return Some(C::Loopback);
    }
    let bits = u128::from(ip);
    let low_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    // ::ffff:0:0/96 (IPv4-mapped) is the IPv4 address itself.
    if in_v6(ip, Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96) {
        return classify_v4(low_v4);
    }
    // ::/96 (IPv4-compatible) is deprecated and never a legitimate public destination.
    if in_v6(ip, Ipv6Addr::UNSPECIFIED, 96) {
        return Some(classify_v4(low_v4).unwrap_or(C::Reserved));
    }
    // 64:ff9b::/96 (NAT64 well-known prefix) embeds an IPv4 address.
    if in_v6(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return classify_v4(low_v4);
    }
    // 2002::/16 (6to4) embeds an IPv4 address in bits 16..48.
    if in_v6(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        let embedded = Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32);
        return classify_v4(embedded);
    }
    let table: [(Ipv6Addr, u32, AddressClass); 9] = [
        (
            Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
            48,
            C::Reserved,
        ),
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, C::Reserved),
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
            32,
            C::Documentation,
        ),
        (
            Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
            20,
            C::Documentation,
        ),
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, C::Reserved),
        (
            Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
            7,
            C::UniqueLocal,
        ),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, C::LinkLocal),
        (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, C::SiteLocal),
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, C::Multicast),
    ];
    if let Some((_, _, class)) = table
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
    {
        return Some(*class);
    }
    // Only 2000::/3 is global unicast.
    if !in_v6(ip, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3) {
        return Some(C::Reserved);
    }
    None
}

pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Why a target may not be contacted. The message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{host} is not a public host name ({why})")]
    Name { host: String, why: &'static str },
    #[error("{}", describe_address(host, address, *class))]
    Address {
        host: String,
        address: IpAddr,
        class: AddressClass,
    },
    #[error("{host} does not resolve to any address")]
    Unresolvable { host: String },
}

fn describe_address(host: &str, address: &IpAddr, class: AddressClass) -> String {
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    if literal == Some(*address) {
        format!("{host} is {}", class.describe())
    } else {
        format!(
            "{host} resolves to {address}, which is {}",
            class.describe()
        )
    }
}

/// Names that never denote a public host.
fn refuse_name(host: &str) -> Option<&'static str> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let suffix = |s: &str| host == s || host.ends_with(&format!(".{s}"));
    if suffix("localhost") {
        Some("it names this machine")
    } else if suffix("local") {
        Some("'.local' is multicast DNS on the local network")
    } else if suffix("internal") {
        Some("'.internal' is reserved for private networks")
    } else if suffix("home.arpa") || suffix("lan") || suffix("intranet") || suffix("corp") {
        Some("it is a private-network name")
    } else if !host.contains('.') {
        Some("a single-label name is resolved through local search domains")
    } else {
        None
    }
}

/// Explicit CIDRs a lab or test may scan although they are not public.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    pub fn new(cidrs: impl IntoIterator<Item = IpNet>) -> Self {
        Self(cidrs.into_iter().collect())
    }

    /// Parses `127.0.0.0/8,::1/128` style lists.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|cidr| {
                cidr.parse::<IpNet>()
                    .map_err(|e| format!("{cidr:?} is not a CIDR: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The policy without resolution: checks names and addresses.
#[derive(Debug, Clone, Default)]
pub struct SsrfPolicy {
    pub allow: AllowList,
}

impl SsrfPolicy {
    pub fn new(allow: AllowList) -> Self {
        Self { allow }
    }

    /// Checks one address a host resolved to (or is).
    pub fn check_address(&self, host: &str, address: IpAddr) -> Result<(), Refusal> {
        if self.allow.contains(address) {
            return Ok(());
        }
        match classify(address) {
            None => Ok(()),
            Some(class) => Err(Refusal::Address {
                host: host.to_owned(),
                address,
                class,
            }),
        }
    }

    /// Checks a host name before resolving it. IP literals pass here and are judged as addresses.
    pub fn check_name(&self, host: &str) -> Result<Option<IpAddr>, Refusal> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(address) = bare.parse::<IpAddr>() {
            self.check_address(host, address)?;
            return Ok(Some(address));
        }
        match refuse_name(host) {
            Some(why) => Err(Refusal::Name {
                host: host.to_owned(),
                why,
            }),
            None => Ok(None),
        }
    }

    /// Checks every address a name resolved to: one non-public address refuses the target.
    pub fn check_resolved(&self, host: &str, addresses: &[IpAddr]) -> Result<(), Refusal> {
        if addresses.is_empty() {
            return Err(Refusal::Unresolvable {
                host: host.to_owned(),
            });
        }
        addresses
            .iter()
            .try_for_each(|address| self.check_address(host, *address))
    }
}

/// The guard: the policy plus the resolver whose answers it judges.
#[derive(Clone)]
pub struct SsrfGuard {
    policy: SsrfPolicy,
    resolver: hickory_resolver::TokioResolver,
}

impl fmt::Debug for SsrfGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsrfGuard")
            .field("allow", &self.policy.allow.to_string())
            .finish_non_exhaustive()
    }
}

impl SsrfGuard {
    pub fn new(policy: SsrfPolicy, resolver: ResolverChoice) -> Result<Self, String> {
        Ok(Self {
            policy,
            resolver: resolver.build()?,
        })
    }

    pub fn policy(&self) -> &SsrfPolicy {
        &self.policy
    }

    /// The resolver whose answers the guard judges; probes ask it too, so they see what it saw.
    pub fn resolver(&self) -> &hickory_resolver::TokioResolver {
        &self.resolver
    }

    /// Decides whether `host` may be contacted and returns the addresses to connect to — the very
    /// addresses that were checked.
    pub async fn vet_host(&self, host: &str) -> Result<Vec<IpAddr>, Refusal> {
        if let Some(literal) = self.policy.check_name(host)? {
            return Ok(vec![literal]);
        }
        // Fully qualified, so no search domain is ever appended.
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        let addresses: Vec<IpAddr> = match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(lookup) => lookup.iter().collect(),
            Err(error) => {
                tracing::debug!(%host, %error, "resolution failed");
                Vec::new()
            }
        };
        self.policy.check_resolved(host, &addresses)?;
        Ok(addresses)
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&list.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use vantage_domain::target::ScanTarget;

    /// Every class the SPEC names, in the spellings an attacker would try. Each goes through the
    /// target parser first, as a request would.
    const REFUSED: &[&str] = &[
        "http://127.0.0.1/",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://0.0.0.0/",
        "http://0/",
        "http://[::]/",
        "http://10.0.0.1/",
        "http://012.0.0.1/",
        "http://172.16.5.4/",
        "http://172.31.255.255/",
        "http://192.168.1.1/",
        "http://3232235777/",
        "http://[::ffff:192.168.1.1]/",
        "http://100.64.0.1/",
        "http://100.127.255.254/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0xa9fea9fe/",
        "http://169.254.1.1/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[fec0::1]/",
        "http://224.0.0.1/",
        "http://[ff02::1]/",
        "http://255.255.255.255/",
        "http://240.0.0.1/",
        "http://192.0.2.10/",
        "http://198.51.100.7/",
        "http://203.0.113.9/",
        "http://[2001:db8::1]/",
        "http://198.18.0.1/",
        "http://[64:ff9b::a00:1]/",
        "http://[2002:7f00:1::]/",
        "http://[2002:c0a8:101::1]/",
        "http://[::127.0.0.1]/",
        "http://[100::1]/",
        "localhost",
        "http://localhost:8080/",
        "api.localhost",
        "printer.local",
        "metadata.google.internal",
        "router.home.arpa",
        "intranet",
    ];

    fn verdict(raw: &str, policy: &SsrfPolicy) -> Result<Option<IpAddr>, Refusal> {
        let target = ScanTarget::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        policy.check_name(target.host())
    }

    #[test]
    fn refuses_every_non_public_class_and_spelling() {
        assert!(REFUSED.len() >= 30);
        let policy = SsrfPolicy::default();
        for raw in REFUSED {
            let result = verdict(raw, &policy);
            assert!(result.is_err(), "{raw} was allowed: {result:?}");
        }
    }

    #[test]
    fn says_why() {
        let policy = SsrfPolicy::default();
        let error = verdict("http://169.254.169.254/", &policy).unwrap_err();
        assert_eq!(
            error.to_string(),
            "169.254.169.254 is the cloud metadata address"
        );
        let error = verdict("http://[::ffff:10.0.0.1]/", &policy).unwrap_err();
        assert!(error.to_string().contains("private"), "{error}");
    }

    #[test]
    fn public_addresses_and_names_pass() {
        let policy = SsrfPolicy::default();
        for raw in [
            "http://93.184.215.14/",
            "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
            "example.com",
            "https://www.example.org/login",
            "http://1.1.1.1/",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
            "http://[64:ff9b::808:808]/",
        ] {
            assert!(verdict(raw, &policy).is_ok(), "{raw} was refused");
        }
    }

    #[test]
    fn an_explicit_allow_list_admits_exactly_its_cidrs() {
        let policy = SsrfPolicy::new(AllowList::parse("127.0.0.0/8, ::1/128").unwrap());
        assert!(verdict("http://127.0.0.1:8443/", &policy).is_ok());
        assert!(verdict("http://[::1]/", &policy).is_ok());
        assert!(verdict("http://[::ffff:127.0.0.1]/", &policy).is_ok());
        assert!(verdict("http://10.0.0.1/", &policy).is_err());
        assert!(
            verdict("localhost", &policy).is_err(),
            "names are never allow-listed"
        );
        assert!(AllowList::parse("127.0.0.0/33").is_err());
    }

    #[test]
    fn one_private_address_among_public_ones_refuses_the_name() {
        let policy = SsrfPolicy::default();
        let mixed = [
            "93.184.215.14".parse().unwrap(),
            "10.1.2.3".parse().unwrap(),
        ];
        assert!(policy.check_resolved("mixed.example", &mixed).is_err());
        assert!(policy.check_resolved("nothing.example", &[]).is_err());
        assert!(policy.check_resolved("ok.example", &mixed[..1]).is_ok());
    }

    proptest! {
        /// Every address inside a refused v4 range is refused in every v6 wrapping too.
        #[test]
        fn wrapped_v4_is_judged_like_v4(raw in any::<u32>()) {
            let v4 = Ipv4Addr::from(raw);
            let mapped = v4.to_ipv6_mapped();
            prop_assert_eq!(classify_v6(mapped).is_some(), classify_v4(v4).is_some());
            let nat64 = Ipv6Addr::from((u128::from(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0))) | u128::from(raw));
            prop_assert_eq!(classify_v6(nat64).is_some(), classify_v4(v4).is_some());
        }
    }
}
