//! The outside view: everything that sends traffic to a scan target. Today that is the SSRF guard,
//! which decides whether a target may be contacted at all and hands out the exact addresses it
//! checked; and the DNS, TCP, (plain) HTTP, exposure and classification probes. TLS follows.
//!
//! This crate never touches the event store: probes produce observations, and workers turn them into
//! commands.

pub mod classify;
pub mod dns;
pub mod exposure;
pub mod html;
pub mod http;
pub mod mta_sts;
pub mod resolve;
pub mod site;
pub mod ssrf;
pub mod tcp;
pub mod tls;
