//! SARIF 2.1.0 (OASIS), the format code-scanning tools load: one run, the ruleset's rules with their
//! help text as `tool.driver.rules`, one result per finding. A result's location is the asset (a
//! URL or `host:port`) as the artifact; `partialFingerprints` carries the finding's fingerprint, which
//! is stable across scans of the target, so a tool tracks one finding over time. Levels: critical and
//! high → `error`, medium → `warning`, low and info → `note`; `security-severity` (GitHub's 0–10
//! scale) rides in the properties.

use serde::Serialize;
use vantage_rules::{RuleInfo, Severity};

use crate::{GENERATOR, GENERATOR_VERSION, INFORMATION_URI, Report, html::triage_label};

/// The schema document a SARIF file names.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The `partialFingerprints` key of a finding's fingerprint.
pub const FINGERPRINT_KEY: &str = "vantageFingerprint/v1";

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool<'a>,
    automation_details: AutomationDetails,
    invocations: Vec<Invocation>,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'static str,
    version: &'static str,
    semantic_version: &'static str,
    information_uri: &'static str,
    rules: Vec<Rule<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule<'a> {
    id: &'a str,
    name: String,
    short_description: Text,
    full_description: Text,
    help: Help,
    #[serde(skip_serializing_if = "Option::is_none")]
    help_uri: Option<&'a str>,
    default_configuration: Configuration,
    properties: RuleProperties,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
struct Help {
    text: String,
    markdown: String,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct RuleProperties {
    tags: Vec<String>,
    #[serde(rename = "security-severity")]
    security_severity: String,
    precision: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AutomationDetails {
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation {
    execution_successful: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time_utc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time_utc: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_index: Option<usize>,
    level: &'static str,
    message: Text,
    locations: Vec<Location<'a>>,
    partial_fingerprints: serde_json::Map<String, serde_json::Value>,
    properties: ResultProperties<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location<'a> {
    physical_location: PhysicalLocation<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation<'a> {
    artifact_location: ArtifactLocation<'a>,
}

#[derive(Serialize)]
struct ArtifactLocation<'a> {
    uri: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultProperties<'a> {
    severity: &'static str,
    priority: u8,
    confidence: f64,
    triage: &'static str,
    evidence: &'a serde_json::Value,
    compliance: &'a [String],
}

/// SARIF's level for a severity.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` (0.0–10.0) for a severity.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "7.5",
        Severity::Medium => "5.0",
        Severity::Low => "2.0",
        Severity::Info => "0.0",
    }
}

/// `http.csp-missing` → `HttpCspMissing`, SARIF's suggested rule name form.
fn rule_name(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn help(rule: &RuleInfo) -> Help {
    let mut text = format!("{}\n", rule.fix);
    let mut markdown = format!("{}\n", rule.fix);
    for (i, step) in rule.steps.iter().enumerate() {
        text.push_str(&format!("{}. {step}\n", i + 1));
        markdown.push_str(&format!("{}. {step}\n", i + 1));
    }
    if !rule.references.is_empty() {
        text.push_str("References: ");
        text.push_str(&rule.references.join(", "));
        markdown.push_str("\nReferences:\n");
        for reference in rule.references {
            markdown.push_str(&format!("- <{reference}>\n"));
        }
    }
    Help { text, markdown }
}

/// The report as a SARIF 2.1.0 log. `rules` is the catalog of the report's ruleset (every rule that
/// was evaluated); a finding of a rule outside it still gets a result, without `ruleIndex`.
pub fn render(report: &Report, rules: &[RuleInfo]) -> serde_json::Value {
    let sarif_rules: Vec<Rule<'_>> = rules
        .iter()
        .map(|rule| Rule {
            id: rule.id,
            name: rule_name(rule.id),
            short_description: Text {
                text: rule.title.to_owned(),
            },
            full_description: Text {
                text: format!("{} ({} v{})", rule.title, rule.id, rule.version),
            },
            help: help(rule),
            help_uri: rule.references.first().copied(),
            default_configuration: Configuration {
                level: level(rule.severity),
            },
            properties: RuleProperties {
                tags: std::iter::once("security".to_owned())
                    .chain(std::iter::once(crate::wire(&rule.category)))
                    .chain(rule.compliance.iter().map(|c| (*c).to_owned()))
                    .collect(),
                security_severity: security_severity(rule.severity).to_owned(),
                precision: "high",
            },
        })
        .collect();
    let results = report
        .findings
        .iter()
        .map(|item| {
            let f = &item.finding;
            let mut fingerprints = serde_json::Map::new();
            fingerprints.insert(FINGERPRINT_KEY.to_owned(), f.fingerprint.clone().into());
            SarifResult {
                rule_id: &f.rule_id,
                rule_index: rules.iter().position(|r| r.id == f.rule_id),
                level: level(f.severity),
                message: Text {
                    text: format!("{} on {}. {}", f.title, f.asset, f.recommended_fix.summary),
                },
                locations: vec![Location {
                    physical_location: PhysicalLocation {
                        artifact_location: ArtifactLocation { uri: &f.asset },
                    },
                }],
                partial_fingerprints: fingerprints,
                properties: ResultProperties {
                    severity: f.severity.as_str(),
                    priority: f.priority.score,
                    confidence: f.confidence,
                    triage: triage_label(item.triage),
                    evidence: &f.evidence,
                    compliance: &f.compliance,
                },
            }
        })
        .collect();
    let log = Log {
        schema: SCHEMA_URI,
        version: "2.1.0",
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: GENERATOR,
                    version: GENERATOR_VERSION,
                    semantic_version: GENERATOR_VERSION,
                    information_uri: INFORMATION_URI,
                    rules: sarif_rules,
                },
            },
            automation_details: AutomationDetails {
                id: format!("vantage/{}/{}", report.domain, report.scan_id),
            },
            invocations: vec![Invocation {
                execution_successful: report.status == vantage_domain::scan::ScanStatus::Completed,
                start_time_utc: Some(report.created_at.to_rfc3339()),
                end_time_utc: report.finished_at.map(|t| t.to_rfc3339()),
            }],
            results,
        }],
    };
    serde_json::to_value(log).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_result_per_finding_with_its_fingerprint_and_rule() {
        let report = crate::fixtures::report();
        let rules = vantage_rules::rule_catalog("3").unwrap();
        let sarif = render(&report, &rules);
        let run = &sarif["runs"][0];
        assert_eq!(sarif["version"], "2.1.0");
        assert_eq!(run["results"].as_array().unwrap().len(), 2);
        assert_eq!(
            run["results"][0]["partialFingerprints"][FINGERPRINT_KEY],
            report.findings[0].finding.fingerprint.as_str()
        );
        assert_eq!(run["results"][0]["level"], "error");
        assert_eq!(run["results"][1]["level"], "warning");
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().unwrap().len(),
            rules.len()
        );
        let first_rule = &run["tool"]["driver"]["rules"][0];
        assert!(!first_rule["help"]["text"].as_str().unwrap().is_empty());
    }

    #[test]
    fn rule_names_are_pascal_case() {
        assert_eq!(rule_name("http.csp-missing"), "HttpCspMissing");
        assert_eq!(rule_name("tls.v1_0"), "TlsV10");
    }
}
