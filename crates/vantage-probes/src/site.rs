//! What "the same site" means to the probes: the same registrable domain (the Public Suffix List's
//! eTLD+1, as browsers define a site), or the same address for IP literals.

/// The registrable domain of `host` (lower-cased, without a trailing dot); an IP literal, or a name
/// that is itself a public suffix, is its own site.
pub fn registrable_domain(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return host;
    }
    psl::domain_str(&host).map_or(host.clone(), str::to_owned)
}

/// Whether two hosts belong to the same site.
pub fn same_site(a: &str, b: &str) -> bool {
    registrable_domain(a) == registrable_domain(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_follow_the_public_suffix_list() {
        assert!(same_site("www.example.co.uk", "shop.example.co.uk"));
        assert!(!same_site("example.co.uk", "other.co.uk"));
        assert!(same_site("a.b.example.com", "EXAMPLE.com."));
        assert!(!same_site("example.com", "example.org"));
        // Names under an unknown top-level label are sites of their last two labels.
        assert!(same_site("www.lab.example", "lab.example"));
        assert!(!same_site("one.example", "two.example"));
        // IP literals are sites of their own.
        assert!(same_site("127.0.0.1", "127.0.0.1"));
        assert!(!same_site("127.0.0.1", "127.0.0.2"));
    }
}
