//! JUnit XML for CI systems: one `<testsuite>` per scan, one `<testcase>` per rule the ruleset
//! evaluated. A rule fails when it has a finding that blocks a release at the threshold
//! ([`crate::blocks_release`]: at least that severe and not triaged away); its findings below the
//! threshold or triaged away are listed in the test case's `<system-out>`. A scan that did not
//! complete is one `<testcase name="scan completed">` with an `<error>`.

use std::fmt::Write;

use vantage_domain::scan::ScanStatus;
use vantage_rules::{RuleInfo, Severity};

use crate::{Report, escape_markup as esc, html::triage_label};

/// The report as a JUnit XML document.
pub fn render(report: &Report, rules: &[RuleInfo], threshold: Severity) -> String {
    let completed = report.status == ScanStatus::Completed;
    let mut cases = String::new();
    let (mut tests, mut failures, mut errors) = (0usize, 0usize, 0usize);
    if !completed {
        tests += 1;
        errors += 1;
        let _ = write!(
            cases,
            "<testcase name=\"scan completed\" classname=\"vantage.scan\"><error message=\"{}\" type=\"{}\"/></testcase>",
            esc(&format!(
                "the scan {}{}",
                report.status.as_str(),
                report
                    .failure_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
            report.status.as_str()
        );
    }
    for rule in rules.iter().filter(|_| completed) {
        tests += 1;
        let of_rule: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.finding.rule_id == rule.id)
            .collect();
        let blocking: Vec<_> = of_rule
            .iter()
            .filter(|f| crate::blocks_release(&f.finding, f.triage, threshold))
            .collect();
        let _ = write!(
            cases,
            "<testcase name=\"{}: {}\" classname=\"vantage.{}\" time=\"0\">",
            esc(rule.id),
            esc(rule.title),
            crate::wire(&rule.category)
        );
        if !blocking.is_empty() {
            failures += 1;
            let mut text = String::new();
            for f in &blocking {
                let _ = writeln!(
                    text,
                    "{} [{}] {} ({}; fingerprint {})",
                    f.finding.severity.as_str(),
                    f.finding.asset,
                    f.finding.title,
                    triage_label(f.triage),
                    f.finding.fingerprint
                );
            }
            let _ = writeln!(text, "Fix: {}", rule.fix);
            let _ = write!(
                cases,
                "<failure message=\"{}\" type=\"{}\">{}</failure>",
                esc(&format!(
                    "{} finding(s) at or above {} on {}",
                    blocking.len(),
                    threshold.as_str(),
                    report.target
                )),
                blocking
                    .iter()
                    .map(|f| f.finding.severity)
                    .max()
                    .unwrap_or(threshold)
                    .as_str(),
                esc(&text)
            );
        }
        let passing: Vec<_> = of_rule
            .iter()
            .filter(|f| !crate::blocks_release(&f.finding, f.triage, threshold))
            .collect();
        if !passing.is_empty() {
            let mut text = String::new();
            for f in passing {
                let _ = writeln!(
                    text,
                    "{} [{}] {} ({}; below the threshold or triaged away)",
                    f.finding.severity.as_str(),
                    f.finding.asset,
                    f.finding.title,
                    triage_label(f.triage)
                );
            }
            let _ = write!(cases, "<system-out>{}</system-out>", esc(&text));
        }
        cases.push_str("</testcase>");
    }
    let name = format!("vantage {}", report.target);
    let timestamp = report
        .finished_at
        .unwrap_or(report.created_at)
        .format("%Y-%m-%dT%H:%M:%S");
    let time = report
        .finished_at
        .map(|end| (end - report.created_at).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{n}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\"><testsuite name=\"{n}\" id=\"0\" package=\"vantage\" hostname=\"{host}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" timestamp=\"{timestamp}\" time=\"{time:.3}\"><properties><property name=\"scan_id\" value=\"{scan}\"/><property name=\"ruleset\" value=\"{ruleset}\"/><property name=\"threshold\" value=\"{threshold}\"/><property name=\"grade\" value=\"{grade}\"/></properties>{cases}</testsuite></testsuites>\n",
        n = esc(&name),
        host = esc(&report.domain),
        scan = esc(&report.scan_id),
        ruleset = esc(report.ruleset_version.as_deref().unwrap_or("")),
        threshold = threshold.as_str(),
        grade = esc(report.grade().unwrap_or("")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_case_per_rule_and_failures_only_at_or_above_the_threshold() {
        let mut report = crate::fixtures::report();
        let mut rules = vantage_rules::rule_catalog("3").unwrap();
        rules.truncate(3);
        report.findings[0].finding.rule_id = rules[0].id.to_owned();
        report.findings[1].finding.rule_id = rules[1].id.to_owned();
        let xml = render(&report, &rules, Severity::High);
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert!(
            xml.contains(r#"tests="3" failures="1" errors="0""#),
            "{xml}"
        );
        assert_eq!(xml.matches("<failure ").count(), 1);
        // The medium finding (risk accepted) is listed, not failed, even at a lower threshold.
        let low = render(&report, &rules, Severity::Low);
        assert!(low.contains(r#"failures="1""#));
        assert!(low.contains("below the threshold or triaged away"));
        assert!(xml.contains("No CSP &lt;script&gt;"));
    }

    #[test]
    fn a_failed_scan_is_one_error() {
        let mut report = crate::fixtures::report();
        report.status = ScanStatus::Failed;
        report.failure_reason = Some("no address".to_owned());
        let xml = render(
            &report,
            &vantage_rules::rule_catalog("3").unwrap(),
            Severity::High,
        );
        assert!(xml.contains(r#"tests="1" failures="0" errors="1""#));
        assert!(xml.contains("the scan failed: no address"));
    }
}
