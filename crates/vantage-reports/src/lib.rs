//! What Vantage hands to people and tools outside it, as pure functions of typed data: the scan
//! report in five formats (HTML, PDF, JSON, SARIF 2.1.0, JUnit XML), the technology inventory as
//! CycloneDX 1.5 and SPDX 2.3, the signed compliance package and its offline verification, signed
//! checkpoints of the log's head, and the trust badge.
//!
//! Nothing here reads a database, the network or the clock: callers gather a [`Report`] (the API from
//! the read models, `vantage scan` from its own run) and pass the time in. The same input always
//! renders the same bytes, which is what lets a package's `report.html` be hashed and signed.

pub mod badge;
pub mod checkpoint;
pub mod html;
pub mod inventory;
pub mod junit;
pub mod package;
pub mod pdf;
pub mod sarif;
pub mod signing;
mod svg;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vantage_domain::scan::ScanStatus;
use vantage_domain::target::Trigger;
use vantage_domain::triage::TriageState;
use vantage_rules::analysis::Analysis;
use vantage_rules::grade::ScanGrades;
use vantage_rules::{Finding, Overall, Severity, SeverityCounts};

/// The product name and version every generated document names as its producer.
pub const GENERATOR: &str = "Vantage";
pub const GENERATOR_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Where reports point for the product's documentation.
pub const INFORMATION_URI: &str = "https://example.invalid/vantage";

/// One scan as every report format presents it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    pub scan_id: String,
    pub target: String,
    pub domain: String,
    pub status: ScanStatus,
    pub trigger: Trigger,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why the scan failed, when it did.
    pub failure_reason: Option<String>,
    /// The ruleset of the findings (completed scans).
    pub ruleset_version: Option<String>,
    pub overall: Option<Overall>,
    pub grades: Option<ScanGrades>,
    /// What the scan saw per port and path (completed scans).
    pub analysis: Option<Analysis>,
    pub counts: SeverityCounts,
    /// Highest priority first ([`vantage_rules::by_priority`]).
    pub findings: Vec<ReportFinding>,
    /// Against the previous completed scan of the target.
    pub diff: Option<ReportDiff>,
    /// The domain's completed scans up to this one, oldest first.
    pub trend: Vec<TrendPoint>,
    pub generated_at: DateTime<Utc>,
}

/// A finding with what people decided about it and how it compares with the previous scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReportFinding {
    #[serde(flatten)]
    pub finding: Finding,
    pub triage: TriageState,
    /// `new`, `regression` or `unchanged` against the previous scan (absent without one).
    pub change: Option<Change>,
}

/// How a finding compares with the previous scan of its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    New,
    Regression,
    Unchanged,
}

/// A scan against the previous completed scan of its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReportDiff {
    pub previous_scan_id: Option<String>,
    pub new: u32,
    pub regressions: u32,
    pub unchanged: u32,
    /// Findings of the previous scan that this one no longer has.
    pub fixed: Vec<FixedFinding>,
}

/// A finding the previous scan had and this one does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FixedFinding {
    pub fingerprint: String,
    pub title: String,
    pub severity: Severity,
    pub asset: String,
}

/// One completed scan of the domain, for the trend chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrendPoint {
    pub scan_id: String,
    pub completed_at: DateTime<Utc>,
    /// 0–100; absent when the target could not be reached.
    pub score: Option<u32>,
    pub grade: Option<String>,
}

impl Report {
    /// The overall grade, when the scan reached its target.
    pub fn grade(&self) -> Option<&str> {
        self.overall.as_ref().and_then(|o| o.grade.as_deref())
    }

    /// The findings that fail a release at `threshold` (see [`blocks_release`]).
    pub fn blocking(&self, threshold: Severity) -> impl Iterator<Item = &ReportFinding> {
        self.findings
            .iter()
            .filter(move |f| blocks_release(&f.finding, f.triage, threshold))
    }
}

/// Whether a finding fails a release gate at `threshold`: it is at least that severe, and nobody
/// triaged it away (false positive, accepted risk or fixed).
pub fn blocks_release(finding: &Finding, triage: TriageState, threshold: Severity) -> bool {
    finding.severity >= threshold && matches!(triage, TriageState::Open | TriageState::Acknowledged)
}

/// The wire name of a unit enum value, as it serialises (`post_deploy`, `headers`, …).
pub(crate) fn wire(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A port's negotiated TLS version and application protocol, as reports show them (`TLSv1_3, h2`).
pub(crate) fn negotiated(tls: &vantage_rules::analysis::TlsSummary) -> Option<String> {
    let named: Vec<&str> = [tls.protocol.as_deref(), tls.alpn.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    (!named.is_empty()).then(|| named.join(", "))
}

/// A path's alternative services as reports list them (`h3 on port 443; h2 at alt:8443`).
pub(crate) fn listed(services: &[vantage_rules::alt_svc::AlternativeService]) -> String {
    services
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Escapes text for HTML and XML element content and attribute values.
pub(crate) fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 allows no other control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A report with a little of everything, for the format tests.
    use super::*;
    use vantage_rules::{Category, Priority, RecommendedFix};

    pub fn finding(rule: &str, severity: Severity, score: u8, title: &str) -> Finding {
        Finding {
            rule_id: rule.to_owned(),
            rule_version: 1,
            fingerprint: format!("{rule:0>64}").chars().rev().take(64).collect(),
            title: title.to_owned(),
            category: Category::Headers,
            severity,
            confidence: 0.9,
            priority: Priority {
                impact: 3,
                effort: 2,
                risk: 6.3,
                score,
            },
            asset: "https://shop.example/".to_owned(),
            evidence: serde_json::json!({ "header": "x-frame-options", "value": null }),
            recommended_fix: RecommendedFix {
                summary: "Send the header.".to_owned(),
                steps: vec!["Add it to the server <config> & reload.".to_owned()],
                estimated_minutes: 10,
            },
            references: vec!["https://owasp.org/".to_owned()],
            compliance: vec!["OWASP-ASVS-4.0.3:V14.4.7".to_owned()],
        }
    }

    pub fn report() -> Report {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        Report {
            scan_id: "0190f5d2-0000-7000-8000-000000000001".to_owned(),
            target: "https://shop.example/".to_owned(),
            domain: "shop.example".to_owned(),
            status: ScanStatus::Completed,
            trigger: Trigger::PostDeploy,
            created_at: at("2026-12-01T10:00:00Z"),
            finished_at: Some(at("2026-12-01T10:01:00Z")),
            failure_reason: None,
            ruleset_version: Some("3".to_owned()),
            overall: Some(Overall {
                method: "capped-1".to_owned(),
                score: Some(62),
                grade: Some("C".to_owned()),
                caps: vec!["no HSTS".to_owned()],
                unreachable: None,
            }),
            grades: None,
            analysis: Some(vantage_rules::analysis::analyze(&[])),
            counts: SeverityCounts {
                high: 1,
                medium: 1,
                ..SeverityCounts::default()
            },
            findings: vec![
                ReportFinding {
                    finding: finding("http.csp-missing", Severity::High, 70, "No CSP <script>"),
                    triage: TriageState::Open,
                    change: Some(Change::New),
                },
                ReportFinding {
                    finding: finding("http.xfo", Severity::Medium, 40, "Framing allowed"),
                    triage: TriageState::AcceptedRisk,
                    change: Some(Change::Unchanged),
                },
            ],
            diff: Some(ReportDiff {
                previous_scan_id: Some("0190f5d2-0000-7000-8000-000000000000".to_owned()),
                new: 1,
                regressions: 0,
                unchanged: 1,
                fixed: vec![FixedFinding {
                    fingerprint: "ab".repeat(32),
                    title: "Cookie without Secure".to_owned(),
                    severity: Severity::Low,
                    asset: "https://shop.example/".to_owned(),
                }],
            }),
            trend: vec![
                TrendPoint {
                    scan_id: "0190f5d2-0000-7000-8000-000000000000".to_owned(),
                    completed_at: at("2026-11-30T10:00:00Z"),
                    score: Some(55),
                    grade: Some("D".to_owned()),
                },
                TrendPoint {
                    scan_id: "0190f5d2-0000-7000-8000-000000000001".to_owned(),
                    completed_at: at("2026-12-01T10:01:00Z"),
                    score: Some(62),
                    grade: Some("C".to_owned()),
                },
            ],
            generated_at: at("2026-12-02T08:00:00Z"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triaged_away_findings_do_not_block() {
        let report = fixtures::report();
        let high: Vec<_> = report.blocking(Severity::High).collect();
        assert_eq!(high.len(), 1);
        // The medium finding is at the threshold but its risk was accepted.
        assert_eq!(report.blocking(Severity::Medium).count(), 1);
        assert_eq!(report.blocking(Severity::Critical).count(), 0);
    }

    #[test]
    fn markup_escaping_covers_every_special_character() {
        assert_eq!(
            escape_markup("<a href=\"x\">'&'</a>\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\u{fffd}"
        );
    }
}
