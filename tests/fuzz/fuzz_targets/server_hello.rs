//! A server's first TLS record in answer to a ClientHello, as any server may send it: the 5-byte
//! header, then the fragment. Reading it never panics: a ServerHello is recognised only in a
//! handshake record, and the enumeration's parsers (the ServerHello's version, suite, compression,
//! extensions; a ServerKeyExchange's group or prime) take any body and claim nothing it does not
//! hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vantage_observations::cipher_suites::KeyExchange;
use vantage_probes::tls::{LegacyVersion, handshake_record_length, is_server_hello_of};
use vantage_probes::tls_suites::{parse_server_hello, parse_server_key_exchange};

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
    // The handshake message's body, after its type and 24-bit length.
    let body = fragment.get(4..).unwrap_or_default();
    if let Some(hello) = parse_server_hello(body) {
        // Version, random, session id length, suite and compression: at least 38 bytes were read.
        assert!(body.len() >= 38);
        let _ = hello.suite;
    }
    for key_exchange in [
        KeyExchange::Rsa,
        KeyExchange::Dhe,
        KeyExchange::Ecdhe,
        KeyExchange::DhAnon,
        KeyExchange::EcdhAnon,
        KeyExchange::Tls13,
    ] {
        if let Some((_, Some(bits))) = parse_server_key_exchange(body, key_exchange) {
            assert!(bits as usize <= body.len() * 8, "a prime no longer than its bytes");
        }
    }
});
