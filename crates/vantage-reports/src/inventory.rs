//! The technology inventory: the software a scan saw from outside, as CycloneDX 1.5 and SPDX 2.3.
//!
//! Only what a response disclosed is listed, each component with the evidence that named it:
//! - the `Server` and `X-Powered-By` headers, read as RFC 9110 product tokens (`Apache/2.4.58
//!   (Debian)` is Apache 2.4.58; a comment is kept as a note, never as a product);
//! - the pages' script sources whose path names a library and its version the way CDNs and
//!   bundlers write them (`jquery-3.6.0.min.js`, `/npm/bootstrap@5.3.2/…`, `/ajax/libs/vue/3.4.0/…`).
//!
//! Nothing is guessed from behaviour: no version without a version string, no product from a
//! fingerprint. A component seen on several assets is one component with several pieces of evidence.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vantage_domain::scan::ProbeObserved;
use vantage_observations::Observation;

use crate::{GENERATOR, GENERATOR_VERSION, INFORMATION_URI};

/// What a component is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    /// Named by `Server`.
    Server,
    /// Named by `X-Powered-By`.
    Framework,
    /// Named by a script's path.
    Library,
}

/// One piece of evidence: where and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// The observation's asset (a URL).
    pub asset: String,
    /// `header server`, `header x-powered-by` or `script src`.
    pub source: String,
    /// The header value or script URL, as seen.
    pub value: String,
}

/// One piece of software.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Component {
    pub kind: ComponentKind,
    pub name: String,
    pub version: Option<String>,
    /// Package URL: `pkg:npm/…` for script libraries, `pkg:generic/…` otherwise.
    pub purl: String,
    /// RFC 9110 comments that came with the product (`Debian`, `Ubuntu`).
    pub notes: Vec<String>,
    pub evidence: Vec<Evidence>,
}

/// RFC 9110 product tokens: `(name, version, comments)` of each product in a `Server` or
/// `User-Agent`-like value. Tolerant: a value that is not token grammar yields what it can.
pub fn product_tokens(value: &str) -> Vec<(String, Option<String>, Vec<String>)> {
    let mut products: Vec<(String, Option<String>, Vec<String>)> = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(&next) = chars.peek() else { break };
        if next == '(' {
            // A comment, possibly nested; attached to the product before it.
            let mut depth = 0usize;
            let mut text = String::new();
            for c in chars.by_ref() {
                match c {
                    '(' => {
                        depth += 1;
                        if depth > 1 {
                            text.push(c);
                        }
                    }
                    ')' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            break;
                        }
                        text.push(c);
                    }
                    c => text.push(c),
                }
            }
            let text = text.trim().to_owned();
            if let Some(last) = products.last_mut()
                && !text.is_empty()
            {
                last.2.push(text);
            }
            continue;
        }
        let mut token = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '(' || c == ',' {
                break;
            }
            token.push(c);
            chars.next();
        }
        let (name, version) = match token.split_once('/') {
            Some((name, version)) if !version.is_empty() => (name, Some(version.to_owned())),
            Some((name, _)) => (name, None),
            None => (token.as_str(), None),
        };
        if !name.is_empty() {
            products.push((name.to_owned(), version, Vec::new()));
        }
    }
    products
}

fn is_version(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    (2..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 6 && p.chars().all(|c| c.is_ascii_digit()))
}

fn is_library_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// A library and version named by a script URL's path, if it names one.
pub fn script_library(src: &str) -> Option<(String, String)> {
    let path = src
        .split(['?', '#'])
        .next()
        .unwrap_or(src)
        .split_once("://")
        .map_or(src, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // `…/name@1.2.3/…` (jsDelivr, unpkg); scoped packages keep their scope.
    for (i, segment) in segments.iter().enumerate() {
        if let Some((name, version)) = segment.rsplit_once('@')
            && is_version(version)
        {
            if !is_library_name(name) {
                continue;
            }
            let name = match i.checked_sub(1).map(|j| segments[j]) {
                Some(scope) if scope.len() > 1 && scope.starts_with('@') => {
                    if !is_library_name(&scope[1..]) {
                        continue;
                    }
                    format!("{scope}/{name}")
                }
                _ => name.to_owned(),
            };
            return Some((name.to_ascii_lowercase(), version.to_owned()));
        }
    }
    // `…/libs/name/1.2.3/…` (cdnjs, Google's hosted libraries).
    for window in segments.windows(3) {
        if window[0] == "libs" && is_library_name(window[1]) && is_version(window[2]) {
            return Some((window[1].to_ascii_lowercase(), window[2].to_owned()));
        }
    }
    // `name-1.2.3.min.js`, `name.1.2.3.js`.
    let file = segments.last()?;
    let stem = file.strip_suffix(".js")?;
    let stem = stem.strip_suffix(".min").unwrap_or(stem);
    for (i, c) in stem.char_indices() {
        if (c == '-' || c == '.') && stem[i + 1..].starts_with(|d: char| d.is_ascii_digit()) {
            let (name, version) = (&stem[..i], &stem[i + 1..]);
            if is_library_name(name) && is_version(version) {
                return Some((name.to_ascii_lowercase(), version.to_owned()));
            }
        }
    }
    None
}

/// Percent-encodes what a purl name or version may not hold literally.
fn purl_part(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn purl(kind: ComponentKind, name: &str, version: Option<&str>) -> String {
    let name = match (kind, name.strip_prefix('@')) {
        (ComponentKind::Library, Some(scoped)) => match scoped.split_once('/') {
            Some((scope, name)) => format!("%40{}/{}", purl_part(scope), purl_part(name)),
            None => purl_part(name),
        },
        _ => purl_part(&name.to_ascii_lowercase()),
    };
    let kind = if kind == ComponentKind::Library {
        "npm"
    } else {
        "generic"
    };
    match version {
        Some(version) => format!("pkg:{kind}/{name}@{}", purl_part(version)),
        None => format!("pkg:{kind}/{name}"),
    }
}

/// The software the observations disclose, by kind, name and version.
pub fn components(observations: &[ProbeObserved]) -> Vec<Component> {
    let mut found: BTreeMap<(ComponentKind, String, Option<String>), Component> = BTreeMap::new();
    let mut add = |kind, name: String, version: Option<String>, notes: Vec<String>, evidence| {
        let entry = found
            .entry((kind, name.to_ascii_lowercase(), version.clone()))
            .or_insert_with(|| Component {
                kind,
                purl: purl(kind, &name, version.as_deref()),
                name,
                version,
                notes: Vec::new(),
                evidence: Vec::new(),
            });
        for note in notes {
            if !entry.notes.contains(&note) {
                entry.notes.push(note);
            }
        }
        if !entry.evidence.contains(&evidence) {
            entry.evidence.push(evidence);
        }
    };
    for observed in observations {
        let Observation::Http(page) = &observed.observation else {
            continue;
        };
        for (header, kind) in [
            ("server", ComponentKind::Server),
            ("x-powered-by", ComponentKind::Framework),
        ] {
            let Some(value) = page.header(header) else {
                continue;
            };
            for (name, version, notes) in product_tokens(value) {
                let evidence = Evidence {
                    asset: observed.asset.clone(),
                    source: format!("header {header}"),
                    value: value.to_owned(),
                };
                add(kind, name, version, notes, evidence);
            }
        }
        for script in page.html.iter().flat_map(|h| &h.script_sources) {
            if let Some((name, version)) = script_library(&script.src) {
                let evidence = Evidence {
                    asset: observed.asset.clone(),
                    source: "script src".to_owned(),
                    value: script.src.clone(),
                };
                add(
                    ComponentKind::Library,
                    name,
                    Some(version),
                    Vec::new(),
                    evidence,
                );
            }
        }
    }
    let mut components: Vec<Component> = found.into_values().collect();
    for component in &mut components {
        component.evidence.sort();
    }
    components
}

/// What an inventory document describes.
#[derive(Debug, Clone)]
pub struct InventorySubject<'a> {
    pub scan_id: uuid::Uuid,
    pub target: &'a str,
    pub domain: &'a str,
    /// When the scan finished (the inventory's time).
    pub observed_at: DateTime<Utc>,
}

fn serial(subject: &InventorySubject<'_>) -> uuid::Uuid {
    uuid::Uuid::new_v5(&subject.scan_id, b"vantage-inventory")
}

/// The inventory as a CycloneDX 1.5 JSON BOM.
pub fn cyclonedx(subject: &InventorySubject<'_>, components: &[Component]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (kind, technique) = match c.kind {
                ComponentKind::Server => ("application", "dynamic-analysis"),
                ComponentKind::Framework => ("framework", "dynamic-analysis"),
                ComponentKind::Library => ("library", "filename"),
            };
            let mut item = json!({
                "type": kind,
                "bom-ref": format!("component-{}", i + 1),
                "name": c.name,
                "purl": c.purl,
                "evidence": {
                    "identity": {
                        "field": if c.version.is_some() { "version" } else { "name" },
                        "confidence": 1.0,
                        "methods": c.evidence.iter().map(|e| json!({
                            "technique": technique,
                            "confidence": 1.0,
                            "value": format!("{}: {}", e.source, e.value),
                        })).collect::<Vec<_>>(),
                    },
                    "occurrences": c.evidence.iter().map(|e| json!({ "location": e.asset })).collect::<Vec<_>>(),
                },
                "properties": c.notes.iter().map(|n| json!({ "name": "vantage:note", "value": n })).collect::<Vec<_>>(),
            });
            if let Some(version) = &c.version {
                item["version"] = json!(version);
            }
            item
        })
        .collect();
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", serial(subject)),
        "version": 1,
        "metadata": {
            "timestamp": subject.observed_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "tools": { "components": [{
                "type": "application", "name": GENERATOR, "version": GENERATOR_VERSION,
            }]},
            "component": {
                "type": "application",
                "bom-ref": "site",
                "name": subject.domain,
                "description": format!("The software {} discloses to outside visitors, as scan {} saw it", subject.target, subject.scan_id),
            },
            "properties": [{ "name": "vantage:scan_id", "value": subject.scan_id.to_string() }],
        },
        "components": items,
        "dependencies": [{
            "ref": "site",
            "dependsOn": (1..=components.len()).map(|i| format!("component-{i}")).collect::<Vec<_>>(),
        }],
    })
}

/// The inventory as an SPDX 2.3 JSON document.
pub fn spdx(subject: &InventorySubject<'_>, components: &[Component]) -> serde_json::Value {
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Site",
        "name": subject.domain,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "APPLICATION",
        "comment": format!("The site {} as scan {} saw it from outside", subject.target, subject.scan_id),
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Site",
    })];
    for (i, c) in components.iter().enumerate() {
        let id = format!("SPDXRef-Component-{}", i + 1);
        let evidence: Vec<String> = c
            .evidence
            .iter()
            .map(|e| format!("{} on {}: {}", e.source, e.asset, e.value))
            .collect();
        let mut package = json!({
            "SPDXID": id,
            "name": c.name,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": match c.kind {
                ComponentKind::Server => "APPLICATION",
                ComponentKind::Framework => "FRAMEWORK",
                ComponentKind::Library => "LIBRARY",
            },
            "sourceInfo": format!("seen from outside: {}", evidence.join("; ")),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": c.purl,
            }],
        });
        if let Some(version) = &c.version {
            package["versionInfo"] = json!(version);
        }
        if !c.notes.is_empty() {
            package["comment"] = json!(c.notes.join("; "));
        }
        packages.push(package);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Site",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("vantage-inventory-{}", subject.domain),
        "documentNamespace": format!("{INFORMATION_URI}/spdx/{}/{}", subject.scan_id, serial(subject)),
        "creationInfo": {
            "created": subject.observed_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "creators": [format!("Tool: {GENERATOR}-{GENERATOR_VERSION}")],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn server_values_are_read_as_product_tokens() {
        assert_eq!(
            product_tokens("Apache/2.4.58 (Debian) OpenSSL/3.0.11"),
            vec![
                (
                    "Apache".to_owned(),
                    Some("2.4.58".to_owned()),
                    vec!["Debian".to_owned()]
                ),
                ("OpenSSL".to_owned(), Some("3.0.11".to_owned()), vec![]),
            ]
        );
        assert_eq!(
            product_tokens("nginx"),
            vec![("nginx".to_owned(), None, vec![])]
        );
        assert_eq!(
            product_tokens("PHP/8.2.1, ASP.NET"),
            vec![
                ("PHP".to_owned(), Some("8.2.1".to_owned()), vec![]),
                ("ASP.NET".to_owned(), None, vec![])
            ]
        );
        assert_eq!(
            product_tokens("(only a comment (nested))"),
            Vec::<(String, Option<String>, Vec<String>)>::new()
        );
    }

    #[test]
    fn script_paths_name_libraries_the_way_cdns_write_them() {
        let cases = [
            (
                "https://code.jquery.com/jquery-3.6.0.min.js",
                Some(("jquery", "3.6.0")),
            ),
            (
                "https://cdn.jsdelivr.net/npm/bootstrap@5.3.2/dist/js/bootstrap.bundle.min.js",
                Some(("bootstrap", "5.3.2")),
            ),
            (
                "https://cdnjs.cloudflare.com/ajax/libs/vue/3.4.0/vue.global.prod.js",
                Some(("vue", "3.4.0")),
            ),
            (
                "https://unpkg.com/@popperjs/core@2.11.8/dist/umd/popper.min.js",
                Some(("@popperjs/core", "2.11.8")),
            ),
            ("/static/app.js", None),
            ("/static/main-4f3a2b.js", None),
            ("/js/chunk-2024.js", None),
        ];
        for (src, expected) in cases {
            assert_eq!(
                script_library(src),
                expected.map(|(n, v)| (n.to_owned(), v.to_owned())),
                "{src}"
            );
        }
        assert_eq!(
            purl(ComponentKind::Library, "@popperjs/core", Some("2.11.8")),
            "pkg:npm/%40popperjs/core@2.11.8"
        );
        assert_eq!(
            purl(ComponentKind::Server, "Microsoft-IIS", Some("10.0")),
            "pkg:generic/microsoft-iis@10.0"
        );
    }

    proptest! {
        #[test]
        fn product_tokens_never_panic_and_never_yield_empty_names(value in "\\PC{0,80}") {
            for (name, version, _) in product_tokens(&value) {
                prop_assert!(!name.is_empty());
                prop_assert!(version.is_none_or(|v| !v.is_empty()));
            }
        }

        #[test]
        fn script_library_never_panics_and_only_names_versions(src in "\\PC{0,120}") {
            if let Some((name, version)) = script_library(&src) {
                prop_assert!(is_version(&version));
                prop_assert!(!name.is_empty());
            }
        }
    }
}
