//! The compliance package: evidence a compliance officer hands to a third party, which that party
//! checks offline without trusting Vantage or its operator.
//!
//! A `.tar.gz` holding, in this order:
//! - `manifest.json` ([`Manifest`]): what the package is about, when and by what it was made, the
//!   rulesets and frameworks, the log segment of every scan (first and last global position, the
//!   chain hash before the first and at the last), and the SHA-256 and size of every other file;
//! - `manifest.sig`: the raw 64-byte Ed25519 signature of `manifest.json`'s exact bytes;
//! - `signing-key.pem`: the public key (SPKI PEM) that made the signature;
//! - `events.jsonl`: each scan's events exactly as the log holds them (one [`RecordedEvent`] per
//!   line, every envelope field and the exact payload text, so each content hash can be recomputed);
//! - `chain.jsonl`: for every position inside a scan's segment that belongs to another stream, only
//!   its position and hashes ([`ChainLink`]), so the segment's chain can be recomputed from the
//!   first link to the last without disclosing other streams;
//! - `findings.json` ([`FindingsFile`]), `coverage.json` ([`CoverageFile`]), `report.html`.
//!
//! [`verify`] checks everything: the signature (and that the key is the one expected, if given), every
//! file's hash, every event's content hash, every segment's chain up to its signed head, and the
//! findings and coverage recomputed from the events with the recorded ruleset. A scan stream holds
//! only public-safe facts (observations keep no secret, no body, no cookie value), so its events are
//! packaged verbatim: that is what makes their hashes checkable.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vantage_domain::DomainEvent;
use vantage_domain::scan::ScanEvent;
use vantage_rules::compliance::{Coverage, Framework};
use vantage_rules::grade::ScanGrades;
use vantage_rules::{Finding, Overall, ScanFacts, SeverityCounts};
use vantage_store::{
    EventMetadata, JsonPayload, RecordedEvent, StoredEvent, chain_hash, content_hash,
};

use crate::signing::{PublicKey, SigningKey};
use crate::{GENERATOR, GENERATOR_VERSION};

/// The `format` of a manifest this code writes and reads.
pub const FORMAT: &str = "vantage-compliance-package/1";

pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
pub const PUBLIC_KEY: &str = "signing-key.pem";
pub const EVENTS: &str = "events.jsonl";
pub const CHAIN: &str = "chain.jsonl";
pub const FINDINGS: &str = "findings.json";
pub const COVERAGE: &str = "coverage.json";
pub const REPORT: &str = "report.html";

/// The files the manifest lists, in archive order.
const CONTENT_FILES: [&str; 5] = [EVENTS, CHAIN, FINDINGS, COVERAGE, REPORT];

/// A package's files together are at most this large uncompressed (a guard against archive bombs).
pub const MAX_UNPACKED_BYTES: u64 = 4 << 30;

/// What a package is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// One scan.
    Scan { scan_id: String },
    /// A domain's scans completed in `[since, until)`.
    Domain {
        domain: String,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Manifest {
    /// Always `vantage-compliance-package/1`.
    pub format: String,
    pub created_at: DateTime<Utc>,
    pub generator: Generator,
    pub tenant: String,
    pub subject: Subject,
    /// The frameworks `coverage.json` assesses.
    pub frameworks: Vec<String>,
    /// The rulesets the scans completed with.
    pub rulesets: Vec<String>,
    /// One log segment per scan, by first position.
    pub segments: Vec<Segment>,
    /// Every other file of the package.
    pub files: Vec<FileEntry>,
    /// SHA-256 of the raw public key that signs this manifest.
    pub public_key_sha256: String,
}

/// The program that made a package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Generator {
    pub name: String,
    pub version: String,
}

/// The stretch of the global log that holds one scan's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Segment {
    pub scan_id: String,
    pub stream: String,
    pub first_position: u64,
    pub last_position: u64,
    /// The chain hash of the event before `first_position` (the segment's anchor).
    pub prev_hash: String,
    /// The chain hash at `last_position`.
    pub head_hash: String,
    /// How many of the segment's events are the scan's (the rest are in `chain.jsonl`).
    pub events: u64,
}

/// A file and its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// A line of `chain.jsonl`: an event of another stream inside a segment, by its hashes only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChainLink {
    pub position: u64,
    pub content_hash: String,
    pub hash: String,
}

/// `findings.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FindingsFile {
    pub scans: Vec<ScanFindings>,
}

/// What the recorded ruleset concludes from one scan's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanFindings {
    pub scan_id: String,
    pub target: String,
    pub ruleset_version: String,
    pub overall: Overall,
    pub grades: ScanGrades,
    pub counts: SeverityCounts,
    /// Sorted by fingerprint.
    pub findings: Vec<Finding>,
}

/// `coverage.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CoverageFile {
    pub scans: Vec<ScanCoverage>,
}

/// Each framework's controls for one scan: passed, failed or not assessed, with the findings behind
/// each failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScanCoverage {
    pub scan_id: String,
    pub frameworks: Vec<Coverage>,
}

/// One scan's evidence as read from the log.
#[derive(Debug, Clone)]
pub struct ScanEvidence {
    /// The scan stream's events, by global position.
    pub events: Vec<RecordedEvent>,
    /// Every event of other streams between the scan's first and last position.
    pub links: Vec<ChainLink>,
}

/// Everything a package is made from.
#[derive(Debug)]
pub struct PackageInput<'a> {
    pub tenant: String,
    pub subject: Subject,
    pub frameworks: Vec<&'static Framework>,
    /// At least one; each a completed scan.
    pub scans: Vec<ScanEvidence>,
    pub report_html: String,
    pub created_at: DateTime<Utc>,
    pub key: &'a SigningKey,
}

/// The frameworks a package covers: the one named, or every framework.
pub fn frameworks(named: Option<&str>) -> Result<Vec<&'static Framework>, String> {
    use vantage_rules::compliance::FRAMEWORKS;
    match named {
        None => Ok(FRAMEWORKS.iter().collect()),
        Some(id) => vantage_rules::compliance::framework(id)
            .map(|f| vec![f])
            .ok_or_else(|| {
                let known: Vec<&str> = FRAMEWORKS.iter().map(|f| f.id).collect();
                format!("unknown framework {id:?}; known: {}", known.join(", "))
            }),
    }
}

/// Why a package could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("there is no completed scan to package")]
    Empty,
    #[error("scan stream {stream}: {reason}")]
    Scan { stream: String, reason: String },
    #[error("cannot write the archive: {0}")]
    Io(#[from] std::io::Error),
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Recomputes what the recorded ruleset concludes from a scan's events (in stream order); `Err` names
/// what is missing or undecodable.
pub fn assess_events<'a>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<ScanFindings, String> {
    let mut requested = None;
    let mut ruleset = None;
    let mut observations = Vec::new();
    for recorded in events {
        let event = &recorded.event;
        let decoded = ScanEvent::decode(
            &event.event_type,
            event.schema_version,
            event.payload.as_str(),
        )
        .map_err(|e| format!("event {} cannot be read: {e}", event.event_id))?;
        match decoded {
            ScanEvent::ScanRequested(r) => requested = Some(r),
            ScanEvent::ProbeObserved(o) => observations.push(o),
            ScanEvent::ScanCompleted(c) => ruleset = Some(c.ruleset_version),
            _ => {}
        }
    }
    let requested = requested.ok_or("the scan's ScanRequested event is missing")?;
    let ruleset = ruleset.ok_or("the scan did not complete (no ScanCompleted event)")?;
    let facts = ScanFacts {
        tenant: requested.tenant.as_str(),
        target: requested.target.as_str(),
        observations: &observations,
    };
    let assessment = vantage_rules::assess(&ruleset, &facts).map_err(|e| e.to_string())?;
    Ok(ScanFindings {
        scan_id: requested.scan_id.to_string(),
        target: requested.target.as_str().to_owned(),
        ruleset_version: assessment.ruleset,
        overall: assessment.overall,
        grades: assessment.grades,
        counts: assessment.counts,
        findings: assessment.findings,
    })
}

fn coverage_of(
    frameworks: &[&'static Framework],
    scan: &ScanFindings,
) -> Result<ScanCoverage, String> {
    let frameworks = frameworks
        .iter()
        .map(|framework| {
            vantage_rules::compliance::coverage(framework, &scan.ruleset_version, &scan.findings)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    Ok(ScanCoverage {
        scan_id: scan.scan_id.clone(),
        frameworks,
    })
}

fn json_lines<T: Serialize>(items: impl IntoIterator<Item = T>) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        // Serialising these types cannot fail: no maps with non-string keys, no foreign types.
        if let Ok(line) = serde_json::to_vec(&item) {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
    }
    out
}

fn pretty<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Makes a signed package (the `.tar.gz` bytes).
pub fn build(input: PackageInput<'_>) -> Result<Vec<u8>, BuildError> {
    if input.scans.is_empty() {
        return Err(BuildError::Empty);
    }
    let mut scans = input.scans;
    scans.retain(|s| !s.events.is_empty());
    scans.sort_by_key(|s| s.events[0].global_position);
    if scans.is_empty() {
        return Err(BuildError::Empty);
    }
    let mut segments = Vec::new();
    let mut findings = Vec::new();
    let mut coverage = Vec::new();
    for scan in &scans {
        let stream = scan.events[0].event.stream.clone();
        let failed = |reason: String| BuildError::Scan {
            stream: stream.clone(),
            reason,
        };
        let assessed = assess_events(&scan.events).map_err(failed)?;
        coverage.push(coverage_of(&input.frameworks, &assessed).map_err(failed)?);
        let (first, last) = (&scan.events[0], &scan.events[scan.events.len() - 1]);
        segments.push(Segment {
            scan_id: assessed.scan_id.clone(),
            stream: stream.clone(),
            first_position: first.global_position,
            last_position: last.global_position,
            prev_hash: first.prev_hash.clone(),
            head_hash: last.hash.clone(),
            events: scan.events.len() as u64,
        });
        findings.push(assessed);
    }
    let mut rulesets: Vec<String> = findings.iter().map(|f| f.ruleset_version.clone()).collect();
    rulesets.sort();
    rulesets.dedup();
    let mut events: Vec<&RecordedEvent> = scans.iter().flat_map(|s| &s.events).collect();
    events.sort_by_key(|e| e.global_position);
    let mut links: Vec<&ChainLink> = scans.iter().flat_map(|s| &s.links).collect();
    links.sort_by_key(|l| l.position);
    links.dedup_by_key(|l| l.position);

    let contents: Vec<(&str, Vec<u8>)> = vec![
        (EVENTS, json_lines(events.into_iter().map(EventLine::from))),
        (CHAIN, json_lines(links)),
        (FINDINGS, pretty(&FindingsFile { scans: findings })),
        (COVERAGE, pretty(&CoverageFile { scans: coverage })),
        (REPORT, input.report_html.into_bytes()),
    ];
    let public = input.key.public_key();
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        created_at: input.created_at,
        generator: Generator {
            name: GENERATOR.to_owned(),
            version: GENERATOR_VERSION.to_owned(),
        },
        tenant: input.tenant,
        subject: input.subject,
        frameworks: input.frameworks.iter().map(|f| f.id.to_owned()).collect(),
        rulesets,
        segments,
        files: contents
            .iter()
            .map(|(path, bytes)| FileEntry {
                path: (*path).to_owned(),
                sha256: sha256_hex(bytes),
                bytes: bytes.len() as u64,
            })
            .collect(),
        public_key_sha256: public.fingerprint(),
    };
    let manifest_bytes = pretty(&manifest);
    let signature = input.key.sign(&manifest_bytes);

    let mtime = u64::try_from(input.created_at.timestamp()).unwrap_or(0);
    let mut archive = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    archive.mode(tar::HeaderMode::Deterministic);
    let mut add = |path: &str, bytes: &[u8]| -> std::io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        archive.append_data(&mut header, path, bytes)
    };
    add(MANIFEST, &manifest_bytes)?;
    add(SIGNATURE, &signature)?;
    add(PUBLIC_KEY, public.to_pem().as_bytes())?;
    for (path, bytes) in &contents {
        add(path, bytes)?;
    }
    Ok(archive.into_inner()?.finish()?)
}

/// What a package that verified holds.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    pub public_key: PublicKey,
    pub events: usize,
    pub findings: usize,
}

/// Why a package did not verify: every problem found, each naming the file, event or position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    pub problems: Vec<String>,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.problems.join("; "))
    }
}

impl std::error::Error for VerifyError {}

fn fail(problem: impl Into<String>) -> VerifyError {
    VerifyError {
        problems: vec![problem.into()],
    }
}

/// Reads the archive's files, refusing anything but the package's own plain files, duplicates,
/// and more than [`MAX_UNPACKED_BYTES`].
fn unpack(archive: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, VerifyError> {
    let not_package = |e: std::io::Error| fail(format!("not a compliance package (.tar.gz): {e}"));
    let mut files = BTreeMap::new();
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    let mut budget = MAX_UNPACKED_BYTES;
    let known: BTreeSet<&str> = [MANIFEST, SIGNATURE, PUBLIC_KEY]
        .into_iter()
        .chain(CONTENT_FILES)
        .collect();
    for entry in tar.entries().map_err(not_package)? {
        let entry = entry.map_err(not_package)?;
        let path = entry
            .path()
            .map_err(not_package)?
            .to_string_lossy()
            .into_owned();
        if !known.contains(path.as_str()) || entry.header().entry_type() != tar::EntryType::Regular
        {
            return Err(fail(format!("{path}: not a file of a compliance package")));
        }
        let mut bytes = Vec::new();
        entry
            .take(budget + 1)
            .read_to_end(&mut bytes)
            .map_err(not_package)?;
        budget = budget
            .checked_sub(bytes.len() as u64)
            .ok_or_else(|| fail("the package unpacks to more than 4 GiB"))?;
        if files.insert(path.clone(), bytes).is_some() {
            return Err(fail(format!("{path}: appears twice in the archive")));
        }
    }
    // The tar reader stops at its end-of-archive blocks; reading the rest of the gzip stream makes
    // the decoder check the trailer's CRC-32 and length, so damage after the last file is caught.
    let mut rest = tar.into_inner();
    std::io::copy(&mut (&mut rest).take(budget + 1), &mut std::io::sink()).map_err(not_package)?;
    Ok(files)
}

/// Verifies a package offline. With `expected_key`, the package must also be signed by that key.
pub fn verify(archive: &[u8], expected_key: Option<&PublicKey>) -> Result<Verified, VerifyError> {
    let files = unpack(archive)?;
    let get = |name: &str| {
        files
            .get(name)
            .ok_or_else(|| fail(format!("{name}: missing from the package")))
    };
    let manifest_bytes = get(MANIFEST)?;
    let key_text = std::str::from_utf8(get(PUBLIC_KEY)?)
        .map_err(|_| fail(format!("{PUBLIC_KEY}: not text")))?;
    let public_key =
        PublicKey::from_pem(key_text).map_err(|e| fail(format!("{PUBLIC_KEY}: {e}")))?;
    // The key file is not among the signed digests, so it must be exactly the form `build` writes:
    // no byte of the package can change without the verification failing.
    if key_text != public_key.to_pem() {
        return Err(fail(format!(
            "{PUBLIC_KEY}: the key is not written in its canonical PEM form (the file was altered)"
        )));
    }
    if let Some(expected) = expected_key
        && *expected != public_key
    {
        return Err(fail(format!(
            "{PUBLIC_KEY}: the package is signed by key {}, not by the expected key {}",
            public_key.fingerprint(),
            expected.fingerprint()
        )));
    }
    if !public_key.verifies(manifest_bytes, get(SIGNATURE)?) {
        return Err(fail(format!(
            "{SIGNATURE}: the signature does not match {MANIFEST} under key {}",
            public_key.fingerprint()
        )));
    }
    let manifest: Manifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| fail(format!("{MANIFEST}: not a manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(fail(format!(
            "{MANIFEST}: format {:?} is not {FORMAT:?}",
            manifest.format
        )));
    }
    if manifest.public_key_sha256 != public_key.fingerprint() {
        return Err(fail(format!(
            "{MANIFEST}: names key {}, but {PUBLIC_KEY} is key {}",
            manifest.public_key_sha256,
            public_key.fingerprint()
        )));
    }

    let mut problems = Vec::new();
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for name in CONTENT_FILES {
        if !listed.contains(name) {
            problems.push(format!("{MANIFEST}: does not list {name}"));
        }
    }
    for entry in &manifest.files {
        match files.get(&entry.path) {
            None => problems.push(format!("{}: missing from the package", entry.path)),
            Some(bytes)
                if sha256_hex(bytes) != entry.sha256 || bytes.len() as u64 != entry.bytes =>
            {
                problems.push(format!(
                    "{}: its SHA-256 is not the one {MANIFEST} records (the file was altered)",
                    entry.path
                ));
            }
            Some(_) => {}
        }
    }
    for name in files.keys() {
        let own = [MANIFEST, SIGNATURE, PUBLIC_KEY].contains(&name.as_str());
        if !own && !listed.contains(name.as_str()) {
            problems.push(format!("{name}: not listed in {MANIFEST}"));
        }
    }

    let (events, findings) = check_contents(&manifest, &files, &mut problems);
    if problems.is_empty() {
        Ok(Verified {
            manifest,
            public_key,
            events,
            findings,
        })
    } else {
        Err(VerifyError { problems })
    }
}

/// Parses JSON lines, naming the file and line of anything that is not a `T`.
fn parse_lines<T: serde::de::DeserializeOwned>(
    name: &str,
    bytes: &[u8],
    problems: &mut Vec<String>,
) -> Vec<(usize, T)> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(item) => out.push((i + 1, item)),
            Err(e) => problems.push(format!("{name} line {}: not readable: {e}", i + 1)),
        }
    }
    out
}

/// Checks every event, every segment's chain, and the findings and coverage recomputed from the
/// events; returns how many events and findings there were.
fn check_contents(
    manifest: &Manifest,
    files: &BTreeMap<String, Vec<u8>>,
    problems: &mut Vec<String>,
) -> (usize, usize) {
    let empty = Vec::new();
    let events: Vec<(usize, RecordedEvent)> =
        parse_lines::<EventLine>(EVENTS, files.get(EVENTS).unwrap_or(&empty), problems)
            .into_iter()
            .map(|(line, event)| (line, event.into()))
            .collect();
    let links: Vec<(usize, ChainLink)> =
        parse_lines(CHAIN, files.get(CHAIN).unwrap_or(&empty), problems);

    // Every event's own content hash.
    let mut content_at: BTreeMap<u64, (String, String)> = BTreeMap::new();
    for (line, recorded) in &events {
        let event = &recorded.event;
        let actual = content_hash(event);
        if actual != event.content_hash {
            problems.push(format!(
                "{EVENTS} line {line}: event {} ({} version {}, position {}) does not match its content hash: the event was altered",
                event.event_id, event.stream, event.stream_version, recorded.global_position
            ));
        }
        if content_at
            .insert(
                recorded.global_position,
                (actual, format!("event {}", event.event_id)),
            )
            .is_some()
        {
            problems.push(format!(
                "{EVENTS} line {line}: a second event at position {}",
                recorded.global_position
            ));
        }
    }
    for (line, link) in &links {
        if content_at
            .insert(
                link.position,
                (link.content_hash.clone(), format!("{CHAIN} line {line}")),
            )
            .is_some()
        {
            problems.push(format!(
                "{CHAIN} line {line}: position {} is already an event of the package",
                link.position
            ));
        }
    }

    // Each segment's chain, from its anchor to its signed head.
    for segment in &manifest.segments {
        let mut prev = segment.prev_hash.clone();
        let mut intact = true;
        for position in segment.first_position..=segment.last_position {
            let Some((content, what)) = content_at.get(&position) else {
                problems.push(format!(
                    "chain of scan {}: position {position} is neither in {EVENTS} nor in {CHAIN}",
                    segment.scan_id
                ));
                intact = false;
                break;
            };
            let _ = what;
            prev = chain_hash(&prev, position, content);
        }
        if intact && prev != segment.head_hash {
            problems.push(format!(
                "chain of scan {}: positions {}..={} do not lead to the signed head hash {}: an event in the segment was altered, added or removed",
                segment.scan_id, segment.first_position, segment.last_position, segment.head_hash
            ));
        }
    }

    // The findings and coverage, recomputed with the recorded ruleset.
    let recorded_findings: Option<FindingsFile> = files.get(FINDINGS).and_then(|b| {
        serde_json::from_slice(b)
            .map_err(|e| problems.push(format!("{FINDINGS}: not readable: {e}")))
            .ok()
    });
    let recorded_coverage: Option<CoverageFile> = files.get(COVERAGE).and_then(|b| {
        serde_json::from_slice(b)
            .map_err(|e| problems.push(format!("{COVERAGE}: not readable: {e}")))
            .ok()
    });
    let frameworks: Vec<&'static Framework> = manifest
        .frameworks
        .iter()
        .filter_map(|id| {
            let found = vantage_rules::compliance::framework(id);
            if found.is_none() {
                problems.push(format!("{MANIFEST}: unknown framework {id:?}"));
            }
            found
        })
        .collect();
    let mut finding_count = 0;
    for segment in &manifest.segments {
        let of_scan = events
            .iter()
            .map(|(_, e)| e)
            .filter(|e| e.event.stream == segment.stream);
        let recomputed = match assess_events(of_scan) {
            Ok(recomputed) => recomputed,
            Err(reason) => {
                problems.push(format!("scan {} in {EVENTS}: {reason}", segment.scan_id));
                continue;
            }
        };
        finding_count += recomputed.findings.len();
        if let Some(file) = &recorded_findings {
            match file.scans.iter().find(|s| s.scan_id == segment.scan_id) {
                None => problems.push(format!("{FINDINGS}: scan {} is missing", segment.scan_id)),
                Some(recorded) => compare_findings(recorded, &recomputed, problems),
            }
        }
        if let Some(file) = &recorded_coverage {
            let expected = coverage_of(&frameworks, &recomputed);
            match (
                file.scans.iter().find(|s| s.scan_id == segment.scan_id),
                expected,
            ) {
                (None, _) => {
                    problems.push(format!("{COVERAGE}: scan {} is missing", segment.scan_id))
                }
                (Some(recorded), Ok(expected)) if *recorded != expected => problems.push(format!(
                    "{COVERAGE}: scan {}: the controls differ from those recomputed from {EVENTS}",
                    segment.scan_id
                )),
                (_, Err(reason)) => {
                    problems.push(format!("{COVERAGE}: scan {}: {reason}", segment.scan_id))
                }
                _ => {}
            }
        }
    }
    for (what, count) in [
        (FINDINGS, recorded_findings.map(|f| f.scans.len())),
        (COVERAGE, recorded_coverage.map(|c| c.scans.len())),
    ] {
        if let Some(count) = count
            && count != manifest.segments.len()
        {
            problems.push(format!(
                "{what}: holds {count} scans, the manifest {}",
                manifest.segments.len()
            ));
        }
    }
    (events.len(), finding_count)
}

fn compare_findings(
    recorded: &ScanFindings,
    recomputed: &ScanFindings,
    problems: &mut Vec<String>,
) {
    let scan = &recorded.scan_id;
    if recorded.ruleset_version != recomputed.ruleset_version {
        problems.push(format!(
            "{FINDINGS}: scan {scan}: ruleset {} recorded, {} in {EVENTS}",
            recorded.ruleset_version, recomputed.ruleset_version
        ));
    }
    let by_print = |s: &ScanFindings| -> BTreeMap<String, Finding> {
        s.findings
            .iter()
            .map(|f| (f.fingerprint.clone(), f.clone()))
            .collect()
    };
    let (was, now) = (by_print(recorded), by_print(recomputed));
    for (print, finding) in &was {
        match now.get(print) {
            None => problems.push(format!(
                "{FINDINGS}: scan {scan}: finding {print} ({}) is not what the events give",
                finding.title
            )),
            Some(other) if other != finding => problems.push(format!(
                "{FINDINGS}: scan {scan}: finding {print} ({}) differs from the one recomputed from {EVENTS}",
                finding.title
            )),
            Some(_) => {}
        }
    }
    for (print, finding) in &now {
        if !was.contains_key(print) {
            problems.push(format!(
                "{FINDINGS}: scan {scan}: finding {print} ({}) recomputed from {EVENTS} is missing",
                finding.title
            ));
        }
    }
    if recorded.overall != recomputed.overall
        || recorded.grades != recomputed.grades
        || recorded.counts != recomputed.counts
    {
        problems.push(format!(
            "{FINDINGS}: scan {scan}: the grade, score or counts differ from those recomputed from {EVENTS}"
        ));
    }
}

/// The JSON Schema of each package file that has one, by schema file name (`schemas/package/`):
/// the manifest, a line of `events.jsonl`, a line of `chain.jsonl`, the findings and the coverage.
pub fn schemas() -> Vec<(String, schemars::Schema)> {
    vec![
        (
            "manifest.schema.json".to_owned(),
            schemars::schema_for!(Manifest),
        ),
        (
            "events.jsonl.line.schema.json".to_owned(),
            schemars::schema_for!(EventLine),
        ),
        (
            "chain.jsonl.line.schema.json".to_owned(),
            schemars::schema_for!(ChainLink),
        ),
        (
            "findings.schema.json".to_owned(),
            schemars::schema_for!(FindingsFile),
        ),
        (
            "coverage.schema.json".to_owned(),
            schemars::schema_for!(CoverageFile),
        ),
    ]
}

/// One line of `events.jsonl`: a [`RecordedEvent`] with every envelope field at the top level and
/// the payload as its exact stored text (so its content hash can be recomputed byte for byte).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventLine {
    pub global_position: u64,
    /// The chain hash of the event before this one.
    pub prev_hash: String,
    /// `chain_hash(prev_hash, global_position, content_hash)`.
    pub hash: String,
    pub event_id: uuid::Uuid,
    pub stream: String,
    pub stream_version: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub tenant: String,
    pub actor: String,
    pub request_id: Option<String>,
    pub correlation_id: uuid::Uuid,
    pub causation_id: Option<uuid::Uuid>,
    /// The event's payload exactly as stored (see `schemas/events/`).
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub payload: JsonPayload,
    /// SHA-256 over every field above but the chain fields, length-prefixed (ARCHITECTURE.md,
    /// "Hash chain").
    pub content_hash: String,
}

impl From<&RecordedEvent> for EventLine {
    fn from(recorded: &RecordedEvent) -> Self {
        let event = &recorded.event;
        Self {
            global_position: recorded.global_position,
            prev_hash: recorded.prev_hash.clone(),
            hash: recorded.hash.clone(),
            event_id: event.event_id,
            stream: event.stream.clone(),
            stream_version: event.stream_version,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at,
            tenant: event.metadata.tenant.clone(),
            actor: event.metadata.actor.clone(),
            request_id: event.metadata.request_id.clone(),
            correlation_id: event.metadata.correlation_id,
            causation_id: event.metadata.causation_id,
            payload: event.payload.clone(),
            content_hash: event.content_hash.clone(),
        }
    }
}

impl From<EventLine> for RecordedEvent {
    fn from(line: EventLine) -> Self {
        Self {
            global_position: line.global_position,
            prev_hash: line.prev_hash,
            hash: line.hash,
            event: StoredEvent {
                event_id: line.event_id,
                stream: line.stream,
                stream_version: line.stream_version,
                event_type: line.event_type,
                schema_version: line.schema_version,
                occurred_at: line.occurred_at,
                recorded_at: line.recorded_at,
                metadata: EventMetadata {
                    tenant: line.tenant,
                    actor: line.actor,
                    request_id: line.request_id,
                    correlation_id: line.correlation_id,
                    causation_id: line.causation_id,
                },
                payload: line.payload,
                content_hash: line.content_hash,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use vantage_domain::DomainEvent;
    use vantage_domain::ids::ScanId;
    use vantage_domain::scan::{ScanCompleted, ScanRequested, ScanSpec};
    use vantage_domain::target::{Paths, Ports, Profile, ScanTarget, Trigger, VantagePoint};
    use vantage_domain::tenant::TenantId;
    use vantage_store::GENESIS_HASH;

    /// A completed scan's stream as the log would hold it, at positions 1.. with another stream's
    /// event between each two of its own.
    fn evidence() -> ScanEvidence {
        let scan_id = ScanId(uuid::Uuid::from_u128(7));
        let spec = ScanSpec {
            target: ScanTarget::parse("shop.example").unwrap(),
            ports: Ports::default(),
            paths: Paths::default(),
            profile: Profile::Quick,
            trigger: Trigger::Manual,
            vantage_point: VantagePoint::default(),
            content_sample: None,
            project: Default::default(),
        };
        let scan_events: Vec<ScanEvent> = vec![
            ScanRequested::new(scan_id, TenantId::parse("acme").unwrap(), spec).into(),
            ScanCompleted {
                ruleset_version: "3".to_owned(),
                observation_count: 0,
            }
            .into(),
        ];
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let stored = |stream: &str, version: u64, event_type: &str, payload: String| {
            let mut event = StoredEvent {
                event_id: uuid::Uuid::from_u128(u128::from(version) << 8 | stream.len() as u128),
                stream: stream.to_owned(),
                stream_version: version,
                event_type: event_type.to_owned(),
                schema_version: 1,
                occurred_at: at,
                recorded_at: at,
                metadata: EventMetadata {
                    tenant: "acme".to_owned(),
                    actor: "system".to_owned(),
                    request_id: None,
                    correlation_id: uuid::Uuid::nil(),
                    causation_id: None,
                },
                payload: JsonPayload::from_text(payload).unwrap(),
                content_hash: String::new(),
            };
            event.content_hash = content_hash(&event);
            event
        };
        let mut prev = GENESIS_HASH.to_owned();
        let mut position = 0;
        let mut events = Vec::new();
        let mut links = Vec::new();
        for (i, event) in scan_events.iter().enumerate() {
            if i > 0 {
                position += 1;
                let other = stored("other", i as u64, "Other", "{}".to_owned());
                let hash = chain_hash(&prev, position, &other.content_hash);
                links.push(ChainLink {
                    position,
                    content_hash: other.content_hash,
                    hash: hash.clone(),
                });
                prev = hash;
            }
            position += 1;
            let mut mine = stored(
                &format!("scan-{scan_id}"),
                i as u64 + 1,
                event.event_type(),
                event.payload_json(),
            );
            mine.schema_version = event.schema_version();
            mine.content_hash = content_hash(&mine);
            let hash = chain_hash(&prev, position, &mine.content_hash);
            events.push(RecordedEvent {
                global_position: position,
                prev_hash: prev.clone(),
                hash: hash.clone(),
                event: mine,
            });
            prev = hash;
        }
        ScanEvidence { events, links }
    }

    fn key() -> SigningKey {
        SigningKey::from_seed(&[3; 32]).unwrap()
    }

    fn package() -> Vec<u8> {
        let key = key();
        build(PackageInput {
            tenant: "acme".to_owned(),
            subject: Subject::Scan {
                scan_id: uuid::Uuid::from_u128(7).to_string(),
            },
            frameworks: frameworks(None).unwrap(),
            scans: vec![evidence()],
            report_html: "<!DOCTYPE html><title>r</title>".to_owned(),
            created_at: Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap(),
            key: &key,
        })
        .unwrap()
    }

    fn files(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut tar = tar::Archive::new(GzDecoder::new(archive));
        tar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mut bytes = Vec::new();
                e.read_to_end(&mut bytes).unwrap();
                (name, bytes)
            })
            .collect()
    }

    fn repack(files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut archive = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (name, bytes) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            archive
                .append_data(&mut header, name, bytes.as_slice())
                .unwrap();
        }
        archive.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn a_built_package_verifies_and_is_the_same_bytes_every_time() {
        let archive = package();
        assert_eq!(archive, package(), "deterministic");
        let verified = verify(&archive, Some(&key().public_key())).unwrap();
        assert_eq!(verified.events, 2);
        assert_eq!(verified.manifest.segments[0].first_position, 1);
        assert_eq!(verified.manifest.segments[0].last_position, 3);
        assert_eq!(verified.manifest.frameworks.len(), FRAMEWORKS_COUNT);
    }

    const FRAMEWORKS_COUNT: usize = vantage_rules::compliance::FRAMEWORKS.len();

    #[test]
    fn a_missing_chain_link_is_named_by_position() {
        let mut files = files(&package());
        let chain = files.iter_mut().find(|(n, _)| n == CHAIN).unwrap();
        chain.1.clear();
        // Re-sign so that only the chain check can catch it.
        let mut manifest: Manifest =
            serde_json::from_slice(&files.iter().find(|(n, _)| n == MANIFEST).unwrap().1).unwrap();
        for entry in &mut manifest.files {
            if entry.path == CHAIN {
                entry.sha256 = sha256_hex(b"");
                entry.bytes = 0;
            }
        }
        let text = pretty(&manifest);
        for (name, bytes) in &mut files {
            if name == SIGNATURE {
                *bytes = key().sign(&text);
            }
            if name == MANIFEST {
                *bytes = text.clone();
            }
        }
        let problems = verify(&repack(&files), None).unwrap_err().problems;
        assert!(
            problems.iter().any(|p| p.contains("position 2 is neither")),
            "{problems:?}"
        );
    }

    #[test]
    fn an_archive_with_a_foreign_file_is_refused() {
        let mut files = files(&package());
        files.push(("notes.txt".to_owned(), b"x".to_vec()));
        let problems = verify(&repack(&files), None).unwrap_err().problems;
        assert!(problems[0].contains("not a file of a compliance package"));
        assert!(verify(b"not an archive", None).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Changing any byte of any file of a package is caught, and names that file.
        #[test]
        fn any_changed_byte_of_any_file_fails_naming_the_file(
            which in 0usize..8, at in any::<prop::sample::Index>(), delta in 1u8..=255,
        ) {
            let mut files = files(&package());
            let (name, bytes) = &mut files[which % 8];
            let name = name.clone();
            if bytes.is_empty() {
                bytes.push(delta);
            } else {
                let i = at.index(bytes.len());
                bytes[i] = bytes[i].wrapping_add(delta);
            }
            let problems = verify(&repack(&files), Some(&key().public_key()))
                .expect_err("a changed package must not verify")
                .problems;
            prop_assert!(problems[0].contains(&name), "{name}: {problems:?}");
        }

        /// Damage to the compressed archive itself is an error, never a panic. (The gzip header's
        /// modification time, flags and OS bytes describe the archive, not its content, so a change
        /// there is no damage: bytes are changed after the 10-byte header.)
        #[test]
        fn damaged_archives_are_refused_without_panicking(
            at in any::<prop::sample::Index>(), delta in 1u8..=255, cut in any::<bool>(),
        ) {
            const GZIP_HEADER: usize = 10;
            let mut archive = package();
            if cut {
                let i = at.index(archive.len());
                archive.truncate(i);
            } else {
                let i = GZIP_HEADER + at.index(archive.len() - GZIP_HEADER);
                archive[i] = archive[i].wrapping_add(delta);
            }
            prop_assert!(verify(&archive, None).is_err());
        }
    }
}
