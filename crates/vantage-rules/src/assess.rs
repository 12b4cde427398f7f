//! The verdict of a scan under one ruleset — its findings, its grades, and its overall score and
//! grade — from one function, [`assess`], which every consumer calls: the scans projector, `vantage
//! scan`, and the API when it regrades stored observations under another ruleset. How the overall
//! grade is reached is part of the verdict, so it is versioned with the ruleset like the rules.

use serde::{Deserialize, Serialize};

use crate::finding::{Finding, SeverityCounts};
use crate::grade::{self, ScanGrades, letter};
use crate::{ScanFacts, UnknownRuleset, evaluate};

/// The overall method of rulesets 0–2: 100 minus the findings' penalty, read off the grade chart.
pub const PENALTY_METHOD: &str = "findings-penalty-1";

/// A scan's overall score and grade, and how they were reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Overall {
    /// The versioned method that produced this verdict.
    pub method: String,
    /// 0–100; absent when the target could not be reached.
    pub score: Option<u32>,
    /// A+ … F, or T / M (a certificate that is not trusted / does not match the name); absent when
    /// the target could not be reached.
    pub grade: Option<String>,
    /// Why the grade is lower than the score alone would make it, in the order they applied.
    pub caps: Vec<String>,
    /// Why there is no grade: nothing of the target could be reached.
    pub unreachable: Option<String>,
}

/// Everything one ruleset concludes about one scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// The ruleset that produced this assessment.
    pub ruleset: String,
    /// Sorted by fingerprint, one per fingerprint.
    pub findings: Vec<Finding>,
    pub counts: SeverityCounts,
    pub grades: ScanGrades,
    pub overall: Overall,
}

/// Assesses a scan's observations under `ruleset`.
pub fn assess(ruleset: &str, facts: &ScanFacts<'_>) -> Result<Assessment, UnknownRuleset> {
    let findings = evaluate(ruleset, facts)?;
    let counts = SeverityCounts::of(findings.iter().map(|f| &f.severity));
    let grades = grade::grade_scan(facts.observations);
    let score = counts.score();
    let overall = Overall {
        method: PENALTY_METHOD.to_owned(),
        score: Some(score),
        grade: Some(letter(score).to_owned()),
        caps: Vec::new(),
        unreachable: None,
    };
    Ok(Assessment {
        ruleset: ruleset.to_owned(),
        findings,
        counts,
        grades,
        overall,
    })
}
