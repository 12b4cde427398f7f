//! The DNS probe: the records a domain publishes about itself — addresses, aliases, name servers,
//! mail exchangers, CAA, TXT (SPF), and the mail-policy names `_dmarc`, `_mta-sts` and `_smtp._tls`.
//!
//! DNS data is public by nature; answers are still capped ([`MAX_RECORDS`] per question,
//! [`MAX_RECORD_CHARS`] per record) so an observation stays small whatever a zone holds.

use futures::future::join_all;
use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RecordType;
use vantage_observations::dns::{DnsObservation, DnsStatus};

/// Most records kept per question.
pub const MAX_RECORDS: usize = 20;
/// Longest record text kept, in characters.
pub const MAX_RECORD_CHARS: usize = 255;

/// The questions asked about `host`.
fn questions(host: &str) -> Vec<(String, RecordType)> {
    let mut asked: Vec<(String, RecordType)> = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::CNAME,
        RecordType::NS,
        RecordType::MX,
        RecordType::TXT,
    ]
    .into_iter()
    .map(|record_type| (host.to_owned(), record_type))
    .collect();
    for prefix in ["_dmarc", "_mta-sts", "_smtp._tls"] {
        asked.push((format!("{prefix}.{host}"), RecordType::TXT));
    }
    asked
}

async fn ask(resolver: &TokioResolver, name: &str, record_type: RecordType) -> DnsObservation {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let (status, records) = match resolver.lookup(fqdn.as_str(), record_type).await {
        Ok(lookup) => {
            let records: Vec<String> = lookup
                .answers()
                .iter()
                .filter(|record| record.record_type() == record_type)
                .map(|record| record.data.to_string())
                .collect();
            let status = if records.is_empty() {
                DnsStatus::NoRecords
            } else {
                DnsStatus::Ok
            };
            (status, records)
        }
        Err(error) if error.is_nx_domain() => (DnsStatus::Nxdomain, vec![]),
        Err(error) if error.is_no_records_found() => (DnsStatus::NoRecords, vec![]),
        Err(_) => (DnsStatus::Error, vec![]),
    };
    let (records, truncated) = cap_records(records);
    DnsObservation {
        name: name.to_owned(),
        record_type: record_type.to_string(),
        status,
        records,
        truncated,
    }
}

/// Sorts `records` and keeps at most [`MAX_RECORDS`] of at most [`MAX_RECORD_CHARS`] characters;
/// `true` when something was cut.
pub(crate) fn cap_records(mut records: Vec<String>) -> (Vec<String>, bool) {
    records.sort();
    let truncated =
        records.len() > MAX_RECORDS || records.iter().any(|r| r.chars().count() > MAX_RECORD_CHARS);
    records.truncate(MAX_RECORDS);
    for record in &mut records {
        if record.chars().count() > MAX_RECORD_CHARS {
            *record = record.chars().take(MAX_RECORD_CHARS).collect();
        }
    }
    (records, truncated)
}

/// CAA applies from the closest ancestor that has a CAA record set (RFC 8659 §3): climb until one is
/// found or only the top-level label is left.
async fn caa(resolver: &TokioResolver, host: &str) -> DnsObservation {
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    let mut first = None;
    for start in 0..labels.len().saturating_sub(1) {
        let name = labels[start..].join(".");
        let seen = ask(resolver, &name, RecordType::CAA).await;
        if seen.status == DnsStatus::Ok {
            return seen;
        }
        if seen.status == DnsStatus::Error {
            return seen;
        }
        first.get_or_insert(seen);
    }
    first.unwrap_or_else(|| DnsObservation {
        name: host.to_owned(),
        record_type: RecordType::CAA.to_string(),
        status: DnsStatus::NoRecords,
        records: vec![],
        truncated: false,
    })
}

/// Asks every question about `host` (a DNS name, not an IP literal), concurrently.
pub async fn probe_dns(resolver: &TokioResolver, host: &str) -> Vec<DnsObservation> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let asked = questions(&host);
    let (mut observations, caa) = tokio::join!(
        join_all(
            asked
                .iter()
                .map(|(name, record_type)| ask(resolver, name, *record_type))
        ),
        caa(resolver, &host)
    );
    observations.push(caa);
    observations
}
