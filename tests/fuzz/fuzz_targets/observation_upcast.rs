//! Stored observations of any kind, version and payload: decoding (with upcasting from older
//! versions) returns an error or an observation, never panics. Input: `kind|version|payload`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vantage_observations::{Observation, ProbeKind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '|');
    let (Some(kind), Some(version), Some(payload)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let (Ok(kind), Ok(version)) = (
        serde_json::from_value::<ProbeKind>(serde_json::Value::String(kind.to_owned())),
        version.parse::<u32>(),
    ) else {
        return;
    };
    if let Ok(observation) = Observation::decode(kind, version, payload) {
        // What decodes is stored again as the current version, and reads back the same.
        let value = serde_json::to_value(&observation).expect("an observation serialises");
        let current = observation.kind();
        let again = Observation::decode_value(current, observation.version(), value);
        assert_eq!(again.ok().as_ref(), Some(&observation));
    }
});
