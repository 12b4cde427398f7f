//! Stored events of any type, version and payload: decoding (with upcasting) returns an error or
//! an event, never panics. Input: `type|version|payload`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vantage_domain::DomainEvent;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '|');
    let (Some(event_type), Some(version), Some(payload)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let Ok(version) = version.parse::<u32>() else {
        return;
    };
    let _ = vantage_domain::scan::ScanEvent::decode(event_type, version, payload);
    let _ = vantage_domain::triage::TriageEvent::decode(event_type, version, payload);
    let _ = vantage_domain::apikey::ApiKeyEvent::decode(event_type, version, payload);
    let _ = vantage_domain::webhook::WebhookEvent::decode(event_type, version, payload);
    let _ = vantage_domain::schedule::ScheduleEvent::decode(event_type, version, payload);
    let _ = vantage_domain::project::ProjectEvent::decode(event_type, version, payload);
    let _ = vantage_domain::event::public_details(event_type, payload);
});
