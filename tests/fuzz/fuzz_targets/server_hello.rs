//! A server's first TLS record in answer to a legacy ClientHello, as any server may send it: the
//! 5-byte header, then the fragment. Reading it never panics, and a ServerHello is recognised only
//! in a handshake record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vantage_probes::tls::{LegacyVersion, handshake_record_length, is_server_hello_of};

fuzz_target!(|data: &[u8]| {
    let Some((header, rest)) = data.split_first_chunk::<5>() else {
        return;
    };
    let Some(length) = handshake_record_length(header) else {
        return;
    };
    assert!(length <= 16 * 1024);
    let fragment = &rest[..length.min(rest.len())];
    for version in LegacyVersion::ALL {
        if is_server_hello_of(fragment, version) {
            assert_eq!(fragment[0], 0x02);
        }
    }
});
