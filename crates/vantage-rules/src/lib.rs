//! Rules: pure, deterministic, versioned functions from a scan's observations to findings.
//!
//! No I/O, no clock, no randomness: the same observations under the same ruleset version always give
//! byte-identical findings, in the same order, which is what lets the findings projection be rebuilt
//! from the log. A released rule never changes behaviour; a change is a new rule version inside a new
//! ruleset version ([`RULESET_VERSION`]), and old versions stay available for replay.

pub mod alt_svc;
pub mod analysis;
mod assess;
pub mod compliance;
mod finding;
pub mod grade;
mod observatory;
mod site;
mod v1;
mod v2;
mod v3;
mod v4;
mod v5;
mod v6;

pub use assess::{Assessment, CAPPED_METHOD, Overall, PENALTY_METHOD, assess};
pub use finding::{
    Category, Finding, MAX_EVIDENCE_BYTES, Priority, RecommendedFix, Severity, SeverityCounts,
    by_priority, fingerprint, priority,
};
pub use observatory::OBSERVATORY_ALGORITHM;

use vantage_domain::scan::ProbeObserved;
use vantage_observations::{
    DaneObservation, DnsObservation, DnssecObservation, DualStackObservation, ExposureObservation,
    HstsPreloadObservation, HttpObservation, MtaStsObservation, Observation, SmtpTlsObservation,
    TcpObservation, TlsObservation,
};

/// The ruleset new scans are completed with. Every released ruleset stays available to `evaluate`.
pub const RULESET_VERSION: &str = "6";

/// Every ruleset this build can evaluate, oldest first.
pub const RULESETS: [&str; 7] = ["0", "1", "2", "3", "4", "5", "6"];

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

impl<'a> ScanFacts<'a> {
    /// The observations `pick` selects, with their assets, in a stable order: by asset, ties in log
    /// order. (Rules emit findings in this order, and the first of two findings with one fingerprint
    /// is the one kept, so the order is part of a ruleset's behaviour.)
    fn observed<T>(
        &self,
        pick: impl Fn(&'a Observation) -> Option<&'a T>,
    ) -> Vec<(&'a str, &'a T)> {
        let mut seen: Vec<(&str, &T)> = self
            .observations
            .iter()
            .filter_map(|o| pick(&o.observation).map(|data| (o.asset.as_str(), data)))
            .collect();
        seen.sort_by(|a, b| a.0.cmp(b.0));
        seen
    }

    pub(crate) fn http(&self) -> Vec<(&'a str, &'a HttpObservation)> {
        self.observed(|o| match o {
            Observation::Http(data) => Some(data.as_ref()),
            _ => None,
        })
    }

    pub(crate) fn dns(&self) -> Vec<(&'a str, &'a DnsObservation)> {
        self.observed(|o| match o {
            Observation::Dns(data) => Some(data),
            _ => None,
        })
    }

    pub(crate) fn mta_sts(&self) -> Vec<(&'a str, &'a MtaStsObservation)> {
        self.observed(|o| match o {
            Observation::MtaSts(data) => Some(data),
            _ => None,
        })
    }

    pub(crate) fn tcp(&self) -> Vec<(&'a str, &'a TcpObservation)> {
        self.observed(|o| match o {
            Observation::Tcp(data) => Some(data),
            _ => None,
        })
    }

    pub(crate) fn tls(&self) -> Vec<(&'a str, &'a TlsObservation)> {
        self.observed(|o| match o {
            Observation::Tls(data) => Some(data),
            _ => None,
        })
    }

    pub(crate) fn hsts_preload(&self) -> Vec<(&'a str, &'a HstsPreloadObservation)> {
        self.observed(|o| match o {
            Observation::HstsPreload(data) => Some(data),
            _ => None,
        })
    }

    pub(crate) fn dnssec(&self) -> Vec<(&'a str, &'a DnssecObservation)> {
        self.observed(|o| match o {
            Observation::Dnssec(data) => Some(data),
            _ => None,
        })
    }

    pub(crate) fn dane(&self) -> Vec<(&'a str, &'a DaneObservation)> {
        self.observed(|o| match o {
            Observation::Dane(data) => Some(data),
            _ => None,
        })
    }

    pub(crate) fn smtp_tls(&self) -> Vec<(&'a str, &'a SmtpTlsObservation)> {
        self.observed(|o| match o {
            Observation::SmtpTls(data) => Some(data),
            _ => None,
        })
    }

    pub(crate) fn dual_stack(&self) -> Vec<(&'a str, &'a DualStackObservation)> {
        self.observed(|o| match o {
            Observation::DualStack(data) => Some(data.as_ref()),
            _ => None,
        })
    }

    pub(crate) fn exposure(&self) -> Vec<(&'a str, &'a ExposureObservation)> {
        self.observed(|o| match o {
            Observation::Exposure(data) => Some(data),
            _ => None,
        })
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
    /// What to do about a finding of this rule, its steps and references (help text for reports).
    pub fix: &'static str,
    pub steps: &'static [&'static str],
    pub references: &'static [&'static str],
}

/// Every rule of `ruleset`, by id.
pub fn rule_catalog(ruleset: &str) -> Result<Vec<RuleInfo>, UnknownRuleset> {
    let rules: Vec<&v1::Rule> = match ruleset {
        "0" => Vec::new(),
        "1" => v1::RULES.to_vec(),
        "2" => v1::RULES.iter().chain(v2::RULES).copied().collect(),
        "3" => v3::RULES.to_vec(),
        "4" => v3::RULES.iter().chain(v4::RULES).copied().collect(),
        "5" => v3::RULES
            .iter()
            .chain(v4::RULES)
            .chain(v5::RULES)
            .copied()
            .collect(),
        "6" => v3::RULES
            .iter()
            .chain(v4::RULES)
            .chain(v5::RULES)
            .chain(v6::RULES)
            .copied()
            .collect(),
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
            fix: r.fix,
            steps: r.steps,
            references: r.references,
        })
        .collect();
    catalog.sort_by_key(|r| r.id);
    Ok(catalog)
}

/// Evaluates `ruleset`'s rules over a scan. Findings are sorted by fingerprint and deduplicated.
pub(crate) fn evaluate(
    ruleset: &str,
    facts: &ScanFacts<'_>,
) -> Result<Vec<Finding>, UnknownRuleset> {
    let mut findings = match ruleset {
        // "0": scans completed before any rule was released have no findings.
        "0" => Vec::new(),
        "1" => v1::evaluate(facts),
        "2" => v2::evaluate(facts),
        "3" => v3::evaluate(facts),
        "4" => v4::evaluate(facts),
        "5" => v5::evaluate(facts),
        "6" => v6::evaluate(facts),
        other => return Err(UnknownRuleset(other.to_owned())),
    };
    findings.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    findings.dedup_by(|a, b| a.fingerprint == b.fingerprint);
    Ok(findings)
}

#[cfg(test)]
mod tests;
