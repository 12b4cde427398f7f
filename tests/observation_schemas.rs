//! Every observation type of every version has a JSON Schema in `schemas/observations/`; current
//! versions are generated from the Rust types and must match the committed files (regenerate with
//! `VANTAGE_UPDATE_SCHEMAS=1`); older versions stay as they were released. Every observation the
//! fixture log recorded validates against the schema of its version and decodes to the current type.

use vantage_observations::{CATALOG, Observation, ProbeKind};

fn schemas_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/observations")
}

#[test]
fn committed_schemas_match_the_observation_types() {
    vantage_tests::assert_committed_schemas(
        &schemas_dir(),
        CATALOG.iter().map(|info| {
            (
                format!("{}.v{}.json", info.kind.as_str(), info.version),
                (info.schema)(),
            )
        }),
    );
}

fn validator(kind: &str, version: u32) -> jsonschema::Validator {
    let path = schemas_dir().join(format!("{kind}.v{version}.json"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// Observations recorded by an older release (the fixture log, written before observations had
/// versions of their own: every one is version 1).
#[test]
fn recorded_observations_fit_their_schema_and_decode() {
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for line in include_str!("fixtures/ruleset-1-2-log.jsonl").lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        if event["event_type"] != "ProbeObserved" {
            continue;
        }
        let payload = &event["payload"];
        let data = payload["data"].clone();
        let mut kind: ProbeKind = serde_json::from_value(payload["probe"].clone()).unwrap();
        if kind == ProbeKind::Dns && data.get("policy_url").is_some() {
            kind = ProbeKind::MtaSts;
        }
        let validator = validator(kind.as_str(), 1);
        assert!(
            validator.is_valid(&data),
            "{} v1 does not fit its schema: {:?}",
            kind.as_str(),
            validator
                .iter_errors(&data)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
        let decoded = Observation::decode(kind, 1, &data.to_string()).unwrap();
        assert_eq!(decoded.kind(), kind);
        *seen.entry(kind.as_str()).or_default() += 1;
    }
    for kind in ["dns", "tcp", "tls", "http", "exposure", "classification"] {
        assert!(
            seen.contains_key(kind),
            "the fixture holds {kind} observations: {seen:?}"
        );
    }
}
