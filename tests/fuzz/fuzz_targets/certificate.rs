//! Certificates (DER) as any TLS server may present them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vantage_probes::tls::describe(data);
});
