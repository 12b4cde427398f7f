//! The outside view: everything that sends traffic to a scan target: the SSRF guard, which decides
//! whether a target may be contacted at all and hands out the exact addresses it checked; and the
//! DNS, DNSSEC and DANE, MTA-STS, mail STARTTLS, TCP, TLS, HTTP, dual-stack, exposure and
//! classification probes.
//!
//! This crate never touches the event store: probes produce observations, and workers turn them into
//! commands.

pub mod classify;
pub mod dns;
pub mod dnssec;
pub mod dual_stack;
pub mod exposure;
pub mod hsts_preload;
pub mod html;
pub mod http;
pub mod mta_sts;
pub mod resolve;
pub mod site;
pub mod smtp;
pub mod ssrf;
pub mod tcp;
pub mod tls;
pub mod tls_suites;

/// Seconds since the Unix epoch by the machine's clock: when a probe judges something as of now (a
/// certificate's days left, a security.txt's expiry), as the scanner sees it. The probes' one
/// reading of the wall clock.
#[allow(clippy::disallowed_methods, reason = "this is the probes' clock seam")]
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
