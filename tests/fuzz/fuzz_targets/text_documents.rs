//! The small text formats sites publish: security.txt, MTA-STS policies, `.env` files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = vantage_probes::exposure::security_txt(&text);
    let _ = vantage_probes::mta_sts::parse_policy(&text);
    let _ = vantage_probes::exposure::env_secrets(&text);
});
