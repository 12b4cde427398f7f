//! What users type as a target, webhook URLs, cron expressions, ids: parsing never panics, and a
//! target that parses reparses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vantage_domain::target::ScanTarget;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(target) = ScanTarget::parse(text) {
        let again = ScanTarget::parse(target.as_str()).expect("a parsed target parses again");
        assert_eq!(again, target);
    }
    let _ = vantage_domain::webhook::WebhookUrl::parse(text);
    let _ = vantage_domain::tenant::TenantId::parse(text);
    let _ = vantage_domain::project::ProjectId::parse(text);
    let _ = vantage_domain::triage::Fingerprint::parse(text);
    let (expression, zone) = text.split_once('|').unwrap_or((text, "UTC"));
    let _ = vantage_domain::schedule::CronCadence::parse(expression, zone);
});
