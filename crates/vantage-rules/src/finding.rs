//! The finding model of SPEC §6 and how priority and fingerprints are computed.
//!
//! **Priority.** `impact` (1–5, how bad if exploited) and `effort` (1–5, how much work the fix is) are
//! set per rule. `risk` = severity weight (critical 10, high 7, medium 5, low 2, info 0) × confidence.
//! `score` (0–100) = round(risk × 8 + impact × 4 − effort × 2), clamped: severe, likely, cheap-to-fix
//! findings first.
//!
//! **Fingerprint.** SHA-256 over tenant, target, rule id and asset (length-prefixed), hex: stable
//! across scans of the same target, so triage decisions carry over.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Evidence is capped to this many bytes of JSON.
pub const MAX_EVIDENCE_BYTES: usize = 1024;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 5] = [
        Self::Critical,
        Self::High,
        Self::Medium,
        Self::Low,
        Self::Info,
    ];

    /// The wire name (`critical`, `high`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
            Self::Info => "info",
        }
    }

    /// The severity with this wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn weight(self) -> f64 {
        match self {
            Self::Critical => 10.0,
            Self::High => 7.0,
            Self::Medium => 5.0,
            Self::Low => 2.0,
            Self::Info => 0.0,
        }
    }
}

/// Counts of findings by severity.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct SeverityCounts {
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
    pub info: u32,
}

impl SeverityCounts {
    pub fn of<'a>(severities: impl IntoIterator<Item = &'a Severity>) -> Self {
        let mut counts = Self::default();
        for severity in severities {
            counts.add(*severity, 1);
        }
        counts
    }

    /// Adds `delta` (may be negative) findings of `severity`, never going below zero.
    pub fn add(&mut self, severity: Severity, delta: i64) {
        let slot = match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Info => &mut self.info,
        };
        *slot = u32::try_from((i64::from(*slot) + delta).max(0)).unwrap_or(u32::MAX);
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Self) {
        self.critical += other.critical;
        self.high += other.high;
        self.medium += other.medium;
        self.low += other.low;
        self.info += other.info;
    }

    pub fn total(&self) -> u32 {
        self.critical + self.high + self.medium + self.low + self.info
    }

    /// The risk penalty of these findings: 25 per critical, 10 per high, 4 per medium, 1 per low,
    /// capped at 95 (so a score never reaches 0: there is always something left to fix first).
    pub fn penalty(&self) -> u32 {
        (self.critical * 25 + self.high * 10 + self.medium * 4 + self.low).min(95)
    }

    /// 100 minus the penalty.
    pub fn score(&self) -> u32 {
        100 - self.penalty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Tls,
    Headers,
    Cookies,
    Dns,
    Exposure,
    Email,
    Availability,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Priority {
    pub impact: u8,
    pub effort: u8,
    pub risk: f64,
    pub score: u8,
}

/// The priority of a finding (see the module documentation).
pub fn priority(severity: Severity, confidence: f64, impact: u8, effort: u8) -> Priority {
    let risk = (severity.weight() * confidence * 100.0).round() / 100.0;
    let score = (risk * 8.0 + f64::from(impact) * 4.0 - f64::from(effort) * 2.0)
        .round()
        .clamp(0.0, 100.0);
    Priority {
        impact,
        effort,
        risk,
        // Clamped to 0..=100 above.
        score: score as u8,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecommendedFix {
    pub summary: String,
    pub steps: Vec<String>,
    pub estimated_minutes: u32,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Finding {
    pub rule_id: String,
    pub rule_version: u32,
    pub fingerprint: String,
    pub title: String,
    pub category: Category,
    pub severity: Severity,
    pub confidence: f64,
    pub priority: Priority,
    pub asset: String,
    /// What was seen, public-safe, at most [`MAX_EVIDENCE_BYTES`] of JSON.
    pub evidence: serde_json::Value,
    pub recommended_fix: RecommendedFix,
    pub references: Vec<String>,
    /// Control ids, e.g. `OWASP-ASVS-4.0.3:V14.4.3`.
    pub compliance: Vec<String>,
}

/// The order findings are shown in: highest priority score first, then by rule and asset.
pub fn by_priority(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    b.priority
        .score
        .cmp(&a.priority.score)
        .then_with(|| a.rule_id.cmp(&b.rule_id))
        .then_with(|| a.asset.cmp(&b.asset))
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// The stable identity of "this rule on this asset of this target of this tenant".
pub fn fingerprint(tenant: &str, target: &str, rule_id: &str, asset: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [tenant, target, rule_id, asset] {
        field(&mut hasher, part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Caps evidence: if its JSON exceeds [`MAX_EVIDENCE_BYTES`], keep a truncated summary string.
pub(crate) fn capped(evidence: serde_json::Value) -> serde_json::Value {
    let text = evidence.to_string();
    if text.len() <= MAX_EVIDENCE_BYTES {
        return evidence;
    }
    let mut cut = MAX_EVIDENCE_BYTES - 64;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    serde_json::json!({ "truncated": true, "summary": &text[..cut] })
}
