//! Compliance frameworks and coverage: which controls of a framework a ruleset tests, and whether a
//! scan's findings pass or fail each of them.
//!
//! Controls of OWASP ASVS, PCI DSS and NIST SP 800-52 are named by the rules themselves (their
//! `compliance` ids). ISO 27001 Annex A and SOC 2 are organisational frameworks that no external scan
//! can prove; their controls are crosswalked to finding categories, and coverage says so
//! (`basis: "crosswalk"`). Pure data and pure functions, like the rest of this crate.

use serde::{Deserialize, Serialize};

use crate::finding::{Category, Finding};
use crate::{UnknownRuleset, rule_catalog};

/// How a control is tied to the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlBasis {
    /// Rules that name this compliance id (`<prefix>:<control>`) test it.
    Named,
    /// Rules of these categories bear on it.
    Crosswalk(&'static [Category]),
}

/// One control of a framework.
#[derive(Debug, Clone, Copy)]
pub struct Control {
    pub id: &'static str,
    pub title: &'static str,
    pub basis: ControlBasis,
}

/// A compliance framework Vantage reports coverage for.
#[derive(Debug, Clone, Copy)]
pub struct Framework {
    /// Stable id used in the API (`owasp-asvs`, …).
    pub id: &'static str,
    pub name: &'static str,
    pub version: &'static str,
    /// The prefix of compliance ids in findings (`OWASP-ASVS-4.0.3`).
    pub prefix: &'static str,
    pub controls: &'static [Control],
}

const fn named(id: &'static str, title: &'static str) -> Control {
    Control {
        id,
        title,
        basis: ControlBasis::Named,
    }
}

const fn crosswalk(
    id: &'static str,
    title: &'static str,
    categories: &'static [Category],
) -> Control {
    Control {
        id,
        title,
        basis: ControlBasis::Crosswalk(categories),
    }
}

/// Every framework, in a stable order.
pub const FRAMEWORKS: &[Framework] = &[
    Framework {
        id: "owasp-asvs",
        name: "OWASP Application Security Verification Standard",
        version: "4.0.3",
        prefix: "OWASP-ASVS-4.0.3",
        controls: &[
            named("V3.4.1", "Cookies have the Secure attribute"),
            named("V3.4.2", "Cookies have the HttpOnly attribute"),
            named("V3.4.3", "Cookies use the SameSite attribute"),
            named("V5.1.5", "Redirects only go to allowed destinations"),
            named("V9.1.1", "TLS is used for all client connectivity"),
            named(
                "V12.5.1",
                "The web tier serves only files with allowed extensions",
            ),
            named("V14.2.3", "Third-party assets carry Subresource Integrity"),
            named("V14.3.2", "Debug modes are disabled in production"),
            named("V14.3.3", "HTTP headers do not expose version information"),
            named("V14.4.3", "A Content Security Policy is in place"),
            named("V14.4.4", "Responses carry X-Content-Type-Options: nosniff"),
            named("V14.4.5", "Strict-Transport-Security is set"),
            named("V14.4.6", "A suitable Referrer-Policy is set"),
            named("V14.4.7", "Content cannot be framed by third parties"),
            named("V14.5.3", "The CORS Origin allow-list is strict"),
        ],
    },
    Framework {
        id: "pci-dss",
        name: "PCI DSS",
        version: "4.0",
        prefix: "PCI-DSS-4.0",
        controls: &[
            named(
                "1.3.1",
                "Inbound traffic to the cardholder data environment is restricted",
            ),
            named(
                "4.2.1",
                "Strong cryptography protects data in transit over public networks",
            ),
            named(
                "8.6.2",
                "Passwords and secrets are not hard-coded or exposed",
            ),
        ],
    },
    Framework {
        id: "nist-sp-800-52",
        name: "NIST SP 800-52 (TLS implementations)",
        version: "Rev. 2",
        prefix: "NIST-SP-800-52r2",
        controls: &[
            named("3.1", "Protocol version support"),
            named("3.3.2", "Server keys and signature algorithms"),
            named(
                "3.5",
                "Server certificates are valid, trusted and match the name",
            ),
        ],
    },
    Framework {
        id: "iso-27001",
        name: "ISO/IEC 27001 Annex A",
        version: "2022",
        prefix: "ISO-27001-2022",
        controls: &[
            crosswalk(
                "A.5.14",
                "Information transfer",
                &[Category::Email, Category::Dns],
            ),
            crosswalk(
                "A.8.9",
                "Configuration management",
                &[Category::Headers, Category::Cookies],
            ),
            crosswalk("A.8.12", "Data leakage prevention", &[Category::Exposure]),
            crosswalk("A.8.20", "Networks security", &[Category::Availability]),
            crosswalk("A.8.24", "Use of cryptography", &[Category::Tls]),
        ],
    },
    Framework {
        id: "soc2",
        name: "SOC 2 Trust Services Criteria",
        version: "2017",
        prefix: "SOC2-TSC-2017",
        controls: &[
            crosswalk(
                "CC6.1",
                "Logical access security",
                &[Category::Exposure, Category::Cookies],
            ),
            crosswalk(
                "CC6.6",
                "Protection against threats from outside the system boundary",
                &[Category::Availability, Category::Headers],
            ),
            crosswalk(
                "CC6.7",
                "Data in transmission is protected",
                &[Category::Tls, Category::Email],
            ),
            crosswalk(
                "CC7.1",
                "Configuration changes that introduce vulnerabilities are detected",
                &[Category::Dns],
            ),
        ],
    },
];

/// The framework with this id.
pub fn framework(id: &str) -> Option<&'static Framework> {
    FRAMEWORKS.iter().find(|f| f.id == id)
}

/// A control's result for one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    /// Tested, and no finding of the scan fails it.
    Pass,
    /// At least one finding of the scan fails it.
    Fail,
    /// No rule of the scan's ruleset bears on it.
    NotTested,
}

/// One control's coverage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ControlCoverage {
    pub control: String,
    pub title: String,
    pub basis: String,
    pub status: ControlStatus,
    /// Rules of the ruleset that test the control.
    pub rules: Vec<String>,
    /// Fingerprints of the scan's findings that fail it.
    pub failing: Vec<String>,
}

/// A framework's coverage for one scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Coverage {
    pub framework: String,
    pub name: String,
    pub version: String,
    pub ruleset_version: String,
    pub passed: u32,
    pub failed: u32,
    pub not_tested: u32,
    /// Passed controls as a percentage of tested ones (100 when nothing is tested and nothing fails).
    pub percent: u32,
    pub controls: Vec<ControlCoverage>,
}

fn bears_on(control: &Control, prefix: &str, category: Category, compliance: &[&str]) -> bool {
    match control.basis {
        ControlBasis::Named => compliance
            .iter()
            .any(|id| id.split_once(':') == Some((prefix, control.id))),
        ControlBasis::Crosswalk(categories) => categories.contains(&category),
    }
}

/// The coverage of `framework` by a scan completed with `ruleset` that produced `findings`.
pub fn coverage(
    framework: &Framework,
    ruleset: &str,
    findings: &[Finding],
) -> Result<Coverage, UnknownRuleset> {
    let rules = rule_catalog(ruleset)?;
    let mut controls = Vec::with_capacity(framework.controls.len());
    let (mut passed, mut failed, mut not_tested) = (0u32, 0u32, 0u32);
    for control in framework.controls {
        let testing: Vec<String> = rules
            .iter()
            .filter(|r| bears_on(control, framework.prefix, r.category, &r.compliance))
            .map(|r| r.id.to_owned())
            .collect();
        let failing: Vec<String> = findings
            .iter()
            .filter(|f| {
                let ids: Vec<&str> = f.compliance.iter().map(String::as_str).collect();
                bears_on(control, framework.prefix, f.category, &ids)
            })
            .map(|f| f.fingerprint.clone())
            .collect();
        let status = if !failing.is_empty() {
            failed += 1;
            ControlStatus::Fail
        } else if testing.is_empty() {
            not_tested += 1;
            ControlStatus::NotTested
        } else {
            passed += 1;
            ControlStatus::Pass
        };
        controls.push(ControlCoverage {
            control: control.id.to_owned(),
            title: control.title.to_owned(),
            basis: match control.basis {
                ControlBasis::Named => "named".to_owned(),
                ControlBasis::Crosswalk(_) => "crosswalk".to_owned(),
            },
            status,
            rules: testing,
            failing,
        });
    }
    let tested = passed + failed;
    let percent = (passed * 100).checked_div(tested).unwrap_or(100);
    Ok(Coverage {
        framework: framework.id.to_owned(),
        name: framework.name.to_owned(),
        version: framework.version.to_owned(),
        ruleset_version: ruleset.to_owned(),
        passed,
        failed,
        not_tested,
        percent,
        controls,
    })
}
