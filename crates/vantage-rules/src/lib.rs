//! Rules: pure, deterministic, versioned functions from a scan's observations to findings.
//!
//! No I/O, no clock, no randomness: the same observations under the same ruleset version always give
//! byte-identical findings, in the same order, which is what lets the findings projection be rebuilt
//! from the log. A released rule never changes behaviour; a change is a new rule version inside a new
//! ruleset version ([`RULESET_VERSION`]), and old versions stay available for replay.

pub mod compliance;
mod finding;
pub mod grade;
mod v1;
mod v2;

pub use finding::{
    Category, Finding, MAX_EVIDENCE_BYTES, Priority, RecommendedFix, Severity, fingerprint,
    priority,
};

use serde_json::Value;
use vantage_domain::scan::ProbeObserved;

/// The ruleset new scans are completed with. Every released ruleset stays available to `evaluate`.
pub const RULESET_VERSION: &str = "2";

/// The error for a ruleset version this build does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRuleset(pub String);

impl std::fmt::Display for UnknownRuleset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ruleset {} is not known to this build", self.0)
    }
}

impl std::error::Error for UnknownRuleset {}

/// What the rules see of a scan: who owns it, what was targeted, and what was observed.
#[derive(Debug, Clone, Copy)]
pub struct ScanFacts<'a> {
    pub tenant: &'a str,
    pub target: &'a str,
    pub observations: &'a [ProbeObserved],
}

impl ScanFacts<'_> {
    /// Observations of one probe, as JSON, in a stable order (by asset).
    pub(crate) fn of(&self, probe: vantage_domain::scan::ProbeKind) -> Vec<(&str, &Value)> {
        let mut seen: Vec<(&str, &Value)> = self
            .observations
            .iter()
            .filter(|o| o.probe == probe)
            .map(|o| (o.asset.as_str(), &o.data))
            .collect();
        seen.sort_by(|a, b| a.0.cmp(b.0));
        seen
    }
}

/// What a released rule is, apart from where it fires.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInfo {
    pub id: &'static str,
    pub version: u32,
    pub title: &'static str,
    pub category: Category,
    pub severity: Severity,
    pub compliance: Vec<&'static str>,
}

/// Every rule of `ruleset`, by id.
pub fn rule_catalog(ruleset: &str) -> Result<Vec<RuleInfo>, UnknownRuleset> {
    let rules: Vec<&v1::Rule> = match ruleset {
        "0" => Vec::new(),
        "1" => v1::RULES.to_vec(),
        "2" => v1::RULES.iter().chain(v2::RULES).copied().collect(),
        other => return Err(UnknownRuleset(other.to_owned())),
    };
    let mut catalog: Vec<RuleInfo> = rules
        .into_iter()
        .map(|r| RuleInfo {
            id: r.id,
            version: r.version,
            title: r.title,
            category: r.category,
            severity: r.severity,
            compliance: r.compliance.to_vec(),
        })
        .collect();
    catalog.sort_by_key(|r| r.id);
    Ok(catalog)
}

/// Evaluates `ruleset` over a scan. Findings are sorted by fingerprint and deduplicated.
pub fn evaluate(ruleset: &str, facts: &ScanFacts<'_>) -> Result<Vec<Finding>, UnknownRuleset> {
    let mut findings = match ruleset {
        // "0": scans completed before any rule was released have no findings.
        "0" => Vec::new(),
        "1" => v1::evaluate(facts),
        "2" => v2::evaluate(facts),
        other => return Err(UnknownRuleset(other.to_owned())),
    };
    findings.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    findings.dedup_by(|a, b| a.fingerprint == b.fingerprint);
    Ok(findings)
}

#[cfg(test)]
mod tests;
