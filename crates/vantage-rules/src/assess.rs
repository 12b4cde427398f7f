//! The verdict of a scan under one ruleset — its findings, its grades, and its overall score and
//! grade — from one function, [`assess`], which every consumer calls: the scans projector, `vantage
//! scan`, and the API when it regrades stored observations under another ruleset. How the overall
//! grade is reached is part of the verdict, so it is versioned with the ruleset like the rules.

use serde::{Deserialize, Serialize};

use crate::finding::{Finding, Severity, SeverityCounts};
use crate::grade::{self, ScanGrades, letter};
use crate::site::SiteView;
use crate::{ScanFacts, UnknownRuleset, evaluate};

/// The overall method of rulesets 0–2: 100 minus the findings' penalty, read off the grade chart.
pub const PENALTY_METHOD: &str = "findings-penalty-1";

/// The overall method of ruleset 3: the findings' score, capped by every component (no HTTPS, the
/// headers grade, the TLS grade, and a certificate that is not trusted or does not match).
pub const CAPPED_METHOD: &str = "capped-1";

/// Grades from best to worst; a cap is a position in this list.
const LADDER: [&str; 13] = [
    "A+", "A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "D-", "F",
];

/// The highest score that reads as `grade` on the chart.
fn top_of(grade: &str) -> u32 {
    match grade {
        "A+" => 100,
        "A" => 99,
        "A-" => 89,
        "B+" => 84,
        "B" => 79,
        "B-" => 69,
        "C+" => 64,
        "C" => 59,
        "C-" => 49,
        "D+" => 44,
        "D" => 39,
        "D-" => 29,
        _ => 24,
    }
}

fn rank(grade: &str) -> usize {
    LADDER
        .iter()
        .position(|g| *g == grade)
        .unwrap_or(LADDER.len() - 1)
}

/// Ruleset 3's overall verdict (see `docs/scoring.md`).
fn capped(
    site: &SiteView<'_>,
    findings: &[Finding],
    counts: &SeverityCounts,
    grades: &ScanGrades,
) -> Overall {
    let mut overall = Overall {
        method: CAPPED_METHOD.to_owned(),
        score: None,
        grade: None,
        caps: Vec::new(),
        unreachable: None,
    };
    if site.unreachable() {
        overall.unreachable =
            Some("no scanned port accepted a connection and no page could be fetched".into());
        return overall;
    }
    let findings_score = counts.score();
    let mut grade = letter(findings_score);
    // A cap that would not lower the findings' own grade is not one.
    let own = rank(grade);
    let mut cap = |limit: &'static str, why: String, caps: &mut Vec<String>| {
        if rank(limit) > own {
            caps.push(why);
            if rank(limit) > rank(grade) {
                grade = limit;
            }
        }
    };
    if site.serves_web() && !site.serves_https() {
        cap(
            "F",
            "the site serves no HTTPS at all: F".into(),
            &mut overall.caps,
        );
    }
    let worst = |severity: Severity| findings.iter().find(|f| f.severity == severity);
    if let Some(critical) = worst(Severity::Critical) {
        cap(
            "F",
            format!("a critical finding ({}): F", critical.rule_id),
            &mut overall.caps,
        );
    } else if let Some(high) = worst(Severity::High) {
        cap(
            "C",
            format!("a high-severity finding ({}): at most C", high.rule_id),
            &mut overall.caps,
        );
    }
    if let Some(headers) = &grades.headers {
        let limit = LADDER[rank(&headers.grade)];
        cap(
            limit,
            format!("the headers grade is {limit}"),
            &mut overall.caps,
        );
    }
    let mut untrusted = None;
    if let Some(tls) = &grades.tls {
        match tls.grade.as_str() {
            "T" | "M" => untrusted = Some(tls.grade.clone()),
            other => {
                let limit = LADDER[rank(other)];
                cap(
                    limit,
                    format!("the TLS grade is {limit}"),
                    &mut overall.caps,
                );
            }
        }
    }
    let mut score = findings_score.min(top_of(grade));
    if let Some(trust) = untrusted {
        let why = if trust == "T" {
            "the certificate is not trusted (expired, or not from a trusted authority)"
        } else {
            "the certificate does not cover the host name"
        };
        overall
            .caps
            .push(format!("{why}: {trust} (it would be {grade} otherwise)"));
        score = score.min(top_of("F"));
        overall.grade = Some(trust);
    } else {
        overall.grade = Some(grade.to_owned());
    }
    overall.score = Some(score);
    overall
}

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
    let (grades, overall) = if matches!(ruleset, "3" | "4" | "5" | "6") {
        let method = if ruleset == "3" {
            grade::TlsMethod::Caps1
        } else {
            grade::TlsMethod::Caps2
        };
        let site = SiteView::of(facts);
        let headers = crate::observatory::grade(&site);
        let hsts_sufficient = headers.as_ref().is_some_and(|g| {
            g.tests
                .iter()
                .any(|t| t.result == "hsts-implemented-max-age-at-least-six-months")
        });
        let tls = site
            .tls
            .iter()
            .find_map(|seen| grade::grade_tls_with(seen, hsts_sufficient, method));
        let grades = ScanGrades { headers, tls };
        let overall = capped(&site, &findings, &counts, &grades);
        (grades, overall)
    } else {
        let score = counts.score();
        let overall = Overall {
            method: PENALTY_METHOD.to_owned(),
            score: Some(score),
            grade: Some(letter(score).to_owned()),
            caps: Vec::new(),
            unreachable: None,
        };
        (grade::grade_scan(facts.observations), overall)
    };
    Ok(Assessment {
        ruleset: ruleset.to_owned(),
        findings,
        counts,
        grades,
        overall,
    })
}
