//! DNSSEC validation and DANE: a domain's answers asked again through a validating resolver, and a
//! TLS service's TLSA records compared with the certificates the service presents.
//!
//! Validation is hickory's (RFC 4035), chained to the trust anchors the scanner was given: the root
//! zone's keys by default, or the DNSKEY records of a file (a lab's own zone). Before judging any
//! answer the validator checks that the resolver returns a validated DNSKEY set for an anchor that
//! covers the name; when it does not (a resolver that strips DNSSEC data, a name outside every
//! anchor) the proof is `indeterminate` and says why, so a resolver's shortcomings are never
//! reported as the domain's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use futures::future::join_all;
use hickory_resolver::TokioResolver;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::rdata::DNSSECRData;
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::proto::serialize::txt::trust_anchor::{Entry, Parser};
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256, Sha512};
use vantage_observations::dns::DnsStatus;
use vantage_observations::dnssec::{
    DaneObservation, DnssecObservation, DnssecProof, TLSA_DATA_MAX_HEX, TlsaRecord,
};

use crate::dns::cap_records;
use crate::resolve::ResolverChoice;

/// Which keys DNSSEC validation trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustAnchorChoice {
    /// The root zone's key-signing keys (KSK-2017 and KSK-2024), as bundled with hickory.
    Root,
    /// The DNSKEY records of a file in zone-file syntax (a `dnssec-keygen` `.key` file is one).
    File(PathBuf),
}

impl TrustAnchorChoice {
    /// `root`, or the path of a file of DNSKEY records.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "" => Err("the DNSSEC trust anchor must be 'root' or a file of DNSKEY records".into()),
            "root" => Ok(Self::Root),
            path => Ok(Self::File(PathBuf::from(path))),
        }
    }
}

/// A validating resolver and the zones its trust anchors are for. Cheap to clone: clones share the
/// resolver's cache and its validation cache.
#[derive(Clone)]
pub struct DnssecValidator {
    resolver: TokioResolver,
    /// The same server(s) without validation: asked for the signatures of a bogus answer, to say
    /// why it failed.
    plain: TokioResolver,
    anchor_zones: Arc<[Name]>,
}

impl std::fmt::Debug for DnssecValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnssecValidator")
            .field("anchor_zones", &self.anchor_zone_names())
            .finish_non_exhaustive()
    }
}

impl DnssecValidator {
    /// A validating resolver asking the same server(s) as `resolver`, trusting `anchors`.
    pub fn new(resolver: ResolverChoice, anchors: &TrustAnchorChoice) -> Result<Self, String> {
        let (trust, zones) = match anchors {
            TrustAnchorChoice::Root => (TrustAnchors::default(), vec![Name::root()]),
            TrustAnchorChoice::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "cannot read the DNSSEC trust anchor file {}: {e}",
                        path.display()
                    )
                })?;
                load_anchors(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
        };
        Ok(Self {
            resolver: resolver.build_validating(Arc::new(trust))?,
            plain: resolver.build()?,
            anchor_zones: zones.into(),
        })
    }

    /// The anchors' zones in presentation format (`.` for the root).
    pub fn anchor_zone_names(&self) -> Vec<String> {
        self.anchor_zones.iter().map(|z| z.to_string()).collect()
    }

    /// The closest anchor zone at or above `name` whose DNSKEY set the resolver returns validated;
    /// otherwise why validation cannot be judged.
    async fn anchor_for(&self, name: &Name) -> Result<(), String> {
        let mut covering: Vec<&Name> = self
            .anchor_zones
            .iter()
            .filter(|zone| zone.zone_of(name))
            .collect();
        covering.sort_by_key(|zone| std::cmp::Reverse(zone.num_labels()));
        let Some(zone) = covering.first() else {
            return Err(format!(
                "no trust anchor covers {name} (anchors: {})",
                self.anchor_zone_names().join(", ")
            ));
        };
        match self
            .resolver
            .lookup((*zone).clone(), RecordType::DNSKEY)
            .await
        {
            Ok(keys) if keys.answers().iter().any(|r| r.proof == Proof::Secure) => Ok(()),
            Ok(_) => Err(format!(
                "the resolver returned no DNSKEY set for the trust anchor {zone} that validates"
            )),
            Err(error) => Err(format!(
                "the resolver returned no DNSKEY set for the trust anchor {zone}: {error}"
            )),
        }
    }

    /// Asks `name` / `record_type` and says what validation proved.
    async fn lookup(&self, name: &Name, record_type: RecordType) -> Validated {
        if let Err(reason) = self.anchor_for(name).await {
            return Validated::indeterminate(DnsStatus::Error, reason);
        }
        match self.resolver.lookup(name.clone(), record_type).await {
            Ok(lookup) => {
                let answers: Vec<Record> = lookup.answers().to_vec();
                let proof = weakest(answers.iter().filter(|r| !r.record_type().is_rrsig()));
                let records: Vec<Record> = answers
                    .into_iter()
                    .filter(|r| r.record_type() == record_type)
                    .collect();
                let status = if records.is_empty() {
                    DnsStatus::NoRecords
                } else {
                    DnsStatus::Ok
                };
                Validated::new(status, proof, records)
            }
            Err(NetError::Dns(DnsError::DnssecBogus)) => Validated {
                status: DnsStatus::Error,
                proof: DnssecProof::Bogus,
                reason: Some(
                    self.signature_window(name, record_type)
                        .await
                        .unwrap_or_else(|| BOGUS.to_owned()),
                ),
                records: vec![],
            },
            Err(NetError::Dns(DnsError::NoRecordsFound(none))) => {
                let status = denial_status(none.response_code);
                let proof = match &none.authorities {
                    Some(authorities) if !authorities.is_empty() => weakest(authorities.iter()),
                    _ => Proof::Indeterminate,
                };
                Validated::new(status, proof, vec![])
            }
            Err(NetError::Dns(DnsError::Nsec {
                response, proof, ..
            })) => Validated::new(denial_status(response.response_code), proof, vec![]),
            Err(error) => Validated::indeterminate(DnsStatus::Error, error.to_string()),
        }
    }
}

impl DnssecValidator {
    /// Why a bogus answer failed, when its signatures' validity window is the cause: every RRSIG
    /// over `record_type` at `name` has expired, or none is valid yet (the validator itself does
    /// not say why).
    async fn signature_window(&self, name: &Name, record_type: RecordType) -> Option<String> {
        let signatures = self
            .plain
            .lookup(name.clone(), RecordType::RRSIG)
            .await
            .ok()?;
        let windows: Vec<(u32, u32)> = signatures
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::DNSSEC(DNSSECRData::RRSIG(rrsig))
                    if rrsig.input().type_covered == record_type =>
                {
                    let input = rrsig.input();
                    Some((input.sig_inception.get(), input.sig_expiration.get()))
                }
                _ => None,
            })
            .collect();
        signature_window_reason(&windows, crate::unix_now(), record_type)
    }
}

/// The reason `windows` (inception, expiration, as RRSIG times: seconds since the epoch modulo
/// 2^32, RFC 4034 §3.1.5) give at `now`, when none of them covers it.
fn signature_window_reason(
    windows: &[(u32, u32)],
    now: i64,
    record_type: RecordType,
) -> Option<String> {
    // Serial arithmetic (RFC 1982) over the low 32 bits, as RRSIG times are compared.
    let now = now as u32;
    let before = |a: u32, b: u32| (a.wrapping_sub(b) as i32) < 0;
    let when = |time: u32| {
        chrono::DateTime::from_timestamp(i64::from(time), 0).map_or_else(
            || time.to_string(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
    };
    if windows.is_empty() {
        return None;
    }
    if windows
        .iter()
        .all(|(_, expiration)| before(*expiration, now))
    {
        let latest = windows.iter().map(|(_, e)| *e).max()?;
        return Some(format!(
            "the signature over the {record_type} records expired at {}",
            when(latest)
        ));
    }
    if windows.iter().all(|(inception, _)| before(now, *inception)) {
        let earliest = windows.iter().map(|(i, _)| *i).min()?;
        return Some(format!(
            "the signature over the {record_type} records is not valid until {}",
            when(earliest)
        ));
    }
    None
}

const BOGUS: &str = "no valid signature chains the answer to the trust anchor (an expired or \
     not yet valid RRSIG, a signature by the wrong key, or a key the parent's DS does not match)";

/// Parses a trust anchor file: the anchors and the zones they are for.
fn load_anchors(text: &str) -> Result<(TrustAnchors, Vec<Name>), String> {
    let entries = Parser::new(text)
        .parse()
        .map_err(|e| format!("not a file of DNSKEY records: {e}"))?;
    let mut zones: Vec<Name> = entries
        .iter()
        .filter_map(|entry| match entry {
            Entry::DNSKEY(record) => Some(record.name().clone()),
            _ => None,
        })
        .collect();
    zones.sort();
    zones.dedup();
    if zones.is_empty() {
        return Err("holds no DNSKEY record".into());
    }
    let trust = TrustAnchors::from_str(text).map_err(|e| format!("unusable DNSKEY record: {e}"))?;
    Ok((trust, zones))
}

fn denial_status(code: ResponseCode) -> DnsStatus {
    if code == ResponseCode::NXDomain {
        DnsStatus::Nxdomain
    } else {
        DnsStatus::NoRecords
    }
}

/// The weakest proof among `records` (an answer is only as strong as its weakest part).
fn weakest<'a>(records: impl Iterator<Item = &'a Record>) -> Proof {
    records
        .map(|r| r.proof)
        .min()
        .unwrap_or(Proof::Indeterminate)
}

fn proof_of(proof: Proof) -> DnssecProof {
    match proof {
        Proof::Secure => DnssecProof::Secure,
        Proof::Insecure => DnssecProof::Insecure,
        Proof::Bogus => DnssecProof::Bogus,
        Proof::Indeterminate => DnssecProof::Indeterminate,
    }
}

/// One validated answer.
#[derive(Debug)]
struct Validated {
    status: DnsStatus,
    proof: DnssecProof,
    reason: Option<String>,
    records: Vec<Record>,
}

impl Validated {
    fn new(status: DnsStatus, proof: Proof, records: Vec<Record>) -> Self {
        let proof = proof_of(proof);
        let reason = match proof {
            DnssecProof::Secure => None,
            DnssecProof::Insecure => {
                Some("the zone is unsigned: a signed parent proves it has no DS record".into())
            }
            DnssecProof::Bogus => Some(BOGUS.into()),
            DnssecProof::Indeterminate => Some("the validator could not reach a verdict".into()),
        };
        Self {
            status,
            proof,
            reason,
            records,
        }
    }

    fn indeterminate(status: DnsStatus, reason: String) -> Self {
        Self {
            status,
            proof: DnssecProof::Indeterminate,
            reason: Some(reason),
            records: vec![],
        }
    }
}

/// The questions validated about a domain: its addresses (what browsers reach) and its mail
/// exchangers (what DANE for mail builds on).
const QUESTIONS: [RecordType; 3] = [RecordType::A, RecordType::AAAA, RecordType::MX];

fn fqdn(host: &str) -> Option<Name> {
    Name::from_ascii(format!(
        "{}.",
        host.trim_end_matches('.').to_ascii_lowercase()
    ))
    .ok()
}

/// Asks the DNSSEC questions about `host` (a DNS name), concurrently.
pub async fn probe_dnssec(validator: &DnssecValidator, host: &str) -> Vec<DnssecObservation> {
    let Some(name) = fqdn(host) else {
        return Vec::new();
    };
    let name = &name;
    let asked = QUESTIONS.map(|record_type| async move {
        let seen = validator.lookup(name, record_type).await;
        let (records, truncated) =
            cap_records(seen.records.iter().map(|r| r.data.to_string()).collect());
        DnssecObservation {
            name: name.to_string().trim_end_matches('.').to_owned(),
            record_type: record_type.to_string(),
            status: seen.status,
            proof: seen.proof,
            reason: seen.reason,
            records,
            truncated,
            trust_anchors: validator.anchor_zone_names(),
        }
    });
    join_all(asked).await
}

/// Most TLSA records kept per name.
const MAX_TLSA: usize = 8;

/// The TLSA owner name of a TCP service (RFC 6698 §3).
pub fn tlsa_name(host: &str, port: u16) -> String {
    format!("_{port}._tcp.{}", host.trim_end_matches('.'))
}

/// A TLS service's TLSA records as validation left them, before any chain is compared.
#[derive(Debug)]
pub struct TlsaAnswer {
    name: String,
    seen: Validated,
    /// Each record as observed, and its association data in full (the observation's may be cut).
    records: Vec<(TlsaRecord, Vec<u8>)>,
    truncated: bool,
    trust_anchors: Vec<String>,
}

impl TlsaAnswer {
    /// There are records to compare a chain with.
    pub fn has_records(&self) -> bool {
        !self.records.is_empty()
    }

    /// The observation: each record compared with the `chain` `address` presented (`None` when no
    /// chain was fetched, the error when fetching it failed).
    pub fn compared_with(
        self,
        address: SocketAddr,
        chain: Option<Result<&[CertificateDer<'static>], String>>,
    ) -> DaneObservation {
        let mut records = self.records;
        let (mut chain_length, mut error) = (None, None);
        match chain {
            Some(Ok(chain)) => {
                chain_length = Some(chain.len() as u32);
                for (record, data) in &mut records {
                    record.matched_position = matched_position(record, data, chain);
                }
            }
            Some(Err(reason)) if !records.is_empty() => error = Some(reason),
            _ => {}
        }
        DaneObservation {
            address,
            name: self.name,
            status: self.seen.status,
            proof: self.seen.proof,
            reason: self.seen.reason,
            records: records.into_iter().map(|(record, _)| record).collect(),
            truncated: self.truncated,
            chain_length,
            error,
            trust_anchors: self.trust_anchors,
        }
    }
}

/// The TLSA records of `host`'s TCP service on `port`, validated.
pub async fn lookup_tlsa(validator: &DnssecValidator, host: &str, port: u16) -> TlsaAnswer {
    let owner = tlsa_name(host, port);
    let seen = match fqdn(&owner) {
        Some(name) => validator.lookup(&name, RecordType::TLSA).await,
        None => Validated::indeterminate(DnsStatus::Error, format!("{owner} is not a DNS name")),
    };
    let truncated = seen.records.len() > MAX_TLSA;
    let records = seen
        .records
        .iter()
        .filter_map(|record| match &record.data {
            RData::TLSA(tlsa) => Some((
                TlsaRecord {
                    usage: tlsa.cert_usage.into(),
                    selector: tlsa.selector.into(),
                    matching_type: tlsa.matching.into(),
                    data: hex_prefix(&tlsa.cert_data),
                    matched_position: None,
                },
                tlsa.cert_data.clone(),
            )),
            _ => None,
        })
        .take(MAX_TLSA)
        .collect();
    TlsaAnswer {
        name: owner,
        seen,
        records,
        truncated,
        trust_anchors: validator.anchor_zone_names(),
    }
}

/// The TLSA records of `host`'s TLS service at `address` (its port), validated, each compared with
/// the chain the service presents for `host` (fetched only when there are records).
pub async fn probe_dane(
    validator: &DnssecValidator,
    host: &str,
    address: SocketAddr,
) -> DaneObservation {
    let answer = lookup_tlsa(validator, host, address.port()).await;
    if !answer.has_records() {
        return answer.compared_with(address, None);
    }
    let chain = crate::tls::presented_chain(address, host).await;
    answer.compared_with(address, Some(chain.as_deref().map_err(Clone::clone)))
}

fn hex_prefix(bytes: &[u8]) -> String {
    let mut text = hex::encode(bytes);
    text.truncate(TLSA_DATA_MAX_HEX);
    text
}

/// The position of the first certificate of `chain` whose part `record` selects matches `data`.
pub fn matched_position(
    record: &TlsaRecord,
    data: &[u8],
    chain: &[CertificateDer<'_>],
) -> Option<u32> {
    chain
        .iter()
        .position(|certificate| {
            let selected: &[u8] = match record.selector {
                0 => certificate.as_ref(),
                1 => match x509_parser::parse_x509_certificate(certificate.as_ref()) {
                    Ok((_, parsed)) => parsed.tbs_certificate.subject_pki.raw,
                    Err(_) => return false,
                },
                _ => return false,
            };
            match record.matching_type {
                0 => selected == data,
                1 => Sha256::digest(selected).as_slice() == data,
                2 => Sha512::digest(selected).as_slice() == data,
                _ => false,
            }
        })
        .map(|position| position as u32)
}

#[cfg(test)]
mod tests {
    use rcgen::PublicKeyData;

    use super::*;

    #[test]
    fn a_signature_window_that_does_not_cover_now_is_the_reason() {
        let feb_2020 = 1_580_515_200; // 2020-02-01T00:00:00Z
        let jan_2020 = 1_577_836_800;
        let now = 1_796_000_000; // late 2026
        assert_eq!(
            signature_window_reason(&[(jan_2020, feb_2020)], now, RecordType::A).unwrap(),
            "the signature over the A records expired at 2020-02-01T00:00:00Z"
        );
        assert!(
            signature_window_reason(
                &[(now as u32 + 3600, now as u32 + 7200)],
                now,
                RecordType::MX
            )
            .unwrap()
            .contains("not valid until")
        );
        // One signature covering now: the window is not why.
        assert_eq!(
            signature_window_reason(
                &[(jan_2020, feb_2020), (now as u32 - 60, now as u32 + 60)],
                now,
                RecordType::A
            ),
            None
        );
        assert_eq!(signature_window_reason(&[], now, RecordType::A), None);
    }

    #[test]
    fn trust_anchor_choice_parses() {
        assert_eq!(
            TrustAnchorChoice::parse("root"),
            Ok(TrustAnchorChoice::Root)
        );
        assert_eq!(
            TrustAnchorChoice::parse("/etc/lab.key"),
            Ok(TrustAnchorChoice::File("/etc/lab.key".into()))
        );
        assert!(TrustAnchorChoice::parse(" ").is_err());
    }

    #[test]
    fn anchor_files_name_their_zones_and_refuse_other_records() {
        let key = "; a key-signing key\nlab.test. IN DNSKEY 257 3 13 \
                   7fn1gEqQdxCf7kJzGzMdON3CE9BuJg/uen04Rv2W3YPzRSPyhTiE/Joz0P0agk+BafVKg2aSMkQFM7PpPivrDA==\n";
        let (_, zones) = load_anchors(key).unwrap();
        assert_eq!(zones, vec![Name::from_ascii("lab.test.").unwrap()]);
        let refused = |text: &str| load_anchors(text).map(|_| ()).unwrap_err();
        assert!(refused("").contains("no DNSKEY"));
        assert!(refused("lab.test. IN A 127.0.0.1\n").contains("not a file of DNSKEY records"));
    }

    #[test]
    fn tlsa_records_match_by_selector_and_digest() {
        let issued = rcgen::generate_simple_self_signed(vec!["lab.test".into()]).unwrap();
        let der = issued.cert.der().clone();
        let spki = issued.signing_key.subject_public_key_info();
        let other = rcgen::generate_simple_self_signed(vec!["other.test".into()]).unwrap();
        let chain = vec![other.cert.der().clone(), der.clone()];
        let record = |selector, matching_type| TlsaRecord {
            usage: 3,
            selector,
            matching_type,
            data: String::new(),
            matched_position: None,
        };
        assert_eq!(matched_position(&record(0, 0), &der, &chain), Some(1));
        assert_eq!(
            matched_position(&record(0, 1), &Sha256::digest(&der), &chain),
            Some(1)
        );
        assert_eq!(
            matched_position(&record(1, 1), &Sha256::digest(&spki), &chain),
            Some(1)
        );
        assert_eq!(
            matched_position(&record(1, 2), &Sha512::digest(&spki), &chain),
            Some(1)
        );
        // The digest of the whole certificate is not the digest of its key.
        assert_eq!(
            matched_position(&record(1, 1), &Sha256::digest(&der), &chain),
            None
        );
        assert_eq!(matched_position(&record(2, 1), &[0; 32], &chain), None);
        assert_eq!(matched_position(&record(1, 9), &spki, &chain), None);
    }
}
