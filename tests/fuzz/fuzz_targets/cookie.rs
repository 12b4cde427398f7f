//! `Set-Cookie` values as any server may send them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data) {
        let _ = vantage_probes::http::summarize_cookie(header);
    }
});
